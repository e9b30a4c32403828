"""Chart data: overlay alignment keeps spikes, smoothing matches its definition, SVG escapes text."""

from __future__ import annotations

import math

import numpy as np
import pytest

from keel.errors import InvalidInputError
from keel.server.ui import series, svg


def test_align_joins_shared_steps_exactly() -> None:
    a = (np.array([0.0, 1.0, 2.0]), np.array([1.0, 2.0, 3.0]))
    b = (np.array([1.0, 2.0, 3.0]), np.array([5.0, math.nan, 7.0]))
    xs, (ya, yb) = series.align_series([a, b])
    assert xs == [0.0, 1.0, 2.0, 3.0]
    assert ya == [1.0, 2.0, 3.0, None] and yb == [None, 5.0, None, 7.0]


def test_align_buckets_long_unshared_series_and_keeps_spikes() -> None:
    x1 = np.arange(100_000, dtype=float)
    y1 = np.zeros(100_000)
    y1[54_321] = 99.0  # one spike
    x2 = x1 + 0.5
    y2 = -np.ones(100_000)
    y2[7] = -50.0
    xs, (c1, c2) = series.align_series([(x1, y1), (x2, y2)], buckets=500)
    assert len(xs) == 1000 and len(c1) == len(c2) == 1000
    assert max(v for v in c1 if v is not None) == 99.0
    assert min(v for v in c2 if v is not None) == -50.0
    assert xs == sorted(xs)


def test_align_handles_empty_series() -> None:
    xs, columns = series.align_series([(np.empty(0), np.empty(0))])
    assert xs == [] and columns == [[]]


def test_smooth_is_a_debiased_ema_that_keeps_gaps() -> None:
    out = series.smooth([1.0, None, 3.0], 0.5)
    assert out[0] == pytest.approx(1.0)
    assert out[1] is None
    assert out[2] == pytest.approx((0.5 * 0.5 * 1 + 0.5 * 3) / (1 - 0.25))
    assert series.smooth([2.0, 4.0], 0.0) == [2.0, 4.0]
    with pytest.raises(InvalidInputError, match=r"\[0, 1\)"):
        series.smooth([1.0], 1.0)


def test_bad_axis_and_points_name_the_fix() -> None:
    with pytest.raises(InvalidInputError, match="step, time, relative"):
        series.check_axis("x")
    with pytest.raises(InvalidInputError, match="between 10 and"):
        series.check_points(5)


def test_svg_charts_escape_labels_and_report_what_they_leave_out() -> None:
    rows = [
        ("<b>a</b>", {"params.k": "<x>", "metrics.m": 1.0}),
        ("b", {"params.k": "y", "metrics.m": math.nan}),
    ]
    drawn = svg.parallel_coordinates(["params.k", "metrics.m"], rows, title="t<")
    assert "<b>" not in drawn and "&lt;b&gt;a&lt;/b&gt;" in drawn and "&lt;x&gt;" in drawn
    dots = svg.scatter([("r1", "0.1", 2.0), ("r2", None, 3.0)], x_label="lr", y_label="acc", title="s")
    assert dots.count("<circle") == 1 and "1 run without both values not drawn" in dots
    bars = svg.histogram([1.0, 2.0, math.inf], label="acc", bins=2)
    assert bars.count('class="bar"') == 2 and "1 NaN or infinite not drawn" in bars


def test_categorical_axis_orders_values() -> None:
    axis = svg.Axis("model", ["rf", "gbm", None])
    assert not axis.numeric and axis.position("gbm") == 0.0 and axis.position("rf") == 1.0
    assert axis.position(None) is None


def test_previews_read_a_bounded_prefix_and_say_so() -> None:
    from keel.entities import Artifact
    from keel.server.ui import previews

    rows = "n\n" + "".join(f"{i}\n" for i in range(500))
    table = Artifact("r", "t.csv", "0" * 64, len(rows), "text/csv", 0)
    shown = previews.preview(table, lambda limit: rows.encode()[:limit])
    assert shown.kind == "csv" and len(shown.rows) == previews.PREVIEW_ROWS - 1
    assert "first 199 rows" in shown.partial
    huge = Artifact("r", "big.txt", "0" * 64, previews.MAX_PREVIEWED_SIZE + 1, "text/plain", 0)
    assert "too large to preview" in previews.preview(huge, lambda limit: b"").partial
    cut = Artifact("r", "log.txt", "0" * 64, previews.PREVIEW_BYTES + 10, "text/plain", 0)
    shown = previews.preview(cut, lambda limit: b"x" * limit)
    assert shown.kind == "text" and f"first {previews.PREVIEW_BYTES:,}" in shown.partial
    broken = Artifact("r", "bad.json", "0" * 64, 5, "application/json", 0)
    assert previews.preview(broken, lambda limit: b"{nope"[:limit]).partial == "not valid JSON; shown as text"
