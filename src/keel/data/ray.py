"""Profile partitioned data as Ray tasks, one per file, and merge the partial profiles.

Counts, nulls, NaN/infinity counts, min/max and moments merge exactly (moments up to float rounding, by
Chan's parallel algorithm); quantile, frequent-item and distinct-count sketches merge within their usual
error, so the result equals a single-machine :func:`keel.data.profiles.profile` of the same data.

Ray is the optional extra ``keel-mlops[ray]``; it is connected only when asked (``RAY_ADDRESS`` or a local
instance, as for pipelines).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from keel.data.profiles import Profile

__all__ = ["profile_on_ray"]


def profile_on_ray(
    data: Any,
    *,
    columns: Sequence[str] | None = None,
    name: str | None = None,
    num_cpus: float = 1,
) -> Profile:
    """Profile each partition of ``data`` (a folder, glob or list of files) in a Ray task and merge them."""
    from keel.cluster import connect_ray
    from keel.data.sources import open_source

    source = open_source(data, name=name)
    partitions = source.partitions()
    # hive partition columns (day=1/...) exist for the folder, not inside each file: default to the file's
    selected = list(columns) if columns is not None else list(partitions[0].schema())
    ray = connect_ray()
    task = ray.remote(num_cpus=num_cpus, max_retries=0)(_profile_partition)
    parts = ray.get([task.remote(part, selected) for part in partitions])
    profiles = [
        Profile.from_bytes(part, source=f"Ray partial profile of {source.location()}") for part in parts
    ]
    merged = profiles[0].merge(*profiles[1:]) if len(profiles) > 1 else profiles[0]
    return Profile(
        list(merged),
        name=source.name,
        fingerprint=source.fingerprint(),
        metadata={
            "rows": merged.row_count,
            "source": source.location(),
            "kind": source.kind,
            "partitions": len(partitions),
        },
    )


def _profile_partition(part: Any, columns: list[str]) -> bytes:
    from keel.data.profiles import profile

    return profile(part, columns=columns).to_bytes()
