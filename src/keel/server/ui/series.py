"""Metric series for the UI's charts, shaped for uPlot and kept small on the server.

A chart never receives more points than it can draw: the store downsamples a long history
(keeping each bucket's extremes, so spikes survive), and overlaid runs are put on one shared
x grid here. Values that JSON cannot carry (NaN, infinities) become ``null``, which uPlot draws
as a gap; the point count and the number of such values are sent along so nothing is hidden.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInputError

if TYPE_CHECKING:
    import numpy as np

    from keel.entities import MetricHistory, Run
    from keel.store.base import Store

__all__ = ["AXES", "DEFAULT_POINTS", "MAX_POINTS", "align_series", "compare_series", "run_series"]

#: x axes a chart can use: the step, wall-clock time, or seconds since the run started
AXES = ("step", "time", "relative")
#: points per series for a chart about 1,000 pixels wide (two per pixel keep the envelope)
DEFAULT_POINTS = 2000
MAX_POINTS = 20_000
#: buckets of the shared x grid of an overlay of several runs (two positions each)
OVERLAY_BUCKETS = 400
#: significant digits (of a series' largest magnitude) sent to the browser
DIGITS = 7


def check_axis(axis: str) -> str:
    if axis not in AXES:
        raise InvalidInputError(f"unknown x axis {axis!r}; use one of {', '.join(AXES)}")
    return axis


def check_points(points: int) -> int:
    if not 10 <= points <= MAX_POINTS:
        raise InvalidInputError(f"points must be between 10 and {MAX_POINTS:,}; got {points:,}")
    return points


def _x(history: MetricHistory, axis: str, start_time: int) -> np.ndarray:
    import numpy as np

    if axis == "step":
        return history.steps.astype(np.float64)
    if axis == "time":
        return history.timestamps.astype(np.float64) / 1000.0
    return (history.timestamps.astype(np.float64) - start_time) / 1000.0


def _json_values(values: np.ndarray) -> list[float | None]:
    """Values for the browser: NaN and infinities become ``None`` (gaps); the rest are rounded to
    :data:`DIGITS` significant digits of the largest magnitude, which a chart cannot tell apart
    but which halves the JSON (``0.123457`` instead of ``0.12345678901234568``)."""
    import numpy as np

    finite = np.isfinite(values)
    if finite.any():
        largest = float(np.abs(values[finite]).max())
        if largest > 0:
            decimals = DIGITS - 1 - math.floor(math.log10(largest))
            if decimals < 15:
                values = np.round(values, decimals)
    if finite.all():
        return values.tolist()  # type: ignore[no-any-return]
    return [v if ok else None for v, ok in zip(values.tolist(), finite.tolist(), strict=True)]


def _order(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np

    if x.size > 1 and bool((np.diff(x) < 0).any()):
        order = np.argsort(x, kind="stable")
        return x[order], y[order]
    return x, y


def run_series(
    store: Store, run: Run, key: str, *, axis: str = "step", points: int = DEFAULT_POINTS
) -> dict[str, Any]:
    """One metric of one run: ``{"key", "axis", "x", "y", "points", "max_points", "nonfinite"}``.

    A history longer than ``max_points`` arrives downsampled (``points`` is what was sent).
    """
    import numpy as np

    check_axis(axis)
    check_points(points)
    history = store.get_metric_history(run.run_id, key, max_points=points)
    x, y = _order(_x(history, axis, run.start_time), history.values.astype(np.float64))
    return {
        "key": key,
        "axis": axis,
        "x": x.tolist(),
        "y": _json_values(y),
        "points": int(y.size),
        "max_points": points,
        "nonfinite": int((~np.isfinite(y)).sum()),
    }


def align_series(
    series: Sequence[tuple[np.ndarray, np.ndarray]], buckets: int = OVERLAY_BUCKETS
) -> tuple[list[float], list[list[float | None]]]:
    """Put several (x, y) series on one x grid, as uPlot's aligned data wants.

    When the series share few enough x values they are joined exactly. Otherwise the x range is
    cut into ``buckets`` equal buckets with two slots each, and every series places its bucket's
    minimum and maximum (in the order they occur) in the two slots, so a spike in any run stays
    visible. Slots a series does not reach are ``None`` (uPlot spans them).
    """
    import numpy as np

    present = [(x, y) for x, y in series if x.size]
    if not present:
        return [], [[] for _ in series]
    union = np.unique(np.concatenate([x for x, _ in present]))
    if union.size <= 2 * buckets:
        xs = union
        columns: list[list[float | None]] = []
        for x, y in series:
            column = np.full(xs.size, np.nan)
            if x.size:
                # several points at one x: the last one wins (as a line through them would end there)
                column[np.searchsorted(xs, x)] = y
            columns.append(_json_values(column))
        return xs.tolist(), columns
    low, high = float(union[0]), float(union[-1])
    width = (high - low) / buckets
    xs = low + width * (np.arange(2 * buckets) / 2.0)
    columns = []
    for x, y in series:
        column = np.full(2 * buckets, np.nan)
        finite = np.isfinite(y)
        x, y = x[finite], y[finite]
        if x.size:
            index = np.clip(((x - low) / width).astype(np.int64), 0, buckets - 1)
            # sorted by bucket, then value: each bucket's first entry is its minimum, its last the maximum
            order = np.lexsort((y, index))
            grouped = index[order]
            starts = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]])
            ends = np.r_[starts[1:], grouped.size] - 1
            lowest, highest = order[starts], order[ends]
            # positions in the (x-sorted) series: the earlier extreme takes the bucket's first slot
            first, second = np.minimum(lowest, highest), np.maximum(lowest, highest)
            bucket = grouped[starts]
            column[2 * bucket] = y[first]
            column[2 * bucket + 1] = y[second]
        columns.append(_json_values(column))
    return xs.tolist(), columns


def compare_series(
    store: Store, runs: Sequence[Run], key: str, *, axis: str = "step", points: int = DEFAULT_POINTS
) -> dict[str, Any]:
    """One metric of several runs on a shared x grid: ``{"key", "axis", "x", "runs", "y"}``."""
    import numpy as np

    check_axis(axis)
    check_points(points)
    raw = []
    per_run = min(points, 4 * OVERLAY_BUCKETS)
    for run in runs:
        if key in run.metrics:
            history = store.get_metric_history(run.run_id, key, max_points=per_run)
            raw.append(_order(_x(history, axis, run.start_time), history.values.astype(np.float64)))
        else:
            raw.append((np.empty(0), np.empty(0)))
    xs, columns = align_series(raw)
    return {
        "key": key,
        "axis": axis,
        "x": xs,
        "runs": [{"run_id": run.run_id, "name": run.name} for run in runs],
        "y": columns,
    }


def smooth(values: Sequence[float | None], weight: float) -> list[float | None]:
    """Exponential moving average with debiasing (as TensorBoard draws it); gaps stay gaps.

    The browser smooths too (so the slider needs no round trip); this is the reference the tests
    hold the JavaScript to.
    """
    if not 0 <= weight < 1:
        raise InvalidInputError(f"smoothing must be in [0, 1); got {weight}")
    out: list[float | None] = []
    last, count = 0.0, 0
    for value in values:
        if value is None or not math.isfinite(value):
            out.append(None)
            continue
        last = last * weight + (1 - weight) * value
        count += 1
        out.append(last / (1 - weight**count))
    return out
