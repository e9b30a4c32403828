"""Shared fixtures: an isolated project folder per test, and real SQLite/PostgreSQL stores."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
POSTGRES_URL = os.environ.get("KEEL_TEST_POSTGRES_URL")
REQUIRE_POSTGRES = os.environ.get("KEEL_TEST_REQUIRE_POSTGRES") == "1"


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
