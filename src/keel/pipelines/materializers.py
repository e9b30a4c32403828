"""Materializers: how a step output becomes files in a folder, and comes back.

A materializer is anything with ``name``, ``can_handle(obj)``, ``save(obj, folder) -> dict`` and
``load(folder, metadata)``. The registry asks user-registered materializers first (newest first),
then the built-ins in this order:

==========  ===========================================  ===========================================
name        handles                                      files
==========  ===========================================  ===========================================
numpy       ``numpy.ndarray``                            ``array.npy``, loaded memory-mapped
table       pandas / polars DataFrames, pyarrow Tables   ``table.parquet`` (``keel-mlops[tables]``)
json        dict (str keys), list, str, int, float,       ``value.json``; NaN and ±inf round-trip
            bool, None, nested
model       objects :func:`keel.models.flavor_for` gives  a :func:`keel.models.save_model` folder
            a safe flavor (sklearn, xgboost, ...)
container   dict (str/int keys), list, tuple of values    ``items/N/`` per element, each in its own
            the others handle, nested too                  materializer; keys and order in metadata
pickle      anything cloudpickle can pickle (last resort) ``value.pkl``; loading needs ``trust=True``
==========  ===========================================  ===========================================

:func:`save_output` writes ``keel-materializer.json`` (the metadata) beside the files, so a folder
describes itself and its hash covers how to read it.

    >>> class Vocab: ...
    >>> class VocabMaterializer:
    ...     name = "vocab"
    ...     def can_handle(self, obj): return isinstance(obj, Vocab)
    ...     def save(self, obj, folder): (folder / "vocab.txt").write_text(obj.dump()); return {}
    ...     def load(self, folder, metadata): return Vocab.parse((folder / "vocab.txt").read_text())
    >>> register_materializer(VocabMaterializer())
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from keel.artifacts.names import safe_destination
from keel.errors import InvalidInputError, MissingDependencyError, TrustError
from keel.pipelines.errors import NoMaterializerError

__all__ = [
    "METADATA_NAME",
    "Materializer",
    "hash_folder",
    "load_output",
    "materializer_for",
    "register_materializer",
    "save_output",
    "unregister_materializer",
]

METADATA_NAME = "keel-materializer.json"


@runtime_checkable
class Materializer(Protocol):
    """Turns objects of some types into files in a folder and back."""

    name: str

    def can_handle(self, obj: Any) -> bool: ...

    def save(self, obj: Any, folder: Path) -> dict[str, Any]: ...

    def load(self, folder: Path, metadata: dict[str, Any]) -> Any: ...


def _type_name(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _module_top(obj: Any) -> str:
    return type(obj).__module__.partition(".")[0]


class NumpyMaterializer:
    name = "numpy"

    def can_handle(self, obj: Any) -> bool:
        if _module_top(obj) != "numpy":
            return False
        import numpy as np

        return isinstance(obj, np.ndarray) and obj.dtype != object

    def save(self, obj: Any, folder: Path) -> dict[str, Any]:
        import numpy as np

        np.save(folder / "array.npy", obj, allow_pickle=False)
        return {"dtype": str(obj.dtype), "shape": list(obj.shape)}

    def load(self, folder: Path, metadata: dict[str, Any]) -> Any:
        import numpy as np

        # memory-mapped and read-only: no copy, and the stored bytes cannot be changed through it
        return np.load(folder / "array.npy", mmap_mode="r", allow_pickle=False)


class TableMaterializer:
    name = "table"
    _KINDS = {("pandas", "DataFrame"), ("polars", "DataFrame"), ("pyarrow", "Table")}

    def _kind(self, obj: Any) -> str | None:
        for cls in type(obj).__mro__:
            key = (cls.__module__.partition(".")[0], cls.__name__)
            if key in self._KINDS:
                return key[0]
        return None

    def can_handle(self, obj: Any) -> bool:
        return self._kind(obj) is not None

    def save(self, obj: Any, folder: Path) -> dict[str, Any]:
        kind = self._kind(obj)
        pq = _require_pyarrow("Saving a table step output")
        if kind == "polars":
            obj.write_parquet(folder / "table.parquet")
        elif kind == "pandas":
            import pyarrow as pa

            pq.write_table(pa.Table.from_pandas(obj), folder / "table.parquet")
        else:
            pq.write_table(obj, folder / "table.parquet")
        return {"kind": kind}

    def load(self, folder: Path, metadata: dict[str, Any]) -> Any:
        kind = metadata.get("kind")
        if kind == "polars":
            import polars as pl

            return pl.read_parquet(folder / "table.parquet")
        pq = _require_pyarrow("Loading a table step output")
        table = pq.read_table(folder / "table.parquet", memory_map=True)
        return table.to_pandas() if kind == "pandas" else table


def _require_pyarrow(purpose: str) -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingDependencyError("pyarrow", "tables", purpose) from None
    return pq


_JSON_SCALARS = (str, int, float, bool, type(None))


def _is_json_value(obj: Any) -> bool:
    stack = [obj]
    seen: set[int] = set()  # a list or dict that contains itself is not JSON (and must not loop)
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind in _JSON_SCALARS:
            continue
        if kind is list or kind is dict:
            if id(item) in seen:
                return False
            seen.add(id(item))
        if kind is list:
            stack.extend(item)
        elif kind is dict:
            if not all(type(key) is str for key in item):
                return False
            stack.extend(item.values())
        else:  # tuples, subclasses and the rest would come back as something else
            return False
    return True


class JsonMaterializer:
    """JSON values; NaN and ±inf are written as Python's ``NaN``/``Infinity`` tokens and read back."""

    name = "json"

    def can_handle(self, obj: Any) -> bool:
        return _is_json_value(obj)

    def save(self, obj: Any, folder: Path) -> dict[str, Any]:
        (folder / "value.json").write_text(json.dumps(obj, allow_nan=True), encoding="utf-8")
        return {}

    def load(self, folder: Path, metadata: dict[str, Any]) -> Any:
        return json.loads((folder / "value.json").read_text(encoding="utf-8"))


