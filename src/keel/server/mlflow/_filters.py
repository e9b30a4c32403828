"""MLflow's small filter language for experiments, registered models, versions and logged models.

Conditions joined by ``AND``; each is ``[attributes.|tags.]key OP value`` where OP is one of
``= != < <= > >= LIKE ILIKE IN NOT IN`` and the value is a quoted string, a number or a
parenthesised list::

    name LIKE 'iris%' AND tags.team = 'vision'
    run_id IN ('0f…', '9a…')

(Run searches use keel's full search language, :mod:`keel.store.search`.) These lists are small,
so the filter is evaluated in Python over the candidates.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from keel.errors import FilterSyntaxError

__all__ = ["Condition", "parse", "select"]

T = TypeVar("T")

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>'(?:[^']|'')*'|"(?:[^"]|"")*")
    | (?P<backtick>`[^`]*`)
    | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
    | (?P<op><=|>=|!=|<>|=|<|>)
    | (?P<punct>[(),])
    | (?P<word>[A-Za-z_][\w.\-:/]*)
    )""",
    re.VERBOSE,
)
_PREFIXES = {"attribute": "attributes", "attributes": "attributes", "tag": "tags", "tags": "tags"}


@dataclasses.dataclass(frozen=True)
class Condition:
    entity: str  # attributes | tags
    key: str
    op: str
    value: Any


def _tokens(text: str) -> list[tuple[str, str, int]]:
    tokens, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise FilterSyntaxError(f"unexpected character {text[pos]!r}", text=text, position=pos)
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind), match.start(kind)))
        pos = match.end()
    return tokens


def _value(token: tuple[str, str, int], text: str) -> Any:
    kind, raw, pos = token
    if kind == "string":
        return raw[1:-1].replace(raw[0] * 2, raw[0])
    if kind == "number":
        return float(raw)
    raise FilterSyntaxError("expected a quoted string or a number", text=text, position=pos)


def parse(text: str | None, attributes: Sequence[str]) -> list[Condition]:
    """Parse ``text``; attribute names outside ``attributes`` are refused, naming the known ones."""
    if not text or not text.strip():
        return []
    tokens = _tokens(text)
    conditions: list[Condition] = []
    i = 0

    def need(index: int, what: str) -> tuple[str, str, int]:
        if index >= len(tokens):
            raise FilterSyntaxError(
                f"the filter ends where {what} was expected", text=text, position=len(text)
            )
        return tokens[index]

    while True:
        kind, raw, pos = need(i, "a key such as name or tags.team")
        i += 1
        entity = "attributes"
        if kind in {"backtick", "string"}:
            key = raw[1:-1]
        elif kind == "word":
            head, dot, rest = raw.partition(".")
            if dot and head.lower() in _PREFIXES:
                entity = _PREFIXES[head.lower()]
                if rest:
                    key = rest
                else:
                    kind2, raw2, pos2 = need(i, "a key after the dot")
                    i += 1
                    if kind2 not in {"backtick", "string"}:
                        raise FilterSyntaxError("expected a key after the dot", text=text, position=pos2)
                    key = raw2[1:-1]
            else:
                key = raw
        else:
            raise FilterSyntaxError("expected a key such as name or tags.team", text=text, position=pos)
        if entity == "attributes" and key not in attributes:
            raise FilterSyntaxError(
                f"unknown attribute {key!r}; filter on {', '.join(attributes)} or tags.KEY",
                text=text,
                position=pos,
            )
        kind, raw, pos = need(i, "an operator such as =, LIKE or IN")
        i += 1
        op = raw.upper()
        if kind == "op":
            op = "!=" if raw == "<>" else raw
        elif op == "NOT" and i < len(tokens) and tokens[i][1].upper() == "IN":
            op, i = "NOT IN", i + 1
        elif op not in {"LIKE", "ILIKE", "IN"}:
            raise FilterSyntaxError("expected an operator such as =, !=, LIKE or IN", text=text, position=pos)
        value: Any
        if op in {"IN", "NOT IN"}:
            if need(i, "'('")[1] != "(":
                raise FilterSyntaxError(
                    "IN takes a list such as ('a', 'b')", text=text, position=tokens[i][2]
                )
            i += 1
            items = []
            while True:
                items.append(_value(need(i, "a value"), text))
                i += 1
                separator = need(i, "',' or ')'")
                i += 1
                if separator[1] == ")":
                    break
                if separator[1] != ",":
                    raise FilterSyntaxError("expected ',' or ')'", text=text, position=separator[2])
            value = tuple(items)
        else:
            value = _value(need(i, "a value"), text)
            i += 1
        conditions.append(Condition(entity, key, op, value))
        if i >= len(tokens):
            return conditions
        kind, raw, pos = tokens[i]
        if raw.upper() != "AND":
            raise FilterSyntaxError("conditions are joined with AND", text=text, position=pos)
        i += 1


def _like(pattern: str, value: str, ignore_case: bool) -> bool:
    regex = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL) is not None


def _holds(op: str, actual: Any, wanted: Any) -> bool:
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
        return _like(str(wanted), str(actual), op == "ILIKE")
    if isinstance(wanted, str):
        actual = str(actual)
    comparisons: dict[str, Callable[[Any, Any], bool]] = {
        "=": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }
    return comparisons[op](actual, wanted)


def select(
    records: Iterable[T], conditions: Sequence[Condition], lookup: Callable[[T, str, str], Any]
) -> list[T]:
    """The records passing every condition; ``lookup(record, entity, key)`` reads a record."""
    return [r for r in records if all(_holds(c.op, lookup(r, c.entity, c.key), c.value) for c in conditions)]
