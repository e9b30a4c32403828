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

    The series is cut into ``max_points // 4`` buckets of consecutive points; from each the first,
    minimum, maximum and last points survive, in their original order, so spikes stay visible.
    NaN points are kept (each bucket keeps its first NaN too) so gaps stay visible.
    """
    import numpy as np

    n = values.shape[0]
    if max_points <= 0:
        raise ValueError("max_points must be positive")
    if n <= max_points:
        return steps, stamps, values
    buckets = max(1, max_points // 4)
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    nonempty = edges[1:] > edges[:-1]
    starts, ends = edges[:-1][nonempty], edges[1:][nonempty]
    finite = np.where(np.isnan(values), np.inf, values)
    finite_max = np.where(np.isnan(values), -np.inf, values)
    min_idx = _segment_arg(finite, starts, np.minimum)
    max_idx = _segment_arg(finite_max, starts, np.maximum)
    keep = np.concatenate([starts, ends - 1, min_idx, max_idx])
    nan_positions = np.flatnonzero(np.isnan(values))
    if nan_positions.size:
        bucket_of = np.searchsorted(ends, nan_positions, side="right")
        _, first = np.unique(bucket_of, return_index=True)
        keep = np.concatenate([keep, nan_positions[first]])
    keep = np.unique(keep)
    return steps[keep], stamps[keep], values[keep]


def _segment_arg(values: np.ndarray, starts: np.ndarray, ufunc: Any) -> np.ndarray:
    """Index of the extreme value within each segment [starts[i], starts[i+1])."""
    import numpy as np

    extreme = ufunc.reduceat(values, starts)
    segment = np.repeat(np.arange(starts.size), np.diff(np.append(starts, values.size)))
    hits = np.flatnonzero(values == extreme[segment])
    # first hit in each segment
    hit_segments = segment[hits]
    _, first = np.unique(hit_segments, return_index=True)
    result = starts.copy()
    result[hit_segments[first]] = hits[first]
    return result
