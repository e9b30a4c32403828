"""Drift between a reference profile and current data, computed from the profiles' sketches.

The reference is a stored :class:`~keel.data.profiles.Profile`, so the reference data is never reloaded;
the current side is data (profiled on the fly) or another profile.

Methods and their defaults (``threshold`` is the value at which a column counts as drifted):

=================  ===========  =========  ===================================================================
method             columns      threshold  statistic (drifted when ...)
=================  ===========  =========  ===================================================================
``wasserstein``    numeric      0.1        W1 distance between the quantile functions divided by the
                                           reference standard deviation (>= threshold).
                                           **Default for numeric columns.**
``ks``             numeric      0.05       Kolmogorov-Smirnov D between the two sketched CDFs; the p-value
                                           uses D less the sketches' rank-error bound (p-value < threshold)
``psi``            both         0.1        population stability index over reference deciles or categories
                                           (>= threshold)
``hellinger``      numeric      0.1        Hellinger distance over 10 reference-quantile bins (>= threshold)
``jensenshannon``  categorical  0.1        Jensen-Shannon distance, base 2, in [0, 1] (>= threshold).
                                           **Default for strings, categoricals and booleans.**
``chisquare``      categorical  0.05       chi-square test of homogeneity of the two category counts
                                           (p-value < threshold)
=================  ===========  =========  ===================================================================

Numeric includes temporal columns (as epoch numbers). The dataset drifts when the share of drifted columns
reaches ``drift_share`` (default 0.5), or when the optional multivariate domain classifier drifts.
Columns that identify rows (ids, emails, event times; :mod:`keel.data.identifiers`) differ between any two
samples, so unless ``columns`` names them they are left out of the verdict, each with the reason, in
``DriftResult.excluded`` and in every report; ``exclude`` leaves out more.
A column missing from the current data, whose type changed, or which has no values on one side counts as
drifted, with a note saying why.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from keel.data.errors import DriftMethodError
from keel.data.profiles import BOOLEAN, CATEGORICAL, NUMERIC, STRING, TEMPORAL, ColumnProfile, Profile

__all__ = [
    "DEFAULT_DRIFT_SHARE",
    "DEFAULT_METHODS",
    "DEFAULT_THRESHOLDS",
    "ColumnDrift",
    "DriftResult",
    "column_drift",
    "domain_classifier_drift",
    "drift",
]

SCHEMA = "keel.drift/1"
NUMERIC_METHODS = ("wasserstein", "ks", "psi", "hellinger")
CATEGORICAL_METHODS = ("jensenshannon", "chisquare", "psi")
DEFAULT_METHODS = {"numeric": "wasserstein", "categorical": "jensenshannon"}
DEFAULT_THRESHOLDS = {
    "wasserstein": 0.1,
    "ks": 0.05,
    "psi": 0.1,
    "hellinger": 0.1,
    "jensenshannon": 0.1,
    "chisquare": 0.05,
}
P_VALUE_METHODS = frozenset({"ks", "chisquare"})
DEFAULT_DRIFT_SHARE = 0.5
GRID = 1000  # quantile ranks compared for Wasserstein and KS
PSI_BINS = 10
HELLINGER_BINS = 10
EPSILON = 1e-4  # floor for empty bins in PSI


@dataclasses.dataclass
class ColumnDrift:
    """Drift of one column: the statistic, the threshold it was judged by, and the verdict."""

    column: str
    kind: str  # "numeric" | "categorical"
    method: str
    threshold: float
    statistic: float
    drifted: bool
    p_value: float | None = None
    default: bool = True  # method and threshold are the documented defaults
    note: str | None = None
    reference_count: int = 0
    current_count: int = 0
    reference_null_fraction: float = math.nan
    current_null_fraction: float = math.nan

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class DriftResult:
    """Per-column drift and the dataset verdict. ``result["col"]`` is that column's :class:`ColumnDrift`."""

    columns: list[ColumnDrift]
    drift_share: float
    reference_name: str = ""
    current_name: str = ""
    reference_rows: int = 0
    current_rows: int = 0
    multivariate: dict[str, Any] | None = None
    #: columns left out of the comparison, with why (``{"id": "id-like: 100% distinct"}``)
    excluded: dict[str, str] = dataclasses.field(default_factory=dict)
    #: the two profiles compared (for reports; not part of ``to_dict``)
    reference: Profile | None = dataclasses.field(default=None, repr=False, compare=False)
    current: Profile | None = dataclasses.field(default=None, repr=False, compare=False)

    def __getitem__(self, column: str) -> ColumnDrift:
        for item in self.columns:
            if item.column == column:
                return item
        raise KeyError(column)

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]

    @property
    def share(self) -> float:
        """Share of compared columns that drifted."""
        return len(self.drifted_columns) / len(self.columns) if self.columns else 0.0

    @property
    def dataset_drift(self) -> bool:
        multivariate = bool(self.multivariate and self.multivariate.get("drifted"))
        return (bool(self.columns) and self.share >= self.drift_share) or multivariate

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "dataset_drift": self.dataset_drift,
            "drifted_columns": len(self.drifted_columns),
            "columns_compared": len(self.columns),
            "share": self.share,
            "drift_share": self.drift_share,
            "reference": {"name": self.reference_name, "rows": self.reference_rows},
            "current": {"name": self.current_name, "rows": self.current_rows},
            "defaults": {
                "methods": dict(DEFAULT_METHODS),
                "thresholds": dict(DEFAULT_THRESHOLDS),
                "drift_share": DEFAULT_DRIFT_SHARE,
            },
            "multivariate": self.multivariate,
            "excluded": [{"column": name, "reason": why} for name, why in self.excluded.items()],
            "columns": [c.to_dict() for c in self.columns],
        }

    def excluded_text(self) -> str:
        """``"id (id-like: 100% distinct), notes (excluded by request)"``, or "" when none was."""
        return ", ".join(f"{name} ({why})" for name, why in self.excluded.items())

    def log(self, *, experiment: str = "data-drift", client: Any = None) -> str:
        """Log this comparison as a run (tags ``keel.data.kind=drift``, the verdict, per-column
        statistics as metrics, the JSON result and the HTML report as artifacts); return its id."""
        import json

        from keel.data.drift_report import render_drift_report
        from keel.entities import RunStatus
        from keel.tracking.client import Client

        client = client or Client()
        tags = {
            "keel.data.kind": "drift",
            "keel.data.dataset": self.current_name or "data",
            "keel.data.reference": self.reference_name,
            "keel.data.status": "drift" if self.dataset_drift else "no drift",
        }
        run = client.create_run(experiment, None, tags=tags)
        client.log_params(
            run.run_id,
            {"reference": self.reference_name, "current": self.current_name, "drift_share": self.drift_share},
        )
        metrics = [("drift/share", self.share), ("drift/dataset", 1.0 if self.dataset_drift else 0.0)]
        metrics += [(f"drift/{c.column}/statistic", c.statistic) for c in self.columns]
        client.log_batch(run.run_id, metrics=metrics)
        client.log_text(run.run_id, json.dumps(self.to_dict(), allow_nan=True), "drift/result.json")
        client.log_text(run.run_id, render_drift_report(self), "drift/report.html")
        client.set_terminated(run.run_id, RunStatus.FINISHED)
        return str(run.run_id)

    def write_report(self, path: Any) -> None:
        """Write the self-contained HTML drift report (see :mod:`keel.data.drift_report`)."""
        from pathlib import Path

        from keel.data.drift_report import render_drift_report

        Path(path).write_text(render_drift_report(self), encoding="utf-8")


