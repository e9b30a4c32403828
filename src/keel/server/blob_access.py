"""Who may read a blob that is addressed by nothing but its sha256.

A hash is no secret: it is printed in logs, shown in the UI, and for a public file anyone can
compute it. So holding one grants nothing. The server serves (``GET``/``HEAD``) a blob, and lets a
record point at one (a run artifact, an input, a dataset profile, a model version), only when the
caller

- may read some project whose metadata references the sha (:func:`blob_projects`: run artifacts and
  lineage edges, dataset profiles of runs' inputs, model versions; pipeline step outputs and cache
  entries are recorded as artifacts of their pipeline's run), or
- sent the bytes themselves (a successful ``PUT`` of that blob by the same user, which the append-only
  audit log already records): whoever holds the bytes may name them.

Everything else, a blob that exists elsewhere or nowhere, gets one answer (404, or "upload it
first" where a record points at it), so the answer tells nothing about other projects.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import Request

from keel.server.policy import get_artifacts, get_principal, readable_projects
from keel.store import schema as t

__all__ = ["UPLOAD_ACTION", "blob_projects", "may_use_blob", "uploaded_by"]

#: the audit log's action for a blob upload (its target is the sha256)
UPLOAD_ACTION = "artifact.upload"


def _run_projects(column: Any, sha256: str) -> sa.Select[Any]:
    """Projects of the runs whose rows in ``column``'s table reference ``sha256``."""
    return (
        sa.select(t.projects.c.name)
        .select_from(t.join_run_project(column.table, column.table.c.run_pk))
        .where(column == sha256)
    )


def blob_projects(engine: sa.Engine, sha256: str) -> set[str]:
    """Every project whose metadata references the blob ``sha256``."""
    profiles = (
        sa.select(t.projects.c.name)
        .select_from(
            t.join_run_project(
                t.datasets.join(t.run_inputs, t.run_inputs.c.dataset_id == t.datasets.c.id),
                t.run_inputs.c.run_pk,
            )
        )
        .where(t.datasets.c.profile_sha256 == sha256)
    )
    versions = (
        sa.select(t.projects.c.name)
        .select_from(
            t.model_versions.join(
                t.registered_models, t.registered_models.c.id == t.model_versions.c.model_id
            ).join(t.projects, t.projects.c.id == t.registered_models.c.project_id)
        )
        .where(t.model_versions.c.artifact_sha256 == sha256)
    )
    query = sa.union(
        _run_projects(t.artifacts.c.sha256, sha256),
        _run_projects(t.lineage_edges.c.sha256, sha256),
        profiles,
        versions,
    )
    with engine.connect() as c:
        return {row[0] for row in c.execute(query)}


def uploaded_by(engine: sa.Engine, actor: str, sha256: str) -> bool:
    """Whether ``actor`` uploaded the bytes of ``sha256`` (a successful ``PUT`` in the audit log)."""
    a = t.audit_log
    query = (
        sa.select(a.c.seq)
        .where(
            a.c.action == UPLOAD_ACTION,
            a.c.target == sha256,
            a.c.actor == actor,
            a.c.outcome == "ok",
        )
        .limit(1)
    )
    with engine.connect() as c:
        return c.execute(query).first() is not None


def may_use_blob(request: Request, sha256: str) -> bool:
    """Whether the caller may read the blob ``sha256`` or point a record at it (see the module
    docstring); False as well when the server does not hold it."""
    if not get_artifacts(request).exists(sha256):
        return False
    principal = get_principal(request)
    readable = readable_projects(principal)
    if readable is None:  # every project: any blob the server holds
        return True
    engine = request.app.state.projects.engine
    if readable & blob_projects(engine, sha256):
        return True
    return principal.user_id is not None and uploaded_by(engine, principal.name, sha256)
