"""Validations as keel runs, and the history that dataset-metric anomaly checks compare against.

:func:`validate_and_log` validates, then records the validation as a run in an experiment
(``data-validation`` unless told otherwise): the dataset as the run's input (name, fingerprint, schema,
rows: lineage from the dataset version), the suite as params and as an artifact, the verdict as tags and
metrics, the dataset metrics (row count, null fractions, means) as metrics, and the full JSON result as an
artifact. Before validating it reads the metrics of the earlier validations of the same dataset name, so
``row_count_within_sigma`` and ``changed_less_than`` checks see the history.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.data.engine import dataset_metrics, validate
from keel.data.sources import open_source
from keel.data.suite import Suite, suite_from

if TYPE_CHECKING:
    from keel.data.checks import Check
    from keel.data.results import ValidationResult
    from keel.tracking.client import Client

__all__ = ["DEFAULT_EXPERIMENT", "load_history", "metric_key", "validate_and_log"]

DEFAULT_EXPERIMENT = "data-validation"
TAG_KIND = "keel.data.kind"
TAG_DATASET = "keel.data.dataset"
TAG_SUITE = "keel.data.suite"
TAG_STATUS = "keel.data.status"
HISTORY_LIMIT = 1000
_KEY_CHARS = re.compile(r"[^\w.\- :/]")


def metric_key(name: str) -> str:
    """A dataset metric name as a tracking metric key (characters outside MLflow's alphabet become ``_``)."""
    return _KEY_CHARS.sub("_", name)[:250]


def load_history(
    client: Client, dataset: str, *, experiment: str = DEFAULT_EXPERIMENT, limit: int = HISTORY_LIMIT
) -> list[dict[str, float]]:
    """Dataset metrics of the earlier validations of ``dataset`` in ``experiment``, oldest first."""
    if client.get_experiment_by_name(experiment) is None:
        return []
    quote = '"' if "'" in dataset else "'"
    filter_string = f"tags.`{TAG_KIND}` = 'validation' and tags.`{TAG_DATASET}` = {quote}{dataset}{quote}"
    runs = client.search_runs([experiment], filter_string, ["attributes.start_time DESC"], max_results=limit)
    history = []
    for run in reversed(list(runs)):
        history.append({key: metric.value for key, metric in run.metrics.items()})
    return history


def validate_and_log(
    data: Any,
    suite: Suite | Mapping[str, Any] | str | Path | Sequence[Check],
    *,
    experiment: str | None = None,
    run_name: str | None = None,
    name: str | None = None,
    client: Client | None = None,
    **options: Any,
) -> ValidationResult:
    """Validate ``data`` like :func:`keel.data.validate` and log the validation as a run.

    ``experiment`` defaults to ``data-validation``; ``name`` names the dataset (default: the file name or
    table); other keyword arguments go to :func:`~keel.data.engine.validate`. The returned result carries
    the ``run_id``. A validation that cannot run (bad input) is logged as a FAILED run and re-raised.
    """
    from keel.entities import RunStatus
    from keel.tracking.client import Client

    client = client or Client()
    experiment = experiment or DEFAULT_EXPERIMENT
    suite = suite_from(suite)
    source = open_source(data, name=name)
    history = load_history(client, source.name, experiment=experiment)
    tags = {TAG_KIND: "validation", TAG_DATASET: source.name, TAG_SUITE: suite.name}
    run = client.create_run(experiment, run_name, tags=tags)
    suite_yaml = suite.to_yaml()
    client.log_params(
        run.run_id,
        {
            "suite": suite.name,
            "suite.checks": len(suite.checks),
            "suite.sha256": hashlib.sha256(suite_yaml.encode()).hexdigest(),
            "dataset": source.name,
            "dataset.source": source.location(),
        },
    )
    client.log_text(run.run_id, suite_yaml, "validation/suite.yaml")
    try:
        result = validate(source, suite, history=history, hash_frame=True, **options)
    except Exception as exc:
        client.set_tags(run.run_id, {TAG_STATUS: "error", "keel.data.error": str(exc)[:2000]})
        client.set_terminated(run.run_id, RunStatus.FAILED)
        raise
    result.run_id = run.run_id
    client.store.log_dataset(
        run.run_id,
        name=source.name,
        fingerprint=result.fingerprint,
        schema={"columns": [{"name": c, "dtype": t} for c, t in result.columns.items()]},
        row_count=result.row_count,
        source=source.location(),
        context="validation",
    )
    metrics = {metric_key(k): v for k, v in dataset_metrics(result).items()}
    client.log_batch(run.run_id, metrics=list(metrics.items()))
    client.log_text(run.run_id, result.to_json(), "validation/result.json")
    from keel.data.report import render_html

    client.log_text(run.run_id, render_html(result), "validation/report.html")  # bounded: ≤ 500 KB
    client.set_tags(run.run_id, {TAG_STATUS: result.status})
    client.set_terminated(run.run_id, RunStatus.FINISHED)
    return result
