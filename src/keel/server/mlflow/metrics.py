"""MLflow's metric routes: ``runs/log-metric``, ``runs/log-batch``, ``metrics/get-history`` and
``metrics/get-history-bulk-interval``.

A log-batch request becomes one keel ingest batch (one transaction). MLflow 3's client sends a
run's metrics a second time, tagged with a model id, when it logs a model; those points are linked
to the logged model and not stored twice on the run, as MLflow keeps one copy. A model id must
name a logged model the caller may write (404 otherwise, before anything is written).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from keel import limits
from keel.clock import now_ms
from keel.errors import InvalidInputError, LimitExceededError, NotFoundError
from keel.ids import check_run_id, new_id
from keel.limits import check_key, clean_params, clean_tags
from keel.naming import check_stored_name
from keel.server.mlflow._common import Context, Payload, endpoint, float_in, float_out, key_values
from keel.server.mlflow.runs import INTERNAL_TAG_PREFIX, RUN, run_id_of, short_text
from keel.server.policy import SOME_PROJECT
from keel.store.metrics import chunks_from_points

__all__ = ["MAX_BATCH_METRICS", "MAX_BATCH_PARAMS", "MAX_BATCH_TAGS", "router", "write_points"]

router = APIRouter()

#: per-request limits of log-batch (MLflow's own are 1,000 metrics, 100 params, 100 tags);
#: params and tags as on keel's native API
MAX_BATCH_METRICS = 10_000
MAX_BATCH_PARAMS = limits.MAX_PARAMS_PER_REQUEST
MAX_BATCH_TAGS = limits.MAX_TAGS_PER_REQUEST

Point = tuple[str, float, int, int]
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _points(items: list[dict[str, Any]], stamp: int) -> tuple[list[Point], dict[str, list[Point]]]:
    """(points, points also linked to an MLflow 3 logged model, by model id).

    This runs once per point of every log-batch, so the common types take the shortest path."""
    points: list[Point] = []
    linked: dict[str, list[Point]] = {}
    append = points.append
    for item in items:
        key = item.get("key")
        if type(key) is not str:
            raise InvalidInputError("every metric needs a string 'key'")
        value = item.get("value")
        if type(value) is not float:
            value = float_in(value, f"metric {key!r}")
        step = item.get("step", 0)
        if type(step) is not int or not _INT64_MIN <= step <= _INT64_MAX:
            step = _integer(step, key, "step", 0)
        timestamp = item.get("timestamp")
        if type(timestamp) is not int or not _INT64_MIN <= timestamp <= _INT64_MAX:
            timestamp = _integer(timestamp, key, "timestamp", stamp)
        point = (key, value, step, timestamp)
        append(point)
        model_id = item.get("model_id")
        if model_id and isinstance(model_id, str):
            linked.setdefault(model_id, []).append(point)
    return points, linked


def _integer(value: Any, key: str, what: str, default: int) -> int:
    """An int64 from MLflow JSON: a number or its decimal string (protobuf writes int64 as strings)."""
    if value is None or value == "":
        return default
    whole = isinstance(value, float) and value.is_integer() or type(value) is int
    if not (whole or (isinstance(value, str) and value.lstrip("-").isdigit())):
        raise InvalidInputError(f"metric {key!r} has a {what} that is not an integer: {value!r}")
    number = int(value)
    if not _INT64_MIN <= number <= _INT64_MAX:
        raise InvalidInputError(f"metric {key!r} has a {what} outside the 64-bit integer range")
    return number


def _new_points(store: Any, run_id: str, points: list[Point], linked: dict[str, list[Point]]) -> list[Point]:
    """``points`` less those linked to a model that the run already holds: MLflow 3's client logs
    a run's metrics again with the model's id when it logs a model, and MLflow keeps one copy."""
    if not linked:
        return points
    candidates = {p for group in linked.values() for p in group}
    known: set[Point] = set()
    for key in {p[0] for p in candidates}:
        history = store.get_metric_history(run_id, key)
        known.update(
            (key, v, s, ts)
            for s, ts, v in zip(
                history.steps.tolist(), history.timestamps.tolist(), history.values.tolist(), strict=True
            )
        )
    return [p for p in points if not (p in candidates and p in known)]


def _check_models(ctx: Context, linked: dict[str, list[Point]]) -> None:
    """Refuse, before anything is written, points linked to a logged model the caller may not
    write (another project's): the same 404 as for a model that does not exist, so the answer
    tells nothing about other projects."""
    from keel.server.mlflow.logged_models import model_run_id

    for model_id in linked:
        missing = NotFoundError(f"no logged model {model_id!r}; log the model before its metrics")
        try:
            run_id = model_run_id(model_id)
            ctx.check_run("write", run_id)
            model_run = ctx.store.get_run(run_id)
        except NotFoundError:
            raise missing from None
        if model_run.tags.get(f"{INTERNAL_TAG_PREFIX}kind") != "logged_model":
            raise missing


def _link_model_metrics(store: Any, linked: dict[str, list[Point]]) -> None:
    from keel.server.mlflow.logged_models import model_run_id

    for model_id, group in linked.items():  # checked by _check_models first
        write_points(store, model_run_id(model_id), group)


def write_points(store: Any, run_id: str, points: list[Point]) -> None:
    """One ingest batch (the store checks the keys)."""
    if points:
        store.write_metric_batch(new_id(), run_id, chunks_from_points(points))


@endpoint(router, "POST", "/runs/log-metric", "write", RUN)
def log_metric(ctx: Context, p: Payload) -> dict[str, Any]:
    run_id = run_id_of(p)
    point = {k: p.raw(k) for k in ("key", "value", "step", "timestamp", "model_id")}
    points, linked = _points([point], now_ms())
    _check_models(ctx, linked)
    write_points(ctx.store, run_id, _new_points(ctx.store, run_id, points, linked))
    _link_model_metrics(ctx.store, linked)
    return {}


def _check_count(count: int, limit: int, what: str) -> None:
    if count > limit:
        raise LimitExceededError(
            f"a log-batch request carries {count:,} {what}; the limit is {limit:,} per request. "
            "Send them in several requests.",
            limit=limit,
            actual=count,
            what=f"log-batch {what}",
        )


@endpoint(router, "POST", "/runs/log-batch", "write", RUN)
def log_batch(ctx: Context, p: Payload) -> dict[str, Any]:
    run_id = run_id_of(p)
    metrics, params, tags = p.records("metrics"), p.records("params"), p.records("tags")
    _check_count(len(metrics), MAX_BATCH_METRICS, "metrics")
    _check_count(len(params), MAX_BATCH_PARAMS, "params")
    _check_count(len(tags), MAX_BATCH_TAGS, "tags")
    # everything is checked before anything is stored: a bad metric, model or run name must not
    # leave the params stored behind a 400
    points, linked = _points(metrics, now_ms())
    for key in {point[0] for point in points}:
        check_key(key, "metric key")
    _check_models(ctx, linked)
    clean_param_values = clean_params(key_values(params, "param")) if params else {}
    clean_tag_values = clean_tags(key_values(tags, "tag")) if tags else {}
    name = clean_tag_values.get("mlflow.runName")
    run_name = check_stored_name("run", short_text(name, "run name")) if name else None
    if clean_param_values:
        ctx.store.log_params(run_id, clean_param_values)
    if clean_tag_values:
        ctx.store.set_tags(run_id, clean_tag_values)
        if run_name:
            ctx.store.update_run(run_id, name=run_name)
    write_points(ctx.store, run_id, _new_points(ctx.store, run_id, points, linked))
    _link_model_metrics(ctx.store, linked)
    return {}


@endpoint(router, "GET", "/metrics/get-history", "read", RUN)
def get_metric_history(ctx: Context, p: Payload) -> Response:
    """Every point, or a page of ``max_results`` points. The JSON is written point by point as
    text: a history can hold millions of points, and a dict per point would cost ~10× the memory."""
    run_id, key = run_id_of(p), p.need("metric_key")
    history = ctx.store.get_metric_history(run_id, key)
    max_results = p.integer("max_results") or len(history) or 1
    if max_results < 1:
        raise InvalidInputError(f"max_results must be positive, not {max_results}")
    token = p.text("page_token") or "0"
    if not token.isdigit():
        raise InvalidInputError(f"page_token {token!r} is not one this server gave out")
    offset = int(token)
    end = min(offset + max_results, len(history))
    name = json.dumps(key)
    points = ",".join(
        f'{{"key":{name},"value":{_number(v)},"timestamp":{ts},"step":{s}}}'
        for s, ts, v in zip(
            history.steps[offset:end].tolist(),
            history.timestamps[offset:end].tolist(),
            history.values[offset:end].tolist(),
            strict=True,
        )
    )
    more = f',"next_page_token":"{end}"' if end < len(history) else ""
    return Response(f'{{"metrics":[{points}]{more}}}', media_type="application/json")


def _number(value: float) -> str:
    special = float_out(value)
    return repr(value) if isinstance(special, float) else f'"{special}"'


@endpoint(router, "GET", "/metrics/get-history-bulk-interval", "read", SOME_PROJECT)
def get_metric_history_bulk_interval(ctx: Context, p: Payload) -> dict[str, Any]:
    run_ids = [check_run_id(str(r)) for r in p.items("run_ids")]
    if not run_ids:
        raise InvalidInputError("missing value for required parameter 'run_ids'")
    if len(run_ids) > 100:
        raise LimitExceededError(
            f"{len(run_ids)} run_ids; the limit is 100 per request",
            limit=100,
            actual=len(run_ids),
            what="run_ids",
        )
    key = p.need("metric_key")
    start, end = p.integer("start_step"), p.integer("end_step")
    max_results = p.integer("max_results", 320) or 320
    if not 1 <= max_results <= 25_000:
        raise InvalidInputError(f"max_results must be between 1 and 25,000, not {max_results}")
    metrics: list[dict[str, Any]] = []
    for run_id in run_ids:
        ctx.check_run("read", run_id)
        history = ctx.store.get_metric_history(run_id, key)
        rows = [
            (s, ts, v)
            for s, ts, v in zip(
                history.steps.tolist(), history.timestamps.tolist(), history.values.tolist(), strict=True
            )
            if (start is None or s >= start) and (end is None or s <= end)
        ]
        if len(rows) > max_results:  # evenly spaced points, always keeping the first and the last
            stride = (len(rows) - 1) / (max_results - 1) if max_results > 1 else len(rows)
            rows = [rows[round(i * stride)] for i in range(max_results)] if max_results > 1 else rows[:1]
        metrics.extend(
            {"key": key, "value": float_out(v), "timestamp": ts, "step": s, "run_id": run_id}
            for s, ts, v in rows
        )
    return {"metrics": metrics}
