"""Mergeable per-column profiles: counts, moments, quantile, frequent-item and distinct-count sketches.

A :class:`Profile` summarises a table in a few kilobytes per column, so drift can be computed against it
without ever reloading the reference data, and profiles of partitions merge into the profile of the whole::

    >>> import polars as pl, keel.data
    >>> p = keel.data.profile(pl.DataFrame({"x": [1.0, 2.0, 3.0], "s": ["a", "b", "a"]}))
    >>> p["x"].mean, p["s"].top_values(1)
    (2.0, [('a', 2)])

Per column, by kind:

- every column: rows, nulls, dtype, kind, inferred type;
- numeric and temporal (dates, datetimes, durations and times as epoch numbers, see ``unit``): NaN and ±inf
  counts, min/max, mean and variance (merged with Chan's parallel algorithm, exact up to float rounding),
  a KLL quantile sketch (DataSketches, k=200: rank error about 1.3 %), and a distinct-count HyperLogLog;
- integers and booleans additionally, and strings and categoricals: exact value counts while at most
  4,096 distinct values have been seen (so ``distinct_count`` and ``top_values`` are exact below that), and
  a frequent-items sketch that answers once there are more;
- integers and temporal columns: whether the values never decrease in row order (ids, event times);
- strings: length moments, min/max, pattern counts (email, URL, UUID, date, datetime, integer, number,
  boolean, blank) and a DataSketches HLL distinct count.

The work is vectorised: one polars ``select`` per chunk computes every scalar statistic of every column;
sketches are fed whole numpy arrays. Files are read in chunks (bounded memory).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from keel.data.errors import ProfileFormatError, ProfileMergeError

if TYPE_CHECKING:
    from keel.data.sources import Source

__all__ = [
    "FORMAT_VERSION",
    "ColumnProfile",
    "Histogram",
    "Moments",
    "Profile",
    "load_profile",
    "log_profile",
    "profile",
    "read_profile",
]

#: version of the serialized form; bumped on every incompatible change
FORMAT_VERSION = 1
MAGIC = b"KEELPROF"
KLL_K = 200
FREQUENT_LG_MAX = 8  # at most 192 tracked items
#: distinct values counted exactly (a dict) before only the sketches answer; merging two exact counters
#: stays exact while the union is at most this large
EXACT_VALUES = 4096
FREQUENT_FEED = 1024  # most frequent values of a chunk fed to the frequent-items sketch
HLL_LG_K = 12
CELLS_PER_CHUNK = 1 << 24  # rows per chunk of a file = this / columns: bounded memory on wide, long files
MIN_CHUNK_ROWS = 16_384
FRAME_CHUNK_ROWS = 1_000_000  # in-memory frames are sliced without copying: larger chunks, fewer passes

#: string pattern classes counted for every string column (polars/Rust regex syntax)
PATTERNS: dict[str, str] = {
    "email": r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
    "url": r"^[A-Za-z][A-Za-z0-9+.\-]*://\S+$",
    "uuid": r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$",
    "date": r"^\d{4}-\d{2}-\d{2}$",
    "datetime": r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+\-]\d{2}:?\d{2})?$",
    "integer": r"^[+\-]?\d+$",
    "number": r"^[+\-]?(\d+\.?\d*|\.\d+)([eE][+\-]?\d+)?$",
    "boolean": r"^(?i)(true|false|yes|no)$",
    "blank": r"^\s*$",
}
#: a string column whose non-null values match one pattern at least this often is inferred as that type
PATTERN_SHARE = 0.95

NUMERIC, BOOLEAN, STRING, CATEGORICAL, TEMPORAL, OTHER = (
    "numeric",
    "boolean",
    "string",
    "categorical",
    "temporal",
    "other",
)


@dataclasses.dataclass
class Moments:
    """Count, mean and sum of squared deviations of a stream, mergeable exactly (Chan et al.)."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    min: float = math.inf
    max: float = -math.inf

    def merge(self, other: Moments) -> Moments:
        if other.n == 0:
            return dataclasses.replace(self)
        if self.n == 0:
            return dataclasses.replace(other)
        n = self.n + other.n
        delta = other.mean - self.mean
        return Moments(
            n,
            self.mean + delta * other.n / n,
            self.m2 + other.m2 + delta * delta * self.n * other.n / n,
            min(self.min, other.min),
            max(self.max, other.max),
        )

    @property
    def variance(self) -> float:
        """Population variance (ddof=0); NaN without values."""
        return self.m2 / self.n if self.n else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "mean": self.mean, "m2": self.m2, "min": self.min, "max": self.max}


