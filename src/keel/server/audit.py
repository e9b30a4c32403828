"""The append-only, hash-chained audit log.

Every change made through the server, every permission change, login and denied request adds one
row. A row's hash covers its own fields and the previous row's hash, and the single ``audit_head``
row holds the newest sequence number and hash; appends lock that row, so concurrent workers extend
one chain. Concurrent appends of one process share a transaction (group commit), each returning
once its entry is committed. Database triggers refuse UPDATE and DELETE on the log; someone who
gets around them (or edits the file) breaks the chain, and :func:`verify` says where.

The hash is an HMAC keyed with the server's secret (:mod:`keel.server.audit_key`), so someone
with only the database cannot write a new chain that verifies. Against someone who also holds the
secret, export the head now and then (``keel audit head``) and check that the chain still reaches
it (``keel audit verify --head SEQ:HASH``): a rewritten past changes every hash after it. Entries
written before the key existed keep their plain sha256 hash (the key file says from which entry on
the log is keyed).

Denials repeat: a client sending junk tokens in a loop would add a row per request. Denied
requests are therefore folded per actor, client address, action and status within a window
(:class:`Repeats`): the first is written, the rest are counted and written as one summary row.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from keel.clock import now_ms
from keel.server.audit_key import AuditKey
from keel.store import schema as t
from keel.store.engine import translate_errors, write_transaction

__all__ = ["AuditLog", "AuditProblem", "Repeats", "parse_head", "row_hash"]

GENESIS = "0" * 64


def row_hash(
    seq: int,
    at: int,
    actor: str,
    action: str,
    target: str,
    outcome: str,
    detail: str,
    prev_hash: str,
    key: bytes | None = None,
) -> str:
    """HMAC-SHA256 of the row with ``key``; plain sha256 for rows written before the key."""
    payload = json.dumps([seq, at, actor, action, target, outcome, detail, prev_hash], separators=(",", ":"))
    if key is None:
        return hashlib.sha256(payload.encode()).hexdigest()
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()


def parse_head(text: str) -> tuple[int, str]:
    """``SEQ:HASH`` as printed by ``keel audit head``."""
    seq, _, digest = text.strip().partition(":")
    if not seq.isdigit() or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        from keel.errors import InvalidInputError

        raise InvalidInputError(
            f"{text!r} is not an audit head; give it as `keel audit head` prints it (SEQ:HASH)"
        )
    return int(seq), digest


@dataclasses.dataclass(frozen=True)
class AuditProblem:
    seq: int
    message: str


@dataclasses.dataclass
class _Entry:
    """An entry waiting for its group's transaction."""

    actor: str
    action: str
    target: str
    outcome: str
    detail: str
    seq: int = 0
    done: bool = False
    error: BaseException | None = None

    def result(self) -> int:
        if self.error is not None:
            raise self.error
        return self.seq


# built once: building statements costs more than running them on an append per request
_INSERT = sa.insert(t.audit_log)
_ADVANCE = (
    sa.update(t.audit_head)
    .where(t.audit_head.c.id == 1)
    .values(seq=sa.bindparam("new_seq"), hash=sa.bindparam("new_hash"))
)