# -- entry points -------------------------------------------------------------------------------------------
def drift(
    reference: Any,
    current: Any,
    *,
    methods: str | Mapping[str, str] | None = None,
    thresholds: float | Mapping[str, float] | None = None,
    columns: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    drift_share: float = DEFAULT_DRIFT_SHARE,
    reference_sample: Any = None,
    progress: Any = None,
) -> DriftResult:
    """Compare ``current`` (data or a Profile) against ``reference`` (a Profile, a .kprof path or runs:/ URI).

    ``methods`` and ``thresholds`` are one value for every column, or a mapping whose keys are column
    names or the kinds ``"numeric"`` / ``"categorical"`` (a column name wins). ``reference_sample`` (raw
    reference rows) adds the multivariate domain-classifier check, which needs scikit-learn.

    Without ``columns`` every column with a distribution is compared except those that identify rows
    (ids, emails, event times: :func:`keel.data.identifiers.id_like`), which always differ between two
    samples; ``columns`` compares exactly the columns named, id-like or not; ``exclude`` leaves out more.
    What was left out, and why, is ``result.excluded``.
    """
    from keel.data.profiles import profile as make_profile
    from keel.data.profiles import read_profile

    ref = read_profile(reference)
    if not 0.0 < drift_share <= 1.0:
        raise DriftMethodError(f"drift_share must be in (0, 1], got {drift_share!r}")
    excluded: dict[str, str] = {}
    if columns is None:  # columns of other types (lists, structs, binary) have no distribution to compare
        from keel.data.identifiers import id_like

        names = []
        for column in ref:
            reason = id_like(column) if family(column) != "other" else None
            if reason:
                excluded[column.name] = reason
            elif family(column) != "other":
                names.append(column.name)
    else:
        names = list(columns)
    for name in [*names, *exclude]:
        ref[name]  # ColumnMismatchError naming the profile's columns
    for name in exclude:
        excluded.setdefault(name, "excluded by request")
    names = [name for name in names if name not in excluded]
    if isinstance(current, Profile):
        cur = current
    else:
        from keel.data.sources import open_source

        source = open_source(current)
        present = set(source.schema())
        wanted = [n for n in names if n in present]
        cur = make_profile(source, columns=wanted, progress=progress, fingerprint=False)
    results = []
    for name in names:
        method = _pick(methods, name, ref[name])
        threshold = _pick(thresholds, name, ref[name])
        if name not in cur:
            results.append(_missing(ref[name], method, threshold))
            continue
        results.append(column_drift(ref[name], cur[name], method, threshold))
    result = DriftResult(
        results,
        drift_share,
        reference_name=ref.name,
        current_name=cur.name,
        reference_rows=ref.row_count,
        current_rows=cur.row_count,
        reference=ref,
        current=cur,
        excluded=excluded,
    )
    if reference_sample is not None:
        if isinstance(current, Profile):
            raise DriftMethodError(
                "the multivariate check needs current rows, not a profile; pass the current data"
            )
        result.multivariate = domain_classifier_drift(reference_sample, current, columns=names)
    return result


