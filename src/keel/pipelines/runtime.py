"""What runs around one step call, in this process or a worker: retries, timeout, measurements.

:func:`execute` is a module-level function so a process pool can pickle it; it never raises for a
failing step but returns an :class:`Attempt` carrying the traceback text (exception objects do not
always pickle).
"""

from __future__ import annotations

import resource
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from types import FrameType
from typing import Any

from keel.pipelines.cache import CacheKey, cache_key, canonical
from keel.pipelines.errors import StepTimeoutError
from keel.pipelines.graph import Node, Output, iter_outputs, replace_outputs
from keel.pipelines.steps import Step
from keel.tracking.capture import capture_metrics

__all__ = ["Attempt", "cache_parts", "default_environment", "execute", "split_outputs"]


@dataclass
class Attempt:
    """The outcome of running a step (all tries together)."""

    value: Any = None
    error: str | None = None
    attempts: int = 0
    started: float | None = None
    ended: float | None = None
    wall_s: float = 0.0
    cpu_s: float = 0.0
    peak_rss: int | None = None
    #: (key, value, step) of each metric the successful try logged through keel.log_metric
    metrics: list[tuple[str, Any, Any]] | None = None

    @classmethod
    def failure(cls, error: str) -> Attempt:
        now = time.time()
        return cls(error=error, started=now, ended=now)


def _peak_rss() -> int | None:
    try:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    except (OSError, ValueError):
        return None
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024  # Linux reports KiB


def _call(step: Step, args: tuple[Any, ...], kwargs: dict[str, Any], timeout: float | None) -> Any:
    if timeout is None or threading.current_thread() is not threading.main_thread():
        return step.fn(*args, **kwargs)

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise StepTimeoutError(f"step `{step.name}` ran longer than its timeout of {timeout} s")

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        return step.fn(*args, **kwargs)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def execute(
    step: Step,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    retries: int,
    backoff: float,
    timeout: float | None,
) -> Attempt:
    """Call the step, retrying up to ``retries`` times with pauses of ``backoff``, ×2 each time.

    ``timeout`` (seconds, per try) is enforced with SIGALRM and only on a process's main thread,
    which is where pool workers run tasks.
    """
    started, wall0, cpu0 = time.time(), time.perf_counter(), time.process_time()
    result = Attempt(started=started)
    for attempt in range(retries + 1):
        result.attempts = attempt + 1
        try:
            with capture_metrics() as logged:
                result.value = _call(step, args, kwargs, timeout)
            result.error, result.metrics = None, logged
            break
        except Exception:
            result.error = f"step `{step.name}` failed (try {attempt + 1} of {retries + 1}):\n"
            result.error += traceback.format_exc()
            if attempt < retries:
                time.sleep(min(backoff * 2**attempt, 30.0))
    result.ended = time.time()
    result.wall_s = time.perf_counter() - wall0
    result.cpu_s = time.process_time() - cpu0
    result.peak_rss = _peak_rss()
    return result


def split_outputs(node: Node, value: Any) -> dict[str, Any]:
    """The step's return value as output name → value, checked against the declared outputs."""
    names = node.step.output_names
    if not node.step.multiple_outputs:
        return {names[0]: value}
    if not isinstance(value, tuple | list) or len(value) != len(names):
        got = f"a {type(value).__name__} of length {len(value)}" if hasattr(value, "__len__") else repr(value)
        raise TypeError(
            f"step `{node.id}` declares {len(names)} outputs {list(names)} but returned {got}; "
            "return a tuple with one value per output."
        )
    return dict(zip(names, value, strict=True))


def cache_parts(
    node: Node,
    hashes: dict[tuple[str, str], str],
    environment: dict[str, Any],
    sources: dict[str, str],
) -> CacheKey:
    """The node's cache key: literal arguments are params, placeholders become input hashes.

    An argument holding one placeholder is input ``arg``; placeholders nested in a list or dict
    are ``arg[0]``, ``arg[1]``, ... in order (literals beside them stay in the params).
    """
    params: dict[str, Any] = {}
    inputs: dict[str, str] = {}
    for name, value in node.arguments.items():
        if isinstance(value, Output):
            inputs[name] = hashes[(value.node, value.name)]
            continue
        found = list(iter_outputs(value))
        for i, output in enumerate(found):
            inputs[f"{name}[{i}]"] = hashes[(output.node, output.name)]
        params[name] = canonical(replace_outputs(value, lambda out: "<input>")) if found else value
    return cache_key(node.step, params, inputs, environment, sources=sources)


def default_environment() -> dict[str, Any]:
    """What a cache key records about the environment by default: Python and keel versions."""
    from keel._version import __version__

    return {"python": f"{sys.version_info.major}.{sys.version_info.minor}", "keel": __version__}
