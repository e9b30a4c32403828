"""Checks that need more than the table's own scan: other tables, a reference profile, SQL, history.

Called by :mod:`keel.data.engine` after the fused scan; each function records its check's result on the
engine's run state.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from keel.data.errors import ColumnMismatchError, DataSourceError
from keel.data.sources import Source, SqlSource, open_source

if TYPE_CHECKING:
    from keel.data.checks import Check
    from keel.data.engine import _Run

__all__ = ["drift_checks", "history_check", "row_count_equals", "sql_check", "values_in_table"]


def _other(check: Check, tables: Mapping[str, Any]) -> Source:
    name = check.params["table"]
    if name in tables:
        return open_source(tables[name], name=name)
    try:
        return open_source(name)
    except DataSourceError as exc:
        raise DataSourceError(
            f"{check.type} names table {name!r}, which is neither given in tables=... (--table NAME=PATH) "
            f"nor a readable path or URL: {exc}",
            source=name,
        ) from exc


def _engine(source: Source) -> Any:
    return "streaming" if source.kind in ("parquet", "csv") else "in-memory"


def _count(source: Source) -> int:
    import polars as pl

    if isinstance(source, SqlSource):
        return int(source.query(f"SELECT COUNT(*) FROM {source.quoted_table()}")[0][0])
    try:
        return int(source.lazy().select(pl.len()).collect(engine=_engine(source)).item())
    except Exception as exc:
        raise source.explain(exc) from exc


def row_count_equals(run: _Run, check: Check, tables: Mapping[str, Any]) -> None:
    other = _other(check, tables)
    expected = _count(other)
    run.result(
        check,
        "passed" if run.row_count == expected else "failed",
        expected=f"{expected:,} rows (as {other.name})",
        observed=run.row_count,
    )


def values_in_table(run: _Run, check: Check, tables: Mapping[str, Any]) -> None:
    import polars as pl

    other = _other(check, tables)
    other_column = check.params.get("table_column") or check.column or ""
    if other_column not in other.schema():
        raise ColumnMismatchError(
            f"table {other.name!r} has no column {other_column!r}; its columns are {list(other.schema())}",
            column=other_column,
            source=other.location(),
            check=check.name,
        )
    try:
        keys = other.lazy().select(pl.col(other_column).drop_nulls().unique()).collect(engine=_engine(other))
    except Exception as exc:
        raise other.explain(exc) from exc
    predicate = pl.col(check.column or "").is_in(keys.to_series().implode())
    try:
        row = (
            run.source.lazy()
            .select((~predicate).fill_null(False).sum().alias("failed"), predicate.count().alias("evaluated"))
            .collect(engine=_engine(run.source))
            .row(0)
        )
    except Exception as exc:
        raise run.source.explain(exc) from exc
    failed, evaluated = int(row[0] or 0), int(row[1] or 0)
    passed = (
        failed == 0
        if check.mostly is None
        else (1 - failed / evaluated if evaluated else 1.0) >= check.mostly
    )
    run.result(
        check,
        "passed" if passed else "failed",
        expected=f"values present in {other.name}.{other_column}",
        failed_rows=failed,
        evaluated_rows=evaluated,
    )
    run.predicates[check.name] = predicate
    run.scanned.append((-1, check))


def sql_check(run: _Run, check: Check, tables: Mapping[str, Any]) -> None:
    import polars as pl

    frames = {"data": run.source.lazy()}
    for name, value in tables.items():
        frames[name] = open_source(value, name=name).lazy()
    try:
        context = pl.SQLContext(frames)
        failing = context.execute(check.params["query"], eager=False)
        count = int(failing.select(pl.len()).collect().item())
        samples = failing.head(run.sample_limit).collect().to_dicts() if count and run.sample_limit else []
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = f" (suite line {check.line})" if check.line else ""
        run.error(check, f"the SQL query failed: {first}{where}")
        return
    result = run.result(
        check,
        "passed" if count == 0 else "failed",
        expected="the query returns no rows",
        observed=count,
        failed_rows=count if count else 0,
        evaluated_rows=run.row_count,
    )
    result.samples = samples


def drift_checks(run: _Run, checks: list[Check], reference: Any) -> None:
    if reference is None:
        for check in checks:
            run.error(check, "a drift check needs a reference profile: pass reference=... (CLI: --reference)")
        return
    from keel.data.drift_detection import column_drift
    from keel.data.profiles import Profile, profile, read_profile

    reference_profile = reference if isinstance(reference, Profile) else read_profile(reference)
    wanted = [c.column for c in checks if c.column in reference_profile.columns]
    current = profile(run.source, columns=list(dict.fromkeys(wanted))) if wanted else None
    for check in checks:
        if check.column not in reference_profile.columns:
            run.error(
                check,
                f"the reference profile has no column {check.column!r}; it has "
                f"{list(reference_profile.columns)[:30]}",
            )
            continue
        assert current is not None
        try:
            outcome = column_drift(
                reference_profile.columns[check.column or ""],
                current.columns[check.column or ""],
                method=check.params.get("method"),
                threshold=check.params.get("threshold"),
            )
        except Exception as exc:
            if getattr(exc, "exit_code", 1) == 2:
                run.error(check, str(exc))
                continue
            raise
        drifted = bool(outcome.drifted)
        statistic = getattr(outcome, "statistic", getattr(outcome, "score", None))
        method = getattr(outcome, "method", check.params.get("method"))
        threshold = getattr(outcome, "threshold", check.params.get("threshold"))
        run.result(
            check,
            "failed" if drifted else "passed",
            expected=f"{method} below {threshold}",
            observed={"method": method, "statistic": statistic, "threshold": threshold},
        )


def history_check(run: _Run, check: Check, history: Sequence[Mapping[str, float]]) -> None:
    metric = check.params.get("metric", "row_count")
    current = run.metrics.get(metric)
    if current is None:
        run.error(check, f"unknown dataset metric {metric!r}; known: {sorted(run.metrics)[:30]}")
        return
    from keel.data.history import metric_key

    key = metric_key(metric)  # how the metric is named in tracking
    past = [float(h[key]) for h in history if key in h and _finite(h[key])]
    if check.type == "row_count_within_sigma":
        window = int(check.params.get("window", 30))
        sigma = float(check.params.get("sigma", 3))
        past = past[-window:]
        expected = f"{metric} within {sigma}σ of the last {window} validations"
        if len(past) < 2:
            run.result(
                check,
                "skipped",
                expected=expected,
                observed=current,
                message=f"needs a finite {metric} from at least 2 earlier validations of this dataset, "
                f"found {len(past)}",
            )
            return
        mean, std = statistics.fmean(past), statistics.stdev(past)
        distance = abs(current - mean)
        passed = distance == 0 if std == 0 else distance <= sigma * std
        run.result(
            check,
            "passed" if passed else "failed",
            expected=expected,
            observed={
                "value": current,
                "mean": mean,
                "std": std,
                "sigmas": (distance / std) if std else (0.0 if distance == 0 else math.inf),
            },
        )
        return
    fraction = float(check.params["fraction"])
    expected = f"{metric} changed by less than {fraction:.1%} since the previous validation"
    if not past:
        run.result(
            check,
            "skipped",
            expected=expected,
            observed=current,
            message=f"no earlier validation of this dataset with a finite {metric} to compare with",
        )
        return
    previous = past[-1]
    change = abs(current - previous) / abs(previous) if previous else (0.0 if current == 0 else math.inf)
    run.result(
        check,
        "passed" if change < fraction else "failed",
        expected=expected,
        observed={"value": current, "previous": previous, "change": change},
    )


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)
