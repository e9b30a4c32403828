"""Plumbing of the MLflow-compatible API: request payloads, MLflow error JSON, route declaration.

Every MLflow route is a plain function ``handler(ctx, payload) -> dict`` registered with
:func:`endpoint`, which adds its policy (:func:`keel.server.policy.require`), runs it in the
threadpool (the store is synchronous) and turns keel's errors into MLflow's error JSON
(``{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": ...}``) with the HTTP status an MLflow
server would answer, so MLflow's client reacts to them as it does against MLflow itself.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from keel.errors import (
    ConflictError,
    InvalidInputError,
    KeelError,
    LimitExceededError,
    NotFoundError,
    ParamConflictError,
    StoreError,
)
from keel.naming import check_stored_name
from keel.server.limits import KeelJSONResponse, error_body, scrub
from keel.server.policy import get_artifacts, get_principal, get_store, require

__all__ = [
    "PROJECT",
    "Context",
    "Payload",
    "endpoint",
    "float_out",
    "mlflow_error",
]

#: the keel project the MLflow-compatible API works in (MLflow has no projects)
PROJECT = "default"

#: a handler returns the JSON object to answer, or a ready Response
Handler = Callable[["Context", "Payload"], "Mapping[str, Any] | Response"]


@dataclasses.dataclass(frozen=True)
class Context:
    """What a handler works with: the metadata store, the artifact store, who is calling."""

    store: Any
    artifacts: Any
    user: str
    client_host: str
    request: Request

    @classmethod
    def of(cls, request: Request) -> Context:
        principal = get_principal(request)
        name = getattr(principal, "name", None) or "anonymous"
        client = request.client.host if request.client else "unknown"
        return cls(get_store(request), get_artifacts(request), name, client, request)

    def _check(self, scope: str, project: str | None, what: str) -> None:
        # an object in a project the caller may not see reads as missing, as it does in keel's API
        if project is None or not get_principal(self.request).allows(scope, project):
            raise NotFoundError(f"no {what}")

    def check_run(self, scope: str, run_id: str) -> None:
        """For routes touching several runs: the caller needs ``scope`` on each run's project."""
        self._check(scope, self.request.app.state.projects.of_run(run_id), f"run {run_id}")

    def check_experiment(self, scope: str, experiment_id: str) -> None:
        project = self.request.app.state.projects.of_experiment(experiment_id)
        self._check(scope, project, f"experiment with id {experiment_id!r}")