class AuditLog:
    """The log of one store; ``key`` (the server's, from its secret file) signs the entries."""

    def __init__(self, engine: sa.Engine, url: str = "the metadata store", key: AuditKey | None = None):
        self.engine = engine
        self.url = url
        self.key = key
        h = t.audit_head
        query = sa.select(h.c.seq, h.c.hash).where(h.c.id == 1)
        # other databases lock the head row; SQLite's BEGIN IMMEDIATE already holds the write lock
        self._head_query = query if engine.dialect.name == "sqlite" else query.with_for_update()
        self._turn = threading.Condition()
        self._queue: list[_Entry] = []
        self._writing = False

    def append(
        self,
        actor: str,
        action: str,
        target: str,
        outcome: str = "ok",
        detail: Mapping[str, Any] | None = None,
    ) -> int:
        """Add one entry; returns its sequence number once it is committed.

        Concurrent callers share transactions (group commit): the first to find no write in
        progress writes every entry queued so far in one transaction, the others wait for it. Each
        caller still returns only after its own entry is committed."""
        text = json.dumps(dict(detail or {}), sort_keys=True, separators=(",", ":"), default=str)
        entry = _Entry(actor, action, target, outcome, text)
        with self._turn:
            self._queue.append(entry)
            while not entry.done:
                if not self._writing:
                    self._writing = True
                    batch, self._queue = self._queue, []
                    break
                self._turn.wait()
            else:
                return entry.result()
        try:
            self._write(batch)
        except BaseException as exc:
            for queued in batch:
                queued.error = exc
            raise
        finally:
            with self._turn:
                for queued in batch:
                    queued.done = True
                self._writing = False
                self._turn.notify_all()
        return entry.result()

    def _write(self, batch: list[_Entry]) -> None:
        with write_transaction(self.engine, self.url) as connection:
            head = connection.execute(self._head_query).first()
            if head is None:  # a store made before the head row existed
                connection.execute(sa.insert(t.audit_head).values(id=1, seq=0, hash=GENESIS))
                head = connection.execute(self._head_query).one()
            seq, previous, at = head.seq, head.hash, now_ms()
            rows = []
            for entry in batch:
                seq += 1
                digest = row_hash(
                    seq,
                    at,
                    entry.actor,
                    entry.action,
                    entry.target,
                    entry.outcome,
                    entry.detail,
                    previous,
                    self._key_for(seq),
                )
                rows.append({"seq": seq, "at": at, "actor": entry.actor, "action": entry.action,
                             "target": entry.target, "outcome": entry.outcome, "detail": entry.detail,
                             "prev_hash": previous, "hash": digest})  # fmt: skip
                entry.seq, previous = seq, digest
            connection.execute(_INSERT, rows)
            connection.execute(_ADVANCE, {"new_seq": seq, "new_hash": previous})

    def _key_for(self, seq: int) -> bytes | None:
        key = self.key
        return key.secret if key is not None and seq >= key.keyed_from else None

    def head(self) -> tuple[int, str]:
        """(sequence number, hash) of the newest entry: keep it elsewhere to check the log later."""
        with translate_errors(self.url), self.engine.connect() as c:
            row = c.execute(sa.select(t.audit_head.c.seq, t.audit_head.c.hash)).first()
        return (0, GENESIS) if row is None else (int(row.seq), str(row.hash))

    def entries(self, limit: int = 100) -> list[dict[str, Any]]:
        a = t.audit_log
        with translate_errors(self.url), self.engine.connect() as c:
            rows = c.execute(sa.select(a).order_by(a.c.seq.desc()).limit(limit)).all()
        return [dict(r._mapping) for r in reversed(rows)]

    def verify(self, head: tuple[int, str] | None = None) -> tuple[int, list[AuditProblem]]:
        """(entries checked, problems): a broken chain, an edited row, a missing row or tail, and
        with ``head`` (from :meth:`head`, kept elsewhere) a chain that no longer reaches it."""
        a = t.audit_log
        problems: list[AuditProblem] = []
        previous, expected_seq, count = GENESIS, 1, 0
        unkeyed_mismatch: int | None = None
        reached = head is None or head == (0, GENESIS)
        with translate_errors(self.url), self.engine.connect() as c:
            stored_head = c.execute(sa.select(t.audit_head.c.seq, t.audit_head.c.hash)).first()
            for row in c.execute(sa.select(a).order_by(a.c.seq)).yield_per(5000):
                count += 1
                if row.seq != expected_seq:
                    problems.append(
                        AuditProblem(row.seq, f"entries {expected_seq}..{row.seq - 1} are missing")
                    )
                if row.prev_hash != previous:
                    problems.append(AuditProblem(row.seq, "does not link to the entry before it"))
                actual = row_hash(
                    row.seq,
                    row.at,
                    row.actor,
                    row.action,
                    row.target,
                    row.outcome,
                    row.detail,
                    row.prev_hash,
                    self._key_for(row.seq),
                )
                if actual != row.hash:
                    if self.key is None:  # keyed entries cannot be told from changed ones here
                        unkeyed_mismatch = row.seq if unkeyed_mismatch is None else unkeyed_mismatch
                    else:
                        problems.append(
                            AuditProblem(row.seq, "was changed after it was written (hash mismatch)")
                        )
                if head is not None and row.seq == head[0]:
                    reached = row.hash == head[1]
                    if not reached:
                        problems.append(
                            AuditProblem(row.seq, "differs from the exported head: the log was rewritten")
                        )
                        reached = True  # said once
                previous, expected_seq = row.hash, row.seq + 1
        if unkeyed_mismatch is not None:
            problems.append(
                AuditProblem(
                    unkeyed_mismatch,
                    "and later entries do not match their hashes: they were changed, or are keyed "
                    "with the server's secret (give --secret-file)",
                )
            )
        if not reached and head is not None:
            problems.append(
                AuditProblem(head[0], f"the exported head (entry {head[0]}) is no longer in the log")
            )
        if stored_head is None:
            problems.append(AuditProblem(0, "the audit head row is missing"))
        elif stored_head.seq != expected_seq - 1 or stored_head.hash != previous:
            problems.append(
                AuditProblem(
                    stored_head.seq,
                    f"the log ends at entry {expected_seq - 1} but the head says {stored_head.seq}: "
                    "entries were removed from the end",
                )
            )
        return count, problems


class Repeats:
    """Denials folded per key (actor, client address, action, status) within ``window_s``.

    :meth:`note` says whether to write a denial now: the first of a window is written (carrying
    how many were folded in the window before it), the rest only counted. :meth:`expired` hands
    over the counts of windows that ended, for summary rows. At most ``max_keys`` keys are
    followed; past that, denials are written one by one (bounded memory beats a complete fold)."""

    def __init__(self, window_s: float = 60.0, max_keys: int = 10_000):
        self.window_s = window_s
        self.max_keys = max_keys
        self._lock = threading.Lock()
        self._open: dict[tuple[str, ...], list[float]] = {}  # key -> [window start, folded count]

    def note(self, key: tuple[str, ...]) -> int | None:
        """``None``: folded, write nothing; else write a row now, noting this many folded before."""
        now = time.monotonic()
        with self._lock:
            window = self._open.get(key)
            if window is not None and now - window[0] < self.window_s:
                window[1] += 1
                return None
            folded = int(window[1]) if window is not None else 0
            if window is None and len(self._open) >= self.max_keys:
                return 0
            self._open[key] = [now, 0]
            return folded

    def expired(self, everything: bool = False) -> list[tuple[tuple[str, ...], int]]:
        """(key, folded count) of each window that ended (``everything``: of all windows, when
        the server stops) with denials folded; those windows are forgotten."""
        now = time.monotonic()
        with self._lock:
            ended = [k for k, (start, _) in self._open.items() if everything or now - start >= self.window_s]
            counts = [(k, int(self._open.pop(k)[1])) for k in ended]
        return [(k, n) for k, n in counts if n]
