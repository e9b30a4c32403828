"""The records keel stores, as plain immutable values.

Times are integer milliseconds since the Unix epoch, as in MLflow, so the two interoperate.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from keel.run_status import RunStatus

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = [
    "SYSTEM_METRIC_PREFIX",
    "Artifact",
    "Comment",
    "Dataset",
    "DatasetUse",
    "Experiment",
    "LineageEdge",
    "Metric",
    "MetricHistory",
    "PipelineRun",
    "ModelVersion",
    "RegisteredModel",
    "Run",
    "RunPage",
    "RunStatus",
    "StepRun",
    "StepUse",
]

#: metric keys under this prefix are system metrics written by the sampler
SYSTEM_METRIC_PREFIX = "system/"


@dataclasses.dataclass(frozen=True, slots=True)
class Experiment:
    experiment_id: str
    name: str
    project: str
    lifecycle_stage: str
    created_at: int
    updated_at: int
    description: str | None = None
    tags: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, slots=True)
class Metric:
    key: str
    value: float
    step: int
    timestamp: int


@dataclasses.dataclass(frozen=True, slots=True)
class Run:
    run_id: str
    experiment_id: str
    name: str
    status: RunStatus
    lifecycle_stage: str
    user: str
    host: str
    pid: int | None
    start_time: int
    end_time: int | None
    heartbeat_at: int | None
    git_commit: str | None
    git_dirty: bool | None
    entry_point: str | None
    parent_run_id: str | None
    params: Mapping[str, str]
    tags: Mapping[str, str]
    #: latest value of each metric (largest step, then newest timestamp)
    metrics: Mapping[str, Metric]
    traceback: str | None = None
    cost_usd: float | None = None
    cost_detail: Mapping[str, Any] | None = None

    @property
    def duration_ms(self) -> int | None:
        return None if self.end_time is None else self.end_time - self.start_time

    @property
    def user_metrics(self) -> dict[str, float]:
        return {k: m.value for k, m in self.metrics.items() if not k.startswith(SYSTEM_METRIC_PREFIX)}

    @property
    def system_metrics(self) -> dict[str, float]:
        return {k: m.value for k, m in self.metrics.items() if k.startswith(SYSTEM_METRIC_PREFIX)}


class RunPage(list[Run]):
    """A page of runs; ``token`` fetches the next page (``None`` on the last one)."""

    token: str | None = None


class MetricHistory:
    """All points of one metric of one run, as numpy arrays (steps, timestamps in ms, values).

    Iterating yields :class:`Metric` records; ``len()`` is the number of points. Arrays are used
    because a history can hold millions of points.
    """

    __slots__ = ("key", "steps", "timestamps", "values")

    def __init__(self, key: str, steps: np.ndarray, timestamps: np.ndarray, values: np.ndarray):
        self.key = key
        self.steps = steps
        self.timestamps = timestamps
        self.values = values

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def __iter__(self) -> Iterator[Metric]:
        for step, ts, value in zip(
            self.steps.tolist(), self.timestamps.tolist(), self.values.tolist(), strict=True
        ):
            yield Metric(self.key, value, step, ts)

    def __repr__(self) -> str:
        return f"MetricHistory(key={self.key!r}, points={len(self)})"

    def to_pandas(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame({"step": self.steps, "timestamp": self.timestamps, "value": self.values})


@dataclasses.dataclass(frozen=True, slots=True)
class Artifact:
    run_id: str | None
    name: str
    sha256: str
    size: int
    media_type: str
    created_at: int


@dataclasses.dataclass(frozen=True, slots=True)
class LineageEdge:
    run_id: str
    sha256: str
    #: "input" when the run consumed the artifact, "output" when it produced it
    direction: str
    name: str
    created_at: int


@dataclasses.dataclass(frozen=True, slots=True)
class Dataset:
    dataset_id: int
    name: str
    fingerprint: str
    schema: Mapping[str, Any] | None
    row_count: int | None
    source: str | None
    created_at: int
    profile_sha256: str | None = None
    context: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class DatasetUse:
    """A run that took a version of a dataset as input (``dataset.context`` says how)."""

    dataset: Dataset
    run_id: str


@dataclasses.dataclass(frozen=True, slots=True)
class StepUse:
    """A pipeline step that produced (``direction="output"``) or read (``"input"``) an artifact."""

    pipeline_run_id: int
    run_id: str
    pipeline: str
    node: str
    step: str
    direction: str
    #: the output or argument name
    name: str
    status: str
    started_at: int | None


@dataclasses.dataclass(frozen=True, slots=True)
class RegisteredModel:
    name: str
    project: str
    description: str | None
    created_at: int
    updated_at: int
    tags: Mapping[str, str]
    aliases: Mapping[str, int]
    latest_version: int | None


@dataclasses.dataclass(frozen=True, slots=True)
class ModelVersion:
    name: str
    version: int
    run_id: str | None
    artifact_sha256: str
    artifact_name: str | None
    flavor: str
    signature: Mapping[str, Any] | None
    status: str
    description: str | None
    created_at: int
    updated_at: int
    tags: Mapping[str, str]
    aliases: tuple[str, ...]
    #: the project of the registered model (names are unique only within a project)
    project: str = "default"

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


@dataclasses.dataclass(frozen=True, slots=True)
class Comment:
    comment_id: int
    target_type: str
    target_id: str
    author: str
    body: str
    created_at: int


@dataclasses.dataclass(frozen=True, slots=True)
class StepRun:
    """One node of a pipeline run: what ran (or came from the cache), how long, what it read and wrote."""

    node: str
    step: str
    #: done | cached | failed | skipped | pending
    status: str
    cache_key: str | None = None
    cached: bool = False
    started_at: int | None = None
    ended_at: int | None = None
    wall_s: float | None = None
    cpu_s: float | None = None
    peak_rss_mb: float | None = None
    error: str | None = None
    #: argument name -> sha256 of the input artifact
    inputs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    #: output name -> {"sha256": ..., materializer metadata}
    outputs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    #: what the cache key was made of (for `keel pipeline explain`)
    components: Mapping[str, Any] | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class PipelineRun:
    pipeline_run_id: int
    run_id: str
    pipeline: str
    params: Mapping[str, Any]
    graph: Mapping[str, Any]
    status: str
    created_at: int
    resumed_from: int | None = None
    steps: tuple[StepRun, ...] = ()
