"""Artifact bytes: a content-addressed store, and the rules that keep names from becoming paths."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from keel.artifacts.base import BlobStore
from keel.artifacts.names import check_artifact_name, media_type, safe_destination

if TYPE_CHECKING:
    from keel.artifacts.store import ArtifactStore
    from keel.hashing import check_sha256, sha256_file

__all__ = [
    "ArtifactStore",
    "BlobStore",
    "check_artifact_name",
    "check_sha256",
    "media_type",
    "safe_destination",
    "sha256_file",
]


def __getattr__(name: str) -> Any:
    # the store (hashlib, shutil, tempfile) loads when first used: the names are on the path of
    # every start_run, the bytes only on the path of runs that store artifacts
    if name == "ArtifactStore":
        from keel.artifacts.store import ArtifactStore

        globals()[name] = ArtifactStore
        return ArtifactStore
    if name in {"check_sha256", "sha256_file"}:
        from keel import hashing

        value = getattr(hashing, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'keel.artifacts' has no attribute {name!r}")
