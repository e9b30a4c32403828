"""A self-contained HTML drift report: verdict, defaults, a statistics table and overlaid histograms.

One file with inline CSS and SVG, no scripts and no network access; every name and value from the data is
HTML-escaped. Histograms come from the profiles' sketches, so no raw rows ever reach the report.
"""

from __future__ import annotations

import html
import math
from typing import Any

from keel.data.drift_detection import (
    DEFAULT_DRIFT_SHARE,
    DEFAULT_METHODS,
    DEFAULT_THRESHOLDS,
    DriftResult,
    family,
)
from keel.data.profiles import ColumnProfile

__all__ = ["render_drift_report"]

BINS = 30
TOP = 15
WIDTH, HEIGHT = 320, 90
REFERENCE_COLOUR, CURRENT_COLOUR = "#4e79a7", "#f28e2b"

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}
h1{font-size:20px;margin:0 0 8px}
.verdict{font-size:16px;padding:8px 12px;border-radius:4px;display:inline-block}
.drift{background:#fde2e1;color:#8a1c14} .ok{background:#e3f4e1;color:#1d5c1a}
table{border-collapse:collapse;margin:12px 0}
td,th{border-bottom:1px solid #ddd;padding:4px 10px;text-align:left;vertical-align:middle}
th{background:#f6f6f6} td.num{text-align:right;font-variant-numeric:tabular-nums}
.yes{color:#b3261e;font-weight:600} .no{color:#2e7d32} .note{color:#666;font-size:12px}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px}
"""


def render_drift_report(result: DriftResult, *, title: str | None = None) -> str:
    """The report as one HTML string."""
    esc = html.escape
    verdict = "Dataset drift detected" if result.dataset_drift else "No dataset drift"
    heading = title or f"Drift: {result.current_name or 'current'} vs {result.reference_name or 'reference'}"
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{esc(heading)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(heading)}</h1>",
        f"<div class='verdict {'drift' if result.dataset_drift else 'ok'}'>{verdict}: "
        f"{len(result.drifted_columns)} of {len(result.columns)} columns drifted "
        f"({result.share:.0%}; the dataset drifts at {result.drift_share:.0%})</div>",
        f"<p>Reference: {esc(result.reference_name)} ({result.reference_rows:,} rows) &middot; "
        f"current: {esc(result.current_name)} ({result.current_rows:,} rows)</p>",
    ]
    if result.excluded:
        parts.append(
            "<p>Not in the verdict (columns that identify rows differ between any two samples; to compare "
            "them anyway name them with <code>--columns</code> or <code>columns=</code>): "
            f"excluded: {esc(result.excluded_text())}</p>"
        )
    parts.append(_defaults_table())
    if result.multivariate:
        mv = result.multivariate
        parts.append(
            f"<p>Multivariate domain classifier: ROC AUC {mv['roc_auc']:.3f} (threshold {mv['threshold']}) "
            f"&rarr; <span class='{'yes' if mv['drifted'] else 'no'}'>"
            f"{'drift' if mv['drifted'] else 'no drift'}</span></p>"
        )
    parts.append(
        "<div class='legend'>histograms:<span style='background:"
        f"{REFERENCE_COLOUR}'></span>reference<span style='background:{CURRENT_COLOUR}'></span>current</div>"
    )
    parts.append(
        "<table><tr><th>column</th><th>kind</th><th>method</th><th>threshold</th><th>statistic</th>"
        "<th>p-value</th><th>drift</th><th>nulls ref / cur</th><th>distribution</th></tr>"
    )
    for item in result.columns:
        ref = _column(result.reference, item.column)
        cur = _column(result.current, item.column)
        note = f"<div class='note'>{esc(item.note)}</div>" if item.note else ""
        default = "" if item.default else " <span class='note'>(set)</span>"
        parts.append(
            f"<tr><td>{esc(item.column)}{note}</td><td>{esc(item.kind)}</td>"
            f"<td>{esc(item.method)}{default}</td><td class='num'>{_number(item.threshold)}</td>"
            f"<td class='num'>{_number(item.statistic)}</td>"
            f"<td class='num'>{'' if item.p_value is None else _number(item.p_value)}</td>"
            f"<td class='{'yes' if item.drifted else 'no'}'>{'yes' if item.drifted else 'no'}</td>"
            f"<td class='num'>{_percent(item.reference_null_fraction)} / "
            f"{_percent(item.current_null_fraction)}</td>"
            f"<td>{_histogram_svg(ref, cur)}</td></tr>"
        )
    parts.append("</table></body></html>")
    return "".join(parts)


def _defaults_table() -> str:
    rows = "".join(
        f"<tr><td>{kind}</td><td>{method}</td><td class='num'>{DEFAULT_THRESHOLDS[method]}</td></tr>"
        for kind, method in DEFAULT_METHODS.items()
    )
    return (
        "<details><summary>Defaults</summary><table><tr><th>columns</th><th>method</th><th>threshold</th></tr>"
        f"{rows}</table><p>Distances (wasserstein, psi, hellinger, jensenshannon) drift at or above the "
        "threshold; tests (ks, chisquare) drift when the p-value is below it. The dataset drifts when "
        f"the share of drifted columns reaches {DEFAULT_DRIFT_SHARE:.0%} unless set otherwise.</p></details>"
    )


def _column(profile: Any, name: str) -> ColumnProfile | None:
    if profile is None or name not in profile:
        return None
    column: ColumnProfile = profile[name]
    return column


def _histogram_svg(ref: ColumnProfile | None, cur: ColumnProfile | None) -> str:
    if ref is None:
        return ""
    if family(ref) == "numeric" and ref.kll is not None and not ref.kll.is_empty():
        return _numeric_svg(ref, cur if cur is not None and cur.kll is not None else None)
    if ref.frequent is not None:
        return _categorical_svg(ref, cur if cur is not None and cur.frequent is not None else None)
    return ""


def _numeric_svg(ref: ColumnProfile, cur: ColumnProfile | None) -> str:
    low, high = ref.moments.min, ref.moments.max
    if cur is not None and cur.moments.n:
        low, high = min(low, cur.moments.min), max(high, cur.moments.max)
    if not high > low:
        high = low + 1.0
    edges = [low + (high - low) * i / BINS for i in range(1, BINS)]
    series = [list(ref.kll.get_pmf(edges))]
    if cur is not None and not cur.kll.is_empty():
        series.append(list(cur.kll.get_pmf(edges)))
    label = f"{_number(low)} … {_number(high)}"
    return _bars_svg(series, label)


def _categorical_svg(ref: ColumnProfile, cur: ColumnProfile | None) -> str:
    ref_top = dict(ref.top_values(1000))
    cur_top = dict(cur.top_values(1000)) if cur is not None else {}
    labels = sorted(set(ref_top) | set(cur_top), key=lambda v: -(ref_top.get(v, 0) + cur_top.get(v, 0)))[:TOP]
    ref_total = max(1, ref.non_null_count)
    series = [[ref_top.get(v, 0) / ref_total for v in labels]]
    if cur is not None and cur.non_null_count:
        series.append([cur_top.get(v, 0) / cur.non_null_count for v in labels])
    shown = ", ".join(labels[:5]) + (" …" if len(labels) > 5 else "")
    return _bars_svg(series, shown)


def _bars_svg(series: list[list[float]], label: str) -> str:
    bins = len(series[0])
    peak = max((v for s in series for v in s if math.isfinite(v)), default=0.0) or 1.0
    width = WIDTH / max(1, bins)
    plot = HEIGHT - 14
    shapes = []
    for values, colour in zip(series, (REFERENCE_COLOUR, CURRENT_COLOUR), strict=False):
        for i, value in enumerate(values):
            h = max(0.0, value) / peak * plot
            if h <= 0:
                continue
            shapes.append(
                f"<rect x='{i * width:.1f}' y='{plot - h:.1f}' "
                f"width='{width:.1f}' height='{h:.1f}' fill='{colour}' fill-opacity='0.55'/>"
            )
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{HEIGHT}' role='img' "
        f"aria-label='histogram'>{''.join(shapes)}"
        f"<text x='0' y='{HEIGHT - 2}' font-size='10' fill='#555'>{html.escape(label)}</text></svg>"
    )


def _number(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "&ndash;"
    if isinstance(value, float) and math.isinf(value):
        return "&infin;" if value > 0 else "-&infin;"
    if value == 0:
        return "0"
    if abs(value) >= 1e5 or abs(value) < 1e-3:
        return f"{value:.3g}"
    return f"{value:.4g}"


def _percent(value: float) -> str:
    return "&ndash;" if value is None or math.isnan(value) else f"{value:.1%}"
