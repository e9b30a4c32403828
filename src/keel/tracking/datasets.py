"""Describing a dataset version for lineage: name, fingerprint, schema and row count."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from keel.errors import InvalidInputError

__all__ = ["describe"]


def describe(data: Any, *, name: str | None = None, source: str | None = None) -> dict[str, Any]:
    """Fingerprint ``data`` (a DataFrame, an array, a file or folder path) without copying it.

    The fingerprint is a sha256 over the data's content: a file's bytes, a folder's files, or a
    frame's column names, dtypes and values, so the same data always gets the same version.
    """
    module = type(data).__module__.split(".")[0]
    if isinstance(data, str | os.PathLike):
        path = Path(data)
        if not path.exists():
            raise InvalidInputError(f"dataset path {path} does not exist")
        digest = hashlib.sha256()
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            digest.update(file.relative_to(path).as_posix().encode() if path.is_dir() else b"")
            with file.open("rb") as handle:
                while block := handle.read(1 << 20):
                    digest.update(block)
        return {
            "name": name or path.name,
            "fingerprint": digest.hexdigest(),
            "schema": None,
            "row_count": None,
            "source": source or str(path.resolve()),
        }
    if module == "pandas":
        import pandas as pd

        hashed = pd.util.hash_pandas_object(data, index=True).values
        digest = hashlib.sha256(hashed.tobytes())
        digest.update(repr([(str(c), str(t)) for c, t in data.dtypes.items()]).encode())
        schema = {"columns": [{"name": str(c), "dtype": str(t)} for c, t in data.dtypes.items()]}
        return {
            "name": name or "dataframe",
            "fingerprint": digest.hexdigest(),
            "schema": schema,
            "row_count": int(len(data)),
            "source": source,
        }
    if module == "polars":
        hashed = data.hash_rows(seed=0).to_numpy()
        digest = hashlib.sha256(hashed.tobytes())
        digest.update(repr(list(data.schema.items())).encode())
        schema = {"columns": [{"name": c, "dtype": str(t)} for c, t in data.schema.items()]}
        return {
            "name": name or "dataframe",
            "fingerprint": digest.hexdigest(),
            "schema": schema,
            "row_count": int(data.height),
            "source": source,
        }
    if module == "numpy":
        import numpy as np

        array = np.ascontiguousarray(data)
        digest = hashlib.sha256(array.tobytes())
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        array_schema: dict[str, Any] = {"dtype": str(array.dtype), "shape": list(array.shape)}
        return {
            "name": name or "array",
            "fingerprint": digest.hexdigest(),
            "schema": array_schema,
            "row_count": int(array.shape[0]) if array.ndim else 1,
            "source": source,
        }
    raise InvalidInputError(
        f"cannot fingerprint a {type(data).__name__}; log a pandas or polars DataFrame, a numpy "
        "array, or a file or folder path"
    )
