"""Everything a client needs for one store, built once per process and tracking URI."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from keel.artifacts import ArtifactStore
from keel.artifacts.base import BlobServer, BlobStore
from keel.config import Settings
from keel.naming import NamingConvention
from keel.store.base import Store, default_locations, open_store

__all__ = ["Context", "get_context", "reset_contexts"]


@dataclass
class Context:
    settings: Settings
    tracking_uri: str
    artifact_uri: str
    keel_dir: Path
    store: Store
    artifacts: BlobStore
    naming: NamingConvention
    _writer: Any = None
    #: params the fluent API logged, per active run: a changed value is refused here, even while
    #: the store is away and they wait in the outbox
    logged_params: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def writer(self) -> Any:
        if self._writer is None:
            from keel.tracking.writer import MetricWriter

            with _lock:
                if self._writer is None:
                    spool_dir = (
                        Path(self.settings.spool_dir) if self.settings.spool_dir else self.keel_dir / "spool"
                    )
                    self._writer = MetricWriter(
                        self.store,
                        spool_dir,
                        flush_interval=self.settings.flush_interval,
                        commit_interval=self.settings.commit_interval,
                        heartbeat_interval=self.settings.heartbeat_interval,
                        offline_wait=self.settings.offline_wait,
                        context=self,
                    )
        return self._writer

    def recover(self) -> int:
        """Send what dead processes left for this store: queued run changes and spooled points
        (done when the writer starts; what the store does not take yet is retried in the background)."""
        return int(self.writer.recovered)


_lock = threading.RLock()
_contexts: dict[tuple[str | None, str | None, str | None, str], Context] = {}


def get_context(
    tracking_uri: str | None = None, artifact_uri: str | None = None, project: str | None = None
) -> Context:
    key = (tracking_uri, artifact_uri, project, os.getcwd())
    with _lock:
        context = _contexts.get(key)
        if context is not None:
            return context
        settings = Settings.load(
            overrides={
                "tracking_uri": tracking_uri,
                "artifact_uri": artifact_uri,
                "project": project,
            }
        )
        tracking, artifacts, keel_dir = default_locations(settings)
        store = open_store(tracking, token=settings.tracking_token)
        blobs: BlobStore
        if tracking.startswith(("http://", "https://")):
            # a keel server holds the bytes: clients never write to its storage themselves
            from keel.artifacts.remote import RemoteArtifactStore

            # open_store gave a RestStore for this URL, and a RestStore is a BlobServer
            blobs = RemoteArtifactStore(cast(BlobServer, store))
            artifacts = blobs.uri
        else:
            blobs = ArtifactStore(artifacts)
        context = Context(
            settings=settings,
            tracking_uri=tracking,
            artifact_uri=artifacts,
            keel_dir=keel_dir,
            store=store,
            artifacts=blobs,
            naming=NamingConvention(settings.naming, settings.project),
        )
        _contexts[key] = context
        return context


def reset_contexts() -> None:
    """Flush and forget every context and store (tests; also after fork in a child)."""
    from keel.store.base import forget_stores

    with _lock:
        for context in _contexts.values():
            if context._writer is not None:
                context._writer.close()
        _contexts.clear()
        forget_stores()
