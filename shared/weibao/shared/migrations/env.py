"""Alembic's entry, run by weibao.shared.schema with the connection it holds (under the
DDL lock, inside its transaction): the cookbook's "sharing a connection" recipe."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    version_table=context.config.attributes["version_table"],
    # The service's own PostgreSQL schema, named outright: Alembic's statements do not go
    # through the engine's schema translation. None on SQLite.
    version_table_schema=context.config.attributes["schema"],
)
with context.begin_transaction():
    context.run_migrations()
