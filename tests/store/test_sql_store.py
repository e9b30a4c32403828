"""The store contract, run against SQLite and PostgreSQL, and through a keel server (RestStore)."""

from __future__ import annotations

import math
import struct

import pytest

from keel.entities import RunStatus
from keel.errors import (
    ConflictError,
    FilterSyntaxError,
    InvalidInputError,
    LimitExceededError,
    NotFoundError,
    ParamConflictError,
)
from keel.ids import new_id
from keel.store.metrics import Chunk, chunks_from_points


def _run(store, experiment="exp", **fields):
    found = store.get_experiment_by_name(experiment)
    eid = found.experiment_id if found else store.create_experiment(experiment).experiment_id
    return store.create_run(eid, fields.pop("name", "run"), **fields)


def _blob(store, data: bytes) -> str:
    """The sha256 of ``data``, stored where the store's server can see it (a keel server only
    records blobs it holds)."""
    import hashlib

    from keel.store.rest import RestStore

    if isinstance(store, RestStore):
        from keel.artifacts.remote import RemoteArtifactStore

        return RemoteArtifactStore(store).put_bytes(data)[0]
    return hashlib.sha256(data).hexdigest()


def _engine(store):
    """The SQL engine behind the store (for tests that fake old timestamps)."""
    return getattr(store, "engine", None) or store.server_engine


def _bits(value: float) -> bytes:
    return struct.pack("<d", value)


def test_experiments_create_get_list_and_conflict(store):
    exp = store.create_experiment("churn", description="d", tags={"team": "risk"})
    assert store.get_experiment(exp.experiment_id).name == "churn"
    assert store.get_experiment_by_name("churn").tags == {"team": "risk"}
    assert [e.name for e in store.list_experiments()] == ["churn"]
    with pytest.raises(ConflictError, match="already exists"):
        store.create_experiment("churn")
    store.set_experiment_lifecycle(exp.experiment_id, "deleted")
    assert store.list_experiments() == []
    assert len(store.list_experiments(include_deleted=True)) == 1
    with pytest.raises(NotFoundError):
        store.get_experiment("999")


def test_run_fields_round_trip(store):
    run = _run(
        store,
        name="r1",
        user="ada",
        pid=123,
        git_commit="abc",
        git_dirty=True,
        entry_point="train.py",
        tags={"team": "x"},
    )
    loaded = store.get_run(run.run_id)
    assert loaded.status is RunStatus.RUNNING
    assert (loaded.user, loaded.pid, loaded.git_commit, loaded.git_dirty, loaded.entry_point) == (
        "ada",
        123,
        "abc",
        True,
        "train.py",
    )
    assert loaded.tags == {"team": "x"}
    child = _run(store, name="child", parent_run_id=run.run_id)
    assert store.get_run(child.run_id).parent_run_id == run.run_id
    store.update_run(run.run_id, status="FAILED", end_time=loaded.start_time + 5, traceback="Boom")
    failed = store.get_run(run.run_id)
    assert failed.status is RunStatus.FAILED and failed.traceback == "Boom"
    assert failed.duration_ms == 5


def test_params_are_immutable_and_limited(store):
    run = _run(store)
    store.log_params(run.run_id, {"lr": 0.01, "depth": 3})
    store.log_params(run.run_id, {"lr": "0.01"})  # same value again is fine
    with pytest.raises(ParamConflictError, match="immutable") as info:
        store.log_params(run.run_id, {"lr": 0.02})
    assert info.value.old == "0.01" and info.value.new == "0.02"
    assert store.get_run(run.run_id).params == {"lr": "0.01", "depth": "3"}
    with pytest.raises(LimitExceededError, match="65,536") as too_big:
        store.log_params(run.run_id, {"blob": "x" * (1 << 20)})
    assert too_big.value.actual == 1 << 20
    assert "blob" not in store.get_run(run.run_id).params  # nothing truncated or half-written
    with pytest.raises(LimitExceededError, match="250"):
        store.log_params(run.run_id, {"k" * 251: 1})
    with pytest.raises(InvalidInputError, match="characters"):
        store.log_params(run.run_id, {"bad\nkey": 1})


