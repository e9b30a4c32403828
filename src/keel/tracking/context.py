"""Everything a client needs for one store, built once per process and tracking URI.

A SQL store is opened on first use, not when the context is built: opening one imports SQLAlchemy
and checks the schema (or creates it, for a new project), a few hundred milliseconds that the first
``start_run`` of a process should not wait for. The fluent API queues a run's creation in the outbox
and the background writer opens the store (see ``_RunClient.start`` and ``StoreHandle``). The URL is
checked for its form at once, so a mistyped one still fails where it was given.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Any, cast

from keel.artifacts.base import BlobServer, BlobStore
from keel.config import Settings
from keel.errors import KeelError
from keel.naming import NamingConvention
from keel.store.base import Store, check_store_url, default_locations, open_store

__all__ = ["Context", "StoreHandle", "get_context", "reset_contexts"]


class Context:
    """Where one configuration's runs go: its settings, store, artifacts and writer. A plain class:
    ``dataclasses`` costs a first ``start_run`` ~10 ms to import."""

    def __init__(
        self,
        settings: Settings,
        tracking_uri: str,
        artifact_uri: str,
        keel_dir: Path,
        naming: NamingConvention,
        _writer: Any = None,
        _store: Store | None = None,
        _artifacts: Any = None,
    ) -> None:
        self.settings = settings
        self.tracking_uri = tracking_uri
        self.artifact_uri = artifact_uri
        self.keel_dir = keel_dir
        self.naming = naming
        self._writer = _writer
        #: the metadata store once opened (see :attr:`store`)
        self._store = _store
        self._store_lock = threading.Lock()
        #: the artifact store once used (see :attr:`artifacts`)
        self._artifacts = _artifacts
        #: params the fluent API logged, per active run: a changed value is refused here, even while
        #: the store is away and they wait in the outbox
        self.logged_params: dict[str, dict[str, str]] = {}

    def __repr__(self) -> str:
        return f"Context(tracking_uri={self.tracking_uri!r}, artifact_uri={self.artifact_uri!r})"

    @property
    def store(self) -> Store:
        """The metadata store, opened (and migrated, or created) on first use."""
        store = self._store
        if store is None:
            with self._store_lock:
                if self._store is None:
                    self._store = open_store(self.tracking_uri, token=self.settings.tracking_token)
                store = self._store
        return store

    @property
    def artifacts(self) -> BlobStore:
        """The artifact store (``ArtifactStore``, or a keel server's), made on first use."""
        if self._artifacts is None:
            from keel.artifacts.store import ArtifactStore

            self._artifacts = ArtifactStore(self.artifact_uri)
        artifacts: BlobStore = self._artifacts
        return artifacts

    @property
    def store_open(self) -> bool:
        """Whether :attr:`store` is open already (asking does not open it)."""
        return self._store is not None

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
                        self._store if self._store is not None else StoreHandle(self),
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
        writer = self.writer
        if writer.adopted[0] and self.store_open and not writer.outbox:
            # runs whose creation a dead process left queued exist only now: judge them as the
            # store judged the others when it opened (their process is gone: CRASHED)
            with contextlib.suppress(KeelError):
                self.store.mark_crashed_runs()
        return int(writer.recovered)


class StoreHandle:
    """What the background writer holds before the store is open: its URL at once (it names the
    spool and outbox files), the store itself on first use, which is in the writer's thread."""

    def __init__(self, context: Context):
        self.context = context
        self.url = context.tracking_uri

    @property
    def is_open(self) -> bool:
        return self.context.store_open

    def open(self) -> Store:
        return self.context.store

    @property
    def single_try(self) -> Any:
        # asked on every writer cycle: must not open the store (MetricWriter._store_ready does)
        return getattr(self.context._store, "single_try", None)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.context.store, name)


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
        check_store_url(tracking)  # a mistyped URL fails here, not later in the writer
        store: Store | None = None
        blobs: Any = None  # a local artifact store is made on first use
        if tracking.startswith(("http://", "https://")):
            # a keel server holds the bytes: clients never write to its storage themselves
            from keel.artifacts.remote import RemoteArtifactStore

            store = open_store(tracking, token=settings.tracking_token)
            # open_store gave a RestStore for this URL, and a RestStore is a BlobServer
            blobs = RemoteArtifactStore(cast(BlobServer, store))
            artifacts = blobs.uri
        context = Context(
            settings=settings,
            tracking_uri=tracking,
            artifact_uri=artifacts,
            keel_dir=keel_dir,
            naming=NamingConvention(settings.naming, settings.project),
            _store=store,
            _artifacts=blobs,
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
