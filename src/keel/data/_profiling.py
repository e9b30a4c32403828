"""The single chunked pass behind :func:`keel.data.profiles.profile`.

One polars ``select`` per chunk computes every scalar statistic of every column (counts, nulls, NaN and
infinity counts, moments, string lengths, pattern counts); sketches are then fed whole numpy arrays
(KLL, keel's vectorised HyperLogLog) or per-chunk value counts (frequent items, DataSketches HLL for text).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from keel.data.profiles import (
    BOOLEAN,
    CATEGORICAL,
    EXACT_VALUES,
    FREQUENT_FEED,
    FREQUENT_LG_MAX,
    HLL_LG_K,
    KLL_K,
    NUMERIC,
    OTHER,
    PATTERNS,
    STRING,
    TEMPORAL,
    ColumnProfile,
    Moments,
    _pick,
)

if TYPE_CHECKING:
    import polars as pl

    from keel.data.sources import Source

__all__ = ["Builder", "chunks", "update_kll"]

SORT_BLOCK = 256


def chunks(source: Source, columns: list[str], rows: int) -> Iterator[pl.DataFrame]:
    import polars as pl

    check = getattr(source, "check_structure", None)
    if check is not None:
        check()
    frame = getattr(source, "frame", None)
    try:
        if isinstance(frame, pl.DataFrame):
            frame = frame.select(columns)
            if frame.height == 0:
                yield frame
            for offset in range(0, frame.height, rows):
                yield frame.slice(offset, rows)
            return
        empty = True
        for batch in source.lazy().select(columns).collect_batches(chunk_size=rows):
            if batch.height or empty:
                empty = False
                yield batch
        if empty:
            yield source.lazy().select(columns).head(0).collect()
    except pl.exceptions.PolarsError as exc:
        raise source.explain(exc) from exc


class Builder:
    """Accumulates one column's profile over chunks."""

    def __init__(self, name: str, dtype: Any):
        import datasketches
        import polars as pl

        self.name = name
        self.key = f"\x00{len(name)}:{name}"  # output names that cannot clash with another column's
        kind, unit = _kind_of(dtype)
        self.column = ColumnProfile(name=name, dtype=str(dtype), kind=kind, unit=unit)
        self.float = dtype.is_float()
        self.value_expr: pl.Expr | None = None
        col = pl.col(name)
        if kind == NUMERIC:
            self.value_expr = col.cast(pl.Float64) if dtype.is_decimal() else col
        elif kind == TEMPORAL:
            if dtype == pl.Date:
                self.value_expr = col.cast(pl.Int32)
            elif dtype == pl.Time:
                self.value_expr = col.cast(pl.Int64)
            elif isinstance(dtype, pl.Duration):
                self.value_expr = col.dt.total_microseconds()
            else:
                self.value_expr = col.dt.epoch("us")
        elif kind == BOOLEAN:
            self.value_expr = col.cast(pl.UInt8)
        if kind in (NUMERIC, TEMPORAL):
            self.column.kll = datasketches.kll_doubles_sketch(KLL_K)
            from keel.data._hll import HyperLogLog

            self.column.distinct_sketch = HyperLogLog()
        if kind in (STRING, CATEGORICAL, BOOLEAN) or (kind == NUMERIC and dtype.is_integer()):
            self.column.frequent = datasketches.frequent_strings_sketch(FREQUENT_LG_MAX)
            self.column.value_counts = {}
        #: ids and event times are found by their order: track whether the values ever go down
        self.ordered = kind == TEMPORAL or (kind == NUMERIC and dtype.is_integer())
        self.last: float | None = None
        if self.ordered:
            self.column.monotonic = True
        if kind in (STRING, CATEGORICAL, BOOLEAN):
            self.column.distinct_sketch = datasketches.hll_sketch(HLL_LG_K, datasketches.HLL_8)
        if kind in (STRING, CATEGORICAL):
            self.column.lengths = Moments()

    def expressions(self) -> list[pl.Expr]:
        import polars as pl

        k, col = self.key, pl.col(self.name)
        out = [pl.len().alias(k + "len"), col.null_count().alias(k + "nulls")]
        kind = self.column.kind
        if self.value_expr is not None:
            values = self.value_expr
            if self.float:
                out += [
                    col.is_nan().sum().alias(k + "nan"),
                    (col == math.inf).sum().alias(k + "pinf"),
                    (col == -math.inf).sum().alias(k + "ninf"),
                ]
            # moments over every value: right when there is no NaN or infinity (the common case); otherwise
            # absorb() recomputes them from the finite values it extracts anyway
            out += _moment_exprs(values, k)
            if self.ordered:
                present = values.drop_nulls()
                out += [
                    (present.diff() >= 0).all().alias(k + "up"),
                    present.first().cast(float).alias(k + "first"),
                    present.last().cast(float).alias(k + "last"),
                ]
        if kind in (STRING, CATEGORICAL):
            text = col.cast(pl.String) if kind == CATEGORICAL else col
            lengths = text.str.len_chars()
            out += _moment_exprs(lengths, k + "L")
            out += [text.min().alias(k + "tmin"), text.max().alias(k + "tmax")]
        return out

    def absorb(self, chunk: pl.DataFrame, stats: dict[str, Any]) -> None:

        k, c = self.key, self.column
        rows = int(stats[k + "len"])
        if rows == 0:
            return
        c.count += rows
        c.null_count += int(stats[k + "nulls"])
        if self.value_expr is not None:
            special = 0
            if self.float:
                nan, pinf, ninf = (int(stats[k + key] or 0) for key in ("nan", "pinf", "ninf"))
                c.nan_count, c.posinf_count, c.neginf_count = (
                    c.nan_count + nan,
                    c.posinf_count + pinf,
                    c.neginf_count + ninf,
                )
                special = nan + pinf + ninf
            part = _moments_from(stats, k)
            array = None
            if special:
                array = self._values(chunk, nulls=int(stats[k + "nulls"]), special=special)
                part = _moments_of(array)
            c.moments = c.moments.merge(part)
            if self.ordered and stats[k + "first"] is not None:
                first = float(stats[k + "first"])
                if not stats[k + "up"] or (self.last is not None and first < self.last):
                    c.monotonic = False
                self.last = float(stats[k + "last"])
            if c.kll is not None and part.n:
                if array is None:
                    array = self._values(chunk, nulls=int(stats[k + "nulls"]), special=special)
                update_kll(c.kll, array)
                c.distinct_sketch.update(array)
        if c.kind in (STRING, CATEGORICAL):
            assert c.lengths is not None
            c.lengths = c.lengths.merge(_moments_from(stats, k + "L"))
            c.text_min = _pick(min, c.text_min, stats[k + "tmin"])
            c.text_max = _pick(max, c.text_max, stats[k + "tmax"])
        if c.frequent is not None or c.kind in (STRING, CATEGORICAL, BOOLEAN):
            self._count_values(chunk)

    def _values(self, chunk: pl.DataFrame, *, nulls: int, special: int) -> Any:
        """The chunk's finite values as a float64 array (read-only when it is polars' own memory)."""
        import numpy as np
        import polars as pl

        if self.column.kind == TEMPORAL or self.value_expr is None:
            series = chunk.select(self.value_expr).to_series()
        else:
            series = chunk.get_column(self.name)
        if nulls:
            series = series.drop_nulls()
        array = series.cast(pl.Float64).to_numpy()
        if special:
            return array[np.isfinite(array)]
        return array

    def _count_values(self, chunk: pl.DataFrame) -> None:
        """Feed value counts: all distinct values to the HLL (strings), the most common to frequent items."""
        import polars as pl

        c = self.column
        series = chunk.get_column(self.name).drop_nulls()
        if series.len() == 0:
            return
        if c.kind == BOOLEAN:
            series = series.cast(pl.String).str.to_lowercase()
        elif c.kind != STRING:
            series = series.cast(pl.String)
        counts = series.value_counts(sort=True, name="n")
        if c.kind in (STRING, CATEGORICAL):
            # patterns are matched once per distinct value, weighted by its count
            matched = counts.select(
                [
                    (pl.col(self.name).str.contains(rx).cast(pl.Int64) * pl.col("n")).sum().alias(p)
                    for p, rx in PATTERNS.items()
                ]
            ).row(0, named=True)
            for p, hits in matched.items():
                c.patterns[p] = c.patterns.get(p, 0) + int(hits or 0)
        values = counts.get_column(self.name).to_list()
        weights = counts.get_column("n").to_list()
        exact = c.value_counts
        if exact is not None:
            if len(values) > EXACT_VALUES:
                c.value_counts = None  # too many to count exactly: the sketches answer from now on
            else:
                for value, weight in zip(values, weights, strict=True):
                    exact[value] = exact.get(value, 0) + weight
                if len(exact) > EXACT_VALUES:
                    c.value_counts = None
        if c.kind in (STRING, CATEGORICAL, BOOLEAN):
            update = c.distinct_sketch.update
            for value in values:
                update(value)
        frequent = c.frequent.update
        for value, weight in zip(values[:FREQUENT_FEED], weights[:FREQUENT_FEED], strict=False):
            frequent(value, weight)


