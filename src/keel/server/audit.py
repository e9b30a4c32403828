"""The append-only, hash-chained audit log.

Every change made through the server, every permission change, login and denied request adds one
row. A row's hash is the sha256 of its own fields and the previous row's hash, and the single
``audit_head`` row holds the newest sequence number and hash; appends lock that row, so concurrent
workers extend one chain. Concurrent appends of one process share a transaction (group commit),
each returning once its entry is committed. Database triggers refuse UPDATE and DELETE on the log;
someone who gets around them (or edits the file) breaks the chain, and :func:`verify` says where.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from keel.clock import now_ms
from keel.store import schema as t
from keel.store.engine import translate_errors, write_transaction

__all__ = ["AuditLog", "AuditProblem", "row_hash"]

GENESIS = "0" * 64


def row_hash(
    seq: int, at: int, actor: str, action: str, target: str, outcome: str, detail: str, prev_hash: str
) -> str:
    payload = json.dumps([seq, at, actor, action, target, outcome, detail, prev_hash], separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


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
    def __init__(self, engine: sa.Engine, url: str = "the metadata store"):
        self.engine = engine
        self.url = url
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
                    seq, at, entry.actor, entry.action, entry.target, entry.outcome, entry.detail, previous
                )
                rows.append({"seq": seq, "at": at, "actor": entry.actor, "action": entry.action,
                             "target": entry.target, "outcome": entry.outcome, "detail": entry.detail,
                             "prev_hash": previous, "hash": digest})  # fmt: skip
                entry.seq, previous = seq, digest
            connection.execute(_INSERT, rows)
            connection.execute(_ADVANCE, {"new_seq": seq, "new_hash": previous})

    def count_recent(self, action: str, target: str, outcome: str, since_ms: int) -> int:
        a = t.audit_log
        with translate_errors(self.url), self.engine.connect() as c:
            return int(
                c.execute(
                    sa.select(sa.func.count()).where(
                        a.c.action == action, a.c.target == target, a.c.outcome == outcome, a.c.at >= since_ms
                    )
                ).scalar_one()
            )

    def entries(self, limit: int = 100) -> list[dict[str, Any]]:
        a = t.audit_log
        with translate_errors(self.url), self.engine.connect() as c:
            rows = c.execute(sa.select(a).order_by(a.c.seq.desc()).limit(limit)).all()
        return [dict(r._mapping) for r in reversed(rows)]

    def verify(self) -> tuple[int, list[AuditProblem]]:
        """(entries checked, problems): a broken chain, an edited row, a missing row or tail."""
        a = t.audit_log
        problems: list[AuditProblem] = []
        previous, expected_seq, count = GENESIS, 1, 0
        with translate_errors(self.url), self.engine.connect() as c:
            head = c.execute(sa.select(t.audit_head.c.seq, t.audit_head.c.hash)).first()
            for row in c.execute(sa.select(a).order_by(a.c.seq)).yield_per(5000):
                count += 1
                if row.seq != expected_seq:
                    problems.append(
                        AuditProblem(row.seq, f"entries {expected_seq}..{row.seq - 1} are missing")
                    )
                if row.prev_hash != previous:
                    problems.append(AuditProblem(row.seq, "does not link to the entry before it"))
                actual = row_hash(
                    row.seq, row.at, row.actor, row.action, row.target, row.outcome, row.detail, row.prev_hash
                )
                if actual != row.hash:
                    problems.append(AuditProblem(row.seq, "was changed after it was written (hash mismatch)"))
                previous, expected_seq = row.hash, row.seq + 1
        if head is None:
            problems.append(AuditProblem(0, "the audit head row is missing"))
        elif head.seq != expected_seq - 1 or head.hash != previous:
            problems.append(
                AuditProblem(
                    head.seq,
                    f"the log ends at entry {expected_seq - 1} but the head says {head.seq}: "
                    "entries were removed from the end",
                )
            )
        return count, problems
