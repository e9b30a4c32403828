"""MLflow's small filter language for experiments, registered models, versions and logged models.

Conditions joined by ``AND``; each is ``[attributes.|tags.]key OP value`` where OP is one of
``= != < <= > >= LIKE ILIKE IN NOT IN IS [NOT] NULL`` and the value is a quoted string, a number
or a parenthesised list::

    name LIKE 'iris%' AND tags.team = 'vision'
    run_id IN ('0f…', '9a…')

The language is a dialect of keel's run-search language (:class:`keel.store.search.Dialect`), parsed
by the same parser, so its ``LIKE``, its limits and its errors are those of run searches. These
lists are small, so the parsed conditions are evaluated here in Python over the candidates; ``LIKE``
through :func:`keel.store.like.like_match`, which never backtracks.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from keel.store.like import like_match, parse_like
from keel.store.search import And, Comparison, Dialect, parse_filter

__all__ = ["Condition", "parse", "select"]

T = TypeVar("T")

#: one condition of a filter: entity ("attributes" or "tags"), key, op, value
Condition = Comparison


def parse(text: str | None, attributes: Sequence[str]) -> list[Condition]:
    """The conditions of ``text``; attribute names outside ``attributes`` are refused, naming the
    known ones. Raises FilterSyntaxError, or LimitExceededError for a filter over a limit."""
    tree = parse_filter(text, Dialect.mlflow(attributes))
    if tree is None:
        return []
    parts = tree.parts if isinstance(tree, And) else (tree,)
    # the dialect has no OR and no parentheses, so every part is a comparison
    return [part for part in parts if isinstance(part, Comparison)]


#: a search checks its pattern against every candidate: parse it once
_pattern = functools.lru_cache(maxsize=64)(parse_like)

_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _holds(op: str, actual: Any, wanted: Any) -> bool:
    if op in {"IS NULL", "IS NOT NULL"}:
        return (actual is None) == (op == "IS NULL")
    if actual is None:
        return op == "!="
    if isinstance(wanted, float) and not isinstance(actual, int | float):
        try:
            actual = float(actual)
        except (TypeError, ValueError):
            return False
    if isinstance(wanted, tuple):
        found = str(actual) in {str(w) for w in wanted}
        return found if op == "IN" else not found
    if op in {"LIKE", "ILIKE"}:
        return like_match(_pattern(str(wanted)), str(actual), ignore_case=op == "ILIKE")
    if isinstance(wanted, str):
        actual = str(actual)
    return _COMPARISONS[op](actual, wanted)


def select(
    records: Iterable[T], conditions: Sequence[Condition], lookup: Callable[[T, str, str], Any]
) -> list[T]:
    """The records passing every condition; ``lookup(record, entity, key)`` reads a record."""
    return [r for r in records if all(_holds(c.op, lookup(r, c.entity, c.key), c.value) for c in conditions)]
