"""The server's secret that keys the audit log's hash chain.

A plain hash chain only shows that rows were changed by someone who did not recompute the hashes;
anyone with write access to the database can rewrite the whole chain. Keyed with a secret that
lives in a file beside the server (not in the database, never logged, readable only by its
owner), a rewritten chain no longer verifies. The file is JSON::

    {"key": "<64 hex digits>", "keyed_from": 1}

``keyed_from`` is the first entry keyed with it: a store whose log began before the key existed
keeps its older entries' plain sha256 hashes, and a verifier knows from where on an unkeyed entry
is a forgery. ``keel server`` makes the file at its first start (``secret_file`` in
:class:`~keel.server.config.ServerConfig`; by default ``<store file>.secret`` beside a SQLite store,
``.keel/server.secret`` otherwise).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
from pathlib import Path

import sqlalchemy as sa

from keel.errors import ConfigError

__all__ = ["AuditKey", "default_secret_file", "ensure_key", "load_key"]


@dataclasses.dataclass(frozen=True)
class AuditKey:
    secret: bytes = dataclasses.field(repr=False)
    #: the first audit entry (sequence number) hashed with this key
    keyed_from: int


def default_secret_file(store_url: str) -> str | None:
    """``<file>.secret`` beside a SQLite store file; ``None`` for other stores (then the server's
    configuration or the command line names it)."""
    url = sa.engine.make_url(store_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return f"{url.database}.secret"


def load_key(path: str | Path) -> AuditKey | None:
    """The key in ``path``, or ``None`` when there is no such file."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
        return AuditKey(bytes.fromhex(data["key"]), int(data["keyed_from"]))
    except (ValueError, KeyError, TypeError):
        raise ConfigError(
            f"the audit key file {path} is damaged; restore it from a backup (a new key cannot "
            "check the entries the old one signed)"
        ) from None


def ensure_key(path: str | Path, engine: sa.Engine) -> AuditKey:
    """The key in ``path``; made (readable by its owner only) when there is none yet, keying the
    entries after the log's current head. Several workers starting at once agree on one key."""
    found = load_key(path)
    if found is not None:
        return found
    from keel.store import schema as t

    with engine.connect() as c:
        head = c.execute(sa.select(t.audit_head.c.seq)).scalar()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"key": secrets.token_hex(32), "keyed_from": int(head or 0) + 1})
    draft = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileExistsError):  # another worker made it first: use theirs
            os.link(draft, path)
    finally:
        draft.unlink(missing_ok=True)
    key = load_key(path)
    assert key is not None
    return key
