"""The kit's tables, versioned: Alembic revisions in `migrations/` (its README says how
to add one), applied when a service starts and by `python -m weibao.<service> migrate`.

A database made by v0.1.0, before versions, holds the tables and no version row: it is
stamped with the baseline first, then upgraded like any other."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, MetaData, Table, inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from weibao.shared.db import begin_ddl, ensure_schema

MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = "weibao_kit_version"
BASELINE = "0001"


def _config(conn: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes.update(connection=conn, version_table=VERSION_TABLE,
                             schema=_schema(conn) if conn is not None else None)
    return config


def head() -> str:
    found = ScriptDirectory.from_config(_config()).get_current_head()
    assert found is not None
    return found


def _schema(conn: Connection) -> str | None:
    # The service's PostgreSQL schema, as the engine translates it (weibao.shared.db).
    schema = (conn.get_execution_options().get("schema_translate_map") or {}).get(None)
    return str(schema) if schema else None


def current(conn: Connection) -> str | None:
    """The revision the kit's tables on `conn` are at (None: unversioned or empty)."""
    schema = _schema(conn)
    if VERSION_TABLE not in inspect(conn).get_table_names(schema=schema):
        return None
    context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE,
                                                     "version_table_schema": schema})
    return context.get_current_revision()


def migrate_connection(conn: Connection, target: str = "head") -> tuple[str | None, str | None]:
    """Bring the kit's tables on `conn` to `target`; return (from, to) revisions."""
    config = _config(conn)
    before = current(conn)
    if before is None and "events" in inspect(conn).get_table_names(schema=_schema(conn)):
        # Made before versions (v0.1.0): its tables are the baseline's; mark them so.
        command.stamp(config, BASELINE)
        before = BASELINE
    command.upgrade(config, target)
    return before, current(conn)


# Alembic keeps the running migration in module-level proxies (`alembic.context`,
# `alembic.op`), and an async driver lets other tasks run while a migration waits on its
# database: two services migrating in one process (the tests start them side by side)
# would run on each other's connection. So one migration at a time per event loop.
_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


async def migrate(engine: AsyncEngine) -> tuple[str | None, str | None]:
    """Under the DDL lock: replicas starting together migrate once, the others find it done."""
    await ensure_schema(engine)
    turn = _turns.setdefault(asyncio.get_running_loop(), asyncio.Lock())
    async with turn, begin_ddl(engine) as conn:
        return await conn.run_sync(migrate_connection)


def drift(conn: Connection, tables: Sequence[Table]) -> list[str]:
    """How the database's `tables` differ from the code's (Alembic's comparison: tables,
    columns, types, nullability, indexes); [] when they match or none exists yet."""
    schema = _schema(conn)
    names = {table.name for table in tables}
    if not names & set(inspect(conn).get_table_names(schema=schema)):
        return []
    # The tables as they stand in the service's schema; unnamed indexes named as they were
    # made (schema_translate_map makes them without the schema in their names).
    target = MetaData(naming_convention={"ix": "ix_%(table_name)s_%(column_0_name)s"})
    for table in tables:
        if schema is None:
            table.to_metadata(target)
        else:
            table.to_metadata(target, schema=schema)

    def ours(name: str | None, kind: str, _parent: Any) -> bool:
        if kind == "schema":
            return name == schema
        return kind != "table" or name in names

    context = MigrationContext.configure(conn, opts={"compare_type": True, "include_schemas": schema is not None,
                                                     "include_name": ours})
    return [_said(difference) for difference in compare_metadata(context, target)]


def _said(difference: Any) -> str:
    # Alembic's diffs are tuples (or lists of tuples per column): ("add_column", schema,
    # table, Column) ...; said briefly for a log line.
    found = difference[0] if isinstance(difference, list) else difference
    kind = found[0]
    parts = [str(part.name if hasattr(part, "name") else part) for part in found[1:] if part is not None]
    return f"{kind} {' '.join(parts)}"[:300]
