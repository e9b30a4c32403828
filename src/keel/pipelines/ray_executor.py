"""Running a pipeline graph on Ray (``pip install 'keel-mlops[ray]'``), connected only when asked.

Each ready step becomes a Ray task with the step's resources (``@step(resources={"cpu": 2, "gpu": 1,
"memory": 4e9})``); retries happen inside the task with backoff; a step that outlives its ``timeout``
is cancelled and recorded as failed. Ray is reached at ``RAY_ADDRESS`` when set, else a local Ray is
started bound to 127.0.0.1 with the dashboard off.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from keel.cluster import connect_ray
from keel.pipelines.runner import Frontier
from keel.pipelines.runtime import Attempt, execute

if TYPE_CHECKING:
    from keel.pipelines.graph import Node

__all__ = ["run_on_ray", "task_options"]


def task_options(resources: dict[str, Any]) -> dict[str, Any]:
    """Ray task options from a step's ``resources`` (cpu, gpu, memory in bytes; others as custom)."""
    options: dict[str, Any] = {"num_cpus": float(resources.get("cpu", 1)), "max_retries": 0}
    if resources.get("gpu"):
        options["num_gpus"] = float(resources["gpu"])
    if resources.get("memory"):
        options["memory"] = float(resources["memory"])
    custom = {k: float(v) for k, v in resources.items() if k not in {"cpu", "gpu", "memory"}}
    if custom:
        options["resources"] = custom
    return options


def run_on_ray(run: Any, order: list[Node], backoff: float) -> None:
    """Schedule ``order`` on Ray as dependencies complete; results settle through ``run.finish``."""
    ray = connect_ray()
    remote_execute = ray.remote(execute)
    nodes = run.graph.nodes
    frontier = Frontier(run, order)
    release = frontier.release
    running: dict[Any, tuple[str, float | None]] = {}

    while frontier.ready or running:
        for node, args, kwargs in frontier.submittable():
            step = node.step
            # the task itself retries (with backoff); the timeout is enforced from here, per task
            ref = remote_execute.options(**task_options(step.resources)).remote(
                step, args, kwargs, step.retries, backoff, None
            )
            deadline = None if step.timeout is None else time.monotonic() + step.timeout * (step.retries + 1)
            running[ref] = (node.id, deadline)
        if not running:
            continue
        deadlines = [d for _, d in running.values() if d is not None]
        wait_s = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
        done, _ = ray.wait(list(running), num_returns=1, timeout=wait_s)
        for ref in done:
            node_id, _ = running.pop(ref)
            try:
                attempt = ray.get(ref)
            except Exception as exc:  # the worker died or the result did not come back
                attempt = Attempt.failure(f"step `{node_id}` failed on Ray: {type(exc).__name__}: {exc}")
            run.finish(nodes[node_id], attempt)
            release(node_id)
        now = time.monotonic()
        for ref, (node_id, deadline) in list(running.items()):
            if deadline is not None and now >= deadline:
                ray.cancel(ref, force=True)
                running.pop(ref)
                step = nodes[node_id].step
                run.finish(
                    nodes[node_id],
                    Attempt.failure(
                        f"step `{node_id}` timed out after {step.timeout:g} s on Ray and was cancelled"
                    ),
                )
                release(node_id)
