"""Rendering for the CLI: Rich tables on a terminal, JSON for scripts, errors as exit codes."""

from __future__ import annotations

import datetime as _dt
import functools
import json
import math
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import typer

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def console(stderr: bool = False) -> Any:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # not a terminal (a pipe, a CI log): use a wide fixed width rather than folding at 80 columns
    width = None if stream.isatty() else 160
    return Console(stderr=stderr, highlight=False, soft_wrap=False, width=width)


def handle_errors(function: F) -> F:
    """Turn keel's errors into a one-line message and the error's exit code (1 failure, 2 bad input)."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from keel.errors import KeelError

        try:
            return function(*args, **kwargs)
        except KeelError as exc:
            from rich.markup import escape

            # the message is plain text: `[id, v]` in it must print, not be read as markup
            message = escape(str(exc))
            console(stderr=True).print(f"[bold red]error:[/] {message}", markup=True, highlight=False)
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


def _json_value(value: Any) -> Any:
    # JSON has no NaN or infinity: write them as strings so scripts get exact values back
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    return value


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(_json_value(data), indent=2, default=str) + "\n")


def table(
    title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]], whole: Sequence[str] = ()
) -> None:
    """A rich table; on a narrow terminal its cells fold, except in the ``whole`` columns (ids, numbers,
    amounts: ``$0.0000084`` folded after ``$0.00000`` reads as zero)."""
    from rich.table import Table

    grid = Table(title=title, header_style="bold", show_lines=False)
    for column in columns:
        grid.add_column(column, overflow="fold", no_wrap=column in whole)
    for row in rows:
        grid.add_row(*(cell if hasattr(cell, "__rich__") else _text(cell) for cell in row))
    console().print(grid)


def _text(value: Any) -> str:
    from rich.markup import escape

    if value is None:
        return ""
    if isinstance(value, float):
        return format_number(value)
    return escape(printable(str(value)))


# C0 and C1 controls (ANSI escapes, newlines, carriage returns) and the bidirectional overrides
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` with control characters written as escapes (``\\x1b``, ``\\n``), so that text
    from a server or a store (a user name, a run name) cannot move the cursor, recolour or
    rewrite the terminal, or fake extra lines."""
    return _UNPRINTABLE.sub(lambda found: found.group().encode("unicode_escape").decode(), text)


def format_number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == 0:
        return "0" if math.copysign(1, value) > 0 else "-0"
    if abs(value) >= 1e6 or abs(value) < 1e-4:
        return f"{value:.4g}"
    return f"{value:.6g}"


def format_time(ms: int | None) -> str:
    if ms is None:
        return ""
    return _dt.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def format_duration(ms: int | None) -> str:
    if ms is None:
        return ""
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, seconds = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def status_text(status: str) -> Any:
    from rich.text import Text

    colour = {
        "FINISHED": "green",
        "RUNNING": "cyan",
        "FAILED": "red",
        "CRASHED": "red",
        "KILLED": "yellow",
    }.get(status, "")
    return Text(status, style=colour)
