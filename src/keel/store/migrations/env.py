"""Alembic environment: keel runs migrations on a connection it already holds (see keel.store.migrate)."""

from __future__ import annotations

from alembic import context

from keel.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - keel always passes a connection
    raise RuntimeError("keel migrations run through keel.store.migrate, which passes a connection")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
