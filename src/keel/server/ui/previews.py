"""What the artifacts browser shows of one artifact: an image, text, pretty JSON, a CSV table, or
an HTML report in a sandboxed frame. Previews read a bounded prefix and say when they stop early."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.entities import Artifact

__all__ = ["MAX_PREVIEWED_SIZE", "PREVIEW_BYTES", "PREVIEW_ROWS", "Preview", "kind_of", "preview"]

#: the most bytes read for a text, JSON or CSV preview
PREVIEW_BYTES = 512 * 1024
#: the most CSV rows shown
PREVIEW_ROWS = 200
#: text, JSON and CSV artifacts larger than this are not previewed
MAX_PREVIEWED_SIZE = 64 * 1024 * 1024

_IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp", "image/svg+xml", "image/bmp"}
_TEXT_SUFFIXES = (".txt", ".log", ".md", ".py", ".yaml", ".yml", ".toml", ".cfg", ".ini", ".sql", ".tsv")


@dataclasses.dataclass
class Preview:
    kind: str  # image | html | json | csv | text | binary
    text: str = ""
    header: list[str] = dataclasses.field(default_factory=list)
    rows: list[list[str]] = dataclasses.field(default_factory=list)
    #: why the preview is not the whole artifact ("" when it is)
    partial: str = ""


def kind_of(artifact: Artifact) -> str:
    media = artifact.media_type.split(";")[0].strip().lower()
    name = artifact.name.lower()
    if media in _IMAGE_TYPES:
        return "image"
    if media == "text/html" or name.endswith((".html", ".htm")):
        return "html"
    if media == "application/json" or name.endswith(".json"):
        return "json"
    if media == "text/csv" or name.endswith(".csv"):
        return "csv"
    if media.startswith("text/") or name.endswith(_TEXT_SUFFIXES):
        return "text"
    return "binary"


def preview(artifact: Artifact, read: Any) -> Preview:
    """The preview of ``artifact``; ``read(limit)`` returns up to ``limit`` bytes of its content."""
    kind = kind_of(artifact)
    if kind in {"image", "html", "binary"}:
        return Preview(kind)
    if artifact.size > MAX_PREVIEWED_SIZE:
        # the artifact store reads whole objects (to check their hash): do not pull gigabytes for a peek
        return Preview("binary", partial=f"{artifact.size:,} bytes is too large to preview here; download it")
    data: bytes = read(PREVIEW_BYTES)
    partial = ""
    if artifact.size > len(data):
        partial = f"showing the first {len(data):,} of {artifact.size:,} bytes; download it for the rest"
    text = data.decode("utf-8", errors="replace")
    if kind == "json" and not partial:
        try:
            return Preview("json", json.dumps(json.loads(text), indent=2, ensure_ascii=False))
        except ValueError:
            return Preview("text", text, partial="not valid JSON; shown as text")
    if kind == "csv":
        reader = csv.reader(io.StringIO(text))
        rows = []
        for row in reader:
            rows.append(row)
            if len(rows) > PREVIEW_ROWS:
                break
        header, body = (rows[0], rows[1:]) if rows else ([], [])
        if len(body) > PREVIEW_ROWS - 1:
            body = body[: PREVIEW_ROWS - 1]
            partial = f"showing the first {len(body):,} rows; download it for the rest"
        return Preview("csv", header=header, rows=body, partial=partial)
    return Preview("text", text, partial=partial)
