"""Validating partitioned Parquet as Ray tasks on a real local Ray equals the single-machine run."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from keel.data.engine import validate
from keel.data.errors import DataSourceError

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module", autouse=True)
def local_ray():  # type: ignore[no-untyped-def]
    ray = pytest.importorskip("ray", reason="validating on Ray needs keel-mlops[ray]")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    if not ray.is_initialized():
        ray.init(address="local", include_dashboard=False, num_cpus=2, _node_ip_address="127.0.0.1",
                 log_to_driver=False, configure_logging=False)  # fmt: skip
    yield
    ray.shutdown()


SUITE = {
    "keel_suite": 1,
    "id_columns": ["id"],
    "samples": 4,
    "checks": [
        {"not_null": {"column": "amount"}},
        {"between": {"column": "amount", "min": 0, "max": 150}},
        {"in_set": {"column": "status", "values": ["new", "paid"]}},
        {"null_fraction_at_most": {"column": "amount", "max": 0.05}},
        {"row_count_between": {"min": 1}},
        {"min_between": {"column": "amount", "min": -1000}},
        {"max_between": {"column": "id", "max": 10_000_000}},
        {"sum_between": {"column": "id", "min": 0}},
        {"mean_between": {"column": "amount", "min": 95, "max": 105}},
        {"std_between": {"column": "amount", "min": 1, "max": 100}},
        {"fresher_than": {"column": "ts", "max_age": "30d", "now": "2024-02-01T00:00:00"}},
        {"unique": {"column": "id"}},
        {"median_between": {"column": "amount", "min": 90, "max": 110}},
        {"increasing": {"column": "id"}},
        {"in_set": {"column": "day", "values": [0, 1, 2], "name": "hive column"}},
    ],
}


def mergeable_suite() -> dict[str, object]:
    return {"keel_suite": 1, "checks": SUITE["checks"][:11]}


def _summary(result):  # type: ignore[no-untyped-def]
    return [
        (r.name, r.status, r.failed_rows, r.evaluated_rows,
         round(r.observed, 9) if isinstance(r.observed, float) else r.observed)
        for r in result.results
    ]  # fmt: skip


def test_partitioned_parquet_on_ray_equals_single_machine(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    folder = tmp_path / "orders"
    start = 0
    for day in range(4):
        n = 3_000 + 500 * day
        frame = pl.DataFrame(
            {
                "id": np.arange(start, start + n) if day != 2 else np.arange(start, start + n)[::-1].copy(),
                "amount": rng.normal(100, 20, n),
                "status": rng.choice(["new", "paid", "lost"], n, p=[0.5, 0.49, 0.01]),
                "ts": pl.datetime_range(
                    pl.datetime(2024, 1, 1), pl.datetime(2024, 1, 20), "1h", eager=True
                ).sample(n, with_replacement=True, seed=day),
            }
        ).with_columns(pl.when(pl.col("id") % 97 == 0).then(None).otherwise(pl.col("amount")).alias("amount"))
        (folder / f"day={day}").mkdir(parents=True)
        frame.write_parquet(folder / f"day={day}" / "part.parquet")
        start += n
    single = validate(str(folder), SUITE)
    distributed = validate(str(folder), SUITE, ray=True)
    assert distributed.engine == "ray+polars-streaming"
    assert _summary(distributed) == _summary(single)
    assert distributed.metrics == pytest.approx(single.metrics)
    statuses = {r.name: r.status for r in distributed.results}
    assert statuses["between(amount)"] == "failed" and statuses["increasing(id)"] == "failed"
    assert statuses["hive column"] == "failed"  # day=3 exists only as a folder name: checked on the driver
    assert [r.samples for r in distributed.results] == [r.samples for r in single.results]

    with pytest.raises(DataSourceError, match="ray=True scans the files"):
        validate(pl.DataFrame({"id": [1]}), mergeable_suite(), ray=True)

    # a suite of mergeable checks only never scans on the driver
    mergeable = mergeable_suite()
    only_ray = validate(str(folder / "*" / "*.parquet"), mergeable, ray=True)
    assert only_ray.engine == "ray"
    assert _summary(only_ray) == _summary(validate(str(folder / "*" / "*.parquet"), mergeable))
