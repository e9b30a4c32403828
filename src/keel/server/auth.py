"""Users, per-project roles and API tokens for ``keel server``.

A token reads ``keel_<token_id>_<secret>``: the server finds the row by ``token_id`` and checks the
secret against its argon2 hash. Each request re-reads the token row and the user's roles, so a
revoked token, a disabled user or a removed role stops working at once, on every worker; only the
(slow, ~tens of ms) argon2 verification is remembered per worker, keyed by the secret's sha256.

Permissions are project × scope, with scopes ordered ``read < write < promote < admin``. What a
request may do is the smaller of what its token allows and what its user's role on the project
allows (admins hold ``admin`` on every project). A token or role for project ``"*"`` covers every
project.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal

import sqlalchemy as sa

from keel.clock import now_ms
from keel.errors import ConflictError, InvalidInputError, NotFoundError
from keel.server.throttle import CheckBudget
from keel.store import schema as t
from keel.store.engine import translate_errors, write_transaction

__all__ = ["SCOPES", "AuthStore", "Principal", "Scope", "TokenInfo", "scope_rank"]

Scope = Literal["read", "write", "promote", "admin"]
SCOPES: tuple[str, ...] = ("read", "write", "promote", "admin")
ANY_PROJECT = "*"
TOKEN_PREFIX = "keel_"
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-@")


def scope_rank(scope: str) -> int:
    try:
        return SCOPES.index(scope)
    except ValueError:
        raise InvalidInputError(f"unknown scope {scope!r}; use one of {', '.join(SCOPES)}") from None


def _check_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not name or len(name) > 128 or not set(name) <= _NAME_CHARS:
        raise InvalidInputError(
            f"{what} {name!r} must be 1-128 characters of letters, digits, '_', '.', '-' or '@'"
        )
    return name


def _check_project(project: str) -> str:
    return project if project == ANY_PROJECT else _check_name(project, "project")


@dataclasses.dataclass(frozen=True)
class Principal:
    """Who is asking, and what they may do."""

    name: str
    user_id: int | None
    is_admin: bool
    #: project -> role of the user ("*" for every project)
    roles: Mapping[str, str]
    #: the token's own limits
    token_project: str
    token_scope: str
    #: token | session | bootstrap | anonymous
    kind: str
    token_id: str | None = None

    def role_on(self, project: str) -> int:
        """Rank of the user's role on ``project`` (-1: none)."""
        if self.is_admin:
            return scope_rank("admin")
        ranks = [scope_rank(self.roles[p]) for p in (project, ANY_PROJECT) if p in self.roles]
        return max(ranks, default=-1)

    def allows(self, scope: str, project: str | None) -> bool:
        """May this principal act with ``scope`` on ``project`` (``None``: on some project)?"""
        need = scope_rank(scope)
        if self.kind == "bootstrap" or need > scope_rank(self.token_scope):
            return False
        if project is None:  # some project will do (e.g. uploading content-addressed bytes)
            if self.token_project != ANY_PROJECT:
                project = self.token_project
            else:
                return self.is_admin or any(scope_rank(r) >= need for r in self.roles.values())
        if self.token_project not in (ANY_PROJECT, project):
            return False
        return self.role_on(project) >= need

    @classmethod
    def anonymous_admin(cls) -> Principal:
        """Everything allowed: only for a server with auth switched off on loopback."""
        return cls("anonymous", None, True, {}, ANY_PROJECT, "admin", "anonymous")


@dataclasses.dataclass(frozen=True)
class TokenInfo:
    token_id: str
    user: str | None
    kind: str
    project: str
    scope: str
    description: str | None
    created_at: int
    expires_at: int | None
    revoked_at: int | None


@dataclasses.dataclass(frozen=True)
class UserInfo:
    """A user as ``keel server user list`` shows it (never the password hash)."""

    name: str
    is_admin: bool
    #: project -> role ("*": every project)
    roles: Mapping[str, str]
    created_at: int
    disabled_at: int | None
    #: API tokens that still work (not revoked, not expired); sessions are not counted
    tokens: int


def _hasher() -> Any:
    from argon2 import PasswordHasher

    return PasswordHasher()


