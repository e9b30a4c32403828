"""SQL forms of the checks, so a suite runs as one query inside DuckDB or SQLite (push-down).

A check type has a SQL form when its predicate or aggregate can be written in the dialect; when one check of
a suite has none, the engine reads the table through polars instead (still one scan). Samples of failing
rows are ``SELECT ... WHERE NOT (predicate) LIMIT n`` per failed check.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from keel.data.catalog import EMAIL, URL, UUID
from keel.data.checks import Check, type_matches

if TYPE_CHECKING:
    from keel.data.engine import _Run

__all__ = ["check_sql", "metric_sql", "predicate_sql", "sample_queries"]


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def literal(value: Any, dialect: str) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return ("TRUE" if value else "FALSE") if dialect == "duckdb" else ("1" if value else "0")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            text = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
            return f"CAST('{text}' AS DOUBLE)"
        return repr(value)
    if isinstance(value, datetime | date):
        value = value.isoformat()
    return "'" + str(value).replace("'", "''") + "'"


def _bound(value: Any, dialect: str) -> str:
    if isinstance(value, str) and dialect == "duckdb":
        return f"TIMESTAMP {literal(value, dialect)}"
    return literal(value, dialect)


def _regex(column: str, pattern: str, dialect: str) -> str | None:
    if dialect != "duckdb":
        return None
    return f"regexp_matches({column}, {literal(pattern, dialect)})"


def predicate_sql(check: Check, dialect: str) -> str | None:
    """The SQL boolean that is true for valid rows (NULL for rows not evaluated), or None."""
    c = quote(check.column) if check.column else ""
    p = check.params
    t = check.type
    if t == "not_null":
        return f"{c} IS NOT NULL"
    if t == "is_null":
        return f"{c} IS NULL"
    if t == "between":
        parts = []
        if p.get("min") is not None:
            parts.append(f"{c} {'>' if p.get('strict_min') else '>='} {_bound(p['min'], dialect)}")
        if p.get("max") is not None:
            parts.append(f"{c} {'<' if p.get('strict_max') else '<='} {_bound(p['max'], dialect)}")
        return " AND ".join(parts)
    if t in ("in_set", "not_in_set"):
        values = ", ".join(literal(v, dialect) for v in p["values"]) or "NULL"
        return f"{c} {'NOT ' if t == 'not_in_set' else ''}IN ({values})"
    if t == "length_between":
        parts = []
        if p.get("min") is not None:
            parts.append(f"length({c}) >= {int(p['min'])}")
        if p.get("max") is not None:
            parts.append(f"length({c}) <= {int(p['max'])}")
        return " AND ".join(parts)
    if t == "compare":
        return f"{c} {p.get('op', '<')} {quote(p['other'])}"
    if t == "expression":
        return f"({p['expr']})"
    if t == "matches_regex":
        return _regex(c, p["pattern"], dialect)
    if t == "not_matches_regex":
        matched = _regex(c, p["pattern"], dialect)
        return None if matched is None else f"NOT {matched}"
    if t in ("email", "url", "uuid"):
        return _regex(c, {"email": EMAIL, "url": URL, "uuid": UUID}[t], dialect)
    if t == "parses_datetime" and dialect == "duckdb" and p.get("format"):
        parsed = f"try_strptime({c}, {literal(p['format'], dialect)})"
        return f"CASE WHEN {c} IS NULL THEN NULL ELSE {parsed} IS NOT NULL END"
    return None


def check_sql(check: Check, dialect: str) -> dict[str, str] | None:
    """SQL aggregate expressions named like the polars ones of the check, or None."""
    predicate = predicate_sql(check, dialect)
    if check.spec.kind == "row":
        if predicate is None:
            return None
        return {
            "failed": f"COALESCE(SUM(CASE WHEN ({predicate}) THEN 0 WHEN ({predicate}) IS NULL THEN 0 "
            "ELSE 1 END), 0)",
            "evaluated": f"COALESCE(SUM(CASE WHEN ({predicate}) IS NULL THEN 0 ELSE 1 END), 0)",
        }
    c = quote(check.column) if check.column else ""
    t = check.type
    duck = dialect == "duckdb"
    simple = {
        "null_fraction_at_most": {
            "nulls": f"COALESCE(SUM(CASE WHEN {c} IS NULL THEN 1 ELSE 0 END), 0)",
            "rows": "COUNT(*)",
        },
        # COUNT(DISTINCT) skips nulls already, hence "nulls": 0
        "unique": {"n_unique": f"COUNT(DISTINCT {c})", "nulls": "0", "count": f"COUNT({c})"},
        "distinct_ratio_between": {"n_unique": f"COUNT(DISTINCT {c})", "nulls": "0", "count": f"COUNT({c})"},
        "distinct_count_between": {"n_unique": f"COUNT(DISTINCT {c})", "nulls": "0", "count": f"COUNT({c})"},
        "min_between": {"value": f"MIN({c})"},
        "max_between": {"value": f"MAX({c})"},
        "mean_between": {"value": f"AVG({c})"},
        "sum_between": {"value": f"SUM({c})"},
        "row_count_between": {"value": "COUNT(*)"},
        "not_empty": {"value": "COUNT(*)"},
        "fresher_than": {"newest": f"MAX({c})"},
    }
    if t in simple:
        return simple[t]
    if not duck:
        return None
    if t == "std_between":
        return {"value": f"STDDEV_SAMP({c})"}
    if t == "median_between":
        return {"value": f"MEDIAN({c})"}
    if t == "quantile_between":
        return {"value": f"QUANTILE_CONT({c}, {float(check.params['q'])})"}
    if t == "unique_combination":
        columns = ", ".join(quote(x) for x in check.params["columns"])
        return {"n_unique": f"COUNT(DISTINCT ({columns}))", "nulls": "0", "count": "COUNT(*)"}
    return None


def metric_sql(schema: Mapping[str, Any], dialect: str) -> list[tuple[str, str]]:
    """(alias, SQL) for the dataset metrics: rows, null counts, means of numeric columns."""
    parts = [("m__rows", "COUNT(*)")]
    for column, dtype in schema.items():
        q = quote(column)
        parts.append((f"m__nulls__{column}", f"COALESCE(SUM(CASE WHEN {q} IS NULL THEN 1 ELSE 0 END), 0)"))
        if type_matches(dtype, "numeric") or type_matches(dtype, "boolean"):
            parts.append((f"m__mean__{column}", f"AVG(CAST({q} AS DOUBLE))"))
    return parts


def sample_queries(run: _Run, names: list[str], limit: int) -> dict[str, str] | None:
    """One ``SELECT ... LIMIT`` per failed check, or None when one of them has no SQL form."""
    source = run.source
    table = source.quoted_table()  # type: ignore[attr-defined]
    dialect = source.dialect  # type: ignore[attr-defined]
    checks = {c.name: c for c in run.suite.checks}
    queries = {}
    for name in names:
        check = checks.get(name)
        if check is None:
            return None
        columns = list(dict.fromkeys([*run.ids, *(c for c in [check.column] if c)]))
        if check.type == "compare":
            columns.append(check.params["other"])
        select = ", ".join(quote(c) for c in columns) or "*"
        predicate = predicate_sql(check, dialect)
        if check.spec.kind == "row" and predicate is not None:
            where = f"NOT COALESCE(({predicate}), {literal(True, dialect)})"
        elif check.type == "unique":
            c = quote(check.column or "")
            where = f"{c} IN (SELECT {c} FROM {table} WHERE {c} IS NOT NULL GROUP BY {c} HAVING COUNT(*) > 1)"
        else:
            return None
        queries[name] = f"SELECT {select} FROM {table} WHERE {where} LIMIT {int(limit)}"
    return queries
