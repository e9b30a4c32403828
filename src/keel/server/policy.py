"""Deny-by-default route policies, and the objects a route needs (store, artifacts, principal).

Every route declares who may call it, as a FastAPI dependency made by :func:`require` or
:func:`public`::

    from keel.server.policy import require, project_of_run, get_store

    @router.get("/runs/{run_id}", dependencies=[require("read", project_of_run("run_id"))])
    def get_run(run_id: str, request: Request) -> dict: ...

``create_app`` refuses to start when any route lacks a policy, and a test walks the route table
too. A policy authenticates the request (Bearer token, ``Basic`` with the token as password, or a
browser session cookie plus its CSRF header), then checks the scope on the project the request
touches, answering 401 (no or bad credentials) or 403 (not allowed; audited). A run or experiment
named by id that does not exist, or that the caller may not even read, is a 404 with one message
(``no run ID``), so that ids of other projects cannot be told from unknown ones.

Scopes: ``read`` for reads, ``write`` for changes to runs and experiments, ``promote`` for
registry changes that move what is deployed (aliases, stages), ``admin`` for users, tokens and
permanent deletes.

The project of a request comes from a *resolver*, a function of the request returning a project
name (or ``None``: unknown, then the scope must be held on some project and the route answers 404):

- a plain string: that project (``require("promote", "default")``);
- :func:`project_of_run` / :func:`project_of_experiment`: the project owning the run or experiment
  whose id is in the path, the query string or the JSON body under the given name(s);
- :func:`project_param`: a project named in the path, query or JSON body (default ``"default"``
  when absent; a value that is not a non-empty string is a 400, never the default);
- :data:`SOME_PROJECT`: any project where the principal holds the scope.

A route that acts on a named project takes it from :func:`checked_project`, never from its own
body model or query parameter: the policy finds a value in any of those places, so a route reading
only one of them (and defaulting to ``"default"`` when it is absent there) would act on a project
the policy never checked.

Resolvers read values through :func:`request_value`, which refuses (400) a name given twice with
different values and (415) a body the server did not parse (a media type other than JSON or a
form): the policy must see every value the route can see.

For the MLflow-compatible API: runs by ``project_of_run("run_id", "run_uuid")``, experiments by
``project_of_experiment("experiment_id")``, registered models by the string ``"default"``.
"""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from fastapi import Depends, HTTPException, Request

from keel.errors import NotFoundError
from keel.limits import check_id
from keel.server.auth import ANY_PROJECT, AuthStore, Principal, scope_rank
from keel.store import schema as t

__all__ = [
    "NAMED",
    "SOME_PROJECT",
    "PolicyMissingError",
    "authenticated",
    "check_parent_run",
    "check_policies",
    "checked_project",
    "get_artifacts",
    "get_principal",
    "get_store",
    "policy_of",
    "project_of_experiment",
    "project_of_run",
    "project_param",
    "walk_routes",
    "public",
    "readable_projects",
    "request_value",
    "require",
]

Resolver = Callable[[Request], "str | None"]
_RUN_ID = re.compile("[0-9a-f]{32}")
_EXPERIMENT_ID = re.compile("[0-9]{1,18}")
#: scope key where an id resolver leaves the 404 message for the record the request names
NAMED = "keel.named"
SESSION_COOKIE = "keel_session"
CSRF_HEADER = "x-keel-csrf"


class _Some:
    def __repr__(self) -> str:
        return "SOME_PROJECT"


SOME_PROJECT: Any = _Some()


class PolicyMissingError(RuntimeError):
    pass


# -- what routes use -------------------------------------------------------------------------
def get_store(request: Request) -> Any:
    return request.app.state.store


def get_artifacts(request: Request) -> Any:
    return request.app.state.artifacts


def get_principal(request: Request) -> Principal:
    """The authenticated principal (set by the route's policy)."""
    principal = request.scope.get("keel.principal")
    if principal is None:
        raise RuntimeError("get_principal() on a route without a policy")
    return principal  # type: ignore[no-any-return]


