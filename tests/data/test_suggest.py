"""Suite suggestion: the suggested suite passes on the profiled data and catches broken data."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
import yaml

from keel.data import Suite, validate
from keel.data.profiles import profile
from keel.data.suggest import suggest_suite


@pytest.fixture(scope="module")
def orders() -> pl.DataFrame:
    rng = np.random.default_rng(0)
    n = 4_000
    return pl.DataFrame(
        {
            "id": np.arange(n),
            "amount": rng.gamma(2.0, 10.0, n),
            "status": rng.choice(["new", "paid", "void"], n),
            "email": [f"user{i}@example.org" for i in range(n)],
            "at": [dt.datetime(2024, 1, 1) + dt.timedelta(minutes=i) for i in range(n)],
            "flag": rng.random(n) < 0.5,
            "rating": rng.integers(1, 6, n),
        }
    ).with_columns(pl.when(pl.col("amount") < 5).then(None).otherwise(pl.col("amount")).alias("amount"))


def _checks(suggested: dict) -> dict[tuple[str, str | None], dict]:
    out = {}
    for item in suggested["checks"]:
        ((kind, params),) = item.items()
        out[(kind, params.get("column"))] = params
    return out


def test_suggestion_covers_types_nulls_ranges_sets_and_uniqueness(orders):
    suggested = suggest_suite(profile(orders, name="orders.parquet"))
    assert suggested["keel_suite"] == 1 and suggested["name"] == "orders"
    checks = _checks(suggested)
    assert checks[("columns_match", None)]["columns"] == orders.columns
    assert checks[("column_type", "id")]["type"] == "int64"
    assert checks[("column_type", "at")]["type"] == "datetime"
    assert ("not_null", "id") in checks and ("unique", "id") in checks and ("between", "id") not in checks
    null_fraction = orders["amount"].null_count() / orders.height
    assert null_fraction < checks[("null_fraction_at_most", "amount")]["max"] <= null_fraction + 0.06
    low, high = orders["amount"].min(), orders["amount"].max()
    amount = checks[("between", "amount")]
    # widened by the larger of 10 % of the range and three standard deviations (then rounded up)
    widening = max(0.1 * (high - low), 3 * orders["amount"].std(ddof=0))
    assert amount["min"] == 0.0 and high + widening <= amount["max"] <= (high + widening) * 1.001
    assert checks[("in_set", "status")]["values"] == ["new", "paid", "void"]
    assert checks[("in_set", "rating")]["values"] == [1, 2, 3, 4, 5]
    assert ("email", "email") in checks and ("unique", "email") in checks
    assert ("in_set", "flag") not in checks
    assert all(params["tags"] == ["suggested"] for params in checks.values())


def test_suggested_suite_passes_on_its_data_and_fails_on_broken_data(orders):
    suggested = suggest_suite(profile(orders))
    suite = Suite.from_yaml(yaml.safe_dump(suggested, sort_keys=False))
    assert validate(orders, suite).passed
    broken = orders.with_columns(
        pl.when(pl.col("id") == 7).then(pl.lit("lost")).otherwise(pl.col("status")).alias("status"),
        pl.when(pl.col("id") == 9).then(10_000.0).otherwise(pl.col("amount")).alias("amount"),
    )
    result = validate(broken, suite)
    assert not result.passed
    failed = {r.name for r in result.results if r.status == "failed"}
    assert {"in_set(status)", "between(amount)"} <= failed


def test_empty_and_all_null_columns():
    frame = pl.DataFrame({"x": pl.Series([None, None], dtype=pl.Float64)})
    checks = _checks(suggest_suite(profile(frame)))
    assert checks[("null_fraction_at_most", "x")]["max"] == 1.0
    assert ("between", "x") not in checks
    empty = suggest_suite(profile(frame.head(0)))
    assert empty["checks"][0] == {"row_count_between": {"max": 0, "tags": ["suggested"]}}


def _population(n: int, seed: int) -> pl.DataFrame:
    """A synthetic source: customers with ids, emails, signup dates (as text, as a CSV holds them),
    measurements, categories and a column with nulls."""
    rng = np.random.default_rng(seed)
    names = ["al", "bea", "chris", "dominique", "ed", "francesca", "gus", "hildegard"]
    domains = ["example.com", "mail.example.org", "ex.io"]
    first = rng.choice(names, n)
    days = rng.integers(0, 3650, n)
    return pl.DataFrame(
        {
            "id": np.arange(n) * 7 + 1000,
            "email": [f"{f}{i}@{rng.choice(domains)}" for i, f in enumerate(first)],
            "signup": [(dt.date(2015, 1, 1) + dt.timedelta(days=int(d))).isoformat() for d in days],
            "amount": rng.gamma(4.0, 10.0, n),
            "score": rng.normal(70, 12, n),
            "status": rng.choice(["new", "paid", "void"], n, p=[0.3, 0.6, 0.1]),
            "rating": rng.integers(1, 6, n),
            "note": pl.Series(rng.choice(["ok", "late", None], n, p=[0.5, 0.3, 0.2]), dtype=pl.String),
        }
    )


def test_a_suite_suggested_from_one_sample_passes_on_fresh_samples_of_the_same_source():
    """No overfitting: email lengths, date uniqueness and value ranges seen in 120 rows must not become
    rules that the next 120 rows of the same source break."""
    source = _population(100_000, 0)
    sample = source.sample(120, seed=1).sort("id")
    suggested = suggest_suite(profile(sample))
    suite, checks = Suite.from_dict(suggested), _checks(suggested)
    assert ("unique", "id") in checks and ("unique", "email") in checks and ("between", "id") not in checks
    assert ("unique", "signup") not in checks  # dates are never keys, even when 120 of them differ
    for seed in range(2, 12):
        fresh = source.sample(120, seed=seed).sort("id")
        result = validate(fresh, suite)
        failed = [f"{r.name}: {r.message}" for r in result.results if r.status == "failed"]
        assert result.passed, (seed, failed)