class Payload:
    """An MLflow request's fields: the JSON body (already parsed by the server's guard), then the
    query string (MLflow's client sends GET requests' fields there, repeated fields repeated)."""

    def __init__(self, body: Any, query: Any):
        if body is not None and not isinstance(body, dict):
            raise InvalidInputError("the request body must be a JSON object")
        self.body: dict[str, Any] = body or {}
        self.query = query

    @classmethod
    def of(cls, request: Request) -> Payload:
        unread = request.scope.get("keel.unread_body")
        if unread is None and "keel.form" in request.scope:
            unread = "application/x-www-form-urlencoded"
        if unread is not None:  # its fields would be invisible here, and to the policy
            raise InvalidInputError(
                f"the request body has media type {unread!r}; MLflow requests send JSON "
                "with 'Content-Type: application/json'"
            )
        return cls(request.scope.get("keel.json"), request.query_params)

    def raw(self, name: str) -> Any:
        if name in self.body:
            return self.body[name]
        if name in self.query:
            return self.query[name]
        return None

    def text(self, name: str, *, required: bool = False, default: str | None = None) -> str | None:
        value = self.raw(name)
        if value is None or value == "":
            if required:
                raise InvalidInputError(f"missing value for required parameter {name!r}")
            return default
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise InvalidInputError(f"parameter {name!r} must be a string, not {type(value).__name__}")
        return str(value)

    def name(self, field: str, kind: str) -> str | None:
        """A name to create or rename to: a JSON string that passes keel's one rule for stored
        names (:func:`keel.naming.check_stored_name`), or None when the field is absent."""
        value = self.raw(field)
        if value is None or value == "":
            return None
        return check_stored_name(kind, value)

    def need(self, name: str) -> str:
        value = self.text(name, required=True)
        assert value is not None
        return value

    def integer(self, name: str, default: int | None = None) -> int | None:
        value = self.raw(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            raise InvalidInputError(f"parameter {name!r} must be an integer, not a boolean")
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise InvalidInputError(f"parameter {name!r} must be an integer, not {value!r}") from None
        if not -(2**63) <= number < 2**63:
            raise InvalidInputError(f"parameter {name!r} is outside the 64-bit integer range")
        return number

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.raw(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false"}:
            return value.lower() == "true"
        raise InvalidInputError(f"parameter {name!r} must be true or false, not {value!r}")

    def items(self, name: str) -> list[Any]:
        if name in self.body:
            value = self.body[name]
            if value is None:
                return []
            if not isinstance(value, list):
                raise InvalidInputError(f"parameter {name!r} must be a list")
            return value
        if hasattr(self.query, "getlist"):
            return list(self.query.getlist(name))
        return []

    def records(self, name: str) -> list[dict[str, Any]]:
        items = self.items(name)
        for item in items:
            if not isinstance(item, dict):
                raise InvalidInputError(f"each entry of {name!r} must be a JSON object")
        return items


def key_values(items: list[dict[str, Any]], what: str) -> dict[str, str]:
    """MLflow's ``[{"key": k, "value": v}, ...]`` as a dict (values become strings)."""
    result: dict[str, str] = {}
    for item in items:
        key = item.get("key")
        if not isinstance(key, str) or not key:
            raise InvalidInputError(f"every {what} needs a non-empty string 'key'")
        value = item.get("value", "")
        result[key] = "" if value is None else str(value)
    return result


def as_key_values(mapping: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": v} for k, v in mapping.items()]


def float_in(value: Any, what: str) -> float:
    """A metric value from MLflow JSON: a number, or "NaN" / "Infinity" / "-Infinity"."""
    if isinstance(value, bool):
        raise InvalidInputError(f"{what} must be a number, not a boolean")
    if isinstance(value, int | float):
        try:
            return float(value)
        except OverflowError:
            raise InvalidInputError(f"{what} is too large for a 64-bit float") from None
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise InvalidInputError(f"{what} must be a number (or 'NaN', 'Infinity', '-Infinity'), not {value!r}")


def float_out(value: float) -> float | str:
    """A float for MLflow JSON: special values as protobuf's JSON spells them."""
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def mlflow_error(exc: BaseException, request: Request | None = None) -> KeelJSONResponse:
    """MLflow's error JSON and HTTP status for an error raised by a handler (the store's URL,
    which keel's messages name for local users, is not shown to remote clients)."""
    if isinstance(exc, NotFoundError):
        status, code = 404, "RESOURCE_DOES_NOT_EXIST"
    elif isinstance(exc, ParamConflictError | LimitExceededError):
        status, code = 400, "INVALID_PARAMETER_VALUE"
    elif isinstance(exc, ConflictError):
        status, code = 400, "RESOURCE_ALREADY_EXISTS"
    elif isinstance(exc, StoreError):
        status, code = 503, "TEMPORARILY_UNAVAILABLE"
    elif isinstance(exc, KeelError) and exc.exit_code == 2:
        status, code = 400, "INVALID_PARAMETER_VALUE"
    else:
        status, code = 500, "INTERNAL_ERROR"
    message = str(exc) if isinstance(exc, KeelError) else "internal server error; see the server log"
    message = scrub(message, getattr(getattr(request, "app", None), "state", None))
    fields: dict[str, Any] = {}
    if isinstance(exc, LimitExceededError):
        fields = {"limit": exc.limit, "actual": exc.actual, "what": exc.what}
    body = error_body(status, message, type(exc).__name__, **fields)
    body["error_code"] = code
    headers = {"Retry-After": "1"} if status == 503 else None
    return KeelJSONResponse(body, status_code=status, headers=headers)


def endpoint(
    router: APIRouter, method: str, path: str, scope: str, project: Any = PROJECT
) -> Callable[[Handler], Handler]:
    """Declare an MLflow route: ``scope`` and ``project`` are its policy (see keel.server.policy)."""

    def decorate(handler: Handler) -> Handler:
        def route(request: Request) -> Response:
            try:
                result = handler(Context.of(request), Payload.of(request))
            except KeelError as exc:
                return mlflow_error(exc, request)
            return result if isinstance(result, Response) else KeelJSONResponse(dict(result))

        route.__name__ = f"mlflow_{handler.__name__}"
        router.add_api_route(
            path,
            route,
            methods=[method],
            dependencies=[require(scope, project)],
            include_in_schema=False,
            name=f"mlflow.{handler.__name__}",
        )
        return handler

    return decorate
