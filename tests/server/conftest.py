"""Live keel servers for the server tests (both the native and the MLflow-compatible API).

- ``live_server``: a fresh server (auth on, SQLite in tmp_path) per test; ``.url``, ``.token``
  (admin), ``.make_token(scope, project)``, ``.kill()``, ``.start()``.
- ``shared_server``: one server per test module, for tests that only need a running server.
- ``auth_headers(token)``: the Authorization header for a token.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from keel.server.testing import LiveServer


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    with LiveServer(tmp_path / "server") as server:
        yield server


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(tmp_path_factory.mktemp("server")) as server:
        yield server


def auth_headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
