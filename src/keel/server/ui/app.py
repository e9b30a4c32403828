"""``create_ui_app``: the web UI on its own, over any store (what ``keel ui`` serves).

::

    from keel.server.ui.app import create_ui_app
    app = create_ui_app(client.store, client._context.artifacts)

The app answers only the loopback names (and ``allowed_hosts``), refuses state-changing requests
from other origins, and sends every page with a Content-Security-Policy that allows no inline
script or style. It has no authentication: serve it on loopback only (``keel server`` serves the
same router behind its own authentication).
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Sequence
from types import SimpleNamespace
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response

from keel.errors import NotFoundError
from keel.server.policy import remember
from keel.server.ui.routes import PAGE_CSP, SECURITY_HEADERS, error_page, home_router, router

__all__ = ["PAGE_CSP", "SECURITY_HEADERS", "StoreProjects", "create_ui_app", "serve_ui"]

_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class StoreProjects:
    """Run and experiment ids to project names through the ``Store`` protocol (any backend)."""

    def __init__(self, store: Any):
        self.store = store
        self._runs: dict[str, str] = {}
        self._lock = threading.Lock()

    def of_run(self, run_id: str) -> str | None:
        from keel.errors import KeelError

        found = self._runs.get(run_id)
        if found is None:
            try:
                run = self.store.get_run(run_id)
                found = self.store.get_experiment(run.experiment_id).project
            except KeelError:
                return None
            remember(self._runs, self._lock, run_id, found)
        return found

    def of_experiment(self, experiment_id: str) -> str | None:
        from keel.errors import KeelError

        try:
            return str(self.store.get_experiment(experiment_id).project)
        except KeelError:
            return None


def create_ui_app(
    store: Any,
    artifacts: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 5056,
    allowed_hosts: Sequence[str] = (),
) -> FastAPI:
    """The UI router in a small FastAPI app with authentication off (for a local store)."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    # what keel.server.policy reads: authentication off (loopback only)
    app.state.config = SimpleNamespace(auth=False, host=host, port=port)
    app.state.store = store
    app.state.artifacts = artifacts
    app.state.projects = StoreProjects(store)
    app.include_router(router)
    app.include_router(home_router)
    app.add_exception_handler(NotFoundError, error_page)  # a policy's 404 (an unknown record) as a page

    hosts = {"127.0.0.1", "localhost", "[::1]", host, *allowed_hosts}

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        # DNS rebinding: a page on another name must not reach the local store through this port
        header = request.headers.get("host", "")
        name = header.rsplit("]", 1)[0] + "]" if header.startswith("[") else header.rsplit(":", 1)[0]
        if name not in hosts:
            return PlainTextResponse(
                f"host {name!r} is not served; start keel ui with --host {name} to serve it", status_code=421
            )
        if request.method not in _SAFE_METHODS:
            origin = request.headers.get("origin")
            own = {f"http://{h}:{request.url.port or port}" for h in hosts}
            if origin is not None and origin not in own:
                return PlainTextResponse(f"changes from {origin} are refused (cross-site)", status_code=403)
            if origin is None and request.headers.get("sec-fetch-site", "same-origin") not in {
                "same-origin",
                "none",
            }:
                return PlainTextResponse("cross-site changes are refused", status_code=403)
        response = await call_next(request)
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        response.headers.setdefault("Content-Security-Policy", PAGE_CSP)
        return response

    return app


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def serve_ui(
    *,
    host: str = "127.0.0.1",
    port: int = 5056,
    open_browser: bool = True,
    tracking_uri: str | None = None,
    artifact_uri: str | None = None,
) -> None:
    """Serve the UI on the local store (the one ``keel.Client()`` finds) until interrupted."""
    import socket
    import sys
    import webbrowser

    from keel.errors import ConfigError
    from keel.tracking.client import Client

    if host not in LOOPBACK:
        raise ConfigError(
            f"keel ui has no authentication, so it serves loopback only (not {host!r}); "
            "for a team run `keel server`, which serves the same UI behind tokens"
        )
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {host}:{port} ({exc.strerror}); pick another with --port"
            ) from None
    if tracking_uri is None:
        from keel.config import require_project

        require_project()  # the UI only reads: it must not leave a new store where it was started
    client = Client(tracking_uri, artifact_uri)
    client._context.writer.watch()  # dead training processes' points and runs, within a second
    app = create_ui_app(client.store, client._context.artifacts, host=host, port=port)
    import uvicorn

    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/ui/"
    sys.stderr.write(f"keel ui on {url} (store {client.tracking_uri}); Ctrl+C stops it\n")
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    if open_browser:
        import threading

        def opener() -> None:
            import time

            while not server.started and not server.should_exit:
                time.sleep(0.05)
            if server.started:
                webbrowser.open(url)

        threading.Thread(target=opener, daemon=True).start()
    server.run()
