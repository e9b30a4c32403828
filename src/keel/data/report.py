"""A self-contained HTML report of a validation: one file, inline CSS and SVG, no scripts, no network.

The report shows the verdict, every check (failures first), the bounded failing-row samples the engine
kept, and per-column statistics with inline SVG histograms. It never holds raw rows beyond those samples,
so its size depends on the number of checks and columns, not on the number of rows. Every name and value
is HTML-escaped.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

from keel.data.results import CheckResult, ValidationResult

__all__ = ["render_html", "write_html"]

#: longest cell text in the samples tables; longer values are cut with a visible "…(N chars)"
MAX_CELL = 200

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1f2328;background:#fff}
header{padding:18px 28px;border-bottom:1px solid #d0d7de}
main{padding:8px 28px 40px}
h1{font-size:20px;margin:0 0 6px}h2{font-size:16px;margin:26px 0 8px}
.meta{color:#57606a;font-size:13px}.meta span{margin-right:18px}
.badge{display:inline-block;padding:2px 10px;border-radius:12px;font-weight:600;color:#fff}
.passed{background:#1a7f37}.failed{background:#cf222e}.error{background:#8250df}.warned{background:#9a6700}
.skipped{background:#6e7781}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid #d8dee4;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa;position:sticky;top:0}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.s-failed td:first-child{border-left:3px solid #cf222e}
tr.s-error td:first-child{border-left:3px solid #8250df}
tr.s-warned td:first-child{border-left:3px solid #9a6700}
tr.s-passed td:first-child{border-left:3px solid #1a7f37}
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px}
details{margin:8px 0}summary{cursor:pointer}
.cols{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:12px}
.col{border:1px solid #d0d7de;border-radius:6px;padding:8px 10px}
.col h3{font-size:14px;margin:0 0 4px;word-break:break-all}
svg{display:block}
"""


def render_html(result: ValidationResult, *, title: str | None = None) -> str:
    """The report as one HTML string."""
    counts = result.counts()
    status = result.status
    heading = title or f"Data validation: {result.dataset}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f"<title>{_e(heading)}</title><style>{_CSS}</style></head><body>",
        "<header>",
        f'<h1>{_e(heading)} <span class="badge {status}">{_e(status.upper())}</span></h1>',
        '<div class="meta">',
        f"<span>suite <b>{_e(result.suite)}</b></span>",
        f"<span>source <code>{_e(result.source)}</code></span>",
        f"<span>rows <b>{_num(result.row_count)}</b></span>",
        f"<span>checks <b>{len(result.results):,}</b>: {counts['passed']:,} passed, "
        f"{counts['failed']:,} failed, "
        f"{counts['warned']:,} warnings, {counts['error']:,} errors, {counts['skipped']:,} skipped</span>",
        f"<span>{result.duration_s:.3f} s ({_e(result.engine or 'polars')})</span>",
        f"<span>started {_e(result.started_at)}</span>",
    ]
    if result.fingerprint:
        parts.append(f"<span>fingerprint <code>{_e(result.fingerprint[:16])}</code></span>")
    if result.run_id:
        parts.append(f"<span>run <code>{_e(result.run_id)}</code></span>")
    parts += ["</div></header><main>"]
    parts += _checks_table(result)
    parts += _samples(result)
    parts += _columns(result)
    parts.append("</main></body></html>")
    return "\n".join(parts)


def write_html(result: ValidationResult, path: str | Path, *, title: str | None = None) -> Path:
    """Write the report to ``path`` and return the path."""
    path = Path(path)
    path.write_text(render_html(result, title=title), encoding="utf-8")
    return path


