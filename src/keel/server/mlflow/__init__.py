"""keel server's MLflow-compatible REST API: MLflow's clients, unchanged, track into keel.

``router`` serves ``/api/2.0/mlflow/...`` (experiments, runs, metrics, artifact listing, MLflow 3's
logged models, the model registry) and ``artifacts_router`` serves ``/api/2.0/mlflow-artifacts/...``
(proxied artifact upload, download and listing); ``keel.server.app.create_app`` mounts both. Every
route declares its policy: reads need ``read``, changes ``write``, alias changes and registry
deletions ``promote``. The translation to keel's store lives in the modules named after the
routes' groups; docs/mlflow-compatibility.md lists what is served and how it differs from MLflow.
"""

from __future__ import annotations

from fastapi import APIRouter

from keel.server.mlflow import artifacts, experiments, logged_models, metrics, registry, runs

__all__ = ["artifacts_router", "router"]

router = APIRouter()
# routes are matched in order, one by one: the metric routes, which carry most requests, come first
for _part in (metrics, runs, experiments, logged_models, registry, artifacts):
    router.include_router(_part.router)

artifacts_router = artifacts.artifacts_router
