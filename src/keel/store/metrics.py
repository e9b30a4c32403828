"""Packing metric points into chunks and reading them back, and downsampling long histories."""

from __future__ import annotations

import math
import struct
from array import array
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Chunk", "chunks_from_points", "downsample", "encode_special", "join_chunks"]

_NEG_ZERO = struct.pack("<d", -0.0)


class Chunk:
    """Points of one metric key, packed: little-endian int64 steps and timestamps, float64 values."""

    __slots__ = ("count", "key", "max_step", "min_step", "steps", "timestamps", "values")

    def __init__(
        self,
        key: str,
        steps: bytes,
        timestamps: bytes,
        values: bytes,
        count: int,
        min_step: int,
        max_step: int,
    ):
        self.key = key
        self.steps = steps
        self.timestamps = timestamps
        self.values = values
        self.count = count
        self.min_step = min_step
        self.max_step = max_step

    @classmethod
    def from_lists(
        cls, key: str, steps: Sequence[int], timestamps: Sequence[int], values: Sequence[float]
    ) -> Chunk:
        step_array = steps if isinstance(steps, array) else array("q", steps)
        stamps = timestamps if isinstance(timestamps, array) else array("q", timestamps)
        value_array = values if isinstance(values, array) else array("d", values)
        return cls(
            key,
            _le(step_array),
            _le(stamps),
            _le(value_array),
            len(step_array),
            min(step_array),
            max(step_array),
        )

    def latest(self) -> tuple[int, int, float]:
        """(step, timestamp, value) of the latest point: largest step, then newest timestamp."""
        if self.count <= 64:  # small chunks (the common case) need no numpy
            small_steps, small_stamps = _from_le("q", self.steps), _from_le("q", self.timestamps)
            at = max(range(self.count), key=lambda i: (small_steps[i], small_stamps[i], i))
            return small_steps[at], small_stamps[at], _from_le("d", self.values)[at]
        import numpy as np

        steps = np.frombuffer(self.steps, dtype="<i8")
        stamps = np.frombuffer(self.timestamps, dtype="<i8")
        values = np.frombuffer(self.values, dtype="<f8")
        candidates = np.flatnonzero(steps == steps.max())
        newest = stamps[candidates]
        # the last of the newest points wins, as a later log call would
        best = candidates[newest.size - 1 - int(np.argmax(newest[::-1]))]
        return int(steps[best]), int(stamps[best]), float(values[best])


def _le(values: array[Any]) -> bytes:
    if struct.pack("=H", 1) != struct.pack("<H", 1):  # pragma: no cover - big-endian hosts
        values.byteswap()
    return values.tobytes()


def _from_le(code: str, data: bytes) -> array[Any]:
    values = array(code)
    values.frombytes(data)
    if struct.pack("=H", 1) != struct.pack("<H", 1):  # pragma: no cover
        values.byteswap()
    return values


def chunks_from_points(points: Iterable[tuple[str, float, int, int]]) -> list[Chunk]:
    """Group (key, value, step, timestamp) points into one chunk per key, keeping their order."""
    groups: dict[str, tuple[list[int], list[int], list[float]]] = {}
    for key, value, step, timestamp in points:
        group = groups.get(key)
        if group is None:
            group = groups[key] = ([], [], [])
        group[0].append(step)
        group[1].append(timestamp)
        group[2].append(value)
    return [Chunk.from_lists(key, s, t, v) for key, (s, t, v) in groups.items()]


def encode_special(value: float) -> tuple[float | None, int]:
    """(column value, special flag) for latest_metrics: NaN -> (NULL, 1), -0.0 -> (0.0, 2)."""
    if math.isnan(value):
        return None, 1
    if value == 0.0 and math.copysign(1.0, value) < 0:
        return 0.0, 2
    return value, 0


def decode_special(value: float | None, special: int) -> float:
    if special == 1:
        return math.nan
    if special == 2:
        return -0.0
    return float(value)  # type: ignore[arg-type]


def join_chunks(
    rows: Sequence[tuple[bytes, bytes, bytes]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Concatenate chunk rows into arrays sorted by step (stable, so equal steps keep log order)."""
    import numpy as np

    if not rows:
        empty_i = np.empty(0, dtype="<i8")
        return empty_i, empty_i.copy(), np.empty(0, dtype="<f8")
    steps = np.frombuffer(b"".join(r[0] for r in rows), dtype="<i8")
    stamps = np.frombuffer(b"".join(r[1] for r in rows), dtype="<i8")
    values = np.frombuffer(b"".join(r[2] for r in rows), dtype="<f8")
    if steps.size > 1 and bool(np.any(steps[1:] < steps[:-1])):
        order = np.argsort(steps, kind="stable")
        steps, stamps, values = steps[order], stamps[order], values[order]
    return steps, stamps, values


def downsample(
    steps: np.ndarray, stamps: np.ndarray, values: np.ndarray, max_points: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """At most ``max_points`` points that keep each bucket's first, last, minimum and maximum.

    The series is cut into ``max_points // 4`` buckets of consecutive points (equal sizes but the
    last); from each the first, minimum, maximum and last points survive, in their original order,
    so spikes stay visible. A bucket holding NaN keeps its first NaN too, so gaps stay visible.
    """
    import numpy as np

    n = values.shape[0]
    if max_points <= 0:
        raise ValueError("max_points must be positive")
    if n <= max_points:
        return steps, stamps, values
    buckets = max(1, max_points // 4)
    size = -(-n // buckets)  # ceil: every bucket but the last is full
    nan = np.isnan(values)
    any_nan = bool(nan.any())
    # without NaN the extremes come straight from views of the data: no copies
    low = np.where(nan, np.inf, values) if any_nan else values
    high = np.where(nan, -np.inf, values) if any_nan else values
    full = n // size
    offsets = np.arange(full) * size
    keep = [
        offsets,
        offsets + size - 1,
        offsets + low[: full * size].reshape(full, size).argmin(axis=1),
        offsets + high[: full * size].reshape(full, size).argmax(axis=1),
    ]
    if full * size < n:  # the last, shorter bucket
        start = full * size
        keep.append(
            np.array([start, n - 1, start + int(low[start:].argmin()), start + int(high[start:].argmax())])
        )
    if any_nan:  # the first NaN of each bucket that has one
        positions = np.flatnonzero(nan)
        _, first_per_bucket = np.unique(positions // size, return_index=True)
        keep.append(positions[first_per_bucket])
    index = np.unique(np.concatenate(keep))
    return steps[index], stamps[index], values[index]
