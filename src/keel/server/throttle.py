"""What keeps logins and credential checks from becoming a denial of service.

Two limits, both answered with 429 and a ``Retry-After`` header:

- :class:`CheckBudget`: at most ``concurrent`` argon2 verifications at once per worker, and a short
  queue behind them. argon2 is slow and memory-hard on purpose (~64 MiB and tens of milliseconds
  each); without a budget, 64 clients sending logins made one worker hold 2.4 GB and answer
  everyone in 3 s. A request that finds the queue full is refused at once instead of waiting.
- :class:`LoginThrottle`: failed logins per user name from one client address, per user name from
  all addresses together (a larger limit) and per client address, within a window, in the database
  so that every worker sees one count. A name is not locked everywhere by the few failures one
  address may send: that let anyone lock any user out for good with 5 requests every 15 minutes;
  locking a name everywhere now takes ``per_user_total`` failures, i.e. many addresses.

  An attempt is counted *before* its password is checked, in the same write transaction as the
  count it is checked against (SQLite's write lock; a transaction-scoped advisory lock on
  PostgreSQL), so that 100 parallel attempts cannot all pass a limit of 5; a successful login
  removes its own row again.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from starlette.exceptions import HTTPException

from keel.clock import now_ms
from keel.store import schema as t
from keel.store.engine import write_transaction

__all__ = ["BusyError", "CheckBudget", "LoginThrottle"]

#: the advisory lock PostgreSQL transactions take around a throttle check (any fixed number)
_PG_LOCK = zlib.crc32(b"keel login throttle")


class BusyError(HTTPException):
    """429: a limit that protects the server was reached; ``Retry-After`` says when to try again."""

    def __init__(self, message: str, retry_after_s: int = 1):
        super().__init__(429, message, headers={"Retry-After": str(max(1, retry_after_s))})


class CheckBudget:
    """At most ``concurrent`` slow credential checks at once, ``queued`` more waiting (each at most
    ``wait_s`` seconds); anything beyond is refused with :class:`BusyError` without waiting.

    ::

        budget = CheckBudget(concurrent=2, queued=16)
        with budget.slot():
            hasher.verify(stored, password)
    """

    def __init__(self, concurrent: int = 2, queued: int = 16, wait_s: float = 5.0, what: str = "checks"):
        self.concurrent = concurrent
        self.admitted_limit = concurrent + queued
        self.wait_s = wait_s
        self.what = what
        self._slots = threading.BoundedSemaphore(concurrent)
        self._lock = threading.Lock()
        self._admitted = 0

    def _busy(self) -> BusyError:
        return BusyError(
            f"the server is busy with other {self.what}; try again in a second "
            "(server setting credential_checks limits how many run at once)"
        )

    @contextmanager
    def slot(self) -> Iterator[None]:
        with self._lock:
            if self._admitted >= self.admitted_limit:
                raise self._busy()
            self._admitted += 1
        try:
            if not self._slots.acquire(timeout=self.wait_s):
                raise self._busy()
            try:
                yield
            finally:
                self._slots.release()
        finally:
            with self._lock:
                self._admitted -= 1


class LoginThrottle:
    """Failed logins over ``window_s`` seconds, counted per user name from one address
    (``per_user``), per user name (``per_user_total``) and per address (``per_client``)."""

    def __init__(
        self,
        engine: sa.Engine,
        url: str,
        *,
        per_user: int,
        per_client: int,
        window_s: int,
        per_user_total: int | None = None,
    ) -> None:
        self.engine = engine
        self.url = url
        self.per_user = per_user
        self.per_user_total = per_user_total or per_user
        self.per_client = per_client
        self.window_s = window_s
        self._postgres = engine.dialect.name == "postgresql"

    def begin(self, user: str, client: str) -> int:
        """Count one attempt and return its id, or raise :class:`BusyError` (nothing counted) when
        ``user`` or ``client`` has used up its attempts in the window."""
        a = t.login_attempts
        now = now_ms()
        since = now - self.window_s * 1000
        client = client[:64]
        with write_transaction(self.engine, self.url) as c:
            if self._postgres:  # SQLite's BEGIN IMMEDIATE already holds the only write lock
                c.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
            c.execute(sa.delete(a).where(a.c.at < since))  # the table holds one window at most
            for condition, limit, who, setting in (
                (
                    sa.and_(a.c.user == user, a.c.client == client),
                    self.per_user,
                    f"user {user!r} from address {client}",
                    "login_attempts",
                ),
                (a.c.user == user, self.per_user_total, f"user {user!r}", "login_attempts_per_user"),
                (a.c.client == client, self.per_client, f"address {client}", "login_attempts_per_client"),
            ):
                count, oldest = c.execute(
                    sa.select(sa.func.count(), sa.func.min(a.c.at)).where(condition, a.c.at >= since)
                ).one()
                if count >= limit:
                    wait_s = (int(oldest) + self.window_s * 1000 - now) // 1000 + 1
                    raise BusyError(
                        f"too many failed logins for {who}; wait {max(1, wait_s // 60)} minute(s) "
                        f"(server settings {setting}, login_window_s)",
                        retry_after_s=wait_s,
                    )
            result = c.execute(sa.insert(a).values(user=user, client=client, at=now))
            return int(result.inserted_primary_key[0])  # type: ignore[index]

    def forget(self, attempt: int) -> None:
        """The attempt succeeded: it does not count against the user or the address."""
        a = t.login_attempts
        with write_transaction(self.engine, self.url) as c:
            c.execute(sa.delete(a).where(a.c.id == attempt))
