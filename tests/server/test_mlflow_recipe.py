"""The recipe in docs/mlflow-compatibility.md, command for command, against a live ``keel server``.

The shell blocks of "Pointing MLflow at keel" are run as written (only the port and the printed token
are filled in); then MLflow's own client trains, registers a model and points ``@champion`` at it,
which is what a reader following the recipe does next.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from keel.server.testing import free_port
from tests.conftest import ROOT, wait_for_http

pytestmark = pytest.mark.slow
pytest.importorskip("mlflow", reason="the recipe is checked with MLflow's own client (keel-mlops[dev])")

KEEL = str(Path(sys.executable).with_name("keel"))

SCRIPT = textwrap.dedent(
    """
    import mlflow, mlflow.sklearn
    from mlflow import MlflowClient
    from sklearn.linear_model import LogisticRegression

    mlflow.set_experiment("recipe")
    with mlflow.start_run():
        mlflow.log_metric("acc", 0.9)
        model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name="recipe-clf")
    client = MlflowClient()
    client.set_registered_model_alias("recipe-clf", "champion", info.registered_model_version)
    print("champion", client.get_model_version_by_alias("recipe-clf", "champion").version)
    """
)


def recipe() -> tuple[list[str], list[str]]:
    """(keel commands, export lines) of the section "Pointing MLflow at keel"."""
    text = (ROOT / "docs" / "mlflow-compatibility.md").read_text()
    section = text.split("## Pointing MLflow at keel", 1)[1].split("\n## ", 1)[0]
    lines = [
        line.split("  #", 1)[0].strip()
        for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S)
        for line in block.splitlines()
    ]
    return [line for line in lines if line.startswith("keel ")], [
        line for line in lines if line.startswith("export ")
    ]


def test_the_mlflow_recipe_registers_a_model_and_sets_its_alias(tmp_path: Path) -> None:
    commands, exports = recipe()
    assert commands[0].startswith("keel server ") and len(commands) == 4
    port = str(free_port())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEEL_", "MLFLOW_"))}
    env["KEEL_SYSTEM_METRICS"] = "false"
    server = subprocess.Popen(
        [KEEL, *shlex.split(commands[0].replace("5055", port))[1:]],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        if wait_for_http(server, f"http://127.0.0.1:{port}/api/v1/health", 60) is None:
            raise AssertionError(server.stderr.read() if server.stderr else "no output")
        token = ""
        for command in commands[1:]:
            result = subprocess.run(
                [KEEL, *shlex.split(command)[1:]], cwd=tmp_path, env=env, capture_output=True, text=True
            )
            assert result.returncode == 0, (command, result.stderr)
            token = result.stdout.strip() or token
        assert token.startswith("keel_")
        client_env = dict(env)
        for line in exports:
            name, _, value = line.removeprefix("export ").partition("=")
            client_env[name] = token if name == "MLFLOW_TRACKING_TOKEN" else value.replace("5055", port)
        client_env["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "1"
        trained = subprocess.run(
            [sys.executable, "-c", SCRIPT],
            cwd=tmp_path,
            env=client_env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert trained.returncode == 0, trained.stderr[-3000:]
        assert "champion 1" in trained.stdout
    finally:
        server.terminate()
        server.wait(20)
