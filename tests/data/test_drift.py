"""Drift statistics from profiles, checked against scipy and numpy on known distributions."""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

import keel
from keel.data.drift_detection import (
    DEFAULT_METHODS,
    chi_square_sf,
    column_drift,
    domain_classifier_drift,
    drift,
    hellinger,
    kolmogorov_p_value,
    psi,
)
from keel.data.errors import ColumnMismatchError, DriftMethodError
from keel.data.profiles import log_profile, profile

N = 100_000


@pytest.fixture(scope="module")
def samples():
    rng = np.random.default_rng(42)
    return {
        "ref": rng.normal(0.0, 1.0, N),
        "same": rng.normal(0.0, 1.0, N),
        "shifted": rng.normal(0.5, 1.3, N),
        "gamma": rng.gamma(2.0, 2.0, N),
    }


def _column(values, name="x"):
    return profile(pl.DataFrame({name: values}))[name]


@pytest.mark.parametrize("other", ["same", "shifted", "gamma"])
def test_numeric_statistics_agree_with_scipy_and_numpy(samples, other):
    a, b = samples["ref"], samples[other]
    ref, cur = _column(a), _column(b)

    ks = column_drift(ref, cur, "ks")
    assert ks.statistic == pytest.approx(stats.ks_2samp(a, b).statistic, abs=0.02)

    wasserstein = column_drift(ref, cur, "wasserstein")
    expected = stats.wasserstein_distance(a, b) / a.std()
    # the sketches' rank error (about 1 %) adds a noise floor of 0.02-0.035 here, below the 0.1 default
    assert wasserstein.statistic == pytest.approx(expected, rel=0.08, abs=0.04)

    for method, bins, function in (("psi", 10, psi), ("hellinger", 10, hellinger)):
        edges = np.unique(np.quantile(a, [i / bins for i in range(1, bins)]))
        full = np.concatenate([[-np.inf], edges, [np.inf]])
        p = np.histogram(a, full)[0] / len(a)
        q = np.histogram(b, full)[0] / len(b)
        result = column_drift(ref, cur, method)
        # per-bin shares carry the sketches' error (~1 % each), a noise floor of ~0.02 on these scales
        assert result.statistic == pytest.approx(function(p, q), rel=0.15, abs=0.025), method

    verdicts = {m: column_drift(ref, cur, m).drifted for m in ("ks", "wasserstein", "psi", "hellinger")}
    assert all(verdicts.values()) is (other != "same")
    assert not any(verdicts.values()) or other != "same"


def test_ks_on_sketches_does_not_flag_sketch_noise(samples):
    result = column_drift(_column(samples["ref"]), _column(samples["same"]), "ks")
    assert result.p_value is not None and result.p_value > 0.05
    small_shift = column_drift(_column(samples["ref"]), _column(samples["ref"] + 0.2), "ks")
    assert small_shift.drifted and small_shift.p_value < 1e-6


def test_categorical_statistics_agree_with_scipy():
    rng = np.random.default_rng(7)
    a = rng.choice(list("abcde"), 20_000, p=[0.3, 0.25, 0.2, 0.15, 0.1])
    b = rng.choice(list("abcdef"), 15_000, p=[0.25, 0.25, 0.2, 0.15, 0.1, 0.05])
    ref, cur = _column(a, "c"), _column(b, "c")
    labels = sorted(set(a) | set(b))
    counts_a = np.array([(a == v).sum() for v in labels])
    counts_b = np.array([(b == v).sum() for v in labels])

    chi = column_drift(ref, cur, "chisquare")
    expected = stats.chi2_contingency(np.vstack([counts_a, counts_b]), correction=False)
    assert chi.statistic == pytest.approx(expected.statistic, rel=1e-9)
    assert chi.p_value == pytest.approx(expected.pvalue, rel=1e-6, abs=1e-300)
    assert chi.drifted

    js = column_drift(ref, cur)
    assert js.method == DEFAULT_METHODS["categorical"] and js.default
    p, q = counts_a / counts_a.sum(), counts_b / counts_b.sum()
    assert js.statistic == pytest.approx(jensenshannon(p, q, base=2), rel=1e-9)

    same = column_drift(ref, _column(rng.choice(list("abcde"), 20_000, p=[0.3, 0.25, 0.2, 0.15, 0.1]), "c"))
    assert not same.drifted
    assert column_drift(ref, cur, "psi").statistic == pytest.approx(psi(p, q), rel=1e-9)


@pytest.mark.parametrize("dof", [1, 2, 5, 30, 200])
def test_chi_square_tail_matches_scipy(dof):
    for x in (0.01, 0.5, dof * 0.8, dof, dof * 1.5, dof * 3 + 10):
        assert chi_square_sf(x, dof) == pytest.approx(stats.chi2.sf(x, dof), rel=1e-8, abs=1e-300)


def test_kolmogorov_p_value_matches_scipy_for_large_samples():
    n = 50_000 * 50_000 / 100_000
    for d in (0.001, 0.005, 0.01, 0.02):
        assert kolmogorov_p_value(d, n) == pytest.approx(stats.kstwobign.sf(math.sqrt(n) * d), abs=2e-3)


