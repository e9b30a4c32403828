"""Deny by default: every route of the app (native and MLflow-compatible) declares a policy."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, FastAPI

from keel.server.app import create_app
from keel.server.config import ServerConfig
from keel.server.policy import PolicyMissingError, check_policies, policy_of, require, walk_routes


@pytest.fixture
def app(tmp_path):
    return create_app(
        ServerConfig(store_url=f"sqlite:///{tmp_path / 'k.db'}", artifact_uri=str(tmp_path / "a"))
    )


def test_every_route_declares_a_policy(app):
    routes = walk_routes(app.routes)
    assert len(routes) > 40  # the walk sees routes inside included routers
    missing = [f"{sorted(m)} {p}" for p, m, r in routes if policy_of(r) is None]
    assert missing == []
    paths = {p for p, _, _ in routes}
    assert "/api/v1/runs/{run_id}/metrics/batches" in paths


def test_a_route_without_policy_stops_the_app():
    router = APIRouter()

    @router.get("/open")
    def open_route() -> dict:
        return {}

    @router.get("/closed", dependencies=[require("read")])
    def closed_route() -> dict:
        return {}

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.include_router(router, prefix="/api/v1")
    with pytest.raises(PolicyMissingError, match=r"/api/v1/open") as caught:
        check_policies(app.routes)
    assert "/closed" not in str(caught.value)


def test_router_level_policies_count():
    router = APIRouter(dependencies=[require("write")])

    @router.post("/x")
    def x() -> dict:
        return {}

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.include_router(router, prefix="/api/2.0/mlflow")
    check_policies(app.routes)


def test_error_messages_never_carry_storage_locations():
    import json
    from types import SimpleNamespace

    from keel.errors import NotFoundError, StoreError
    from keel.server.limits import error_response

    state = SimpleNamespace(
        store=SimpleNamespace(url="postgresql://keel@db.internal/keel"),
        artifacts=SimpleNamespace(uri="s3://secret-bucket/keel"),
    )
    gone = NotFoundError("artifact blob abc is missing from s3://secret-bucket/keel")
    failed = StoreError("the metadata store postgresql://keel@db.internal/keel failed: timeout")
    missing, down = error_response(gone, state), error_response(failed, state)
    for response in (missing, down):
        text = json.dumps(json.loads(response.body))
        assert "secret-bucket" not in text and "db.internal" not in text
    assert b"the artifact store" in missing.body and b"the server's store" in down.body
