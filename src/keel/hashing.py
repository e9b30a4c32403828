"""sha256, the one address keel gives bytes: checking that a string is one, and hashing a file.

Artifacts are stored under their sha256, lineage is keyed by it, and the store queries by it, so the
check lives here, below all of them, rather than in the artifact layer the store must not import.
"""

from __future__ import annotations

import hashlib
import os

from keel.errors import InvalidInputError

__all__ = ["check_sha256", "sha256_file"]

_BLOCK = 1 << 20


def check_sha256(sha256: str) -> str:
    """``sha256`` if it is one (64 lowercase hex characters); InvalidInputError otherwise."""
    if not isinstance(sha256, str) or len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise InvalidInputError(f"{sha256!r} is not a sha256 (64 lowercase hex characters)")
    return sha256


def sha256_file(path: str | os.PathLike[str]) -> tuple[str, int]:
    """(sha256, size in bytes) of the file at ``path``, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size
