"""Acceptance: the unmodified ``mlflow`` package tracks into a live keel server.

A training script in a subprocess (``MLFLOW_TRACKING_URI`` pointing at the server) uses
``mlflow.sklearn.autolog()``, logs params, metrics and artifacts, registers a model, sets an alias,
loads the model back by ``models:/name@alias`` and predicts; then ``mlflow.search_runs`` must show
what keel's own tools (``keel runs list --json`` on the server's store, and keel's ``RestStore``
through the server) show for the same runs.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from keel.server.testing import LiveServer

pytestmark = pytest.mark.slow

TRAINING_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import mlflow, mlflow.sklearn
    from mlflow import MlflowClient
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    mlflow.set_experiment("iris")
    mlflow.sklearn.autolog()
    with mlflow.start_run(run_name="train") as run:
        model = LogisticRegression(max_iter=300).fit(X, y)
        mlflow.log_params({"extra": "1", "solver_note": "lbfgs"})
        for step in range(5):
            mlflow.log_metric("val_loss", 1.0 / (step + 1), step=step)
        mlflow.log_metric("odd", float("nan"))
        mlflow.set_tag("team", "vision")
        mlflow.log_text("hello keel", "notes/hello.txt")
        mlflow.log_dict({"classes": 3}, "meta/info.json")
        info = mlflow.sklearn.log_model(
            model, name="model", registered_model_name="iris-clf", input_example=X[:2]
        )
    with mlflow.start_run(run_name="baseline"):
        mlflow.log_param("extra", "2")
        mlflow.log_metric("val_loss", 2.5)

    client = MlflowClient()
    client.set_registered_model_alias("iris-clf", "champion", info.registered_model_version)
    loaded = mlflow.pyfunc.load_model("models:/iris-clf@champion")
    frame = mlflow.search_runs(experiment_names=["iris"])
    filtered = mlflow.search_runs(
        experiment_names=["iris"], filter_string="params.extra = '1' and metrics.val_loss < 0.5"
    )
    out = {
        "train_run": run.info.run_id,
        "predicted": [int(v) for v in loaded.predict(X[:10])],
        "expected": [int(v) for v in model.predict(X[:10])],
        "alias_version": client.get_model_version_by_alias("iris-clf", "champion").version,
        "registered_version": info.registered_model_version,
        "history": [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "val_loss")],
        "artifacts": sorted(a.path for a in client.list_artifacts(run.info.run_id)),
        "notes": mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/notes/hello.txt"),
        "search": json.loads(frame.to_json(orient="records")),
        "columns": list(frame.columns),
        "filtered": list(filtered["run_id"]),
    }
    with open(sys.argv[1], "w") as handle:
        json.dump(out, handle)
    """
)


def _mlflow_env(server: LiveServer) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "KEEL_"))}
    env.update(
        MLFLOW_TRACKING_URI=server.url,
        MLFLOW_TRACKING_TOKEN=server.token,
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="true",
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="1",
    )
    return env


def _same(mlflow_value: Any, keel_value: float | str) -> bool:
    keel_number = float(keel_value)  # keel's --json writes NaN as "NaN"
    if mlflow_value is None:  # pandas writes NaN as null in JSON
        return math.isnan(keel_number)
    return math.isclose(float(mlflow_value), keel_number)


