"""Long filters on PostgreSQL: planned in time that grows linearly, and cancelled by the database
itself once a search outlives ``search_timeout`` (so a runaway query never outlives its client)."""

from __future__ import annotations

import time

import pytest

from keel import limits
from keel.errors import InvalidInputError
from keel.store.sql import SqlStore


def _runs(store: SqlStore, count: int) -> list[str]:
    experiment = store.create_experiment("long-filters").experiment_id
    ids = []
    for i in range(count):
        run = store.create_run(experiment, f"run-{i}")
        store.log_params(run.run_id, {f"p{k}": str(k + i % 2) for k in range(20)})
        store.set_tags(run.run_id, {f"t{k}": "x" for k in range(20)})
        ids.append(run.run_id)
    return ids


def _long_filter(terms: int) -> str:
    """``terms`` AND-ed conditions that hold for the even runs only."""
    parts = [f"params.p{i % 20} = '{i % 20}'" if i % 2 else f"tags.t{i % 20} != 'y'" for i in range(terms)]
    return " AND ".join(parts)


@pytest.mark.postgres
def test_a_filter_at_the_limit_is_answered_quickly(postgres_url: str) -> None:
    # 200 AND-ed conditions were 200 semi-joins, and planning them took PostgreSQL minutes
    store = SqlStore(postgres_url, search_timeout=20)
    try:
        ids = _runs(store, 10)
        started = time.monotonic()
        found = store.search_runs(filter_string=_long_filter(limits.MAX_FILTER_TERMS), order_by=["params.p1"])
        assert time.monotonic() - started < 20
        assert sorted(run.run_id for run in found) == sorted(ids[0::2])
    finally:
        store.close()


@pytest.mark.postgres
def test_a_search_over_the_timeout_is_cancelled_with_a_clear_message(postgres_url: str) -> None:
    store = SqlStore(postgres_url, search_timeout=0.001)
    try:
        run_id = _runs(store, 100)[0]
        with pytest.raises(InvalidInputError, match=r"longer than 0\.001 s .*narrow the filter"):
            store.search_runs(filter_string=_long_filter(limits.MAX_FILTER_TERMS))
        # the cancelled transaction was rolled back: the store's connections still work
        assert store.get_run(run_id).params["p0"] == "0"
    finally:
        store.close()


def test_the_search_timeout_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KEEL_SEARCH_TIMEOUT", raising=False)
    assert limits.search_timeout() == limits.SEARCH_TIMEOUT_SECONDS
    monkeypatch.setenv("KEEL_SEARCH_TIMEOUT", "2.5")
    assert limits.search_timeout() == 2.5
    assert limits.search_timeout(7) == 7.0
    for wrong in ("soon", "0", "-1", "nan"):
        monkeypatch.setenv("KEEL_SEARCH_TIMEOUT", wrong)
        with pytest.raises(InvalidInputError, match="KEEL_SEARCH_TIMEOUT must be a positive number"):
            limits.search_timeout()
