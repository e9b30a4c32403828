"""Time in keel: integer milliseconds since the Unix epoch, as MLflow stores it."""

from __future__ import annotations

import time

__all__ = ["now_ms"]


def now_ms() -> int:
    return time.time_ns() // 1_000_000
