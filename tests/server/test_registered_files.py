"""A registered model version's files cannot change afterwards, through any API of a live server.

keel versions pin their manifest's sha256 (which pins each file), so later artifacts under the same
names are ignored when the version loads; MLflow versions are loaded by MLflow from the run's folder
by name, so that folder is frozen on registration.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from keel.errors import ConflictError
from keel.server.testing import LiveServer
from keel.tracking.client import Client

API = "/api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


@pytest.fixture
def http(live_server: LiveServer) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {live_server.token}"}
    with httpx.Client(base_url=live_server.url, headers=headers) as client:
        yield client


def _ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def _mlflow_run(http: httpx.Client) -> str:
    experiment = _ok(http.post(f"{API}/experiments/create", json={"name": "frozen"}))["experiment_id"]
    run = _ok(http.post(f"{API}/runs/create", json={"experiment_id": experiment, "start_time": 1}))
    return str(run["run"]["info"]["run_id"])


def test_mlflow_version_files_cannot_be_replaced_or_added(
    http: httpx.Client, live_server: LiveServer
) -> None:
    run_id = _mlflow_run(http)
    _ok(http.put(f"{ARTIFACTS}/runs/{run_id}/model/MLmodel", content=b"flavors: {}\n"))
    _ok(http.put(f"{ARTIFACTS}/runs/{run_id}/model/model.pkl", content=b"original"))
    _ok(http.post(f"{API}/registered-models/create", json={"name": "m"}))
    body = {"name": "m", "source": f"runs:/{run_id}/model", "run_id": run_id}
    _ok(http.post(f"{API}/model-versions/create", json=body))

    replaced = http.put(f"{ARTIFACTS}/runs/{run_id}/model/model.pkl", content=b"evil")
    assert replaced.status_code >= 400 and "cannot change after registration" in replaced.text
    added = http.put(f"{ARTIFACTS}/runs/{run_id}/model/extra.py", content=b"import os")
    assert added.status_code >= 400, added.text
    # the same bytes again (a client's retry) are fine, and so is the rest of the run
    _ok(http.put(f"{ARTIFACTS}/runs/{run_id}/model/model.pkl", content=b"original"))
    _ok(http.put(f"{ARTIFACTS}/runs/{run_id}/notes.txt", content=b"later"))
    # the native API records artifacts too (RestStore uses it): it is refused the same way
    client = Client(tracking_uri=f"http://:{live_server.token}@127.0.0.1:{live_server.port}")
    with pytest.raises(ConflictError, match="cannot change after registration"):
        client.log_text(run_id, "evil", "model/model.pkl")

    download = http.get(f"{ARTIFACTS}/runs/{run_id}/model/model.pkl")
    assert download.content == b"original"
    listed = _ok(http.get(f"{API}/artifacts/list", params={"run_id": run_id, "path": "model"}))
    assert sorted(f["path"] for f in listed["files"]) == ["model/MLmodel", "model/model.pkl"]


def test_keel_version_loads_its_registered_bytes_after_the_run_logs_more(
    live_server: LiveServer,
) -> None:
    rng = np.random.default_rng(1)
    features = rng.normal(size=(40, 3))
    labels = (features[:, 0] > 0).astype(np.int64)
    first = LogisticRegression().fit(features, labels)
    client = Client(tracking_uri=f"http://:{live_server.token}@127.0.0.1:{live_server.port}")
    run = client.create_run(client.create_experiment("frozen-keel"))
    client.log_model(run.run_id, first, "model", registered_model_name="clf")
    flipped = LogisticRegression().fit(features, 1 - labels)
    # the source run logs another model under the same name, then swaps a single file of it
    client.log_model(run.run_id, flipped, "model")
    assert client.load_model(f"runs:/{run.run_id}/model").predict(features).tolist() == (
        flipped.predict(features).tolist()
    )
    client.log_text(run.run_id, "junk", "model/model.skops")
    loaded = client.load_model("models:/clf/1")
    np.testing.assert_array_equal(loaded.predict(features), first.predict(features))


def test_mlflow3_logged_model_files_are_frozen_once_registered(http: httpx.Client) -> None:
    run_id = _mlflow_run(http)
    experiment = _ok(http.get(f"{API}/runs/get", params={"run_id": run_id}))["run"]["info"]["experiment_id"]
    body = {"experiment_id": experiment, "name": "clf", "source_run_id": run_id}
    model_id = _ok(http.post(f"{API}/logged-models", json=body))["model"]["info"]["model_id"]
    _ok(http.put(f"{ARTIFACTS}/models/{model_id}/MLmodel", content=b"flavors: {}\n"))
    _ok(http.put(f"{ARTIFACTS}/models/{model_id}/model.pkl", content=b"original"))
    _ok(http.post(f"{API}/registered-models/create", json={"name": "logged"}))
    body = {"name": "logged", "source": f"models:/{model_id}", "model_id": model_id}
    _ok(http.post(f"{API}/model-versions/create", json=body))

    replaced = http.put(f"{ARTIFACTS}/models/{model_id}/model.pkl", content=b"evil")
    assert replaced.status_code >= 400 and "cannot change after registration" in replaced.text
    assert http.get(f"{ARTIFACTS}/models/{model_id}/model.pkl").content == b"original"
    # the run that logged the model is not frozen: only the model's own files are
    _ok(http.put(f"{ARTIFACTS}/runs/{run_id}/model.pkl", content=b"unrelated"))