def test_tags_set_overwrite_delete(store):
    run = _run(store)
    store.set_tags(run.run_id, {"a": "1", "b": "2"})
    store.set_tags(run.run_id, {"a": "3"})
    store.delete_tag(run.run_id, "b")
    assert store.get_run(run.run_id).tags == {"a": "3"}
    with pytest.raises(NotFoundError):
        store.delete_tag(run.run_id, "b")


def test_special_values_round_trip_bit_for_bit(store):
    run = _run(store)
    values = [math.nan, math.inf, -math.inf, -0.0, 0.0, 5e-324, 1.7976931348623157e308]
    points = [("m", v, i, 1000 + i) for i, v in enumerate(values)]
    assert store.write_metric_batch(new_id(), run.run_id, chunks_from_points(points))
    history = store.get_metric_history(run.run_id, "m")
    assert [_bits(v) for v in history.values] == [_bits(v) for v in values]
    assert list(history.steps) == list(range(len(values)))
    # latest value (largest step) is exact too, including when it is NaN or -0.0
    for special in (math.nan, -0.0):
        other = _run(store, name=f"s{special}")
        store.write_metric_batch(new_id(), other.run_id, chunks_from_points([("m", special, 1, 1)]))
        assert _bits(store.get_run(other.run_id).metrics["m"].value) == _bits(special)


def test_batches_are_exactly_once(store):
    run = _run(store)
    chunks = chunks_from_points([("loss", 0.5, 1, 1), ("loss", 0.4, 2, 2)])
    batch = new_id()
    assert store.write_metric_batch(batch, run.run_id, chunks) is True
    assert store.write_metric_batch(batch, run.run_id, chunks) is False
    assert len(store.get_metric_history(run.run_id, "loss")) == 2


def test_latest_metric_is_largest_step_then_newest(store):
    run = _run(store)
    store.write_metric_batch(
        new_id(), run.run_id, chunks_from_points([("acc", 0.9, 10, 100), ("acc", 0.5, 3, 500)])
    )
    assert store.get_run(run.run_id).metrics["acc"].value == 0.9
    store.write_metric_batch(new_id(), run.run_id, chunks_from_points([("acc", 0.95, 10, 200)]))
    assert store.get_run(run.run_id).metrics["acc"].value == 0.95
    store.write_metric_batch(new_id(), run.run_id, chunks_from_points([("acc", 0.1, 2, 900)]))
    assert store.get_run(run.run_id).metrics["acc"].value == 0.95


def test_history_is_sorted_by_step_and_downsamples_keeping_spikes(store):
    import numpy as np

    run = _run(store)
    n = 20_000
    values = np.sin(np.arange(n) / 500.0)
    values[12_345] = 50.0  # a spike
    values[777] = -50.0
    steps = np.arange(n)
    # written in two batches, the later steps first
    half = n // 2
    store.write_metric_batch(
        new_id(),
        run.run_id,
        [Chunk.from_lists("m", steps[half:].tolist(), steps[half:].tolist(), values[half:].tolist())],
    )
    store.write_metric_batch(
        new_id(),
        run.run_id,
        [Chunk.from_lists("m", steps[:half].tolist(), steps[:half].tolist(), values[:half].tolist())],
    )
    full = store.get_metric_history(run.run_id, "m")
    assert len(full) == n and list(full.steps[:3]) == [0, 1, 2]
    assert np.array_equal(full.values, values)
    small = store.get_metric_history(run.run_id, "m", max_points=1000)
    assert 4 <= len(small) <= 1000
    assert small.values.max() == 50.0 and small.values.min() == -50.0
    assert list(small.steps) == sorted(small.steps)
    assert small.steps[0] == 0 and small.steps[-1] == n - 1
    with pytest.raises(InvalidInputError, match="max_points"):
        store.get_metric_history(run.run_id, "m", max_points=2)


def test_missing_run_is_not_found(store):
    with pytest.raises(NotFoundError, match="keel runs list"):
        store.get_run(new_id())
    with pytest.raises(InvalidInputError):
        store.get_run("../../etc/passwd")


