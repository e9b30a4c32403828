from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from keel.data.errors import DataSourceError
from keel.data.history import load_history, validate_and_log
from keel.entities import RunStatus
from keel.tracking.client import Client

SUITE = {
    "keel_suite": 1,
    "name": "orders-suite",
    "checks": [
        {"row_count_within_sigma": {"sigma": 3, "window": 4}},
        {"changed_less_than": {"fraction": 0.2, "metric": "mean.amount"}},
        {"not_null": {"column": "amount"}},
    ],
}


def _orders(rows: int, mean: float = 10.0) -> pl.DataFrame:
    return pl.DataFrame({"amount": [mean] * rows, "note": [None] * (rows // 2) + ["x"] * (rows - rows // 2)})


def test_every_validation_is_a_run_with_lineage(project: Path) -> None:
    result = validate_and_log(_orders(100), SUITE, name="orders")
    client = Client()
    run = client.get_run(result.run_id or "")
    assert run.status == RunStatus.FINISHED
    assert client.get_experiment(run.experiment_id).name == "data-validation"
    assert run.tags["keel.data.status"] == "passed" and run.tags["keel.data.dataset"] == "orders"
    assert run.params["suite"] == "orders-suite" and run.params["suite.checks"] == "3"
    metrics = {k: m.value for k, m in run.metrics.items()}
    assert metrics["row_count"] == 100 and metrics["null_fraction.note"] == 0.5
    assert metrics["mean.amount"] == 10.0 and metrics["validation.passed"] == 1.0
    assert "mean.note" not in metrics  # strings have no mean
    (dataset,) = client.list_inputs(run.run_id)
    assert (dataset.name, dataset.row_count, dataset.context) == ("orders", 100, "validation")
    assert dataset.fingerprint == result.fingerprint and len(dataset.fingerprint) == 64
    stored = json.loads(client.read_artifact(run.run_id, "validation/result.json"))
    assert stored["status"] == "passed" and stored["dataset"] == "orders"
    assert b"keel_suite: 1" in client.read_artifact(run.run_id, "validation/suite.yaml")


def test_history_checks_use_earlier_validations_of_the_same_dataset(project: Path) -> None:
    statuses = []
    for rows in (100, 104, 98, 101):
        statuses.append(validate_and_log(_orders(rows), SUITE, name="orders").results[0].status)
    assert statuses == ["skipped", "skipped", "passed", "passed"]
    validate_and_log(_orders(5), SUITE, name="other-table")  # another dataset's history does not mix in
    jump = validate_and_log(_orders(400, mean=20.0), SUITE, name="orders")
    assert [r.status for r in jump.results] == ["failed", "failed", "passed"]
    assert jump.results[1].observed["previous"] == 10.0
    history = load_history(Client(), "orders")
    assert [h["row_count"] for h in history] == [100, 104, 98, 101, 400]


def test_experiment_is_overridable_and_bad_input_is_a_failed_run(project: Path, tmp_path: Path) -> None:
    validate_and_log(_orders(10), SUITE, name="orders", experiment="nightly-checks")
    client = Client()
    assert client.get_experiment_by_name("nightly-checks") is not None
    bad = tmp_path / "bad.csv"
    bad.write_text("amount,note\n1,2\n3\n")
    with pytest.raises(DataSourceError, match=r"bad\.csv:3"):
        validate_and_log(bad, SUITE, experiment="nightly-checks")
    (failed,) = client.search_runs(["nightly-checks"], "attributes.status = 'FAILED'")
    assert failed.tags["keel.data.status"] == "error" and "bad.csv:3" in failed.tags["keel.data.error"]
