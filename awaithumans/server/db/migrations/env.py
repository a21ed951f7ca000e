"""Alembic environment: always driven programmatically with a live connection."""

from __future__ import annotations

from alembic import context

from awaithumans.server.db.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "awaithumans migrations run from the server (awaithumans serve / dev / migrate), "
        "not from the alembic command line"
    )
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
