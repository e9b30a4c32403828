"""Artifact names are metadata, never storage paths; this module keeps them that way."""

from __future__ import annotations

import mimetypes
import os
from pathlib import Path, PurePosixPath

from keel.errors import UnsafePathError

__all__ = ["check_artifact_name", "media_type", "safe_destination"]

MAX_NAME_LENGTH = 512


def check_artifact_name(name: str) -> str:
    """Return ``name`` if it is a safe relative slash-separated name, else raise UnsafePathError."""
    if not isinstance(name, str) or not name:
        raise UnsafePathError("an artifact name must be a non-empty string such as 'plots/loss.png'")
    problem = None
    if "\x00" in name:
        problem = "contains a NUL character"
    elif any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        problem = "contains a control character"
    elif "\\" in name:
        problem = "contains a backslash; use '/' between folders"
    elif name.startswith("/") or PurePosixPath(name).is_absolute():
        problem = "is an absolute path; names are relative, such as 'plots/loss.png'"
    elif len(name) >= 2 and name[1] == ":" and name[0].isalpha():
        problem = "starts with a drive letter"
    elif any(part in {"", ".", ".."} for part in name.split("/")):
        problem = "has an empty, '.' or '..' segment"
    elif len(name) > MAX_NAME_LENGTH:
        problem = f"is {len(name)} characters long; the limit is {MAX_NAME_LENGTH}"
    if problem:
        raise UnsafePathError(
            f"artifact name {name!r} {problem}. Names are metadata and can never "
            "point outside the artifact store."
        )
    return name


def safe_destination(root: str | os.PathLike[str], name: str) -> Path:
    """The path for artifact ``name`` under ``root``, guaranteed to stay inside ``root``."""
    check_artifact_name(name)
    base = Path(root).resolve()
    target = (base / name).resolve()
    if target != base and base not in target.parents:
        raise UnsafePathError(f"artifact name {name!r} would be written outside {base}")
    return target


def media_type(name: str) -> str:
    guessed, _ = mimetypes.guess_type(name, strict=False)
    if guessed:
        return guessed
    suffix = Path(name).suffix.lower()
    return {
        ".parquet": "application/vnd.apache.parquet",
        ".skops": "application/octet-stream",
        ".onnx": "application/octet-stream",
        ".safetensors": "application/octet-stream",
        ".yaml": "application/yaml",
        ".yml": "application/yaml",
        ".md": "text/markdown",
        ".log": "text/plain",
    }.get(suffix, "application/octet-stream")