def test_datasets_and_lineage(store):
    producer = _run(store, name="producer")
    consumer = _run(store, name="consumer")
    ds = store.log_dataset(
        producer.run_id,
        name="iris",
        fingerprint="f" * 64,
        schema={"columns": []},
        row_count=150,
        source="x",
    )
    again = store.log_dataset(
        consumer.run_id,
        name="iris",
        fingerprint="f" * 64,
        schema=None,
        row_count=150,
        source="x",
        context="eval",
    )
    assert ds.dataset_id == again.dataset_id
    assert store.list_run_inputs(consumer.run_id)[0].context == "eval"
    sha = _blob(store, b"a model")
    store.record_artifact(producer.run_id, "model/model.skops", sha, 7, "application/octet-stream")
    store.record_input_artifact(consumer.run_id, sha, "model/model.skops")
    edges = store.lineage(sha)
    assert {(e.run_id, e.direction) for e in edges} == {
        (producer.run_id, "output"),
        (consumer.run_id, "input"),
    }
    assert [a.name for a in store.list_artifacts(producer.run_id, "model")] == ["model/model.skops"]
    assert store.list_artifacts(producer.run_id, "mod") == []


def test_registry_versions_aliases_tags(store):
    run = _run(store)
    one, two = _blob(store, b"1"), _blob(store, b"2")
    store.create_registered_model("clf", description="d")
    v1 = store.create_model_version(
        "clf",
        artifact_sha256=one,
        flavor="sklearn",
        run_id=run.run_id,
        signature={"inputs": []},
    )
    v2 = store.create_model_version("clf", artifact_sha256=two, flavor="sklearn")
    assert (v1.version, v2.version) == (1, 2)
    store.set_model_alias("clf", "champion", 1)
    assert store.get_model_version_by_alias("clf", "champion").artifact_sha256 == one
    store.set_model_alias("clf", "champion", 2)  # move it
    assert store.get_model_version_by_alias("clf", "champion").version == 2
    assert store.get_model_version("clf", 2).aliases == ("champion",)
    store.set_model_version_tags("clf", 1, {"stage": "old"})
    assert store.get_model_version("clf", 1).tags == {"stage": "old"}
    model = store.get_registered_model("clf")
    assert model.latest_version == 2 and model.aliases == {"champion": 2}
    with pytest.raises(ConflictError):
        store.create_registered_model("clf")
    with pytest.raises(NotFoundError):
        store.set_model_alias("clf", "x", 7)
    store.delete_model_alias("clf", "champion")
    with pytest.raises(NotFoundError, match="no alias"):
        store.get_model_version_by_alias("clf", "champion")


def test_comments_on_runs_and_versions(store):
    run = _run(store)
    store.add_comment("run", run.run_id, "looks <b>good</b>", author="ada")
    store.create_registered_model("m")
    store.create_model_version("m", artifact_sha256=_blob(store, b"1"), flavor="sklearn")
    store.add_comment("model_version", "m/1", "ship it")
    assert [c.body for c in store.list_comments("run", run.run_id)] == ["looks <b>good</b>"]
    assert store.list_comments("model_version", "m/1")[0].body == "ship it"
    with pytest.raises(InvalidInputError):
        store.add_comment("run", run.run_id, "   ")