def readable_projects(principal: Principal) -> frozenset[str] | None:
    """The projects ``principal`` may read (``None``: every project), for routes that filter what
    they list or serve by project instead of checking one project up front."""
    if principal.allows("read", ANY_PROJECT):
        return None
    named = {*principal.roles, principal.token_project} - {ANY_PROJECT}
    return frozenset(p for p in named if principal.allows("read", p))


def request_value(request: Request, *names: str) -> Any:
    """The value named ``names`` in the path, the query string or the body (JSON, or a form).

    A name given in more than one place (or twice in the query) with different values is refused
    with 400: the policy must check the very value the route then uses. A body the server could
    not read (a media type other than JSON or a form) is refused with 415: it might name another
    project, which the route's own parser could still find.
    """
    unread = request.scope.get("keel.unread_body")
    if unread is not None:
        raise HTTPException(
            415,
            f"the request body has media type {unread!r}, which this route does not read; "
            "send it as JSON with 'Content-Type: application/json'",
        )
    found: list[Any] = []
    body = request.scope.get("keel.json")
    form = request.scope.get("keel.form") or {}
    for name in names:
        if name in request.path_params:
            found.append(request.path_params[name])
        found.extend(request.query_params.getlist(name))
        if isinstance(body, dict) and name in body:
            found.append(body[name])
        found.extend(form.get(name, ()))
    if not found:
        return None
    if any(value != found[0] for value in found[1:]):
        raise HTTPException(400, f"{' / '.join(names)} is given more than once with different values")
    return found[0]


# -- resolvers -------------------------------------------------------------------------------
#: ids remembered per lookup cache; past it the cache starts afresh (the answers never change)
MAX_REMEMBERED = 100_000


def remember(cache: dict[str, str], lock: threading.Lock, key: str, project: str) -> None:
    with lock:
        if len(cache) > MAX_REMEMBERED:
            cache.clear()
        cache[key] = project


