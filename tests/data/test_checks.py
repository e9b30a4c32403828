"""Every check type in the catalog passes on good data and fails on bad data, through the real engine."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl
import pytest

from keel.data.checks import CATALOG, Check, catalog_rows, parse_duration
from keel.data.engine import validate
from keel.data.errors import SuiteError

GOOD = pl.DataFrame(
    {
        "id": [1, 2, 3, 4],
        "amount": [10.0, 20.0, 30.0, 40.0],
        "low": [1, 2, 3, 4],
        "high": [2, 3, 4, 5],
        "status": ["new", "paid", "paid", "sent"],
        "code": ["AB-1", "CD-2", "EF-3", "GH-4"],
        "email": ["a@x.com", "b@y.org", "c@z.net", "d@w.io"],
        "url": ["https://a.com/x", "http://b.org", "ftp://c.net/f", "https://d.io/?q=1"],
        "uid": [
            "123e4567-e89b-12d3-a456-426614174000",
            "123e4567e89b12d3a456426614174001",
            "00000000-0000-0000-0000-000000000000",
            "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF",
        ],
        "day": ["2024-01-01", "2024-01-02", "2024-02-29", "2024-12-31"],
        "ts": [datetime(2024, 1, 1, h) for h in range(4)],
        "gone": pl.Series([None, None, None, None], dtype=pl.Int64),
    }
)


def _bad(**columns: Any) -> pl.DataFrame:
    return GOOD.with_columns(**{k: pl.Series(k, v, dtype=GOOD.schema[k]) for k, v in columns.items()})


NOW = "2024-01-01T05:00:00"
# (check, bad data or None when the bad case needs a different check)
CASES: list[tuple[dict[str, Any], pl.DataFrame | dict[str, Any]]] = [
    ({"columns_match": {"columns": list(GOOD.columns)}}, {"columns_match": {"columns": ["id"]}}),
    ({"column_exists": {"column": "id"}}, {"column_exists": {"column": "nope"}}),
    (
        {"column_type": {"column": "id", "type": "integer"}},
        {"column_type": {"column": "id", "type": "string"}},
    ),
    (
        {"column_types": {"types": {"amount": "float64", "status": "string"}}},
        {"column_types": {"types": {"amount": "int64"}}},
    ),
    ({"column_count_between": {"min": 12, "max": 12}}, {"column_count_between": {"max": 3}}),
    ({"not_null": {"column": "amount"}}, _bad(amount=[1.0, None, 3.0, 4.0])),
    ({"is_null": {"column": "gone"}}, _bad(gone=[None, 1, None, None])),
    ({"null_fraction_at_most": {"column": "amount", "max": 0.25}}, _bad(amount=[None, None, 3.0, 4.0])),
    ({"unique": {"column": "id"}}, _bad(id=[1, 2, 2, 4])),
    (
        {"unique_combination": {"columns": ["id", "status"]}},
        _bad(id=[1, 2, 2, 4], status=["a", "b", "b", "c"]),
    ),
    ({"distinct_count_between": {"column": "status", "min": 3, "max": 3}}, _bad(status=["a", "a", "a", "a"])),
    ({"distinct_ratio_between": {"column": "id", "min": 1.0}}, _bad(id=[1, 1, 2, 2])),
    ({"between": {"column": "amount", "min": 0, "max": 100}}, _bad(amount=[10.0, 200.0, 30.0, 40.0])),
    (
        {"in_set": {"column": "status", "values": ["new", "paid", "sent"]}},
        _bad(status=["new", "lost", "x", "y"]),
    ),
    ({"not_in_set": {"column": "status", "values": ["lost"]}}, _bad(status=["new", "lost", "x", "y"])),
    (
        {"matches_regex": {"column": "code", "pattern": r"^[A-Z]{2}-\d$"}},
        _bad(code=["AB-1", "x", "EF-3", "GH-4"]),
    ),
    (
        {"not_matches_regex": {"column": "code", "pattern": "DROP"}},
        _bad(code=["AB-1", "DROP", "EF-3", "GH-4"]),
    ),
    (
        {"length_between": {"column": "code", "min": 4, "max": 4}},
        _bad(code=["AB-1", "CD-22", "EF-3", "GH-4"]),
    ),
    (
        {"parses_datetime": {"column": "day", "format": "%Y-%m-%d"}},
        _bad(day=["2024-01-01", "2023-02-29", "2024-02-30", "2024-12-31"]),
    ),
    ({"email": {"column": "email"}}, _bad(email=["a@x.com", "not-an-email", "c@z", "d@w.io"])),
    ({"url": {"column": "url"}}, _bad(url=["https://a.com", "a.com", "http:/x", "https://d.io"])),
    ({"uuid": {"column": "uid"}}, _bad(uid=["123e4567-e89b-12d3-a456-42661417400", "x", "y", "z"])),
    ({"increasing": {"column": "id", "strict": True}}, _bad(id=[1, 2, 2, 4])),
    ({"decreasing": {"column": "id"}}, GOOD),
    ({"min_between": {"column": "amount", "min": 10}}, _bad(amount=[9.0, 20.0, 30.0, 40.0])),
    ({"max_between": {"column": "amount", "max": 40}}, _bad(amount=[10.0, 20.0, 30.0, 41.0])),
    ({"mean_between": {"column": "amount", "min": 24, "max": 26}}, _bad(amount=[10.0, 20.0, 30.0, 100.0])),
    ({"median_between": {"column": "amount", "min": 25, "max": 25}}, _bad(amount=[10.0, 20.0, 40.0, 100.0])),
    (
        {"quantile_between": {"column": "amount", "q": 0.75, "min": 32.5, "max": 32.5}},
        _bad(amount=[10.0, 20.0, 30.0, 100.0]),
    ),
    ({"std_between": {"column": "amount", "max": 13}}, _bad(amount=[10.0, 20.0, 30.0, 100.0])),
    ({"sum_between": {"column": "amount", "min": 100, "max": 100}}, _bad(amount=[10.0, 20.0, 30.0, 41.0])),
    ({"row_count_between": {"min": 4, "max": 4}}, GOOD.head(3)),
    ({"not_empty": {}}, GOOD.head(0)),
    ({"row_count_equals": {"table": "same"}}, GOOD.head(2)),
    (
        {"values_in_table": {"column": "status", "table": "statuses", "table_column": "name"}},
        _bad(status=["new", "lost", "paid", "sent"]),
    ),
    (
        {"fresher_than": {"column": "ts", "max_age": "3h", "now": NOW}},
        {"fresher_than": {"column": "ts", "max_age": "90m", "now": NOW}},
    ),
    ({"compare": {"column": "low", "other": "high", "op": "<"}}, _bad(low=[1, 5, 3, 4])),
    ({"expression": {"expr": "low + 1 = high AND amount > 0"}}, _bad(high=[2, 3, 4, 9])),
    ({"sql": {"query": "SELECT * FROM data WHERE amount > 50"}}, _bad(amount=[10.0, 20.0, 30.0, 99.0])),
    ({"row_count_within_sigma": {"sigma": 3, "window": 5}}, GOOD.head(1)),
    ({"changed_less_than": {"fraction": 0.2}}, GOOD.head(1)),
]
TABLES = {"same": GOOD, "statuses": pl.DataFrame({"name": ["new", "paid", "sent", "other"]})}
HISTORY = [{"row_count": 4.0}, {"row_count": 5.0}, {"row_count": 3.0}, {"row_count": 4.0}]


def _run(data: pl.DataFrame, check: dict[str, Any]) -> Any:
    suite = {"keel_suite": 1, "checks": [check]}
    result = validate(data, suite, tables=TABLES, history=HISTORY)
    return result.results[0]


@pytest.mark.parametrize(("check", "bad"), CASES, ids=[next(iter(c)) for c, _ in CASES])
def test_check_passes_on_good_and_fails_on_bad(check: dict[str, Any], bad: Any) -> None:
    decreasing = check == {"decreasing": {"column": "id"}}
    good = _run(GOOD.reverse() if decreasing else GOOD, check)
    assert good.status == "passed", good.describe()
    failing = _run(GOOD, bad) if isinstance(bad, dict) else _run(bad, check)
    assert failing.status == "failed", failing.describe()


def test_the_catalog_has_every_category_and_is_covered() -> None:
    covered = {next(iter(c)) for c, _ in CASES} | {
        "drift"
    }  # drift is tested with real reference profiles in test_engine
    assert covered == set(CATALOG)
    assert len(CATALOG) >= 35
    categories = {spec.category for spec in CATALOG.values()}
    assert {
        "schema",
        "completeness",
        "uniqueness",
        "validity",
        "statistics",
        "row count",
        "referential",
        "freshness",
        "cross-column",
        "custom",
        "distribution",
        "history",
    } <= categories
    assert len(catalog_rows()) == len(CATALOG)


def test_row_checks_count_failures_and_skip_nulls() -> None:
    data = pl.DataFrame({"x": [1, 2, None, 50, 60]})
    result = _run(data, {"between": {"column": "x", "min": 0, "max": 10}})
    assert (result.failed_rows, result.evaluated_rows) == (2, 4)
    assert result.fraction_passed == 0.5


def test_mostly_sets_the_fraction_that_must_pass() -> None:
    data = pl.DataFrame({"x": list(range(100))})
    check = {"between": {"column": "x", "max": 94, "mostly": 0.95}}
    assert _run(data, check).status == "passed"
    check = {"between": {"column": "x", "max": 93, "mostly": 0.95}}
    assert _run(data, check).status == "failed"


def test_warn_severity_reports_without_failing() -> None:
    data = pl.DataFrame({"x": [1, 2, 99]})
    result = validate(
        data,
        {
            "keel_suite": 1,
            "checks": [{"between": {"column": "x", "max": 10, "severity": "warn", "tags": ["range"]}}],
        },
    )
    assert result.passed and result.exit_code == 0
    assert result.results[0].status == "failed"
    assert result.counts()["warned"] == 1
    assert result.results[0].tags == ("range",)


def test_nan_and_infinity_are_values_not_nulls() -> None:
    data = pl.DataFrame({"x": [1.0, float("nan"), float("inf")]})
    assert _run(data, {"not_null": {"column": "x"}}).status == "passed"
    between = _run(data, {"between": {"column": "x", "max": 10}})
    assert between.failed_rows == 2  # NaN and inf are outside [.., 10]


def test_dates_compare_with_iso_bounds() -> None:
    data = pl.DataFrame({"ts": [datetime(2024, 1, 1), datetime(2025, 6, 1)]})
    result = _run(data, {"between": {"column": "ts", "min": "2024-01-01", "max": "2024-12-31"}})
    assert result.failed_rows == 1


@pytest.mark.parametrize(
    ("check", "message"),
    [
        ({"type": "not_null"}, "needs 'column'"),
        ({"type": "between", "column": "x"}, "give 'min', 'max' or both"),
        ({"type": "between", "column": "x", "min": "abc"}, "neither a number nor an ISO"),
        ({"type": "in_set", "column": "x"}, "missing required parameter 'values'"),
        ({"type": "in_set", "column": "x", "values": 3}, "'values' must be a list"),
        ({"type": "mean_between", "column": "x", "min": 1, "mostly": 0.5}, "'mostly' applies only to row"),
        ({"type": "not_null", "column": "x", "severity": "fatal"}, "severity must be 'error' or 'warn'"),
        ({"type": "not_null", "column": "x", "mostly": 1.5}, "between 0 and 1"),
        ({"type": "not_null", "column": "x", "colour": "red"}, "unknown parameter 'colour'"),
        ({"type": "quantile_between", "column": "x", "q": 2, "max": 1}, "'q' must be between 0 and 1"),
        ({"type": "fresher_than", "column": "x", "max_age": "soon"}, "not a duration"),
        ({"type": "compare", "column": "x", "other": "y", "op": "=>"}, "'op' must be one of"),
        ({"type": "nul_null", "column": "x"}, "unknown check type 'nul_null'"),
        ({"type": "row_count_between", "column": "x", "min": 1}, "takes no 'column'"),
    ],
)
def test_bad_check_declarations_say_what_to_fix(check: Any, message: str) -> None:
    arguments = dict(check)
    check_type = arguments.pop("type")
    with pytest.raises(SuiteError, match=message):
        if check_type == "between" and arguments.get("min") == "abc":
            validate(pl.DataFrame({"x": [datetime(2024, 1, 1)]}), [Check(check_type, **arguments)])
        else:
            Check(check_type, **arguments)


def test_durations() -> None:
    assert parse_duration("90s").total_seconds() == 90
    assert parse_duration("2w").total_seconds() == 14 * 86400
    assert parse_duration(3600).total_seconds() == 3600
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("1 fortnight")


def test_the_docs_catalog_lists_every_check_type() -> None:
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[2] / "docs" / "data-validation.md").read_text()
    for name, category, _, _ in catalog_rows():
        assert f"| `{name}` | {category} |" in docs, name
    assert f"{len(CATALOG)} check types" in docs