# built once: every authenticated request runs them
_TOKEN_QUERY = (
    sa.select(t.api_tokens, t.users.c.name, t.users.c.is_admin, t.users.c.disabled_at)
    .select_from(t.api_tokens.outerjoin(t.users, t.api_tokens.c.user_id == t.users.c.id))
    .where(t.api_tokens.c.token_id == sa.bindparam("token_id"))
)
_ROLES_QUERY = sa.select(t.user_roles.c.project, t.user_roles.c.role).where(
    t.user_roles.c.user_id == sa.bindparam("user_id")
)


class AuthStore:
    """Users, roles and tokens in the metadata database (tables from migration 0004)."""

    def __init__(
        self,
        engine: sa.Engine,
        url: str = "the metadata store",
        *,
        login_budget: CheckBudget | None = None,
        token_budget: CheckBudget | None = None,
    ):
        self.engine = engine
        self.url = url
        self._verified: dict[str, str] = {}  # sha256(secret) -> argon2 hash it verified against
        self._lock = threading.Lock()
        self._hasher = _hasher()
        # the server passes budgets (argon2 checks at once, see keel.server.throttle); the CLI none
        self.login_budget = login_budget or CheckBudget(1 << 20, 0, what="logins")
        self.token_budget = token_budget or CheckBudget(1 << 20, 0, what="token checks")
        #: seconds one password verification takes here (a running average), which the refusal of
        #: an unknown user name waits instead of spending memory and CPU on a dummy hash
        self._typical_check_s: float | None = None

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        with write_transaction(self.engine, self.url) as connection:
            yield connection

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        with translate_errors(self.url), self.engine.connect() as connection:
            yield connection

    # -- users and roles -----------------------------------------------------------------------
    def has_users(self) -> bool:
        with self._read() as c:
            return c.execute(sa.select(sa.func.count()).select_from(t.users)).scalar_one() > 0

    def create_user(self, name: str, *, password: str | None = None, is_admin: bool = False) -> int:
        _check_name(name, "user name")
        if password is not None and len(password) < 12:
            raise InvalidInputError("a password needs at least 12 characters")
        hashed = self._hasher.hash(password) if password is not None else None
        with self._write() as c:
            if c.execute(sa.select(t.users.c.id).where(t.users.c.name == name)).scalar() is not None:
                raise ConflictError(f"user {name!r} already exists")
            result = c.execute(
                sa.insert(t.users).values(
                    name=name, password_hash=hashed, is_admin=is_admin, created_at=now_ms()
                )
            )
            return int(result.inserted_primary_key[0])  # type: ignore[index]

    def _user_id(self, c: sa.Connection, name: str) -> int:
        uid = c.execute(sa.select(t.users.c.id).where(t.users.c.name == name)).scalar()
        if uid is None:
            raise NotFoundError(f"no user {name!r}; `keel server user create` adds one")
        return int(uid)

    def set_role(self, user: str, project: str, role: str | None) -> None:
        """Give ``user`` a role on ``project`` (``None`` removes it)."""
        _check_project(project)
        if role is not None:
            scope_rank(role)
        with self._write() as c:
            uid = self._user_id(c, user)
            r = t.user_roles
            c.execute(sa.delete(r).where(r.c.user_id == uid, r.c.project == project))
            if role is not None:
                c.execute(sa.insert(r).values(user_id=uid, project=project, role=role))

    def list_users(self) -> list[UserInfo]:
        """Every user with their roles and live API tokens, by name: three queries, not one per user."""
        u, r, k = t.users, t.user_roles, t.api_tokens
        now = now_ms()
        live = sa.and_(
            k.c.kind == "api",
            k.c.revoked_at.is_(None),
            sa.or_(k.c.expires_at.is_(None), k.c.expires_at > now),
        )
        with self._read() as c:
            users = c.execute(
                sa.select(u.c.id, u.c.name, u.c.is_admin, u.c.created_at, u.c.disabled_at)
            ).all()
            roles: dict[int, dict[str, str]] = {}
            for row in c.execute(sa.select(r.c.user_id, r.c.project, r.c.role).order_by(r.c.project)):
                roles.setdefault(row.user_id, {})[row.project] = row.role
            counted = sa.select(k.c.user_id, sa.func.count()).where(live).group_by(k.c.user_id)
            counts = {row[0]: int(row[1]) for row in c.execute(counted)}
        return sorted(
            (
                UserInfo(x.name, bool(x.is_admin), roles.get(x.id, {}), x.created_at, x.disabled_at,
                         counts.get(x.id, 0))
                for x in users
            ),
            key=lambda info: info.name,
        )  # fmt: skip

    def disable_user(self, name: str) -> None:
        with self._write() as c:
            uid = self._user_id(c, name)
            c.execute(sa.update(t.users).where(t.users.c.id == uid).values(disabled_at=now_ms()))

    def check_password(self, name: str, password: str) -> bool:
        """Whether ``password`` is ``name``'s. The server calls it inside a slot of
        ``login_budget`` (:class:`~keel.server.throttle.CheckBudget`), which bounds how many
        argon2 checks run at once.

        An unknown, disabled or password-less user costs no argon2 work: the refusal waits as long
        as a real verification takes here (in the same budget slot), so that response times and
        429s do not tell which names exist, while a flood of made-up names costs neither memory
        nor CPU (the trade-off: a sleep is smoother than a hash, so many careful timings could
        still tell the two apart; the login throttle bounds how many an attacker gets)."""
        with self._read() as c:
            row = c.execute(
                sa.select(t.users.c.password_hash, t.users.c.disabled_at).where(t.users.c.name == name)
            ).first()
        stored = row.password_hash if row is not None and row.disabled_at is None else None
        if stored is None:
            self._pretend(password)
            return False
        return self._timed_verify(stored, password)

    def _timed_verify(self, hashed: str, password: str) -> bool:
        from argon2.exceptions import InvalidHashError, VerificationError

        started = time.perf_counter()
        try:
            return bool(self._hasher.verify(hashed, password))
        except (VerificationError, InvalidHashError):
            return False
        finally:
            spent = time.perf_counter() - started
            typical = self._typical_check_s
            self._typical_check_s = spent if typical is None else 0.8 * typical + 0.2 * spent

    def _pretend(self, password: str) -> None:
        """Take as long as checking a password, without the work once its cost is known."""
        if self._typical_check_s is None:  # the first time: measure on a real hash
            self._timed_verify(self._hasher.hash(secrets.token_urlsafe(16)), password)
        else:
            time.sleep(self._typical_check_s)

    # -- tokens --------------------------------------------------------------------------------
    def create_token(
        self,
        user: str | None,
        *,
        project: str = ANY_PROJECT,
        scope: str = "read",
        expires_in_s: float | None = None,
        description: str | None = None,
        kind: str = "api",
    ) -> tuple[str, TokenInfo]:
        """A new token (the full secret is returned once, never stored) and its record."""
        _check_project(project)
        scope_rank(scope)
        if expires_in_s is not None and not expires_in_s > 0:
            raise InvalidInputError("a token's lifetime must be a positive number of seconds")
        token_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        stamp = now_ms()
        expires = None if expires_in_s is None else stamp + int(expires_in_s * 1000)
        with self._write() as c:
            uid = None if user is None else self._user_id(c, user)
            c.execute(
                sa.insert(t.api_tokens).values(
                    token_id=token_id,
                    secret_hash=self._hasher.hash(secret),
                    kind=kind,
                    user_id=uid,
                    project=project,
                    scope=scope,
                    description=description,
                    created_at=stamp,
                    expires_at=expires,
                )
            )
        info = TokenInfo(token_id, user, kind, project, scope, description, stamp, expires, None)
        return f"{TOKEN_PREFIX}{token_id}_{secret}", info

    def revoke_token(self, token_id: str) -> None:
        with self._write() as c:
            done = c.execute(
                sa.update(t.api_tokens)
                .where(t.api_tokens.c.token_id == token_id, t.api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=now_ms())
            ).rowcount
        if not done:
            raise NotFoundError(f"no live token {token_id!r}; `keel server token list` shows them")

    def list_tokens(self, user: str | None = None) -> list[TokenInfo]:
        k, u = t.api_tokens, t.users
        query = sa.select(k, u.c.name.label("user_name")).select_from(k.outerjoin(u, k.c.user_id == u.c.id))
        if user is not None:
            query = query.where(u.c.name == user)
        with self._read() as c:
            rows = c.execute(query.order_by(k.c.id)).all()
        return [
            TokenInfo(
                r.token_id,
                r.user_name,
                r.kind,
                r.project,
                r.scope,
                r.description,
                r.created_at,
                r.expires_at,
                r.revoked_at,
            )
            for r in rows
        ]

    @staticmethod
    def split(token: str) -> tuple[str, str] | None:
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        token_id, _, secret = token[len(TOKEN_PREFIX) :].partition("_")
        if len(token_id) != 16 or not secret:
            return None
        return token_id, secret

    def authenticate(self, token: str, kinds: tuple[str, ...] = ("api",)) -> Principal | None:
        """The principal a token stands for, or ``None`` (unknown, wrong, revoked or expired)."""
        parts = self.split(token)
        if parts is None:
            return None
        token_id, secret = parts
        with self._read() as c:
            row = c.execute(_TOKEN_QUERY, {"token_id": token_id}).first()
            if row is None or row.kind not in kinds or row.revoked_at is not None:
                return None
            if row.expires_at is not None and row.expires_at <= now_ms():
                return None
            if row.user_id is not None and row.disabled_at is not None:
                return None
            roles = {}
            if row.user_id is not None:
                roles = dict(c.execute(_ROLES_QUERY, {"user_id": row.user_id}).all())
        if not self._verify(row.secret_hash, secret):
            return None
        return Principal(
            name=row.name or "bootstrap",
            user_id=row.user_id,
            is_admin=bool(row.is_admin),
            roles=roles,
            token_project=row.project,
            token_scope=row.scope,
            kind={"api": "token"}.get(row.kind, row.kind),
            token_id=token_id,
        )

    def _verify(self, hashed: str, secret: str) -> bool:
        digest = hashlib.sha256(secret.encode()).hexdigest()
        if self._verified.get(digest) == hashed:
            return True
        from argon2.exceptions import InvalidHashError, VerificationError

        try:
            with self.token_budget.slot():
                self._hasher.verify(hashed, secret)
        except (VerificationError, InvalidHashError):
            return False
        with self._lock:
            if len(self._verified) > 10_000:
                self._verified.clear()
            self._verified[digest] = hashed
        return True

    # -- sessions (browser logins) -------------------------------------------------------------
    def create_session(self, user: str, *, lifetime_s: float = 12 * 3600) -> tuple[str, str]:
        """(session token for the cookie, CSRF token the page must echo in ``X-Keel-CSRF``)."""
        token, info = self.create_token(
            user, project=ANY_PROJECT, scope="admin", expires_in_s=lifetime_s, kind="session"
        )
        csrf = secrets.token_urlsafe(32)
        with self._write() as c:
            c.execute(
                sa.update(t.api_tokens)
                .where(t.api_tokens.c.token_id == info.token_id)
                .values(csrf_hash=hashlib.sha256(csrf.encode()).hexdigest())
            )
        return token, csrf

    def check_csrf(self, token_id: str, csrf: str) -> bool:
        with self._read() as c:
            stored = c.execute(
                sa.select(t.api_tokens.c.csrf_hash).where(t.api_tokens.c.token_id == token_id)
            ).scalar()
        return stored is not None and secrets.compare_digest(
            stored, hashlib.sha256(csrf.encode()).hexdigest()
        )

    # -- bootstrap -----------------------------------------------------------------------------
    def ensure_bootstrap(self, lifetime_s: float = 24 * 3600) -> str | None:
        """With no user yet, a fresh one-time bootstrap token (earlier ones are revoked); else None."""
        if self.has_users():
            return None
        with self._write() as c:
            c.execute(
                sa.update(t.api_tokens)
                .where(t.api_tokens.c.kind == "bootstrap", t.api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=now_ms())
            )
        token, _ = self.create_token(
            None, scope="admin", expires_in_s=lifetime_s, kind="bootstrap", description="bootstrap"
        )
        return token

    def redeem_bootstrap(self, token: str, user: str, password: str | None) -> tuple[str, TokenInfo] | None:
        """Create the first admin with a one-time bootstrap token; returns an admin API token."""
        principal = self.authenticate(token, kinds=("bootstrap",))
        if principal is None or principal.token_id is None:
            return None
        with self._write() as c:
            done = c.execute(
                sa.update(t.api_tokens)
                .where(t.api_tokens.c.token_id == principal.token_id, t.api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=now_ms())
            ).rowcount
        if not done:  # redeemed concurrently
            return None
        self.create_user(user, password=password, is_admin=True)
        return self.create_token(user, scope="admin", description="created at bootstrap")
