"""Opening a metadata database: URLs, SQLite pragmas, and migrations applied under a lock."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from keel.errors import ConflictError, StoreError, StoreReadOnlyError, StoreUnavailableError
from keel.store.base import check_store_url
from keel.store.schema import HEAD_REVISION

__all__ = ["create_engine", "migrate", "normalize_url", "translate_errors", "write_transaction"]

# PostgreSQL advisory-lock key for migrations: any fixed 64-bit number ("keel" in ASCII)
_PG_LOCK_KEY = 0x6B65656C


def normalize_url(url: str) -> str:
    """Accept the URL spellings people use and pick keel's drivers."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith(("sqlite:", "postgresql+")):
        return url
    check_store_url(url)  # raises for a form keel does not know
    raise StoreError(f"a {url.split(':', 1)[0]} URI names a keel server, not a database: {url!r}")


def create_engine(url: str) -> sa.Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        parsed = sa.engine.make_url(url)
        path = parsed.database
        # a `file:` URI (uri=true) names an existing database, often read-only: never a folder to create
        if path and path != ":memory:" and parsed.query.get("uri") != "true":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})
        _configure_sqlite(engine)
        _sqlite_write_locks[engine] = threading.RLock()
        return engine
    try:
        return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    except ModuleNotFoundError:
        from keel.errors import MissingDependencyError

        raise MissingDependencyError("psycopg", "postgres", "A PostgreSQL store") from None


def _configure_sqlite(engine: sa.Engine) -> None:
    """WAL, a long busy timeout and BEGIN IMMEDIATE for writes, so concurrent writers queue, not fail."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        # large pages keep metric chunks (blobs) in few overflow pages; only takes effect on a new
        # file, before WAL is switched on, and is ignored afterwards
        cursor.execute("PRAGMA page_size = 32768")
        cursor.execute("PRAGMA busy_timeout = 60000")
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError:
            pass  # read-only file: WAL cannot be switched on, reads still work
        cursor.execute("PRAGMA synchronous = NORMAL")
        # reads of large histories go through the page cache without copying
        cursor.execute("PRAGMA mmap_size = 268435456")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        immediate = connection.get_execution_options().get("keel_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


#: SQLite engines -> the lock their writing threads queue on (see write_transaction)
_sqlite_write_locks: weakref.WeakKeyDictionary[sa.Engine, threading.RLock] = weakref.WeakKeyDictionary()


@contextlib.contextmanager
def write_transaction(engine: sa.Engine, url: str) -> Iterator[sa.Connection]:
    """A write transaction that takes SQLite's write lock up front (BEGIN IMMEDIATE).

    Threads of one process queue on a Python lock first: it hands over the moment the holder
    commits, while SQLite's own busy handler polls with sleeps of up to 25 ms. With a server's
    thread pool writing at once that polling, not the writes, was most of the time. Other processes
    still meet SQLite's busy timeout."""
    lock = _sqlite_write_locks.get(engine)
    with (
        translate_errors(url),
        lock if lock is not None else contextlib.nullcontext(),
        engine.connect() as raw,
    ):
        connection = raw.execution_options(keel_write=True)
        with connection.begin():
            yield connection


@contextlib.contextmanager
def translate_errors(url: str) -> Iterator[None]:
    """Turn driver errors about disks and permissions into errors that say what to do."""
    try:
        yield
    except sa.exc.IntegrityError as exc:
        # a unique constraint refused the change: usually another process wrote the same record first
        detail = str(exc.orig).strip().splitlines()[0][:200]
        raise ConflictError(
            f"the change conflicts with a record already in {url} ({detail}); read it back or retry"
        ) from exc
    except sa.exc.OperationalError as exc:
        text = str(exc.orig).lower()
        if "readonly" in text or "read-only" in text or "read only" in text:
            raise StoreReadOnlyError(
                f"the metadata store {url} is read-only: nothing was written. Make the file and its "
                "folder writable, or point KEEL_TRACKING_URI at a writable store."
            ) from exc
        if "disk is full" in text or "disk full" in text or "no space" in text:
            raise StoreReadOnlyError(
                f"the disk holding {url} is full: the last change was rolled back and the store is "
                "intact. Free some space and log again."
            ) from exc
        if "unable to open" in text:
            raise StoreError(
                f"cannot open the metadata store {url}: {exc.orig}. Check the path and its permissions."
            ) from exc
        # lost connections, a server that is down, a lock held too long: worth trying again later
        raise StoreUnavailableError(f"the metadata store {url} failed: {exc.orig}") from exc


def current_revision(connection: sa.Connection) -> str | None:
    try:
        return connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    except sa.exc.DatabaseError:
        connection.rollback()
        return None


def _create_fresh(connection: sa.Connection) -> bool:
    """Create the head schema in an empty database in one transaction, stamped with the head
    revision; False (nothing done) when the database already holds tables.

    Running every migration on a new store costs a few hundred milliseconds (importing Alembic,
    one ALTER after another); a test keeps the schema in code equal to the migrations' result.
    """
    from keel.store.schema import metadata

    if sa.inspect(connection).get_table_names():
        return False
    metadata.create_all(connection)
    connection.exec_driver_sql(
        "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
        "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
    )
    connection.execute(sa.text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": HEAD_REVISION})
    connection.commit()
    return True


def migrate(engine: sa.Engine, url: str) -> None:
    """Bring the schema to ``HEAD_REVISION``; cheap when it is already there."""
    with translate_errors(url), engine.connect() as connection:
        revision = current_revision(connection)
        connection.rollback()
    if revision == HEAD_REVISION:
        return
    if engine.dialect.name == "sqlite":
        from filelock import FileLock

        database = engine.url.database or ""
        lock_path = f"{database}.migrate.lock" if database and database != ":memory:" else None
        lock: Any = FileLock(lock_path, timeout=300) if lock_path else contextlib.nullcontext()
        with lock, translate_errors(url):
            _upgrade(engine)
    else:
        with translate_errors(url), engine.connect() as connection:
            connection.exec_driver_sql(f"SELECT pg_advisory_lock({_PG_LOCK_KEY})")
            connection.commit()
            try:
                _upgrade(engine)
            finally:
                connection.exec_driver_sql(f"SELECT pg_advisory_unlock({_PG_LOCK_KEY})")
                connection.commit()


def _upgrade(engine: sa.Engine, target: str = "head", *, fresh: bool = True) -> None:
    """Migrate to ``target``. An empty database going to the head is created from the schema in
    code at once (``fresh=False`` runs every migration instead, as the schema test does)."""
    with engine.connect() as connection:
        revision = current_revision(connection)
        if revision == HEAD_REVISION and target == "head":
            return  # another process migrated while we waited for the lock
        connection.rollback()
        if fresh and target == "head" and revision is None and _create_fresh(connection):
            return
    from alembic import command
    from alembic.config import Config

    with engine.connect() as connection:
        config = Config()
        config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        config.attributes["connection"] = connection
        command.upgrade(config, target)
        connection.commit()
