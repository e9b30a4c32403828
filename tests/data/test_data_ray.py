"""Profiling partitioned Parquet as Ray tasks on a real local Ray: the merge equals the single-machine run."""

from __future__ import annotations

import os

import numpy as np
import polars as pl
import pytest

from keel.data.profiles import profile

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray = pytest.importorskip("ray", reason="profiling on Ray needs keel-mlops[ray]")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    if not ray.is_initialized():
        ray.init(
            address="local",
            include_dashboard=False,
            num_cpus=2,
            _node_ip_address="127.0.0.1",
            log_to_driver=False,
            configure_logging=False,
        )
    yield
    ray.shutdown()


def test_partitioned_parquet_profiled_on_ray_equals_single_machine(tmp_path):
    from keel.data.ray import profile_on_ray

    rng = np.random.default_rng(11)
    folder = tmp_path / "events"
    frames = []
    for day in range(4):
        n = 5_000 + 1_000 * day
        part = pl.DataFrame(
            {
                "value": rng.normal(day, 1.0, n),
                "count": rng.integers(0, 50, n),
                "kind": rng.choice(["click", "view", "buy"], n),
            }
        ).with_columns(pl.when(pl.col("count") == 0).then(None).otherwise(pl.col("value")).alias("value"))
        target = folder / f"day={day}"
        target.mkdir(parents=True)
        part.write_parquet(target / "part-0.parquet")
        frames.append(part)
    on_ray = profile_on_ray(folder)
    single = profile(pl.concat(frames))
    assert on_ray.metadata["partitions"] == 4 and list(on_ray.columns) == ["value", "count", "kind"]
    assert on_ray.row_count == single.row_count == sum(f.height for f in frames)
    for name in ("value", "count", "kind"):
        a, b = on_ray[name], single[name]
        assert (a.count, a.null_count, a.moments.n) == (b.count, b.null_count, b.moments.n)
        assert a.mean == pytest.approx(b.mean, rel=1e-12, nan_ok=True)
        assert a.variance == pytest.approx(b.variance, rel=1e-10, nan_ok=True)
        assert (a.min, a.max) == (b.min, b.max)
        assert a.distinct_count == pytest.approx(b.distinct_count, rel=0.05)
    assert on_ray["kind"].top_values() == single["kind"].top_values()
    assert on_ray["count"].top_values() == single["count"].top_values()
    assert abs(on_ray["value"].quantile(0.5) - single["value"].quantile(0.5)) < 0.1
