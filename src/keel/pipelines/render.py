"""Drawings of a pipeline graph: a layered text listing for terminals and a self-contained SVG.

Both take an optional ``status`` mapping (node id → ``done``, ``cached``, ``failed``, ``skipped``,
``pending`` or ``running``); nodes it does not mention are ``pending``.

    >>> print(render_text(graph, {"load": "done", "train": "failed"}))
    pipeline demo: 3 steps in 3 layers
    layer 0
      [done   ] load
    layer 1
      [failed ] train  <- load
    ...
"""

from __future__ import annotations

from html import escape

from keel.pipelines.graph import Graph

__all__ = ["STATUS_COLOURS", "render_svg", "render_text"]

#: fill colour of a node box per status
STATUS_COLOURS = {
    "done": "#b7e4c7",
    "cached": "#a5d8ff",
    "failed": "#ffa8a8",
    "skipped": "#dee2e6",
    "pending": "#ffffff",
    "running": "#ffe066",
}
_SHOWN_PARENTS = 4
_BOX_W, _BOX_H, _GAP_X, _GAP_Y, _MARGIN = 180, 36, 70, 14, 20


def _state(status: dict[str, str] | None, node_id: str) -> str:
    state = (status or {}).get(node_id, "pending")
    return state if state in STATUS_COLOURS else "pending"


def render_text(graph: Graph, status: dict[str, str] | None = None) -> str:
    """One line per node, grouped by layer, with its status and the nodes it reads from.

    Long fan-ins show the first few parents and a count of the rest, so a 10,000-way fan-in stays
    one readable line.
    """
    layers = graph.layers()
    lines = [f"pipeline {graph.name}: {len(graph)} steps in {len(layers)} layers"]
    for level, nodes in enumerate(layers):
        lines.append(f"layer {level}")
        for node in nodes:
            parents = list(node.upstream)
            line = f"  [{_state(status, node.id):<7}] {node.id}"
            if parents:
                shown = ", ".join(parents[:_SHOWN_PARENTS])
                more = len(parents) - _SHOWN_PARENTS
                line += f"  <- {shown}" + (f" (+{more} more)" if more > 0 else "")
            lines.append(line)
    return "\n".join(lines)


def _clip(text: str, width: int = 24) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def render_svg(graph: Graph, status: dict[str, str] | None = None) -> str:
    """An SVG document: layers left to right, one box per node filled by status, edges as curves.

    All text is XML-escaped, so a step named ``<script>`` is drawn, never run. The result needs no
    external stylesheet or script and parses as XML.
    """
    layers = graph.layers()
    where: dict[str, tuple[int, int]] = {}
    tallest = max((len(nodes) for nodes in layers), default=0)
    for level, nodes in enumerate(layers):
        for row, node in enumerate(nodes):
            x = _MARGIN + level * (_BOX_W + _GAP_X)
            y = _MARGIN + row * (_BOX_H + _GAP_Y)
            where[node.id] = (x, y)
    width = 2 * _MARGIN + max(len(layers), 1) * (_BOX_W + _GAP_X) - _GAP_X
    width = max(width, 2 * _MARGIN + len(STATUS_COLOURS) * 80)  # room for the legend
    height = 2 * _MARGIN + max(tallest, 1) * (_BOX_H + _GAP_Y) - _GAP_Y + 24
    title = escape(f"pipeline {graph.name}")
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f"<title>{title}</title>",
        '<g class="edges" fill="none" stroke="#868e96" stroke-width="1.2">',
    ]
    for node in graph.nodes.values():
        x2, y2 = where[node.id]
        for parent in node.upstream:
            x1, y1 = where[parent]
            sx, sy, ex, ey = x1 + _BOX_W, y1 + _BOX_H // 2, x2, y2 + _BOX_H // 2
            mid = (sx + ex) // 2
            parts.append(
                f'<path d="M{sx},{sy} C{mid},{sy} {mid},{ey} {ex},{ey}" '
                f'data-from="{escape(parent)}" data-to="{escape(node.id)}"/>'
            )
    parts.append("</g>")
    parts.append('<g class="nodes">')
    for node in graph.nodes.values():
        x, y = where[node.id]
        state = _state(status, node.id)
        label = escape(_clip(node.id))
        parts.append(
            f'<g class="node {state}" data-id="{escape(node.id)}">'
            f"<title>{escape(node.id)}: {state}</title>"
            f'<rect x="{x}" y="{y}" width="{_BOX_W}" height="{_BOX_H}" rx="6" '
            f'fill="{STATUS_COLOURS[state]}" stroke="#495057"/>'
            f'<text x="{x + 8}" y="{y + 15}">{label}</text>'
            f'<text x="{x + 8}" y="{y + 29}" fill="#495057" font-size="10">{state}</text></g>'
        )
    parts.append("</g>")
    legend_y = height - 8
    for i, (state, colour) in enumerate(STATUS_COLOURS.items()):
        lx = _MARGIN + i * 80
        parts.append(
            f'<rect x="{lx}" y="{legend_y - 10}" width="10" height="10" fill="{colour}" stroke="#495057"/>'
            f'<text x="{lx + 14}" y="{legend_y}" font-size="10">{state}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)
