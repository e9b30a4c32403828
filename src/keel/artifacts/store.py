"""Content-addressed bytes: every blob lives at ``root/ab/abcdef…`` named by its sha256.

Backends come from fsspec: a local folder (the default), ``s3://bucket/prefix`` (``pip install
'keel-mlops[s3]'``; an S3-compatible endpoint comes from the ``s3_endpoint_url`` setting,
``KEEL_S3_ENDPOINT_URL`` or ``AWS_ENDPOINT_URL``), or anything else fsspec knows. No client ever
supplies a storage path: the only way in is a hash, and every read checks the bytes against it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from keel.errors import (
    ArtifactCorruptedError,
    ArtifactError,
    MissingDependencyError,
    NotFoundError,
)
from keel.hashing import check_sha256, sha256_file

__all__ = ["ArtifactStore"]

_BLOCK = 1 << 20


def _linked(source: str, target: str) -> bool:
    """Replace ``target`` with a hard link to ``source``; False where links do not work."""
    try:
        os.unlink(target)
        os.link(source, target)
    except FileNotFoundError:
        raise
    except OSError:
        return False
    return True


class ArtifactStore:
    """Stores and serves blobs by sha256 over an fsspec filesystem."""

    def __init__(self, uri: str, *, s3_endpoint_url: str | None = None):
        self.uri = uri
        self._local: Path | None = None
        if "://" not in uri or uri.startswith("file://"):
            path = uri[len("file://") :] if uri.startswith("file://") else uri
            self._local = Path(path).expanduser().resolve()
            self.fs: Any = None
            self.root = str(self._local)
        else:
            protocol = uri.split("://", 1)[0]
            options: dict[str, Any] = {}
            if protocol == "s3":
                endpoint = (
                    s3_endpoint_url
                    or os.environ.get("KEEL_S3_ENDPOINT_URL")
                    or os.environ.get("AWS_ENDPOINT_URL")
                )
                if endpoint:
                    options["client_kwargs"] = {"endpoint_url": endpoint}
                options["default_fill_cache"] = False
                # a cached listing would claim a deleted blob still exists, and dedup would skip it
                options["use_listings_cache"] = False
            try:
                import fsspec

                self.fs = fsspec.filesystem(protocol, **options)
            except ImportError:
                raise MissingDependencyError(
                    "s3fs" if protocol == "s3" else protocol,
                    "s3" if protocol == "s3" else protocol,
                    f"The {protocol}:// artifact store",
                ) from None
            except ValueError as exc:
                raise ArtifactError(f"unsupported artifact store {uri!r}: {exc}") from None
            self.root = uri.split("://", 1)[1].rstrip("/")

    def __repr__(self) -> str:
        return f"ArtifactStore({self.uri!r})"

    def _key(self, sha256: str) -> str:
        check_sha256(sha256)
        return f"{self.root}/{sha256[:2]}/{sha256}"

    # -- writing -----------------------------------------------------------------------------
    @property
    def scratch(self) -> Path | None:
        """A folder on the store's own file system (local stores only): a file written there can be
        stored with ``put_file(path, move=True)`` by a rename instead of a copy."""
        if self._local is None:
            return None
        incoming = self._local / ".incoming"
        incoming.mkdir(parents=True, exist_ok=True)
        return incoming

    def put_file(
        self, path: str | os.PathLike[str], *, durable: bool = True, move: bool = False
    ) -> tuple[str, int]:
        """Store a file's bytes; return (sha256, size). Storing the same bytes twice costs nothing.

        ``move=True`` lets a local store take the file itself (renamed into place after hashing, no
        copy) when it lies on the store's file system, as files under :attr:`scratch` do; the file
        must not change meanwhile. Otherwise it is copied and the caller keeps it.

        Locally the file is read once: copied into the store while it is hashed, then renamed into
        place under its hash (so a file that changes meanwhile is stored under what was read).
        ``durable=False`` skips the fsync, for intermediate results that can be recomputed (pipeline
        step outputs): a power cut may then lose the blob, which a later read reports as missing or
        corrupted, never as wrong data.
        """
        try:
            if self._local is None:
                sha, size = sha256_file(path)
                if not self.exists(sha):
                    self.fs.put_file(str(path), self._key(sha))
                return sha, size
            incoming = self._local / ".incoming"
            incoming.mkdir(parents=True, exist_ok=True)
            if move and os.stat(path).st_dev == os.stat(incoming).st_dev:
                sha, size = sha256_file(path)
                if durable:
                    with open(path, "rb+") as handle:
                        os.fsync(handle.fileno())
                self._place(os.fspath(path), sha)
                Path(path).unlink(missing_ok=True)  # already stored: the duplicate goes
                return sha, size
            fd, tmp = tempfile.mkstemp(dir=incoming)
            try:
                digest, size = hashlib.sha256(), 0
                with os.fdopen(fd, "wb") as out, open(path, "rb") as src:
                    while block := src.read(_BLOCK):
                        digest.update(block)
                        out.write(block)
                        size += len(block)
                    if durable:
                        out.flush()
                        os.fsync(out.fileno())
                sha = digest.hexdigest()
                self._place(tmp, sha)
            finally:
                Path(tmp).unlink(missing_ok=True)
        except OSError as exc:
            raise ArtifactError(f"cannot store {path} in {self.uri}: {exc}") from exc
        return sha, size

    def put_bytes(self, data: bytes, *, durable: bool = True) -> tuple[str, int]:
        """Store bytes held in memory; return (sha256, size)."""
        sha = hashlib.sha256(data).hexdigest()
        try:
            if self._local is None:
                if not self.exists(sha):
                    self.fs.pipe_file(self._key(sha), data)
                return sha, len(data)
            if self.exists(sha):
                return sha, len(data)
            incoming = self._local / ".incoming"
            incoming.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=incoming)
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                    if durable:
                        out.flush()
                        os.fsync(out.fileno())
                self._place(tmp, sha)
            finally:
                Path(tmp).unlink(missing_ok=True)
        except OSError as exc:
            raise ArtifactError(f"cannot store {len(data)} bytes in {self.uri}: {exc}") from exc
        return sha, len(data)

    def _place(self, tmp: str, sha: str) -> None:
        """Move a finished temporary file into place under its hash (a no-op if already there)."""
        target = Path(self._key(sha))
        if target.is_file():
            return
        target.parent.mkdir(exist_ok=True)
        os.replace(tmp, target)

    # -- reading -----------------------------------------------------------------------------
    def exists(self, sha256: str) -> bool:
        key = self._key(sha256)
        if self._local is not None:
            return Path(key).is_file()
        return bool(self.fs.exists(key))

    def size(self, sha256: str) -> int | None:
        """The stored blob's size in bytes, or None when it is not there (or cannot be asked)."""
        if not self.exists(sha256):
            return None
        key = self._key(sha256)
        try:
            if self._local is not None:
                return os.path.getsize(key)
            return int(self.fs.size(key))
        except (OSError, TypeError, ValueError):
            return None

    def read_bytes(self, sha256: str) -> bytes:
        """The blob's bytes, checked against its hash."""
        key = self._key(sha256)
        try:
            if self._local is not None:
                data = Path(key).read_bytes()
            else:
                data = self.fs.cat_file(key)
        except FileNotFoundError:
            raise NotFoundError(f"artifact blob {sha256} is missing from {self.uri}") from None
        except OSError as exc:
            raise ArtifactError(f"cannot read blob {sha256} from {self.uri}: {exc}") from exc
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise ArtifactCorruptedError(
                f"artifact blob {sha256} in {self.uri} is corrupted (its bytes hash to {actual}); "
                "it was changed after it was stored. Restore it from a backup or log it again.",
                expected=sha256,
                actual=actual,
            )
        return data

    def download(self, sha256: str, dest: str | os.PathLike[str], *, link: bool = False) -> Path:
        """Write the blob to ``dest`` (a file path), verified; ``dest`` appears only if it checks out.

        ``link=True`` lets a local store hard-link the blob instead of copying it when ``dest`` is on
        the same file system: for keel's own read-only caches only, since writing to ``dest`` would
        then change the stored blob (which later reads would report as corrupted).
        """
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        key = self._key(sha256)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".download-")
        os.close(fd)
        try:
            try:
                if self._local is not None and link and _linked(key, tmp):
                    pass
                elif self._local is not None:
                    shutil.copyfile(key, tmp)
                else:
                    self.fs.get_file(key, tmp)
            except FileNotFoundError:
                raise NotFoundError(f"artifact blob {sha256} is missing from {self.uri}") from None
            actual, _ = sha256_file(tmp)
            if actual != sha256:
                raise ArtifactCorruptedError(
                    f"artifact blob {sha256} in {self.uri} is corrupted (its bytes hash to {actual}); "
                    "nothing was written to the destination.",
                    expected=sha256,
                    actual=actual,
                )
            os.replace(tmp, dest)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return dest
