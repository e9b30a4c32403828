"""MLflow 3's logged models (``/api/2.0/mlflow/logged-models/...``), stored as keel runs.

MLflow 3's client logs a model by creating a *logged model*, uploading its files to the model's
artifact location, finalizing it and linking it to the run. keel keeps each logged model as a run
of the experiment ``mlflow-logged-models`` of the same project (hidden from MLflow clients): the
model's id is ``m-`` + that run's id, its params, tags and files are the run's params, tags and
artifacts, and its status is the run's (PENDING = RUNNING, READY = FINISHED, UPLOAD_FAILED =
FAILED). So keel's own tools see MLflow's models like any run output, with sha256 lineage.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from keel.clock import now_ms
from keel.entities import Run, RunStatus
from keel.errors import ConflictError, InvalidInputError, NotFoundError
from keel.ids import check_run_id, new_id
from keel.server.mlflow import _filters
from keel.server.mlflow._common import Context, Payload, as_key_values, endpoint, float_out, key_values
from keel.server.mlflow.artifacts import list_children
from keel.server.mlflow.experiments import LOGGED_MODELS_EXPERIMENT, experiment_project, resolve_experiment_id
from keel.server.mlflow.runs import INTERNAL_TAG_PREFIX
from keel.server.policy import NAMED, SOME_PROJECT
from keel.store.sql_search import decode_token, encode_token

__all__ = ["SOURCE_RUN_TAG", "logged_model_json", "model_run_id", "router"]

router = APIRouter()

_PREFIX = "m-"
_KIND = f"{INTERNAL_TAG_PREFIX}kind"
_EXPERIMENT = f"{INTERNAL_TAG_PREFIX}experiment_id"
SOURCE_RUN_TAG = f"{INTERNAL_TAG_PREFIX}source_run_id"
_MODEL_TYPE = f"{INTERNAL_TAG_PREFIX}model_type"
_STATUS_IN = {
    "LOGGED_MODEL_PENDING": RunStatus.RUNNING,
    "LOGGED_MODEL_READY": RunStatus.FINISHED,
    "LOGGED_MODEL_UPLOAD_FAILED": RunStatus.FAILED,
    "1": RunStatus.RUNNING,
    "2": RunStatus.FINISHED,
    "3": RunStatus.FAILED,
}
_STATUS_OUT = {
    RunStatus.RUNNING: "LOGGED_MODEL_PENDING",
    RunStatus.FINISHED: "LOGGED_MODEL_READY",
}


def model_run_id(model_id: str) -> str:
    """The keel run holding logged model ``model_id`` (``m-`` + 32 hex characters)."""
    if not isinstance(model_id, str) or not model_id.startswith(_PREFIX):
        raise NotFoundError(f"no logged model {model_id!r}; logged model ids look like m-0123…")
    try:
        return check_run_id(model_id[len(_PREFIX) :])
    except InvalidInputError:
        raise NotFoundError(f"no logged model {model_id!r}; logged model ids look like m-0123…") from None


def _project_of_model(request: Request) -> str | None:
    model_id = request.path_params.get("model_id", "")
    try:
        run_id = model_run_id(model_id)
    except NotFoundError:
        return None
    request.scope[NAMED] = f"no logged model {model_id!r}"  # another project's reads as missing
    return request.app.state.projects.of_run(run_id)  # type: ignore[no-any-return]


def _model_run(ctx: Context, model_id: str) -> Run:
    run: Run = ctx.store.get_run(model_run_id(model_id))
    if run.tags.get(_KIND) != "logged_model":
        raise NotFoundError(f"no logged model {model_id!r}")
    return run


def logged_model_json(run: Run) -> dict[str, Any]:
    model_id = f"{_PREFIX}{run.run_id}"
    info: dict[str, Any] = {
        "model_id": model_id,
        "experiment_id": run.tags.get(_EXPERIMENT, ""),
        "name": run.name,
        "creation_timestamp_ms": run.start_time,
        "last_updated_timestamp_ms": run.end_time or run.start_time,
        "artifact_uri": f"mlflow-artifacts:/models/{model_id}",
        "status": _STATUS_OUT.get(run.status, "LOGGED_MODEL_UPLOAD_FAILED"),
        "tags": as_key_values({k: v for k, v in run.tags.items() if not k.startswith(INTERNAL_TAG_PREFIX)}),
    }
    for key, field in ((SOURCE_RUN_TAG, "source_run_id"), (_MODEL_TYPE, "model_type")):
        if run.tags.get(key):
            info[field] = run.tags[key]
    data = {
        "params": as_key_values(run.params),
        "metrics": [
            {"key": m.key, "value": float_out(m.value), "timestamp": m.timestamp, "step": m.step}
            for m in run.metrics.values()
        ],
    }
    return {"info": info, "data": data}


def _models_experiment(store: Any, project: str) -> str:
    found = store.get_experiment_by_name(LOGGED_MODELS_EXPERIMENT, project=project)
    if found is None:
        try:
            found = store.create_experiment(
                LOGGED_MODELS_EXPERIMENT,
                project=project,
                description="MLflow 3 logged models, one run per model (kept by keel server's MLflow API)",
            )
        except ConflictError:
            found = store.get_experiment_by_name(LOGGED_MODELS_EXPERIMENT, project=project)
    return str(found.experiment_id)


@endpoint(router, "POST", "/logged-models", "write", experiment_project("experiment_id"))
def create_logged_model(ctx: Context, p: Payload) -> dict[str, Any]:
    experiment = ctx.store.get_experiment(
        resolve_experiment_id(ctx.store, p.need("experiment_id"), create=True)
    )
    tags = key_values(p.records("tags"), "logged model tag")
    tags.update({_KIND: "logged_model", _EXPERIMENT: experiment.experiment_id})
    source_run = p.text("source_run_id")
    if source_run:
        ctx.check_run("read", check_run_id(source_run))
        tags[SOURCE_RUN_TAG] = source_run
    if p.text("model_type"):
        tags[_MODEL_TYPE] = p.need("model_type")
    run_id = new_id()
    ctx.store.create_run(
        _models_experiment(ctx.store, experiment.project),
        p.text("name") or "model",
        user=ctx.user,
        host=ctx.client_host,
        tags=tags,
        run_id=run_id,
    )
    params = key_values(p.records("params"), "logged model param")
    if params:
        ctx.store.log_params(run_id, params)
    return {"model": logged_model_json(ctx.store.get_run(run_id))}


@endpoint(router, "GET", "/logged-models/{model_id}", "read", _project_of_model)
def get_logged_model(ctx: Context, p: Payload) -> dict[str, Any]:
    run = _model_run(ctx, ctx.request.path_params["model_id"])
    if run.lifecycle_stage == "deleted" and not p.flag("allow_deleted"):
        raise NotFoundError(f"logged model {ctx.request.path_params['model_id']} was deleted")
    return {"model": logged_model_json(run)}


@endpoint(router, "PATCH", "/logged-models/{model_id}", "write", _project_of_model)
def finalize_logged_model(ctx: Context, p: Payload) -> dict[str, Any]:
    run = _model_run(ctx, ctx.request.path_params["model_id"])
    status = _STATUS_IN.get(str(p.raw("status") or ""))
    if status is None:
        raise InvalidInputError(
            "status must be LOGGED_MODEL_READY, LOGGED_MODEL_UPLOAD_FAILED or LOGGED_MODEL_PENDING"
        )
    ctx.store.update_run(
        run.run_id, status=status, end_time=None if status is RunStatus.RUNNING else now_ms()
    )
    return {"model": logged_model_json(ctx.store.get_run(run.run_id))}


@endpoint(router, "DELETE", "/logged-models/{model_id}", "write", _project_of_model)
def delete_logged_model(ctx: Context, p: Payload) -> dict[str, Any]:
    ctx.store.set_run_lifecycle(_model_run(ctx, ctx.request.path_params["model_id"]).run_id, "deleted")
    return {}


@endpoint(router, "PATCH", "/logged-models/{model_id}/tags", "write", _project_of_model)
def set_logged_model_tags(ctx: Context, p: Payload) -> dict[str, Any]:
    run = _model_run(ctx, ctx.request.path_params["model_id"])
    tags = key_values(p.records("tags"), "logged model tag")
    if any(key.startswith(INTERNAL_TAG_PREFIX) for key in tags):
        raise InvalidInputError(f"tags starting with {INTERNAL_TAG_PREFIX!r} are kept by the server")
    ctx.store.set_tags(run.run_id, tags)
    return {}


@endpoint(router, "DELETE", "/logged-models/{model_id}/tags/{tag_key}", "write", _project_of_model)
def delete_logged_model_tag(ctx: Context, p: Payload) -> dict[str, Any]:
    run = _model_run(ctx, ctx.request.path_params["model_id"])
    ctx.store.delete_tag(run.run_id, ctx.request.path_params["tag_key"])
    return {}


@endpoint(router, "POST", "/logged-models/{model_id}/params", "write", _project_of_model)
def log_logged_model_params(ctx: Context, p: Payload) -> dict[str, Any]:
    run = _model_run(ctx, ctx.request.path_params["model_id"])
    ctx.store.log_params(run.run_id, key_values(p.records("params"), "logged model param"))
    return {}


@endpoint(router, "GET", "/logged-models/{model_id}/artifacts/directories", "read", _project_of_model)
def list_logged_model_artifacts(ctx: Context, p: Payload) -> dict[str, Any]:
    model_id = ctx.request.path_params["model_id"]
    run = _model_run(ctx, model_id)
    prefix = (p.text("artifact_directory_path") or "").strip("/")
    files = list_children(ctx.store.list_artifacts(run.run_id, prefix=prefix), prefix)
    for entry in files:
        entry["path"] = f"{prefix}/{entry['path']}" if prefix else entry["path"]
    return {"root_uri": f"mlflow-artifacts:/models/{model_id}", "files": files}


@endpoint(router, "POST", "/logged-models/search", "read", SOME_PROJECT)
def search_logged_models(ctx: Context, p: Payload) -> dict[str, Any]:
    if not p.items("experiment_ids"):
        raise InvalidInputError("missing value for required parameter 'experiment_ids'")
    wanted = [
        i for i in (resolve_experiment_id(ctx.store, str(e)) for e in p.items("experiment_ids")) if i != "0"
    ]
    conditions = _filters.parse(
        p.text("filter"), ["name", "model_id", "model_type", "status", "source_run_id"]
    )
    models: list[Run] = []
    projects = set()
    for experiment_id in wanted:
        ctx.check_experiment("read", experiment_id)
        projects.add(ctx.store.get_experiment(experiment_id).project)
    quoted = ", ".join(f"'{e}'" for e in wanted)
    for project in sorted(projects):
        found = ctx.store.get_experiment_by_name(LOGGED_MODELS_EXPERIMENT, project=project)
        if found is None:
            continue
        page_token = None
        while True:
            page = ctx.store.search_runs(
                [found.experiment_id],
                f"tags.`{_EXPERIMENT}` IN ({quoted})",
                None,
                50_000,
                page_token,
            )
            models.extend(page)
            page_token = page.token
            if not page_token:
                break

    def lookup(run: Run, entity: str, key: str) -> Any:
        if entity == "tags":
            return run.tags.get(key)
        info = logged_model_json(run)["info"]
        return info.get(key)

    models = _filters.select(models, conditions, lookup)
    max_results = p.integer("max_results", 100) or 100
    offset = decode_token(p.text("page_token"))
    page_models = models[offset : offset + max_results]
    result: dict[str, Any] = {"models": [logged_model_json(m) for m in page_models]}
    if offset + max_results < len(models):
        result["next_page_token"] = encode_token(offset + max_results)
    return result