@dataclasses.dataclass(frozen=True)
class Histogram:
    """Bins for a report: numeric ``edges`` (len(counts)+1) or categorical ``labels`` (one per count)."""

    kind: str  # "numeric" | "categorical"
    counts: list[float]
    edges: list[float] | None = None
    labels: list[str] | None = None


@dataclasses.dataclass
class ColumnProfile:
    """The profile of one column. Numbers of temporal columns are epoch numbers in ``unit``."""

    name: str
    dtype: str
    kind: str
    count: int = 0  # rows, nulls included
    null_count: int = 0
    nan_count: int = 0
    posinf_count: int = 0
    neginf_count: int = 0
    unit: str | None = None  # "us" (datetimes, durations), "days" (dates), "ns" (times of day)
    moments: Moments = dataclasses.field(default_factory=Moments)
    lengths: Moments | None = None  # strings: character lengths
    text_min: str | None = None
    text_max: str | None = None
    patterns: dict[str, int] = dataclasses.field(default_factory=dict)
    kll: Any = None  # datasketches.kll_doubles_sketch
    frequent: Any = None  # datasketches.frequent_strings_sketch
    distinct_sketch: Any = None  # keel.data._hll.HyperLogLog (numeric) or datasketches.hll_sketch
    #: exact count of every non-null value (as text) while there are at most EXACT_VALUES of them
    value_counts: dict[str, int] | None = None
    #: integers and temporal columns: no value is below the one before it (nulls skipped), in row order
    monotonic: bool | None = None

    # -- derived statistics ------------------------------------------------------------------------
    @property
    def non_null_count(self) -> int:
        return self.count - self.null_count

    @property
    def null_fraction(self) -> float:
        return self.null_count / self.count if self.count else math.nan

    @property
    def mean(self) -> float:
        return self.moments.mean if self.moments.n else math.nan

    @property
    def variance(self) -> float:
        return self.moments.variance

    @property
    def std(self) -> float:
        return math.sqrt(self.moments.variance) if self.moments.n else math.nan

    @property
    def min(self) -> Any:
        if self.kind in (STRING, CATEGORICAL):
            return self.text_min
        return self.moments.min if self.moments.n else None

    @property
    def max(self) -> Any:
        if self.kind in (STRING, CATEGORICAL):
            return self.text_max
        return self.moments.max if self.moments.n else None

    @property
    def distinct_count(self) -> float:
        """Number of distinct non-null values: exact while the values are counted exactly (at most
        ``EXACT_VALUES``), else estimated (HyperLogLog: about 1.6 % relative error), never more than
        there are values."""
        if self.value_counts is not None:
            return float(len(self.value_counts))
        if self.distinct_sketch is None:
            return math.nan
        estimate = float(
            self.distinct_sketch.get_estimate()
            if hasattr(self.distinct_sketch, "get_estimate")
            else self.distinct_sketch.estimate()
        )
        # numbers feed the sketch their finite values only; an estimate can overshoot the true count
        values = self.moments.n if self.kind in (NUMERIC, TEMPORAL) else self.non_null_count
        return min(estimate, float(values))

    @property
    def distinct_exact(self) -> bool:
        """Whether ``distinct_count`` is an exact count rather than a sketch's estimate."""
        return self.value_counts is not None

    @property
    def inferred_type(self) -> str:
        """``integer``, ``float``, ``boolean``, ``datetime``, ``date``, ``duration``, ``time``,
        ``categorical``, ``string``, or the pattern most string values follow (``email``, ``uuid``, …)."""
        if self.kind == NUMERIC:
            return "integer" if _is_integer_dtype(self.dtype) else "float"
        if self.kind == TEMPORAL:
            return _temporal_name(self.dtype)
        if self.kind in (STRING, CATEGORICAL):
            seen = self.non_null_count
            if seen:
                for name in ("uuid", "email", "url", "datetime", "date", "integer", "number", "boolean"):
                    if self.patterns.get(name, 0) >= PATTERN_SHARE * seen:
                        return name
            return self.kind
        return self.kind

    def as_value(self, number: float | None) -> Any:
        """An epoch number of a temporal column as a date, datetime (UTC), time or timedelta."""
        if number is None or self.kind != TEMPORAL or not math.isfinite(number):
            return number
        import datetime as dt

        name = _temporal_name(self.dtype)
        if name == "date":
            return dt.date(1970, 1, 1) + dt.timedelta(days=number)
        if name == "time":
            return (dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=number / 1000)).time()
        if name == "duration":
            return dt.timedelta(microseconds=number)
        return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=number)

    def quantile(self, q: float | Sequence[float]) -> Any:
        """Approximate quantile(s) from the KLL sketch (NaN when the column has no values)."""
        if self.kll is None or self.kll.is_empty():
            return [math.nan] * len(q) if isinstance(q, Sequence) else math.nan
        if isinstance(q, Sequence):
            return [float(v) for v in self.kll.get_quantiles(list(q))]
        return float(self.kll.get_quantile(q))

    def cdf(self, points: Sequence[float]) -> list[float]:
        """Approximate share of values ``<= point`` for increasing points."""
        if self.kll is None or self.kll.is_empty():
            return [math.nan] * len(points)
        return [float(v) for v in self.kll.get_cdf(list(points), True)[:-1]]

    def top_values(self, k: int = 20) -> list[tuple[str, int]]:
        """The most frequent values with their counts (exact below ``EXACT_VALUES`` distinct values,
        estimated by the frequent-items sketch above), most frequent first."""
        if self.value_counts is not None:
            return sorted(self.value_counts.items(), key=lambda pair: (-pair[1], pair[0]))[:k]
        if self.frequent is None or self.frequent.is_empty():
            return []
        import datasketches

        rows = self.frequent.get_frequent_items(datasketches.frequent_items_error_type.NO_FALSE_NEGATIVES)
        ranked = sorted(
            ((str(item), int(estimate)) for item, estimate, _low, _high in rows),
            key=lambda pair: (-pair[1], pair[0]),
        )  # ties in a stable order
        return ranked[:k]

    @property
    def frequent_exact(self) -> bool:
        """Whether ``top_values`` are exact counts (counted exactly, or the sketch never evicted an item)."""
        if self.value_counts is not None:
            return True
        if self.frequent is None or self.frequent.is_empty():
            return self.frequent is not None
        import datasketches

        rows = self.frequent.get_frequent_items(datasketches.frequent_items_error_type.NO_FALSE_NEGATIVES)
        return all(low == high for _item, _estimate, low, high in rows)

    def histogram(self, bins: int = 20) -> Histogram:
        """Equal-width bins between min and max from the KLL sketch, or the top values for categories."""
        if self.kll is not None and not self.kll.is_empty():
            low, high = self.moments.min, self.moments.max
            if not high > low:
                return Histogram("numeric", [float(self.moments.n)], [low, high])
            edges = [low + (high - low) * i / bins for i in range(bins + 1)]
            pmf = self.kll.get_pmf(edges[1:-1])
            n = self.kll.n
            return Histogram("numeric", [float(p * n) for p in pmf], edges)
        if self.frequent is not None:
            top = self.top_values(bins)
            other = self.non_null_count - sum(c for _, c in top)
            labels = [v for v, _ in top]
            counts = [float(c) for _, c in top]
            if other > 0:
                labels.append("(other)")
                counts.append(float(other))
            return Histogram("categorical", counts, labels=labels)
        return Histogram("numeric", [], [])

    def summary(self) -> dict[str, Any]:
        """Plain statistics (no sketches) for tables, JSON and reports."""
        out: dict[str, Any] = {
            "name": self.name,
            "dtype": self.dtype,
            "kind": self.kind,
            "inferred_type": self.inferred_type,
            "count": self.count,
            "null_count": self.null_count,
            "null_fraction": self.null_fraction,
            "distinct": self.distinct_count,
            "distinct_exact": self.distinct_exact,
        }
        if self.kind in (NUMERIC, TEMPORAL, BOOLEAN):
            out.update(
                nan_count=self.nan_count,
                posinf_count=self.posinf_count,
                neginf_count=self.neginf_count,
                min=self.min,
                max=self.max,
                mean=self.mean,
                std=self.std,
            )
            if self.kll is not None:
                out["quantiles"] = dict(
                    zip(
                        ("p01", "p05", "p25", "p50", "p75", "p95", "p99"),
                        self.quantile([0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99]),
                        strict=True,
                    )
                )
            if self.unit:
                out["unit"] = self.unit
            if self.monotonic is not None:
                out["monotonic"] = self.monotonic
        if self.kind in (STRING, CATEGORICAL):
            out.update(min=self.text_min, max=self.text_max, patterns=dict(self.patterns))
            if self.lengths is not None and self.lengths.n:
                out["length"] = {
                    "min": self.lengths.min,
                    "max": self.lengths.max,
                    "mean": self.lengths.mean,
                    "std": math.sqrt(self.lengths.variance),
                }
        if self.frequent is not None:
            out["top_values"] = self.top_values(10)
        return out

    # -- merging -----------------------------------------------------------------------------------
    def merge(self, other: ColumnProfile) -> ColumnProfile:
        """The profile of both parts together (neither input is changed)."""
        if other.kind != self.kind:
            raise ProfileMergeError(
                f"column {self.name!r} is {self.kind} ({self.dtype}) in one profile and {other.kind} "
                f"({other.dtype}) in the other; cast it to one type before profiling the parts",
                column=self.name,
            )
        merged = dataclasses.replace(
            self,
            dtype=self.dtype if self.dtype == other.dtype else _wider(self.dtype, other.dtype),
            count=self.count + other.count,
            null_count=self.null_count + other.null_count,
            nan_count=self.nan_count + other.nan_count,
            posinf_count=self.posinf_count + other.posinf_count,
            neginf_count=self.neginf_count + other.neginf_count,
            moments=self.moments.merge(other.moments),
            lengths=(self.lengths or Moments()).merge(other.lengths or Moments())
            if self.lengths is not None or other.lengths is not None
            else None,
            text_min=_pick(min, self.text_min, other.text_min),
            text_max=_pick(max, self.text_max, other.text_max),
            patterns={
                k: self.patterns.get(k, 0) + other.patterns.get(k, 0)
                for k in {*self.patterns, *other.patterns}
            },
            kll=_merge_kll(self.kll, other.kll),
            frequent=_merge_frequent(self.frequent, other.frequent),
            distinct_sketch=_merge_distinct(self.distinct_sketch, other.distinct_sketch),
            value_counts=_merge_counts(self.value_counts, other.value_counts),
            monotonic=_merge_monotonic(self, other),
        )
        return merged


