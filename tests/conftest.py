"""Shared fixtures: an isolated project folder per test, and real SQLite/PostgreSQL stores."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
POSTGRES_URL = os.environ.get("KEEL_TEST_POSTGRES_URL")
REQUIRE_POSTGRES = os.environ.get("KEEL_TEST_REQUIRE_POSTGRES") == "1"


#: the developer's own stores: a test that writes into either is a bug (see pytest_sessionfinish)
_WATCHED: dict[Path, object] = {}
_CHANGED: list[str] = []


def _snapshot(folder: Path) -> object:
    """What a .keel folder holds: (path, size, mtime) of each file, or None when there is none."""
    if not folder.is_dir():
        return None
    return sorted((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in folder.rglob("*") if f.is_file())


def pytest_configure(config: pytest.Config) -> None:
    for folder in (ROOT / ".keel", Path.home() / ".keel"):
        _WATCHED[folder] = _snapshot(folder)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when it changed the repository's or the home folder's .keel: a test that opened
    the default store without a project folder wrote runs into the developer's own."""
    changed = [str(folder) for folder, before in _WATCHED.items() if _snapshot(folder) != before]
    if changed:
        _CHANGED.extend(changed)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _CHANGED:
        terminalreporter.write_sep(
            "=",
            f"the tests wrote into {', '.join(_CHANGED)}: a test used the default store outside a temporary "
            "folder (give it the `project` fixture or an explicit tmp_path store)",
            red=True,
        )


@pytest.fixture(scope="session", autouse=True)
def _temporary_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """HOME is a temporary folder for the whole session (so nothing a test or its subprocesses write
    lands in the developer's home), and no .keel above the temporary folders may capture the tests'
    stores (keel walks up from the working directory to find one)."""
    from keel.config import find_keel_dir

    base = tmp_path_factory.getbasetemp()
    above = find_keel_dir(base)
    if above is not None:
        pytest.exit(f"{above} would be every test's store (keel walks up to it); move it away", returncode=4)
    home = tmp_path_factory.mktemp("home")
    old = os.environ.get("HOME")
    os.environ["HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("HOME", None)
    else:
        os.environ["HOME"] = old


@pytest.fixture(autouse=True)
def _temporary_working_directory(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every test starts in an empty folder of its own: one that opens the default store without the
    `project` fixture gets a store of its own there, never the repository's `.keel`."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No KEEL_* setting of the developer's leaks into a test; system metrics off unless asked."""
    for name in list(os.environ):
        if name.startswith("KEEL_") and not name.startswith("KEEL_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("KEEL_SYSTEM_METRICS", "false")
    yield
    from keel.tracking import fluent
    from keel.tracking.context import reset_contexts

    for run in list(fluent._stack):
        run.end()
    reset_contexts()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh project folder as the working directory; keel creates .keel/ in it."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "keel.toml").write_text('project = "default"\n')
    monkeypatch.chdir(folder)
    return folder


def _postgres_schema_url() -> Iterator[str]:
    if not POSTGRES_URL:
        pytest.skip(
            "PostgreSQL tests need KEEL_TEST_POSTGRES_URL (CI sets it; e.g. "
            "postgresql://postgres@127.0.0.1:5432/test)"
        )
    import psycopg

    schema = f"keel_t{uuid.uuid4().hex[:12]}"
    conninfo = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")
    try:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
    except psycopg.OperationalError as exc:
        if REQUIRE_POSTGRES:
            raise
        pytest.skip(f"PostgreSQL at {POSTGRES_URL} is not reachable: {exc}")
    separator = "&" if "?" in conninfo else "?"
    yield f"{conninfo}{separator}options=-csearch_path%3D{schema}"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped after the test."""
    yield from _postgres_schema_url()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The same test against SQLite and PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'keel.db'}"
    else:
        yield from _postgres_schema_url()


@pytest.fixture(params=["sql", "rest"])
def store(request: pytest.FixtureRequest, store_url: str, tmp_path: Path) -> Iterator[object]:
    """The store contract on each backend: the SQL store itself, and a ``RestStore`` talking to a
    live keel server (uvicorn on 127.0.0.1) in front of that SQL store."""
    if request.param == "sql":
        from keel.store.sql import SqlStore

        opened = SqlStore(store_url)
        yield opened
        opened.close()
        return
    if not store_url.startswith("sqlite"):
        pytest.skip("the REST store runs its contract over SQLite (the server's backend is covered above)")
    from keel.server.testing import ThreadedServer
    from keel.store.rest import RestStore

    # auth off (loopback only): the contract is about the store; tests/server covers auth
    with ThreadedServer(tmp_path / "server", auth=False, store_url=store_url) as server:
        client = RestStore(server.url, token=server.token, retries=1)
        client.server_engine = server.app.state.store.engine  # type: ignore[attr-defined]
        yield client
        client.close()


def run_python(
    code: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a Python snippet in a fresh interpreter (a real separate process)."""
    full_env = {**os.environ, "KEEL_SYSTEM_METRICS": "false", **(env or {})}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"subprocess failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def wait_for_http(process: subprocess.Popen[str], url: str, timeout: float, **get: Any) -> Any:
    """The first answer of ``url`` from a server ``process`` is starting (an ``httpx.Response``),
    or ``None`` once the process has exited or ``timeout`` seconds have passed."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            return httpx.get(url, timeout=10, **get)
        except httpx.TransportError:
            if process.poll() is not None or time.monotonic() > deadline:
                return None
            time.sleep(0.1)