def test_dataset_verdict_from_the_share_of_drifted_columns(samples):
    rng = np.random.default_rng(1)
    reference = pl.DataFrame({"a": samples["ref"], "b": samples["same"], "c": rng.choice(["x", "y"], N)})
    current = pl.DataFrame({"a": samples["shifted"], "b": samples["ref"], "c": rng.choice(["x", "y"], N)})
    ref = profile(reference)
    result = drift(ref, current)
    assert result.drifted_columns == ["a"]
    assert result.share == pytest.approx(1 / 3)
    assert not result.dataset_drift
    assert drift(ref, current, drift_share=0.3).dataset_drift
    payload = result.to_dict()
    assert payload["schema"] == "keel.drift/1"
    assert payload["defaults"]["methods"] == {"numeric": "wasserstein", "categorical": "jensenshannon"}
    json.dumps(payload)


def test_methods_and_thresholds_per_column_and_per_kind(samples):
    frame = pl.DataFrame({"a": samples["ref"], "b": samples["ref"], "c": ["x", "y"] * (N // 2)})
    ref = profile(frame)
    result = drift(
        ref,
        frame.with_columns(pl.col("a") + 0.2, pl.col("b") + 0.05),
        methods={"a": "ks", "categorical": "psi"},
        thresholds={"b": 0.01},
    )
    assert (result["a"].method, result["a"].default, result["a"].drifted) == ("ks", False, True)
    assert (result["b"].method, result["b"].threshold, result["b"].drifted) == ("wasserstein", 0.01, True)
    assert result["c"].method == "psi" and not result["c"].drifted
    with pytest.raises(DriftMethodError, match="'jensenshannon' does not fit numeric column 'a'"):
        drift(ref, frame, methods={"a": "jensenshannon"})
    with pytest.raises(DriftMethodError, match="unknown drift method 'energy'; use one of wasserstein"):
        drift(ref, frame, methods="energy")
    with pytest.raises(DriftMethodError, match="non-negative number"):
        drift(ref, frame, thresholds=-1.0)
    with pytest.raises(ColumnMismatchError, match="no column 'zzz'"):
        drift(ref, frame, columns=["zzz"])


def test_missing_changed_and_empty_columns_count_as_drifted():
    ref = profile(pl.DataFrame({"gone": [1.0, 2.0, 3.0], "typed": [1.0, 2.0, 3.0], "empty": [1.0, 2.0, 3.0]}))
    current = pl.DataFrame(
        {"typed": ["a", "b", "c"], "empty": pl.Series([None, None, None], dtype=pl.Float64)}
    )
    result = drift(ref, current)
    assert result["gone"].drifted and result["gone"].note == "column missing from the current data"
    assert result["typed"].drifted and "type changed from Float64 to String" in result["typed"].note
    assert result["empty"].drifted and result["empty"].note == "no values in the current data"
    assert result.dataset_drift


def test_reference_from_a_file_or_a_run_and_current_from_a_file(project, samples):
    reference = profile(pl.DataFrame({"x": samples["ref"]}), name="train")
    reference.save(project / "train.kprof")
    pl.DataFrame({"x": samples["shifted"]}).write_parquet(project / "today.parquet")
    from_file = drift(project / "train.kprof", project / "today.parquet")
    assert from_file["x"].drifted and from_file.current_name == "today.parquet"
    with keel.start_run(experiment="profiles") as run:
        log_profile(reference)
    from_run = drift(f"runs:/{run.run_id}", pl.DataFrame({"x": samples["same"]}))
    assert not from_run.dataset_drift and from_run.reference_name == "train"


@pytest.mark.slow
def test_domain_classifier_sees_joint_drift_that_marginals_miss():
    rng = np.random.default_rng(3)
    x = rng.normal(size=2_000)
    noise = rng.normal(scale=0.1, size=2_000)
    reference = pl.DataFrame({"a": x, "b": x + noise})  # b follows a
    current = pl.DataFrame({"a": x, "b": -x + noise})  # same marginals, reversed relation
    result = drift(profile(reference), current, reference_sample=reference)
    assert not result["a"].drifted
    assert result.multivariate is not None and result.multivariate["drifted"]
    assert result.multivariate["roc_auc"] > 0.9
    assert result.dataset_drift
    same = domain_classifier_drift(reference.slice(0, 1_000), reference.slice(1_000))
    assert not same["drifted"] and same["roc_auc"] < 0.6


def test_html_report_is_self_contained_and_escapes_names(tmp_path, samples):
    rng = np.random.default_rng(9)
    evil = "<script>alert('x')</script>"
    reference = pl.DataFrame({"x": samples["ref"], evil: rng.choice(["a", "<b>"], N)})
    current = pl.DataFrame({"x": samples["shifted"], evil: rng.choice(["a", "<b>"], N)})
    result = drift(profile(reference, name="ref&co"), current)
    path = tmp_path / "drift.html"
    result.write_report(path)
    text = path.read_text()
    assert "<script" not in text and "&lt;script&gt;" in text
    assert "ref&amp;co" in text and "&lt;b&gt;" in text
    assert "Dataset drift detected: 1 of 2 columns drifted (50%" in text  # the share reaches 50 %
    assert text.count("<svg") == 2 and "wasserstein" in text and "jensenshannon" in text
    assert "http" not in text.replace("http://www.w3.org/2000/svg", "")  # nothing fetched from a network
    assert len(text) < 50_000


def test_columns_without_a_distribution_are_left_out():
    frame = pl.DataFrame({"x": [1.0, 2.0, 3.0], "tags": [["a"], ["b"], []]})
    ref = profile(frame)
    assert ref["tags"].kind == "other"
    assert [c.column for c in drift(ref, frame).columns] == ["x"]
    with pytest.raises(DriftMethodError, match="'tags' holds List"):
        drift(ref, frame, columns=["tags"])


def test_booleans_dates_and_integer_categories():
    import datetime as dt

    rng = np.random.default_rng(12)
    n = 20_000
    days = pl.Series([dt.date(2024, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 365, n)])
    reference = pl.DataFrame({"flag": rng.random(n) < 0.2, "day": days, "code": rng.integers(0, 4, n)})
    current = pl.DataFrame(
        {
            "flag": rng.random(n) < 0.6,
            "day": days.dt.offset_by("200d"),
            "code": rng.integers(0, 4, n),
        }
    )
    result = drift(profile(reference), current, methods={"code": "chisquare"})
    assert result["flag"].kind == "categorical" and result["flag"].drifted
    assert result["day"].kind == "numeric" and result["day"].drifted
    table = np.vstack([np.bincount(reference["code"].to_numpy()), np.bincount(current["code"].to_numpy())])
    expected = stats.chi2_contingency(table, correction=False).pvalue
    assert result["code"].method == "chisquare"
    assert result["code"].p_value == pytest.approx(expected, rel=1e-9)
    assert result["code"].drifted == bool(expected < 0.05)


def _orders(n: int, seed: int, shift: float) -> pl.DataFrame:
    """Six columns: four identify rows (a shuffled id, an email, an order number, an event time),
    two are measurements; ``shift`` moves only the measurements."""
    import datetime as dt

    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    return pl.DataFrame(
        {
            "id": order,
            "email": [f"user{i}@example.com" for i in order],
            "order_no": [f"ORD-{i:06d}" for i in order],
            "at": [dt.datetime(2024, 1, 1) + dt.timedelta(seconds=30 * i) for i in range(n)],
            "amount": rng.normal(50 + 20 * shift, 10, n),
            "items": rng.normal(3 + shift, 1, n),
        }
    )


def test_columns_that_identify_rows_do_not_dilute_the_verdict():
    """2 of 6 columns drift, but 4 of the 6 only identify rows: that is drift, not "2 of 6"."""
    reference, current = profile(_orders(3000, 1, 0.0)), _orders(3000, 2, 1.0)
    result = drift(reference, current)
    assert [c.column for c in result.columns] == ["amount", "items"]
    assert result.drifted_columns == ["amount", "items"] and result.dataset_drift
    assert result.excluded == {
        "id": "id-like: 100% distinct within 3,000 values",
        "email": "id-like: 100% distinct",
        "order_no": "id-like: 100% distinct",
        "at": "id-like: datetimes in increasing order",
    }
    document = result.to_dict()
    assert {"column": "email", "reason": "id-like: 100% distinct"} in document["excluded"]
    assert result.excluded_text().startswith(
        "id (id-like: 100% distinct within 3,000 values), email (id-like: 100% distinct), "
    )
    from keel.data.drift_report import render_drift_report

    assert "excluded: id (id-like: 100% distinct" in render_drift_report(result)
    # naming the columns compares them, id-like or not; exclude leaves out more
    named = drift(reference, current, columns=["id", "amount"])
    assert [c.column for c in named.columns] == ["id", "amount"] and not named.excluded
    fewer = drift(reference, current, exclude=["items"])
    assert [c.column for c in fewer.columns] == ["amount"]
    assert fewer.excluded["items"] == "excluded by request"
    with pytest.raises(ColumnMismatchError):
        drift(reference, current, exclude=["nope"])


def test_measurements_are_never_taken_for_identifiers():
    import datetime as dt

    from keel.data.identifiers import id_like

    rng = np.random.default_rng(3)
    n = 2000
    frame = pl.DataFrame(
        {
            "price": rng.normal(100, 30, n),  # all distinct floats
            "cents": rng.integers(0, 10_000_000, n),  # near-unique integers spread wide
            "city": rng.choice(["Oslo", "Lima", "Pune"], n),
            "birthday": [dt.date(1990, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 9000, n)],
        }
    )
    assert {c.name: id_like(c) for c in profile(frame)} == dict.fromkeys(frame.columns)
    tiny = profile(pl.DataFrame({"status": ["new", "paid", "lost"]}))
    assert id_like(tiny["status"]) is None  # three words are not identifiers
