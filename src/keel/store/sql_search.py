"""Compiling the search language (``keel.store.search``) to SQLAlchemy Core, and page tokens."""

from __future__ import annotations

import base64
import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles

from keel import limits
from keel.errors import InvalidInputError, LimitExceededError
from keel.store import schema as t
from keel.store.like import ESCAPE, LikePattern, parse_like
from keel.store.search import And, Comparison, Node, Or, OrderBy

__all__ = ["compile_filter", "decode_token", "encode_token", "int_id", "like_clause", "order_column"]

# -- search compilation ------------------------------------------------------------------------


def compile_filter(node: Node) -> Any:
    if isinstance(node, And):
        return sa.and_(*(compile_filter(p) for p in node.parts))
    if isinstance(node, Or):
        return sa.or_(*(compile_filter(p) for p in node.parts))
    return _comparison(node)


_ATTRIBUTE_COLUMNS = {
    "run_id": "run_id",
    "run_name": "name",
    "status": "status",
    "user": "user",
    "host": "host",
    "start_time": "start_time",
    "end_time": "end_time",
    "experiment_id": "experiment_id",
    "lifecycle_stage": "lifecycle",
    "git_commit": "git_commit",
    "cost_usd": "cost_usd",
}


def _apply(column: Any, op: str, value: Any) -> Any:
    if op == "=":
        return column == value
    if op == "!=":
        return column != value
    if op == "<":
        return column < value
    if op == "<=":
        return column <= value
    if op == ">":
        return column > value
    if op == ">=":
        return column >= value
    if op in {"LIKE", "ILIKE"}:
        return like_clause(column, parse_like(value), ignore_case=op == "ILIKE")
    if op == "IN":
        return column.in_(list(value))
    if op == "NOT IN":
        return column.not_in(list(value))
    raise AssertionError(op)  # pragma: no cover


def _comparison(node: Comparison) -> Any:
    r = t.runs
    if node.entity == "attributes":
        column = getattr(r.c, _ATTRIBUTE_COLUMNS[node.key])
        value = node.value
        if node.key == "experiment_id":
            value = (
                tuple(int_id(v) for v in value)
                if isinstance(value, tuple)
                else (None if value is None else int_id(value))
            )
        if node.op == "IS NULL":
            return column.is_(None)
        if node.op == "IS NOT NULL":
            return column.is_not(None)
        return _apply(column, node.op, value)
    if node.entity == "datasets":
        d, ri = t.datasets, t.run_inputs
        column = ri.c.context if node.key == "context" else getattr(d.c, node.key)
        return _HasRow(
            ri.join(d, d.c.id == ri.c.dataset_id), ri.c.run_pk, _apply(column, node.op, node.value)
        )
    table = {"metrics": t.latest_metrics, "params": t.params, "tags": t.tags}[node.entity]
    if node.op == "IS NULL":
        return sa.not_(_HasRow(table, table.c.run_pk, table.c.key == node.key))
    if node.op == "IS NOT NULL":
        return _HasRow(table, table.c.run_pk, table.c.key == node.key)
    # MLflow semantics: a run without the key does not match `key != x` (nor any other comparison)
    return _HasRow(table, table.c.run_pk, table.c.key == node.key, _apply(table.c.value, node.op, node.value))


class _HasRow(sa.sql.expression.ColumnElement[bool]):
    """True for a run with a row in ``source`` (a table or join) that meets ``conditions``.

    Each database gets the form it plans and runs best, measured with
    benchmarks/search_planning.py on 1 to 500 AND-ed conditions:

    - PostgreSQL: ``(EXISTS (... WHERE run_pk = runs.pk AND ...)) IS TRUE``. A bare ``EXISTS`` or
      ``IN`` there becomes a semi-join, and the planner searches join orders over all of them:
      100 conditions took 5 s to plan, 500 over half an hour. Wrapped in ``IS TRUE`` it stays a
      per-run index probe (or a hashed sub-plan), and planning grows linearly.
    - SQLite: ``runs.pk IN (SELECT run_pk ...)``, which it builds once per condition and probes;
      a correlated ``EXISTS`` there ran 10 times slower at 500 conditions.
    """

    inherit_cache = False
    type = sa.Boolean()
    _is_implicitly_boolean = True  # no ``= 1`` after it on SQLite

    def __init__(self, source: Any, run_pk: Any, *conditions: Any):
        self.source = source
        self.run_pk = run_pk
        self.conditions = conditions


