from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl
import pytest

from keel.data.engine import validate
from keel.data.errors import MalformedFileError

RNG = np.random.default_rng(3)
N = 2_000
FRAME = pl.DataFrame(
    {
        "id": np.arange(N),
        "amount": RNG.normal(100, 15, N).round(2),
        "status": RNG.choice(["new", "paid", "sent", "lost"], N),
        "code": [f"C{i:05d}" if i % 97 else "bad" for i in range(N)],
    }
).with_columns(pl.when(pl.col("id") % 50 == 0).then(None).otherwise(pl.col("amount")).alias("amount"))

SUITE: dict[str, Any] = {
    "keel_suite": 1,
    "id_columns": ["id"],
    "samples": 3,
    "checks": [
        {"not_null": {"column": "amount"}},
        {"not_null": {"column": "amount", "mostly": 0.9, "name": "amount mostly set"}},
        {"between": {"column": "amount", "min": 60, "max": 140}},
        {"in_set": {"column": "status", "values": ["new", "paid", "sent"]}},
        {"unique": {"column": "id"}},
        {"unique": {"column": "status", "name": "status unique"}},
        {"length_between": {"column": "code", "min": 6, "max": 6}},
        {"mean_between": {"column": "amount", "min": 95, "max": 105}},
        {"sum_between": {"column": "id", "min": 0}},
        {"row_count_between": {"min": N, "max": N}},
        {"null_fraction_at_most": {"column": "amount", "max": 0.05}},
        {"distinct_count_between": {"column": "status", "min": 4, "max": 4}},
        {"compare": {"column": "id", "other": "amount", "op": "<"}},
        {"expression": {"expr": "amount IS NULL OR amount > 0"}},
        {"columns_match": {"columns": ["id", "amount", "status", "code"]}},
    ],
}


def _summary(result: Any) -> list[tuple[Any, ...]]:
    return [
        (
            r.name,
            r.status,
            r.failed_rows,
            r.evaluated_rows,
            round(r.observed, 6) if isinstance(r.observed, float) else r.observed,
        )
        for r in result.results
    ]


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("engine")
    FRAME.write_parquet(folder / "t.parquet")
    FRAME.write_csv(folder / "t.csv")
    parts = folder / "parts"
    parts.mkdir()
    for i, chunk in enumerate(FRAME.iter_slices(700)):
        chunk.write_parquet(parts / f"p{i}.parquet")
    with sqlite3.connect(folder / "t.db") as connection:
        connection.execute("CREATE TABLE t (id INTEGER, amount REAL, status TEXT, code TEXT)")
        connection.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", FRAME.rows())
    frame = FRAME  # noqa: F841 - read by DuckDB's replacement scan below
    with duckdb.connect(str(folder / "t.duckdb")) as connection:
        connection.execute("CREATE TABLE t AS SELECT * FROM frame")
    return {
        "parquet": str(folder / "t.parquet"),
        "csv": str(folder / "t.csv"),
        "glob": str(parts / "*.parquet"),
        "sqlite": f"sqlite:///{folder / 't.db'}?table=t",
        "duckdb": f"duckdb:///{folder / 't.duckdb'}?table=t",
    }


def test_every_input_kind_gives_the_same_result(stored: dict[str, str]) -> None:
    expected = validate(FRAME, SUITE)
    assert expected.engine == "polars"
    assert expected.status == "failed"
    statuses = {r.name: r.status for r in expected.results}
    assert statuses["between(amount)"] == "failed" and statuses["unique(id)"] == "passed"
    for kind in ("pandas", "arrow"):
        data = FRAME.to_pandas() if kind == "pandas" else FRAME.to_arrow()
        assert _summary(validate(data, SUITE)) == _summary(expected), kind
    engines = {
        "parquet": "polars-streaming",
        "csv": "polars-streaming",
        "glob": "polars-streaming",
        "sqlite": "sqlite",
        "duckdb": "duckdb",
    }
    for kind, location in stored.items():
        result = validate(location, SUITE)
        assert _summary(result) == _summary(expected), kind
        assert result.engine == engines[kind], kind
        assert result.metrics["row_count"] == N
        assert result.fingerprint


