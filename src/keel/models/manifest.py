"""The manifest of a model folder: what was written, by which library, and each file's sha256.

A model folder holds the flavor's file(s) and ``keel-model.json``. The manifest is written last, so
a folder without one is an interrupted save. On load every listed file is read once, its sha256
checked, and only those verified bytes are handed to the deserializer: a file swapped between the
check and the read cannot slip through, which is what binds ``trust=True`` to the recorded hash.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from keel.errors import ArtifactCorruptedError, InvalidInputError, NotFoundError, UnsafePathError

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "build_manifest",
    "hash_folder",
    "read_manifest",
    "read_verified_files",
    "write_manifest",
]

MANIFEST_NAME = "keel-model.json"
FORMAT = "keel-model"
FORMAT_VERSION = 1

_CHUNK = 1 << 20
_ABSENT = "<absent>"


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def hash_folder(folder: Path) -> dict[str, str]:
    """Return ``{relative posix name: sha256}`` for every file under ``folder`` but the manifest."""
    files: dict[str, str] = {}
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        for name in sorted(names):
            path = Path(root) / name
            relative = path.relative_to(folder).as_posix()
            if relative != MANIFEST_NAME:
                files[relative] = _sha256_file(path)
    return files


def build_manifest(
    *,
    flavor: str,
    files: Mapping[str, str],
    signature: Mapping[str, Any] | None,
    library_name: str,
    library_version: str | None,
    model_class: str,
    flavor_options: Mapping[str, Any],
    trusted_pickle: bool,
) -> dict[str, Any]:
    """Assemble the manifest dict in its documented shape."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "flavor": flavor,
        "files": dict(files),
        "signature": dict(signature) if signature is not None else None,
        "library": {"name": library_name, "version": library_version},
        "model_class": model_class,
        "flavor_options": dict(flavor_options),
        "python": platform.python_version(),
        "created_at": int(time.time() * 1000),
        "trusted_pickle": trusted_pickle,
    }


def write_manifest(folder: Path, manifest: Mapping[str, Any]) -> None:
    """Write the manifest to a temporary file and rename it, so it appears whole or not at all."""
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    temporary = folder / (MANIFEST_NAME + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, folder / MANIFEST_NAME)


def read_manifest(folder: Path) -> dict[str, Any]:
    """Read and check the shape of ``folder/keel-model.json``."""
    if not folder.is_dir():
        raise NotFoundError(f"No model folder at {str(folder)!r}. Pass the folder save_model wrote.")
    path = folder / MANIFEST_NAME
    if not path.is_file():
        raise NotFoundError(
            f"{str(folder)!r} has no {MANIFEST_NAME}: it is not a keel model folder, or its save "
            "was interrupted. Save the model again."
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"{str(path)!r} is not valid JSON ({exc}).") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InvalidInputError(f"{str(path)!r} is not a keel model manifest.")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise InvalidInputError(
            f"{str(path)!r} has format_version {version!r}; this keel reads up to "
            f"{FORMAT_VERSION}. Upgrade keel to load it."
        )
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(
        isinstance(name, str) and isinstance(digest, str) for name, digest in files.items()
    ):
        raise InvalidInputError(f"{str(path)!r} has no valid 'files' mapping.")
    return manifest


def _check_expected(files: Mapping[str, str], expected: Mapping[str, str]) -> None:
    for name in sorted(set(files) | set(expected)):
        recorded, wanted = files.get(name, _ABSENT), expected.get(name, _ABSENT)
        if recorded != wanted:
            raise ArtifactCorruptedError(
                f"The model's file {name!r} does not match what was recorded at registration "
                f"(expected sha256 {wanted}, the folder's manifest says {recorded}). The folder "
                "was changed after registration; do not load it.",
                expected=wanted,
                actual=recorded,
            )


def _safe_relative(name: str) -> PurePosixPath:
    relative = PurePosixPath(name)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts or "\\" in name:
        raise UnsafePathError(
            f"The manifest names the file {name!r}, which would reach outside the model folder. "
            "The manifest was tampered with; do not load this model."
        )
    return relative


def read_verified_files(
    folder: Path, manifest: Mapping[str, Any], expected_sha256: Mapping[str, str] | None
) -> dict[str, bytes]:
    """Read every file the manifest lists and return its bytes once its sha256 matches.

    ``expected_sha256`` (the mapping recorded at registration) must equal the manifest's own
    mapping, so a folder whose manifest was rewritten along with its files is caught too.
    """
    files: Mapping[str, str] = manifest["files"]
    if expected_sha256 is not None:
        _check_expected(files, expected_sha256)
    contents: dict[str, bytes] = {}
    for name, recorded in files.items():
        path = folder.joinpath(*_safe_relative(name).parts)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ArtifactCorruptedError(
                f"The model's file {name!r} is missing from {str(folder)!r}.",
                expected=recorded,
                actual=_ABSENT,
            ) from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != recorded:
            raise ArtifactCorruptedError(
                f"The model's file {name!r} does not match its recorded sha256 (expected "
                f"{recorded}, found {actual}): it was changed or damaged after saving. "
                "Do not load it; save or download the model again.",
                expected=recorded,
                actual=actual,
            )
        contents[name] = data
    return contents
