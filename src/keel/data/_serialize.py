"""The serialized form of a profile: ``KEELPROF``, a uint16 format version, then zlib(JSON header + blobs).

The JSON header holds every exact statistic (NaN and infinities as JSON's NaN/Infinity, which Python
reads back); the blobs are the sketches' own binary forms (DataSketches KLL, frequent items and HLL;
keel's HyperLogLog registers), referenced from the header by index.
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

from keel.data.errors import ProfileFormatError
from keel.data.profiles import FORMAT_VERSION, MAGIC, ColumnProfile, Moments, Profile

__all__ = ["decode", "encode"]


def encode(profile: Profile) -> bytes:
    """``KEELPROF`` + format version (uint16) + zlib(JSON header + sketch blobs)."""
    blobs: list[bytes] = []

    def blob(data: bytes | None) -> int | None:
        if data is None:
            return None
        blobs.append(data)
        return len(blobs) - 1

    columns = []
    for c in profile.columns.values():
        distinct: bytes | None = None
        distinct_kind = None
        if c.distinct_sketch is not None:
            if hasattr(c.distinct_sketch, "serialize_compact"):
                distinct, distinct_kind = c.distinct_sketch.serialize_compact(), "ds-hll"
            else:
                distinct, distinct_kind = c.distinct_sketch.to_bytes(), "keel-hll"
        columns.append(
            {
                "name": c.name,
                "dtype": c.dtype,
                "kind": c.kind,
                "count": c.count,
                "null_count": c.null_count,
                "nan_count": c.nan_count,
                "posinf_count": c.posinf_count,
                "neginf_count": c.neginf_count,
                "unit": c.unit,
                "moments": c.moments.to_dict(),
                "lengths": c.lengths.to_dict() if c.lengths is not None else None,
                "text_min": c.text_min,
                "text_max": c.text_max,
                "patterns": c.patterns,
                "kll": blob(c.kll.serialize() if c.kll is not None else None),
                "frequent": blob(c.frequent.serialize() if c.frequent is not None else None),
                "distinct": blob(distinct),
                "distinct_kind": distinct_kind,
                "value_counts": c.value_counts,
                "monotonic": c.monotonic,
            }
        )
    header = {
        "format": FORMAT_VERSION,
        "name": profile.name,
        "fingerprint": profile.fingerprint,
        "metadata": profile.metadata,
        "blob_sizes": [len(b) for b in blobs],
        "columns": columns,
    }
    text = json.dumps(header, allow_nan=True, separators=(",", ":")).encode()
    body = struct.pack("<I", len(text)) + text + b"".join(blobs)
    return MAGIC + struct.pack("<H", FORMAT_VERSION) + zlib.compress(body, 6)


def decode(data: bytes, *, source: str = "profile") -> Profile:
    """Read :func:`encode` output; an incompatible or damaged profile raises ProfileFormatError."""
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 2:
        raise ProfileFormatError(
            f"{source} is not a keel profile (it does not start with {MAGIC.decode()}); create one with "
            "`keel data profile DATA -o FILE.kprof`",
            source=source,
        )
    (version,) = struct.unpack_from("<H", data, len(MAGIC))
    if version != FORMAT_VERSION:
        advice = (
            "upgrade keel (pip install -U keel-mlops) to read it"
            if version > FORMAT_VERSION
            else "re-create it from the reference data with `keel data profile DATA -o FILE`"
        )
        raise ProfileFormatError(
            f"{source} is a keel profile in format version {version}, but this keel reads version "
            f"{FORMAT_VERSION}; {advice}",
            source=source,
            version=version,
        )
    try:
        body = zlib.decompress(data[len(MAGIC) + 2 :])
        (size,) = struct.unpack_from("<I", body, 0)
        header = json.loads(body[4 : 4 + size])
        offset = 4 + size
        blobs = []
        for length in header["blob_sizes"]:
            blobs.append(body[offset : offset + length])
            offset += length
        if offset != len(body):
            raise ValueError("trailing or missing bytes")
        columns = [_column_from_dict(c, blobs) for c in header["columns"]]
    except ProfileFormatError:
        raise
    except Exception as exc:
        raise ProfileFormatError(
            f"{source} is a damaged keel profile ({type(exc).__name__}: {exc}); re-create it with "
            "`keel data profile`",
            source=source,
            version=version,
        ) from exc
    return Profile(
        columns, name=header["name"], fingerprint=header["fingerprint"], metadata=header["metadata"]
    )


def _column_from_dict(d: dict[str, Any], blobs: list[bytes]) -> ColumnProfile:
    import datasketches

    def get(key: str) -> bytes | None:
        index = d.get(key)
        return None if index is None else blobs[index]

    kll = get("kll")
    frequent = get("frequent")
    distinct = get("distinct")
    sketch: Any = None
    if distinct is not None:
        if d["distinct_kind"] == "keel-hll":
            from keel.data._hll import HyperLogLog

            sketch = HyperLogLog.from_bytes(distinct)
        else:
            sketch = datasketches.hll_sketch.deserialize(distinct)
    lengths = d.get("lengths")
    return ColumnProfile(
        name=d["name"],
        dtype=d["dtype"],
        kind=d["kind"],
        count=d["count"],
        null_count=d["null_count"],
        nan_count=d["nan_count"],
        posinf_count=d["posinf_count"],
        neginf_count=d["neginf_count"],
        unit=d["unit"],
        moments=Moments(**d["moments"]),
        lengths=Moments(**lengths) if lengths is not None else None,
        text_min=d["text_min"],
        text_max=d["text_max"],
        patterns=dict(d["patterns"]),
        kll=datasketches.kll_doubles_sketch.deserialize(kll) if kll is not None else None,
        frequent=datasketches.frequent_strings_sketch.deserialize(frequent) if frequent is not None else None,
        distinct_sketch=sketch,
        # absent from profiles written before they existed: the sketches answer, order unknown
        value_counts=dict(d["value_counts"]) if d.get("value_counts") is not None else None,
        monotonic=d.get("monotonic"),
    )
