"""Server-drawn SVG charts: parallel coordinates, a param-vs-metric scatter, a histogram.

They need no JavaScript, print well and scale to any number of runs the page holds. All text is
XML-escaped, so a run or key named ``<script>`` is drawn as text. Colours come from classes that
the stylesheet sets per theme, plus a per-run hue given as a presentation attribute (not a
``style``, which the page's Content-Security-Policy forbids).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

__all__ = ["Axis", "histogram", "parallel_coordinates", "scatter"]

_W, _H, _PAD = 900, 320, 48


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            parsed = float(value)
        except ValueError:
            return None
        return parsed if math.isfinite(parsed) else None
    return None


def _short(value: float) -> str:
    return f"{value:.4g}"


def _clip(text: str, width: int = 22) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


class Axis:
    """One dimension: numeric when every present value parses as a finite number, else categorical."""

    def __init__(self, label: str, values: Sequence[object]):
        self.label = label
        present = [v for v in values if v is not None and v != ""]
        numbers = [_number(v) for v in present]
        self.numeric = bool(present) and all(n is not None for n in numbers)
        if self.numeric:
            found = [n for n in numbers if n is not None]
            self.low, self.high = min(found), max(found)
            self.categories: list[str] = []
        else:
            self.low, self.high = 0.0, 0.0
            self.categories = sorted({str(v) for v in present})

    def position(self, value: object) -> float | None:
        """Where ``value`` sits on the axis, 0 (bottom) to 1 (top); None when missing."""
        if value is None or value == "":
            return None
        if self.numeric:
            number = _number(value)
            if number is None:
                return None
            span = self.high - self.low
            return 0.5 if span == 0 else (number - self.low) / span
        text = str(value)
        if text not in self.categories:
            return None
        count = len(self.categories)
        return 0.5 if count == 1 else self.categories.index(text) / (count - 1)

    def ticks(self) -> list[tuple[float, str]]:
        if self.numeric:
            if self.high == self.low:
                return [(0.5, _short(self.low))]
            return [(0.0, _short(self.low)), (1.0, _short(self.high))]
        count = len(self.categories)
        shown = self.categories if count <= 8 else [self.categories[0], self.categories[-1]]
        return [(self.position(c) or 0.0, _clip(c, 14)) for c in shown]


def _caption(text: str) -> str:
    return (
        f'<text class="axis-label" x="{_W / 2:.0f}" y="{_H - 8}" text-anchor="middle">{escape(text)}</text>'
    )


def _hue(index: int, count: int) -> str:
    return f"hsl({round(360 * index / max(count, 1))}, 65%, 50%)"


def parallel_coordinates(
    columns: Sequence[str], rows: Sequence[tuple[str, Mapping[str, object]]], *, title: str
) -> str:
    """One polyline per run (``rows`` is ``(run label, {column: value})``) across ``columns``."""
    width = max(_W, 2 * _PAD + 140 * max(len(columns) - 1, 1))
    axes = [Axis(c, [values.get(c) for _, values in rows]) for c in columns]
    inner_h = _H - 2 * _PAD
    xs = [
        _PAD + (i * (width - 2 * _PAD) / (len(axes) - 1) if len(axes) > 1 else (width - 2 * _PAD) / 2)
        for i in range(len(axes))
    ]
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart-svg" role="img" width="{width}" '
        f'height="{_H}" viewBox="0 0 {width} {_H}" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    for index, (label, values) in enumerate(rows):
        hue = _hue(index, len(rows))
        segment: list[str] = []
        pieces: list[str] = []
        for x, axis in zip(xs, axes, strict=True):
            where = axis.position(values.get(axis.label))
            if where is None:
                if len(segment) > 1:
                    pieces.append(" ".join(segment))
                segment = []
                continue
            segment.append(f"{x:.1f},{_PAD + inner_h * (1 - where):.1f}")
        if len(segment) > 1:
            pieces.append(" ".join(segment))
        for points in pieces:
            out.append(
                f'<polyline class="pc-line" fill="none" stroke="{hue}" stroke-width="1.5" '
                f'points="{points}"><title>{escape(label)}</title></polyline>'
            )
    for x, axis in zip(xs, axes, strict=True):
        out.append(f'<line class="axis" x1="{x:.1f}" y1="{_PAD}" x2="{x:.1f}" y2="{_H - _PAD}"/>')
        out.append(
            f'<text class="axis-label" x="{x:.1f}" y="{_PAD - 18}" text-anchor="middle">'
            f"{escape(_clip(axis.label))}</text>"
        )
        for where, text in axis.ticks():
            out.append(
                f'<text class="tick" x="{x + 4:.1f}" y="{_PAD + inner_h * (1 - where) + 4:.1f}">'
                f"{escape(text)}</text>"
            )
    out.append("</svg>")
    return "\n".join(out)


def scatter(points: Sequence[tuple[str, object, object]], *, x_label: str, y_label: str, title: str) -> str:
    """One dot per run (``points`` is ``(run label, x value, y value)``); a categorical x is spread
    over its sorted values. Runs missing either value are left out and counted in the caption."""
    x_axis = Axis(x_label, [p[1] for p in points])
    y_axis = Axis(y_label, [p[2] for p in points])
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart-svg" role="img" width="{_W}" '
        f'height="{_H}" viewBox="0 0 {_W} {_H}" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<line class="axis" x1="{_PAD}" y1="{_H - _PAD}" x2="{_W - _PAD}" y2="{_H - _PAD}"/>',
        f'<line class="axis" x1="{_PAD}" y1="{_PAD}" x2="{_PAD}" y2="{_H - _PAD}"/>',
    ]
    left_out = 0
    for index, (label, x_value, y_value) in enumerate(points):
        px, py = x_axis.position(x_value), y_axis.position(y_value)
        if px is None or py is None:
            left_out += 1
            continue
        cx = _PAD + px * (_W - 2 * _PAD)
        cy = _H - _PAD - py * (_H - 2 * _PAD)
        out.append(
            f'<circle class="dot" cx="{cx:.1f}" cy="{cy:.1f}" r="5" fill="{_hue(index, len(points))}">'
            f"<title>{escape(label)}: {escape(str(x_value))}, {escape(str(y_value))}</title></circle>"
        )
    for where, text in x_axis.ticks():
        out.append(
            f'<text class="tick" x="{_PAD + where * (_W - 2 * _PAD):.1f}" y="{_H - _PAD + 16}" '
            f'text-anchor="middle">{escape(text)}</text>'
        )
    for where, text in y_axis.ticks():
        out.append(
            f'<text class="tick" x="{_PAD - 4}" y="{_H - _PAD - where * (_H - 2 * _PAD) + 4:.1f}" '
            f'text-anchor="end">{escape(text)}</text>'
        )
    caption = f"{x_label} → {y_label}"
    if left_out:
        caption += f" ({left_out} run{'s' if left_out != 1 else ''} without both values not drawn)"
    out.append(_caption(caption))
    out.append("</svg>")
    return "\n".join(out)


def histogram(values: Sequence[float], *, label: str, bins: int = 20) -> str:
    """Counts of ``values`` in ``bins`` equal-width bins (non-finite values counted in the caption)."""
    finite = [v for v in values if math.isfinite(v)]
    skipped = len(values) - len(finite)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart-svg" role="img" width="{_W}" '
        f'height="{_H}" viewBox="0 0 {_W} {_H}" aria-label="histogram of {escape(label)}">',
        f"<title>histogram of {escape(label)}</title>",
    ]
    if finite:
        low, high = min(finite), max(finite)
        span = (high - low) or 1.0
        counts = [0] * bins
        for v in finite:
            counts[min(int((v - low) / span * bins), bins - 1)] += 1
        tallest = max(counts)
        bar_w = (_W - 2 * _PAD) / bins
        for i, count in enumerate(counts):
            h = (_H - 2 * _PAD) * count / tallest
            x = _PAD + i * bar_w
            lo = low + i * span / bins
            out.append(
                f'<rect class="bar" x="{x:.1f}" y="{_H - _PAD - h:.1f}" width="{bar_w - 1:.1f}" '
                f'height="{h:.1f}"><title>[{_short(lo)}, {_short(lo + span / bins)}): {count}</title></rect>'
            )
        out.append(f'<text class="tick" x="{_PAD}" y="{_H - _PAD + 16}">{_short(low)}</text>')
        out.append(
            f'<text class="tick" x="{_W - _PAD}" y="{_H - _PAD + 16}" text-anchor="end">{_short(high)}</text>'
        )
    caption = f"{label}: {len(finite)} values"
    if skipped:
        caption += f", {skipped} NaN or infinite not drawn"
    out.append(_caption(caption))
    out.append("</svg>")
    return "\n".join(out)
