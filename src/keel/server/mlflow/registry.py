"""MLflow's model registry routes (``/api/2.0/mlflow/registered-models/...``, ``/model-versions/...``)
over keel's registry, in the project ``default``.

A model version's source must be a model this server stores: ``models:/m-…`` or
``mlflow-artifacts:/models/m-…`` (an MLflow 3 logged model), or ``runs:/RUN_ID/PATH`` or
``mlflow-artifacts:/runs/RUN_ID/PATH`` (a model folder among a run's artifacts). keel records the
sha256 of the model's ``MLmodel`` file as the version's artifact, so the version is pinned to those
bytes. Sources elsewhere (``s3://``, local paths) are refused: the server never reads a location a
client names. keel has no stages: aliases (``@champion``) replace them, and changing an alias needs
the ``promote`` permission.
"""

from __future__ import annotations

import operator
from typing import Any

from fastapi import APIRouter

from keel.entities import ModelVersion, RegisteredModel
from keel.errors import InvalidInputError, NotFoundError
from keel.ids import check_run_id
from keel.server.mlflow import _filters
from keel.server.mlflow._common import PROJECT, Context, Payload, as_key_values, endpoint, key_values
from keel.server.mlflow.artifacts import find_artifact
from keel.server.mlflow.logged_models import SOURCE_RUN_TAG, model_run_id
from keel.store.sql_search import decode_token, encode_token

__all__ = ["model_version_json", "registered_model_json", "router"]

router = APIRouter()

_MLMODEL = "MLmodel"
_URI_SCHEME = "mlflow-artifacts:/"


# -- sources ---------------------------------------------------------------------------------
def _resolve_source(ctx: Context, source: str, model_id: str | None) -> tuple[str, str, str]:
    """(keel run holding the files, folder inside that run, canonical source URI)."""
    if source.startswith("models:/m-") or (not source and model_id):
        model = source[len("models:/") :] if source else str(model_id)
        return model_run_id(model.split("/", 1)[0]), "", f"{_URI_SCHEME}models/{model}"
    if source.startswith("runs:/"):
        run_id, _, folder = source[len("runs:/") :].partition("/")
        path = f"runs/{run_id}/{folder}".rstrip("/")
    elif source.startswith(_URI_SCHEME):
        path = source[len(_URI_SCHEME) :]
    else:
        raise InvalidInputError(
            f"model source {source!r} is not stored by this server; register a model logged through it "
            "(models:/m-..., runs:/RUN_ID/PATH or mlflow-artifacts:/...)"
        )
    kind, _, rest = path.strip("/").partition("/")
    owner, _, folder = rest.partition("/")
    if kind == "models":
        return model_run_id(owner), folder.strip("/"), f"{_URI_SCHEME}{path.strip('/')}"
    if kind != "runs":
        raise InvalidInputError(f"model source {source!r} is not under runs/ or models/")
    return check_run_id(owner), folder.strip("/"), f"{_URI_SCHEME}{path.strip('/')}"


def _source_of(version: ModelVersion) -> str:
    name = version.artifact_name or ""
    if name.startswith(_URI_SCHEME):
        return name
    return f"{_URI_SCHEME}runs/{version.run_id}/{name}".rstrip("/")


def _model_id_of(source: str) -> str | None:
    body = source[len(_URI_SCHEME) :] if source.startswith(_URI_SCHEME) else ""
    kind, _, rest = body.partition("/")
    return rest.split("/", 1)[0] if kind == "models" else None


# -- JSON ------------------------------------------------------------------------------------
def model_version_json(version: ModelVersion) -> dict[str, Any]:
    source = _source_of(version)
    result: dict[str, Any] = {
        "name": version.name,
        "version": str(version.version),
        "creation_timestamp": version.created_at,
        "last_updated_timestamp": version.updated_at,
        "current_stage": "None",
        "description": version.description or "",
        "source": source,
        "run_id": version.run_id or "",
        "status": "READY" if version.status == "READY" else version.status,
        "tags": as_key_values(version.tags),
        "aliases": list(version.aliases),
    }
    model_id = _model_id_of(source)
    if model_id:
        result["model_id"] = model_id
    return result