def column_drift(
    ref: ColumnProfile, cur: ColumnProfile, method: str | None = None, threshold: float | None = None
) -> ColumnDrift:
    """Drift of one column between two column profiles (the suite's ``drift`` check calls this)."""
    kind = family(ref)
    if kind == "other":
        raise DriftMethodError(
            f"column {ref.name!r} holds {ref.dtype} values, which have no distribution to compare; "
            "leave it out of the drift columns",
            column=ref.name,
        )
    default = method is None and threshold is None
    method = method or DEFAULT_METHODS[kind]
    allowed = NUMERIC_METHODS if kind == "numeric" else CATEGORICAL_METHODS
    if method not in DEFAULT_THRESHOLDS:
        raise DriftMethodError(
            f"unknown drift method {method!r}; use one of {', '.join(DEFAULT_THRESHOLDS)}",
            column=ref.name,
            method=method,
        )
    if method not in allowed and not (method in CATEGORICAL_METHODS and ref.frequent is not None):
        raise DriftMethodError(
            f"drift method {method!r} does not fit {kind} column {ref.name!r}; use one of "
            f"{', '.join(allowed)}",
            column=ref.name,
            method=method,
        )
    if threshold is None:
        threshold = DEFAULT_THRESHOLDS[method]
    if not (isinstance(threshold, int | float) and math.isfinite(threshold) and threshold >= 0):
        raise DriftMethodError(
            f"drift threshold for {ref.name!r} must be a non-negative number, got {threshold!r}",
            column=ref.name,
            method=method,
        )
    out = ColumnDrift(
        column=ref.name,
        kind=kind,
        method=method,
        threshold=float(threshold),
        statistic=math.nan,
        drifted=True,
        default=default,
        reference_count=ref.count,
        current_count=cur.count,
        reference_null_fraction=ref.null_fraction,
        current_null_fraction=cur.null_fraction,
    )
    if family(cur) != kind and method not in CATEGORICAL_METHODS:
        out.note = f"type changed from {ref.dtype} to {cur.dtype}"
        return out
    categorical = method in CATEGORICAL_METHODS and not (method == "psi" and kind == "numeric")
    if categorical and (ref.frequent is None or cur.frequent is None):
        out.note = f"type changed from {ref.dtype} to {cur.dtype}"
        return out
    ref_values = _value_count(ref, categorical)
    cur_values = _value_count(cur, categorical)
    if ref_values == 0 or cur_values == 0:
        if ref_values == 0 and cur_values == 0:
            out.drifted, out.note = False, "no values on either side to compare"
        else:
            out.note = f"no values in the {'reference' if ref_values == 0 else 'current data'}"
        return out
    if categorical:
        statistic, p_value = _categorical(method, ref, cur)
    else:
        statistic, p_value = _numeric(method, ref, cur)
    out.statistic, out.p_value = statistic, p_value
    if method in P_VALUE_METHODS:
        assert p_value is not None
        out.drifted = p_value < threshold
    else:
        out.drifted = statistic >= threshold
    return out


