"""``RemoteArtifactStore``: artifact bytes through ``keel server``, addressed by sha256 only.

Clients whose tracking URI is a keel server store and read blobs with it instead of touching the
server's storage: uploads are streamed to ``PUT /api/v1/artifacts/{sha256}`` (the server hashes
them again and refuses a mismatch), downloads are streamed to a temporary file and checked against
the hash before they appear at their destination. It offers the
:class:`~keel.artifacts.base.BlobStore` protocol.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from keel.artifacts.base import BlobServer
from keel.errors import ArtifactCorruptedError, ArtifactError, NotFoundError
from keel.hashing import check_sha256, sha256_file

__all__ = ["RemoteArtifactStore"]

_BLOCK = 1 << 20


class RemoteArtifactStore:
    def __init__(self, store: BlobServer):
        #: the server connection (a RestStore) that holds the bytes: its retries and credentials are reused
        self.store = store
        self.uri = f"{store.url}/api/v1/artifacts"
        self.root = self.uri
        self.fs = None

    def __repr__(self) -> str:
        return f"RemoteArtifactStore({self.uri!r})"

    @property
    def scratch(self) -> Path | None:
        return None

    def exists(self, sha256: str) -> bool:
        try:
            self.store.request("HEAD", f"/artifacts/{check_sha256(sha256)}")
        except NotFoundError:
            return False
        return True

    def put_file(
        self, path: str | os.PathLike[str], *, durable: bool = True, move: bool = False
    ) -> tuple[str, int]:
        """Upload a file (skipped when the server has the bytes already); return (sha256, size)."""
        sha, size = sha256_file(path)
        if not self.exists(sha):

            def blocks() -> Iterator[bytes]:
                with open(path, "rb") as handle:
                    while block := handle.read(_BLOCK):
                        yield block

            self.store.request(
                "PUT", f"/artifacts/{sha}", content=_Replayable(blocks),
                headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
            )  # fmt: skip
        return sha, size

    def put_bytes(self, data: bytes, *, durable: bool = True) -> tuple[str, int]:
        sha = hashlib.sha256(data).hexdigest()
        if not self.exists(sha):
            self.store.request(
                "PUT", f"/artifacts/{sha}", content=data, headers={"Content-Type": "application/octet-stream"}
            )
        return sha, len(data)

    def read_bytes(self, sha256: str) -> bytes:
        data = self.store.request("GET", f"/artifacts/{check_sha256(sha256)}").content
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise ArtifactCorruptedError(
                f"artifact blob {sha256} arrived corrupted from {self.uri} (its bytes hash to {actual})",
                expected=sha256,
                actual=actual,
            )
        return bytes(data)

    def download(self, sha256: str, dest: str | os.PathLike[str], *, link: bool = False) -> Path:
        """Stream the blob to ``dest``; ``dest`` appears only if the bytes match the hash."""
        import httpx

        check_sha256(sha256)
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".download-")
        try:
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as out:
                try:
                    with self.store.stream("GET", f"/artifacts/{sha256}") as response:
                        for block in response.iter_bytes(_BLOCK):
                            digest.update(block)
                            out.write(block)
                except httpx.HTTPError as exc:
                    raise ArtifactError(f"cannot download blob {sha256} from {self.uri}: {exc}") from exc
            actual = digest.hexdigest()
            if actual != sha256:
                raise ArtifactCorruptedError(
                    f"artifact blob {sha256} arrived corrupted from {self.uri} (its bytes hash to "
                    f"{actual}); nothing was written to the destination.",
                    expected=sha256,
                    actual=actual,
                )
            os.replace(tmp, dest)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return dest


class _Replayable:
    """An upload body that can be sent again when a retry needs it (a plain generator cannot)."""

    def __init__(self, factory: Any):
        self.factory = factory

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.factory())