class ModelMaterializer:
    """Models with a safe flavor, through :func:`keel.models.save_model` (never pickled here)."""

    name = "model"

    def can_handle(self, obj: Any) -> bool:
        from keel.models import flavor_for

        # flavor_for answers "python_function" (a pickle) for anything it does not know
        return flavor_for(obj) != "python_function"

    def save(self, obj: Any, folder: Path) -> dict[str, Any]:
        from keel.models import save_model

        manifest = save_model(obj, folder / "model")
        return {"flavor": manifest["flavor"], "files": manifest.get("files", {})}

    def load(self, folder: Path, metadata: dict[str, Any]) -> Any:
        from keel.models import load_model

        return load_model(folder / "model", expected_sha256=metadata.get("files") or None)


#: how deep containers may nest before the value is treated as unknown (and pickled)
_MAX_DEPTH = 32
_CONTAINERS = {"dict": dict, "list": list, "tuple": tuple}
_KEY_TYPES = {"str": str, "int": int}


class ContainerMaterializer:
    """dicts, lists and tuples whose elements other materializers handle, stored element by element.

    A step returning ``{"train": frame, "test": frame}`` gets two Parquet files and a manifest
    instead of one pickle, so the output reloads without ``trust=True``. The metadata lists each
    element's key (str or int, with its type) and folder; each element folder is a complete
    :func:`save_output` folder of its own, so containers nest.
    """

    name = "container"

    def can_handle(self, obj: Any) -> bool:
        return self._handles(obj, 0)

    def _handles(self, obj: Any, depth: int) -> bool:
        kind = type(obj)
        if kind not in (dict, list, tuple) or depth > _MAX_DEPTH:
            return False
        if kind is dict and not all(type(key) in (str, int) for key in obj):
            return False
        for value in obj.values() if kind is dict else obj:
            if type(value) in (dict, list, tuple) and not _is_json_value(value):
                if not self._handles(value, depth + 1):
                    return False
            elif materializer_for(value, allow_pickle=False) is None:
                return False
        return True

    def save(self, obj: Any, folder: Path) -> dict[str, Any]:
        pairs = list(obj.items()) if type(obj) is dict else list(enumerate(obj))
        items: list[dict[str, Any]] = []
        for index, (key, value) in enumerate(pairs):
            relative = f"items/{index}"
            saved = save_output(value, folder / relative, output=f"[{key!r}]", allow_pickle=False)
            entry = {"path": relative, "materializer": saved["materializer"]}
            if type(obj) is dict:
                entry.update(key=key, key_type=type(key).__name__)
            items.append(entry)
        return {"kind": type(obj).__name__, "items": items}

    def load(self, folder: Path, metadata: dict[str, Any]) -> Any:
        kind = _CONTAINERS.get(str(metadata.get("kind")))
        if kind is None:
            raise InvalidInputError(f"the container in {folder} has an unknown kind {metadata.get('kind')!r}")
        values: list[tuple[Any, Any]] = []
        for entry in metadata.get("items", []):
            element = safe_destination(folder, str(entry["path"]))  # stays inside the folder
            value = load_output(element)  # elements are never pickles: no trust passed down
            key = _KEY_TYPES[str(entry["key_type"])](entry["key"]) if kind is dict else None
            values.append((key, value))
        if kind is dict:
            return dict(values)
        return kind(value for _, value in values)


class PickleMaterializer:
    """The last resort: cloudpickle. Saving is allowed; loading runs code, so it needs trust."""

    name = "pickle"

    def can_handle(self, obj: Any) -> bool:
        return True

    def save(self, obj: Any, folder: Path) -> dict[str, Any]:
        try:
            import cloudpickle
        except ImportError:
            raise MissingDependencyError("cloudpickle", "pickle", "Pickling a step output") from None
        with open(folder / "value.pkl", "wb") as handle:
            cloudpickle.dump(obj, handle)
        return {"pickle": True}

    def load(self, folder: Path, metadata: dict[str, Any]) -> Any:
        import pickle

        with open(folder / "value.pkl", "rb") as handle:
            return pickle.load(handle)


