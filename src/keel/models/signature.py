"""Model signatures: the names, dtypes and shapes a model takes and returns.

A signature is plain JSON so it can live in the manifest and the registry::

    {"inputs": [{"name": "age", "dtype": "int64", "shape": [-1]}, ...],
     "outputs": [{"name": None, "dtype": "float64", "shape": [-1]}] or None}

The first dimension of every tensor is the batch and is written ``-1``. Inference never imports a
library that is not already imported: pandas frames are recognised through ``sys.modules``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any

import numpy as np

from keel.errors import InvalidInputError

__all__ = ["head", "infer_signature", "validate_signature"]

TensorSpec = dict[str, Any]
_BATCH = -1


def _dtype_name(dtype: Any) -> str:
    if isinstance(dtype, np.dtype):
        if dtype.kind == "U":
            return "str"
        if dtype.kind == "S":
            return "bytes"
        return dtype.name
    # pandas extension dtypes, torch dtypes ("torch.float32") and the like
    return str(dtype).removeprefix("torch.")


def _tensor_spec(name: str | None, value: Any) -> TensorSpec:
    if not isinstance(value, np.ndarray) and hasattr(value, "shape") and hasattr(value, "dtype"):
        # scipy sparse matrices, torch tensors, pandas Series: read the attributes, copy nothing
        shape = [int(size) for size in value.shape]
        dtype = value.dtype
    else:
        try:
            array = np.asarray(value)
        except ValueError as exc:  # ragged nested lists
            raise InvalidInputError(
                f"Cannot infer a signature from {type(value).__name__} {name or ''}: {exc}. "
                "Pass a numpy array, a DataFrame or a dict of equal-length arrays."
            ) from exc
        shape, dtype = list(array.shape), array.dtype
    if shape:
        shape[0] = _BATCH
    return {"name": name, "dtype": _dtype_name(dtype), "shape": shape}


def _is_instance_of(value: Any, module: str, class_name: str) -> bool:
    loaded = sys.modules.get(module)
    cls = getattr(loaded, class_name, None) if loaded is not None else None
    return isinstance(cls, type) and isinstance(value, cls)


def _specs(value: Any) -> list[TensorSpec]:
    if _is_instance_of(value, "pandas", "DataFrame"):
        return [
            {"name": str(column), "dtype": _dtype_name(dtype), "shape": [_BATCH]}
            for column, dtype in value.dtypes.items()
        ]
    if _is_instance_of(value, "pandas", "Series"):
        name = None if value.name is None else str(value.name)
        return [{"name": name, "dtype": _dtype_name(value.dtype), "shape": [_BATCH]}]
    if isinstance(value, Mapping):
        return [_tensor_spec(str(key), item) for key, item in value.items()]
    if isinstance(value, np.ndarray | list | tuple | int | float | complex | bool | str | bytes):
        return [_tensor_spec(None, value)]
    if isinstance(value, np.generic) or hasattr(value, "__array__"):
        return [_tensor_spec(None, value)]
    raise InvalidInputError(
        f"Cannot infer a signature from a {type(value).__module__}.{type(value).__qualname__}. "
        "Pass a numpy array, a pandas DataFrame, a dict of arrays or a list, or give "
        "signature= explicitly."
    )


def infer_signature(model_input: Any, model_output: Any = None) -> dict[str, Any]:
    """Describe the names, dtypes and shapes of a model's input and (optionally) output.

    A numpy array (or list, converted through numpy) gives one unnamed tensor whose first dimension,
    the batch, is ``-1``; a pandas DataFrame gives one spec per column with shape ``[-1]``; a dict
    of arrays gives one named spec per key. ``outputs`` is ``None`` when no output is given.

    Example::

        >>> infer_signature(np.zeros((8, 3), dtype="float32"))
        {'inputs': [{'name': None, 'dtype': 'float32', 'shape': [-1, 3]}], 'outputs': None}
    """
    return {
        "inputs": _specs(model_input),
        "outputs": None if model_output is None else _specs(model_output),
    }


def validate_signature(signature: Any) -> dict[str, Any]:
    """Check that a user-given signature has the documented shape and is JSON; return a copy."""
    if not isinstance(signature, Mapping) or not isinstance(signature.get("inputs"), list):
        raise InvalidInputError(
            "signature must be a dict with an 'inputs' list (and optionally 'outputs'), as "
            "infer_signature returns."
        )
    outputs = signature.get("outputs")
    if outputs is not None and not isinstance(outputs, list):
        raise InvalidInputError("signature['outputs'] must be a list of specs or None.")
    for spec in [*signature["inputs"], *(outputs or [])]:
        if not isinstance(spec, Mapping) or "dtype" not in spec:
            raise InvalidInputError(f"Each signature spec needs at least a 'dtype'; got {spec!r}.")
    try:
        return dict(json.loads(json.dumps(dict(signature))))
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"signature must be JSON-serialisable: {exc}") from exc


def head(example: Any, rows: int) -> Any:
    """Return the first ``rows`` rows of an input example (array, frame, list or dict of arrays)."""
    if isinstance(example, Mapping):
        return {key: value[:rows] for key, value in example.items()}
    if hasattr(example, "iloc"):
        return example.iloc[:rows]
    return example[:rows]
