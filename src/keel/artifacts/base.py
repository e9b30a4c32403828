"""The protocols between artifact bytes and the rest of keel.

``BlobStore`` is everything a client asks of a place that holds artifact bytes; ``ArtifactStore``
(a folder, S3 or anything fsspec knows) and ``RemoteArtifactStore`` (bytes through ``keel server``)
implement it, so tracking and pipelines never know which one they hold.

``BlobServer`` is what ``RemoteArtifactStore`` needs from its connection to a keel server: a
request with retries and a streamed download, each raising keel's errors. ``RestStore`` provides
it, so the artifact layer reuses the store's credentials and retries without reaching into it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

__all__ = ["BlobServer", "BlobStore"]


@runtime_checkable
class BlobStore(Protocol):
    """Content-addressed bytes: every method takes or returns a sha256, never a storage path."""

    #: where the bytes live, for messages and for the artifact URI a context reports
    uri: str

    @property
    def scratch(self) -> Path | None:
        """A local folder on the store's file system where files can be staged and then moved in
        without a copy (None when the store is not local)."""
        ...

    def exists(self, sha256: str) -> bool: ...
    def put_file(
        self, path: str | os.PathLike[str], *, durable: bool = True, move: bool = False
    ) -> tuple[str, int]: ...
    def put_bytes(self, data: bytes, *, durable: bool = True) -> tuple[str, int]: ...
    def read_bytes(self, sha256: str) -> bytes: ...
    def download(self, sha256: str, dest: str | os.PathLike[str], *, link: bool = False) -> Path: ...


@runtime_checkable
class BlobServer(Protocol):
    """A connection to a keel server whose ``/api/v1/artifacts`` holds the bytes."""

    #: the server's base URL, without credentials
    url: str

    def request(
        self, method: str, path: str, *, content: Any = None, headers: Mapping[str, str] | None = None
    ) -> Any:
        """Send one request (retried where safe) and return the 2xx response; a refusal raises the
        keel error it stands for."""
        ...

    def stream(self, method: str, path: str) -> AbstractContextManager[Any]:
        """One request whose response body is read as it arrives (``iter_bytes``); an error
        status raises the keel error it stands for before the body is handed out."""
        ...