def test_mlflow_client_trains_registers_loads_and_searches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with LiveServer(tmp_path / "server") as server:
        script = tmp_path / "train.py"
        script.write_text(TRAINING_SCRIPT)
        out_file = tmp_path / "out.json"
        done = subprocess.run(
            [sys.executable, str(script), str(out_file)],
            env=_mlflow_env(server),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert done.returncode == 0, done.stderr[-4000:]
        out = json.loads(out_file.read_text())

        # the model came back through keel by alias and predicts what the trained one predicts
        assert out["predicted"] == out["expected"]
        assert out["alias_version"] == out["registered_version"] == "1"
        assert [step for step, _ in out["history"]] == [0, 1, 2, 3, 4]
        assert [value for _, value in out["history"]] == pytest.approx([1 / (s + 1) for s in range(5)])
        assert {"notes", "meta", "estimator.html"} <= set(out["artifacts"])
        assert out["notes"] == "hello keel"
        assert out["filtered"] == [out["train_run"]]

        # keel's CLI, reading the server's store directly, shows the same runs
        from typer.testing import CliRunner

        from keel.cli import app

        keel_env = {
            "KEEL_TRACKING_URI": server.config.store_url,
            "KEEL_ARTIFACT_URI": server.config.artifact_uri,
        }
        monkeypatch.chdir(tmp_path)
        (tmp_path / "keel.toml").write_text("")
        result = CliRunner().invoke(app, ["runs", "list", "-e", "iris", "--json"], env=keel_env)
        assert result.exit_code == 0, result.output
        keel_runs = {run["run_id"]: run for run in json.loads(result.output)}

        mlflow_runs = {row["run_id"]: row for row in out["search"]}
        assert set(mlflow_runs) == set(keel_runs) and len(keel_runs) == 2
        for run_id, row in mlflow_runs.items():
            keel_run = keel_runs[run_id]
            assert row["tags.mlflow.runName"] == keel_run["name"]
            assert row["status"] == keel_run["status"] == "FINISHED"
            params = {
                c[len("params.") :]: v for c, v in row.items() if c.startswith("params.") and v is not None
            }
            assert params == keel_run["params"]
            metrics = {c[len("metrics.") :]: v for c, v in row.items() if c.startswith("metrics.")}
            assert set(metrics) >= set(keel_run["metrics"])
            for key, value in keel_run["metrics"].items():
                assert _same(metrics[key], value), key
            for key, value in keel_run["tags"].items():
                if not key.startswith("keel.mlflow."):
                    assert row[f"tags.{key}"] == value
        train = keel_runs[out["train_run"]]
        assert train["params"]["extra"] == "1" and "max_iter" in train["params"]  # autolog's params
        assert math.isnan(float(train["metrics"]["odd"]))
        assert any(key.startswith("training_") for key in train["metrics"])  # autolog's metrics

        # keel's own client through the server (RestStore) agrees too
        from keel.store.rest import RestStore

        rest = RestStore(server.url, token=server.token)
        try:
            experiment = rest.get_experiment_by_name("iris")
            assert experiment is not None
            through_rest = {r.run_id: r for r in rest.search_runs([experiment.experiment_id])}
        finally:
            rest.close()
        assert set(through_rest) == set(keel_runs)
        assert dict(through_rest[out["train_run"]].params) == train["params"]

        # the registered version is pinned to the MLmodel bytes keel stores, and the files are run outputs
        from keel.store import open_store

        store: Any = open_store(server.config.store_url)
        version = store.get_model_version("iris-clf", 1)
        assert version.flavor == "mlflow" and version.run_id == out["train_run"]
        assert version.aliases == ("champion",)
        assert [edge.sha256 for edge in store.lineage(version.artifact_sha256)]


CLIENT_SCRIPT = textwrap.dedent(
    """
    import json, math, sys, tempfile, os
    import mlflow
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag, ViewType
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    out = {}
    eid = client.create_experiment("client-ops", tags={"team": "vision"})
    client.set_experiment_tag(eid, "stage", "dev")
    client.rename_experiment(eid, "client-ops-renamed")
    found = client.search_experiments(filter_string="name LIKE 'client-ops%' AND tags.team = 'vision'")
    out["experiments"] = [(e.name, e.tags.get("stage")) for e in found]
    client.delete_experiment(eid)
    out["deleted"] = [e.name for e in client.search_experiments(view_type=ViewType.DELETED_ONLY)]
    client.restore_experiment(eid)

    runs = []
    for i in range(5):
        run = client.create_run(eid, run_name=f"r{i}", tags={"i": str(i)})
        client.log_batch(
            run.info.run_id,
            metrics=[Metric("loss", 1.0 / (s + 1) + i, 1000 + s, s) for s in range(50)],
            params=[Param("lr", str(0.1 * i))],
            tags=[RunTag("kind", "sweep")],
        )
        client.set_terminated(run.info.run_id, "FINISHED" if i else "FAILED")
        runs.append(run.info.run_id)
    try:
        client.log_param(runs[1], "lr", "99")
        out["param_conflict"] = None
    except MlflowException as exc:
        out["param_conflict"] = exc.error_code
    page1 = client.search_runs([eid], "tags.kind = 'sweep'", order_by=["metrics.loss ASC"], max_results=2)
    page2 = client.search_runs(
        [eid], "tags.kind = 'sweep'", order_by=["metrics.loss ASC"], max_results=2, page_token=page1.token
    )
    out["pages"] = [r.info.run_id for r in list(page1) + list(page2)]
    out["runs"] = runs
    out["failed"] = [r.info.run_id for r in client.search_runs([eid], "attributes.status = 'FAILED'")]
    client.delete_run(runs[4])
    out["active_after_delete"] = len(client.search_runs([eid]))
    client.restore_run(runs[4])
    out["history"] = len(client.get_metric_history(runs[2], "loss"))
    with tempfile.TemporaryDirectory() as folder:
        os.makedirs(os.path.join(folder, "plots", "deep"))
        for name in ("plots/a.txt", "plots/deep/b.txt", "c.txt"):
            with open(os.path.join(folder, name), "w") as handle:
                handle.write(name)
        client.log_artifacts(runs[1], folder, artifact_path="out")
        target = client.download_artifacts(runs[1], "out/plots", tempfile.mkdtemp())
        out["downloaded"] = sorted(
            os.path.relpath(os.path.join(d, f), target) for d, _, fs in os.walk(target) for f in fs
        )

    client.create_registered_model("ops-model", tags={"owner": "ada"}, description="first")
    client.update_registered_model("ops-model", description="second")
    client.log_text(runs[1], "flavors: {}", "model/MLmodel")
    version = client.create_model_version("ops-model", f"runs:/{runs[1]}/model", run_id=runs[1])
    client.set_model_version_tag("ops-model", version.version, "checked", "yes")
    client.set_registered_model_alias("ops-model", "champion", version.version)
    client.rename_registered_model("ops-model", "ops-model-2")
    out["models"] = [(m.name, m.description) for m in client.search_registered_models("name LIKE 'ops-%'")]
    versions = client.search_model_versions("name = 'ops-model-2'")
    out["versions"] = [(v.version, v.tags.get("checked"), v.run_id) for v in versions]
    out["latest"] = [v.version for v in client.get_latest_versions("ops-model-2")]
    out["alias"] = client.get_model_version_by_alias("ops-model-2", "champion").version
    client.delete_registered_model_alias("ops-model-2", "champion")
    client.delete_model_version("ops-model-2", version.version)
    client.delete_registered_model("ops-model-2")
    try:
        client.get_registered_model("ops-model-2")
        out["gone"] = None
    except MlflowException as exc:
        out["gone"] = exc.error_code
    with open(sys.argv[1], "w") as handle:
        json.dump(out, handle)
    """
)


def test_mlflow_client_management_calls(tmp_path: Path) -> None:
    with LiveServer(tmp_path / "server") as server:
        script = tmp_path / "ops.py"
        script.write_text(CLIENT_SCRIPT)
        out_file = tmp_path / "out.json"
        done = subprocess.run(
            [sys.executable, str(script), str(out_file)],
            env=_mlflow_env(server),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert done.returncode == 0, done.stderr[-4000:]
        out = json.loads(out_file.read_text())
    assert out["experiments"] == [["client-ops-renamed", "dev"]]
    assert out["deleted"] == ["client-ops-renamed"]
    assert out["param_conflict"] == "INVALID_PARAMETER_VALUE"
    runs = out["runs"]
    assert out["pages"] == runs[:4]  # ordered by the latest loss: run i ends at 1/50 + i
    assert out["failed"] == [runs[0]]
    assert out["active_after_delete"] == 4
    assert out["history"] == 50
    assert out["downloaded"] == ["a.txt", "deep/b.txt"]
    assert out["models"] == [["ops-model-2", "second"]]
    assert out["versions"] == [["1", "yes", runs[1]]]
    assert out["latest"] == ["1"] and out["alias"] == "1"
    assert out["gone"] == "RESOURCE_DOES_NOT_EXIST"