@compiles(_HasRow)
def _compile_has_row(element: _HasRow, compiler: Any, **kw: Any) -> str:
    inner = sa.select(element.run_pk).select_from(element.source).where(*element.conditions)
    return str(compiler.process(t.runs.c.pk.in_(inner), **kw))


@compiles(_HasRow, "postgresql")
def _compile_has_row_postgres(element: _HasRow, compiler: Any, **kw: Any) -> str:
    exists = sa.exists().select_from(element.source).where(element.run_pk == t.runs.c.pk, *element.conditions)
    return f"(({compiler.process(exists, **kw)}) IS TRUE)"


def like_clause(column: Any, pattern: LikePattern, *, ignore_case: bool = False) -> Any:
    """SQL for ``column LIKE pattern`` (``ILIKE`` when ``ignore_case``) that means the same in
    SQLite and PostgreSQL: case-sensitive ``LIKE`` (as ``GLOB`` in SQLite) and a backslash escape."""
    if ignore_case:
        return sa.func.lower(column).like(sa.func.lower(sa.literal(pattern.text)), escape=ESCAPE)
    return _CaseSensitiveLike(column, pattern)


class _CaseSensitiveLike(sa.sql.expression.ColumnElement[bool]):
    """``column LIKE :pattern ESCAPE '\\'``, or ``column GLOB :glob`` on SQLite (whose LIKE
    ignores ASCII case)."""

    inherit_cache = False
    type = sa.Boolean()

    def __init__(self, column: Any, pattern: LikePattern):
        self.column = column
        self.pattern = pattern


@compiles(_CaseSensitiveLike)
def _compile_like(element: _CaseSensitiveLike, compiler: Any, **kw: Any) -> str:
    clause = element.column.like(element.pattern.text, escape=ESCAPE)
    return str(compiler.process(clause, **kw))


@compiles(_CaseSensitiveLike, "sqlite")
def _compile_glob(element: _CaseSensitiveLike, compiler: Any, **kw: Any) -> str:
    clause = element.column.op("GLOB")(sa.literal(element.pattern.glob))
    return str(compiler.process(clause, **kw))


def order_column(query: Any, order: OrderBy, index: int) -> tuple[Any, Any]:
    r = t.runs
    if order.entity == "attributes":
        return query, getattr(r.c, _ATTRIBUTE_COLUMNS[order.key])
    table = {"metrics": t.latest_metrics, "params": t.params, "tags": t.tags}[order.entity]
    alias = table.alias(f"o{index}")
    query = query.outerjoin(alias, sa.and_(alias.c.run_pk == r.c.pk, alias.c.key == order.key))
    return query, alias.c.value


def int_id(value: Any) -> int:
    """An experiment id for SQL: a whole number within :data:`keel.limits.MAX_ID`."""
    return limits.check_id(value, "experiment id")


def encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_token(token: str | None) -> int:
    """The row offset a page token carries. Tokens are opaque, but a client can write one: an
    offset beyond :data:`keel.limits.MAX_PAGE_OFFSET` is refused before it reaches SQL's OFFSET
    (which fails on numbers past 64 bits)."""
    if not token:
        return 0
    try:
        offset = int(json.loads(base64.urlsafe_b64decode(token.encode()))["offset"])
        if offset < 0:
            raise ValueError
    except (ValueError, KeyError, TypeError, OverflowError):
        raise InvalidInputError("invalid page token: pass the token of the previous page unchanged") from None
    if offset > limits.MAX_PAGE_OFFSET:
        raise LimitExceededError(
            f"the page token's offset {offset:,} is beyond {limits.MAX_PAGE_OFFSET:,} "
            "(keel.limits.MAX_PAGE_OFFSET): pass the token of the previous page unchanged",
            limit=limits.MAX_PAGE_OFFSET,
            actual=offset,
            what="page offset",
        )
    return offset
