"""A real ``keel server`` in a subprocess on 127.0.0.1, for tests and benchmarks.

::

    with LiveServer(tmp_path) as server:
        httpx.get(f"{server.url}/api/v1/health")
        headers = {"Authorization": f"Bearer {server.token}"}   # an admin token

``LiveServer(folder, auth=True, workers=1, store_url=None, **config)`` keeps its SQLite store and
artifacts in ``folder`` (or uses ``store_url``), creates an admin user ``admin`` with an admin API
token (``server.token``) directly in the store before the first start, and serves on a free port.
``kill()`` sends SIGKILL; ``start()`` starts it again on the same port and store (at once with
``standby=True``, which keeps a next server process imported and waiting).
``make_token(scope, project)`` creates a user with that role and returns a token for it.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from keel.server.audit_key import default_secret_file
from keel.server.config import ENVIRONMENT_VARIABLE, ServerConfig

__all__ = ["LiveServer", "ThreadedServer", "free_port"]

# a server process that prepares everything (imports; with one worker, the app itself) and then
# waits for a line on stdin before it listens
_LAUNCHER = """
import sys
import uvicorn
from keel.server.app import app_from_environment
from keel.server.config import ServerConfig
from keel.server.connections import uvicorn_options
port, workers = int(sys.argv[1]), int(sys.argv[2])
options = uvicorn_options(ServerConfig.from_environment())
app = app_from_environment() if workers == 1 else None
sys.stdin.readline()
if app is not None:
    uvicorn.run(app, host="127.0.0.1", port=port, **options)
else:
    uvicorn.run("keel.server.app:app_from_environment", factory=True, host="127.0.0.1", port=port,
                workers=workers, **options)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    def __init__(
        self,
        folder: Path,
        *,
        auth: bool = True,
        workers: int = 1,
        store_url: str | None = None,
        port: int | None = None,
        standby: bool = False,
        **config: Any,
    ):
        folder.mkdir(parents=True, exist_ok=True)
        #: after kill(), start the next server process at once (imports done before start())
        self.standby = standby
        self._standby: subprocess.Popen[bytes] | None = None
        self.folder = folder
        self.port = port or free_port()
        self.workers = workers
        self.config = ServerConfig(
            store_url=store_url or f"sqlite:///{folder / 'server.db'}",
            artifact_uri=str(folder / "server-artifacts"),
            host="127.0.0.1",
            port=self.port,
            auth=auth,
            **config,
        )
        if not self.config.secret_file and default_secret_file(self.config.store_url) is None:
            self.config = dataclasses.replace(self.config, secret_file=str(folder / "server.secret"))
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = ""
        self.process: subprocess.Popen[bytes] | None = None
        self._users = 0
        if auth:
            self.token = self._admin_token()

    def _auth(self) -> Any:
        from keel.server.auth import AuthStore
        from keel.store.base import open_store

        store: Any = open_store(self.config.store_url)
        return AuthStore(store.engine, self.config.store_url)

    def _admin_token(self) -> str:
        auth = self._auth()
        if "admin" not in {t.user for t in auth.list_tokens()}:
            auth.create_user("admin", is_admin=True)
        token, _ = auth.create_token("admin", scope="admin", description="LiveServer")
        return str(token)

    def make_token(self, scope: str, project: str = "default", *, role: str | None = None) -> str:
        """A new user holding ``role`` (default: ``scope``) on ``project``, and a token with ``scope``."""
        auth = self._auth()
        self._users += 1
        name = f"user{self._users}-{scope}"
        auth.create_user(name)
        auth.set_role(name, project, role or scope)
        token, _ = auth.create_token(name, project=project, scope=scope)
        return str(token)

    def _spawn(self) -> subprocess.Popen[bytes]:
        """A server process that has imported everything and waits for a line on stdin to listen
        (so a restart after ``kill()`` takes a fraction of a second instead of the imports)."""
        env = {**os.environ, ENVIRONMENT_VARIABLE: self.config.to_json()}
        command = [sys.executable, "-c", _LAUNCHER, str(self.port), str(self.workers)]
        log = open(self.folder / "server.log", "ab")  # noqa: SIM115 - the child keeps its own copy
        try:
            return subprocess.Popen(
                command, env=env, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT
            )
        finally:
            log.close()

    def start(self, timeout: float = 60.0) -> LiveServer:
        process, self._standby = self._standby or self._spawn(), None
        assert process.stdin is not None
        process.stdin.write(b"go\n")
        process.stdin.flush()
        self.process = process
        self.wait_ready(timeout)
        if self.standby:  # the next server process imports while this one serves
            self._standby = self._spawn()
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"keel server exited: {(self.folder / 'server.log').read_text()[-4000:]}")
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"keel server did not start in {timeout} s")

    def kill(self) -> None:
        """SIGKILL the server and its workers (no clean shutdown)."""
        if self.process is None:
            return
        try:
            import psutil

            children = psutil.Process(self.process.pid).children(recursive=True)
        except Exception:
            children = []
        self.process.send_signal(signal.SIGKILL)
        for child in children:
            try:
                child.kill()
            except Exception:
                pass
        self.process.wait()
        self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
        self.process = None
        if self._standby is not None:
            self._standby.kill()
            self._standby.wait()
            self._standby = None

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ThreadedServer:
    """A keel server app on uvicorn in a thread of this process (starts in ~0.1 s, for tests that
    need a fresh server each); a real HTTP server on 127.0.0.1 all the same."""

    def __init__(self, folder: Path, *, auth: bool = False, **config: Any):
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.config = ServerConfig(
            store_url=config.pop("store_url", None) or f"sqlite:///{folder / 'server.db'}",
            artifact_uri=str(folder / "server-artifacts"),
            port=self.port,
            auth=auth,
            **config,
        )
        if not self.config.secret_file and default_secret_file(self.config.store_url) is None:
            self.config = dataclasses.replace(self.config, secret_file=str(folder / "server.secret"))
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = ""
        self._server: Any = None
        self._thread: Any = None
        self.app: Any = None

    def start(self) -> ThreadedServer:
        import threading

        import uvicorn

        from keel.server.app import create_app

        app = self.app = create_app(self.config)
        if self.config.auth:
            auth = app.state.auth
            auth.create_user("admin", is_admin=True)
            self.token, _ = auth.create_token("admin", scope="admin")
        from keel.server.connections import uvicorn_options

        options = uvicorn_options(self.config)
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, **options)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True, name="keel-test-server")
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the threaded keel server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            self._server = None

    def __enter__(self) -> ThreadedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
