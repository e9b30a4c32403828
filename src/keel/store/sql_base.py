"""Plumbing shared by the parts of ``SqlStore``: transactions, id look-ups, small helpers."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import Any

import sqlalchemy as sa

from keel import limits
from keel.clock import now_ms
from keel.errors import NotFoundError
from keel.ids import check_run_id
from keel.store import schema as t
from keel.store.engine import translate_errors, write_transaction

__all__ = ["SqlBase", "current_user", "insert_tags"]


class SqlBase:
    """What every part of the SQL store relies on: the engine and transaction helpers."""

    url: str
    engine: sa.Engine
    _run_pks: dict[str, int]

    # -- plumbing ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        """A write transaction; on SQLite it takes the write lock up front (BEGIN IMMEDIATE)."""
        with write_transaction(self.engine, self.url) as connection:
            yield connection

    @contextlib.contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        with translate_errors(self.url), self.engine.connect() as connection:
            yield connection

    def _run_pk(self, connection: sa.Connection, run_id: str) -> int:
        pk = self._run_pks.get(run_id)
        if pk is None:
            check_run_id(run_id)
            pk = connection.execute(sa.select(t.runs.c.pk).where(t.runs.c.run_id == run_id)).scalar()
            if pk is None:
                raise NotFoundError(f"no run {run_id} in {self.url}; `keel runs list` shows the runs")
            self._run_pks[run_id] = pk
        return pk

    def _project_id(self, connection: sa.Connection, project: str, create: bool = True) -> int:
        select = sa.select(t.projects.c.id).where(t.projects.c.name == project)
        pid = connection.execute(select).scalar()
        if pid is None:
            if not create:
                raise NotFoundError(f"no project {project!r}")
            # processes creating the same project at once: one insert wins, the others take its row
            statement = dialect_insert(connection.dialect.name, t.projects).values(
                name=project, created_at=now_ms()
            )
            connection.execute(statement.on_conflict_do_nothing())
            pid = connection.execute(select).scalar()
        return int(pid)  # type: ignore[arg-type]


def dialect_insert(dialect: str, table: sa.Table) -> Any:
    """The dialect's INSERT (for ON CONFLICT); only that dialect is imported: PostgreSQL's costs
    ~25 ms of a SQLite user's start."""
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)


def insert_tags(
    c: sa.Connection, table: sa.Table, owner: Mapping[str, Any], tags: Mapping[str, Any] | None
) -> None:
    """Insert validated tags into a (owner..., key, value) tag table."""
    rows = [{**owner, "key": k, "value": v} for k, v in limits.clean_tags(tags or {}).items()]
    if rows:
        c.execute(sa.insert(table), rows)


def current_user() -> str:
    for name in ("KEEL_USER", "USER", "LOGNAME"):
        if os.environ.get(name):
            return os.environ[name]
    try:
        import getpass

        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
