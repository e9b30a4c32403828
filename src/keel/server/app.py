"""``create_app``: the keel server as one ASGI application.

::

    from keel.server.app import create_app
    from keel.server.config import ServerConfig

    app = create_app(ServerConfig(store_url="sqlite:///keel.db", artifact_uri="artifacts"))

The app keeps on ``app.state``: ``config`` (:class:`~keel.server.config.ServerConfig`), ``store``
(the metadata ``SqlStore``), ``artifacts`` (the server-side ``ArtifactStore``), ``auth``
(:class:`~keel.server.auth.AuthStore`), ``audit`` (:class:`~keel.server.audit.AuditLog`) and
``projects`` (run/experiment id → project look-ups used by policies).

Routers: the native API (:mod:`keel.server.api`) at ``/api/v1`` with its OpenAPI schema at
``/api/v1/openapi.json``; the MLflow-compatible API, ``keel.server.mlflow.router`` at
``/api/2.0/mlflow`` and ``keel.server.mlflow.artifacts_router`` at ``/api/2.0/mlflow-artifacts``; the
web UI (:mod:`keel.server.ui`) at ``/ui``. Every route must declare a
policy (:mod:`keel.server.policy`); the app refuses to start otherwise. Request guards (Host,
Origin, path sanity, body limits, JSON parsing, audit) are in :mod:`keel.server.limits`.

Other routers: build them as ``APIRouter(route_class=keel.server.limits.KeelRoute)`` so that
return values are sent as they are (NaN and infinities kept; a response model would turn them into
null), declare a policy on every route (:mod:`keel.server.policy`), and read the store with
``get_store(request)``. A parsed JSON body is also in ``request.scope["keel.json"]``. Tests must
use a live server (``tests/server/conftest.py``): the Host guard refuses TestClient's "testserver".

Errors: a :class:`~keel.errors.KeelError` raised by a route becomes a JSON error with its status
(404 not found, 409 conflict, 400 bad input, 413 over a limit, 503 store unavailable); FastAPI's
request validation errors become 400. Routes are plain ``def`` functions (run in the threadpool)
because the store is synchronous.

Workers started by ``keel server`` (uvicorn, ``--workers N``) build the app with
:func:`app_from_environment`; they share nothing but the database and the artifact store.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from keel.errors import ConflictError, KeelError
from keel.server.config import ServerConfig
from keel.server.limits import KeelJSONResponse, error_body, error_response

__all__ = ["app_from_environment", "create_app"]

log = logging.getLogger("keel.server")


def create_app(config: ServerConfig) -> FastAPI:
    from keel.artifacts.store import ArtifactStore
    from keel.server import api
    from keel.server.audit import AuditLog
    from keel.server.auth import AuthStore
    from keel.server.limits import Guard
    from keel.server.policy import ProjectLookup, check_policies
    from keel.store.base import open_store

    store: Any = open_store(config.store_url)
    engine = store.engine
    if engine.dialect.name == "sqlite":
        _unmap(engine)
    app = FastAPI(
        title="keel",
        version="1",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        default_response_class=KeelJSONResponse,
        lifespan=_lifespan,
    )
    app.state.config = config
    app.state.store = store
    app.state.artifacts = ArtifactStore(config.artifact_uri)
    app.state.auth = AuthStore(engine, config.store_url)
    app.state.audit = AuditLog(engine, config.store_url)
    app.state.projects = ProjectLookup(engine)

    app.include_router(api.router, prefix="/api/v1")
    try:
        from keel.server import mlflow as mlflow_api
    except ModuleNotFoundError as exc:
        if exc.name != "keel.server.mlflow":
            raise
    else:
        mlflow_router = getattr(mlflow_api, "router", None)
        if mlflow_router is not None:
            app.include_router(mlflow_router, prefix="/api/2.0/mlflow")
        artifacts_router = getattr(mlflow_api, "artifacts_router", None)
        if artifacts_router is not None:
            app.include_router(artifacts_router, prefix="/api/2.0/mlflow-artifacts")
    from keel.errors import NotFoundError
    from keel.server.ui import PREFIX as UI_PREFIX
    from keel.server.ui import router as ui_router
    from keel.server.ui.routes import error_page, login_redirect

    app.include_router(ui_router)
    api.add_schema_route(app)
    _match_prefix_first(app)

    @app.exception_handler(StarletteHTTPException)
    def _http_error(request: Request, exc: StarletteHTTPException) -> Any:
        redirect = login_redirect(request, exc.status_code)  # a browser without a session: sign in
        if redirect is not None:
            return redirect
        kind = {401: "Unauthenticated", 403: "PermissionDenied", 429: "TooManyRequests"}.get(
            exc.status_code, "HTTPError"
        )
        return KeelJSONResponse(
            error_body(exc.status_code, str(exc.detail), kind),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(RequestValidationError)
    def _invalid(request: Request, exc: RequestValidationError) -> KeelJSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error.get('loc', ()))}: {error.get('msg')}" for error in exc.errors()
        )
        return KeelJSONResponse(
            error_body(400, f"invalid request: {problems}", "InvalidInputError"), status_code=400
        )

    @app.exception_handler(KeelError)
    def _keel_error(request: Request, exc: Exception) -> KeelJSONResponse:
        response = error_response(exc, request.app.state)
        if response.status_code >= 500:
            log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return response

    @app.exception_handler(NotFoundError)
    def _not_found(request: Request, exc: Exception) -> Any:
        if request.url.path.startswith(f"{UI_PREFIX}/"):  # a policy refused a page's record: a page
            return error_page(request, exc)
        return _keel_error(request, exc)

    @app.exception_handler(IntegrityError)
    def _integrity(request: Request, exc: Exception) -> KeelJSONResponse:
        # a constraint of the database refused the change (a duplicate id, a record still in use)
        detail = str(getattr(exc, "orig", exc)).splitlines()[0][:300]
        return error_response(ConflictError(f"the change conflicts with stored records ({detail})"))

    @app.exception_handler(Exception)
    def _error(request: Request, exc: Exception) -> KeelJSONResponse:
        return error_response(exc)  # uvicorn logs the traceback: this is a bug in keel

    check_policies(app.routes)
    app.add_middleware(Guard, config=config, audit=_auditor(app))
    return app


#: seconds after a worker starts before it first marks silent runs CRASHED (clients need time to
#: send heartbeats after an outage), and between checks afterwards
CRASH_CHECK_GRACE_S = 60.0
CRASH_CHECK_EVERY_S = 30.0


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """While the worker serves, a thread marks CRASHED the runs whose clients stopped sending
    heartbeats (a run otherwise stays RUNNING forever when its training process dies)."""
    stop = threading.Event()

    def watch() -> None:
        wait = CRASH_CHECK_GRACE_S
        while not stop.wait(wait):
            wait = CRASH_CHECK_EVERY_S
            try:
                crashed = app.state.store.mark_crashed_runs()
                if crashed:
                    log.warning("marked %d silent runs CRASHED", len(crashed))
            except Exception as exc:  # the store is away: try again next time
                log.warning("could not check for crashed runs: %s", exc)

    thread = threading.Thread(target=watch, name="keel-crash-check", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()


def _unmap(engine: Any) -> None:
    """No memory-mapped reads of the SQLite file in the server: mapped pages would count in each
    worker's resident memory (up to the 256 MB the client's store maps), while the page cache
    serves the same reads."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _no_mmap(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA mmap_size = 0")

    engine.dispose()  # connections opened before (migration, crash check) reconnect without it


