"""schemathesis fuzzes the native API from its OpenAPI schema: no input may cause a server error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from keel.server.testing import LiveServer


@pytest.mark.slow
def test_schemathesis_finds_no_server_errors(tmp_path):
    schemathesis = Path(sys.executable).parent / "schemathesis"
    if not schemathesis.exists():
        pytest.skip("schemathesis is not installed (pip install 'keel-mlops[dev]')")
    with LiveServer(tmp_path / "server") as server:
        operations = sum(
            len([m for m in item if m in ("get", "put", "post", "patch", "delete", "head")])
            for item in httpx.get(f"{server.url}/api/v1/openapi.json").json()["paths"].values()
        )
        result = subprocess.run(
            [
                str(schemathesis),
                "run",
                f"{server.url}/api/v1/openapi.json",
                "--checks",
                "not_a_server_error",
                "--header",
                f"Authorization: Bearer {server.token}",
                "--max-examples",
                "10",
                "--generation-deterministic",
                "--request-timeout",
                "30",
                "--report-dir",
                str(tmp_path / "report"),
            ],  # fmt: skip
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,
        )
        log = (server.folder / "server.log").read_text()
    assert result.returncode == 0, result.stdout[-8000:] + log[-4000:]
    assert f"Tested: {operations}" in result.stdout  # every operation of the schema was exercised
    assert "Traceback" not in log
