"""MLflow's run routes (``/api/2.0/mlflow/runs/...``) over keel's store; metrics are in
:mod:`keel.server.mlflow.metrics`.

Runs are keel runs: MLflow's params and tags land where keel's own client writes them, so ``keel
runs list`` and ``mlflow.search_runs`` show the same runs; searches use keel's parser of MLflow's
filter grammar. Each run's artifacts are served at ``mlflow-artifacts:/runs/RUN_ID``.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter

from keel.entities import Dataset, Run, RunStatus
from keel.errors import InvalidInputError, LimitExceededError
from keel.ids import check_run_id, new_id
from keel.server.mlflow._common import (
    Context,
    Payload,
    as_key_values,
    endpoint,
    float_out,
    key_values,
)
from keel.server.mlflow.experiments import experiment_project, resolve_experiment_id
from keel.server.policy import SOME_PROJECT, check_parent_run, project_of_run

__all__ = ["INTERNAL_TAG_PREFIX", "RUN", "router", "run_id_of", "run_json", "short_text"]

router = APIRouter()
RUN = project_of_run("run_id", "run_uuid")

_STATUSES = {"1": "RUNNING", "2": "SCHEDULED", "3": "FINISHED", "4": "FAILED", "5": "KILLED"}
_VIEW_TYPES = {"1": "ACTIVE_ONLY", "2": "DELETED_ONLY", "3": "ALL"}
#: tags keel keeps for its own bookkeeping of MLflow objects, not shown to MLflow clients
INTERNAL_TAG_PREFIX = "keel.mlflow."


def run_artifact_uri(run_id: str) -> str:
    return f"mlflow-artifacts:/runs/{run_id}"


def _status_out(status: RunStatus) -> str:
    # MLflow has no CRASHED: a run whose process died is FAILED to MLflow's eyes
    return "FAILED" if status is RunStatus.CRASHED else status.value


def dataset_json(dataset: Dataset) -> dict[str, Any]:
    source_type, _, source = (dataset.source or "").partition(":")
    if not source_type.isidentifier():
        source_type, source = "", dataset.source or ""
    schema = dataset.schema or {}
    profile = {"num_rows": dataset.row_count} if dataset.row_count is not None else {}
    return {
        "tags": [{"key": "mlflow.data.context", "value": dataset.context or "training"}],
        "dataset": {
            "name": dataset.name,
            "digest": dataset.fingerprint,
            "source_type": source_type,
            "source": source,
            "schema": schema["mlflow_schema"] if "mlflow_schema" in schema else json.dumps(schema),
            "profile": json.dumps(profile),
        },
    }


def run_json(run: Run, inputs: list[Dataset] | None = None) -> dict[str, Any]:
    info: dict[str, Any] = {
        "run_id": run.run_id,
        "run_uuid": run.run_id,
        "run_name": run.name,
        "experiment_id": run.experiment_id,
        "user_id": run.user,
        "status": _status_out(run.status),
        "start_time": run.start_time,
        "artifact_uri": run_artifact_uri(run.run_id),
        "lifecycle_stage": run.lifecycle_stage,
    }
    if run.end_time is not None:
        info["end_time"] = run.end_time
    tags = {k: v for k, v in run.tags.items() if not k.startswith(INTERNAL_TAG_PREFIX)}
    tags.setdefault("mlflow.runName", run.name)
    if run.parent_run_id:
        tags.setdefault("mlflow.parentRunId", run.parent_run_id)
    data = {
        "metrics": [
            {"key": m.key, "value": float_out(m.value), "timestamp": m.timestamp, "step": m.step}
            for m in run.metrics.values()
        ],
        "params": as_key_values(run.params),
        "tags": as_key_values(tags),
    }
    result: dict[str, Any] = {"info": info, "data": data}
    if inputs is not None:
        result["inputs"] = {"dataset_inputs": [dataset_json(d) for d in inputs]}
    return result


def run_id_of(p: Payload) -> str:
    run_id = p.text("run_id") or p.text("run_uuid")
    if not run_id:
        raise InvalidInputError("missing value for required parameter 'run_id'")
    return check_run_id(run_id)


def short_text(value: str, what: str, limit: int = 256) -> str:
    if len(value) > limit:
        raise LimitExceededError(
            f"the {what} is {len(value):,} characters; the limit is {limit}",
            limit=limit,
            actual=len(value),
            what=what,
        )
    return value


# -- runs ------------------------------------------------------------------------------------
@endpoint(router, "POST", "/runs/create", "write", experiment_project("experiment_id"))
def create_run(ctx: Context, p: Payload) -> dict[str, Any]:
    experiment_id = resolve_experiment_id(ctx.store, p.text("experiment_id") or "0", create=True)
    tags = key_values(p.records("tags"), "run tag")
    run_id = new_id()
    name = p.name("run_name", "run") or tags.get("mlflow.runName") or f"run-{run_id[:8]}"
    tags["mlflow.runName"] = name
    parent = tags.get("mlflow.parentRunId")
    if parent:
        check_parent_run(ctx.request, check_run_id(parent), experiment_id)
    run = ctx.store.create_run(
        experiment_id,
        short_text(name, "run name"),
        user=short_text(p.text("user_id") or ctx.user, "user_id"),
        host=ctx.client_host,
        start_time=p.integer("start_time"),
        parent_run_id=check_run_id(parent) if parent else None,
        tags=tags,
        run_id=run_id,
    )
    return {"run": run_json(run, [])}


@endpoint(router, "GET", "/runs/get", "read", RUN)
def get_run(ctx: Context, p: Payload) -> dict[str, Any]:
    run_id = run_id_of(p)
    return {"run": run_json(ctx.store.get_run(run_id), ctx.store.list_run_inputs(run_id))}


@endpoint(router, "POST", "/runs/update", "write", RUN)
def update_run(ctx: Context, p: Payload) -> dict[str, Any]:
    run_id = run_id_of(p)
    status = p.text("status")
    if status is not None:
        status = _STATUSES.get(status, status)
        if status == "SCHEDULED":
            status = "RUNNING"
        if status not in RunStatus.__members__:
            raise InvalidInputError(f"unknown run status {status!r}; use RUNNING, FINISHED, FAILED or KILLED")
    name = p.name("run_name", "run")
    ctx.store.update_run(
        run_id,
        status=status,
        end_time=p.integer("end_time"),
        name=short_text(name, "run name") if name else None,
    )
    if name:
        ctx.store.set_tags(run_id, {"mlflow.runName": name})
    run = ctx.store.get_run(run_id)
    info = run_json(run)["info"]
    return {"run_info": info}


@endpoint(router, "POST", "/runs/delete", "write", RUN)
def delete_run(ctx: Context, p: Payload) -> dict[str, Any]:
    ctx.store.set_run_lifecycle(run_id_of(p), "deleted")
    return {}


@endpoint(router, "POST", "/runs/restore", "write", RUN)
def restore_run(ctx: Context, p: Payload) -> dict[str, Any]:
    ctx.store.set_run_lifecycle(run_id_of(p), "active")
    return {}


@endpoint(router, "POST", "/runs/search", "read", SOME_PROJECT)
def search_runs(ctx: Context, p: Payload) -> dict[str, Any]:
    # a default experiment "0" that does not exist yet has no runs
    ids = [
        i for i in (resolve_experiment_id(ctx.store, str(e)) for e in p.items("experiment_ids")) if i != "0"
    ]
    for experiment_id in ids:
        ctx.check_experiment("read", experiment_id)
    view = str(p.raw("run_view_type") or "ACTIVE_ONLY")
    view = _VIEW_TYPES.get(view, view)
    if view not in {"ACTIVE_ONLY", "DELETED_ONLY", "ALL"}:
        raise InvalidInputError(f"run_view_type must be ACTIVE_ONLY, DELETED_ONLY or ALL, not {view!r}")
    text = p.text("filter") or ""
    if view == "DELETED_ONLY":
        text = (
            f"({text}) and attributes.lifecycle_stage = 'deleted'"
            if text.strip()
            else ("attributes.lifecycle_stage = 'deleted'")
        )
    page = ctx.store.search_runs(
        ids,
        text,
        [str(o) for o in p.items("order_by")],
        p.integer("max_results", 1000) or 1000,
        p.text("page_token"),
        view != "ACTIVE_ONLY",
    )
    result: dict[str, Any] = {"runs": [run_json(r) for r in page]}
    if page.token:
        result["next_page_token"] = page.token
    return result


# -- params, tags, metrics -------------------------------------------------------------------
@endpoint(router, "POST", "/runs/log-parameter", "write", RUN)
def log_param(ctx: Context, p: Payload) -> dict[str, Any]:
    value = p.raw("value")
    ctx.store.log_params(run_id_of(p), {p.need("key"): "" if value is None else str(value)})
    return {}


@endpoint(router, "POST", "/runs/set-tag", "write", RUN)
def set_tag(ctx: Context, p: Payload) -> dict[str, Any]:
    run_id, key = run_id_of(p), p.need("key")
    value = p.raw("value")
    value = "" if value is None else str(value)
    ctx.store.set_tags(run_id, {key: value})
    if key == "mlflow.runName" and value:
        ctx.store.update_run(run_id, name=short_text(value, "run name"))
    return {}


@endpoint(router, "POST", "/runs/delete-tag", "write", RUN)
def delete_tag(ctx: Context, p: Payload) -> dict[str, Any]:
    ctx.store.delete_tag(run_id_of(p), p.need("key"))
    return {}


# -- inputs, outputs, models -----------------------------------------------------------------
@endpoint(router, "POST", "/runs/log-inputs", "write", RUN)
def log_inputs(ctx: Context, p: Payload) -> dict[str, Any]:
    run_id = run_id_of(p)
    for item in p.records("datasets"):
        dataset = item.get("dataset")
        if not isinstance(dataset, dict) or not dataset.get("name") or not dataset.get("digest"):
            raise InvalidInputError("each dataset input needs a dataset with a name and a digest")
        if len(str(dataset["digest"])) > 64 or len(str(dataset["name"])) > 256:
            raise InvalidInputError("a dataset's digest is at most 64 characters and its name at most 256")
        tags = key_values(item.get("tags") or [], "input tag")
        try:
            schema = json.loads(dataset.get("schema") or "{}")
        except ValueError:
            schema = None
        if not isinstance(schema, dict):
            schema = {"mlflow_schema": dataset.get("schema")}
        try:
            profile = json.loads(dataset.get("profile") or "{}")
        except ValueError:
            profile = {}
        rows = profile.get("num_rows") if isinstance(profile, dict) else None
        source_type, source = str(dataset.get("source_type") or ""), str(dataset.get("source") or "")
        ctx.store.log_dataset(
            run_id,
            name=str(dataset["name"]),
            fingerprint=str(dataset["digest"]),
            schema=schema or None,
            row_count=int(rows) if isinstance(rows, int | float) else None,
            source=f"{source_type}:{source}" if source_type.isidentifier() else source,
            context=tags.get("mlflow.data.context", "training"),
        )
    models = [m.get("model_id") for m in p.records("models") if m.get("model_id")]
    if models:
        ctx.store.set_tags(run_id, {f"{INTERNAL_TAG_PREFIX}input_model.{m}": "1" for m in models})
    return {}


@endpoint(router, "POST", "/runs/outputs", "write", RUN)
def log_outputs(ctx: Context, p: Payload) -> dict[str, Any]:
    run_id = run_id_of(p)
    outputs = {}
    for model in p.records("models"):
        model_id = model.get("model_id")
        if not isinstance(model_id, str) or not model_id:
            raise InvalidInputError("each model output needs a model_id")
        outputs[f"{INTERNAL_TAG_PREFIX}output_model.{model_id}"] = str(model.get("step") or 0)
    if outputs:
        ctx.store.set_tags(run_id, outputs)
    return {}


@endpoint(router, "POST", "/runs/log-model", "write", RUN)
def log_model(ctx: Context, p: Payload) -> dict[str, Any]:
    """MLflow 2's record of a logged model: kept, as MLflow keeps it, in the run's
    ``mlflow.log-model.history`` tag (a JSON list)."""
    run_id = run_id_of(p)
    text = p.need("model_json")
    try:
        model = json.loads(text)
    except ValueError:
        raise InvalidInputError("model_json is not valid JSON") from None
    run = ctx.store.get_run(run_id)
    try:
        history = json.loads(run.tags.get("mlflow.log-model.history", "[]"))
    except ValueError:
        history = []
    history = [*history, model] if isinstance(history, list) else [model]
    ctx.store.set_tags(run_id, {"mlflow.log-model.history": json.dumps(history)})
    return {}
