"""Pipelines recorded through keel's store: outputs as artifacts, steps, cache across runs, lineage."""

from __future__ import annotations

import numpy as np

import keel
from keel.pipelines import pipeline, step

CALLS: list[str] = []


@step
def load(n: int) -> np.ndarray:
    CALLS.append("load")
    return np.arange(n, dtype="float64")


@step
def scale(data: np.ndarray, factor: float) -> np.ndarray:
    CALLS.append("scale")
    return data * factor


@step
def total(data: np.ndarray) -> float:
    CALLS.append("total")
    return float(data.sum())


@step
def explode(data: np.ndarray) -> float:
    raise ValueError("bad batch")


@pipeline
def numbers(n: int = 10, factor: float = 2.0):
    return total(scale(load(n), factor))


@pipeline
def partly_broken(n: int = 5):
    data = load(n)
    return {"ok": total(data), "broken": explode(data)}


def test_tracked_run_records_steps_outputs_and_lineage(project):
    CALLS.clear()
    result = numbers.run({"n": 10})
    assert result.outputs == 90.0 and CALLS == ["load", "scale", "total"]
    store = keel.Client().store
    record = store.get_pipeline_run(result.pipeline_run_id)
    assert record.status == "done" and record.params == {"n": 10, "factor": 2.0}
    assert [s.status for s in record.steps] == ["done", "done", "done"]
    assert all(s.cache_key and s.outputs["output"]["sha256"] for s in record.steps)
    steps = {s.node: s for s in record.steps}
    # the input of `scale` is the output of `load`: lineage through content hashes
    assert steps["scale"].inputs["data"] == steps["load"].outputs["output"]["sha256"]
    artifacts = {a.name for a in keel.Client().list_artifacts(result.run_id)}
    assert {"steps/load/output.json", "steps/scale/output.json", "steps/total/output.json"} <= artifacts
    run = keel.Client().get_run(result.run_id)
    assert run.tags["keel.pipeline"] == "numbers" and run.metrics["pipeline/cached_steps"].value == 0


def test_second_run_is_served_from_the_cache_and_changes_invalidate(project):
    numbers.run({"n": 10})
    CALLS.clear()
    again = numbers.run({"n": 10})
    assert again.outputs == 90.0 and CALLS == []
    record = keel.Client().store.get_pipeline_run(again.pipeline_run_id)
    assert [s.status for s in record.steps] == ["cached", "cached", "cached"]
    CALLS.clear()
    changed = numbers.run({"n": 10, "factor": 3.0})
    assert changed.outputs == 135.0 and CALLS == ["scale", "total"]  # load is reused


def test_failure_keeps_completed_outputs_and_marks_the_run(project):
    CALLS.clear()
    result = partly_broken.run({"n": 4})
    assert not result.ok and "bad batch" in result.failed["explode"]
    assert result.value("total") == 6.0
    record = keel.Client().store.get_pipeline_run(result.pipeline_run_id)
    assert record.status == "failed"
    assert {s.node: s.status for s in record.steps} == {"load": "done", "total": "done", "explode": "failed"}
    assert keel.Client().get_run(result.run_id).tags["keel.failed_steps"] == "explode"
    CALLS.clear()
    partly_broken.run({"n": 4})  # rerun: completed steps come from the cache
    assert CALLS == []


def test_progress_sees_every_step_and_caching_can_be_turned_off(project, monkeypatch, capsys):
    from keel.pipelines import run_graph

    seen = []
    run_graph(numbers.build(n=3), progress=lambda record: seen.append((record.id, record.status)))
    assert seen == [("load", "done"), ("scale", "done"), ("total", "done")]
    numbers.run({"n": 3}, progress=True)  # draws a bar on stderr without getting in the way
    monkeypatch.setenv("KEEL_PIPELINE_CACHE", "false")
    CALLS.clear()
    numbers.run({"n": 3})
    assert CALLS == ["load", "scale", "total"]