def _match_prefix_first(app: FastAPI) -> None:
    """Let each included router (the native API, the MLflow APIs) refuse a request outside its
    prefix at once. FastAPI tries every route of every router in turn, and an MLflow log-batch
    request spent ~0.3 ms matching against the native API's routes first."""
    from starlette.routing import Match, get_route_path  # type: ignore[attr-defined]

    for route in app.router.routes:
        prefix = getattr(getattr(route, "include_context", None), "prefix", "")
        if not prefix:
            continue
        original = route.matches

        def matches(scope: Any, original: Any = original, prefix: str = prefix) -> Any:
            path = get_route_path(scope)
            if path == prefix or path.startswith(prefix + "/"):
                return original(scope)
            return Match.NONE, {}

        route.matches = matches  # type: ignore[method-assign]


def _auditor(app: FastAPI) -> Any:
    audit = app.state.audit

    def record(scope: Any, status: int) -> None:
        principal = scope.get("keel.principal")
        actor = principal.name if principal is not None else "anonymous"
        route = scope.get("route")
        template = getattr(route, "path_format", None) or getattr(route, "path", None) or "-"
        outcome = "ok" if status < 400 else ("denied" if status in (400, 401, 403, 429) else "failed")
        if status < 400 or status in (401, 403) or "keel.denied" in scope:
            detail: dict[str, Any] = {"status": status, "route": template}
            client = scope.get("client")
            if client:
                detail["client"] = client[0]
            if scope.get("keel.project") is not None:
                detail["project"] = scope["keel.project"]
            if scope.get("keel.denied"):
                detail["reason"] = scope["keel.denied"]
            if scope.get("keel.audit"):
                detail.update(scope["keel.audit"])
            action = scope.get("keel.action") or f"{scope['method']} {template}"
            audit.append(actor, action, scope.get("keel.target") or scope["path"], outcome, detail)

    return record


def app_from_environment() -> FastAPI:
    """The app for a uvicorn worker (``--factory``), configured by ``keel server``."""
    return create_app(ServerConfig.from_environment())
