"""The ``Store`` protocol every metadata backend implements, and how keel picks one.

``SqlStore`` (SQLite, PostgreSQL) implements it today; a ``RestStore`` talking to ``keel server``
will implement the same protocol, so clients never know which one they hold.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from keel.config import STORE_DIR_NAME, Settings, find_keel_dir, find_project_root

if TYPE_CHECKING:
    from keel.entities import (
        Artifact,
        Comment,
        Dataset,
        Experiment,
        LineageEdge,
        MetricHistory,
        ModelVersion,
        RegisteredModel,
        Run,
        RunStatus,
    )
    from keel.store.metrics import Chunk

__all__ = ["Store", "default_locations", "open_store"]


@runtime_checkable
class Store(Protocol):
    url: str

    def create_experiment(
        self,
        name: str,
        *,
        project: str = ...,
        description: str | None = ...,
        tags: Mapping[str, str] | None = ...,
    ) -> Experiment: ...
    def get_experiment(self, experiment_id: str) -> Experiment: ...
    def get_experiment_by_name(self, name: str, *, project: str = ...) -> Experiment | None: ...
    def list_experiments(
        self, *, project: str | None = ..., include_deleted: bool = ...
    ) -> list[Experiment]: ...
    def create_run(self, experiment_id: str, name: str, **fields: Any) -> Run: ...
    def get_run(self, run_id: str) -> Run: ...
    def update_run(
        self,
        run_id: str,
        *,
        status: RunStatus | str | None = ...,
        end_time: int | None = ...,
        traceback: str | None = ...,
        name: str | None = ...,
        cost_usd: float | None = ...,
        cost_detail: Mapping[str, Any] | None = ...,
    ) -> None: ...
    def heartbeat(self, run_id: str) -> None: ...
    def mark_crashed_runs(self, default_interval: float = ...) -> list[str]: ...
    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None: ...
    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None: ...
    def write_metric_batch(self, batch_id: str, run_id: str, chunks: Sequence[Chunk]) -> bool: ...
    def get_metric_history(self, run_id: str, key: str, *, max_points: int | None = ...) -> MetricHistory: ...
    def search_runs(
        self,
        experiment_ids: Sequence[str] | None = ...,
        filter_string: str | None = ...,
        order_by: Sequence[str] | None = ...,
        max_results: int = ...,
        page_token: str | None = ...,
        include_deleted: bool = ...,
    ) -> list[Run]: ...
    def log_dataset(
        self,
        run_id: str,
        *,
        name: str,
        fingerprint: str,
        schema: Mapping[str, Any] | None,
        row_count: int | None,
        source: str | None,
        context: str = ...,
        profile_sha256: str | None = ...,
    ) -> Dataset: ...
    def record_artifact(
        self, run_id: str, name: str, sha256: str, size: int, media_type: str
    ) -> Artifact: ...
    def list_artifacts(self, run_id: str, prefix: str = ...) -> list[Artifact]: ...
    def lineage(self, sha256: str) -> list[LineageEdge]: ...
    def create_registered_model(
        self,
        name: str,
        *,
        project: str = ...,
        description: str | None = ...,
        tags: Mapping[str, str] | None = ...,
    ) -> RegisteredModel: ...
    def create_model_version(
        self, name: str, *, artifact_sha256: str, flavor: str, **fields: Any
    ) -> ModelVersion: ...
    def get_model_version(self, name: str, version: int, *, project: str = ...) -> ModelVersion: ...
    def set_model_alias(self, name: str, alias: str, version: int, *, project: str = ...) -> None: ...
    def get_model_version_by_alias(self, name: str, alias: str, *, project: str = ...) -> ModelVersion: ...
    def add_comment(
        self, target_type: str, target_id: str, body: str, *, author: str | None = ...
    ) -> Comment: ...
    def close(self) -> None: ...


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


def open_store(url: str) -> Store:
    """One store object per URL and process, opened (and migrated) on first use."""
    with _lock:
        store = _open.get(url)
        if store is None:
            if url.startswith(("http://", "https://")):
                from keel.errors import StoreError

                raise StoreError(
                    "keel server stores (http://...) arrive with `keel server`; use a "
                    "sqlite:/// or postgresql:// URI for now"
                )
            from keel.store.sql import SqlStore

            store = _open[url] = SqlStore(url)
        return store


def forget_stores() -> None:
    """Close every open store (tests use this between stores)."""
    with _lock:
        for store in _open.values():
            store.close()
        _open.clear()
