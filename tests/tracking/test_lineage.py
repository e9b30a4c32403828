"""Lineage end to end: pipeline steps around an artifact, and a dataset down to the model registered
from the run that read it; the `keel lineage` commands over the same store."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from typer.testing import CliRunner

import keel
from keel.cli import app
from keel.pipelines import pipeline, step
from keel.tracking.lineage import artifact_lineage, dataset_lineage


@step
def load(n: int) -> list[int]:
    return list(range(n))


@step
def double(values: list[int]) -> list[int]:
    return [2 * v for v in values]


@pipeline
def doubled(n: int = 5):
    return double(load(n))


def _cli(*args: str):
    return CliRunner().invoke(app, list(args))


def test_a_step_output_knows_its_producer_its_reader_and_the_runs_that_reused_it(project):
    first = doubled.run({})
    loaded = first.nodes["load"].outputs["output"]
    found = artifact_lineage(keel.Client(), loaded)
    assert [(u.node, u.direction, u.run_id) for u in found.steps] == [
        ("load", "output", first.run_id),
        ("double", "input", first.run_id),
    ]
    assert [e.run_id for e in found.produced_by] == [first.run_id] and found.used_by == []
    second = doubled.run({})  # every step from the cache: it used the first run's outputs
    assert all(record.cache_hit for record in second.nodes.values())
    again = artifact_lineage(keel.Client(), loaded)
    assert [e.run_id for e in again.used_by] == [second.run_id]
    assert [e.run_id for e in again.produced_by] == [first.run_id]

    shown = _cli("lineage", "artifact", f"{first.run_id}:steps/load/output.json", "--json")
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.stdout)
    assert data["sha256"] == loaded and {s["node"] for s in data["steps"]} == {"load", "double"}
    table = _cli("lineage", "artifact", loaded)
    assert table.exit_code == 0 and "doubled/load" in table.stdout


def test_a_dataset_leads_to_the_model_registered_from_the_run_that_read_it(project):
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame({"x": np.arange(20.0), "y": [0, 1] * 10})
    with keel.start_run(experiment="lineage") as run:
        keel.log_input(frame, name="toy/customers", source="generated")
        model = LogisticRegression().fit(frame[["x"]], frame["y"])
        keel.log_model(model, "model", registered_model_name="toy-churn")
    with keel.start_run(experiment="lineage"):
        keel.log_input(frame.head(5), name="toy/customers", context="evaluation")
    found = dataset_lineage(keel.Client(), "toy/customers")
    assert [u.dataset.context for u in found.uses] == ["training", "evaluation"]
    assert [(v.name, v.version, v.run_id) for v in found.model_versions] == [("toy-churn", 1, run.run_id)]
    assert any(edge.name.startswith("model/") for edge in found.outputs)
    one = dataset_lineage(keel.Client(), "toy/customers", found.uses[0].dataset.fingerprint[:10])
    assert [u.run_id for u in one.uses] == [run.run_id]

    shown = _cli("lineage", "dataset", "toy/customers")
    assert shown.exit_code == 0, shown.output
    assert "toy-churn" in shown.stdout and run.run_id in shown.stdout
    assert (
        json.loads(_cli("lineage", "dataset", "toy/customers", "--json").stdout)["model_versions"][0][
            "version"
        ]
        == 1
    )


def test_bad_references_exit_with_usage_errors(project):
    missing = _cli("lineage", "dataset", "never/logged")
    assert missing.exit_code == 1 and "no run used" in missing.stdout
    bad = _cli("lineage", "artifact", "not-a-hash")
    assert bad.exit_code == 2 and "sha256" in bad.output