def family(column: ColumnProfile) -> str:
    """``numeric`` (numbers and temporal values, compared by their quantile sketches) or ``categorical``."""
    if column.kind in (NUMERIC, TEMPORAL):
        return "numeric"
    if column.kind in (STRING, CATEGORICAL, BOOLEAN):
        return "categorical"
    return "other"


# -- helpers ------------------------------------------------------------------------------------------------
def _pick(option: Any, name: str, column: ColumnProfile) -> Any:
    if option is None or isinstance(option, str | int | float):
        return option
    if name in option:
        return option[name]
    return option.get(family(column))


def _missing(ref: ColumnProfile, method: str | None, threshold: float | None) -> ColumnDrift:
    kind = family(ref)
    method = method or DEFAULT_METHODS.get(kind, "wasserstein")
    return ColumnDrift(
        column=ref.name,
        kind=kind,
        method=method,
        threshold=float(threshold if threshold is not None else DEFAULT_THRESHOLDS[method]),
        statistic=math.nan,
        drifted=True,
        default=threshold is None,
        note="column missing from the current data",
        reference_count=ref.count,
        reference_null_fraction=ref.null_fraction,
    )


def _value_count(column: ColumnProfile, categorical: bool) -> int:
    if categorical:
        return column.non_null_count if column.frequent is not None and not column.frequent.is_empty() else 0
    return int(column.kll.n) if column.kll is not None else 0


def _numeric(method: str, ref: ColumnProfile, cur: ColumnProfile) -> tuple[float, float | None]:
    import numpy as np

    if method == "wasserstein":
        ranks = (np.arange(GRID) + 0.5) / GRID
        q_ref = np.asarray(ref.kll.get_quantiles(ranks.tolist()))
        q_cur = np.asarray(cur.kll.get_quantiles(ranks.tolist()))
        distance = float(np.mean(np.abs(q_ref - q_cur)))
        scale = ref.std if ref.std > 0 else 1.0
        return distance / scale, None
    if method == "ks":
        ranks = ((np.arange(GRID) + 0.5) / GRID).tolist()
        points = np.unique(np.concatenate([ref.kll.get_quantiles(ranks), cur.kll.get_quantiles(ranks)]))
        cdf_ref = np.asarray(ref.kll.get_cdf(points.tolist(), True)[:-1])
        cdf_cur = np.asarray(cur.kll.get_cdf(points.tolist(), True)[:-1])
        statistic = float(np.max(np.abs(cdf_ref - cdf_cur)))
        slack = _rank_error(ref.kll) + _rank_error(cur.kll)
        n, m = ref.kll.n, cur.kll.n
        return statistic, kolmogorov_p_value(max(0.0, statistic - slack), n * m / (n + m))
    bins = PSI_BINS if method == "psi" else HELLINGER_BINS
    inner = np.unique(ref.kll.get_quantiles([i / bins for i in range(1, bins)]))
    p = np.asarray(ref.kll.get_pmf(inner.tolist()))
    q = np.asarray(cur.kll.get_pmf(inner.tolist()))
    if method == "psi":
        return psi(p, q), None
    return hellinger(p, q), None


