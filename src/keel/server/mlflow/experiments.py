"""MLflow's experiment routes (``/api/2.0/mlflow/experiments/...``) over keel's store.

MLflow's default experiment ``"0"`` is keel's experiment ``Default`` (created on first use).
Artifact locations are server configuration: a client that asks for one is refused, and every
experiment reports ``mlflow-artifacts:/experiments/ID`` (served through this server).
"""

from __future__ import annotations

import functools
from typing import Any

from fastapi import APIRouter, Request

from keel.entities import Experiment
from keel.errors import ConflictError, InvalidInputError, NotFoundError
from keel.server.mlflow import _filters
from keel.server.mlflow._common import PROJECT, Context, Payload, as_key_values, endpoint, key_values
from keel.server.policy import project_of_experiment, request_value
from keel.store.sql_search import decode_token, encode_token

__all__ = [
    "DEFAULT_EXPERIMENT",
    "LOGGED_MODELS_EXPERIMENT",
    "experiment_json",
    "experiment_project",
    "resolve_experiment_id",
    "router",
]

router = APIRouter()

DEFAULT_EXPERIMENT = "Default"
#: where MLflow 3's logged models live in keel (one run per logged model); hidden from MLflow
LOGGED_MODELS_EXPERIMENT = "mlflow-logged-models"
_VIEW_TYPES = {"1": "ACTIVE_ONLY", "2": "DELETED_ONLY", "3": "ALL"}
_ORDER_KEYS = {"name", "experiment_id", "creation_time", "last_update_time"}


def resolve_experiment_id(store: Any, experiment_id: str, *, create: bool = False) -> str:
    """keel's id for an MLflow experiment id. ``"0"`` is the ``Default`` experiment, created on
    first use by a change (``create``); a read of a missing default keeps ``"0"``, which matches
    nothing."""
    if experiment_id != "0":
        return experiment_id
    found = store.get_experiment_by_name(DEFAULT_EXPERIMENT, project=PROJECT)
    if found is None:
        if not create:
            return experiment_id
        try:
            found = store.create_experiment(DEFAULT_EXPERIMENT, project=PROJECT)
        except ConflictError:  # another worker created it meanwhile
            found = store.get_experiment_by_name(DEFAULT_EXPERIMENT, project=PROJECT)
    return str(found.experiment_id)


def experiment_project(*names: str) -> Any:
    """Policy resolver: the project of the experiment named in the request (``"0"``: the default).
    A missing or empty id is the default experiment too, as the routes read it (``runs/create``
    without an ``experiment_id`` logs to ``Default``): checking "some project" for it let a writer
    of any project create runs in ``default``."""
    inner = project_of_experiment(*names)

    def resolve(request: Request) -> str | None:
        value = request_value(request, *names)
        if value is None or str(value) in {"", "0"}:
            return PROJECT
        return inner(request)

    resolve.__name__ = f"experiment_project{names}"
    return resolve


def experiment_json(experiment: Experiment) -> dict[str, Any]:
    tags = dict(experiment.tags)
    if experiment.description and "mlflow.note.content" not in tags:
        tags["mlflow.note.content"] = experiment.description
    return {
        "experiment_id": experiment.experiment_id,
        "name": experiment.name,
        "artifact_location": f"mlflow-artifacts:/experiments/{experiment.experiment_id}",
        "lifecycle_stage": experiment.lifecycle_stage,
        "creation_time": experiment.created_at,
        "last_update_time": experiment.updated_at,
        "tags": as_key_values(tags),
    }


def _experiment(ctx: Context, p: Payload, *, create: bool = False) -> Experiment:
    experiment_id = resolve_experiment_id(ctx.store, p.need("experiment_id"), create=create)
    return ctx.store.get_experiment(experiment_id)  # type: ignore[no-any-return]


@endpoint(router, "POST", "/experiments/create", "write")
def create_experiment(ctx: Context, p: Payload) -> dict[str, Any]:
    name = p.name("name", "experiment") or p.need("name")
    if p.text("artifact_location"):
        raise InvalidInputError(
            "keel server does not accept artifact locations from clients (artifact roots are server "
            "configuration); create the experiment without artifact_location"
        )
    if name == LOGGED_MODELS_EXPERIMENT:
        raise InvalidInputError(f"the experiment name {name!r} is reserved for MLflow's logged models")
    tags = key_values(p.records("tags"), "experiment tag")
    description = tags.get("mlflow.note.content")
    experiment = ctx.store.create_experiment(name, project=PROJECT, description=description, tags=tags)
    return {"experiment_id": experiment.experiment_id}


@endpoint(router, "GET", "/experiments/get", "read", experiment_project("experiment_id"))
def get_experiment(ctx: Context, p: Payload) -> dict[str, Any]:
    return {"experiment": experiment_json(_experiment(ctx, p))}


