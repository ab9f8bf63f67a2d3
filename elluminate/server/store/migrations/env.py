"""Alembic environment: migrations run on the connection the store hands over.

The server migrates its database itself when it starts (``store.migrate``); the
``alembic`` command line is not needed. ``config.attributes["connection"]`` is a
SQLAlchemy connection (sync; on PostgreSQL an async connection's ``run_sync``).
"""

from __future__ import annotations

from alembic import context

from elluminate.server.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite rebuilds tables to alter
    transaction_per_migration=True,
)
with context.begin_transaction():
    context.run_migrations()