def _rank_error(sketch: Any) -> float:
    return float(sketch.normalized_rank_error(False)) if sketch.is_estimation_mode() else 0.0


def _categorical(method: str, ref: ColumnProfile, cur: ColumnProfile) -> tuple[float, float | None]:
    import numpy as np

    ref_top = dict(ref.top_values(10_000))
    cur_top = dict(cur.top_values(10_000))
    labels = sorted(set(ref_top) | set(cur_top))
    a = np.array([ref_top.get(v, 0) for v in labels] + [0], dtype=np.float64)
    b = np.array([cur_top.get(v, 0) for v in labels] + [0], dtype=np.float64)
    a[-1] = max(0.0, ref.non_null_count - a[:-1].sum())  # values the sketch could not keep
    b[-1] = max(0.0, cur.non_null_count - b[:-1].sum())
    if method == "chisquare":
        return chi_square_homogeneity(a, b)
    p, q = a / a.sum(), b / b.sum()
    if method == "psi":
        return psi(p, q), None
    return jensen_shannon(p, q), None


def psi(p: Any, q: Any) -> float:
    """Population stability index of proportions ``q`` against ``p`` (empty bins floored at 1e-4)."""
    import numpy as np

    p = np.clip(np.asarray(p, dtype=np.float64), EPSILON, None)
    q = np.clip(np.asarray(q, dtype=np.float64), EPSILON, None)
    return float(np.sum((q - p) * np.log(q / p)))


def hellinger(p: Any, q: Any) -> float:
    """Hellinger distance between two discrete distributions, in [0, 1]."""
    import numpy as np

    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    p, q = p / p.sum(), q / q.sum()
    return float(math.sqrt(max(0.0, 1.0 - float(np.sum(np.sqrt(p * q))))))


def jensen_shannon(p: Any, q: Any) -> float:
    """Jensen-Shannon distance (base 2), in [0, 1]: the square root of the JS divergence."""
    import numpy as np

    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    p, q = p / p.sum(), q / q.sum()
    m = 0.5 * (p + q)

    def kl(x: Any) -> float:
        mask = x > 0
        return float(np.sum(x[mask] * np.log2(x[mask] / m[mask])))

    return math.sqrt(max(0.0, 0.5 * kl(p) + 0.5 * kl(q)))


