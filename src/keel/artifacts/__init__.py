"""Artifact bytes: a content-addressed store, and the rules that keep names from becoming paths."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from keel.artifacts.names import check_artifact_name, media_type, safe_destination

if TYPE_CHECKING:
    from keel.artifacts.store import ArtifactStore, check_sha256, sha256_file

__all__ = [
    "ArtifactStore",
    "check_artifact_name",
    "check_sha256",
    "media_type",
    "safe_destination",
    "sha256_file",
]


def __getattr__(name: str) -> Any:
    # the store (hashlib, shutil, tempfile) loads when first used: the names are on the path of
    # every start_run, the bytes only on the path of runs that store artifacts
    if name in {"ArtifactStore", "check_sha256", "sha256_file"}:
        from keel.artifacts import store

        value = getattr(store, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'keel.artifacts' has no attribute {name!r}")
