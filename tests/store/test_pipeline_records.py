"""Pipeline runs, step runs and the step cache, on SQLite and PostgreSQL."""

from __future__ import annotations

import math

import pytest

from keel.entities import StepRun
from keel.errors import InvalidInputError, NotFoundError


def _pipeline_run(store, name="train"):
    exp = store.get_experiment_by_name("pipelines") or store.create_experiment("pipelines")
    run = store.create_run(exp.experiment_id, f"{name}-run")
    graph = {"nodes": [{"id": "load"}, {"id": "fit", "upstream": ["load"]}]}
    return run, store.create_pipeline_run(run.run_id, name, params={"lr": 0.1, "bad": math.nan}, graph=graph)


def test_pipeline_run_round_trip_and_status(store):
    run, pid = _pipeline_run(store)
    loaded = store.get_pipeline_run(pid)
    assert loaded.run_id == run.run_id and loaded.status == "running"
    assert loaded.params["lr"] == 0.1 and math.isnan(loaded.params["bad"])
    assert loaded.graph["nodes"][1]["upstream"] == ["load"]
    store.set_pipeline_run_status(pid, "failed")
    assert store.get_pipeline_run_by_run_id(run.run_id).status == "failed"
    with pytest.raises(InvalidInputError):
        store.set_pipeline_run_status(pid, "exploded")
    with pytest.raises(NotFoundError):
        store.get_pipeline_run(9999)


def test_step_records_replace_by_node_and_feed_the_cache(store):
    _, pid = _pipeline_run(store)
    pending = StepRun(node="fit", step="fit", status="pending")
    store.record_step_runs(pid, [pending])
    done = [
        StepRun(
            node="load",
            step="load",
            status="done",
            cache_key="a" * 64,
            wall_s=0.5,
            cpu_s=0.4,
            outputs={"output": {"sha256": "1" * 64, "materializer": "json"}},
            components={"source": {"load": "abc"}, "params": {}},
        ),
        StepRun(
            node="fit", step="fit", status="failed", cache_key="b" * 64, error="Traceback...\nValueError"
        ),
    ]
    store.record_step_runs(pid, done)
    steps = {s.node: s for s in store.get_pipeline_run(pid).steps}
    assert steps["fit"].status == "failed" and "ValueError" in steps["fit"].error
    assert steps["load"].components == {"source": {"load": "abc"}, "params": {}}
    # only finished, uncached steps are reusable
    assert store.lookup_step_cache(["a" * 64, "b" * 64, "c" * 64]) == {
        "a" * 64: {"output": {"sha256": "1" * 64, "materializer": "json"}}
    }
    assert [s.node for s in store.find_step_runs("a" * 64)] == ["load"]
    with pytest.raises(InvalidInputError, match="status"):
        store.record_step_runs(pid, [StepRun(node="x", step="x", status="weird")])


def test_list_pipeline_runs_newest_first(store):
    _pipeline_run(store, "a")
    _, second = _pipeline_run(store, "b")
    assert [p.pipeline for p in store.list_pipeline_runs()] == ["b", "a"]
    assert [p.pipeline_run_id for p in store.list_pipeline_runs("b")] == [second]