def chi_square_homogeneity(a: Any, b: Any) -> tuple[float, float]:
    """Chi-square statistic and p-value that two count vectors come from one distribution (2 x k table)."""
    import numpy as np

    table = np.vstack([np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 0.0, 1.0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    dof = table.shape[1] - 1
    return statistic, chi_square_sf(statistic, dof)


def chi_square_sf(x: float, dof: int) -> float:
    """P(X > x) for a chi-square variable with ``dof`` degrees of freedom."""
    if x <= 0:
        return 1.0
    return _gamma_q(dof / 2.0, x / 2.0)


def _gamma_q(a: float, x: float) -> float:
    """Regularised upper incomplete gamma function Q(a, x): a series below a+1, a continued fraction above."""
    log_prefix = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1.0:
        term = total = 1.0 / a
        denominator = a
        for _ in range(10_000):
            denominator += 1.0
            term *= x / denominator
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(log_prefix))
    # modified Lentz evaluation of the continued fraction for Q
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        step = d * c
        h *= step
        if abs(step - 1.0) < 1e-15:
            break
    return min(1.0, math.exp(log_prefix) * h)


def kolmogorov_p_value(statistic: float, effective_n: float) -> float:
    """Asymptotic two-sample KS p-value (Stephens' small-sample correction)."""
    if statistic <= 0:
        return 1.0
    root = math.sqrt(effective_n)
    lam = (root + 0.12 + 0.11 / root) * statistic
    if lam < 0.2:
        return 1.0
    total = 0.0
    for j in range(1, 101):
        term = 2.0 * (-1) ** (j - 1) * math.exp(-2.0 * j * j * lam * lam)
        total += term
        if abs(term) < 1e-12:
            break
    return min(1.0, max(0.0, total))


# -- multivariate -------------------------------------------------------------------------------------------
def domain_classifier_drift(
    reference_sample: Any,
    current: Any,
    *,
    columns: Sequence[str] | None = None,
    max_rows: int = 20_000,
    threshold: float = 0.55,
    seed: int = 0,
) -> dict[str, Any]:
    """Multivariate drift: can a classifier tell reference rows from current rows?

    Trains a histogram gradient-boosting classifier on up to ``max_rows`` rows of each side (numeric columns
    as they are, other columns as category codes) and reports the cross-validated ROC AUC; the data drifted
    when the AUC reaches ``threshold`` (0.5 means indistinguishable). Needs scikit-learn
    (``keel-mlops[sklearn]``).
    """
    try:
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.model_selection import cross_val_score
        from threadpoolctl import threadpool_limits  # a dependency of scikit-learn
    except ImportError:
        from keel.errors import MissingDependencyError

        raise MissingDependencyError("scikit-learn", "sklearn", "Multivariate drift") from None
    import numpy as np
    import polars as pl

    from keel.data.sources import open_source

    ref_lazy = open_source(reference_sample).lazy()
    cur_lazy = open_source(current).lazy()
    ref_schema, cur_schema = ref_lazy.collect_schema(), cur_lazy.collect_schema()
    names = [c for c in (columns or list(ref_schema)) if c in ref_schema and c in cur_schema]
    if not names:
        raise DriftMethodError("the reference sample and the current data share no columns to compare")
    ref = _sample(ref_lazy.select(names), max_rows, seed)
    cur = _sample(cur_lazy.select(names), max_rows, seed + 1)
    both = pl.concat([ref, cur], how="vertical_relaxed")
    features = []
    for name in names:
        series = both.get_column(name)
        if series.dtype.is_numeric() or series.dtype == pl.Boolean:
            features.append(series.cast(pl.Float64).fill_nan(None).to_numpy())
        elif series.dtype.is_temporal():
            features.append(series.to_physical().cast(pl.Float64).to_numpy())
        else:
            features.append(series.cast(pl.String).rank("dense").cast(pl.Float64).to_numpy())
    x = np.column_stack(features)
    y = np.concatenate([np.zeros(ref.height), np.ones(cur.height)])
    if min(ref.height, cur.height) < 10:
        raise DriftMethodError("the multivariate check needs at least 10 rows on each side")
    model = HistGradientBoostingClassifier(max_iter=100, random_state=seed)
    # one OpenMP thread: on a busy machine spinning OpenMP workers cost far more than they give at this size
    with threadpool_limits(limits=1, user_api="openmp"):
        scores = cross_val_score(model, x, y, cv=3, scoring="roc_auc")
    auc = float(np.mean(scores))
    return {
        "method": "domain_classifier",
        "roc_auc": auc,
        "threshold": threshold,
        "drifted": auc >= threshold,
        "rows": {"reference": ref.height, "current": cur.height},
        "columns": names,
    }


def _sample(lazy: Any, rows: int, seed: int) -> Any:
    frame = lazy.collect()
    return frame.sample(rows, seed=seed) if frame.height > rows else frame
