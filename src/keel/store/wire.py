"""keel's records as JSON and back: the wire format of ``keel server``'s native API and ``RestStore``.

Records travel as objects with the dataclass field names. Floats keep NaN and ±Infinity (the JSON
text carries ``NaN``/``Infinity``). Packed metric arrays (chunks, histories) travel as base64 of
their little-endian bytes, so millions of points cost one string each instead of a million numbers;
plain JSON number arrays are accepted too, for clients that are not keel.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
from array import array
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from keel import entities as e
from keel.errors import InvalidInputError, LimitExceededError
from keel.store.metrics import Chunk

__all__ = [
    "MAX_BATCH_POINTS",
    "chunk_from_json",
    "chunk_to_json",
    "history_from_json",
    "history_to_json",
    "record_from_json",
    "to_json",
]

T = TypeVar("T")

#: points one ingest request may carry (the client writer sends at most this many per batch)
MAX_BATCH_POINTS = 200_000


def to_json(value: Any) -> Any:
    """A record (or a structure of them) as JSON-ready Python values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


def _fields(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def record_from_json(cls: type[T], data: Mapping[str, Any]) -> T:
    """Rebuild a record of class ``cls`` from :func:`to_json`'s output."""
    values = _fields(cls, data)
    if cls is e.Run:
        values["status"] = e.RunStatus(values["status"])
        values["metrics"] = {k: e.Metric(**_fields(e.Metric, m)) for k, m in values["metrics"].items()}
    elif cls is e.ModelVersion:
        values["aliases"] = tuple(values.get("aliases", ()))
    elif cls is e.PipelineRun:
        values["steps"] = tuple(record_from_json(e.StepRun, s) for s in values.get("steps", ()))
    elif cls is e.DatasetUse:
        values["dataset"] = record_from_json(e.Dataset, values["dataset"])
    elif cls is e.RegisteredModel:
        values["aliases"] = {k: int(v) for k, v in values["aliases"].items()}
    return cls(**values)


# -- packed arrays ---------------------------------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unpack(value: Any, code: str, what: str) -> bytes:
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except ValueError:
            raise InvalidInputError(f"{what} is not valid base64") from None
    if isinstance(value, list):
        try:
            packed = array(code, value)
        except (TypeError, OverflowError):
            kind = "integers" if code == "q" else "numbers"
            raise InvalidInputError(f"{what} must be a list of {kind}") from None
        import sys

        if sys.byteorder != "little":  # pragma: no cover
            packed.byteswap()
        return packed.tobytes()
    raise InvalidInputError(f"{what} must be base64 text or a list of numbers")


def chunk_to_json(chunk: Chunk) -> dict[str, Any]:
    return {
        "key": chunk.key,
        "count": chunk.count,
        "steps": _b64(chunk.steps),
        "timestamps": _b64(chunk.timestamps),
        "values": _b64(chunk.values),
    }


def chunk_from_json(data: Any) -> Chunk:
    """A chunk from JSON, checked: arrays of equal length, under the batch limit, no bad bytes."""
    if not isinstance(data, Mapping):
        raise InvalidInputError("each chunk must be an object with key, steps, timestamps and values")
    key = data.get("key")
    if not isinstance(key, str):
        raise InvalidInputError("a chunk needs a string 'key' (the metric name)")
    steps = _unpack(data.get("steps"), "q", f"chunk {key!r} steps")
    stamps = _unpack(data.get("timestamps"), "q", f"chunk {key!r} timestamps")
    values = _unpack(data.get("values"), "d", f"chunk {key!r} values")
    count = len(values) // 8
    if len(values) % 8 or len(steps) != len(values) or len(stamps) != len(values):
        raise InvalidInputError(
            f"chunk {key!r}: steps, timestamps and values must hold the same number of 8-byte items"
        )
    if "count" in data and data["count"] != count:
        raise InvalidInputError(f"chunk {key!r} says it holds {data['count']} points but carries {count}")
    if count == 0:
        raise InvalidInputError(f"chunk {key!r} is empty")
    if count > MAX_BATCH_POINTS:
        raise LimitExceededError(
            f"chunk {key!r} holds {count:,} points; a batch holds at most {MAX_BATCH_POINTS:,}",
            limit=MAX_BATCH_POINTS,
            actual=count,
            what="points per batch",
        )
    import numpy as np

    step_array = np.frombuffer(steps, dtype="<i8")
    return Chunk(key, steps, stamps, values, count, int(step_array.min()), int(step_array.max()))


def chunks_from_json(items: Any) -> list[Chunk]:
    if not isinstance(items, Sequence) or isinstance(items, str) or not items:
        raise InvalidInputError("'chunks' must be a non-empty list of chunks")
    chunks = [chunk_from_json(item) for item in items]
    total = sum(c.count for c in chunks)
    if total > MAX_BATCH_POINTS:
        raise LimitExceededError(
            f"the batch holds {total:,} points; the limit is {MAX_BATCH_POINTS:,} per request",
            limit=MAX_BATCH_POINTS,
            actual=total,
            what="points per batch",
        )
    return chunks


def history_to_json(history: e.MetricHistory, encoding: str = "json") -> dict[str, Any]:
    if encoding == "base64":
        return {
            "key": history.key,
            "encoding": "base64",
            "steps": _b64(history.steps.astype("<i8").tobytes()),
            "timestamps": _b64(history.timestamps.astype("<i8").tobytes()),
            "values": _b64(history.values.astype("<f8").tobytes()),
        }
    return {
        "key": history.key,
        "encoding": "json",
        "steps": history.steps.tolist(),
        "timestamps": history.timestamps.tolist(),
        "values": history.values.tolist(),
    }


def history_from_json(data: Mapping[str, Any]) -> e.MetricHistory:
    import numpy as np

    if data.get("encoding") == "base64":
        return e.MetricHistory(
            data["key"],
            np.frombuffer(base64.b64decode(data["steps"]), dtype="<i8"),
            np.frombuffer(base64.b64decode(data["timestamps"]), dtype="<i8"),
            np.frombuffer(base64.b64decode(data["values"]), dtype="<f8"),
        )
    return e.MetricHistory(
        data["key"],
        np.asarray(data["steps"], dtype="<i8"),
        np.asarray(data["timestamps"], dtype="<i8"),
        np.asarray(data["values"], dtype="<f8"),
    )
