"""The native API, ``/api/v1``: everything keel's client does, one route per ``Store`` method.

Runs, params, tags, batched metric ingest (idempotent by batch id), metric history with
downsampling, search, experiments, registry, comments, lineage and pipeline records are here;
artifacts (streamed, addressed by sha256) are in :mod:`keel.server.api_artifacts` and users,
tokens, logins and the audit log in :mod:`keel.server.api_auth`. Each route is a few lines around
one store call; bodies and responses use :mod:`keel.store.wire`. The schema is served at
``/api/v1/openapi.json``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from keel import limits
from keel.artifacts.names import check_artifact_name
from keel.entities import StepRun
from keel.errors import InvalidInputError, LimitExceededError, NotFoundError
from keel.limits import MAX_NAME_LENGTH
from keel.server import api_artifacts, api_auth
from keel.server.limits import KeelRoute
from keel.server.policy import (
    NAMED,
    check_parent_run,
    checked_project,
    get_principal,
    get_store,
    project_of_experiment,
    project_of_run,
    project_param,
    public,
    readable_projects,
    require,
)
from keel.store.wire import chunks_from_json, history_to_json, record_from_json, to_json

__all__ = ["add_schema_route", "router"]

router = APIRouter(route_class=KeelRoute)
RUN = project_of_run("run_id")
EXPERIMENT = project_of_experiment("experiment_id")
PROJECT = project_param("project")
Json = dict[str, Any]
VERSION = Path(ge=1, lt=2**31)
#: points one history answer may carry (JSON numbers cost ~30 bytes of server memory each)
MAX_HISTORY_POINTS = {"json": 1_000_000, "base64": 50_000_000}
EXPERIMENT_ID = Path(pattern="^[0-9]{1,18}$", description="an experiment id (a whole number)")
ExperimentId = Annotated[str, Field(pattern="^[0-9]{1,18}$")]
SHA256 = Path(pattern="^[0-9a-f]{64}$", description="a sha256 in lowercase hex")


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _readable(request: Request, project: str) -> bool:
    return get_principal(request).allows("read", project)


# -- health ----------------------------------------------------------------------------------
@router.get("/health", dependencies=[public()], tags=["server"])
def health() -> Json:
    """Liveness: answers when the server is up (no store access)."""
    return {"status": "ok"}


# -- experiments -----------------------------------------------------------------------------
class ExperimentIn(Body):
    name: str = Field(max_length=MAX_NAME_LENGTH)
    project: str = Field("default", max_length=128)
    description: str | None = Field(None, max_length=65_536)
    tags: dict[str, str] | None = None


class Lifecycle(Body):
    lifecycle: Literal["active", "deleted"]


@router.post("/experiments", dependencies=[require("write", PROJECT)], tags=["experiments"])
def create_experiment(body: ExperimentIn, request: Request) -> Json:
    store = get_store(request)
    created = store.create_experiment(
        body.name, project=checked_project(request), description=body.description, tags=body.tags
    )
    return to_json(created)  # type: ignore[no-any-return]


@router.get("/experiments", dependencies=[require("read")], tags=["experiments"])
def list_experiments(
    request: Request, project: str | None = Query(None, max_length=128), include_deleted: bool = False
) -> list[Json]:
    found = get_store(request).list_experiments(project=project, include_deleted=include_deleted)
    return [to_json(x) for x in found if _readable(request, x.project)]


@router.get("/experiments/by-name", dependencies=[require("read", PROJECT)], tags=["experiments"])
def get_experiment_by_name(
    request: Request, name: str = Query(max_length=256), project: str = Query("default", max_length=128)
) -> Json | None:
    found = get_store(request).get_experiment_by_name(name, project=checked_project(request))
    return None if found is None else to_json(found)


@router.get("/experiments/{experiment_id}", dependencies=[require("read", EXPERIMENT)], tags=["experiments"])
def get_experiment(request: Request, experiment_id: str = EXPERIMENT_ID) -> Json:
    return to_json(get_store(request).get_experiment(experiment_id))  # type: ignore[no-any-return]


@router.put(
    "/experiments/{experiment_id}/lifecycle",
    dependencies=[require("write", EXPERIMENT)],
    tags=["experiments"],
)
def set_experiment_lifecycle(body: Lifecycle, request: Request, experiment_id: str = EXPERIMENT_ID) -> Json:
    get_store(request).set_experiment_lifecycle(experiment_id, body.lifecycle)
    return {}


@router.get(
    "/experiments/{experiment_id}/run-count", dependencies=[require("read", EXPERIMENT)], tags=["experiments"]
)
def count_runs(request: Request, experiment_id: str = EXPERIMENT_ID) -> Json:
    return {"count": get_store(request).count_runs(experiment_id)}


# -- runs ------------------------------------------------------------------------------------
class RunIn(Body):
    experiment_id: ExperimentId
    name: str = Field(max_length=MAX_NAME_LENGTH)
    user: str | None = Field(None, max_length=256)
    host: str | None = Field(None, max_length=256)
    pid: int | None = Field(None, ge=0, lt=2**63)
    start_time: int | None = Field(None, ge=0, lt=2**63)
    git_commit: str | None = Field(None, max_length=64)
    git_dirty: bool | None = None
    entry_point: str | None = Field(None, max_length=4096)
    parent_run_id: str | None = Field(None, max_length=32)
    heartbeat_interval: float | None = Field(None, gt=0, allow_inf_nan=False)
    tags: dict[str, str] | None = None
    run_id: str | None = Field(None, max_length=32)


class RunUpdate(Body):
    status: Literal["RUNNING", "FINISHED", "FAILED", "KILLED", "CRASHED"] | None = None
    end_time: int | None = Field(None, ge=0, lt=2**63)
    traceback: str | None = Field(None, max_length=1_000_000)
    name: str | None = Field(None, max_length=MAX_NAME_LENGTH)
    cost_usd: float | None = None
    cost_detail: dict[str, Any] | None = None


@router.post("/runs", dependencies=[require("write", EXPERIMENT)], tags=["runs"])
def create_run(body: RunIn, request: Request) -> Json:
    fields = body.model_dump(exclude={"experiment_id", "name"})
    if body.parent_run_id is not None:
        check_parent_run(request, body.parent_run_id, body.experiment_id)
    if fields["user"] is None:  # the OS user of the script when given; else who is logging
        fields["user"] = get_principal(request).name
    run = get_store(request).create_run(body.experiment_id, body.name, **fields)
    return to_json(run)  # type: ignore[no-any-return]


@router.get("/runs/{run_id}", dependencies=[require("read", RUN)], tags=["runs"])
def get_run(run_id: str, request: Request) -> Json:
    return to_json(get_store(request).get_run(run_id))  # type: ignore[no-any-return]


@router.patch("/runs/{run_id}", dependencies=[require("write", RUN)], tags=["runs"])
def update_run(run_id: str, body: RunUpdate, request: Request) -> Json:
    get_store(request).update_run(run_id, **body.model_dump(exclude_unset=True))
    return {}


@router.delete("/runs/{run_id}", dependencies=[require("admin", RUN)], tags=["runs"])
def delete_run_permanently(run_id: str, request: Request) -> Json:
    get_store(request).delete_run_permanently(run_id)
    return {}


@router.put("/runs/{run_id}/lifecycle", dependencies=[require("write", RUN)], tags=["runs"])
def set_run_lifecycle(run_id: str, body: Lifecycle, request: Request) -> Json:
    get_store(request).set_run_lifecycle(run_id, body.lifecycle)
    return {}


@router.post("/runs/{run_id}/heartbeat", dependencies=[require("write", RUN)], tags=["runs"])
def heartbeat(run_id: str, request: Request) -> Json:
    get_store(request).heartbeat(run_id)
    return {}


@router.post("/runs/mark-crashed", dependencies=[require("admin", "*")], tags=["runs"])
def mark_crashed_runs(request: Request) -> list[str]:
    return list(get_store(request).mark_crashed_runs())


class ParamsIn(Body):
    params: dict[str, Any]


class TagsIn(Body):
    tags: dict[str, Any]


@router.post("/runs/{run_id}/params", dependencies=[require("write", RUN)], tags=["runs"])
def log_params(run_id: str, body: ParamsIn, request: Request) -> Json:
    limits.check_count(len(body.params), limits.MAX_PARAMS_PER_REQUEST, "params", "MAX_PARAMS_PER_REQUEST")
    get_store(request).log_params(run_id, body.params)
    return {}


@router.post("/runs/{run_id}/tags", dependencies=[require("write", RUN)], tags=["runs"])
def set_tags(run_id: str, body: TagsIn, request: Request) -> Json:
    limits.check_count(len(body.tags), limits.MAX_TAGS_PER_REQUEST, "tags", "MAX_TAGS_PER_REQUEST")
    get_store(request).set_tags(run_id, body.tags)
    return {}


@router.delete("/runs/{run_id}/tags", dependencies=[require("write", RUN)], tags=["runs"])
def delete_tag(run_id: str, request: Request, key: str = Query(max_length=250)) -> Json:
    get_store(request).delete_tag(run_id, key)
    return {}


# -- metrics ---------------------------------------------------------------------------------
_BATCH_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["batch_id", "chunks"],
                    "properties": {
                        "batch_id": {"type": "string", "maxLength": 64},
                        "chunks": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["key", "steps", "timestamps", "values"],
                                "properties": {
                                    "key": {"type": "string"},
                                    "count": {"type": "integer"},
                                    "steps": {"description": "base64 of little-endian int64, or a list"},
                                    "timestamps": {"description": "base64 of little-endian int64, or a list"},
                                    "values": {"description": "base64 of little-endian float64, or a list"},
                                },
                            },
                        },
                    },
                }
            }
        },
    }
}


@router.post(
    "/runs/{run_id}/metrics/batches",
    dependencies=[require("write", RUN)],
    openapi_extra=_BATCH_SCHEMA,
    tags=["metrics"],
)
def write_metric_batch(run_id: str, request: Request) -> Json:
    """Write one batch of metric points. A batch id seen before is acknowledged and not written
    again, so a client that lost the answer can simply send the batch again."""
    body = request.scope.get("keel.json")
    if not isinstance(body, dict):
        raise InvalidInputError("send a JSON object with 'batch_id' and 'chunks'")
    batch_id = body.get("batch_id")
    if not isinstance(batch_id, str) or not 0 < len(batch_id) <= 64:
        raise InvalidInputError("'batch_id' must be a string of 1-64 characters (use a fresh uuid4 hex)")
    chunks = chunks_from_json(body.get("chunks"))
    written = get_store(request).write_metric_batch(batch_id, run_id, chunks)
    request.scope["keel.audit"] = {"batch_id": batch_id, "points": sum(c.count for c in chunks)}
    return {"written": bool(written)}


@router.get("/runs/{run_id}/metrics", dependencies=[require("read", RUN)], tags=["metrics"])
def list_metric_keys(run_id: str, request: Request) -> list[str]:
    return list(get_store(request).list_metric_keys(run_id))


@router.get("/runs/{run_id}/metrics/history", dependencies=[require("read", RUN)], tags=["metrics"])
def get_metric_history(
    run_id: str,
    request: Request,
    key: str = Query(max_length=250),
    max_points: int | None = Query(None, ge=1, le=10_000_000),
    encoding: Literal["json", "base64"] = "json",
) -> Json:
    history = get_store(request).get_metric_history(run_id, key, max_points=max_points)
    limit = MAX_HISTORY_POINTS[encoding]
    if len(history) > limit:
        raise LimitExceededError(
            f"metric {key!r} has {len(history):,} points; one answer holds at most {limit:,} with "
            f"encoding={encoding}. Ask for max_points={limit} (downsampled) or encoding=base64.",
            limit=limit,
            actual=len(history),
            what="history points per response",
        )
    return history_to_json(history, encoding)


# -- search ----------------------------------------------------------------------------------
class SearchIn(Body):
    experiment_ids: list[ExperimentId] | None = Field(None, max_length=10_000)
    filter_string: str | None = Field(None, max_length=65_536)
    order_by: list[str] | None = Field(None, max_length=100)
    max_results: int = Field(1000, ge=1, le=50_000)
    page_token: str | None = Field(None, max_length=4096)
    include_deleted: bool = False


@router.post("/runs/search", dependencies=[require("read")], tags=["runs"])
def search_runs(body: SearchIn, request: Request) -> Json:
    """Search runs of the given experiments (each must be one you may read: any other id is a 404,
    as for an experiment that does not exist); without experiments, every experiment of the
    projects you may read."""
    projects = request.app.state.projects
    principal = get_principal(request)
    experiment_ids = body.experiment_ids
    if experiment_ids is None:
        if not principal.allows("read", "*"):
            everything = get_store(request).list_experiments(include_deleted=True)
            experiment_ids = [x.experiment_id for x in everything if principal.allows("read", x.project)]
    else:  # one answer for an experiment of another project and one that does not exist
        for experiment_id in experiment_ids:
            project = projects.of_experiment(experiment_id)
            if project is None or not principal.allows("read", project):
                raise NotFoundError(f"no experiment with id {experiment_id!r}")
    page = get_store(request).search_runs(
        experiment_ids,
        body.filter_string,
        body.order_by,
        body.max_results,
        body.page_token,
        body.include_deleted,
    )
    return {"runs": [to_json(run) for run in page], "token": page.token}


# -- datasets, artifacts records and lineage -------------------------------------------------
class DatasetIn(Body):
    name: str = Field(max_length=256)
    fingerprint: str = Field(max_length=128)
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    row_count: int | None = Field(None, ge=0, lt=2**63)
    source: str | None = Field(None, max_length=4096)
    context: str = Field("training", max_length=64)
    profile_sha256: str | None = Field(None, pattern="^[0-9a-f]{64}$")


@router.post("/runs/{run_id}/datasets", dependencies=[require("write", RUN)], tags=["lineage"])
def log_dataset(run_id: str, body: DatasetIn, request: Request) -> Json:
    if body.profile_sha256 is not None:
        api_artifacts.check_blob(request, body.profile_sha256)
    dataset = get_store(request).log_dataset(
        run_id,
        name=body.name,
        fingerprint=body.fingerprint,
        schema=body.schema_,
        row_count=body.row_count,
        source=body.source,
        context=body.context,
        profile_sha256=body.profile_sha256,
    )
    return to_json(dataset)  # type: ignore[no-any-return]


@router.get("/runs/{run_id}/datasets", dependencies=[require("read", RUN)], tags=["lineage"])
def list_run_inputs(run_id: str, request: Request) -> list[Json]:
    return [to_json(d) for d in get_store(request).list_run_inputs(run_id)]


class ArtifactRecord(Body):
    name: str = Field(max_length=512)
    sha256: str = Field(pattern="^[0-9a-f]{64}$")
    size: int = Field(ge=0, lt=2**63)
    media_type: str = Field(max_length=256)


class ArtifactsIn(Body):
    artifacts: list[ArtifactRecord] = Field(min_length=1, max_length=100_000)


class InputItem(Body):
    sha256: str = Field(pattern="^[0-9a-f]{64}$")
    name: str = Field(max_length=512)


class InputsIn(Body):
    items: list[InputItem] = Field(min_length=1, max_length=100_000)


class RunIdsIn(Body):
    run_ids: list[Annotated[str, Field(max_length=32)]] = Field(max_length=100_000)


@router.post("/runs/{run_id}/artifacts", dependencies=[require("write", RUN)], tags=["artifacts"])
def record_artifacts(run_id: str, body: ArtifactsIn, request: Request) -> list[Json]:
    """Name uploaded blobs as outputs of a run. Each blob must already be on the server (its size
    is checked there); a name is metadata, never a storage path."""
    for item in body.artifacts:
        check_artifact_name(item.name)
        api_artifacts.check_blob(request, item.sha256, item.size)
    rows = [(a.name, a.sha256, a.size, a.media_type) for a in body.artifacts]
    return [to_json(a) for a in get_store(request).record_artifacts(run_id, rows)]


@router.get("/runs/{run_id}/artifacts", dependencies=[require("read", RUN)], tags=["artifacts"])
def list_artifacts(run_id: str, request: Request, prefix: str = Query("", max_length=512)) -> list[Json]:
    return [to_json(a) for a in get_store(request).list_artifacts(run_id, prefix)]


@router.post("/runs/{run_id}/inputs", dependencies=[require("write", RUN)], tags=["lineage"])
def record_input_artifacts(run_id: str, body: InputsIn, request: Request) -> Json:
    """Record that the run read these blobs (each must be on the server)."""
    for item in body.items:
        check_artifact_name(item.name)
        api_artifacts.check_blob(request, item.sha256)
    get_store(request).record_input_artifacts(run_id, [(i.sha256, i.name) for i in body.items])
    return {}


@router.get("/runs/{run_id}/lineage", dependencies=[require("read", RUN)], tags=["lineage"])
def run_lineage(run_id: str, request: Request) -> list[Json]:
    return [to_json(edge) for edge in get_store(request).run_lineage(run_id)]


@router.get("/lineage/{sha256}", dependencies=[require("read")], tags=["lineage"])
def lineage(request: Request, sha256: str = SHA256) -> list[Json]:
    """Runs that produced or consumed a blob (only runs in projects you may read)."""
    projects = request.app.state.projects
    edges = get_store(request).lineage(sha256)
    return [to_json(edge) for edge in edges if _readable(request, projects.of_run(edge.run_id) or "")]


@router.get("/lineage/{sha256}/steps", dependencies=[require("read")], tags=["lineage"])
def step_uses(request: Request, sha256: str = SHA256) -> list[Json]:
    """Pipeline steps that produced or read a blob (only runs in projects you may read)."""
    projects = request.app.state.projects
    uses = get_store(request).step_uses(sha256)
    return [to_json(use) for use in uses if _readable(request, projects.of_run(use.run_id) or "")]


@router.get("/dataset-usage", dependencies=[require("read")], tags=["lineage"])
def dataset_usage(
    request: Request,
    name: str = Query(max_length=256),
    fingerprint: str | None = Query(None, max_length=128),
) -> list[Json]:
    """Runs that took a version of a dataset as input (only runs in projects you may read)."""
    projects = request.app.state.projects
    uses = get_store(request).dataset_usage(name, fingerprint)
    return [to_json(use) for use in uses if _readable(request, projects.of_run(use.run_id) or "")]


@router.post("/model-versions/from-runs", dependencies=[require("read")], tags=["lineage"])
def model_versions_from_runs(body: RunIdsIn, request: Request) -> list[Json]:
    """Model versions registered from any of these runs (runs you may not read, and versions of
    models in projects you may not read, are left out)."""
    projects = request.app.state.projects
    readable = [r for r in body.run_ids if _readable(request, projects.of_run(r) or "")]
    found = get_store(request).model_versions_from_runs(readable) if readable else []
    return [to_json(v) for v in found if _readable(request, v.project)]


# -- comments --------------------------------------------------------------------------------
COMMENTED_RUN = project_of_run("target_id")


def _comment_project(request: Request) -> str | None:
    from keel.server.policy import request_value

    target_type = request_value(request, "target_type")
    target_id = request_value(request, "target_id")
    if target_type == "run" and isinstance(target_id, str):
        return COMMENTED_RUN(request)  # another project's run reads as missing, as in the path
    if target_type == "experiment" and isinstance(target_id, str):
        return request.app.state.projects.of_experiment(target_id)  # type: ignore[no-any-return]
    value = request_value(request, "project")
    return value if isinstance(value, str) and value else "default"


def _comment_target_project(request: Request) -> str:
    """The project of a commented model version: the one the policy checked (a run's comments are
    keyed by its id, whatever the project)."""
    return request.scope.get("keel.project") or "default"


class CommentIn(Body):
    target_type: str = Field(max_length=32)
    target_id: str = Field(max_length=512)
    body: str = Field(max_length=65_536)
    author: str | None = Field(None, max_length=256)
    project: str | None = Field(None, max_length=128)


@router.post("/comments", dependencies=[require("write", _comment_project)], tags=["comments"])
def add_comment(body: CommentIn, request: Request) -> Json:
    principal = get_principal(request)
    author = body.author if principal.kind == "anonymous" else principal.name
    comment = get_store(request).add_comment(
        body.target_type, body.target_id, body.body, author=author, project=_comment_target_project(request)
    )
    return to_json(comment)  # type: ignore[no-any-return]


@router.get("/comments", dependencies=[require("read", _comment_project)], tags=["comments"])
def list_comments(
    request: Request,
    target_type: str = Query(max_length=32),
    target_id: str = Query(max_length=512),
    project: str | None = Query(None, max_length=128),
) -> list[Json]:
    found = get_store(request).list_comments(target_type, target_id, project=_comment_target_project(request))
    return [to_json(c) for c in found]


# -- registry --------------------------------------------------------------------------------
class ModelIn(Body):
    name: str = Field(max_length=MAX_NAME_LENGTH)
    project: str = Field("default", max_length=128)
    description: str | None = Field(None, max_length=65_536)
    tags: dict[str, str] | None = None


class VersionIn(Body):
    artifact_sha256: str = Field(pattern="^[0-9a-f]{64}$")
    flavor: str = Field(max_length=64)
    run_id: str | None = Field(None, max_length=32)
    artifact_name: str | None = Field(None, max_length=512)
    signature: dict[str, Any] | None = None
    description: str | None = Field(None, max_length=65_536)
    tags: dict[str, str] | None = None
    project: str = Field("default", max_length=128)


class VersionTagsIn(Body):
    tags: dict[str, str]
    project: str = Field("default", max_length=128)


class AliasIn(Body):
    version: int = Field(ge=1, lt=2**31)
    project: str = Field("default", max_length=128)


#: declares ``?project=`` in the schema; routes act on checked_project(request), which the policy
#: read from the query or the body
ProjectQuery = Query("default", max_length=128)


@router.post("/models", dependencies=[require("write", PROJECT)], tags=["registry"])
def create_registered_model(body: ModelIn, request: Request) -> Json:
    model = get_store(request).create_registered_model(
        body.name, project=checked_project(request), description=body.description, tags=body.tags
    )
    return to_json(model)  # type: ignore[no-any-return]


@router.get("/models", dependencies=[require("read")], tags=["registry"])
def list_registered_models(
    request: Request,
    project: str | None = Query(None, max_length=128),
    name_like: str | None = Query(None, max_length=256),
) -> list[Json]:
    found = get_store(request).list_registered_models(project=project, name_like=name_like)
    return [to_json(m) for m in found if _readable(request, m.project)]


@router.get("/models/{name}", dependencies=[require("read", PROJECT)], tags=["registry"])
def get_registered_model(name: str, request: Request, project: str = ProjectQuery) -> Json:
    return to_json(get_store(request).get_registered_model(name, project=checked_project(request)))  # type: ignore[no-any-return]


@router.post("/models/{name}/versions", dependencies=[require("write", PROJECT)], tags=["registry"])
def create_model_version(name: str, body: VersionIn, request: Request) -> Json:
    api_artifacts.check_blob(request, body.artifact_sha256)
    if body.run_id is not None:  # a run the caller may not read answers as one that does not exist
        run_project = request.app.state.projects.of_run(body.run_id)
        if run_project is None or not _readable(request, run_project):
            raise NotFoundError(f"no run {body.run_id}; `keel runs list` shows the runs")
    fields = {**body.model_dump(), "project": checked_project(request)}
    version = get_store(request).create_model_version(name, **fields)
    return to_json(version)  # type: ignore[no-any-return]


@router.get("/models/{name}/versions", dependencies=[require("read", PROJECT)], tags=["registry"])
def list_model_versions(name: str, request: Request, project: str = ProjectQuery) -> list[Json]:
    found = get_store(request).list_model_versions(name, project=checked_project(request))
    return [to_json(v) for v in found]


@router.get("/models/{name}/versions/{version}", dependencies=[require("read", PROJECT)], tags=["registry"])
def get_model_version(
    name: str, request: Request, version: int = VERSION, project: str = ProjectQuery
) -> Json:
    return to_json(get_store(request).get_model_version(name, version, project=checked_project(request)))  # type: ignore[no-any-return]


@router.put(
    "/models/{name}/versions/{version}/tags", dependencies=[require("write", PROJECT)], tags=["registry"]
)
def set_model_version_tags(name: str, body: VersionTagsIn, request: Request, version: int = VERSION) -> Json:
    get_store(request).set_model_version_tags(name, version, body.tags, project=checked_project(request))
    return {}


@router.put("/models/{name}/aliases/{alias}", dependencies=[require("promote", PROJECT)], tags=["registry"])
def set_model_alias(name: str, alias: str, body: AliasIn, request: Request) -> Json:
    get_store(request).set_model_alias(name, alias, body.version, project=checked_project(request))
    return {}


@router.delete(
    "/models/{name}/aliases/{alias}", dependencies=[require("promote", PROJECT)], tags=["registry"]
)
def delete_model_alias(name: str, alias: str, request: Request, project: str = ProjectQuery) -> Json:
    get_store(request).delete_model_alias(name, alias, project=checked_project(request))
    return {}


@router.get("/models/{name}/aliases/{alias}", dependencies=[require("read", PROJECT)], tags=["registry"])
def get_model_version_by_alias(name: str, alias: str, request: Request, project: str = ProjectQuery) -> Json:
    found = get_store(request).get_model_version_by_alias(name, alias, project=checked_project(request))
    return to_json(found)  # type: ignore[no-any-return]


# -- pipelines -------------------------------------------------------------------------------
def _pipeline_project(request: Request) -> str | None:
    """The project of the pipeline run in the path; one of another project reads as missing."""
    raw = request.path_params.get("pipeline_run_id", "")
    try:
        run = get_store(request).get_pipeline_run(int(raw))
    except (TypeError, ValueError, OverflowError, NotFoundError, InvalidInputError):
        if str(raw).isdigit():
            request.scope[NAMED] = f"no pipeline run {raw}; `keel pipeline list` shows them"
        return None
    request.scope[NAMED] = f"no pipeline run {raw}; `keel pipeline list` shows them"
    return request.app.state.projects.of_run(run.run_id)  # type: ignore[no-any-return]


PIPELINE = _pipeline_project


class GraphNodeIn(Body):
    id: str = Field(min_length=1, max_length=256)
    step: str | None = Field(None, max_length=256)
    upstream: list[Annotated[str, Field(max_length=256)]] = Field([], max_length=limits.MAX_GRAPH_NODES)


class GraphIn(Body):
    """A pipeline's graph as ``keel.pipelines.tracking.graph_document`` writes it. Checked here so
    that every stored graph can be drawn: each upstream id names a node, and there is no cycle."""

    name: str = Field("pipeline", max_length=256)
    entry: str | None = Field(None, max_length=1024)
    nodes: list[GraphNodeIn] = Field([], max_length=limits.MAX_GRAPH_NODES)

    @model_validator(mode="after")
    def _drawable(self) -> GraphIn:
        ids = {node.id for node in self.nodes}
        if len(ids) != len(self.nodes):
            raise ValueError("two graph nodes share an id; each node needs its own")
        for node in self.nodes:
            missing = [parent for parent in node.upstream if parent not in ids]
            if missing:
                raise ValueError(f"node {node.id!r} reads from {missing[0]!r}, not a node of the graph")
        waiting = {node.id: len(set(node.upstream)) for node in self.nodes}
        children: dict[str, list[str]] = {node.id: [] for node in self.nodes}
        for node in self.nodes:
            for parent in set(node.upstream):
                children[parent].append(node.id)
        ready = [node_id for node_id, count in waiting.items() if count == 0]
        while ready:  # Kahn's algorithm: a node left waiting is on a cycle
            for child in children[ready.pop()]:
                waiting[child] -= 1
                if waiting[child] == 0:
                    ready.append(child)
        looped = sorted(node_id for node_id, count in waiting.items() if count > 0)
        if looped:
            raise ValueError(f"the graph has a cycle through {looped[0]!r}; a pipeline graph is acyclic")
        return self


class PipelineRunIn(Body):
    run_id: str = Field(max_length=32)
    pipeline: str = Field(max_length=256)
    params: dict[str, Any]
    graph: GraphIn
    resumed_from: int | None = Field(None, ge=0, le=limits.MAX_ID)


class StepsIn(Body):
    steps: list[dict[str, Any]] = Field(max_length=limits.MAX_GRAPH_NODES)


class StatusIn(Body):
    status: str = Field(max_length=16)


class CacheKeysIn(Body):
    cache_keys: list[str] = Field(max_length=100_000)
    projects: list[Annotated[str, Field(max_length=128)]] | None = Field(None, max_length=1000)


@router.post("/pipeline-runs", dependencies=[require("write", RUN)], tags=["pipelines"])
def create_pipeline_run(body: PipelineRunIn, request: Request) -> Json:
    new_id = get_store(request).create_pipeline_run(
        body.run_id,
        body.pipeline,
        params=body.params,
        graph=body.graph.model_dump(),
        resumed_from=body.resumed_from,
    )
    return {"pipeline_run_id": new_id}


@router.get("/pipeline-runs", dependencies=[require("read")], tags=["pipelines"])
def list_pipeline_runs(
    request: Request,
    pipeline: str | None = Query(None, max_length=256),
    max_results: int = Query(100, ge=1, le=10_000),
) -> list[Json]:
    projects = request.app.state.projects
    found = get_store(request).list_pipeline_runs(pipeline, max_results)
    return [to_json(p) for p in found if _readable(request, projects.of_run(p.run_id) or "")]


@router.get("/pipeline-runs/{pipeline_run_id}", dependencies=[require("read", PIPELINE)], tags=["pipelines"])
def get_pipeline_run(pipeline_run_id: int, request: Request) -> Json:
    return to_json(get_store(request).get_pipeline_run(pipeline_run_id))  # type: ignore[no-any-return]


@router.get("/runs/{run_id}/pipeline-run", dependencies=[require("read", RUN)], tags=["pipelines"])
def get_pipeline_run_by_run_id(run_id: str, request: Request) -> Json:
    return to_json(get_store(request).get_pipeline_run_by_run_id(run_id))  # type: ignore[no-any-return]


@router.post(
    "/pipeline-runs/{pipeline_run_id}/steps", dependencies=[require("write", PIPELINE)], tags=["pipelines"]
)
def record_step_runs(pipeline_run_id: int, body: StepsIn, request: Request) -> Json:
    try:
        steps = [record_from_json(StepRun, step) for step in body.steps]
    except (TypeError, KeyError) as exc:
        raise InvalidInputError(f"a step record is malformed: {exc}") from None
    get_store(request).record_step_runs(pipeline_run_id, steps)
    return {}


@router.put(
    "/pipeline-runs/{pipeline_run_id}/status", dependencies=[require("write", PIPELINE)], tags=["pipelines"]
)
def set_pipeline_run_status(pipeline_run_id: int, body: StatusIn, request: Request) -> Json:
    get_store(request).set_pipeline_run_status(pipeline_run_id, body.status)
    return {}


def _step_projects(request: Request, asked: list[str] | None) -> frozenset[str] | None:
    """The projects whose step records a caller gets: those it may read, of those it asked for."""
    readable = readable_projects(get_principal(request))
    if asked is None:
        return readable
    return frozenset(asked) if readable is None else readable & frozenset(asked)


@router.get("/step-runs", dependencies=[require("read")], tags=["pipelines"])
def find_step_runs(
    request: Request,
    cache_key: str = Query(max_length=64),
    projects: list[str] | None = Query(None, max_length=1000),
) -> list[Json]:
    """Step runs with this cache key, of pipelines run in the projects you may read (and in
    ``projects`` when given)."""
    found = get_store(request).find_step_runs(cache_key, projects=_step_projects(request, projects))
    return [to_json(s) for s in found]


@router.post("/step-cache/lookup", dependencies=[require("read")], tags=["pipelines"])
def lookup_step_cache(body: CacheKeysIn, request: Request) -> Json:
    """Cache entries written by step runs of the projects you may read (and in ``projects`` when
    given): a key is no password, and another project's outputs are neither reused nor revealed."""
    projects = _step_projects(request, body.projects)
    return to_json(get_store(request).lookup_step_cache(body.cache_keys, projects=projects))  # type: ignore[no-any-return]


router.include_router(api_artifacts.router)
router.include_router(api_auth.router)


# -- schema ----------------------------------------------------------------------------------
def add_schema_route(app: FastAPI) -> None:
    """Serve the OpenAPI schema of the native API (only ``/api/v1`` routes) at /api/v1/openapi.json."""
    from fastapi.openapi.utils import get_openapi

    cached: dict[str, Any] = {}

    @app.get("/api/v1/openapi.json", dependencies=[public()], include_in_schema=False)
    def openapi() -> Json:
        if not cached:
            from fastapi.routing import iter_route_contexts

            routes = [
                r
                for r in iter_route_contexts(app.routes)
                if (getattr(r, "path", "") or "").startswith("/api/v1/")
            ]
            cached.update(
                get_openapi(
                    title="keel native API",
                    version="1",
                    description="keel server's native API; see docs/server.md",
                    routes=routes,
                )
            )
        return cached
