"""``create_app``: the keel server as one ASGI application.

::

    from keel.server.app import create_app
    from keel.server.config import ServerConfig

    app = create_app(ServerConfig(store_url="sqlite:///keel.db", artifact_uri="artifacts"))

The app keeps on ``app.state``: ``config`` (:class:`~keel.server.config.ServerConfig`), ``store``
(the metadata ``SqlStore``), ``artifacts`` (the server-side ``ArtifactStore``), ``auth``
(:class:`~keel.server.auth.AuthStore`), ``audit`` (:class:`~keel.server.audit.AuditLog`),
``throttle`` (:class:`~keel.server.throttle.LoginThrottle`) and ``projects`` (run/experiment id →
project look-ups used by policies).

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
    from keel.server.audit import AuditLog, Repeats
    from keel.server.audit_key import ensure_key
    from keel.server.auth import AuthStore
    from keel.server.limits import Guard
    from keel.server.policy import ProjectLookup, check_policies
    from keel.server.throttle import CheckBudget, LoginThrottle
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
    app.state.auth = AuthStore(
        engine,
        config.store_url,
        login_budget=CheckBudget(config.credential_checks, config.credential_check_queue, what="logins"),
        token_budget=CheckBudget(
            config.credential_checks, config.credential_check_queue, what="token checks"
        ),
    )
    app.state.throttle = LoginThrottle(
        engine,
        config.store_url,
        per_user=config.login_attempts,
        per_user_total=config.login_attempts_per_user,
        per_client=config.login_attempts_per_client,
        window_s=config.login_window_s,
    )
    app.state.audit = AuditLog(engine, config.store_url, ensure_key(_secret_file(config), engine))
    app.state.repeats = Repeats(config.audit_fold_window_s)
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
    from keel.server.ui import home_router
    from keel.server.ui import router as ui_router
    from keel.server.ui.routes import error_page, login_redirect

    app.include_router(ui_router)
    app.include_router(home_router)  # `/` (and MLflow's printed run links) lead to the UI
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
        if request.url.path.startswith("/api/2.0/mlflow"):
            # raised before the route's handler (by a policy): MLflow's codes, as the handler's own
            from keel.server.mlflow._common import mlflow_error

            return mlflow_error(exc, request)
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

    def summarize(everything: bool = False) -> None:
        """Audit rows for the denials folded in windows that ended."""
        for (actor, client, action, status, target), count in app.state.repeats.expired(everything):
            detail = {"repeated": count, "status": int(status), "client": client}
            app.state.audit.append(actor, action, target or "*", "denied", detail)

    def fold() -> None:
        while not stop.wait(app.state.repeats.window_s / 2):
            try:
                summarize()
            except Exception as exc:  # the store is away: the counts wait for the next round
                log.warning("could not write the audit summary of repeated denials: %s", exc)

    threads = [
        threading.Thread(target=watch, name="keel-crash-check", daemon=True),
        threading.Thread(target=fold, name="keel-audit-fold", daemon=True),
    ]
    for thread in threads:
        thread.start()
    recovery = _watch_dead_processes(app)
    try:
        yield
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            summarize(everything=True)
        if recovery is not None:
            recovery.close()


def _watch_dead_processes(app: FastAPI) -> Any:
    """Training processes on this machine that log straight to the server's store leave their
    points in the project's spool folder when they die: take them over within about a second and
    mark their runs CRASHED (ADR 012), instead of showing them RUNNING and incomplete until another
    keel process happens to open the store."""
    from pathlib import Path

    from keel.config import Settings
    from keel.store.base import default_locations
    from keel.tracking.writer import MetricWriter

    try:
        settings = Settings.load()
        keel_dir = default_locations(settings)[2]
        writer = MetricWriter(
            app.state.store,
            Path(settings.spool_dir) if settings.spool_dir else keel_dir / "spool",
            flush_interval=settings.flush_interval,
            commit_interval=settings.commit_interval,
            heartbeat_interval=settings.heartbeat_interval,
            offline_wait=settings.offline_wait,
        )
        writer.watch()
        return writer
    except Exception as exc:  # the server serves without it; the heartbeat check still runs
        log.warning("not watching for dead training processes' spools: %s", exc)
        return None


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


def _secret_file(config: ServerConfig) -> str:
    from keel.errors import ConfigError
    from keel.server.audit_key import default_secret_file

    path = config.secret_file or default_secret_file(config.store_url)
    if not path:
        raise ConfigError(
            "this store needs a secret file for the audit log's key: set secret_file in the "
            "server configuration (`keel server` defaults to .keel/server.secret)"
        )
    return path


def _auditor(app: FastAPI) -> Any:
    audit = app.state.audit
    repeats = app.state.repeats

    def record(scope: Any, status: int) -> None:
        principal = scope.get("keel.principal")
        actor = principal.name if principal is not None else "anonymous"
        route = scope.get("route")
        template = getattr(route, "path_format", None) or getattr(route, "path", None) or "-"
        denied = status in (401, 403, 429) or "keel.denied" in scope
        outcome = "ok" if status < 400 else ("denied" if denied else "failed")
        # an authenticated change that failed may have changed something first: it is audited too
        if status < 400 or status in (401, 403) or denied or principal is not None:
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
            if outcome == "denied":  # repeated denials are folded (a junk-token loop is one row)
                address = client[0] if client else "-"
                # a named target (a login's user name) is kept apart, except in throttled answers,
                # whose names an attacker can vary without bound
                target = (scope.get("keel.target") or "") if status != 429 else ""
                folded = repeats.note((actor, address, action, str(status), target))
                if folded is None:
                    return
                if folded:
                    detail["repeated_before"] = folded
            audit.append(actor, action, scope.get("keel.target") or scope["path"], outcome, detail)

    return record


def app_from_environment() -> FastAPI:
    """The app for a uvicorn worker (``--factory``), configured by ``keel server``."""
    return create_app(ServerConfig.from_environment())