@endpoint(router, "GET", "/experiments/get-by-name", "read")
def get_experiment_by_name(ctx: Context, p: Payload) -> dict[str, Any]:
    name = p.need("experiment_name")
    found = (
        None if name == LOGGED_MODELS_EXPERIMENT else ctx.store.get_experiment_by_name(name, project=PROJECT)
    )
    if found is None:
        raise NotFoundError(f"Could not find experiment with name '{name}'")
    return {"experiment": experiment_json(found)}


def _search(ctx: Context, p: Payload) -> dict[str, Any]:
    view = str(p.raw("view_type") or "ACTIVE_ONLY")
    view = _VIEW_TYPES.get(view, view)
    if view not in {"ACTIVE_ONLY", "DELETED_ONLY", "ALL"}:
        raise InvalidInputError(f"view_type must be ACTIVE_ONLY, DELETED_ONLY or ALL, not {view!r}")
    max_results = p.integer("max_results", 1000) or 1000
    if not 1 <= max_results <= 50_000:
        raise InvalidInputError(f"max_results must be between 1 and 50,000, not {max_results}")
    conditions = _filters.parse(
        p.text("filter"), ["name", "experiment_id", "creation_time", "last_update_time"]
    )
    experiments = [
        e
        for e in ctx.store.list_experiments(project=PROJECT, include_deleted=view != "ACTIVE_ONLY")
        if e.name != LOGGED_MODELS_EXPERIMENT and (view != "DELETED_ONLY" or e.lifecycle_stage == "deleted")
    ]

    def lookup(e: Experiment, entity: str, key: str) -> Any:
        if entity == "tags":
            return e.tags.get(key)
        return {
            "name": e.name,
            "experiment_id": e.experiment_id,
            "creation_time": e.created_at,
            "last_update_time": e.updated_at,
        }[key]

    found = _filters.select(experiments, conditions, lookup)
    orders = [str(o) for o in p.items("order_by")] or ["creation_time DESC"]
    for clause in reversed(orders + ["experiment_id ASC"]):
        key, _, direction = clause.strip().partition(" ")
        key = key.removeprefix("attributes.").removeprefix("attribute.")
        if key not in _ORDER_KEYS or direction.strip().upper() not in {"", "ASC", "DESC"}:
            raise InvalidInputError(
                f"cannot order experiments by {clause!r}; use name, experiment_id, creation_time or "
                "last_update_time, optionally followed by ASC or DESC"
            )
        found.sort(key=functools.partial(_sort_key, lookup, key), reverse=direction.strip().upper() == "DESC")
    offset = decode_token(p.text("page_token"))
    page = found[offset : offset + max_results]
    result: dict[str, Any] = {"experiments": [experiment_json(e) for e in page]}
    if offset + max_results < len(found):
        result["next_page_token"] = encode_token(offset + max_results)
    return result


def _sort_key(lookup: Any, key: str, experiment: Experiment) -> Any:
    return int(experiment.experiment_id) if key == "experiment_id" else lookup(experiment, "attributes", key)


endpoint(router, "GET", "/experiments/search", "read")(_search)
search_experiments = endpoint(router, "POST", "/experiments/search", "read")(_search)


@endpoint(router, "POST", "/experiments/update", "write", experiment_project("experiment_id"))
def update_experiment(ctx: Context, p: Payload) -> dict[str, Any]:
    experiment = _experiment(ctx, p, create=True)
    new_name = p.name("new_name", "experiment")
    if new_name:
        ctx.store.rename_experiment(experiment.experiment_id, new_name)
    return {}


@endpoint(router, "POST", "/experiments/delete", "write", experiment_project("experiment_id"))
def delete_experiment(ctx: Context, p: Payload) -> dict[str, Any]:
    ctx.store.set_experiment_lifecycle(_experiment(ctx, p).experiment_id, "deleted")
    return {}


@endpoint(router, "POST", "/experiments/restore", "write", experiment_project("experiment_id"))
def restore_experiment(ctx: Context, p: Payload) -> dict[str, Any]:
    ctx.store.set_experiment_lifecycle(_experiment(ctx, p).experiment_id, "active")
    return {}


@endpoint(router, "POST", "/experiments/set-experiment-tag", "write", experiment_project("experiment_id"))
def set_experiment_tag(ctx: Context, p: Payload) -> dict[str, Any]:
    value = p.raw("value")
    ctx.store.set_experiment_tag(
        _experiment(ctx, p, create=True).experiment_id,
        p.need("key"),
        "" if value is None else str(value),
    )
    return {}


@endpoint(router, "POST", "/experiments/delete-experiment-tag", "write", experiment_project("experiment_id"))
def delete_experiment_tag(ctx: Context, p: Payload) -> dict[str, Any]:
    ctx.store.delete_experiment_tag(_experiment(ctx, p).experiment_id, p.need("key"))
    return {}
