"""Engines for the two backends we support, with the settings our guarantees rest on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

# Marks a connection whose transaction appended events (set by the event store): after
# its commit the relay is woken; a read model's commit, which appends nothing, leaves it
# asleep instead of sending it to read the log for nothing.
APPENDED = "weibao_appended"


def appended(conn: AsyncConnection) -> bool:
    """Whether this transaction appended events (and forget it: the connection is pooled)."""
    return bool(conn.info.pop(APPENDED, False))


# An execution option on a connection: its next transaction takes SQLite's write lock
# at BEGIN, so two writers queue on busy_timeout instead of failing on lock upgrade.
WRITE = {"weibao_write": True}


def async_url(url: str) -> str:
    """Accept the plain URLs people write and pick our async drivers."""
    parsed = make_url(url)
    if parsed.drivername in ("sqlite", "sqlite+pysqlite"):
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


# SQLSTATEs that mean "the server is not there for us now", not "your SQL is wrong":
# class 08 (connection exception), and a server shutting down (57P01 admin, 57P02
# crash) or not accepting connections yet (57P03: starting up, recovering, shutting down).
_UNAVAILABLE_STATES = ("08", "57P01", "57P02", "57P03")


def unavailable(error: BaseException) -> bool:
    """Whether `error` says the database cannot be reached right now (refused, cut,
    restarting), so the same work may succeed if tried again later; false for every
    error about the work itself. Whether a transaction cut this way committed is not
    known: a command retried with its command id is stored once either way.

    The drivers say it in different ways: a refused socket is a plain OSError (asyncpg
    raises it outside the DB-API), a cut session a DBAPIError that SQLAlchemy marks
    connection_invalidated, a server shutting down or starting up a generic DBAPIError
    over asyncpg's exception with its SQLSTATE. So the whole cause chain is looked at."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        found = pending.pop()
        if found is None or id(found) in seen:
            continue
        seen.add(id(found))
        if isinstance(found, OSError):  # refused, reset, unreachable; also a connect timeout
            return True
        if isinstance(found, DBAPIError):
            if found.connection_invalidated:
                return True
            orig = found.orig
            pending.append(orig if isinstance(orig, BaseException) else None)
        state = getattr(found, "sqlstate", None) or getattr(found, "pgcode", None)
        if isinstance(state, str) and state.startswith(_UNAVAILABLE_STATES):
            return True
        pending += [found.__cause__, found.__context__]
    return False


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str, *, schema: str | None = None, echo: bool = False) -> AsyncEngine:
    """An engine for `url`; on PostgreSQL, `schema` (if given) holds this service's tables."""
    kwargs: dict[str, Any] = {"echo": echo}
    if schema is not None:
        kwargs["execution_options"] = {"schema_translate_map": {None: schema}}
    full = async_url(url)
    if make_url(full).get_backend_name() == "postgresql":
        # After a PostgreSQL restart every pooled connection is dead, and without a ping
        # each would fail one request, consumer batch or relay turn before the pool
        # noticed. One round trip per checkout buys that the first transaction after
        # the restart already runs on a live connection. (SQLite has no server to lose.)
        kwargs["pool_pre_ping"] = True
    engine = create_async_engine(full, **kwargs)
    if is_sqlite(engine):
        _sqlite_settings(engine)
    return engine


def schema_of(engine: AsyncEngine) -> str | None:
    """The schema an engine's tables live in (None: the default); raw SQL needs it."""
    translate = engine.get_execution_options().get("schema_translate_map") or {}
    schema = translate.get(None)
    return str(schema) if schema else None


def qualified(engine: AsyncEngine, table: str) -> str:
    schema = schema_of(engine)
    quote = engine.dialect.identifier_preparer.quote
    return f"{quote(schema)}.{quote(table)}" if schema else quote(table)


def _sqlite_settings(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # We issue BEGIN ourselves (below); the driver's implicit BEGIN would defer locks.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed event survives power loss, which WAL+NORMAL does not promise.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("weibao_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


async def ensure_schema(engine: AsyncEngine) -> None:
    schema = schema_of(engine)
    if schema and not is_sqlite(engine):
        async with engine.begin() as conn:
            await _ddl_lock(conn)
            # Look first: CREATE SCHEMA IF NOT EXISTS needs the right to create in the
            # database even when the schema exists, which a service's own role lacks.
            found = await conn.scalar(text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": schema})
            if found is None:
                quote = engine.dialect.identifier_preparer.quote
                await conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {quote(schema)}"))


@asynccontextmanager
async def begin_write(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A transaction that will write: SQLite takes its single writer lock up front."""
    async with engine.connect() as plain:
        conn = await plain.execution_options(**WRITE)
        async with conn.begin():
            yield conn


# PostgreSQL's "IF NOT EXISTS" is not safe against a concurrent creator: two replicas of a
# service starting together both see no table, and the second CREATE fails on the catalog's
# unique index. One advisory lock (transaction-scoped, any fixed key) makes them take turns.
_DDL_LOCK_KEY = 0x57656962  # "Weib"


async def _ddl_lock(conn: AsyncConnection) -> None:
    if conn.dialect.name != "sqlite":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _DDL_LOCK_KEY})


@asynccontextmanager
async def begin_ddl(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A transaction that creates tables: SQLite's writer lock, PostgreSQL's DDL lock, so
    processes starting together (replicas, `weibao up`) create each table once."""
    async with begin_write(engine) as conn:
        await _ddl_lock(conn)
        yield conn
