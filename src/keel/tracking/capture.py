"""Collect the metrics a block of code logs, while they are logged as usual.

A pipeline step runs inside :func:`capture_metrics`; when a later run takes the step from the cache,
the metrics it logged are logged again on that run, so a cached run shows what the step reported.
``keel.tracking.fluent.log_metric`` checks :data:`taps` (one truth test while nothing captures).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["capture_metrics", "record", "taps"]

#: (thread id, list) of each capture in progress, innermost last
taps: list[tuple[int, list[tuple[str, Any, Any]]]] = []


def record(key: str, value: Any, step: Any) -> None:
    """Called by ``log_metric`` while :data:`taps` is not empty: keep the point for this thread."""
    ident, found = taps[-1]
    if ident == threading.get_ident():  # another thread's metrics are not the step's
        found.append((key, value, step))


@contextlib.contextmanager
def capture_metrics() -> Iterator[list[tuple[str, Any, Any]]]:
    """Also collect ``(key, value, step)`` of each metric this thread logs into the list yielded.

    >>> with capture_metrics() as logged:
    ...     keel.log_metric("auc", 0.9)
    >>> logged
    [('auc', 0.9, 0)]
    """
    found: list[tuple[str, Any, Any]] = []
    entry = (threading.get_ident(), found)
    taps.append(entry)
    try:
        yield found
    finally:
        taps.remove(entry)
