"""Row outliers per numeric column (robust z-score or IQR), and optionally multivariate (IsolationForest).

Per column, ``method="mad"`` (default) flags values whose robust z-score ``0.6745 * (x - median) / MAD``
exceeds ``threshold`` in absolute value (default 3.5, Iglewicz and Hoaglin); ``method="iqr"`` flags values
outside ``[Q1 - k*IQR, Q3 + k*IQR]`` (default k = 1.5, Tukey). The result gives the bounds, the count and
share of outliers, and at most ``samples`` example rows (with the ``id_columns``), most extreme first.

Three vectorised polars passes over the data (quantiles; the MAD; counts and samples), all lazy, so files
stream. The multivariate check fits scikit-learn's IsolationForest on up to ``max_rows`` rows.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from keel.data.errors import ColumnMismatchError, DriftMethodError

__all__ = ["ColumnOutliers", "OutlierResult", "find_outliers"]

DEFAULT_THRESHOLDS = {"mad": 3.5, "iqr": 1.5}
MAD_SCALE = 0.6745  # makes the MAD of a normal distribution comparable to its standard deviation


@dataclasses.dataclass
class ColumnOutliers:
    column: str
    method: str
    threshold: float
    lower: float
    upper: float
    count: int
    rows: int  # non-null values examined
    samples: list[dict[str, Any]]

    @property
    def fraction(self) -> float:
        return self.count / self.rows if self.rows else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "fraction": self.fraction}


@dataclasses.dataclass
class OutlierResult:
    columns: list[ColumnOutliers]
    multivariate: dict[str, Any] | None = None

    def __getitem__(self, column: str) -> ColumnOutliers:
        for item in self.columns:
            if item.column == column:
                return item
        raise KeyError(column)

    @property
    def total(self) -> int:
        return sum(c.count for c in self.columns)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "keel.outliers/1",
            "columns": [c.to_dict() for c in self.columns],
            "multivariate": self.multivariate,
        }


def find_outliers(
    data: Any,
    *,
    columns: Sequence[str] | None = None,
    method: str = "mad",
    threshold: float | None = None,
    id_columns: Sequence[str] = (),
    samples: int = 10,
    multivariate: bool = False,
    max_rows: int = 100_000,
    contamination: float = 0.01,
    seed: int = 0,
) -> OutlierResult:
    """Find row outliers in the numeric ``columns`` of ``data`` (by default every numeric column that is not
    an id column). ``multivariate=True`` adds an IsolationForest over those columns, fitted on up to
    ``max_rows`` rows, flagging about ``contamination`` of them."""
    import polars as pl

    from keel.data.sources import open_source

    if method not in DEFAULT_THRESHOLDS:
        raise DriftMethodError(f"outlier method {method!r} is unknown; use 'mad' or 'iqr'", method=method)
    limit = DEFAULT_THRESHOLDS[method] if threshold is None else threshold
    if not (isinstance(limit, int | float) and limit > 0 and math.isfinite(limit)):
        raise DriftMethodError(
            f"outlier threshold must be a positive number, got {threshold!r}", method=method
        )
    if not isinstance(samples, int) or samples < 0:
        raise DriftMethodError(f"samples must be a non-negative integer, got {samples!r}")
    source = open_source(data)
    schema = source.schema()
    for name in [*(columns or []), *id_columns]:
        if name not in schema:
            raise ColumnMismatchError(
                f"{source.location()} has no column {name!r}; its columns are {list(schema)[:30]}",
                column=name,
                source=source.location(),
            )
    numeric = [c for c, t in schema.items() if t.is_numeric() and c not in id_columns]
    selected = list(columns) if columns is not None else numeric
    for name in selected:
        if not schema[name].is_numeric():
            raise ColumnMismatchError(
                f"column {name!r} is {schema[name]}, not numeric; outliers are found in numeric columns",
                column=name,
            )
    lazy = source.lazy()
    try:
        bounds = _bounds(lazy, selected, method, float(limit))
        found = []
        for name in selected:
            low, high = bounds[name]
            found.append(_column(lazy, name, method, float(limit), low, high, list(id_columns), samples))
        result = OutlierResult(found)
        if multivariate:
            result.multivariate = _isolation_forest(
                lazy, selected, list(id_columns), samples, max_rows, contamination, seed
            )
    except pl.exceptions.PolarsError as exc:
        raise source.explain(exc) from exc
    return result


def _values(name: str) -> Any:
    import polars as pl

    col = pl.col(name).cast(pl.Float64)
    return col.filter(col.is_finite())


def _bounds(lazy: Any, names: list[str], method: str, limit: float) -> dict[str, tuple[float, float]]:
    import polars as pl

    if not names:
        return {}
    if method == "iqr":
        row = (
            lazy.select(
                [
                    _values(n).quantile(q, "linear").alias(f"{i}:{q}")
                    for i, n in enumerate(names)
                    for q in (0.25, 0.75)
                ]
            )
            .collect()
            .row(0)
        )
        out = {}
        for i, name in enumerate(names):
            q1, q3 = row[2 * i], row[2 * i + 1]
            if q1 is None:
                out[name] = (math.nan, math.nan)
                continue
            spread = q3 - q1
            out[name] = (q1 - limit * spread, q3 + limit * spread)
        return out
    medians = lazy.select([_values(n).median().alias(str(i)) for i, n in enumerate(names)]).collect().row(0)
    deviations = (
        lazy.select(
            [
                (_values(n) - pl.lit(m if m is not None else 0.0)).abs().median().alias(str(i))
                for i, (n, m) in enumerate(zip(names, medians, strict=True))
            ]
        )
        .collect()
        .row(0)
    )
    out = {}
    for name, median, mad in zip(names, medians, deviations, strict=True):
        if median is None:
            out[name] = (math.nan, math.nan)
        elif mad == 0:
            out[name] = (median, median)  # every value but the median's is an outlier: no spread at all
        else:
            spread = limit * mad / MAD_SCALE
            out[name] = (median - spread, median + spread)
    return out


def _column(
    lazy: Any, name: str, method: str, limit: float, low: float, high: float, ids: list[str], samples: int
) -> ColumnOutliers:
    import polars as pl

    col = pl.col(name).cast(pl.Float64)
    if math.isnan(low):
        return ColumnOutliers(name, method, limit, low, high, 0, 0, [])
    outside = col.is_finite() & ((col < low) | (col > high))
    counts = lazy.select(outside.sum().alias("bad"), col.is_finite().sum().alias("rows")).collect().row(0)
    rows: list[dict[str, Any]] = []
    if counts[0] and samples:
        centre = (low + high) / 2
        keep = [c for c in ids if c != name]
        rows = (
            lazy.filter(outside)
            .select([*keep, name])
            .top_k(samples, by=(col - centre).abs())
            .collect()
            .to_dicts()
        )
    return ColumnOutliers(name, method, limit, low, high, int(counts[0] or 0), int(counts[1] or 0), rows)


def _isolation_forest(
    lazy: Any, names: list[str], ids: list[str], samples: int, max_rows: int, contamination: float, seed: int
) -> dict[str, Any]:
    try:
        from sklearn.ensemble import IsolationForest
    except ImportError:
        from keel.errors import MissingDependencyError

        raise MissingDependencyError("scikit-learn", "sklearn", "Multivariate outlier detection") from None
    import numpy as np
    import polars as pl

    frame = lazy.select([*[c for c in ids if c not in names], *names]).collect()
    if frame.height > max_rows:
        frame = frame.sample(max_rows, seed=seed)
    complete = frame.filter(pl.all_horizontal([pl.col(n).cast(pl.Float64).is_finite() for n in names]))
    if complete.height < 10:
        return {
            "method": "isolation_forest",
            "rows": complete.height,
            "count": 0,
            "fraction": 0.0,
            "samples": [],
            "note": "fewer than 10 complete rows",
        }
    x = complete.select([pl.col(n).cast(pl.Float64) for n in names]).to_numpy()
    model = IsolationForest(random_state=seed, contamination=contamination)
    labels = model.fit_predict(x)
    scores = -model.score_samples(x)  # higher: more anomalous
    flagged = np.flatnonzero(labels == -1)
    order = flagged[np.argsort(-scores[flagged])][:samples]
    rows = complete[order.tolist()].with_columns(pl.Series("anomaly_score", scores[order])).to_dicts()
    return {
        "method": "isolation_forest",
        "rows": complete.height,
        "count": int(flagged.size),
        "fraction": float(flagged.size / complete.height),
        "samples": rows,
        "columns": names,
    }
