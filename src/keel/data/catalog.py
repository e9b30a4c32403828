"""The check types of the catalog, registered into :data:`keel.data.checks.CATALOG` on import.

Each section below is one category of the catalog (docs/data-validation.md lists them all). A check type
is declared with :func:`_row` (a per-row predicate), :func:`_stat` (a bounded statistic) or a full
:class:`~keel.data.checks.CheckType`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from keel.data.checks import (
    BOUND_TYPES,
    EXTRA_VALIDATION,
    Check,
    CheckType,
    Outcome,
    Param,
    parse_duration,
    register,
    type_matches,
)

if TYPE_CHECKING:
    import polars as pl

__all__ = ["EMAIL", "URL", "UUID"]

# --------------------------------------------------------------------------------------------- helpers


def _col(check: Check) -> pl.Expr:
    import polars as pl

    return pl.col(check.column or "")


def _in_bounds(value: Any, check: Check) -> bool:
    low, high = check.params.get("min"), check.params.get("max")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    strict_min, strict_max = check.params.get("strict_min", False), check.params.get("strict_max", False)
    if low is not None and (value < low or (strict_min and value == low)):
        return False
    return not (high is not None and (value > high or (strict_max and value == high)))


def _bounds_text(check: Check) -> str:
    low, high = check.params.get("min"), check.params.get("max")
    left = "(" if check.params.get("strict_min") else "["
    right = ")" if check.params.get("strict_max") else "]"
    return f"in {left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"


def _bound_value(check: Check, value: Any) -> Any:
    """Bounds on temporal columns may be written as ISO strings; turn them into literals polars compares."""
    import polars as pl

    if isinstance(value, str):
        try:
            return pl.lit(datetime.fromisoformat(value))
        except ValueError as exc:
            raise check.error(f"bound {value!r} is neither a number nor an ISO date/time") from exc
    return value


def _scalar(value: Any) -> Any:
    if isinstance(value, timedelta):
        return value.total_seconds()
    return value


_MIN = Param("min", "bound", doc="lower bound, inclusive unless strict_min")
_MAX = Param("max", "bound", doc="upper bound, inclusive unless strict_max")
_STRICT = (Param("strict_min", "bool", doc="exclude min"), Param("strict_max", "bool", doc="exclude max"))


def _row(
    name: str,
    category: str,
    doc: str,
    predicate: Callable[[Check, Mapping[str, Any]], pl.Expr],
    *,
    params: tuple[Param, ...] = (),
    dtype: str = "any",
    column: str = "required",
    expected: Callable[[Check], str] | None = None,
    evaluated: str = "column",
) -> None:
    register(
        CheckType(
            name,
            category,
            "row",
            doc,
            params,
            column=column,
            dtype=dtype,
            predicate=predicate,
            expected_text=expected,
            evaluated=evaluated,
        )
    )


def _stat(
    name: str,
    doc: str,
    stat: Callable[[Check], pl.Expr],
    *,
    dtype: str = "numeric",
    extra: tuple[Param, ...] = (),
) -> None:
    def aggregates(check: Check) -> dict[str, pl.Expr]:
        return {"value": stat(check)}

    def judge(check: Check, values: dict[str, Any]) -> Outcome:
        value = _scalar(values["value"])
        return Outcome(_in_bounds(value, check), value, _bounds_text(check))

    BOUND_TYPES.add(name)
    register(
        CheckType(
            name,
            "statistics",
            "aggregate",
            doc,
            (_MIN, _MAX, *_STRICT, *extra),
            column="required",
            dtype=dtype,
            aggregates=aggregates,
            judge=judge,
        )
    )


# --------------------------------------------------------------------------------------------- schema


def _schema_columns(check: Check, schema: Mapping[str, Any]) -> Outcome:
    expected = list(check.params["columns"])
    actual = list(schema)
    ordered = check.params.get("ordered", True)
    exact = check.params.get("exact", True)
    if exact and ordered:
        passed = actual == expected
    elif exact:
        passed = sorted(actual) == sorted(expected)
    else:
        present = [c for c in actual if c in expected]
        passed = set(expected) <= set(actual) and (not ordered or present == expected)
    missing = [c for c in expected if c not in actual]
    extra = [c for c in actual if c not in expected] if exact else []
    parts = []
    if missing:
        parts.append(f"missing {missing}")
    if extra:
        parts.append(f"unexpected {extra}")
    if passed is False and not parts:
        parts.append("columns are in a different order")
    return Outcome(
        passed, actual, f"columns {expected}" + (" in this order" if ordered else ""), "; ".join(parts)
    )


register(
    CheckType(
        "columns_match",
        "schema",
        "schema",
        "the table has exactly these columns (optionally in this order)",
        (
            Param("columns", "strings", True, "expected column names"),
            Param("ordered", "bool", doc="order matters (default true)"),
            Param("exact", "bool", doc="no other columns allowed (default true)"),
        ),
        schema_judge=_schema_columns,
    )
)


def _column_exists(check: Check, schema: Mapping[str, Any]) -> Outcome:
    return Outcome(check.column in schema, check.column in schema, "column present")


register(
    CheckType(
        "column_exists",
        "schema",
        "schema",
        "the column is present",
        column="required",
        schema_judge=_column_exists,
    )
)


def _column_type(check: Check, schema: Mapping[str, Any]) -> Outcome:
    wanted = check.params["type"]
    if check.column not in schema:
        return Outcome(False, None, f"type {wanted}", f"column {check.column!r} is missing")
    dtype = schema[check.column or ""]
    return Outcome(type_matches(dtype, wanted), str(dtype), f"type {wanted}")


register(
    CheckType(
        "column_type",
        "schema",
        "schema",
        "the column has this type (int64, float64, string, boolean, date, datetime, ...) or family "
        "(integer, float, numeric, string, temporal)",
        (Param("type", "string", True, "type name or family"),),
        column="required",
        schema_judge=_column_type,
    )
)


def _schema_types(check: Check, schema: Mapping[str, Any]) -> Outcome:
    wanted: dict[str, str] = check.params["types"]
    wrong = {
        c: str(schema[c]) if c in schema else "missing"
        for c, t in wanted.items()
        if c not in schema or not type_matches(schema[c], t)
    }
    message = ", ".join(f"{c}: {v} (expected {wanted[c]})" for c, v in wrong.items())
    return Outcome(not wrong, {c: str(schema.get(c)) for c in wanted}, f"types {wanted}", message)


register(
    CheckType(
        "column_types",
        "schema",
        "schema",
        "several columns have these types (a mapping column: type)",
        (Param("types", "mapping", True, "column name to type name or family"),),
        schema_judge=_schema_types,
    )
)


def _column_count(check: Check, schema: Mapping[str, Any]) -> Outcome:
    return Outcome(_in_bounds(len(schema), check), len(schema), _bounds_text(check))


BOUND_TYPES.add("column_count_between")
register(
    CheckType(
        "column_count_between",
        "schema",
        "schema",
        "the number of columns is within bounds",
        (_MIN, _MAX, *_STRICT),
        schema_judge=_column_count,
    )
)

# --------------------------------------------------------------------------------------------- completeness

_row(
    "not_null",
    "completeness",
    "no value is null (NaN counts as a value); also the nullability check",
    lambda c, s: _col(c).is_not_null(),
    expected=lambda c: "no nulls",
    evaluated="rows",
)
_row(
    "is_null",
    "completeness",
    "every value is null (for deprecated columns)",
    lambda c, s: _col(c).is_null(),
    expected=lambda c: "only nulls",
    evaluated="rows",
)


def _null_fraction(check: Check) -> dict[str, pl.Expr]:
    import polars as pl

    return {"nulls": _col(check).null_count(), "rows": pl.len()}


def _judge_null_fraction(check: Check, values: dict[str, Any]) -> Outcome:
    rows = values["rows"]
    fraction = values["nulls"] / rows if rows else 0.0
    limit = check.params["max"]
    return Outcome(fraction <= limit, fraction, f"null fraction <= {limit}")


register(
    CheckType(
        "null_fraction_at_most",
        "completeness",
        "aggregate",
        "at most this fraction of values is null",
        (Param("max", "number", True, "largest allowed null fraction, 0..1"),),
        column="required",
        aggregates=_null_fraction,
        judge=_judge_null_fraction,
    )
)

# --------------------------------------------------------------------------------------------- uniqueness


def _distinct_aggs(check: Check) -> dict[str, pl.Expr]:
    # n_unique counts null as a value; subtracting it afterwards avoids copying the column to drop nulls
    column = _col(check)
    return {"n_unique": column.n_unique(), "nulls": column.null_count(), "count": column.count()}


def _distinct(values: dict[str, Any]) -> int:
    return int(values["n_unique"]) - (1 if values["nulls"] else 0)


def _judge_unique(check: Check, values: dict[str, Any]) -> Outcome:
    duplicates = values["count"] - _distinct(values)
    return Outcome(duplicates == 0, {"duplicate_rows": duplicates}, "no duplicate non-null values")


register(
    CheckType(
        "unique",
        "uniqueness",
        "aggregate",
        "no non-null value occurs twice",
        column="required",
        aggregates=_distinct_aggs,
        judge=_judge_unique,
        sample_filter=lambda c: _col(c).is_duplicated(),
    )
)


def _combo_aggs(check: Check) -> dict[str, pl.Expr]:
    import polars as pl

    return {
        "n_unique": pl.struct(list(check.params["columns"])).n_unique(),
        "nulls": pl.lit(0),
        "count": pl.len(),
    }


def _combo_sample(check: Check) -> pl.Expr:
    import polars as pl

    return pl.struct(list(check.params["columns"])).is_duplicated()


register(
    CheckType(
        "unique_combination",
        "uniqueness",
        "aggregate",
        "no combination of these columns occurs twice",
        (Param("columns", "strings", True, "the compound key"),),
        aggregates=_combo_aggs,
        judge=_judge_unique,
        sample_filter=_combo_sample,
    )
)


def _judge_bounds(check: Check, values: dict[str, Any]) -> Outcome:
    value = _scalar(values["value"])
    return Outcome(_in_bounds(value, check), value, _bounds_text(check))


BOUND_TYPES.update({"distinct_count_between", "distinct_ratio_between"})
register(
    CheckType(
        "distinct_count_between",
        "uniqueness",
        "aggregate",
        "the number of distinct non-null values is within bounds",
        (_MIN, _MAX, *_STRICT),
        column="required",
        aggregates=_distinct_aggs,
        judge=lambda check, values: _judge_bounds(check, {"value": _distinct(values)}),
    )
)


def _judge_ratio(check: Check, values: dict[str, Any]) -> Outcome:
    ratio = _distinct(values) / values["count"] if values["count"] else 0.0
    return Outcome(_in_bounds(ratio, check), ratio, _bounds_text(check))


register(
    CheckType(
        "distinct_ratio_between",
        "uniqueness",
        "aggregate",
        "distinct non-null values divided by non-null values is within bounds",
        (_MIN, _MAX, *_STRICT),
        column="required",
        aggregates=_distinct_aggs,
        judge=_judge_ratio,
    )
)

# --------------------------------------------------------------------------------------------- validity


def _between(check: Check, schema: Mapping[str, Any]) -> pl.Expr:
    import polars as pl

    column = _col(check)
    low, high = check.params.get("min"), check.params.get("max")
    if low is not None and high is not None:
        strict_min, strict_max = check.params.get("strict_min"), check.params.get("strict_max")
        closed = {(False, False): "both", (True, False): "right", (False, True): "left"}.get(
            (bool(strict_min), bool(strict_max)), "none"
        )
        return column.is_between(_bound_value(check, low), _bound_value(check, high), closed=closed)  # type: ignore[arg-type]
    condition = pl.lit(True)
    if low is not None:
        low_value = _bound_value(check, low)
        condition = condition & (
            column > low_value if check.params.get("strict_min") else column >= low_value
        )
    if high is not None:
        high_value = _bound_value(check, high)
        condition = condition & (
            column < high_value if check.params.get("strict_max") else column <= high_value
        )
    return condition


BOUND_TYPES.add("between")
_row(
    "between",
    "validity",
    "every value is within [min, max] (numbers, dates or ISO date strings)",
    _between,
    params=(_MIN, _MAX, *_STRICT),
    dtype="orderable",
    expected=_bounds_text,
)


def _in_set(check: Check, schema: Mapping[str, Any]) -> pl.Expr:
    import polars as pl

    return _col(check).is_in(pl.Series(list(check.params["values"]), strict=False).implode())


_row(
    "in_set",
    "validity",
    "every value is one of these",
    _in_set,
    params=(Param("values", "list", True, "allowed values"),),
    expected=lambda c: f"in {list(c.params['values'])[:20]}",
)
_row(
    "not_in_set",
    "validity",
    "no value is one of these",
    lambda c, s: ~_in_set(c, s),
    params=(Param("values", "list", True, "forbidden values"),),
    expected=lambda c: f"not in {list(c.params['values'])[:20]}",
)


_row(
    "matches_regex",
    "validity",
    "every value contains a match of the regular expression (anchor it with ^...$ to match the whole value)",
    lambda c, s: _col(c).str.contains(c.params["pattern"]),
    params=(Param("pattern", "string", True, "a regular expression (Rust regex syntax)"),),
    dtype="string",
    expected=lambda c: f"matches /{c.params['pattern']}/",
)
_row(
    "not_matches_regex",
    "validity",
    "no value contains a match of the regular expression",
    lambda c, s: ~_col(c).str.contains(c.params["pattern"]),
    params=(Param("pattern", "string", True, "a regular expression (Rust regex syntax)"),),
    dtype="string",
    expected=lambda c: f"does not match /{c.params['pattern']}/",
)


def _length(check: Check, schema: Mapping[str, Any]) -> pl.Expr:
    import polars as pl

    length = _col(check).str.len_chars()
    if check.params.get("min") is not None and check.params.get("max") is not None:
        return length.is_between(check.params["min"], check.params["max"])
    condition = pl.lit(True)
    if check.params.get("min") is not None:
        condition = condition & (length >= check.params["min"])
    if check.params.get("max") is not None:
        condition = condition & (length <= check.params["max"])
    return condition


BOUND_TYPES.add("length_between")
_row(
    "length_between",
    "validity",
    "every string's length in characters is within [min, max]",
    _length,
    params=(Param("min", "int", doc="shortest length"), Param("max", "int", doc="longest length")),
    dtype="string",
    expected=lambda c: f"length in [{c.params.get('min', 0)}, {c.params.get('max', 'inf')}]",
)


def _parses(check: Check, schema: Mapping[str, Any]) -> pl.Expr:
    import polars as pl

    fmt = check.params.get("format")
    parsed = _col(check).str.strptime(pl.Datetime, fmt, strict=False)
    return pl.when(_col(check).is_null()).then(None).otherwise(parsed.is_not_null())


_row(
    "parses_datetime",
    "validity",
    "every string parses as a date/time with this strftime format (or ISO 8601 when no format is given)",
    _parses,
    params=(Param("format", "string", doc="e.g. '%Y-%m-%d %H:%M:%S'"),),
    dtype="string",
    expected=lambda c: f"parses as {c.params.get('format', 'ISO 8601')}",
)

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL = r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@" + _LABEL + r"(?:\." + _LABEL + r")+$"
URL = r"^[A-Za-z][A-Za-z0-9+.-]*://[^\s/?#]+[^\s]*$"
UUID = r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
_row(
    "email",
    "validity",
    "every value is an e-mail address (local@domain.tld)",
    lambda c, s: _col(c).str.contains(EMAIL),
    dtype="string",
    expected=lambda c: "an e-mail address",
)
_row(
    "url",
    "validity",
    "every value is an absolute URL (scheme://host...)",
    lambda c, s: _col(c).str.contains(URL),
    dtype="string",
    expected=lambda c: "a URL",
)
_row(
    "uuid",
    "validity",
    "every value is a UUID (with or without dashes)",
    lambda c, s: _col(c).str.contains(UUID),
    dtype="string",
    expected=lambda c: "a UUID",
)


def _monotonic(increasing: bool) -> Callable[[Check, Mapping[str, Any]], pl.Expr]:
    def predicate(check: Check, schema: Mapping[str, Any]) -> pl.Expr:
        column = _col(check)
        previous = column.forward_fill().shift(1)
        strict = check.params.get("strict", False)
        if increasing:
            return (column > previous) if strict else (column >= previous)
        return (column < previous) if strict else (column <= previous)

    return predicate


_row(
    "increasing",
    "validity",
    "each value is >= the one before it (> with strict: true); nulls skipped",
    _monotonic(True),
    params=(Param("strict", "bool", doc="require strictly increasing"),),
    dtype="orderable",
    expected=lambda c: "strictly increasing" if c.params.get("strict") else "non-decreasing",
    evaluated="predicate",
)
_row(
    "decreasing",
    "validity",
    "each value is <= the one before it (< with strict: true); nulls skipped",
    _monotonic(False),
    params=(Param("strict", "bool", doc="require strictly decreasing"),),
    dtype="orderable",
    expected=lambda c: "strictly decreasing" if c.params.get("strict") else "non-increasing",
    evaluated="predicate",
)

# --------------------------------------------------------------------------------------------- statistics

_stat("min_between", "the smallest value is within bounds", lambda c: _col(c).min(), dtype="orderable")
_stat("max_between", "the largest value is within bounds", lambda c: _col(c).max(), dtype="orderable")
_stat("mean_between", "the mean is within bounds", lambda c: _col(c).mean())
_stat("median_between", "the median is within bounds", lambda c: _col(c).median())
_stat(
    "quantile_between",
    "the q-quantile (linear interpolation) is within bounds",
    lambda c: _col(c).quantile(c.params["q"], interpolation="linear"),
    extra=(Param("q", "number", True, "quantile in [0, 1]"),),
)
_stat("std_between", "the sample standard deviation is within bounds", lambda c: _col(c).std())
_stat("sum_between", "the sum is within bounds", lambda c: _col(c).sum())


def _check_q(check: Check) -> None:
    if not 0 <= check.params["q"] <= 1:
        raise check.error(f"'q' must be between 0 and 1, got {check.params['q']}", param="q")


EXTRA_VALIDATION["quantile_between"] = _check_q

# --------------------------------------------------------------------------------------------- row count


def _row_count(check: Check) -> dict[str, pl.Expr]:
    import polars as pl

    return {"value": pl.len()}


BOUND_TYPES.add("row_count_between")
register(
    CheckType(
        "row_count_between",
        "row count",
        "aggregate",
        "the number of rows is within bounds",
        (_MIN, _MAX, *_STRICT),
        aggregates=_row_count,
        judge=_judge_bounds,
    )
)
register(
    CheckType(
        "not_empty",
        "row count",
        "aggregate",
        "the table has at least one row",
        aggregates=_row_count,
        judge=lambda c, v: Outcome(v["value"] > 0, v["value"], "at least one row"),
    )
)
register(
    CheckType(
        "row_count_equals",
        "row count",
        "external",
        "the number of rows equals another table's (a name given to validate(tables=...), a path or a URL)",
        (Param("table", "string", True, "the other table"),),
    )
)

# --------------------------------------------------------------------------------------------- referential

register(
    CheckType(
        "values_in_table",
        "referential",
        "external",
        "every non-null value is present in another table's column (a foreign key)",
        (
            Param(
                "table", "string", True, "the other table: a name given to validate(tables=...), path or URL"
            ),
            Param("table_column", "string", doc="its column (default: the same name)"),
        ),
        column="required",
    )
)

# --------------------------------------------------------------------------------------------- freshness


def _freshness(check: Check) -> dict[str, pl.Expr]:
    return {"newest": _col(check).max()}


def _judge_freshness(check: Check, values: dict[str, Any]) -> Outcome:
    max_age = parse_duration(check.params["max_age"])
    now_text = check.params.get("now")
    now = datetime.fromisoformat(now_text) if now_text else datetime.now(UTC)
    newest = values["newest"]
    expected = f"newest value younger than {check.params['max_age']}"
    if newest is None:
        return Outcome(False, None, expected, "the column holds no timestamps")
    if not isinstance(newest, datetime):  # a Date
        newest = datetime(newest.year, newest.month, newest.day)
    if newest.tzinfo is None:
        newest = newest.replace(tzinfo=UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    age = now - newest
    return Outcome(age <= max_age, newest.isoformat(), expected, f"age {age}")


def _check_duration(check: Check) -> None:
    try:
        parse_duration(check.params["max_age"])
    except ValueError as exc:
        raise check.error(str(exc), param="max_age") from exc
    if check.params.get("now"):
        try:
            datetime.fromisoformat(check.params["now"])
        except ValueError as exc:
            raise check.error(f"'now' must be an ISO date/time: {exc}", param="now") from exc


EXTRA_VALIDATION["fresher_than"] = _check_duration
register(
    CheckType(
        "fresher_than",
        "freshness",
        "aggregate",
        "the newest timestamp is younger than max_age (e.g. '24h')",
        (
            Param("max_age", "bound", True, "a duration: '90s', '15m', '24h', '7d', '2w' or seconds"),
            Param("now", "string", doc="the reference time (ISO); default: the current UTC time"),
        ),
        column="required",
        dtype="temporal",
        aggregates=_freshness,
        judge=_judge_freshness,
    )
)

# --------------------------------------------------------------------------------------------- cross-column

_OPERATORS = ("<", "<=", ">", ">=", "==", "!=")


def _compare(check: Check, schema: Mapping[str, Any]) -> pl.Expr:
    import polars as pl

    left, right = _col(check), pl.col(check.params["other"])
    op = check.params.get("op", "<")
    return {
        "<": left < right,
        "<=": left <= right,
        ">": left > right,
        ">=": left >= right,
        "==": left == right,
        "!=": left != right,
    }[op]


def _check_op(check: Check) -> None:
    if check.params.get("op", "<") not in _OPERATORS:
        raise check.error(f"'op' must be one of {list(_OPERATORS)}, got {check.params['op']!r}", param="op")


EXTRA_VALIDATION["compare"] = _check_op
_row(
    "compare",
    "cross-column",
    "column <op> other on every row where both are set (op: < <= > >= == !=)",
    _compare,
    params=(
        Param("other", "string", True, "the other column"),
        Param("op", "string", doc="comparison, default '<'"),
    ),
    expected=lambda c: f"{c.column} {c.params.get('op', '<')} {c.params['other']}",
    evaluated="predicate",
)


def _expression(check: Check, schema: Mapping[str, Any]) -> pl.Expr:
    import polars as pl

    try:
        expression: pl.Expr = pl.sql_expr(check.params["expr"])
        return expression
    except Exception as exc:
        raise check.error(f"expression {check.params['expr']!r} does not parse: {exc}") from exc


_row(
    "expression",
    "custom",
    "a SQL boolean expression over the row's columns is true, e.g. 'a + b <= c'",
    _expression,
    params=(Param("expr", "string", True, "SQL expression"),),
    column="optional",
    expected=lambda c: str(c.params["expr"]),
    evaluated="predicate",
)
register(
    CheckType(
        "sql",
        "custom",
        "external",
        "a SQL query over the table (named 'data') returns no rows; the rows it returns are the failures",
        (Param("query", "string", True, "SELECT ... FROM data WHERE <bad rows>"),),
    )
)

# ------------------------------------------------------------------------------------- drift and history

register(
    CheckType(
        "drift",
        "distribution",
        "external",
        "the column has not drifted from the reference profile (validate(reference=...) / --reference)",
        (
            Param(
                "method",
                "string",
                doc="ks, psi, wasserstein, hellinger, chi2, jensen_shannon (default: by type)",
            ),
            Param("threshold", "number", doc="drift threshold of the method (default: the method's)"),
        ),
        column="required",
    )
)
register(
    CheckType(
        "row_count_within_sigma",
        "history",
        "external",
        "the row count is within sigma standard deviations of the mean over the last `window` validations "
        "of this dataset",
        (
            Param("sigma", "number", doc="default 3"),
            Param("window", "int", doc="default 30"),
            Param("metric", "string", doc="a dataset metric instead of row_count, e.g. 'mean.amount'"),
        ),
    )
)
register(
    CheckType(
        "changed_less_than",
        "history",
        "external",
        "a dataset metric changed by less than `fraction` since the previous validation of this dataset",
        (
            Param("fraction", "number", True, "e.g. 0.2 for 20 %"),
            Param("metric", "string", doc="default row_count; or null_fraction.COL, mean.COL"),
        ),
    )
)
