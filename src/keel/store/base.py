"""The ``Store`` protocol every metadata backend implements, and how keel picks one.

``SqlStore`` (SQLite, PostgreSQL) and ``RestStore`` (HTTP to ``keel server``, for ``http(s)://``
URLs) implement it, so clients never know which one they hold.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from keel.config import STORE_DIR_NAME, Settings, find_keel_dir, find_project_root

if TYPE_CHECKING:
    from keel.entities import (
        Artifact,
        Comment,
        Dataset,
        DatasetUse,
        Experiment,
        LineageEdge,
        MetricHistory,
        ModelVersion,
        PipelineRun,
        RegisteredModel,
        Run,
        RunPage,
        RunStatus,
        StepRun,
        StepUse,
    )
    from keel.store.metrics import Chunk

__all__ = ["Store", "check_store_url", "default_locations", "open_store"]


@runtime_checkable
class Store(Protocol):
    """Everything keel asks of a metadata backend. ``SqlStore`` is the reference implementation;
    a test checks that it matches this protocol method for method."""

    url: str

    def add_comment(
        self,
        target_type: str,
        target_id: str,
        body: str,
        *,
        author: str | None = None,
        project: str = "default",
    ) -> Comment: ...
    def close(self) -> None: ...
    def count_runs(self, experiment_id: str) -> int: ...
    def create_experiment(
        self,
        name: str,
        *,
        project: str = "default",
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Experiment: ...
    def create_model_version(
        self,
        name: str,
        *,
        artifact_sha256: str,
        flavor: str,
        run_id: str | None = None,
        artifact_name: str | None = None,
        signature: Mapping[str, Any] | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        project: str = "default",
    ) -> ModelVersion: ...
    def create_registered_model(
        self,
        name: str,
        *,
        project: str = "default",
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> RegisteredModel: ...
    def create_run(
        self,
        experiment_id: str,
        name: str,
        *,
        user: str | None = None,
        host: str | None = None,
        pid: int | None = None,
        start_time: int | None = None,
        git_commit: str | None = None,
        git_dirty: bool | None = None,
        entry_point: str | None = None,
        parent_run_id: str | None = None,
        heartbeat_interval: float | None = None,
        tags: Mapping[str, str] | None = None,
        run_id: str | None = None,
    ) -> Run: ...
    def delete_model_alias(self, name: str, alias: str, *, project: str = "default") -> None: ...
    def delete_run_permanently(self, run_id: str) -> None: ...
    def delete_tag(self, run_id: str, key: str) -> None: ...
    def get_experiment(self, experiment_id: str) -> Experiment: ...
    def get_experiment_by_name(self, name: str, *, project: str = "default") -> Experiment | None: ...
    def get_metric_history(
        self, run_id: str, key: str, *, max_points: int | None = None
    ) -> MetricHistory: ...
    def get_model_version(self, name: str, version: int, *, project: str = "default") -> ModelVersion: ...
    def get_model_version_by_alias(
        self, name: str, alias: str, *, project: str = "default"
    ) -> ModelVersion: ...
    def get_registered_model(self, name: str, *, project: str = "default") -> RegisteredModel: ...
    def get_run(self, run_id: str) -> Run: ...
    def heartbeat(self, run_id: str) -> None: ...
    def lineage(self, sha256: str) -> list[LineageEdge]: ...
    def list_artifacts(self, run_id: str, prefix: str = "") -> list[Artifact]: ...
    def list_comments(
        self, target_type: str, target_id: str, *, project: str = "default"
    ) -> list[Comment]: ...
    def list_experiments(
        self, *, project: str | None = None, include_deleted: bool = False
    ) -> list[Experiment]: ...
    def list_metric_keys(self, run_id: str) -> list[str]: ...
    def list_model_versions(self, name: str, *, project: str = "default") -> list[ModelVersion]: ...
    def list_registered_models(
        self, *, project: str | None = None, name_like: str | None = None
    ) -> list[RegisteredModel]: ...
    def list_run_inputs(self, run_id: str) -> list[Dataset]: ...
    def log_dataset(
        self,
        run_id: str,
        *,
        name: str,
        fingerprint: str,
        schema: Mapping[str, Any] | None,
        row_count: int | None,
        source: str | None,
        context: str = "training",
        profile_sha256: str | None = None,
    ) -> Dataset: ...
    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None: ...
    def mark_crashed_runs(self) -> list[str]: ...
    def record_artifact(
        self, run_id: str, name: str, sha256: str, size: int, media_type: str
    ) -> Artifact: ...
    def record_artifacts(
        self, run_id: str, artifacts: Sequence[tuple[str, str, int, str]]
    ) -> list[Artifact]: ...
    def record_input_artifact(self, run_id: str, sha256: str, name: str) -> None: ...
    def run_lineage(self, run_id: str) -> list[LineageEdge]: ...
    def search_runs(
        self,
        experiment_ids: Sequence[str] | None = None,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
        include_deleted: bool = False,
    ) -> RunPage: ...
    def set_experiment_lifecycle(self, experiment_id: str, lifecycle: str) -> None: ...
    def set_model_alias(self, name: str, alias: str, version: int, *, project: str = "default") -> None: ...
    def set_model_version_tags(
        self, name: str, version: int, tags: Mapping[str, str], *, project: str = "default"
    ) -> None: ...
    def set_run_lifecycle(self, run_id: str, lifecycle: str) -> None: ...
    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None: ...
    def update_run(
        self,
        run_id: str,
        *,
        status: RunStatus | str | None = None,
        end_time: int | None = None,
        traceback: str | None = None,
        name: str | None = None,
        cost_usd: float | None = None,
        cost_detail: Mapping[str, Any] | None = None,
    ) -> None: ...
    def write_metric_batch(self, batch_id: str, run_id: str, chunks: Sequence[Chunk]) -> bool: ...

    # -- changes after creation (MLflow's API offers them; RestStore refuses them) ------------
    def rename_experiment(self, experiment_id: str, new_name: str) -> None: ...
    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None: ...
    def delete_experiment_tag(self, experiment_id: str, key: str) -> None: ...
    def update_registered_model(
        self, name: str, *, description: str | None, project: str = "default"
    ) -> None: ...
    def rename_registered_model(self, name: str, new_name: str, *, project: str = "default") -> None: ...
    def delete_registered_model(self, name: str, *, project: str = "default") -> None: ...
    def set_registered_model_tag(
        self, name: str, key: str, value: str, *, project: str = "default"
    ) -> None: ...
    def delete_registered_model_tag(self, name: str, key: str, *, project: str = "default") -> None: ...
    def update_model_version(
        self, name: str, version: int, *, description: str | None, project: str = "default"
    ) -> None: ...
    def delete_model_version(self, name: str, version: int, *, project: str = "default") -> None: ...
    def delete_model_version_tag(
        self, name: str, version: int, key: str, *, project: str = "default"
    ) -> None: ...

    # pipelines
    def create_pipeline_run(
        self,
        run_id: str,
        pipeline: str,
        *,
        params: Mapping[str, Any],
        graph: Mapping[str, Any],
        resumed_from: int | None = None,
    ) -> int: ...
    def find_step_runs(self, cache_key: str, *, projects: Collection[str] | None = None) -> list[StepRun]: ...
    def get_pipeline_run(self, pipeline_run_id: int) -> PipelineRun: ...
    def get_pipeline_run_by_run_id(self, run_id: str) -> PipelineRun: ...
    def list_pipeline_runs(
        self, pipeline: str | None = None, max_results: int = 100
    ) -> list[PipelineRun]: ...
    def lookup_step_cache(
        self, cache_keys: Sequence[str], *, projects: Collection[str] | None = None
    ) -> dict[str, Mapping[str, Any]]: ...
    def record_step_runs(self, pipeline_run_id: int, steps: Sequence[StepRun]) -> None: ...
    def set_pipeline_run_status(self, pipeline_run_id: int, status: str) -> None: ...
    def step_uses(self, sha256: str) -> list[StepUse]: ...

    # -- lineage queries ---------------------------------------------------------------------
    def dataset_usage(self, name: str, fingerprint: str | None = None) -> list[DatasetUse]: ...
    def model_versions_from_runs(self, run_ids: Sequence[str]) -> list[ModelVersion]: ...
    def record_input_artifacts(self, run_id: str, items: Sequence[tuple[str, str]]) -> None: ...


_lock = threading.Lock()
_open: dict[str, Store] = {}


def default_locations(settings: Settings, start: Path | None = None) -> tuple[str, str, Path]:
    """(tracking URI, artifact URI, local keel folder) for these settings.

    Without configuration keel uses ``.keel/keel.db`` and ``.keel/artifacts`` in the nearest folder
    that has a ``.keel`` (walking up like git), else beside the nearest project marker.
    """
    keel_dir = find_keel_dir(start) or find_project_root(start) / STORE_DIR_NAME
    tracking = settings.tracking_uri or f"sqlite:///{keel_dir / 'keel.db'}"
    artifacts = settings.artifact_uri or str(keel_dir / "artifacts")
    return tracking, artifacts, keel_dir


_URL_FORMS = ("sqlite:", "postgresql://", "postgres://", "postgresql+", "http://", "https://")


def check_store_url(url: str) -> None:
    """Refuse a tracking URI keel cannot open, by its form alone (no driver is imported): the SQL
    store opens later, in the background, and a typo should fail where the URI was given."""
    if not url.startswith(_URL_FORMS):
        from keel.errors import StoreError

        raise StoreError(
            f"unsupported tracking URI {url!r}: use sqlite:///path/to/keel.db, postgresql://user@host/db "
            "or http(s)://host:port for a keel server"
        )


def open_store(url: str, *, token: str | None = None) -> Store:
    """One store object per URL and process, opened (and migrated) on first use. ``token``
    authenticates against a keel server (``http(s)://`` URLs; a token in the URL wins)."""
    with _lock:
        store = _open.get(url)
        if store is None:
            if url.startswith(("http://", "https://")):
                from keel.store.rest import RestStore

                store = RestStore(url, token=token)
                _open[url] = store
                return store
            from keel.store.sql import SqlStore

            store = SqlStore(url)
            _open[url] = store
        return store


def forget_stores() -> None:
    """Close every open store (tests use this between stores)."""
    with _lock:
        for store in _open.values():
            store.close()
        _open.clear()