def test_sql_push_down_runs_in_the_database(stored: dict[str, str]) -> None:
    simple = {
        "keel_suite": 1,
        "id_columns": ["id"],
        "samples": 2,
        "checks": [
            {"not_null": {"column": "amount"}},
            {"between": {"column": "amount", "min": 60, "max": 140}},
            {"in_set": {"column": "status", "values": ["new", "paid", "sent"]}},
            {"unique": {"column": "id"}},
            {"mean_between": {"column": "amount", "min": 95, "max": 105}},
        ],
    }
    expected = validate(FRAME, simple)
    for kind in ("sqlite", "duckdb"):
        result = validate(stored[kind], simple)
        assert result.engine == kind
        assert _summary(result) == _summary(expected)
        between = result["between(amount)"]
        assert len(between.samples) == 2
        assert all(not 60 <= row["amount"] <= 140 for row in between.samples)
        assert result.metrics == pytest.approx(expected.metrics)
    # a check with no SQL form (SQLite has no regex) falls back to one polars scan, same answers
    regex = {
        "keel_suite": 1,
        "checks": [*simple["checks"], {"matches_regex": {"column": "code", "pattern": "^C"}}],
    }
    fallback = validate(stored["sqlite"], regex)
    assert fallback.engine == "polars"
    assert _summary(fallback) == _summary(validate(FRAME, regex))
    assert validate(stored["duckdb"], regex).engine == "duckdb"


def test_samples_are_bounded_and_only_for_failed_checks() -> None:
    result = validate(FRAME, SUITE)
    between = result["between(amount)"]
    assert len(between.samples) == 3 < between.failed_rows  # type: ignore[operator]
    for row in between.samples:
        assert set(row) == {"row", "id", "amount"}
        assert not 60 <= row["amount"] <= 140
        assert FRAME.row(row["row"], named=True)["id"] == row["id"]
    duplicates = result["status unique"].samples
    assert len(duplicates) == 3 and {"id", "status"} <= set(duplicates[0])
    assert all(r.samples == [] for r in result.results if r.status == "passed")
    assert validate(FRAME, SUITE, samples=0)["between(amount)"].samples == []
    many = validate(FRAME, SUITE, samples=10_000)["between(amount)"]
    assert len(many.samples) == many.failed_rows


def test_one_scan_when_nothing_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """One streaming scan for everything; checks that need all values of a column get their own select."""
    FRAME.write_parquet(tmp_path / "t.parquet")
    collects: list[str] = []
    original = pl.LazyFrame.collect

    def counting(self: pl.LazyFrame, *args: Any, **kwargs: Any) -> pl.DataFrame:
        collects.append(self.explain())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pl.LazyFrame, "collect", counting)
    passing = {
        "keel_suite": 1,
        "checks": [
            c
            for c in SUITE["checks"]
            if next(iter(c)) in ("unique", "mean_between", "row_count_between")
            and "name" not in next(iter(c.values()))
        ],
    }
    streamable = {"keel_suite": 1, "checks": [c for c in passing["checks"] if "unique" not in c]}
    result = validate(str(tmp_path / "t.parquet"), streamable)
    assert result.passed and len(result.results) == 2
    scans = [plan for plan in collects if "Parquet SCAN" in plan]
    assert len(scans) == 1, collects  # the other collect is the type check on an empty frame
    assert len(collects) == 2, collects
    collects.clear()
    assert validate(str(tmp_path / "t.parquet"), passing).passed
    scans = [plan for plan in collects if "Parquet SCAN" in plan]
    assert len(scans) == 2, collects
    assert "n_unique" in scans[1] and "PROJECT 1/4 COLUMNS" in scans[1]  # only the id column is read


def test_missing_columns_and_wrong_types_are_errors_never_passes() -> None:
    suite = {
        "keel_suite": 1,
        "checks": [
            {"not_null": {"column": "nope"}},
            {"mean_between": {"column": "status", "min": 0}},
            {"matches_regex": {"column": "amount", "pattern": "x"}},
            {"matches_regex": {"column": "code", "pattern": "(unclosed"}},
            {"compare": {"column": "id", "other": "missing"}},
            {"expression": {"expr": "ghost > 1"}},
            {"not_null": {"column": "id"}},
        ],
    }
    result = validate(FRAME, suite)
    assert result.status == "error" and not result.passed and result.exit_code == 2
    messages = [r.message for r in result.results]
    assert "column 'nope' is not in" in messages[0] and "id, amount, status, code" in messages[0]
    assert "has type String, but mean_between needs a numeric" in messages[1]
    assert "has type Float64, but matches_regex needs a string" in messages[2]
    assert "cannot evaluate" in messages[3]
    assert "column 'missing' is not in" in messages[4]
    assert "['ghost']" in messages[5]
    assert result.results[6].status == "passed"


def test_missing_id_columns_and_bad_sample_counts_are_bad_input() -> None:
    from keel.data.errors import ColumnMismatchError
    from keel.errors import InvalidInputError

    with pytest.raises(ColumnMismatchError, match="id column 'order_id' .* is not in"):
        validate(FRAME, {**SUITE, "id_columns": ["order_id"]})
    with pytest.raises(InvalidInputError, match="samples must be a non-negative integer"):
        validate(FRAME, SUITE, samples=-1)


