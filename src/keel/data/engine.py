"""Running a suite against data: one fused scan per table, then a bounded pass for failing-row samples.

The engine turns every row-level and aggregate check of a suite into polars aggregate expressions and
computes them all, plus the dataset metrics (row count, null fractions, means), in ONE ``select`` over the
table's ``LazyFrame``: files are read by polars' streaming engine, so memory stays bounded by the
aggregates' state rather than the file size. Tables in SQL databases are checked by one SQL query that
DuckDB (or SQLite) runs where the data lives, when every check of the suite has a SQL form.

Only checks that failed get a second pass, which keeps at most ``samples`` failing rows per check, with the
suite's id columns. Checks that need something else (another table, a reference profile, the history of
earlier validations, a SQL query) are evaluated after the scan.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from keel.data.checks import Check, Outcome, type_matches
from keel.data.errors import ColumnMismatchError, DataSourceError
from keel.data.results import CheckResult, ValidationResult
from keel.data.sources import FileSource, Source, SqlSource, open_source
from keel.data.suite import Suite, suite_from
from keel.errors import InvalidInputError

if TYPE_CHECKING:
    import polars as pl

__all__ = ["dataset_metrics", "validate"]

Progress = Callable[[str], None]
#: check types whose aggregates need every value of their columns at once (not streamable)
HOLISTIC = frozenset(
    {"unique", "unique_combination", "distinct_count_between", "distinct_ratio_between", "median_between",
     "quantile_between", "increasing", "decreasing"}
)  # fmt: skip


def validate(
    data: Any,
    suite: Suite | Mapping[str, Any] | str | Path | Sequence[Check],
    *,
    reference: Any = None,
    tables: Mapping[str, Any] | None = None,
    history: Sequence[Mapping[str, float]] | None = None,
    name: str | None = None,
    samples: int | None = None,
    id_columns: Sequence[str] | None = None,
    histograms: bool = False,
    hash_frame: bool = False,
    ray: bool = False,
    progress: Progress | None = None,
) -> ValidationResult:
    """Validate ``data`` against ``suite`` and return a :class:`~keel.data.results.ValidationResult`.

    ``data`` is anything :func:`keel.data.sources.open_source` reads. ``reference`` is a
    :class:`keel.data.profiles.Profile` (or a path to one) for ``drift`` checks; ``tables`` maps names used by
    ``row_count_equals`` / ``values_in_table`` to data; ``history`` is the dataset metrics of earlier
    validations, oldest first, for history checks (:func:`keel.data.history.validate_and_log` fills it from
    tracking). ``samples`` and ``id_columns`` override the suite's. ``histograms`` adds per-column
    histograms for the HTML report (one more bounded pass). Files and tables are always fingerprinted
    (sizes and times, cheap); an in-memory frame's content hash costs a pass of its own, so it is computed
    only with ``hash_frame=True`` (logging a validation to tracking sets it) and is ``""`` otherwise.
    ``ray=True`` computes the scan of a folder or glob as one Ray task per file (see
    :mod:`keel.data.distributed`; needs ``keel-mlops[ray]``).

    >>> import polars as pl
    >>> result = validate(pl.DataFrame({"x": [1, 5, 99]}), {"keel_suite": 1, "checks": [
    ...     {"between": {"column": "x", "min": 0, "max": 10}}]})
    >>> result.passed, result["between(x)"].failed_rows
    (False, 1)
    """
    started = time.perf_counter()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    suite = suite_from(suite)
    source = open_source(data, name=name)
    say = progress or (lambda message: None)
    sample_limit = suite.samples if samples is None else samples
    ids = list(suite.id_columns if id_columns is None else id_columns)
    if isinstance(sample_limit, bool) or not isinstance(sample_limit, int) or sample_limit < 0:
        raise InvalidInputError(f"samples must be a non-negative integer, got {sample_limit!r}")
    if ray and not isinstance(source, FileSource):
        raise DataSourceError(
            f"ray=True scans the files of a folder or glob as Ray tasks; {source.location()} is a "
            f"{source.kind} source: validate it without ray",
            source=source.location(),
        )

    if isinstance(source, FileSource):
        say(f"checking the structure of {source.location()}")
        source.check_structure()
    schema = source.schema()
    missing_ids = [c for c in ids if c not in schema]
    if missing_ids:
        raise ColumnMismatchError(
            f"id column {missing_ids[0]!r} (for failing-row samples) is not in {source.location()}; its "
            f"columns are {_names(schema)}",
            column=missing_ids[0],
            source=source.location(),
        )
    run = _Run(source, schema, suite, ids)
    run.sample_limit = sample_limit
    run.classify()
    say(f"scanning {source.location()} for {len(suite.checks)} checks")
    if ray:
        from keel.data.distributed import scan_on_ray

        values = scan_on_ray(run)
    else:
        values = run.scan()
    run.judge(values)
    run.external(reference=reference, tables=tables or {}, history=history or [])
    if sample_limit > 0:
        say("collecting failing-row samples")
        run.collect_samples(sample_limit)
    histogram_data: dict[str, dict[str, list[float]]] = {}
    if histograms:
        say("computing histograms")
        histogram_data = column_histograms(source, schema, values)
    return ValidationResult(
        suite=suite.name,
        dataset=source.name,
        source=source.location(),
        fingerprint=source.fingerprint() if source.kind != "frame" or hash_frame else "",
        results=[run.results[c.name] for c in suite.checks],
        row_count=run.row_count,
        metrics=run.metrics,
        columns={c: str(t) for c, t in schema.items()},
        started_at=started_at,
        duration_s=round(time.perf_counter() - started, 6),
        suite_file=suite.file,
        engine=run.engine,
        histograms=histogram_data,
    )


class _Run:
    """The state of one validation: which checks go in the scan and what each came out as."""

    def __init__(self, source: Source, schema: Mapping[str, Any], suite: Suite, ids: list[str]):
        self.source = source
        self.schema = schema
        self.suite = suite
        self.ids = ids
        self.results: dict[str, CheckResult] = {}
        self.scanned: list[tuple[int, Check]] = []
        self.deferred: list[Check] = []
        self.predicates: dict[str, pl.Expr] = {}
        self.row_count: int | None = None
        self.sample_limit = suite.samples
        self.engine = "polars"
        self.metrics: dict[str, float] = {}

    def result(self, check: Check, status: str, **fields: Any) -> CheckResult:
        result = CheckResult(
            name=check.name,
            type=check.type,
            column=check.column,
            severity=check.severity,
            status=status,
            mostly=check.mostly,
            tags=check.tags,
            category=check.spec.category,
            line=check.line,
            **fields,
        )
        self.results[check.name] = result
        return result

    def error(self, check: Check, message: str) -> None:
        where = f" (suite line {check.line})" if check.line else ""
        self.result(check, "error", message=message + where)

    # ------------------------------------------------------------------ schema checks and compilation

    def classify(self) -> None:
        candidates: list[tuple[int, Check, list[pl.Expr]]] = []
        for index, check in enumerate(self.suite.checks):
            spec = check.spec
            if spec.kind == "schema":
                assert spec.schema_judge is not None
                self.record(check, spec.schema_judge(check, self.schema))
                continue
            problem = self.column_problem(check)
            if problem:
                self.error(check, problem)
                continue
            if spec.kind == "external":
                self.deferred.append(check)
                continue
            try:
                expressions = self.compile(index, check)
                missing = sorted(
                    {n for e in expressions for n in e.meta.root_names() if n not in self.schema}
                )
                if missing:
                    self.error(
                        check,
                        f"column(s) {missing} not in {self.source.location()}; "
                        f"its columns are {_names(self.schema)}",
                    )
                    continue
            except Exception as exc:
                if type(exc).__name__ == "SuiteError":
                    raise
                self.error(check, f"cannot evaluate on {self.source.location()}: {_first_line(exc)}")
                continue
            candidates.append((index, check, expressions))
        # type errors and bad patterns surface on an empty frame of the same schema, cheaply: all checks
        # at once, and one by one only when that fails, to tell which check is at fault
        empty = _empty_frame(self.schema)
        try:
            empty.select([e for _, _, exprs in candidates for e in exprs]).collect()
            self.scanned = [(index, check) for index, check, _ in candidates]
            return
        except Exception:
            pass
        for index, check, expressions in candidates:
            try:
                empty.select(expressions).collect()
            except Exception as exc:
                self.error(check, f"cannot evaluate on {self.source.location()}: {_first_line(exc)}")
                continue
            self.scanned.append((index, check))

    def column_problem(self, check: Check) -> str | None:
        spec = check.spec
        columns = [check.column] if check.column else []
        columns += [c for c in check.params.get("columns", []) if spec.name == "unique_combination"]
        if spec.name == "compare":
            columns.append(check.params["other"])
        for column in columns:
            if column not in self.schema:
                return (
                    f"column {column!r} is not in {self.source.location()}; its columns are "
                    f"{_names(self.schema)}"
                )
        if check.column and spec.dtype != "any":
            dtype = self.schema[check.column]
            if not _dtype_fits(spec.dtype, dtype, check):
                return (
                    f"column {check.column!r} has type {dtype}, but {check.type} needs a "
                    f"{_dtype_need(spec.dtype, check)} column"
                )
        return None

    def compile(self, index: int, check: Check) -> list[pl.Expr]:
        import polars as pl

        spec = check.spec
        prefix = f"c{index}__"
        if spec.kind == "row":
            assert spec.predicate is not None
            predicate = spec.predicate(check, self.schema)
            self.predicates[check.name] = predicate
            if spec.evaluated == "rows":
                evaluated = pl.len()
            elif spec.evaluated == "column":
                evaluated = pl.col(check.column or "").count()
            else:
                evaluated = predicate.count()
            # a sum skips nulls, so rows the predicate does not evaluate never count as failures
            return [(~predicate).sum().alias(prefix + "failed"), evaluated.alias(prefix + "evaluated")]
        assert spec.aggregates is not None
        return [expr.alias(prefix + key) for key, expr in spec.aggregates(check).items()] or [pl.len()]

    def metric_expressions(self) -> list[pl.Expr]:
        import polars as pl

        expressions = [pl.len().alias("m__rows")]
        for column, dtype in self.schema.items():
            expressions.append(pl.col(column).null_count().alias(f"m__nulls__{column}"))
            if type_matches(dtype, "numeric") or type_matches(dtype, "boolean"):
                expressions.append(pl.col(column).mean().cast(pl.Float64).alias(f"m__mean__{column}"))
        return expressions

    # ------------------------------------------------------------------ the fused scan

    def scan(self) -> dict[str, Any]:
        if isinstance(self.source, SqlSource):
            pushed = _sql_scan(self)
            if pushed is not None:
                return pushed
        streaming = self.source.kind in ("parquet", "csv")
        expressions = self.metric_expressions()
        holistic: list[pl.Expr] = []
        for index, check in self.scanned:
            # in a streaming scan, one aggregate that needs every value at once (a distinct count, a
            # median) makes polars materialise every column of the select; those go in a second select
            # that reads only their own columns
            target = holistic if streaming and check.type in HOLISTIC else expressions
            target.extend(self.compile(index, check))
        self.engine = "polars-streaming" if streaming else "polars"
        values: dict[str, Any] = {}
        for part in (expressions, holistic):
            if not part:
                continue
            try:
                frame = (
                    self.source.lazy().select(part).collect(engine="streaming" if streaming else "in-memory")
                )
            except Exception as exc:
                raise _read_error(self.source, exc) from exc
            values.update(frame.row(0, named=True))
        return values

    def judge(self, values: Mapping[str, Any]) -> None:
        self.row_count = int(values["m__rows"])
        rows = self.row_count
        for column in self.schema:
            nulls = values.get(f"m__nulls__{column}")
            if nulls is not None:
                self.metrics[f"null_fraction.{column}"] = nulls / rows if rows else 0.0
            mean = values.get(f"m__mean__{column}")
            if f"m__mean__{column}" in values:
                self.metrics[f"mean.{column}"] = math.nan if mean is None else float(mean)
        self.metrics["row_count"] = float(rows)
        grouped: dict[str, dict[str, Any]] = {}
        for key, value in values.items():
            if key.startswith("c"):
                head, _, tail = key.partition("__")
                grouped.setdefault(head, {})[tail] = value
        for index, check in self.scanned:
            own = grouped.get(f"c{index}", {})
            spec = check.spec
            if spec.kind == "row":
                failed, evaluated = int(own["failed"] or 0), int(own["evaluated"] or 0)
                if check.mostly is None:
                    passed = failed == 0
                else:
                    passed = (1.0 - failed / evaluated if evaluated else 1.0) >= check.mostly
                expected = spec.expected_text(check) if spec.expected_text else spec.doc
                self.result(
                    check,
                    "passed" if passed else "failed",
                    expected=expected,
                    failed_rows=failed,
                    evaluated_rows=evaluated,
                )
            else:
                assert spec.judge is not None
                self.record(check, spec.judge(check, own))

    def record(self, check: Check, outcome: Outcome) -> None:
        self.result(
            check,
            "passed" if outcome.passed else "failed",
            expected=outcome.expected,
            observed=outcome.observed,
            message=outcome.message,
        )

    # ------------------------------------------------------------------ checks outside the scan

    def external(
        self, *, reference: Any, tables: Mapping[str, Any], history: Sequence[Mapping[str, float]]
    ) -> None:
        from keel.data import external

        drift_checks = [c for c in self.deferred if c.type == "drift"]
        if drift_checks:
            external.drift_checks(self, drift_checks, reference)
        for check in self.deferred:
            if check.type == "drift":
                continue
            try:
                if check.type == "row_count_equals":
                    external.row_count_equals(self, check, tables)
                elif check.type == "values_in_table":
                    external.values_in_table(self, check, tables)
                elif check.type == "sql":
                    external.sql_check(self, check, tables)
                else:
                    external.history_check(self, check, history)
            except (DataSourceError, ColumnMismatchError) as exc:
                self.error(check, str(exc))

    # ------------------------------------------------------------------ failing-row samples

    def collect_samples(self, limit: int) -> None:
        import polars as pl

        wanted: list[tuple[str, pl.Expr, list[str]]] = []
        for _, check in self.scanned:
            result = self.results[check.name]
            if result.status != "failed":
                continue
            spec = check.spec
            if check.name in self.predicates:
                bad = (~self.predicates[check.name]).fill_null(False)
            elif spec.sample_filter is not None:
                bad = spec.sample_filter(check)
            else:
                continue
            roots = list(dict.fromkeys(bad.meta.root_names()))
            wanted.append((check.name, bad, roots))
        if not wanted:
            return
        if isinstance(self.source, SqlSource) and _sql_samples(self, wanted, limit):
            return
        lazy = self.source.lazy().with_row_index("row")
        expressions = []
        for position, (_, bad, roots) in enumerate(wanted):
            fields = list(dict.fromkeys(["row", *self.ids, *roots]))
            expressions.append(pl.struct(fields).filter(bad).head(limit).implode().alias(f"s{position}"))
        try:
            frame = lazy.select(expressions).collect()
        except Exception as exc:
            raise _read_error(self.source, exc) from exc
        for position, (name, _, _) in enumerate(wanted):
            self.results[name].samples = list(frame[f"s{position}"][0])


# --------------------------------------------------------------------------------------------- helpers


def dataset_metrics(result: ValidationResult) -> dict[str, float]:
    """The metrics a validation logs to tracking: row count, null fractions, means and the verdict."""
    metrics = dict(result.metrics)
    counts = result.counts()
    metrics["checks.passed"] = float(counts["passed"])
    metrics["checks.failed"] = float(counts["failed"])
    metrics["checks.warned"] = float(counts["warned"])
    metrics["checks.error"] = float(counts["error"])
    metrics["validation.passed"] = 1.0 if result.passed else 0.0
    return metrics


def column_histograms(
    source: Source, schema: Mapping[str, Any], values: Mapping[str, Any], bins: int = 20
) -> dict[str, dict[str, list[float]]]:
    """Equal-width histograms of the numeric columns in one more pass (counts only, no raw values)."""
    import polars as pl

    numeric = [c for c, t in schema.items() if type_matches(t, "numeric")]
    if not numeric:
        return {}

    def finite(column: str) -> pl.Expr:  # NaN and ±inf have no bucket; they are counted elsewhere
        value = pl.col(column).cast(pl.Float64)
        return value.filter(value.is_finite())

    bounds = (
        source.lazy()
        .select(
            [
                part
                for c in numeric
                for part in (finite(c).min().alias(f"lo{c}"), finite(c).max().alias(f"hi{c}"))
            ]
        )
        .collect()
        .row(0, named=True)
    )
    expressions = []
    edges: dict[str, list[float]] = {}
    for index, column in enumerate(numeric):
        low, high = bounds[f"lo{column}"], bounds[f"hi{column}"]
        if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
            continue
        low, high = float(low), float(high)
        width = (high - low) / bins if high > low else 1.0
        edges[column] = [low + width * i for i in range(bins + 1)]
        value = pl.col(column).cast(pl.Float64)
        scaled = ((value - low) / width).floor().clip(0, bins - 1)
        bucket = pl.when(value.is_finite()).then(scaled).otherwise(None).cast(pl.Int32)
        for b in range(bins):
            expressions.append((bucket == b).sum().alias(f"h{index}_{b}"))
    if not expressions:
        return {}
    engine: Literal["streaming", "in-memory"] = (
        "streaming" if source.kind in ("parquet", "csv") else "in-memory"
    )
    row = source.lazy().select(expressions).collect(engine=engine).row(0, named=True)
    out: dict[str, dict[str, list[float]]] = {}
    for index, column in enumerate(numeric):
        if column in edges:
            counts = [float(row[f"h{index}_{b}"] or 0) for b in range(bins)]
            out[column] = {"edges": edges[column], "counts": counts}
    return out


def _empty_frame(schema: Mapping[str, Any]) -> pl.LazyFrame:
    import polars as pl

    return pl.DataFrame(schema=dict(schema)).lazy()


def _dtype_fits(need: str, dtype: Any, check: Check) -> bool:
    numeric = type_matches(dtype, "numeric")
    temporal = type_matches(dtype, "temporal")
    string = type_matches(dtype, "string")
    if need == "numeric":
        return numeric or type_matches(dtype, "boolean")
    if need == "string":
        return string
    if need == "temporal":
        return temporal
    if need == "orderable":
        bounds = [check.params.get(k) for k in ("min", "max") if check.params.get(k) is not None]
        if any(isinstance(b, str) for b in bounds):
            return temporal
        if bounds:
            return numeric
        return numeric or temporal or string
    return True


def _dtype_need(need: str, check: Check) -> str:
    if need == "orderable":
        bounds = [check.params.get(k) for k in ("min", "max") if check.params.get(k) is not None]
        if any(isinstance(b, str) for b in bounds):
            return "date/time (the bounds are date strings)"
        if bounds:
            return "numeric (the bounds are numbers)"
        return "numeric, temporal or string"
    return {"numeric": "numeric", "string": "string", "temporal": "date/time"}.get(need, need)


def _names(schema: Mapping[str, Any], limit: int = 30) -> str:
    names = list(schema)
    shown = ", ".join(names[:limit])
    return shown + (f", … {len(names) - limit} more" if len(names) > limit else "")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _read_error(source: Source, exc: BaseException) -> Exception:
    if isinstance(exc, DataSourceError):
        return exc
    return source.explain(exc)


# --------------------------------------------------------------------------------------------- SQL push-down


def _sql_scan(run: _Run) -> dict[str, Any] | None:
    """Compute the scan as one SQL query in the database, or return None when a check has no SQL form."""
    from keel.data.sql import check_sql, metric_sql

    source = run.source
    assert isinstance(source, SqlSource)
    parts: list[str] = []
    names: list[str] = []
    for alias, sql in metric_sql(run.schema, source.dialect):
        parts.append(sql)
        names.append(alias)
    for index, check in run.scanned:
        compiled = check_sql(check, source.dialect)
        if compiled is None:
            return None
        for key, sql in compiled.items():
            parts.append(sql)
            names.append(f"c{index}__{key}")
    query = f"SELECT {', '.join(parts)} FROM {source.quoted_table()}"
    try:
        (row,) = source.query(query)
    except Exception as exc:
        raise DataSourceError(
            f"the pushed-down query failed on {source.location()}: {_first_line(exc)}",
            source=source.location(),
        ) from exc
    values = dict(zip(names, row, strict=True))
    run.engine = source.dialect
    return values


def _sql_samples(run: _Run, wanted: list[tuple[str, pl.Expr, list[str]]], limit: int) -> bool:
    from keel.data.sql import sample_queries

    source = run.source
    assert isinstance(source, SqlSource)
    queries = sample_queries(run, [name for name, _, _ in wanted], limit)
    if queries is None:
        return False
    for name, query in queries.items():
        cursor = source.connect().execute(query)
        columns = [d[0] for d in cursor.description]
        run.results[name].samples = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    return True