def _populate(store):
    exp = store.create_experiment("search").experiment_id
    runs = []
    for i in range(12):
        run = store.create_run(exp, f"run-{i:02d}", start_time=1000 + i)
        store.log_params(run.run_id, {"lr": "0.01" if i % 2 else "0.1", "model": "rf" if i < 6 else "gbm"})
        store.set_tags(run.run_id, {"team": "a" if i % 3 else "b"})
        points = [("acc", i / 10, 1, 1)]
        if i != 11:
            points.append(("loss", 1 - i / 10, 1, 1))
        store.write_metric_batch(new_id(), run.run_id, chunks_from_points(points))
        runs.append(run)
    return exp, runs


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("metrics.acc > 0.9", [10, 11]),
        ("metrics.acc >= 0.5 and params.lr = '0.01'", [5, 7, 9, 11]),
        ("params.model = 'rf' and tags.team = 'b'", [0, 3]),
        ("tags.team != 'a'", [0, 3, 6, 9]),
        ("attributes.run_name LIKE 'run-0%'", list(range(10))),
        ("run_name ILIKE 'RUN-1%'", [10, 11]),
        ("params.model IN ('gbm') and metrics.acc < 0.8", [6, 7]),
        ("(metrics.acc < 0.2 or metrics.acc > 1.0) and params.lr = '0.1'", [0]),
        ("metrics.loss IS NULL", [11]),
        ("metrics.`acc` = 0.3", [3]),
        ("params.lr NOT IN ('0.1')", [1, 3, 5, 7, 9, 11]),
    ],
)
def test_search_filters(store, filter_string, expected):
    exp, runs = _populate(store)
    found = store.search_runs([exp], filter_string, order_by=["attributes.start_time ASC"])
    assert [r.name for r in found] == [f"run-{i:02d}" for i in expected]


def test_search_order_and_pagination(store):
    exp, runs = _populate(store)
    by_loss = store.search_runs([exp], order_by=["metrics.loss ASC"])
    assert by_loss[0].name == "run-10" and by_loss[-1].name == "run-11"  # missing values last
    page1 = store.search_runs([exp], order_by=["metrics.acc DESC"], max_results=5)
    page2 = store.search_runs([exp], order_by=["metrics.acc DESC"], max_results=5, page_token=page1.token)
    page3 = store.search_runs([exp], order_by=["metrics.acc DESC"], max_results=5, page_token=page2.token)
    names = [r.name for r in [*page1, *page2, *page3]]
    assert names == [f"run-{i:02d}" for i in range(11, -1, -1)]
    assert page3.token is None
    newest_first = store.search_runs([exp])
    assert newest_first[0].name == "run-11"
    with pytest.raises(InvalidInputError, match="page token"):
        store.search_runs([exp], page_token="garbage!")


@pytest.mark.parametrize(
    "bad",
    [
        "metrics.acc >",
        "metrics.acc > 'x'",
        "params.lr = 0.1",
        "nonsense = 'a'",
        "metrics.acc >> 1",
        "(metrics.acc > 1",
        "metrics.acc > 1 and",
        "metrics.acc LIKE 'a%'",
    ],
)
def test_search_rejects_bad_filters(store, bad):
    exp, _ = _populate(store)
    with pytest.raises(FilterSyntaxError):
        store.search_runs([exp], bad)


def test_deleted_runs_hidden_and_permanent_delete(store):
    exp, runs = _populate(store)
    store.set_run_lifecycle(runs[0].run_id, "deleted")
    assert len(store.search_runs([exp])) == 11
    assert len(store.search_runs([exp], include_deleted=True)) == 12
    store.delete_run_permanently(runs[1].run_id)
    with pytest.raises(NotFoundError):
        store.get_run(runs[1].run_id)


def test_heartbeat_and_crash_detection(store):
    import sqlalchemy as sa

    from keel.store import schema as t

    run = _run(store, pid=None, host="elsewhere", heartbeat_interval=0.1)
    client_run = _run(store, name="client-made", pid=None, host="elsewhere")  # no heartbeat promised
    assert store.mark_crashed_runs() == []  # fresh heartbeat
    with _engine(store).begin() as c:  # a heartbeat from long ago
        c.execute(sa.update(t.runs).values(heartbeat_at=t.runs.c.heartbeat_at - 10_000))
    assert store.mark_crashed_runs() == [run.run_id]
    assert store.get_run(run.run_id).status is RunStatus.CRASHED
    # a run made by Client.create_run (MLflow style) stays RUNNING until its owner ends it
    assert store.get_run(client_run.run_id).status is RunStatus.RUNNING
    # a run on this host whose process is gone is found at once, without waiting for heartbeats
    import subprocess
    import sys

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    gone = _run(store, name="gone", pid=int(dead.stdout), heartbeat_interval=3600)
    assert gone.run_id in store.mark_crashed_runs()