class Profile:
    """Profiles of every column of a table, in column order. ``profile[name]`` is a :class:`ColumnProfile`."""

    def __init__(
        self,
        columns: Mapping[str, ColumnProfile] | Sequence[ColumnProfile],
        *,
        name: str = "",
        fingerprint: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ):
        items = columns.values() if isinstance(columns, Mapping) else columns
        self.columns: dict[str, ColumnProfile] = {c.name: c for c in items}
        self.name = name
        self.fingerprint = fingerprint
        self.metadata: dict[str, Any] = dict(metadata or {})

    def __getitem__(self, column: str) -> ColumnProfile:
        try:
            return self.columns[column]
        except KeyError:
            from keel.data.errors import ColumnMismatchError

            raise ColumnMismatchError(
                f"the profile has no column {column!r}; it has {_names(self.columns)}", column=column
            ) from None

    def __contains__(self, column: object) -> bool:
        return column in self.columns

    def __iter__(self) -> Iterator[ColumnProfile]:
        return iter(self.columns.values())

    def __len__(self) -> int:
        return len(self.columns)

    def __repr__(self) -> str:
        return f"<Profile {self.name!r}: {self.row_count} rows, {len(self.columns)} columns>"

    @property
    def row_count(self) -> int:
        return next(iter(self.columns.values())).count if self.columns else int(self.metadata.get("rows", 0))

    def merge(self, *others: Profile) -> Profile:
        """The profile of this table's rows and the others' together (the column sets must agree)."""
        result = self
        for other in others:
            if list(other.columns) != list(result.columns):
                if set(other.columns) != set(result.columns):
                    missing = sorted(set(result.columns) ^ set(other.columns))
                    raise ProfileMergeError(
                        f"profiles to merge have different columns (only in one of them: {missing}); "
                        "profile the same columns of every part",
                        column=missing[0],
                    )
            columns = [result.columns[name].merge(other.columns[name]) for name in result.columns]
            result = Profile(
                columns,
                name=result.name,
                fingerprint=None,
                metadata={"rows": result.row_count + other.row_count, "merged": True},
            )
        return result

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "rows": self.row_count,
            "fingerprint": self.fingerprint,
            "columns": [c.summary() for c in self.columns.values()],
        }

    # -- serialized form ---------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """``KEELPROF`` + format version (uint16) + zlib(JSON header + sketch blobs)."""
        from keel.data._serialize import encode

        return encode(self)

    @classmethod
    def from_bytes(cls, data: bytes, *, source: str = "profile") -> Profile:
        """Read :meth:`to_bytes` output; an incompatible or damaged profile raises ProfileFormatError."""
        from keel.data._serialize import decode

        return decode(data, source=source)

    def save(self, path: Any) -> None:
        from pathlib import Path

        Path(path).write_bytes(self.to_bytes())

    @classmethod
    def load(cls, path: Any) -> Profile:
        from pathlib import Path

        target = Path(path)
        if not target.is_file():
            raise ProfileFormatError(
                f"profile file {target} does not exist; check the path", source=str(target)
            )
        return cls.from_bytes(target.read_bytes(), source=str(target))

    def to_json(self) -> str:
        """The summary as JSON (sketches summarised, not included); NaN and infinities as strings."""
        return json.dumps(_json_safe(self.summary()), indent=2, default=str)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


