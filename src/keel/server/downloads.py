"""The headers every response carrying artifact bytes is sent with.

Artifacts are whatever a client uploaded: an HTML report, an SVG, an XML file can hold scripts.
Served inline from the server's own origin, a browser holding the UI's session cookie would run
them with the user's rights (stored XSS). So every artifact download, on the native, the MLflow
and the UI routes alike, is

- an attachment with a safe file name (``Content-Disposition``), so browsers save it instead of
  rendering it;
- ``X-Content-Type-Options: nosniff``, so a browser never guesses an active type from the bytes;
- sandboxed by its Content-Security-Policy (:data:`DOWNLOAD_CSP`): even a document opened
  directly runs in an opaque origin, with no scripts, no requests and no framing;
- typed by a well-formed media type (a recorded type that is not one is sent as
  ``application/octet-stream``).

The UI shows reports inline, but only in a sandboxed frame and under its own sandbox policy
(``keel.server.ui.routes.ARTIFACT_CSP``); it builds its headers with :func:`download_headers` too.
"""

from __future__ import annotations

import re
import urllib.parse

__all__ = ["DOWNLOAD_CSP", "download_headers", "safe_filename", "served_media_type"]

#: an artifact opened directly: an opaque origin that may run nothing and load nothing
DOWNLOAD_CSP = "sandbox; default-src 'none'; frame-ancestors 'none'"
_TOKEN = r"[A-Za-z0-9!#$&^_.+-]{1,127}"
_MEDIA_TYPE = re.compile(rf"{_TOKEN}/{_TOKEN}")
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


def safe_filename(name: str) -> str:
    """The last segment of an artifact name as an ASCII file name: letters, digits, ``.``, ``_``
    and ``-`` only (never empty, never a dot file)."""
    last = name.rstrip("/").rsplit("/", 1)[-1]
    cleaned = _UNSAFE_FILENAME.sub("_", last).strip("._") or "artifact"
    return cleaned[:200]


def served_media_type(recorded: str | None) -> str:
    """The recorded media type if it is a plain ``type/subtype``, else ``application/octet-stream``
    (a client records the type; it must not smuggle parameters or header text into the answer)."""
    media = (recorded or "").split(";", 1)[0].strip()
    return media if _MEDIA_TYPE.fullmatch(media) else "application/octet-stream"


def download_headers(name: str, *, inline: bool = False, csp: str = DOWNLOAD_CSP) -> dict[str, str]:
    """Headers for the bytes of artifact ``name``: an attachment (``inline`` only for the UI's
    sandboxed previews), nosniff and a sandbox Content-Security-Policy."""
    last = name.rstrip("/").rsplit("/", 1)[-1] or "artifact"
    disposition = "inline" if inline else "attachment"
    return {
        "Content-Disposition": (
            f'{disposition}; filename="{safe_filename(name)}"; '
            f"filename*=UTF-8''{urllib.parse.quote(last, safe='')}"
        ),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": csp,
    }
