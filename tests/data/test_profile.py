"""Profiles: statistics against numpy, merging, the serialized form, files, and storage as artifacts."""

from __future__ import annotations

import datetime as dt
import json
import math
import struct

import numpy as np
import polars as pl
import pytest

import keel
from keel.data.errors import ColumnMismatchError, ProfileFormatError, ProfileMergeError
from keel.data.profiles import (
    FORMAT_VERSION,
    MAGIC,
    Profile,
    load_profile,
    log_profile,
    profile,
    read_profile,
)

KLL_RANK_ERROR = 0.02  # k=200: normalized rank error about 1.3 % (99 % confidence)


def _frame(n: int = 50_000, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(10, 3, n)
    x[::97] = np.nan
    x[5] = np.inf
    x[6] = -np.inf
    return pl.DataFrame(
        {
            "x": x,
            "i": rng.integers(0, 12, n),
            "s": rng.choice(["red", "green", "blue", "a@b.org"], n),
            "flag": rng.random(n) < 0.25,
        }
    ).with_columns(pl.when(pl.int_range(pl.len()) % 10 == 3).then(None).otherwise(pl.col("i")).alias("i"))


def test_numeric_statistics_match_numpy():
    frame = _frame()
    column = profile(frame)["x"]
    raw = frame["x"].to_numpy()
    finite = raw[np.isfinite(raw)]
    assert column.count == len(raw)
    assert column.null_count == 0
    assert column.nan_count == int(np.isnan(raw).sum())
    assert (column.posinf_count, column.neginf_count) == (1, 1)
    assert column.moments.n == len(finite)
    assert column.mean == pytest.approx(finite.mean(), rel=1e-12)
    assert column.variance == pytest.approx(finite.var(), rel=1e-9)
    assert (column.min, column.max) == (finite.min(), finite.max())
    for q in (0.01, 0.1, 0.5, 0.9, 0.99):
        estimate = column.quantile(q)
        rank = (finite <= estimate).mean()
        assert abs(rank - q) < KLL_RANK_ERROR
    assert column.distinct_count == pytest.approx(len(np.unique(finite)), rel=0.05)
    assert column.inferred_type == "float"


def test_integer_strings_and_booleans():
    frame = _frame()
    p = profile(frame)
    ints = p["i"]
    values = frame["i"].drop_nulls().to_numpy()
    assert ints.null_count == frame["i"].null_count()
    assert ints.inferred_type == "integer"
    assert ints.frequent_exact
    expected = dict(zip(*np.unique(values, return_counts=True), strict=True))
    assert {int(v): c for v, c in ints.top_values(20)} == {int(k): int(v) for k, v in expected.items()}
    assert ints.distinct_count == pytest.approx(12, abs=0.5)

    strings = p["s"]
    assert strings.kind == "string"
    assert strings.patterns["email"] == int((frame["s"] == "a@b.org").sum())
    assert strings.lengths is not None
    lengths = frame["s"].str.len_chars().to_numpy()
    assert (strings.lengths.min, strings.lengths.max) == (lengths.min(), lengths.max())
    assert strings.lengths.mean == pytest.approx(lengths.mean())
    assert (strings.min, strings.max) == ("a@b.org", "red")
    assert round(strings.distinct_count) == 4

    flags = p["flag"]
    assert flags.kind == "boolean"
    assert dict(flags.top_values()) == {
        "true": int(frame["flag"].sum()),
        "false": int((~frame["flag"]).sum()),
    }
    assert flags.mean == pytest.approx(frame["flag"].mean())


def test_string_patterns_infer_types():
    frame = pl.DataFrame(
        {
            "email": [f"user{i}@example.com" for i in range(40)],
            "uuid": [f"{i:08x}-1234-5678-9abc-{i:012x}" for i in range(40)],
            "day": [f"2024-01-{1 + i % 28:02d}" for i in range(40)],
            "digits": [str(i * 7) for i in range(40)],
            "free": [f"word {i}" for i in range(40)],
        }
    )
    p = profile(frame)
    assert [p[c].inferred_type for c in frame.columns] == ["email", "uuid", "date", "integer", "string"]


def test_temporal_columns_are_epoch_numbers():
    start = dt.datetime(2024, 3, 1, 12, 0)
    frame = pl.DataFrame(
        {
            "at": [start + dt.timedelta(hours=h) for h in range(100)],
            "day": [dt.date(2024, 1, 1) + dt.timedelta(days=d) for d in range(100)],
        }
    )
    p = profile(frame)
    at = p["at"]
    assert at.kind == "temporal" and at.unit == "us" and at.inferred_type == "datetime"
    epoch = dt.datetime(1970, 1, 1)
    assert at.min == (start - epoch) / dt.timedelta(microseconds=1)
    assert at.max == (start + dt.timedelta(hours=99) - epoch) / dt.timedelta(microseconds=1)
    day = p["day"]
    assert day.unit == "days" and day.inferred_type == "date"
    assert day.min == (dt.date(2024, 1, 1) - dt.date(1970, 1, 1)).days


def test_partition_profiles_merge_into_the_whole():
    frame = _frame(60_000)
    whole = profile(frame)
    parts = [profile(frame.slice(a, 20_000)) for a in (0, 20_000, 40_000)]
    merged = parts[0].merge(parts[1], parts[2])
    assert merged.row_count == whole.row_count == 60_000
    for name in frame.columns:
        a, b = merged[name], whole[name]
        assert (a.count, a.null_count, a.nan_count, a.posinf_count, a.neginf_count) == (
            b.count,
            b.null_count,
            b.nan_count,
            b.posinf_count,
            b.neginf_count,
        )
        assert a.moments.n == b.moments.n
        assert a.mean == pytest.approx(b.mean, rel=1e-12, nan_ok=True)
        assert a.variance == pytest.approx(b.variance, rel=1e-10, nan_ok=True)
        assert (a.min, a.max) == (b.min, b.max)
        assert a.distinct_count == pytest.approx(b.distinct_count, rel=0.05)
    assert merged["i"].top_values() == whole["i"].top_values()
    assert merged["s"].patterns == whole["s"].patterns
    raw = frame["x"].to_numpy()
    finite = raw[np.isfinite(raw)]
    for q in (0.05, 0.5, 0.95):
        assert abs((finite <= merged["x"].quantile(q)).mean() - q) < KLL_RANK_ERROR


def test_merge_rejects_different_columns_and_kinds():
    a = profile(pl.DataFrame({"x": [1.0, 2.0]}))
    with pytest.raises(ProfileMergeError, match="different columns"):
        a.merge(profile(pl.DataFrame({"y": [1.0]})))
    with pytest.raises(ProfileMergeError, match="'x' is numeric"):
        a.merge(profile(pl.DataFrame({"x": ["text"]})))


def test_round_trip_keeps_everything_including_nan_and_infinity():
    frame = _frame(5_000).with_columns(pl.lit(None, dtype=pl.Float64).alias("empty"))
    original = profile(frame)
    data = original.to_bytes()
    again = Profile.from_bytes(data)
    assert _same(again.summary(), original.summary())
    assert _same(Profile.from_bytes(again.to_bytes()).summary(), original.summary())
    assert math.isinf(again["empty"].moments.min) and again["empty"].moments.n == 0
    assert math.isnan(again["empty"].mean)
    assert again["x"].quantile(0.5) == original["x"].quantile(0.5)
    summary = json.loads(again.to_json())  # strict JSON: NaN and infinities as strings
    empty = next(c for c in summary["columns"] if c["name"] == "empty")
    assert empty["mean"] == "NaN" and empty["null_count"] == 5_000


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def test_incompatible_or_damaged_profiles_are_refused(tmp_path):
    data = profile(pl.DataFrame({"x": [1.0, 2.0]})).to_bytes()
    newer = MAGIC + struct.pack("<H", FORMAT_VERSION + 1) + data[len(MAGIC) + 2 :]
    with pytest.raises(
        ProfileFormatError, match=f"format version {FORMAT_VERSION + 1}.*upgrade keel"
    ) as info:
        Profile.from_bytes(newer)
    assert info.value.version == FORMAT_VERSION + 1
    older = MAGIC + struct.pack("<H", 0) + data[len(MAGIC) + 2 :]
    with pytest.raises(ProfileFormatError, match="version 0.*re-create it"):
        Profile.from_bytes(older)
    with pytest.raises(ProfileFormatError, match="not a keel profile"):
        Profile.from_bytes(b"PAR1 something else")
    with pytest.raises(ProfileFormatError, match="damaged"):
        Profile.from_bytes(data[:-5])
    with pytest.raises(ProfileFormatError, match="does not exist"):
        Profile.load(tmp_path / "missing.kprof")
    assert keel.errors.InvalidInputError in ProfileFormatError.__mro__


def test_reference_profile_is_at_most_100_kb_per_10_columns():
    rng = np.random.default_rng(3)
    n = 1_000_000
    frame = pl.DataFrame({f"c{i}": rng.standard_normal(n) * (i + 1) for i in range(8)}).with_columns(
        pl.Series("k", rng.integers(0, 1000, n)), pl.Series("s", rng.choice([f"v{i}" for i in range(300)], n))
    )
    size = len(profile(frame).to_bytes())
    assert size <= 100_000, size


def test_parquet_files_are_read_in_chunks_with_the_same_result(tmp_path):
    frame = _frame(30_000)
    path = tmp_path / "data.parquet"
    frame.write_parquet(path, row_group_size=4_000)
    from_file = profile(path, chunk_rows=5_000)
    in_memory = profile(frame)
    assert from_file.name == "data.parquet"
    for name in frame.columns:
        a, b = from_file[name], in_memory[name]
        assert (a.count, a.null_count, a.moments.n) == (b.count, b.null_count, b.moments.n)
        assert a.mean == pytest.approx(b.mean, rel=1e-12, nan_ok=True)
    assert from_file["s"].top_values() == in_memory["s"].top_values()


def test_progress_and_column_selection():
    seen: list[int] = []
    p = profile(_frame(10_000), columns=["x", "s"], chunk_rows=3_000, progress=seen.append)
    assert list(p.columns) == ["x", "s"]
    assert seen == [3_000, 6_000, 9_000, 10_000]
    assert p.fingerprint is not None
    assert profile(_frame(100), fingerprint=False).fingerprint is None
    with pytest.raises(ColumnMismatchError, match="no column 'nope'"):
        profile(_frame(10), columns=["nope"])


def test_empty_table():
    p = profile(pl.DataFrame({"x": pl.Series([], dtype=pl.Float64), "s": pl.Series([], dtype=pl.String)}))
    assert p.row_count == 0
    assert math.isnan(p["x"].mean) and p["x"].quantile(0.5) != p["x"].quantile(0.5)
    assert p["s"].top_values() == []


def test_histogram_from_the_sketch():
    rng = np.random.default_rng(5)
    values = rng.uniform(0, 10, 100_000)
    hist = profile(pl.DataFrame({"u": values}))["u"].histogram(10)
    assert hist.kind == "numeric" and hist.edges is not None and len(hist.edges) == 11
    exact, _ = np.histogram(values, bins=np.array(hist.edges))
    assert sum(hist.counts) == pytest.approx(len(values))
    assert np.allclose(hist.counts, exact, atol=0.03 * len(values))
    cats = profile(pl.DataFrame({"c": ["a"] * 5 + ["b"] * 3}))["c"].histogram()
    assert cats.labels == ["a", "b"] and cats.counts == [5.0, 3.0]


def test_profile_is_stored_as_an_artifact_linked_to_the_dataset(project):
    frame = _frame(2_000)
    p = profile(frame, name="orders")
    data = p.to_bytes()
    with keel.start_run(experiment="profiles") as run:
        stored = log_profile(p)
    client = keel.Client()
    (dataset,) = client.list_inputs(run.run_id)
    assert dataset.name == "orders"
    assert dataset.profile_sha256 == stored["sha256"]
    assert dataset.fingerprint == p.fingerprint
    assert dataset.row_count == 2_000
    loaded = load_profile(run.run_id[:8])
    assert _same(loaded.summary(), p.summary())
    assert client.read_artifact(run.run_id, "profile.kprof") == data
    assert read_profile(f"runs:/{run.run_id}/profile.kprof")["x"].mean == p["x"].mean


@pytest.mark.parametrize("n", [1, 10, 1_000, 50_000, 300_000])
def test_distinct_count_sketch_is_accurate_and_path_independent(n):
    from keel.data._hll import HyperLogLog

    values = np.random.default_rng(n).normal(size=n)
    whole = HyperLogLog()
    whole.update(np.concatenate([values, values[: n // 2]]))  # repeats do not count
    parts = HyperLogLog()
    for part in np.array_split(values, 7):  # merging chunk by chunk equals one pass
        parts.update(part)
    assert np.array_equal(whole.registers, parts.registers)
    assert whole.estimate() == pytest.approx(n, rel=0.05)
    assert HyperLogLog.from_bytes(whole.to_bytes()).estimate() == whole.estimate()


def test_bad_files_raise_errors_that_name_the_file_and_line(tmp_path):
    from keel.data.errors import DataSourceError, MalformedFileError

    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b\n1,2\n3,4,5\n6,7\n")
    with pytest.raises(MalformedFileError, match=r"ragged.csv:3") as info:
        profile(ragged)
    assert info.value.exit_code == 2
    with pytest.raises(DataSourceError, match="does not exist"):
        profile(tmp_path / "missing.parquet")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataSourceError, match="empty"):
        profile(empty)


def test_the_package_functions_are_not_shadowed_by_modules():
    import keel.data
    import keel.data.drift_detection
    import keel.data.profiles  # importing the modules must not replace the functions
    from keel.data import drift
    from keel.data import profile as make_profile

    assert callable(make_profile) and callable(drift)
    assert keel.data.profile is make_profile and keel.data.drift is drift


def _exact_counts(series: pl.Series) -> dict[str, int]:
    counts = series.drop_nulls().cast(pl.String).value_counts()
    return dict(zip(counts[series.name].to_list(), counts["count"].to_list(), strict=True))


def test_counts_are_exact_below_the_sketch_threshold():
    """500 emails are 500 distinct values, not 501; and the top values' counts are the real ones even
    when more values are seen than the frequent-items sketch keeps (192)."""
    rng = np.random.default_rng(5)
    n = 500
    frame = pl.DataFrame(
        {
            "email": [f"user{i}@example.com" for i in range(n)],
            "code": rng.choice([f"c{i}" for i in range(300)], n),
            "k": rng.integers(0, 250, n),
            "x": rng.normal(size=n),
        }
    )
    result = profile(frame)
    assert result["email"].distinct_count == n and result["email"].distinct_exact
    for name in ("code", "k"):
        column, truth = result[name], _exact_counts(frame[name])
        assert column.distinct_count == len(truth)
        assert column.top_values(10_000) == sorted(truth.items(), key=lambda p: (-p[1], p[0]))
        assert column.frequent_exact
    assert result["x"].distinct_count <= n  # an estimate, but never more than there are values
    assert result["email"].summary()["distinct"] == n
    # exactness survives the serialized form and merging parts (while the union stays small)
    again = Profile.from_bytes(result.to_bytes())
    assert again["code"].top_values(5) == result["code"].top_values(5)
    halves = profile(frame[:200]).merge(profile(frame[200:]))
    assert halves["code"].top_values(10_000) == result["code"].top_values(10_000)
    assert halves["email"].distinct_count == n


def test_many_distinct_values_fall_back_to_the_sketches():
    from keel.data.profiles import EXACT_VALUES

    n = EXACT_VALUES + 1000
    frame = pl.DataFrame({"s": [f"v{i}" for i in range(n)], "k": list(range(n))})
    result = profile(frame)
    for name in ("s", "k"):
        assert not result[name].distinct_exact
        assert result[name].distinct_count == pytest.approx(n, rel=0.05) and result[name].distinct_count <= n
    # two exact halves whose union passes the threshold fall back too
    left, right = profile(frame[: n // 2]), profile(frame[n // 2 :])
    assert left["s"].distinct_exact and right["s"].distinct_exact
    assert not left.merge(right)["s"].distinct_exact


def test_integer_and_time_columns_record_whether_they_only_go_up():
    n = 1000
    start = dt.datetime(2024, 1, 1)
    frame = pl.DataFrame(
        {
            "id": list(range(n)),
            "shuffled": np.random.default_rng(0).permutation(n),
            "at": [start + dt.timedelta(minutes=i) for i in range(n)],
            "x": np.arange(n, dtype=float),
        }
    )
    result = profile(frame, chunk_rows=128)  # order is followed across chunks
    assert result["id"].monotonic and result["at"].monotonic
    assert result["shuffled"].monotonic is False and result["x"].monotonic is None
    assert profile(frame[:500]).merge(profile(frame[500:]))["id"].monotonic
    assert profile(frame[500:]).merge(profile(frame[:500]))["id"].monotonic is False
    assert Profile.from_bytes(result.to_bytes())["at"].monotonic