def _moment_exprs(values: pl.Expr, k: str) -> list[pl.Expr]:
    return [
        values.count().alias(k + "n"),
        values.mean().cast(float).alias(k + "mean"),
        values.var(ddof=0).cast(float).alias(k + "var"),
        values.min().cast(float).alias(k + "min"),
        values.max().cast(float).alias(k + "max"),
    ]


def update_kll(sketch: Any, array: Any) -> None:
    """Feed ``array`` to a KLL sketch in runs sorted within blocks of 256 values.

    KLL's error bounds hold for any order of the input, and its compactions sort far faster when the
    input is already in short sorted runs: sorting the blocks (numpy, outside the GIL) plus the update
    costs about 60 % of updating with the raw order. The sorted copy is also the writable array that
    DataSketches requires.
    """
    import numpy as np

    cut = len(array) - len(array) % SORT_BLOCK
    if cut:
        sketch.update(np.sort(array[:cut].reshape(-1, SORT_BLOCK), axis=1).reshape(-1))
    if cut < len(array):
        sketch.update(np.array(array[cut:], dtype=np.float64))


def _moments_of(array: Any) -> Moments:
    if len(array) == 0:
        return Moments()
    mean = float(array.mean())
    return Moments(
        len(array), mean, float(((array - mean) ** 2).sum()), float(array.min()), float(array.max())
    )


def _moments_from(stats: dict[str, Any], k: str) -> Moments:
    n = int(stats[k + "n"] or 0)
    if n == 0:
        return Moments()
    return Moments(
        n,
        float(stats[k + "mean"]),
        float(stats[k + "var"]) * n,
        float(stats[k + "min"]),
        float(stats[k + "max"]),
    )


def _kind_of(dtype: Any) -> tuple[str, str | None]:
    import polars as pl

    if dtype == pl.Boolean:
        return BOOLEAN, None
    if dtype.is_numeric():
        return NUMERIC, None
    if dtype == pl.Date:
        return TEMPORAL, "days"
    if dtype == pl.Time:
        return TEMPORAL, "ns"
    if dtype.is_temporal():
        return TEMPORAL, "us"
    if dtype == pl.String:
        return STRING, None
    if isinstance(dtype, pl.Categorical | pl.Enum):
        return CATEGORICAL, None
    return OTHER, None