def _checks_table(result: ValidationResult) -> list[str]:
    ordered = result.failures() + [r for r in result.results if r.status not in ("failed", "error")]
    rows = [
        "<h2>Checks</h2>",
        "<table><thead><tr><th>status</th><th>check</th><th>type</th><th>column</th><th>severity</th>"
        "<th>expected</th><th>observed</th><th>failed rows</th><th>tags</th></tr></thead><tbody>",
    ]
    for check in ordered:
        shown = "warned" if check.status == "failed" and check.severity == "warn" else check.status
        failed = ""
        if check.failed_rows is not None:
            failed = f"{check.failed_rows:,} / {check.evaluated_rows or 0:,}"
            if check.mostly is not None and check.fraction_passed is not None:
                failed += f" ({check.fraction_passed:.2%} ≥ {check.mostly}?)"
        observed = check.message if check.status == "error" else _short(check.observed)
        if check.message and check.status != "error":
            observed = f"{observed} — {check.message}" if observed else check.message
        rows.append(
            f'<tr class="s-{shown}"><td><span class="badge {shown}">{shown}</span></td>'
            f"<td>{_e(check.name)}{_line(check)}</td><td>{_e(check.type)}</td>"
            f"<td>{_e(check.column or '')}</td>"
            f"<td>{_e(check.severity)}</td><td>{_e(check.expected)}</td><td>{_e(observed)}</td>"
            f'<td class="num">{failed}</td><td>{_e(", ".join(check.tags))}</td></tr>'
        )
    rows.append("</tbody></table>")
    return rows


def _line(check: CheckResult) -> str:
    return f' <span class="meta">(line {check.line})</span>' if check.line else ""


def _samples(result: ValidationResult) -> list[str]:
    with_samples = [r for r in result.results if r.samples]
    if not with_samples:
        return []
    parts = [f"<h2>Failing-row samples ({len(with_samples):,} checks)</h2>"]
    for check in with_samples:
        columns = list(dict.fromkeys(k for row in check.samples for k in row))
        parts.append(
            f"<details><summary><b>{_e(check.name)}</b> — {len(check.samples):,} sample rows of "
            f"{_num(check.failed_rows)} failing</summary><table><thead><tr>"
            + "".join(f"<th>{_e(c)}</th>" for c in columns)
            + "</tr></thead><tbody>"
        )
        for row in check.samples:
            parts.append("<tr>" + "".join(f"<td>{_cell(row.get(c))}</td>" for c in columns) + "</tr>")
        parts.append("</tbody></table></details>")
    return parts


def _columns(result: ValidationResult) -> list[str]:
    if not result.columns:
        return []
    parts = ["<h2>Columns</h2>", '<div class="cols">']
    for column, dtype in result.columns.items():
        nulls = result.metrics.get(f"null_fraction.{column}")
        mean = result.metrics.get(f"mean.{column}")
        stats = [f"type <code>{_e(dtype)}</code>"]
        if nulls is not None:
            stats.append(f"nulls {nulls:.2%}")
        if mean is not None and not math.isnan(mean):
            stats.append(f"mean {mean:.6g}")
        histogram = result.histograms.get(column)
        svg = _histogram_svg(histogram) if histogram else ""
        parts.append(
            f'<div class="col"><h3>{_e(column)}</h3><div class="meta">{" · ".join(stats)}</div>{svg}</div>'
        )
    parts.append("</div>")
    return parts


def _histogram_svg(histogram: dict[str, list[float]], width: int = 240, height: int = 70) -> str:
    counts = histogram.get("counts") or []
    edges = histogram.get("edges") or []
    if not counts:
        return ""
    top = max(counts) or 1.0
    bar = width / len(counts)
    bars = []
    for index, count in enumerate(counts):
        h = (count / top) * (height - 14)
        label = (
            f"[{edges[index]:.4g}, {edges[index + 1]:.4g}): {count:,.0f}" if len(edges) > index + 1 else ""
        )
        bars.append(
            f'<rect x="{index * bar:.1f}" y="{height - 12 - h:.1f}" width="{max(bar - 1, 1):.1f}" '
            f'height="{h:.1f}" fill="#0969da"><title>{_e(label)}</title></rect>'
        )
    low = f"{edges[0]:.4g}" if edges else ""
    high = f"{edges[-1]:.4g}" if edges else ""
    return (
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="histogram">{"".join(bars)}'
        f'<text x="0" y="{height - 1}" font-size="10" fill="#57606a">{_e(low)}</text>'
        f'<text x="{width}" y="{height - 1}" font-size="10" fill="#57606a" '
        f'text-anchor="end">{_e(high)}</text>'
        "</svg>"
    )


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(value: Any) -> str:
    return "?" if value is None else f"{value:,}"


def _short(value: Any, limit: int = 160) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cell(value: Any) -> str:
    if value is None:
        return '<span class="meta">null</span>'
    text = str(value)
    if len(text) > MAX_CELL:
        return _e(text[:MAX_CELL]) + f'<span class="meta">…({len(text):,} chars)</span>'
    return _e(text)
