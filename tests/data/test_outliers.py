"""Row outliers: robust z-score and IQR against numpy, samples with ids, IsolationForest, bad input."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from keel.data.errors import ColumnMismatchError, DriftMethodError
from keel.data.outliers import find_outliers


@pytest.fixture(scope="module")
def frame() -> pl.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(10.0, 2.0, 2_000)
    x[[3, 50, 900]] = [60.0, -40.0, 35.0]
    y = rng.normal(size=2_000)
    y[7] = np.nan
    return pl.DataFrame({"id": np.arange(2_000), "x": x, "y": y, "label": rng.choice(["a", "b"], 2_000)})


def test_robust_z_score_matches_numpy(frame):
    result = find_outliers(frame, id_columns=["id"], samples=2)
    assert [c.column for c in result.columns] == ["x", "y"]  # numeric, id column left out
    x = frame["x"].to_numpy()
    median = np.median(x)
    mad = np.median(np.abs(x - median))
    z = 0.6745 * (x - median) / mad
    expected = np.flatnonzero(np.abs(z) > 3.5)
    column = result["x"]
    assert column.count == len(expected) and column.rows == 2_000
    assert column.lower == pytest.approx(median - 3.5 * mad / 0.6745)
    assert {3, 50, 900} <= set(expected.tolist())
    assert [row["id"] for row in column.samples] == [3, 50]  # most extreme first, bounded
    assert result["y"].rows == 1_999  # NaN is not a value
    assert result.to_dict()["schema"] == "keel.outliers/1"


def test_iqr_matches_numpy(frame, tmp_path):
    path = tmp_path / "data.parquet"
    frame.write_parquet(path)
    result = find_outliers(path, columns=["x"], method="iqr", threshold=3.0)
    x = frame["x"].to_numpy()
    q1, q3 = np.quantile(x, [0.25, 0.75])
    low, high = q1 - 3.0 * (q3 - q1), q3 + 3.0 * (q3 - q1)
    assert (result["x"].lower, result["x"].upper) == (pytest.approx(low), pytest.approx(high))
    assert result["x"].count == int(((x < low) | (x > high)).sum())
    assert result["x"].fraction == pytest.approx(result["x"].count / 2_000)


@pytest.mark.slow
def test_isolation_forest_flags_the_planted_rows(frame):
    result = find_outliers(frame, columns=["x", "y"], id_columns=["id"], multivariate=True, samples=20)
    forest = result.multivariate
    assert forest is not None and forest["rows"] == 1_999
    assert forest["count"] == pytest.approx(20, abs=2)  # contamination 1 %
    assert {3, 50} <= {row["id"] for row in forest["samples"]}


def test_bad_input(frame):
    with pytest.raises(ColumnMismatchError, match="no column 'nope'"):
        find_outliers(frame, columns=["nope"])
    with pytest.raises(ColumnMismatchError, match="'label' is String, not numeric"):
        find_outliers(frame, columns=["label"])
    with pytest.raises(DriftMethodError, match="unknown"):
        find_outliers(frame, method="zscore")
    with pytest.raises(DriftMethodError, match="positive number"):
        find_outliers(frame, threshold=-1)
