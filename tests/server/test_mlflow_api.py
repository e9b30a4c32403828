"""The MLflow-compatible API route by route, over HTTP against a live keel server."""

from __future__ import annotations

import hashlib
import json
import math
import urllib.parse
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from keel.server.testing import LiveServer

API = "/api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


@pytest.fixture(scope="module")
def server(shared_server: LiveServer) -> LiveServer:
    return shared_server


@pytest.fixture(scope="module")
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {server.token}"}) as client:
        yield client


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return json.loads(response.text)  # json.loads reads NaN and Infinity


def error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error_code"] == code
    return str(body["message"])


_names = iter(range(1_000_000))


def experiment(http: httpx.Client, **fields: Any) -> str:
    name = f"exp-{next(_names)}"
    return str(ok(http.post(f"{API}/experiments/create", json={"name": name, **fields}))["experiment_id"])


def new_run(http: httpx.Client, experiment_id: str | None = None, **fields: Any) -> str:
    body = {"experiment_id": experiment_id or experiment(http), "start_time": 1000, **fields}
    return str(ok(http.post(f"{API}/runs/create", json=body))["run"]["info"]["run_id"])


# -- experiments -------------------------------------------------------------------------------
def test_experiment_lifecycle_and_tags(http: httpx.Client) -> None:
    eid = experiment(http, tags=[{"key": "team", "value": "vision"}])
    got = ok(http.get(f"{API}/experiments/get", params={"experiment_id": eid}))["experiment"]
    assert got["lifecycle_stage"] == "active"
    assert got["artifact_location"] == f"mlflow-artifacts:/experiments/{eid}"
    assert {"key": "team", "value": "vision"} in got["tags"]
    name = got["name"]
    assert (
        ok(http.get(f"{API}/experiments/get-by-name", params={"experiment_name": name}))["experiment"][
            "experiment_id"
        ]
        == eid
    )

    ok(http.post(f"{API}/experiments/update", json={"experiment_id": eid, "new_name": name + "-renamed"}))
    ok(
        http.post(
            f"{API}/experiments/set-experiment-tag", json={"experiment_id": eid, "key": "k", "value": "v"}
        )
    )
    tags = ok(http.get(f"{API}/experiments/get", params={"experiment_id": eid}))["experiment"]["tags"]
    assert {"key": "k", "value": "v"} in tags
    ok(http.post(f"{API}/experiments/delete-experiment-tag", json={"experiment_id": eid, "key": "k"}))
    error(
        http.post(f"{API}/experiments/delete-experiment-tag", json={"experiment_id": eid, "key": "k"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )

    found = ok(http.post(f"{API}/experiments/search", json={"filter": f"name = '{name}-renamed'"}))
    assert [e["experiment_id"] for e in found["experiments"]] == [eid]
    ok(http.post(f"{API}/experiments/delete", json={"experiment_id": eid}))
    active = ok(http.post(f"{API}/experiments/search", json={"filter": f"name LIKE '{name}%'"}))
    assert active.get("experiments", []) == []
    deleted = ok(
        http.post(
            f"{API}/experiments/search", json={"filter": f"name LIKE '{name}%'", "view_type": "DELETED_ONLY"}
        )
    )
    assert [e["experiment_id"] for e in deleted["experiments"]] == [eid]
    ok(http.post(f"{API}/experiments/restore", json={"experiment_id": eid}))
    assert (
        ok(http.get(f"{API}/experiments/get", params={"experiment_id": eid}))["experiment"]["lifecycle_stage"]
        == "active"
    )


def test_experiment_errors_are_mlflow_errors(http: httpx.Client) -> None:
    error(
        http.get(f"{API}/experiments/get-by-name", params={"experiment_name": "no-such-experiment"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    eid = experiment(http)
    name = ok(http.get(f"{API}/experiments/get", params={"experiment_id": eid}))["experiment"]["name"]
    error(http.post(f"{API}/experiments/create", json={"name": name}), 400, "RESOURCE_ALREADY_EXISTS")
    error(http.post(f"{API}/experiments/create", json={}), 400, "INVALID_PARAMETER_VALUE")
    message = error(
        http.post(f"{API}/experiments/create", json={"name": "x-loc", "artifact_location": "/etc"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert "server configuration" in message
    error(
        http.post(f"{API}/experiments/search", json={"filter": "name ~ 'x'"}), 400, "INVALID_PARAMETER_VALUE"
    )
    error(
        http.post(f"{API}/experiments/search", json={"order_by": ["size DESC"]}),
        400,
        "INVALID_PARAMETER_VALUE",
    )


def test_reading_the_default_experiment_does_not_create_it(live_server: LiveServer) -> None:
    headers = {"Authorization": f"Bearer {live_server.make_token('read')}"}
    with httpx.Client(base_url=live_server.url, headers=headers) as reader:
        error(
            reader.get(f"{API}/experiments/get", params={"experiment_id": "0"}),
            404,
            "RESOURCE_DOES_NOT_EXIST",
        )
        assert ok(reader.post(f"{API}/runs/search", json={"experiment_ids": ["0"]})) == {"runs": []}
        error(
            reader.get(f"{API}/experiments/get-by-name", params={"experiment_name": "Default"}),
            404,
            "RESOURCE_DOES_NOT_EXIST",
        )


def test_default_experiment_zero(http: httpx.Client) -> None:
    run_id = new_run(http, "0")
    run = ok(http.get(f"{API}/runs/get", params={"run_id": run_id}))["run"]
    default = ok(http.get(f"{API}/experiments/get", params={"experiment_id": "0"}))["experiment"]
    assert default["name"] == "Default" and run["info"]["experiment_id"] == default["experiment_id"]


# -- runs --------------------------------------------------------------------------------------
def test_run_create_get_update_delete_restore(http: httpx.Client) -> None:
    eid = experiment(http)
    run_id = new_run(http, eid, run_name="first", tags=[{"key": "team", "value": "a"}])
    run = ok(http.get(f"{API}/runs/get", params={"run_id": run_id}))["run"]
    assert run["info"]["run_name"] == "first" and run["info"]["status"] == "RUNNING"
    assert run["info"]["artifact_uri"] == f"mlflow-artifacts:/runs/{run_id}"
    assert {"key": "team", "value": "a"} in run["data"]["tags"]
    info = ok(
        http.post(
            f"{API}/runs/update",
            json={"run_id": run_id, "status": "FINISHED", "end_time": 5000, "run_name": "x"},
        )
    )["run_info"]
    assert (info["status"], info["end_time"], info["run_name"]) == ("FINISHED", 5000, "x")
    ok(http.post(f"{API}/runs/delete", json={"run_id": run_id}))
    assert (
        ok(http.get(f"{API}/runs/get", params={"run_id": run_id}))["run"]["info"]["lifecycle_stage"]
        == "deleted"
    )
    ok(http.post(f"{API}/runs/restore", json={"run_id": run_id}))
    assert (
        ok(http.get(f"{API}/runs/get", params={"run_id": run_id}))["run"]["info"]["lifecycle_stage"]
        == "active"
    )
    error(
        http.post(f"{API}/runs/update", json={"run_id": run_id, "status": "BOGUS"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    message = error(http.get(f"{API}/runs/get", params={"run_id": "0" * 32}), 404, "RESOURCE_DOES_NOT_EXIST")
    assert "0" * 32 in message and "server.db" not in message  # no server paths for remote clients
    error(http.get(f"{API}/runs/get", params={"run_id": "../etc"}), 400, "INVALID_PARAMETER_VALUE")


def test_params_tags_and_metrics_with_special_values(http: httpx.Client) -> None:
    run_id = new_run(http)
    ok(http.post(f"{API}/runs/log-parameter", json={"run_id": run_id, "key": "lr", "value": "0.1"}))
    ok(http.post(f"{API}/runs/log-parameter", json={"run_id": run_id, "key": "lr", "value": "0.1"}))
    message = error(
        http.post(f"{API}/runs/log-parameter", json={"run_id": run_id, "key": "lr", "value": "0.2"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert "immutable" in message
    ok(http.post(f"{API}/runs/set-tag", json={"run_id": run_id, "key": "note", "value": "hi"}))
    ok(http.post(f"{API}/runs/delete-tag", json={"run_id": run_id, "key": "note"}))
    error(
        http.post(f"{API}/runs/delete-tag", json={"run_id": run_id, "key": "note"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )

    ok(
        http.post(
            f"{API}/runs/log-metric",
            json={"run_id": run_id, "key": "m", "value": 1.5, "step": 0, "timestamp": 7},
        )
    )
    batch = {
        "run_id": run_id,
        "metrics": [
            {"key": "m", "value": "NaN", "step": 1, "timestamp": 8},
            {"key": "m", "value": "Infinity", "step": 2, "timestamp": 9},
            {"key": "m", "value": "-Infinity", "step": 3, "timestamp": "10"},
        ],
        "params": [{"key": "depth", "value": "3"}],
        "tags": [{"key": "stage", "value": "dev"}],
    }
    ok(http.post(f"{API}/runs/log-batch", json=batch))
    history = ok(http.get(f"{API}/metrics/get-history", params={"run_id": run_id, "metric_key": "m"}))[
        "metrics"
    ]
    values = [float(m["value"]) for m in history]
    assert values[0] == 1.5 and math.isnan(values[1]) and values[2:] == [math.inf, -math.inf]
    assert [m["step"] for m in history] == [0, 1, 2, 3]
    page = ok(
        http.get(f"{API}/metrics/get-history", params={"run_id": run_id, "metric_key": "m", "max_results": 3})
    )
    assert len(page["metrics"]) == 3 and page["next_page_token"]
    rest = ok(
        http.get(
            f"{API}/metrics/get-history",
            params={
                "run_id": run_id,
                "metric_key": "m",
                "max_results": 3,
                "page_token": page["next_page_token"],
            },
        )
    )
    assert [m["step"] for m in rest["metrics"]] == [3] and "next_page_token" not in rest
    data = ok(http.get(f"{API}/runs/get", params={"run_id": run_id}))["run"]["data"]
    assert {"key": "depth", "value": "3"} in data["params"] and {"key": "stage", "value": "dev"} in data[
        "tags"
    ]
    assert [m["value"] for m in data["metrics"]] == ["-Infinity"]

    error(
        http.post(f"{API}/runs/log-metric", json={"run_id": run_id, "key": "m", "value": "lots"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    for bad in ({"step": 1.5}, {"step": True}, {"timestamp": "soon"}, {"step": 2**63}, {"value": 10**400}):
        point = {"key": "m", "value": 1.0, **bad}
        error(
            http.post(f"{API}/runs/log-batch", json={"run_id": run_id, "metrics": [point]}),
            400,
            "INVALID_PARAMETER_VALUE",
        )
    too_many = {"run_id": run_id, "metrics": [{"key": "x", "value": 1, "step": i} for i in range(10_001)]}
    message = error(http.post(f"{API}/runs/log-batch", json=too_many), 400, "INVALID_PARAMETER_VALUE")
    assert "10,000" in message
    error(
        http.post(f"{API}/runs/log-batch", json={"run_id": run_id, "metrics": [{"key": "../x", "value": 1}]}),
        400,
        "INVALID_PARAMETER_VALUE",
    )


def test_history_bulk_interval_samples_each_run(http: httpx.Client) -> None:
    eid = experiment(http)
    runs = [new_run(http, eid) for _ in range(2)]
    for run_id in runs:
        points = [{"key": "loss", "value": i / 10, "step": i, "timestamp": i} for i in range(100)]
        ok(http.post(f"{API}/runs/log-batch", json={"run_id": run_id, "metrics": points}))
    params: Any = [("run_ids", r) for r in runs] + [
        ("metric_key", "loss"),
        ("start_step", "10"),
        ("end_step", "59"),
        ("max_results", "5"),
    ]
    metrics = ok(http.get(f"{API}/metrics/get-history-bulk-interval", params=params))["metrics"]
    for run_id in runs:
        steps = [m["step"] for m in metrics if m["run_id"] == run_id]
        assert len(steps) == 5 and steps[0] == 10 and steps[-1] == 59 and steps == sorted(steps)


def test_search_runs_with_mlflow_filters_order_and_pages(http: httpx.Client) -> None:
    eid = experiment(http)
    ids = []
    for i in range(5):
        run_id = new_run(http, eid, run_name=f"r{i}", start_time=1000 + i)
        batch = {
            "run_id": run_id,
            "metrics": [{"key": "acc", "value": i / 10, "step": 0, "timestamp": 1}],
            "params": [{"key": "model", "value": "rf" if i % 2 else "gbm"}],
        }
        ok(http.post(f"{API}/runs/log-batch", json=batch))
        ids.append(run_id)
    body = {
        "experiment_ids": [eid],
        "filter": "params.model = 'rf' and metrics.acc > 0.05",
        "order_by": ["metrics.acc DESC"],
    }
    found = ok(http.post(f"{API}/runs/search", json=body))["runs"]
    assert [r["info"]["run_id"] for r in found] == [ids[3], ids[1]]
    first = ok(http.post(f"{API}/runs/search", json={"experiment_ids": [eid], "max_results": 2}))
    second = ok(
        http.post(
            f"{API}/runs/search",
            json={"experiment_ids": [eid], "max_results": 2, "page_token": first["next_page_token"]},
        )
    )
    assert [r["info"]["run_id"] for r in first["runs"] + second["runs"]] == ids[::-1][:4]
    ok(http.post(f"{API}/runs/delete", json={"run_id": ids[0]}))
    deleted = ok(
        http.post(f"{API}/runs/search", json={"experiment_ids": [eid], "run_view_type": "DELETED_ONLY"})
    )
    assert [r["info"]["run_id"] for r in deleted["runs"]] == [ids[0]]
    message = error(
        http.post(f"{API}/runs/search", json={"experiment_ids": [eid], "filter": "metrics.acc >"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert "value" in message


def test_inputs_outputs_and_log_model(http: httpx.Client) -> None:
    run_id = new_run(http)
    dataset = {
        "name": "iris",
        "digest": "abc123",
        "source_type": "code",
        "source": '{"tags": {}}',
        "schema": '{"mlflow_colspec": []}',
        "profile": '{"num_rows": 150}',
    }
    body = {
        "run_id": run_id,
        "datasets": [{"tags": [{"key": "mlflow.data.context", "value": "eval"}], "dataset": dataset}],
    }
    ok(http.post(f"{API}/runs/log-inputs", json=body))
    inputs = ok(http.get(f"{API}/runs/get", params={"run_id": run_id}))["run"]["inputs"]["dataset_inputs"]
    assert len(inputs) == 1
    got = inputs[0]["dataset"]
    assert (got["name"], got["digest"], got["source_type"], got["source"]) == (
        "iris",
        "abc123",
        "code",
        '{"tags": {}}',
    )
    assert json.loads(got["profile"]) == {"num_rows": 150}
    assert inputs[0]["tags"] == [{"key": "mlflow.data.context", "value": "eval"}]
    ok(http.post(f"{API}/runs/log-model", json={"run_id": run_id, "model_json": '{"artifact_path": "m"}'}))
    tags = {
        t["key"]: t["value"]
        for t in ok(http.get(f"{API}/runs/get", params={"run_id": run_id}))["run"]["data"]["tags"]
    }
    assert json.loads(tags["mlflow.log-model.history"]) == [{"artifact_path": "m"}]


# -- artifacts ---------------------------------------------------------------------------------
def test_artifacts_upload_download_list(http: httpx.Client, server: LiveServer) -> None:
    run_id = new_run(http)
    payload = b"x" * 1000 + bytes(range(256))
    ok(http.put(f"{ARTIFACTS}/runs/{run_id}/plots/loss.bin", content=payload))
    ok(
        http.put(
            f"{ARTIFACTS}/runs/{run_id}/plots/deep/a.json",
            content=b'{"a": 1}',
            headers={"Content-Type": "application/json"},
        )
    )
    ok(http.put(f"{ARTIFACTS}/runs/{run_id}/top.txt", content=b"top"))
    got = http.get(f"{ARTIFACTS}/runs/{run_id}/plots/loss.bin")
    assert got.status_code == 200 and got.content == payload
    listing = ok(http.get(ARTIFACTS, params={"path": f"runs/{run_id}/plots"}))["files"]
    assert listing == [
        {"path": "deep", "is_dir": True},
        {"path": "loss.bin", "is_dir": False, "file_size": len(payload)},
    ]
    root = ok(http.get(f"{API}/artifacts/list", params={"run_id": run_id}))
    assert root["root_uri"] == f"mlflow-artifacts:/runs/{run_id}"
    assert [(f["path"], f["is_dir"]) for f in root["files"]] == [("plots", True), ("top.txt", False)]
    nested = ok(http.get(f"{API}/artifacts/list", params={"run_id": run_id, "path": "plots/deep"}))["files"]
    assert nested == [{"path": "plots/deep/a.json", "is_dir": False, "file_size": 8}]

    # stored by content hash in the server's artifact store, recorded by name on the run
    from keel.store import open_store

    store: Any = open_store(server.config.store_url)
    recorded = {a.name: a.sha256 for a in store.list_artifacts(run_id)}
    assert recorded["plots/loss.bin"] == hashlib.sha256(payload).hexdigest()
    sha = recorded["plots/loss.bin"]
    assert (server.folder / "server-artifacts" / sha[:2] / sha).read_bytes() == payload
    error(http.get(f"{ARTIFACTS}/runs/{run_id}/nothing.txt"), 404, "RESOURCE_DOES_NOT_EXIST")
    error(http.put(f"{ARTIFACTS}/runs/{'0' * 32}/a.txt", content=b"a"), 404, "RESOURCE_DOES_NOT_EXIST")


@pytest.mark.parametrize(
    "path",
    [
        "runs/{run}/..%2F..%2Fescape.txt",
        "runs/{run}/%2e%2e/escape.txt",
        "runs/{run}/a%5Cb.txt",
        "runs/{run}/a%00.txt",
        "runs/{run}/a;x=1.txt",
        "runs/{run}/%252e%252e/escape.txt",
        "experiments/1/escape.txt",
        "etc/passwd",
        "runs/not-a-run-id/escape.txt",
        "models/{run}x/escape.txt",
        "runs/{run}",
    ],
)
def test_artifact_paths_that_could_escape_are_refused(
    http: httpx.Client, server: LiveServer, path: str
) -> None:
    run_id = new_run(http)
    url = f"{ARTIFACTS}/{path.format(run=run_id)}"
    response = http.put(url, content=b"evil")
    assert response.status_code in (400, 404), response.text
    from keel.store import open_store

    store: Any = open_store(server.config.store_url)
    assert store.list_artifacts(run_id) == []
    assert not list(server.folder.parent.glob("**/escape.txt"))


# -- registry ----------------------------------------------------------------------------------
def _model_run(http: httpx.Client) -> str:
    run_id = new_run(http)
    ok(http.put(f"{ARTIFACTS}/runs/{run_id}/model/MLmodel", content=b"flavors: {}\n"))
    ok(http.put(f"{ARTIFACTS}/runs/{run_id}/model/model.pkl", content=b"bytes"))
    return run_id


def test_registry_models_versions_aliases_and_tags(http: httpx.Client) -> None:
    name = f"model-{next(_names)}"
    created = ok(http.post(f"{API}/registered-models/create", json={"name": name, "description": "d"}))
    assert created["registered_model"]["name"] == name
    error(http.post(f"{API}/registered-models/create", json={"name": name}), 400, "RESOURCE_ALREADY_EXISTS")
    run_id = _model_run(http)
    version = ok(
        http.post(
            f"{API}/model-versions/create",
            json={"name": name, "source": f"runs:/{run_id}/model", "run_id": run_id},
        )
    )["model_version"]
    assert (version["version"], version["run_id"], version["status"]) == ("1", run_id, "READY")
    assert version["source"] == f"mlflow-artifacts:/runs/{run_id}/model"
    uri = ok(http.get(f"{API}/model-versions/get-download-uri", params={"name": name, "version": "1"}))
    assert uri["artifact_uri"] == version["source"]

    ok(http.post(f"{API}/registered-models/alias", json={"name": name, "alias": "champion", "version": "1"}))
    by_alias = ok(http.get(f"{API}/registered-models/alias", params={"name": name, "alias": "champion"}))
    assert by_alias["model_version"]["aliases"] == ["champion"]
    model = ok(http.get(f"{API}/registered-models/get", params={"name": name}))["registered_model"]
    assert model["aliases"] == [{"alias": "champion", "version": "1"}]
    assert [v["version"] for v in model["latest_versions"]] == ["1"]
    latest = ok(
        http.post(f"{API}/registered-models/get-latest-versions", json={"name": name, "stages": ["None"]})
    )
    assert [v["version"] for v in latest["model_versions"]] == ["1"]

    ok(http.post(f"{API}/registered-models/set-tag", json={"name": name, "key": "team", "value": "x"}))
    ok(
        http.post(
            f"{API}/model-versions/set-tag", json={"name": name, "version": "1", "key": "ok", "value": "yes"}
        )
    )
    ok(http.patch(f"{API}/registered-models/update", json={"name": name, "description": "new"}))
    ok(http.patch(f"{API}/model-versions/update", json={"name": name, "version": "1", "description": "v1"}))
    found = ok(http.get(f"{API}/registered-models/search", params={"filter": f"name LIKE '{name}%'"}))
    assert [(m["name"], m["description"]) for m in found["registered_models"]] == [(name, "new")]
    assert {"key": "team", "value": "x"} in found["registered_models"][0]["tags"]
    versions = ok(
        http.get(
            f"{API}/model-versions/search", params={"filter": f"name = '{name}' and run_id = '{run_id}'"}
        )
    )
    assert [(v["version"], v["description"]) for v in versions["model_versions"]] == [("1", "v1")]
    assert {"key": "ok", "value": "yes"} in versions["model_versions"][0]["tags"]
    ok(
        http.request(
            "DELETE", f"{API}/model-versions/delete-tag", json={"name": name, "version": "1", "key": "ok"}
        )
    )
    ok(http.request("DELETE", f"{API}/registered-models/delete-tag", json={"name": name, "key": "team"}))
    error(
        http.post(
            f"{API}/model-versions/transition-stage",
            json={"name": name, "version": "1", "stage": "Production"},
        ),
        400,
        "INVALID_PARAMETER_VALUE",
    )

    ok(http.post(f"{API}/registered-models/rename", json={"name": name, "new_name": name + "-b"}))
    assert ok(http.get(f"{API}/model-versions/get", params={"name": name + "-b", "version": "1"}))[
        "model_version"
    ]["aliases"] == ["champion"]
    ok(
        http.request(
            "DELETE", f"{API}/registered-models/alias", json={"name": name + "-b", "alias": "champion"}
        )
    )
    ok(http.request("DELETE", f"{API}/model-versions/delete", json={"name": name + "-b", "version": "1"}))
    error(
        http.get(f"{API}/model-versions/get", params={"name": name + "-b", "version": "1"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    ok(http.request("DELETE", f"{API}/registered-models/delete", json={"name": name + "-b"}))
    error(
        http.get(f"{API}/registered-models/get", params={"name": name + "-b"}), 404, "RESOURCE_DOES_NOT_EXIST"
    )


def test_model_sources_must_be_stored_by_the_server(http: httpx.Client) -> None:
    name = f"model-{next(_names)}"
    ok(http.post(f"{API}/registered-models/create", json={"name": name}))
    for source in ["s3://bucket/model", "/etc/model", "file:///etc", "mlflow-artifacts:/experiments/1/model"]:
        error(
            http.post(f"{API}/model-versions/create", json={"name": name, "source": source}),
            400,
            "INVALID_PARAMETER_VALUE",
        )
    empty_run = new_run(http)
    error(
        http.post(f"{API}/model-versions/create", json={"name": name, "source": f"runs:/{empty_run}/model"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )


# -- logged models (MLflow 3) ------------------------------------------------------------------
def test_logged_model_lifecycle(http: httpx.Client) -> None:
    eid = experiment(http)
    run_id = new_run(http, eid)
    body = {
        "experiment_id": eid,
        "name": "clf",
        "source_run_id": run_id,
        "model_type": "sklearn",
        "params": [{"key": "alpha", "value": "1"}],
        "tags": [{"key": "t", "value": "1"}],
    }
    model = ok(http.post(f"{API}/logged-models", json=body))["model"]
    info = model["info"]
    model_id = info["model_id"]
    assert info["status"] == "LOGGED_MODEL_PENDING" and info["source_run_id"] == run_id
    assert info["artifact_uri"] == f"mlflow-artifacts:/models/{model_id}" and info["experiment_id"] == eid
    assert model["data"]["params"] == [{"key": "alpha", "value": "1"}]
    ok(http.put(f"{ARTIFACTS}/models/{model_id}/MLmodel", content=b"flavors: {}\n"))
    done = ok(
        http.patch(
            f"{API}/logged-models/{model_id}", json={"model_id": model_id, "status": "LOGGED_MODEL_READY"}
        )
    )
    assert done["model"]["info"]["status"] == "LOGGED_MODEL_READY"
    ok(http.patch(f"{API}/logged-models/{model_id}/tags", json={"tags": [{"key": "u", "value": "2"}]}))
    ok(http.request("DELETE", f"{API}/logged-models/{model_id}/tags/t"))
    ok(http.post(f"{API}/logged-models/{model_id}/params", json={"params": [{"key": "beta", "value": "2"}]}))
    got = ok(http.get(f"{API}/logged-models/{model_id}"))["model"]
    assert got["info"]["tags"] == [{"key": "u", "value": "2"}]
    assert {p["key"] for p in got["data"]["params"]} == {"alpha", "beta"}
    files = ok(http.get(f"{API}/logged-models/{model_id}/artifacts/directories"))["files"]
    assert [f["path"] for f in files] == ["MLmodel"]
    found = ok(
        http.post(f"{API}/logged-models/search", json={"experiment_ids": [eid], "filter": "name = 'clf'"})
    )
    assert [m["info"]["model_id"] for m in found["models"]] == [model_id]

    # registering it names only the model: the version's run is the run that logged it
    name = f"model-{next(_names)}"
    ok(http.post(f"{API}/registered-models/create", json={"name": name}))
    version = ok(
        http.post(
            f"{API}/model-versions/create",
            json={"name": name, "source": f"models:/{model_id}", "model_id": model_id},
        )
    )["model_version"]
    assert (version["run_id"], version["model_id"]) == (run_id, model_id)
    assert version["source"] == f"mlflow-artifacts:/models/{model_id}"
    # MLflow's experiment listing does not show where keel keeps logged models
    names = [
        e["name"]
        for e in ok(http.post(f"{API}/experiments/search", json={"max_results": 1000}))["experiments"]
    ]
    assert "mlflow-logged-models" not in names

    ok(http.request("DELETE", f"{API}/logged-models/{model_id}"))
    error(http.get(f"{API}/logged-models/{model_id}"), 404, "RESOURCE_DOES_NOT_EXIST")
    error(http.get(f"{API}/logged-models/m-{run_id}"), 404, "RESOURCE_DOES_NOT_EXIST")  # a run, not a model
    error(http.get(f"{API}/logged-models/nonsense"), 404, "RESOURCE_DOES_NOT_EXIST")


# -- policies ----------------------------------------------------------------------------------
def test_scopes_apply_to_mlflow_routes(http: httpx.Client, server: LiveServer) -> None:
    run_id = new_run(http)
    anonymous = httpx.get(f"{server.url}{API}/runs/get", params={"run_id": run_id})
    assert anonymous.status_code == 401
    reader = {"Authorization": f"Bearer {server.make_token('read')}"}
    assert (
        httpx.get(f"{server.url}{API}/runs/get", params={"run_id": run_id}, headers=reader).status_code == 200
    )
    write = httpx.post(
        f"{server.url}{API}/runs/set-tag", json={"run_id": run_id, "key": "a", "value": "b"}, headers=reader
    )
    assert write.status_code == 403
    upload = httpx.put(f"{server.url}{ARTIFACTS}/runs/{run_id}/a.txt", content=b"a", headers=reader)
    assert upload.status_code == 403
    writer = {"Authorization": f"Bearer {server.make_token('write')}"}
    name = f"model-{next(_names)}"
    assert (
        httpx.post(
            f"{server.url}{API}/registered-models/create", json={"name": name}, headers=writer
        ).status_code
        == 200
    )
    source_run = _model_run(http)
    ok(http.post(f"{API}/model-versions/create", json={"name": name, "source": f"runs:/{source_run}/model"}))
    alias = {"name": name, "alias": "champion", "version": "1"}
    assert (
        httpx.post(f"{server.url}{API}/registered-models/alias", json=alias, headers=writer).status_code
        == 403
    )
    promoter = {"Authorization": f"Bearer {server.make_token('promote')}"}
    assert (
        httpx.post(f"{server.url}{API}/registered-models/alias", json=alias, headers=promoter).status_code
        == 200
    )
    other = {"Authorization": f"Bearer {server.make_token('admin', 'elsewhere')}"}
    hidden = httpx.post(f"{server.url}{API}/runs/search", json={"experiment_ids": ["0"]}, headers=other)
    assert hidden.status_code in (403, 404)


# -- hostile input: never a server error -------------------------------------------------------
HOSTILE: list[dict[str, Any]] = [
    {},
    {"run_id": ["x"], "experiment_id": {"a": 1}, "name": 12345},
    {"run_id": "0" * 32, "experiment_id": "0", "name": "n", "key": "k" * 400, "value": None},
    {"max_results": -1, "page_token": "!!", "filter": "((((", "order_by": "x"},
    {"max_results": 10**30, "experiment_ids": "notalist", "view_type": 99},
    {"metrics": "x", "params": [1, 2], "tags": [{"key": None}], "datasets": [{"dataset": []}]},
    {"metrics": [{"key": "m", "value": {"x": 1}}], "models": [{"model_id": 5}]},
    {"name": "x", "version": "-1", "alias": "", "source": "models:/m-" + "z" * 32, "stage": 3},
    {"name": "x", "version": "99999999999999999999999", "new_name": ["a"]},
    {"model_id": "m-" + "0" * 32, "status": "NOPE", "tags": "t", "params": {"a": 1}},
    {"run_ids": ["0" * 32] * 200, "metric_key": "", "start_step": "a", "end_step": []},
    {"model_json": "{not json", "run_id": "0" * 32},
]


def _mlflow_routes(run_id: str, model_id: str) -> list[tuple[str, str]]:
    from keel.server.mlflow import artifacts_router, router
    from keel.server.policy import walk_routes

    found = []
    for prefix, table in ((API, router), ("/api/2.0/mlflow-artifacts", artifacts_router)):
        for path, methods, _ in walk_routes(table.routes):
            assert path is not None
            concrete = prefix + path.replace("{artifact_path:path}", f"runs/{run_id}/x")
            concrete = concrete.replace("{model_id}", model_id).replace("{tag_key}", "k")
            found.extend((method, concrete) for method in methods)
    return found


def test_hostile_input_is_never_a_server_error(http: httpx.Client) -> None:
    # real objects, so that hostile values get past the look-ups into every handler's parsing
    eid = experiment(http)
    run_id = _model_run(http)
    model = f"model-{next(_names)}"
    ok(http.post(f"{API}/registered-models/create", json={"name": model}))
    ok(http.post(f"{API}/model-versions/create", json={"name": model, "source": f"runs:/{run_id}/model"}))
    model_id = ok(http.post(f"{API}/logged-models", json={"experiment_id": eid}))["model"]["info"]["model_id"]
    real = {"run_id": run_id, "experiment_id": eid, "name": model, "version": "1", "model_id": model_id}
    payloads = (
        HOSTILE
        + [{**real, **bad} for bad in HOSTILE[1:]]
        + [
            {**real, "key": "k", "value": "v" * 70_000},
            {**real, "new_name": model, "alias": "v1", "experiment_ids": [eid], "filter": "tags.`x` = 1"},
            {**real, "metrics": [{"key": "m", "value": 1, "step": "9" * 30}], "status": "LOGGED_MODEL_READY"},
            {**real, "source": f"mlflow-artifacts:/runs/{run_id}/../../etc", "run_name": "r" * 300},
            {**real, "datasets": [{"dataset": {"name": "d", "digest": "x" * 100}}], "path": "../x"},
        ]
    )
    routes = _mlflow_routes(run_id, model_id)
    assert len(routes) > 60
    failures = []
    for method, path in routes:
        for payload in payloads:
            if method == "GET":
                params = {
                    k: json.dumps(v) if isinstance(v, dict | list) else str(v) for k, v in payload.items()
                }
                if len(urllib.parse.urlencode(params)) > 30_000:
                    continue  # longer than a URL may be (the client refuses it)
                response = http.get(path, params=params)
            elif method == "PUT":
                response = http.put(path, content=json.dumps(payload).encode())
            else:
                response = http.request(method, path, json=payload)
            if response.status_code >= 500:
                failures.append((method, path, payload, response.status_code, response.text[:200]))
    assert not failures, failures[:5]
