"""Metrics a step logs show on every run that uses the step, including runs that take it from the cache."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import keel
from keel.pipelines import pipeline, step
from keel.tracking.capture import capture_metrics

CALLS: list[str] = []


@step
def train(n: int) -> float:
    CALLS.append("train")
    keel.log_metric("rows", n)
    for epoch in range(3):
        keel.log_metric("loss", 1.0 / (epoch + 1), step=epoch)
    return 0.5


@step
def report(score: float, label: str) -> str:
    CALLS.append("report")
    return f"{label}: {score}"


@pipeline
def training(n: int = 8, label: str = "auc"):
    return report(train(n), label)


def _history(run_id: str, key: str) -> list[tuple[int, float]]:
    history = keel.Client().get_metric_history(run_id, key)
    return [(int(s), float(v)) for s, v in zip(history.steps, history.values, strict=True)]


def test_metrics_of_a_cached_step_show_on_the_new_run(project: Path) -> None:
    first = training.run()
    assert _history(first.run_id, "loss") == [(0, 1.0), (1, 0.5), (2, 1.0 / 3)]
    recorded = keel.Client().read_artifact(first.run_id, "steps/train/logged-metrics.keel.json")
    assert json.loads(recorded)["metrics"][0] == ["rows", 8.0, 0]

    CALLS.clear()
    second = training.run({"label": "score"})  # train comes from the cache, report runs
    assert second.ok and CALLS == ["report"] and second.nodes["train"].cache_hit
    assert _history(second.run_id, "rows") == [(0, 8.0)]
    assert _history(second.run_id, "loss") == [(0, 1.0), (1, 0.5), (2, 1.0 / 3)]

    CALLS.clear()
    third = training.run({"label": "score"})  # fully cached: the metrics are still there
    assert CALLS == [] and _history(third.run_id, "loss") == [(0, 1.0), (1, 0.5), (2, 1.0 / 3)]


def test_capture_keeps_only_this_threads_metrics(project: Path) -> None:
    with keel.start_run(experiment="capture"):
        with capture_metrics() as logged:
            keel.log_metric("mine", 1.0, step=2)
            other = threading.Thread(target=keel.log_metric, args=("theirs", 2.0))
            other.start()
            other.join()
        keel.log_metric("after", 3.0)
    assert logged == [("mine", 1.0, 2)]


def test_metrics_of_a_cached_step_come_back_through_a_server(project: Path, tmp_path: Path) -> None:
    from keel.pipelines.tracking import run_pipeline
    from keel.server.testing import LiveServer

    with LiveServer(tmp_path / "server") as server:
        uri = f"http://:{server.token}@127.0.0.1:{server.port}"
        run_pipeline(training, tracking_uri=uri)
        CALLS.clear()
        second = run_pipeline(training, {"label": "score"}, tracking_uri=uri)
        assert CALLS == ["report"]
        history = keel.Client(tracking_uri=uri).get_metric_history(second.run_id, "loss")
        assert history.values.tolist() == [1.0, 0.5, 1.0 / 3]