def registered_model_json(model: RegisteredModel, latest: ModelVersion | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {
        "name": model.name,
        "creation_timestamp": model.created_at,
        "last_updated_timestamp": model.updated_at,
        "description": model.description or "",
        "tags": as_key_values(model.tags),
        "aliases": [{"alias": a, "version": str(v)} for a, v in sorted(model.aliases.items())],
    }
    if latest is not None:
        result["latest_versions"] = [model_version_json(latest)]
    return result


def _version_number(p: Payload) -> int:
    text = p.need("version")
    if not text.isdigit():
        raise InvalidInputError(f"model version must be a positive integer, not {text!r}")
    return int(text)


def _model(ctx: Context, name: str) -> dict[str, Any]:
    model = ctx.store.get_registered_model(name, project=PROJECT)
    latest = (
        ctx.store.get_model_version(name, model.latest_version, project=PROJECT)
        if model.latest_version
        else None
    )
    return registered_model_json(model, latest)


# -- registered models -----------------------------------------------------------------------
@endpoint(router, "POST", "/registered-models/create", "write")
def create_registered_model(ctx: Context, p: Payload) -> dict[str, Any]:
    model = ctx.store.create_registered_model(
        p.name("name", "model") or p.need("name"),
        project=PROJECT,
        description=p.text("description"),
        tags=key_values(p.records("tags"), "registered model tag"),
    )
    return {"registered_model": registered_model_json(model)}


@endpoint(router, "GET", "/registered-models/get", "read")
def get_registered_model(ctx: Context, p: Payload) -> dict[str, Any]:
    return {"registered_model": _model(ctx, p.need("name"))}


def _model_field(model: RegisteredModel, entity: str, key: str) -> Any:
    return model.tags.get(key) if entity == "tags" else model.name


@endpoint(router, "GET", "/registered-models/search", "read")
def search_registered_models(ctx: Context, p: Payload) -> dict[str, Any]:
    conditions = _filters.parse(p.text("filter"), ["name"])
    models = _filters.select(ctx.store.list_registered_models(project=PROJECT), conditions, _model_field)
    for clause in reversed([str(o) for o in p.items("order_by")]):
        key, _, direction = clause.strip().partition(" ")
        key = key.removeprefix("attributes.")
        fields = {"name": "name", "timestamp": "updated_at", "last_updated_timestamp": "updated_at"}
        if key not in fields or direction.strip().upper() not in {"", "ASC", "DESC"}:
            raise InvalidInputError(f"cannot order registered models by {clause!r}; use name or timestamp")
        models.sort(key=operator.attrgetter(fields[key]), reverse=direction.strip().upper() == "DESC")
    max_results = p.integer("max_results", 100) or 100
    if not 1 <= max_results <= 1000:
        raise InvalidInputError(f"max_results must be between 1 and 1,000, not {max_results}")
    offset = decode_token(p.text("page_token"))
    page = models[offset : offset + max_results]
    result: dict[str, Any] = {"registered_models": [_model(ctx, m.name) for m in page]}
    if offset + max_results < len(models):
        result["next_page_token"] = encode_token(offset + max_results)
    return result


@endpoint(router, "PATCH", "/registered-models/update", "write")
def update_registered_model(ctx: Context, p: Payload) -> dict[str, Any]:
    name = p.need("name")
    ctx.store.update_registered_model(name, description=p.text("description"), project=PROJECT)
    return {"registered_model": _model(ctx, name)}


@endpoint(router, "POST", "/registered-models/rename", "promote")
def rename_registered_model(ctx: Context, p: Payload) -> dict[str, Any]:
    new_name = p.name("new_name", "model") or p.need("new_name")
    ctx.store.rename_registered_model(p.need("name"), new_name, project=PROJECT)
    return {"registered_model": _model(ctx, new_name)}


@endpoint(router, "DELETE", "/registered-models/delete", "promote")
def delete_registered_model(ctx: Context, p: Payload) -> dict[str, Any]:
    ctx.store.delete_registered_model(p.need("name"), project=PROJECT)
    return {}


@endpoint(router, "POST", "/registered-models/set-tag", "write")
def set_registered_model_tag(ctx: Context, p: Payload) -> dict[str, Any]:
    value = p.raw("value")
    ctx.store.set_registered_model_tag(
        p.need("name"), p.need("key"), "" if value is None else str(value), project=PROJECT
    )
    return {}


@endpoint(router, "DELETE", "/registered-models/delete-tag", "write")
def delete_registered_model_tag(ctx: Context, p: Payload) -> dict[str, Any]:
    ctx.store.delete_registered_model_tag(p.need("name"), p.need("key"), project=PROJECT)
    return {}


def _latest(ctx: Context, p: Payload) -> dict[str, Any]:
    name = p.need("name")
    stages = [str(s) for s in p.items("stages")]
    if any(stage.lower() != "none" for stage in stages):
        return {"model_versions": []}  # keel has no stages: no version is in Staging/Production
    versions = ctx.store.list_model_versions(name, project=PROJECT)
    return {"model_versions": [model_version_json(versions[-1])] if versions else []}


endpoint(router, "GET", "/registered-models/get-latest-versions", "read")(_latest)
get_latest_versions = endpoint(router, "POST", "/registered-models/get-latest-versions", "read")(_latest)


# -- aliases ---------------------------------------------------------------------------------
@endpoint(router, "POST", "/registered-models/alias", "promote")
def set_registered_model_alias(ctx: Context, p: Payload) -> dict[str, Any]:
    alias = p.need("alias")
    if alias.lower() == "latest" or (alias.lower().startswith("v") and alias[1:].isdigit()):
        raise InvalidInputError(f"alias {alias!r} is reserved (it reads as a version); choose another name")
    ctx.store.set_model_alias(p.need("name"), alias, _version_number(p), project=PROJECT)
    return {}


@endpoint(router, "DELETE", "/registered-models/alias", "promote")
def delete_registered_model_alias(ctx: Context, p: Payload) -> dict[str, Any]:
    ctx.store.delete_model_alias(p.need("name"), p.need("alias"), project=PROJECT)
    return {}


@endpoint(router, "GET", "/registered-models/alias", "read")
def get_model_version_by_alias(ctx: Context, p: Payload) -> dict[str, Any]:
    version = ctx.store.get_model_version_by_alias(p.need("name"), p.need("alias"), project=PROJECT)
    return {"model_version": model_version_json(version)}


# -- model versions --------------------------------------------------------------------------
@endpoint(router, "POST", "/model-versions/create", "write")
def create_model_version(ctx: Context, p: Payload) -> dict[str, Any]:
    name = p.need("name")
    holder, folder, source = _resolve_source(ctx, p.text("source") or "", p.text("model_id"))
    ctx.check_run("read", holder)
    manifest = find_artifact(ctx.store, holder, f"{folder}/{_MLMODEL}" if folder else _MLMODEL)
    run_id = p.text("run_id")
    if run_id:
        ctx.check_run("read", check_run_id(run_id))
    elif source.startswith(f"{_URI_SCHEME}runs/"):
        run_id = holder
    else:  # MLflow 3 names only the logged model: the version comes from the run that logged it
        run_id = ctx.store.get_run(holder).tags.get(SOURCE_RUN_TAG) or None
    # a folder of the version's own run is stored as keel stores it (a name on that run); any
    # other place is kept as its full mlflow-artifacts URI
    artifact_name = folder if run_id == holder and source.startswith(f"{_URI_SCHEME}runs/") else source
    version = ctx.store.create_model_version(
        name,
        artifact_sha256=manifest.sha256,
        flavor="mlflow",
        run_id=run_id,
        artifact_name=artifact_name,
        description=p.text("description"),
        tags=key_values(p.records("tags"), "model version tag"),
        project=PROJECT,
    )
    return {"model_version": model_version_json(version)}


@endpoint(router, "GET", "/model-versions/get", "read")
def get_model_version(ctx: Context, p: Payload) -> dict[str, Any]:
    version = ctx.store.get_model_version(p.need("name"), _version_number(p), project=PROJECT)
    return {"model_version": model_version_json(version)}


@endpoint(router, "PATCH", "/model-versions/update", "write")
def update_model_version(ctx: Context, p: Payload) -> dict[str, Any]:
    name, number = p.need("name"), _version_number(p)
    ctx.store.update_model_version(name, number, description=p.text("description"), project=PROJECT)
    return {"model_version": model_version_json(ctx.store.get_model_version(name, number, project=PROJECT))}


@endpoint(router, "DELETE", "/model-versions/delete", "promote")
def delete_model_version(ctx: Context, p: Payload) -> dict[str, Any]:
    ctx.store.delete_model_version(p.need("name"), _version_number(p), project=PROJECT)
    return {}


@endpoint(router, "POST", "/model-versions/set-tag", "write")
def set_model_version_tag(ctx: Context, p: Payload) -> dict[str, Any]:
    value = p.raw("value")
    ctx.store.set_model_version_tags(
        p.need("name"),
        _version_number(p),
        {p.need("key"): "" if value is None else str(value)},
        project=PROJECT,
    )
    return {}


@endpoint(router, "DELETE", "/model-versions/delete-tag", "write")
def delete_model_version_tag(ctx: Context, p: Payload) -> dict[str, Any]:
    ctx.store.delete_model_version_tag(p.need("name"), _version_number(p), p.need("key"), project=PROJECT)
    return {}


@endpoint(router, "GET", "/model-versions/get-download-uri", "read")
def get_model_version_download_uri(ctx: Context, p: Payload) -> dict[str, Any]:
    version = ctx.store.get_model_version(p.need("name"), _version_number(p), project=PROJECT)
    return {"artifact_uri": _source_of(version)}


@endpoint(router, "GET", "/model-versions/search", "read")
def search_model_versions(ctx: Context, p: Payload) -> dict[str, Any]:
    conditions = _filters.parse(p.text("filter"), ["name", "run_id", "source_path", "version_number"])
    names = [c.value for c in conditions if c.entity == "attributes" and c.key == "name" and c.op == "="]
    models = [names[0]] if names else [m.name for m in ctx.store.list_registered_models(project=PROJECT)]
    versions: list[ModelVersion] = []
    for name in models:
        try:
            versions.extend(ctx.store.list_model_versions(str(name), project=PROJECT))
        except NotFoundError:
            continue

    def lookup(v: ModelVersion, entity: str, key: str) -> Any:
        if entity == "tags":
            return v.tags.get(key)
        return {
            "name": v.name,
            "run_id": v.run_id,
            "source_path": _source_of(v),
            "version_number": v.version,
        }[key]

    found = _filters.select(versions, conditions, lookup)
    found.sort(key=lambda v: (v.name, -v.version))
    max_results = p.integer("max_results", 10_000) or 10_000
    offset = decode_token(p.text("page_token"))
    result: dict[str, Any] = {
        "model_versions": [model_version_json(v) for v in found[offset : offset + max_results]]
    }
    if offset + max_results < len(found):
        result["next_page_token"] = encode_token(offset + max_results)
    return result


@endpoint(router, "POST", "/model-versions/transition-stage", "promote")
def transition_model_version_stage(ctx: Context, p: Payload) -> dict[str, Any]:
    raise InvalidInputError(
        "keel has no model stages; set an alias instead (MlflowClient.set_registered_model_alias, "
        "e.g. @champion) and load the model with models:/NAME@ALIAS"
    )
