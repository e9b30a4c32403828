"""What each page shows, computed from the store: the runs table, the compare view, formatting.

Routes in :mod:`keel.server.ui.routes` parse the URL, call one function here, and render a template.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInputError
from keel.tracking.cost import format_usd  # the CLI's format, so a page and a terminal agree

if TYPE_CHECKING:
    from keel.entities import Run
    from keel.store.base import Store

__all__ = [
    "MAX_COMPARE",
    "Column",
    "RunsTable",
    "compare_view",
    "format_duration",
    "format_time",
    "format_usd",
    "format_value",
    "get_runs",
    "runs_table",
]

#: runs a comparison takes at most
MAX_COMPARE = 100
PAGE_SIZES = (25, 50, 100, 200)
#: attribute columns: (id, header, order-by key or None when the store cannot sort by it)
ATTRIBUTE_COLUMNS: dict[str, tuple[str, str | None]] = {
    "status": ("status", "attributes.status"),
    "name": ("name", "attributes.run_name"),
    "start_time": ("started", "attributes.start_time"),
    "duration": ("duration", None),
    "cost_usd": ("cost", "attributes.cost_usd"),
    "user": ("user", "attributes.user"),
    "git_commit": ("commit", "attributes.git_commit"),
    "tags": ("tags", None),
}
DEFAULT_ATTRIBUTES = ("status", "name", "start_time", "duration", "cost_usd", "tags")
#: params and metrics shown when the URL names no columns
DEFAULT_KEYS = 6


def format_time(ms: int | None) -> str:
    if ms is None:
        return ""
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def format_duration(ms: int | None) -> str:
    if ms is None:
        return ""
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {sec} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def format_value(value: Any) -> str:
    """Numbers to 6 significant digits (NaN and infinities spelled out), everything else as text."""
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:.6g}"
    return str(value)


def _quoted(key: str) -> str:
    return f"`{key}`" if "`" not in key else f'"{key}"'


@dataclasses.dataclass(frozen=True)
class Column:
    """A runs-table column: ``id`` is what the URL carries (``status``, ``params.lr``, ``metrics.acc``)."""

    id: str
    header: str
    kind: str  # attribute | param | metric
    order_key: str | None

    @classmethod
    def parse(cls, ident: str) -> Column:
        if ident in ATTRIBUTE_COLUMNS:
            header, order = ATTRIBUTE_COLUMNS[ident]
            return cls(ident, header, "attribute", order)
        entity, dot, key = ident.partition(".")
        if dot and key and entity in {"params", "metrics"}:
            return cls(ident, key, entity[:-1], f"{entity}.{_quoted(key)}")
        known = ", ".join(ATTRIBUTE_COLUMNS)
        raise InvalidInputError(f"unknown column {ident!r}; use one of {known}, params.KEY or metrics.KEY")

    def value(self, run: Run) -> Any:
        if self.kind == "param":
            return run.params.get(self.header)
        if self.kind == "metric":
            metric = run.metrics.get(self.header)
            return None if metric is None else metric.value
        if self.id == "duration":
            return run.duration_ms
        if self.id == "start_time":
            return run.start_time
        if self.id == "status":
            return str(run.status)
        if self.id == "tags":
            return {k: v for k, v in run.tags.items() if not k.startswith("keel.")}
        return getattr(run, self.id if self.id != "name" else "name")

    def text(self, run: Run) -> str:
        value = self.value(run)
        if self.id == "duration":
            return format_duration(value)
        if self.id == "start_time":
            return format_time(value)
        if self.id == "cost_usd":
            return "" if value is None else format_usd(value)
        if self.id == "git_commit":
            return (value or "")[:10]
        return format_value(value)


@dataclasses.dataclass
class RunsTable:
    runs: list[Run]
    columns: list[Column]
    #: params and metrics the chooser offers (from the runs on this page and the chosen columns)
    available: list[str]
    next_token: str | None
    error: str
    order: str


def parse_order(order: str) -> tuple[str, bool]:
    """``"-metrics.acc"`` → (``"metrics.acc"``, descending)."""
    descending = order.startswith("-")
    return order.lstrip("-"), descending


def runs_table(
    store: Store,
    experiment_id: str,
    *,
    filter_string: str = "",
    order: str = "-start_time",
    columns: Sequence[str] = (),
    per_page: int = 50,
    page_token: str | None = None,
) -> RunsTable:
    """A page of runs of one experiment. A bad filter or order is reported in ``error`` (the page
    still renders, with no runs) so the user can fix it where they typed it."""
    if per_page not in PAGE_SIZES:
        raise InvalidInputError(f"per_page must be one of {', '.join(map(str, PAGE_SIZES))}; got {per_page}")
    chosen = [Column.parse(c) for c in dict.fromkeys(columns)] if columns else []
    sort_id, descending = parse_order(order or "-start_time")
    sort = Column.parse(sort_id)
    error = ""
    runs: list[Run] = []
    token = None
    if sort.order_key is None:
        error = f"cannot sort by {sort.header}; sort by another column"
    else:
        try:
            page = store.search_runs(
                [experiment_id],
                filter_string or None,
                [f"{sort.order_key} {'DESC' if descending else 'ASC'}"],
                max_results=per_page,
                page_token=page_token or None,
            )
        except InvalidInputError as exc:  # a bad filter is shown where it was typed
            error = str(exc)
        else:
            runs, token = list(page), page.token
    params = sorted({k for run in runs for k in run.params})
    metrics = sorted({k for run in runs for k in run.user_metrics})
    available = [f"params.{k}" for k in params] + [f"metrics.{k}" for k in metrics]
    if not chosen:
        chosen = [Column.parse(a) for a in DEFAULT_ATTRIBUTES]
        keys = [f"metrics.{k}" for k in metrics][:DEFAULT_KEYS] + [f"params.{k}" for k in params]
        chosen += [Column.parse(k) for k in keys[:DEFAULT_KEYS]]
    for column in chosen:
        if column.kind != "attribute" and column.id not in available:
            available.append(column.id)
    return RunsTable(runs, chosen, available, token, error, order)


def _values(run: Run) -> dict[str, Any]:
    values: dict[str, Any] = {f"params.{k}": v for k, v in run.params.items()}
    values.update({f"metrics.{k}": m.value for k, m in run.metrics.items()})
    return values


@dataclasses.dataclass
class CompareView:
    runs: list[Run]
    #: (column id, values per run, differs?) for params then metrics
    rows: list[tuple[str, list[str], bool]]
    metric_keys: list[str]
    param_keys: list[str]


def compare_view(store: Store, run_ids: Sequence[str]) -> CompareView:
    """The runs to compare (2 to :data:`MAX_COMPARE`, in the order given) and their diff table."""
    unique = list(dict.fromkeys(r for r in run_ids if r))
    if len(unique) > MAX_COMPARE:
        raise InvalidInputError(
            f"compare takes at most {MAX_COMPARE} runs; {len(unique)} were selected — select fewer"
        )
    runs = get_runs(store, unique)
    param_keys = sorted({k for run in runs for k in run.params})
    metric_keys = sorted({k for run in runs for k in run.user_metrics})
    rows = []
    values = [_values(run) for run in runs]
    for ident in [f"params.{k}" for k in param_keys] + [f"metrics.{k}" for k in metric_keys]:
        cells = [format_value(found.get(ident)) for found in values]
        rows.append((ident, cells, len(set(cells)) > 1))
    return CompareView(runs, rows, metric_keys, param_keys)


def table_values(runs: Sequence[Run], columns: Sequence[str]) -> list[tuple[str, Mapping[str, Any]]]:
    """(run label, {column: value}) for the SVG charts."""
    rows: list[tuple[str, Mapping[str, Any]]] = []
    for run in runs:
        values = _values(run)
        rows.append((run.name or run.run_id, {c: values.get(c) for c in columns}))
    return rows


def get_runs(store: Store, run_ids: Sequence[str]) -> list[Run]:
    """The runs with these ids, in this order, fetched with one search (not one query per run)."""
    from keel.errors import NotFoundError
    from keel.ids import check_run_id

    unique = list(dict.fromkeys(check_run_id(r) for r in run_ids))
    if not unique:
        return []
    quoted = ", ".join(f"'{r}'" for r in unique)
    found = {
        run.run_id: run
        for run in store.search_runs(
            None, f"run_id IN ({quoted})", max_results=len(unique), include_deleted=True
        )
    }
    missing = [r for r in unique if r not in found]
    if missing:
        raise NotFoundError(f"no run {missing[0]!r}; `keel runs list` shows the runs")
    return [found[r] for r in unique]
