"""MLflow's proxied artifact routes (``/api/2.0/mlflow-artifacts/artifacts/...``) over keel's
content-addressed artifact store, and ``/api/2.0/mlflow/artifacts/list``.

MLflow's client addresses artifacts by a path under the URI the server gave it. keel hands out
only two kinds of root, so every path is one of::

    runs/RUN_ID/NAME            artifact NAME of run RUN_ID
    models/m-RUN_ID/NAME        file NAME of an MLflow 3 logged model (stored as a keel run)

``NAME`` is checked by :func:`keel.artifacts.names.check_artifact_name` and recorded as metadata;
the bytes are stored under their sha256 in the server's artifact store, so no client ever picks a
storage location. Anything else is refused with 400.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from fastapi import APIRouter, Request
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, Response

from keel.artifacts.names import check_artifact_name, media_type
from keel.entities import Artifact
from keel.errors import InvalidInputError, KeelError, NotFoundError
from keel.ids import check_run_id
from keel.server.downloads import download_headers, served_media_type
from keel.server.limits import KeelJSONResponse
from keel.server.mlflow._common import Context, Payload, endpoint, mlflow_error
from keel.server.policy import NAMED, project_of_run, request_value, require

__all__ = ["artifacts_router", "list_children", "parse_path", "router"]

#: the artifacts routes under /api/2.0/mlflow-artifacts
artifacts_router = APIRouter()
#: /api/2.0/mlflow/artifacts/list (under the main MLflow router)
router = APIRouter()

#: files up to this size are answered from memory; larger ones are streamed from a verified copy
_IN_MEMORY = 8 << 20
_MODEL_PREFIX = "m-"


def parse_path(path: str) -> tuple[str, str]:
    """(keel run id, artifact name or '' for the root) for an MLflow artifact path."""
    kind, _, rest = path.strip("/").partition("/")
    owner, _, name = rest.partition("/")
    if kind == "models" and owner.startswith(_MODEL_PREFIX):
        owner = owner[len(_MODEL_PREFIX) :]
    elif kind != "runs":
        raise InvalidInputError(
            f"artifact path {path!r} is not under runs/RUN_ID/ or models/MODEL_ID/, the only "
            "artifact roots this server hands out"
        )
    check_run_id(owner)
    return owner, check_artifact_name(name) if name else ""


def _project_of_path(request: Request) -> str | None:
    """Policy resolver: the project of the run whose files the route serves, the run named in the
    artifact path itself (any ``run_id`` in the query is ignored: the route never uses it)."""
    if "artifact_path" in request.path_params:
        path = request.path_params["artifact_path"]
    else:
        path = request_value(request, "path")
    try:
        run_id, _ = parse_path(str(path or ""))
    except KeelError:
        return None
    request.scope[NAMED] = (
        f"no run {run_id}; `keel runs list` shows the runs"  # another project's run reads as missing
    )
    return request.app.state.projects.of_run(run_id)  # type: ignore[no-any-return]


def list_children(artifacts: list[Artifact], prefix: str) -> list[dict[str, Any]]:
    """The direct children of folder ``prefix`` ('' for the root): files with sizes, then folders."""
    files: dict[str, int] = {}
    folders: set[str] = set()
    start = len(prefix) + 1 if prefix else 0
    for artifact in artifacts:
        if prefix and not artifact.name.startswith(prefix + "/"):
            continue
        head, slash, _ = artifact.name[start:].partition("/")
        if slash:
            folders.add(head)
        else:
            files[head] = artifact.size
    entries = [{"path": name, "is_dir": False, "file_size": size} for name, size in files.items()]
    entries += [{"path": name, "is_dir": True} for name in folders]
    return sorted(entries, key=lambda entry: str(entry["path"]))


def find_artifact(store: Any, run_id: str, name: str) -> Artifact:
    for artifact in store.list_artifacts(run_id, prefix=name):
        if artifact.name == name:
            return artifact  # type: ignore[no-any-return]
    raise NotFoundError(f"run {run_id} has no artifact {name!r}")


# -- /api/2.0/mlflow-artifacts ------------------------------------------------------------------
async def upload_artifact(request: Request, artifact_path: str) -> Response:
    """Stream the body to a temporary file, store it by content hash, record it on the run."""
    ctx = Context.of(request)
    try:
        run_id, name = parse_path(artifact_path)
        if not name:
            raise InvalidInputError("an upload names a file: runs/RUN_ID/NAME")
        fd, tmp = tempfile.mkstemp(prefix="keel-upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in request.stream():
                    out.write(chunk)

            def store() -> None:
                ctx.store.get_run(run_id)  # a missing run is a 404 before any bytes are kept
                sha, size = ctx.artifacts.put_file(tmp)
                ctx.store.record_artifact(run_id, name, sha, size, media_type(name))

            await run_in_threadpool(store)
        finally:
            os.unlink(tmp)
    except KeelError as exc:
        return mlflow_error(exc, request)
    return KeelJSONResponse({})


def download_artifact(request: Request, artifact_path: str) -> Response:
    ctx = Context.of(request)
    try:
        run_id, name = parse_path(artifact_path)
        if not name:
            raise InvalidInputError("a download names a file: runs/RUN_ID/NAME")
        artifact = find_artifact(ctx.store, run_id, name)
        media, headers = served_media_type(artifact.media_type), download_headers(name)
        if artifact.size <= _IN_MEMORY:
            return Response(ctx.artifacts.read_bytes(artifact.sha256), media_type=media, headers=headers)
        fd, tmp = tempfile.mkstemp(prefix="keel-download-")
        os.close(fd)
        try:
            ctx.artifacts.download(artifact.sha256, tmp)  # verified against the hash first
        except BaseException:
            os.unlink(tmp)
            raise
        return FileResponse(tmp, media_type=media, headers=headers, background=BackgroundTask(os.unlink, tmp))
    except KeelError as exc:
        return mlflow_error(exc, request)


def list_artifacts_mlflow_artifacts(request: Request) -> Response:
    ctx = Context.of(request)
    try:
        run_id, prefix = parse_path(str(request_value(request, "path") or ""))
        return KeelJSONResponse(
            {"files": list_children(ctx.store.list_artifacts(run_id, prefix=prefix), prefix)}
        )
    except KeelError as exc:
        return mlflow_error(exc, request)


artifacts_router.add_api_route(
    "/artifacts/{artifact_path:path}",
    upload_artifact,
    methods=["PUT"],
    dependencies=[require("write", _project_of_path)],
    include_in_schema=False,
    name="mlflow.upload_artifact",
)
artifacts_router.add_api_route(
    "/artifacts/{artifact_path:path}",
    download_artifact,
    methods=["GET"],
    dependencies=[require("read", _project_of_path)],
    include_in_schema=False,
    name="mlflow.download_artifact",
)
artifacts_router.add_api_route(
    "/artifacts",
    list_artifacts_mlflow_artifacts,
    methods=["GET"],
    dependencies=[require("read", _project_of_path)],
    include_in_schema=False,
    name="mlflow.list_artifacts_mlflow_artifacts",
)


# -- /api/2.0/mlflow/artifacts/list -------------------------------------------------------------
@endpoint(router, "GET", "/artifacts/list", "read", project_of_run("run_id", "run_uuid"))
def list_artifacts(ctx: Context, p: Payload) -> dict[str, Any]:
    run_id = check_run_id(request_value(ctx.request, "run_id", "run_uuid") or "")
    prefix = p.text("path") or ""
    if prefix:
        check_artifact_name(prefix.strip("/"))
        prefix = prefix.strip("/")
    children = list_children(ctx.store.list_artifacts(run_id, prefix=prefix), prefix)
    for child in children:
        child["path"] = f"{prefix}/{child['path']}" if prefix else child["path"]
    return {"root_uri": f"mlflow-artifacts:/runs/{run_id}", "files": children}
