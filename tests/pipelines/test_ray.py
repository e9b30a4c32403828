"""The Ray executor against a real local Ray (started once for this module, bound to 127.0.0.1)."""

from __future__ import annotations

import os
import time

import pytest

import keel
from keel.pipelines import pipeline, run_graph, step
from keel.pipelines.ray_executor import task_options

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray = pytest.importorskip("ray", reason="the Ray executor needs keel-mlops[ray]")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    from keel.cluster import connect_ray

    connect_ray()
    yield
    ray.shutdown()


@step
def square(x: int) -> int:
    return x * x


@step(resources={"cpu": 1})
def add(values: list) -> int:
    return sum(values)


@step
def broken(x: int) -> int:
    raise RuntimeError(f"cannot handle {x}")


@step(timeout=1.0)
def slow(x: int) -> int:
    time.sleep(60)
    return x


@pipeline
def squares(n: int = 4):
    return add(square.map(list(range(n))))


@pipeline
def mixed(n: int = 3):
    return {"fine": add(square.map(list(range(n)))), "bad": broken(n), "late": slow(n)}


def test_fan_out_and_in_on_ray_matches_inline():
    graph = squares.build(n=6)
    on_ray = run_graph(graph, executor="ray")
    assert on_ray.ok and on_ray.outputs == run_graph(graph).outputs == 55


def test_failures_and_timeouts_are_isolated_on_ray():
    result = run_graph(mixed.build(n=3), executor="ray")
    assert result.value("add") == 5
    assert "cannot handle 3" in result.failed["broken"]
    assert "timed out" in result.failed["slow"]


def test_tracked_pipeline_on_ray(project):
    result = squares.run({"n": 5}, executor="ray")
    assert result.outputs == 30
    record = keel.Client().store.get_pipeline_run(result.pipeline_run_id)
    assert {s.status for s in record.steps} == {"done"} and len(record.steps) == 6


def test_task_options_from_step_resources():
    assert task_options({"cpu": 2, "gpu": 1, "memory": 4e9, "tpu": 1}) == {
        "num_cpus": 2.0,
        "max_retries": 0,
        "num_gpus": 1.0,
        "memory": 4e9,
        "resources": {"tpu": 1.0},
    }
    assert task_options({}) == {"num_cpus": 1.0, "max_retries": 0}
