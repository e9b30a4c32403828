"""Artifact bytes over HTTP, addressed only by sha256.

``PUT /api/v1/artifacts/{sha256}`` streams the body into a temporary file while hashing it; only if
the bytes hash to the address are they stored (else 400 and nothing is kept). ``GET`` streams a
blob the server has verified against its hash; ``HEAD`` says whether a blob exists. No route takes
a name, a path or a URI for storage: where bytes live is server configuration.
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

from keel.errors import InvalidInputError
from keel.server.downloads import download_headers
from keel.server.limits import KeelRoute
from keel.server.policy import get_artifacts, require

__all__ = ["check_blob", "router"]

router = APIRouter(tags=["artifacts"], route_class=KeelRoute)
SHA256 = Path(pattern="^[0-9a-f]{64}$", description="the blob's sha256 in lowercase hex")


def check_blob(request: Request, sha256: str, size: int | None = None) -> None:
    """Refuse a record that points at bytes the server does not hold (or with a wrong size)."""
    actual = get_artifacts(request).size(sha256)
    if actual is None:
        raise InvalidInputError(
            f"artifact blob {sha256} is not on the server; upload it first (PUT /api/v1/artifacts/{sha256})"
        )
    if size is not None and size != actual:
        raise InvalidInputError(f"artifact blob {sha256} holds {actual} bytes, not {size}")


@router.head("/artifacts/{sha256}", dependencies=[require("read")])
def blob_exists(request: Request, sha256: str = SHA256) -> Response:
    if not get_artifacts(request).exists(sha256):
        return Response(status_code=404)
    return Response(status_code=200)


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
    """Store the request body under its sha256; the address must match the bytes."""
    artifacts = get_artifacts(request)
    if await run_in_threadpool(artifacts.exists, sha256):
        async for _ in request.stream():  # drain; the bytes are already here
            pass
        return {"sha256": sha256, "stored": False}
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
        stored_sha, _ = await run_in_threadpool(
            lambda: artifacts.put_file(tmp, move=artifacts.scratch is not None)
        )
        if stored_sha != sha256:  # the file changed under us: never store under a wrong name
            raise InvalidInputError("the upload changed while it was stored; send it again")
    finally:
        FilePath(tmp).unlink(missing_ok=True)
    request.scope["keel.audit"] = {"sha256": sha256, "size": size}
    return {"sha256": sha256, "stored": True, "size": size}


@router.get(
    "/artifacts/{sha256}",
    dependencies=[require("read")],
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def download_blob(request: Request, sha256: str = SHA256) -> FileResponse:
    """The blob's bytes, verified against the hash before they are sent."""
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