class ProjectLookup:
    """Run and experiment ids to project names, remembered (they never change)."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self._runs: dict[str, str] = {}
        self._experiments: dict[str, str] = {}
        self._lock = threading.Lock()

    def of_run(self, run_id: str) -> str | None:
        found = self._runs.get(run_id)
        if found is None:
            query = (
                sa.select(t.projects.c.name)
                .select_from(t.runs.join(t.experiments).join(t.projects))
                .where(t.runs.c.run_id == run_id)
            )
            with self.engine.connect() as c:
                found = c.execute(query).scalar()
            if found is not None:
                remember(self._runs, self._lock, run_id, found)
        return found

    def of_experiment(self, experiment_id: str) -> str | None:
        found = self._experiments.get(experiment_id)
        if found is None:
            try:
                eid = int(experiment_id)
            except (TypeError, ValueError):
                return None
            # refused naming the limit (as the route would), before PostgreSQL fails on it
            check_id(eid)
            query = (
                sa.select(t.projects.c.name)
                .select_from(t.experiments.join(t.projects))
                .where(t.experiments.c.id == eid)
            )
            with self.engine.connect() as c:
                found = c.execute(query).scalar()
            if found is not None:
                remember(self._experiments, self._lock, str(experiment_id), found)
        return found


def project_of_run(*names: str) -> Resolver:
    names = names or ("run_id",)

    def resolve(request: Request) -> str | None:
        value = request_value(request, *names)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # MLflow's routes read a JSON number as its digits, a run id of digits
        if not isinstance(value, str):
            return None
        if _RUN_ID.fullmatch(value):  # a malformed id is the route's 400
            request.scope[NAMED] = f"no run {value}; `keel runs list` shows the runs"
        return request.app.state.projects.of_run(value)  # type: ignore[no-any-return]

    resolve.__name__ = f"project_of_run{names}"
    return resolve


def project_of_experiment(*names: str) -> Resolver:
    names = names or ("experiment_id",)

    def resolve(request: Request) -> str | None:
        value = request_value(request, *names)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            return None
        if _EXPERIMENT_ID.fullmatch(value):
            request.scope[NAMED] = f"no experiment with id {value!r}"
        return request.app.state.projects.of_experiment(value)  # type: ignore[no-any-return]

    resolve.__name__ = f"project_of_experiment{names}"
    return resolve


def checked_project(request: Request) -> str:
    """The project the route's policy checked (from :func:`project_param`): the one project a route
    may then act on. ``PUT /models/m/aliases/a?project=mine`` with a body naming no project was
    authorised on ``mine`` while the body's default moved the alias of ``default``'s model."""
    project = request.scope.get("keel.project")
    if not isinstance(project, str):
        raise RuntimeError("checked_project() on a route whose policy names no project")
    return project


def check_parent_run(request: Request, parent_run_id: str, experiment_id: str) -> None:
    """Refuse a parent run outside the project of the child's experiment, with the very 404 a run
    id that exists nowhere gets, so that the answer tells nothing about other projects."""
    projects = request.app.state.projects
    parent = projects.of_run(parent_run_id)
    if parent is None or parent != projects.of_experiment(experiment_id):
        raise NotFoundError(f"no run {parent_run_id}; `keel runs list` shows the runs")


def project_param(name: str = "project", default: str = "default") -> Resolver:
    def resolve(request: Request) -> str | None:
        value = request_value(request, name)
        if value is None:
            return default
        if not isinstance(value, str) or not value:  # never "no project" for a value the route reads
            raise HTTPException(400, f"{name!r} must be a project name (a non-empty string), not {value!r}")
        return value

    resolve.__name__ = f"project_param({name!r})"
    return resolve


# -- authentication --------------------------------------------------------------------------
def _unauthorized(request: Request, message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": 'Bearer realm="keel"'})


def authenticate(request: Request) -> Principal:
    app_state = request.app.state
    if not app_state.config.auth:
        return Principal.anonymous_admin()
    auth: AuthStore = app_state.auth
    header = request.headers.get("authorization")
    if header:
        kind, _, credentials = header.partition(" ")
        token = None
        if kind.lower() == "bearer":
            token = credentials.strip()
        elif kind.lower() == "basic":
            try:
                token = base64.b64decode(credentials.strip(), validate=True).decode().partition(":")[2]
            except (ValueError, UnicodeDecodeError):
                token = None
        principal = auth.authenticate(token) if token else None
        if principal is None:
            raise _unauthorized(
                request,
                "the token is unknown, expired or revoked; create one with `keel server token create`",
            )
        return principal
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        principal = auth.authenticate(cookie, kinds=("session",))
        if principal is None:
            raise _unauthorized(request, "the session has expired or was revoked; log in again")
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            csrf = request.headers.get(CSRF_HEADER)
            if not csrf or principal.token_id is None or not auth.check_csrf(principal.token_id, csrf):
                request.scope["keel.principal"] = principal
                raise HTTPException(
                    403, "a browser session must send its CSRF token in the X-Keel-CSRF header"
                )
        return principal
    raise _unauthorized(
        request,
        "this server needs a token: send 'Authorization: Bearer keel_...', or for a keel client "
        "set KEEL_TRACKING_TOKEN (create one with `keel server token create`)",
    )


# -- policies --------------------------------------------------------------------------------
def _denied(principal: Principal, scope: str, target: str | None) -> str:
    """The 403 text: what is missing, and for a project the caller cannot use, the projects it can
    (only the caller's own roles: nothing about other users) and how a keel client picks one, since
    a client that sets no project asks for 'default'."""
    if target is None:
        return f"{principal.name} lacks the {scope!r} permission on any project"
    message = f"{principal.name} lacks the {scope!r} permission on project {target!r}"
    mine = principal.roles if principal.token_project == ANY_PROJECT else {principal.token_project: ""}
    usable = sorted(p for p in mine if p != ANY_PROJECT and principal.allows(scope, p))
    if usable:
        message += f"; this token has {scope!r} on project {', '.join(map(repr, usable))}"
        example = usable[0]
    else:
        example = "NAME"
    return (
        f"{message}. keel clients choose the project with KEEL_PROJECT={example} (or project = "
        f'"{example}" in keel.toml, or keel.Client(project="{example}"))'
    )


def require(scope: str, project: Resolver | str | Any = SOME_PROJECT) -> Any:
    """A policy: the caller needs ``scope`` on the project the request touches."""
    scope_rank(scope)

    def policy(request: Request) -> Principal:
        principal = authenticate(request)
        request.scope["keel.principal"] = principal
        if isinstance(project, str):
            target: str | None = project
        elif project is SOME_PROJECT:
            target = None
        else:
            target = project(request)
        request.scope["keel.project"] = target
        named = request.scope.pop(NAMED, None)
        hidden = target is None or not principal.allows("read", target)
        if named is not None and hidden and principal.allows(scope, None):
            # a run or experiment the caller may not even read answers as one that does not
            # exist, so that ids of other projects cannot be told from unknown ones (a caller
            # without the scope anywhere learns only that, from the 403 below)
            if target is not None:  # still a denial, and audited as one
                request.scope["keel.denied"] = f"{principal.name} may not read project {target!r}"
            raise NotFoundError(named)
        if not principal.allows(scope, target):
            raise HTTPException(403, _denied(principal, scope, target))
        return principal

    policy.__keel_policy__ = (scope, project)  # type: ignore[attr-defined]
    return Depends(policy)


def authenticated() -> Any:
    """A policy for routes any valid credential may call (who am I, log out)."""

    def policy(request: Request) -> Principal:
        principal = authenticate(request)
        request.scope["keel.principal"] = principal
        return principal

    policy.__keel_policy__ = ("authenticated", None)  # type: ignore[attr-defined]
    return Depends(policy)


def public() -> Any:
    """A policy for routes anyone may call (health, the OpenAPI schema, login)."""

    def policy(request: Request) -> None:
        request.scope.setdefault("keel.principal", None)

    policy.__keel_policy__ = ("public", None)  # type: ignore[attr-defined]
    return Depends(policy)


def walk_routes(routes: list[Any]) -> list[tuple[str | None, set[str], Any]]:
    """(full path, methods, route or route context) for every route, routers included.

    FastAPI 0.165 includes routers lazily (``_IncludedRouter``); ``iter_route_contexts`` flattens
    them with their prefixes and router-level dependencies. Older FastAPI copies routes instead.
    """
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # pragma: no cover - FastAPI before 0.165
        contexts: list[Any] = list(routes)
    else:
        contexts = list(iter_route_contexts(routes))
    found = []
    for context in contexts:
        path = getattr(context, "path", None)
        methods = set(getattr(context, "methods", None) or ())
        found.append((path, methods, context))
    return found


def policy_of(route: Any) -> tuple[str, Any] | None:
    """The policy a route declared (in its own or its routers' dependencies), or None."""
    calls: list[Any] = []
    for holder in (route, getattr(route, "original_route", None), getattr(route, "_route_context", None)):
        if holder is None:
            continue
        for depends in getattr(holder, "dependencies", None) or ():
            calls.append(getattr(depends, "dependency", None))
        dependant = getattr(holder, "dependant", None)
        if dependant is not None:
            calls.extend(d.call for d in dependant.dependencies)
    for call in calls:
        declared = getattr(call, "__keel_policy__", None)
        if declared is not None:
            return declared  # type: ignore[no-any-return]
    return None


def check_policies(routes: list[Any]) -> None:
    """Refuse routes without a policy (deny by default)."""
    missing = [
        f"{sorted(methods)} {path}"
        for path, methods, route in walk_routes(routes)
        if policy_of(route) is None
    ]
    if missing:
        raise PolicyMissingError(
            "routes without a policy (declare require(...) or public() on each): " + ", ".join(missing)
        )
