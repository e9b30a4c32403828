"""Artifact bytes: a content-addressed store, and the rules that keep names from becoming paths."""

from __future__ import annotations

from keel.artifacts.base import BlobStore
from keel.artifacts.names import check_artifact_name, media_type, safe_destination
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