# -- profiling ------------------------------------------------------------------------------------------
def profile(
    data: Any,
    *,
    columns: Sequence[str] | None = None,
    name: str | None = None,
    chunk_rows: int | None = None,
    progress: Any = None,
    fingerprint: bool = True,
) -> Profile:
    """Profile ``data`` (anything :func:`keel.data.open_source` reads) in one chunked pass.

    ``columns`` limits the profile to those columns; ``chunk_rows`` overrides the chunk size (by default
    about 16 M cells per chunk of a file, at least 1M rows of an in-memory frame, which is sliced without
    copying); ``progress`` is called with the number of rows done after every chunk. ``fingerprint``
    records the data's version (:meth:`Source.fingerprint`: file sizes and times, or a hash of an in-memory
    frame's content, which costs about as much as a third of the profile; pass False to skip it).
    """
    from keel.data.sources import open_source

    source = open_source(data, name=name)
    schema = _schema(source)
    selected = list(schema) if columns is None else list(columns)
    missing = [c for c in selected if c not in schema]
    if missing:
        from keel.data.errors import ColumnMismatchError

        raise ColumnMismatchError(
            f"{source.location()} has no column {missing[0]!r}; its columns are {_names(schema)}",
            column=missing[0],
            source=source.location(),
        )
    from keel.data._profiling import Builder, chunks

    builders = [Builder(c, schema[c]) for c in selected]
    if chunk_rows is None:
        chunk_rows = max(MIN_CHUNK_ROWS, CELLS_PER_CHUNK // max(1, len(selected)))
        if source.kind == "frame":
            chunk_rows = max(chunk_rows, FRAME_CHUNK_ROWS)
    rows = chunk_rows
    done = 0
    # sketch updates run in threads: numpy and polars release the GIL, so the distinct-count hashing and
    # value counting of some columns overlap the quantile-sketch updates of others
    workers = max(1, min(len(builders), os.cpu_count() or 1))
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        for chunk in chunks(source, selected, rows):
            exprs = [e for b in builders for e in b.expressions()]
            stats = chunk.select(exprs).row(0, named=True) if exprs else {}
            if workers > 1:
                list(pool.map(functools.partial(_absorb, chunk=chunk, stats=stats), builders))
            else:
                for builder in builders:
                    builder.absorb(chunk, stats)
            done += chunk.height
            if progress is not None:
                progress(done)
    result = Profile(
        [b.column for b in builders],
        name=source.name,
        fingerprint=source.fingerprint() if fingerprint else None,
        metadata={"rows": done, "source": source.location(), "kind": source.kind},
    )
    return result


def _absorb(builder: Any, *, chunk: Any, stats: dict[str, Any]) -> None:
    builder.absorb(chunk, stats)


def _schema(source: Source) -> dict[str, Any]:
    return dict(source.schema())


def _is_integer_dtype(dtype: str) -> bool:
    return dtype.startswith(("Int", "UInt"))


def _temporal_name(dtype: str) -> str:
    for prefix, name in (
        ("Datetime", "datetime"),
        ("Date", "date"),
        ("Duration", "duration"),
        ("Time", "time"),
    ):
        if dtype.startswith(prefix):
            return name
    return "temporal"


def _wider(a: str, b: str) -> str:
    if _is_integer_dtype(a) and _is_integer_dtype(b):
        return "Int64"
    return "Float64" if "Float" in a + b else a


def _pick(function: Any, a: Any, b: Any) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    return function(a, b)


def _merge_kll(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return a if b is None else _copy_kll(b)
    merged = _copy_kll(a)
    merged.merge(b)
    return merged


def _copy_kll(sketch: Any) -> Any:
    import datasketches

    return datasketches.kll_doubles_sketch.deserialize(sketch.serialize())


def _merge_frequent(a: Any, b: Any) -> Any:
    import datasketches

    if a is None or b is None:
        return a if b is None else b
    merged = datasketches.frequent_strings_sketch.deserialize(a.serialize())
    merged.merge(b)
    return merged


def _merge_counts(a: dict[str, int] | None, b: dict[str, int] | None) -> dict[str, int] | None:
    """Exact counts of both parts while there are at most ``EXACT_VALUES`` values in all, else None."""
    if a is None or b is None:
        return None
    merged = dict(a)
    for value, count in b.items():
        merged[value] = merged.get(value, 0) + count
    return merged if len(merged) <= EXACT_VALUES else None


def _merge_monotonic(first: ColumnProfile, then: ColumnProfile) -> bool | None:
    """``then``'s rows follow ``first``'s: the whole never decreases when each part does not and the
    second starts at or above where the first ended (a part that never decreases ends at its maximum)."""
    if first.monotonic is None or then.monotonic is None:
        return None
    if not (first.monotonic and then.monotonic):
        return False
    return not (first.moments.n and then.moments.n) or first.moments.max <= then.moments.min


def _merge_distinct(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return a if b is None else b
    if hasattr(a, "merge") and hasattr(b, "merge"):
        return a.merge(b)
    import datasketches

    union = datasketches.hll_union(HLL_LG_K)
    union.update(a)
    union.update(b)
    return union.get_result(datasketches.HLL_8)


def _names(columns: Any) -> str:
    names = list(columns)
    shown = ", ".join(repr(n) for n in names[:20])
    return shown + (f" and {len(names) - 20} more" if len(names) > 20 else "") if names else "no columns"


# -- storing profiles as artifacts linked to dataset versions -------------------------------------------
ARTIFACT_NAME = "profile.kprof"


def log_profile(
    result: Profile,
    *,
    run_id: str | None = None,
    artifact_name: str = ARTIFACT_NAME,
    dataset_name: str | None = None,
    context: str = "profile",
) -> dict[str, Any]:
    """Store ``result`` as an artifact of a run and link it to the dataset version it describes.

    Uses ``run_id`` or the active run. The run records the dataset (name, fingerprint, schema, rows) as
    an input whose ``profile_sha256`` is the stored profile. Returns ``{"run_id", "artifact", "sha256"}``.
    """
    from keel.tracking import fluent
    from keel.tracking.client import Client

    client: Client
    if run_id is None:
        active = fluent.active_run()
        if active is None:
            from keel.errors import InvalidInputError

            raise InvalidInputError(
                "log_profile needs a run: pass run_id=... or call it inside keel.start_run()"
            )
        client, run_id = active.client, active.run_id
    else:
        client = Client()
    artifact = client.log_bytes(run_id, result.to_bytes(), artifact_name)
    schema = {"columns": [{"name": c.name, "dtype": c.dtype} for c in result]}
    client.store.log_dataset(
        run_id,
        name=dataset_name or result.name or "dataset",
        fingerprint=result.fingerprint or artifact.sha256,
        schema=schema,
        row_count=result.row_count,
        source=str(result.metadata.get("source")) if result.metadata.get("source") else None,
        context=context,
        profile_sha256=artifact.sha256,
    )
    return {"run_id": run_id, "artifact": artifact_name, "sha256": artifact.sha256}


def load_profile(run_id: str, artifact_name: str = ARTIFACT_NAME) -> Profile:
    """The profile a run stored with :func:`log_profile`."""
    from keel.tracking.client import Client

    client = Client()
    full = client.resolve_run_id(run_id)
    return Profile.from_bytes(
        client.read_artifact(full, artifact_name), source=f"runs:/{full}/{artifact_name}"
    )


def read_profile(reference: Any) -> Profile:
    """A profile from a :class:`Profile`, bytes, a ``.kprof`` path, or ``runs:/RUN_ID[/ARTIFACT]``."""
    if isinstance(reference, Profile):
        return reference
    if isinstance(reference, bytes | bytearray):
        return Profile.from_bytes(bytes(reference))
    text = str(reference)
    if text.startswith("runs:/"):
        parts = text[len("runs:/") :].strip("/").split("/", 1)
        return load_profile(parts[0], parts[1] if len(parts) > 1 else ARTIFACT_NAME)
    return Profile.load(text)
