"""Validating partitioned data as Ray tasks: each partition computes partial aggregates, the driver merges.

``keel.data.validate(data, suite, ray=True)`` (CLI ``--ray``, extra ``keel-mlops[ray]``) sends one task per
file of a folder or glob. Every check whose aggregates merge is computed in the tasks: failure and row counts,
null counts and sums add up, minima and maxima take the extreme, means merge from sums and counts and
standard deviations from (count, mean, M2) by Chan's parallel algorithm. Counts therefore equal a
single-machine run exactly, means and deviations up to float rounding. Checks whose answer needs all
values at once (``unique``, distinct counts, ``median_between``, ``quantile_between``, ``increasing`` /
``decreasing`` across file boundaries) run afterwards in one streaming scan on the driver, as do checks
on hive partition columns, which exist only for the folder. Failing-row samples and checks on other tables
are computed as in a single-machine run.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from keel.data.checks import type_matches

if TYPE_CHECKING:
    import polars as pl

    from keel.data.engine import _Run

__all__ = ["scan_on_ray"]

#: how each aggregate of a check type merges across partitions; types not listed run on the driver
MERGES: dict[str, dict[str, str]] = {
    "null_fraction_at_most": {"nulls": "sum", "rows": "sum"},
    "row_count_between": {"value": "sum"},
    "not_empty": {"value": "sum"},
    "min_between": {"value": "min"},
    "max_between": {"value": "max"},
    "sum_between": {"value": "sum"},
    "mean_between": {"value": "mean"},
    "std_between": {"value": "std"},
    "fresher_than": {"newest": "max"},
}
_ROW_ON_DRIVER = {"increasing", "decreasing"}  # the first row of a file compares with the last of another


def scan_on_ray(run: _Run, *, num_cpus: float = 1) -> dict[str, Any]:
    """The fused scan's values, computed as one Ray task per partition plus a driver scan if needed."""
    import polars as pl

    from keel.cluster import connect_ray

    partitions = run.source.partitions()
    part_columns = set(partitions[0].schema()) if len(partitions) > 1 else set(run.schema)
    partial: list[pl.Expr] = []
    merges: dict[str, str] = {}
    central: list[pl.Expr] = []

    def add(key: str, how: str, expression: pl.Expr) -> None:
        if not set(expression.meta.root_names()) <= part_columns:
            central.append(expression.alias(key))
            return
        merges[key] = how
        if how == "mean":
            partial.append(expression.sum().cast(pl.Float64).alias(f"{key}@sum"))
            partial.append(expression.count().alias(f"{key}@count"))
        elif how == "std":
            partial.append(expression.count().alias(f"{key}@n"))
            partial.append(expression.mean().cast(pl.Float64).alias(f"{key}@mean"))
            partial.append((expression.var(ddof=0) * expression.count()).cast(pl.Float64).alias(f"{key}@m2"))
        else:
            partial.append(expression.alias(key))

    add("m__rows", "sum", pl.len())
    for column, dtype in run.schema.items():
        if column not in part_columns:
            central.append(pl.col(column).null_count().alias(f"m__nulls__{column}"))
            if type_matches(dtype, "numeric") or type_matches(dtype, "boolean"):
                central.append(pl.col(column).mean().cast(pl.Float64).alias(f"m__mean__{column}"))
            continue
        add(f"m__nulls__{column}", "sum", pl.col(column).null_count())
        if type_matches(dtype, "numeric") or type_matches(dtype, "boolean"):
            add(f"m__mean__{column}", "mean", pl.col(column))
    for index, check in run.scanned:
        compiled = run.compile(index, check)
        spec = check.spec
        if spec.kind == "row" and check.type not in _ROW_ON_DRIVER:
            for expression in compiled:
                add(expression.meta.output_name(), "sum", expression)
        elif check.type in MERGES:
            for key, how in MERGES[check.type].items():
                expression = next(e for e in compiled if e.meta.output_name() == f"c{index}__{key}")
                if how in ("mean", "std"):
                    expression = pl.col(check.column or "")
                add(f"c{index}__{key}", how, expression)
        else:
            central.extend(compiled)

    ray = connect_ray()
    task = ray.remote(num_cpus=num_cpus, max_retries=0)(_partial_scan)
    try:
        rows = ray.get([task.remote(part, partial) for part in partitions])
    except Exception as exc:
        cause = getattr(exc, "cause", None)
        raise (cause if isinstance(cause, Exception) else exc) from exc
    values = _merge(rows, merges)
    if central:
        run.engine = "ray+polars-streaming"
        engine = "streaming" if run.source.kind in ("parquet", "csv") else "in-memory"
        try:
            values.update(run.source.lazy().select(central).collect(engine=engine).row(0, named=True))  # type: ignore[call-overload]
        except Exception as exc:
            raise run.source.explain(exc) from exc
    else:
        run.engine = "ray"
    return values


def _partial_scan(part: Any, expressions: list[Any]) -> dict[str, Any]:
    try:
        row: dict[str, Any] = part.lazy().select(expressions).collect(engine="streaming").row(0, named=True)
    except Exception as exc:
        raise part.explain(exc) from exc
    return row


def _merge(rows: list[dict[str, Any]], merges: dict[str, str]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for key, how in merges.items():
        if how == "sum":
            merged[key] = sum(r[key] or 0 for r in rows)
        elif how in ("min", "max"):
            present = [r[key] for r in rows if r[key] is not None]
            merged[key] = (min if how == "min" else max)(present) if present else None
        elif how == "mean":
            count = sum(r[f"{key}@count"] or 0 for r in rows)
            merged[key] = sum(r[f"{key}@sum"] or 0.0 for r in rows) / count if count else None
        else:  # std: Chan et al.'s pairwise merge of (n, mean, M2)
            n, mean, m2 = 0, 0.0, 0.0
            for r in rows:
                n_b = r[f"{key}@n"] or 0
                if not n_b:
                    continue
                mean_b, m2_b = r[f"{key}@mean"], r[f"{key}@m2"]
                total = n + n_b
                delta = mean_b - mean
                mean += delta * n_b / total
                m2 += m2_b + delta * delta * n * n_b / total
                n = total
            merged[key] = math.sqrt(m2 / (n - 1)) if n > 1 else None
    return merged
