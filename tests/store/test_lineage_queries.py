"""Lineage queries of the store: dataset usage, pipeline steps around an artifact, models from runs."""

from __future__ import annotations

import pytest

from keel.entities import StepRun


@pytest.fixture
def sql(store_url):
    from keel.store.sql import SqlStore

    opened = SqlStore(store_url)
    yield opened
    opened.close()


def _run(store, name="run"):
    found = store.get_experiment_by_name("exp")
    eid = found.experiment_id if found else store.create_experiment("exp").experiment_id
    return store.create_run(eid, name).run_id


def test_dataset_usage_lists_runs_per_version(sql):
    first, second, other = _run(sql, "a"), _run(sql, "b"), _run(sql, "c")
    common = {"schema": None, "row_count": 10, "source": "s3://bucket/x"}
    sql.log_dataset(first, name="customers", fingerprint="aa" * 32, **common)
    sql.log_dataset(second, name="customers", fingerprint="bb" * 32, context="evaluation", **common)
    sql.log_dataset(other, name="orders", fingerprint="aa" * 32, **common)
    uses = sql.dataset_usage("customers")
    assert [(u.run_id, u.dataset.fingerprint[:2], u.dataset.context) for u in uses] == [
        (first, "aa", "training"),
        (second, "bb", "evaluation"),
    ]
    assert [u.run_id for u in sql.dataset_usage("customers", "bbbb")] == [second]
    assert sql.dataset_usage("nothing") == []


def test_record_input_artifacts_in_one_call_is_idempotent(sql):
    run = _run(sql)
    items = [("c" * 64, "steps/a/output.json"), ("d" * 64, "steps/b/output.json")]
    sql.record_input_artifacts(run, items + items[:1])
    sql.record_input_artifacts(run, items)
    edges = sorted((e.sha256[0], e.direction, e.name) for e in sql.run_lineage(run))
    assert edges == [("c", "input", "steps/a/output.json"), ("d", "input", "steps/b/output.json")]


def test_step_uses_find_producers_and_readers(sql):
    run = _run(sql)
    pipeline_run = sql.create_pipeline_run(run, "train", params={}, graph={"nodes": []})
    made, other = "e" * 64, "f" * 64
    sql.record_step_runs(
        pipeline_run,
        [
            StepRun(
                node="load",
                step="load",
                status="done",
                cache_key="1" * 64,
                outputs={"output": {"sha256": made}},
            ),
            StepRun(
                node="fit",
                step="fit",
                status="done",
                inputs={"data": made},
                outputs={"output": {"sha256": other}},
            ),
            StepRun(
                node="old", step="old", status="cached", cached=True, outputs={"output": {"sha256": made}}
            ),
        ],
    )
    uses = sql.step_uses(made)
    assert [(u.node, u.direction, u.name, u.pipeline, u.run_id) for u in uses] == [
        ("load", "output", "output", "train", run),
        ("fit", "input", "data", "train", run),
    ]  # a cached step did not produce it
    assert [u.node for u in sql.step_uses(other)] == ["fit"]
    assert sql.step_uses("0" * 64) == []


def test_model_versions_from_runs(sql):
    run, unrelated = _run(sql, "a"), _run(sql, "b")
    sql.create_registered_model("churn")
    sql.create_registered_model("fraud")
    sql.create_model_version("churn", artifact_sha256="a" * 64, flavor="sklearn", run_id=run)
    sql.create_model_version("churn", artifact_sha256="b" * 64, flavor="sklearn", run_id=unrelated)
    sql.create_model_version("fraud", artifact_sha256="c" * 64, flavor="sklearn", run_id=run)
    found = sql.model_versions_from_runs([run])
    assert [(v.name, v.version, v.run_id) for v in found] == [("churn", 1, run), ("fraud", 1, run)]
    assert sql.model_versions_from_runs([]) == []