_JSON = JsonMaterializer()
_BUILTIN: list[Materializer] = [
    NumpyMaterializer(),
    TableMaterializer(),
    _JSON,
    ModelMaterializer(),
    ContainerMaterializer(),
]
_PICKLE = PickleMaterializer()
_USER: list[Materializer] = []


def register_materializer(materializer: Materializer) -> None:
    """Put ``materializer`` ahead of all others (the last registered is asked first)."""
    if not isinstance(materializer, Materializer):
        raise InvalidInputError(
            f"{materializer!r} is not a materializer: it needs name, can_handle, save and load"
        )
    _USER.insert(0, materializer)


def unregister_materializer(name: str) -> None:
    """Remove user materializers called ``name`` (handy in tests)."""
    _USER[:] = [m for m in _USER if m.name != name]


def _all() -> list[Materializer]:
    return [*_USER, *_BUILTIN, _PICKLE]


def materializer_for(obj: Any, *, allow_pickle: bool = True) -> Materializer | None:
    """The first materializer that handles ``obj``; pickle only when nothing else does."""
    for materializer in [*_USER, *_BUILTIN]:
        if materializer.can_handle(obj):
            return materializer
    return _PICKLE if allow_pickle else None


def save_output(
    obj: Any,
    folder: str | os.PathLike[str],
    *,
    node: str = "?",
    output: str = "output",
    allow_pickle: bool = True,
) -> dict[str, Any]:
    """Write ``obj`` into the empty folder ``folder`` with its metadata; return the metadata.

    Raises :class:`~keel.pipelines.errors.NoMaterializerError` naming the step output and the type
    when no materializer takes it (and pickling is refused or fails).
    """
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    chosen = materializer_for(obj, allow_pickle=allow_pickle)
    error = ""
    if chosen is not None:
        try:
            metadata = dict(chosen.save(obj, path))
        except MissingDependencyError:
            raise
        except Exception as exc:
            if chosen is not _PICKLE:
                raise
            error = f" cloudpickle failed: {exc}."
        else:
            metadata.update(materializer=chosen.name, type=_type_name(obj))
            (path / METADATA_NAME).write_text(json.dumps(metadata, sort_keys=True, allow_nan=True))
            return metadata
    raise NoMaterializerError(
        f"output `{output}` of step `{node}` is a {_type_name(obj)}, which no materializer handles.{error} "
        "Return a supported type (numpy array, DataFrame, JSON value, model) or register one with "
        "keel.pipelines.register_materializer(obj) where obj has name, can_handle, save and load.",
        node=node,
        output=output,
        type_name=_type_name(obj),
    )


def encode_small_output(obj: Any, limit: int) -> dict[str, bytes] | None:
    """The files :func:`save_output` would write for a JSON value, built in memory (no folder), or
    None when ``obj`` goes to another materializer or its encoding is over ``limit`` bytes."""
    if type(obj) not in _JSON_SCALARS and type(obj) not in (list, dict):
        return None
    if materializer_for(obj, allow_pickle=False) is not _JSON:
        return None
    value = json.dumps(obj, allow_nan=True).encode("utf-8")
    if len(value) > limit:
        return None
    metadata = {"materializer": _JSON.name, "type": _type_name(obj)}
    return {
        "value.json": value,
        METADATA_NAME: json.dumps(metadata, sort_keys=True, allow_nan=True).encode("utf-8"),
    }


def load_output(folder: str | os.PathLike[str], *, trust: bool = False) -> Any:
    """Read back what :func:`save_output` wrote; pickled outputs need ``trust=True``."""
    path = Path(folder)
    metadata = json.loads((path / METADATA_NAME).read_text())
    name = metadata.get("materializer")
    if metadata.get("pickle") and not trust:
        raise TrustError(
            f"the output in {path} is a pickle (a {metadata.get('type')}); unpickling runs whatever code "
            "it holds. Pass trust=True only for outputs your own pipeline stored."
        )
    for materializer in _all():
        if materializer.name == name:
            return materializer.load(path, metadata)
    raise InvalidInputError(
        f"the output in {path} was written by materializer {name!r}, which is not registered here; "
        "register it before loading."
    )


def hash_folder(folder: str | os.PathLike[str]) -> str:
    """sha256 over the sorted relative paths and contents of every file under ``folder``."""
    root = Path(folder)
    digest = hashlib.sha256()
    files = sorted(p for p in root.rglob("*") if p.is_file())
    for file in files:
        inner = hashlib.sha256()
        with open(file, "rb") as handle:
            while block := handle.read(1 << 20):
                inner.update(block)
        digest.update(f"{file.relative_to(root).as_posix()}\0{inner.hexdigest()}\n".encode())
    return digest.hexdigest()
