"""Artifact bytes over HTTP, addressed only by sha256.

``PUT /api/v1/artifacts/{sha256}`` streams the body into a temporary file while hashing it; only if
the bytes hash to the address are they stored (else 400 and nothing is kept). ``GET`` streams a
blob the server has verified against its hash; ``HEAD`` says whether the caller may read it. No
route takes a name, a path or a URI for storage: where bytes live is server configuration.

A hash is not a key: ``GET``/``HEAD`` serve only blobs the caller may read
(:mod:`keel.server.blob_access`), with one 404 for "not here" and "not yours", and ``PUT`` hashes
and answers alike whether or not the server held the bytes before, so no route tells a caller
whether another project holds some bytes.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path as FilePath
from typing import Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import FileResponse, Response
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from keel.errors import InvalidInputError, NotFoundError
from keel.server.blob_access import UPLOAD_ACTION, may_use_blob
from keel.server.downloads import download_headers
from keel.server.limits import KeelRoute
from keel.server.policy import get_artifacts, require

__all__ = ["check_blob", "router"]

router = APIRouter(tags=["artifacts"], route_class=KeelRoute)
SHA256 = Path(pattern="^[0-9a-f]{64}$", description="the blob's sha256 in lowercase hex")


def check_blob(request: Request, sha256: str, size: int | None = None) -> None:
    """Refuse a record that points at bytes the server does not hold (or with a wrong size), or
    that the caller may not read and did not upload: naming another project's blob by its hash
    would open it to the caller, so that is answered like a missing blob."""
    actual = get_artifacts(request).size(sha256) if may_use_blob(request, sha256) else None
    if actual is None:
        raise InvalidInputError(
            f"artifact blob {sha256} is not on the server; upload it first (PUT /api/v1/artifacts/{sha256})"
        )
    if size is not None and size != actual:
        raise InvalidInputError(f"artifact blob {sha256} holds {actual} bytes, not {size}")


@router.head("/artifacts/{sha256}", dependencies=[require("read")])
def blob_exists(request: Request, sha256: str = SHA256) -> Response:
    """200 when the caller may read the blob; 404 when it is missing or not the caller's."""
    return Response(status_code=200 if may_use_blob(request, sha256) else 404)


@router.put(
    "/artifacts/{sha256}",
    dependencies=[require("write")],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def upload_blob(request: Request, sha256: str = SHA256) -> dict[str, Any]:
    """Store the request body under its sha256; the address must match the bytes.

    The bytes are hashed even when the server holds the blob already, and the answer is the same
    either way: a caller learns nothing about other projects' blobs, and a successful upload (in
    the audit log) shows that the caller holds the bytes, which lets it name them in its records."""
    artifacts = get_artifacts(request)
    fd, tmp = tempfile.mkstemp(prefix="keel-upload-", dir=artifacts.scratch)
    digest, size = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as out:
            async for block in request.stream():
                digest.update(block)
                out.write(block)
                size += len(block)
        actual = digest.hexdigest()
        if actual != sha256:
            raise InvalidInputError(
                f"the uploaded bytes hash to {actual}, not to the address {sha256}; nothing was stored"
            )
        if not await run_in_threadpool(artifacts.exists, sha256):
            stored_sha, _ = await run_in_threadpool(
                lambda: artifacts.put_file(tmp, move=artifacts.scratch is not None)
            )
            if stored_sha != sha256:  # the file changed under us: never store under a wrong name
                raise InvalidInputError("the upload changed while it was stored; send it again")
    finally:
        FilePath(tmp).unlink(missing_ok=True)
    request.scope["keel.action"] = UPLOAD_ACTION
    request.scope["keel.target"] = sha256
    request.scope["keel.audit"] = {"size": size}
    return {"sha256": sha256, "size": size}


@router.get(
    "/artifacts/{sha256}",
    dependencies=[require("read")],
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def download_blob(request: Request, sha256: str = SHA256) -> FileResponse:
    """The blob's bytes, verified against the hash before they are sent (404 unless the caller may
    read the blob)."""
    if not may_use_blob(request, sha256):
        raise NotFoundError(f"no artifact blob {sha256} on this server")
    artifacts = get_artifacts(request)
    fd, tmp = tempfile.mkstemp(prefix="keel-download-")
    os.close(fd)
    try:
        artifacts.download(sha256, tmp)
    except BaseException:
        FilePath(tmp).unlink(missing_ok=True)
        raise
    return FileResponse(
        tmp,
        media_type="application/octet-stream",
        headers={"X-Keel-Sha256": sha256, **download_headers(sha256)},
        background=BackgroundTask(FilePath(tmp).unlink, missing_ok=True),
    )
