"""Logins, users, roles, tokens and the audit log over HTTP.

``POST /auth/bootstrap`` turns the one-time bootstrap token printed at the first start into the
first admin user and an admin API token. ``POST /auth/login`` (throttled: after
``login_attempts`` failures for a user name from one address, ``login_attempts_per_user`` for the
name from all addresses, or ``login_attempts_per_client`` from one address, within
``login_window_s``, logins are refused with 429; see :mod:`keel.server.throttle`) starts a
browser session: an HttpOnly, SameSite=Strict cookie plus a CSRF token the page must send back in
``X-Keel-CSRF`` on every state-changing request. API clients use tokens in the ``Authorization``
header instead, which browsers never attach on their own, so they need no CSRF token.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from keel.server.auth import TokenInfo
from keel.server.limits import KeelRoute
from keel.server.policy import SESSION_COOKIE, authenticated, get_principal, public, require
from keel.store.wire import to_json

__all__ = ["router"]

router = APIRouter(tags=["auth"], route_class=KeelRoute)
ADMIN = require("admin", "*")
Name = Field(min_length=1, max_length=128)


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BootstrapIn(Body):
    token: str = Field(max_length=200)
    user: str = Name
    password: str | None = Field(None, min_length=12, max_length=1024)


class LoginIn(Body):
    user: str = Name
    password: str = Field(max_length=1024)


class UserIn(Body):
    name: str = Name
    password: str | None = Field(None, min_length=12, max_length=1024)
    is_admin: bool = False


class RoleIn(Body):
    role: str = Field(pattern="^(read|write|promote|admin)$")


class TokenIn(Body):
    user: str = Name
    project: str = Field("*", max_length=128)
    scope: str = Field("read", pattern="^(read|write|promote|admin)$")
    expires_in_s: float | None = Field(None, gt=0, le=10 * 365 * 86400)
    description: str | None = Field(None, max_length=256)


def _token_json(info: TokenInfo) -> dict[str, Any]:
    return to_json(info)  # type: ignore[no-any-return]


@router.post("/auth/bootstrap", dependencies=[public()])
def bootstrap(body: BootstrapIn, request: Request) -> dict[str, Any]:
    request.scope["keel.action"] = "bootstrap"
    request.scope["keel.target"] = body.user
    redeemed = request.app.state.auth.redeem_bootstrap(body.token, body.user, body.password)
    if redeemed is None:
        raise HTTPException(401, "the bootstrap token is wrong, expired or already used")
    token, info = redeemed
    return {"token": token, "info": _token_json(info)}


@router.post("/auth/login", dependencies=[public()])
def login(body: LoginIn, request: Request, response: Response) -> dict[str, Any]:
    state = request.app.state
    request.scope["keel.action"] = "login"
    request.scope["keel.target"] = body.user
    client = request.client.host if request.client else "-"
    # a busy server refuses at once, before any database work (429); the attempt is counted before
    # the check, so parallel guesses cannot pass the limit (429)
    with state.auth.login_budget.slot():
        attempt = state.throttle.begin(body.user, client)
        correct = state.auth.check_password(body.user, body.password)
    if not correct:
        raise HTTPException(401, "wrong user name or password")
    state.throttle.forget(attempt)
    session, csrf = state.auth.create_session(body.user)
    response.set_cookie(
        SESSION_COOKIE,
        session,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        max_age=12 * 3600,
        path="/",
    )
    return {"user": body.user, "csrf_token": csrf}


@router.post("/auth/logout", dependencies=[authenticated()])
def logout(request: Request, response: Response) -> dict[str, Any]:
    principal = get_principal(request)
    if principal.kind == "session" and principal.token_id is not None:
        request.app.state.auth.revoke_token(principal.token_id)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return {}


@router.get("/auth/whoami", dependencies=[authenticated()])
def whoami(request: Request) -> dict[str, Any]:
    p = get_principal(request)
    return {
        "user": p.name,
        "is_admin": p.is_admin,
        "roles": dict(p.roles),
        "token_project": p.token_project,
        "token_scope": p.token_scope,
        "kind": p.kind,
    }


@router.post("/admin/users", dependencies=[ADMIN])
def create_user(body: UserIn, request: Request) -> dict[str, Any]:
    request.app.state.auth.create_user(body.name, password=body.password, is_admin=body.is_admin)
    return {"name": body.name}


@router.put("/admin/users/{user}/roles/{project}", dependencies=[ADMIN])
def set_role(user: str, project: str, body: RoleIn, request: Request) -> dict[str, Any]:
    request.app.state.auth.set_role(user, project, body.role)
    return {}


@router.delete("/admin/users/{user}/roles/{project}", dependencies=[ADMIN])
def remove_role(user: str, project: str, request: Request) -> dict[str, Any]:
    request.app.state.auth.set_role(user, project, None)
    return {}


@router.post("/admin/users/{user}/disable", dependencies=[ADMIN])
def disable_user(user: str, request: Request) -> dict[str, Any]:
    request.app.state.auth.disable_user(user)
    return {}


@router.post("/admin/tokens", dependencies=[ADMIN])
def create_token(body: TokenIn, request: Request) -> dict[str, Any]:
    token, info = request.app.state.auth.create_token(
        body.user,
        project=body.project,
        scope=body.scope,
        expires_in_s=body.expires_in_s,
        description=body.description,
    )
    request.scope["keel.audit"] = {"token_id": info.token_id, "scope": info.scope, "for": body.user}
    return {"token": token, "info": _token_json(info)}


@router.get("/admin/tokens", dependencies=[ADMIN])
def list_tokens(request: Request) -> list[dict[str, Any]]:
    return [_token_json(i) for i in request.app.state.auth.list_tokens()]


@router.delete("/admin/tokens/{token_id}", dependencies=[ADMIN])
def revoke_token(token_id: str, request: Request) -> dict[str, Any]:
    request.app.state.auth.revoke_token(token_id)
    return {}


@router.get("/admin/audit", dependencies=[ADMIN])
def audit_entries(request: Request, limit: int = 100) -> list[dict[str, Any]]:
    return request.app.state.audit.entries(max(1, min(limit, 10_000)))  # type: ignore[no-any-return]


@router.get("/admin/audit/verify", dependencies=[ADMIN])
def audit_verify(request: Request) -> dict[str, Any]:
    count, problems = request.app.state.audit.verify()
    return {"entries": count, "ok": not problems, "problems": [to_json(p) for p in problems]}