def test_malformed_csv_stops_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("id,amount\n1,2.0\n2\n3,4.0\n")
    with pytest.raises(MalformedFileError, match=r"bad\.csv:3: line has 1 fields but the header has 2"):
        validate(path, SUITE)
    rows = ["id,amount"] + [f"{i},{i}.5" for i in range(12_000)] + ["12000,twelve"]
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(MalformedFileError) as info:
        validate(path, {"keel_suite": 1, "checks": [{"mean_between": {"column": "amount", "min": 0}}]})
    assert info.value.line == 12_002 and info.value.column == "amount"


def test_empty_table_fails_row_count_checks_and_passes_row_checks(tmp_path: Path) -> None:
    FRAME.head(0).write_parquet(tmp_path / "empty.parquet")
    suite = {
        "keel_suite": 1,
        "checks": [
            {"not_empty": {}},
            {"not_null": {"column": "id"}},
            {"mean_between": {"column": "amount", "min": 0}},
        ],
    }
    result = validate(str(tmp_path / "empty.parquet"), suite)
    assert [r.status for r in result.results] == ["failed", "passed", "failed"]
    assert result.row_count == 0


def test_referential_and_row_count_against_files(tmp_path: Path) -> None:
    pl.DataFrame({"name": ["new", "paid", "sent"]}).write_parquet(tmp_path / "statuses.parquet")
    FRAME.head(10).write_csv(tmp_path / "small.csv")
    suite = {
        "keel_suite": 1,
        "id_columns": ["id"],
        "checks": [
            {
                "values_in_table": {
                    "column": "status",
                    "table": str(tmp_path / "statuses.parquet"),
                    "table_column": "name",
                }
            },
            {"row_count_equals": {"table": str(tmp_path / "small.csv")}},
            {"row_count_equals": {"table": "nowhere.parquet", "name": "missing table"}},
        ],
    }
    result = validate(FRAME, suite)
    lost = FRAME.filter(pl.col("status") == "lost").height
    referential = result.results[0]
    assert (referential.status, referential.failed_rows) == ("failed", lost)
    assert {row["status"] for row in referential.samples} == {"lost"}
    assert result.results[1].status == "failed" and result.results[1].observed == N
    assert result.results[2].status == "error" and "nowhere.parquet" in result.results[2].message


def test_drift_against_a_reference_profile(tmp_path: Path) -> None:
    from keel.data.profiles import profile

    reference = profile(FRAME)
    shifted = FRAME.with_columns(pl.col("amount") + 40)
    suite = {"keel_suite": 1, "checks": [{"drift": {"column": "amount"}}, {"drift": {"column": "status"}}]}
    same = validate(FRAME, suite, reference=reference)
    assert [r.status for r in same.results] == ["passed", "passed"]
    moved = validate(shifted, suite, reference=reference)
    assert [r.status for r in moved.results] == ["failed", "passed"]
    assert moved.results[0].observed["statistic"] > moved.results[0].observed["threshold"]
    reference.save(tmp_path / "ref.kprof")
    assert validate(shifted, suite, reference=str(tmp_path / "ref.kprof")).results[0].status == "failed"
    missing = validate(FRAME, suite)
    assert missing.status == "error" and "needs a reference profile" in missing.results[0].message


def test_history_checks_skip_without_history_and_flag_jumps() -> None:
    suite = {
        "keel_suite": 1,
        "checks": [
            {"row_count_within_sigma": {"sigma": 3, "window": 3}},
            {"changed_less_than": {"fraction": 0.2, "metric": "mean.amount"}},
        ],
    }
    first = validate(FRAME, suite)
    assert [r.status for r in first.results] == ["skipped", "skipped"] and first.passed
    mean = first.metrics["mean.amount"]
    history = [
        {"row_count": 10.0, "mean.amount": mean},
        {"row_count": 2000.0},
        {"row_count": 2010.0},
        {"row_count": 1990.0, "mean.amount": mean * 2},
    ]
    result = validate(FRAME, suite, history=history)
    assert result.results[0].status == "passed"  # the window drops the first 10-row validation
    assert result.results[1].status == "failed"  # mean halved since the last one
    jump = validate(FRAME.head(100), suite, history=history)
    assert jump.results[0].status == "failed"


def test_histograms_hold_counts_only() -> None:
    result = validate(FRAME, {"keel_suite": 1, "checks": [{"not_empty": {}}]}, histograms=True)
    amount = result.histograms["amount"]
    assert sum(amount["counts"]) == FRAME["amount"].count()
    assert len(amount["edges"]) == len(amount["counts"]) + 1
    assert "status" not in result.histograms
