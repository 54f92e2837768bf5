"""Read models built from a service's stream, and how to rebuild one from position 0.

A read model defines its tables under a name suffix, so a replay can build a fresh copy
beside the live one and compare them row by row."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import BigInteger, Column, DateTime, Integer, MetaData, String, Table, bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from weibao.shared.db import begin_ddl, begin_write, ensure_schema
from weibao.shared.messages import Message


class ReadModel(Protocol):
    """A handler for a TrackingConsumer whose tables can be rebuilt elsewhere."""

    name: str
    metadata: MetaData

    def tables(self) -> list[Table]: ...

    async def __call__(self, conn: AsyncConnection, message: Message) -> None: ...


async def create_tables(engine: AsyncEngine, model: ReadModel) -> None:
    await ensure_schema(engine)
    async with begin_ddl(engine) as conn:
        await conn.run_sync(model.metadata.create_all)


async def drop_tables(engine: AsyncEngine, model: ReadModel) -> None:
    async with begin_write(engine) as conn:
        await conn.run_sync(model.metadata.drop_all)


async def rows_of(engine: AsyncEngine, model: ReadModel) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order, keyed by the table's base name."""
    found = {}
    async with engine.connect() as conn:
        for table in model.tables():
            keys = list(table.primary_key.columns) or list(table.columns)
            rows = await conn.execute(select(table).order_by(*keys))
            found[table.name.removesuffix(_suffix_of(model))] = [tuple(row) for row in rows]
    return found


async def upsert(conn: AsyncConnection, table: Table, key: str, value: Any, values: dict[str, Any]) -> None:
    """Insert the row keyed `key=value`, or update it: the one write most read models do."""
    found = await conn.scalar(select(table.c[key]).where(table.c[key] == value))
    if found is None:
        await conn.execute(table.insert().values({key: value, **values}))
    else:
        await conn.execute(table.update().where(table.c[key] == value).values(values))


def _suffix_of(model: ReadModel) -> str:
    return getattr(model, "suffix", "")


@dataclass
class StreamIndex:
    """Every aggregate a service has, with its version and last change: the auditor's
    list to pick a history from, kept by every service for its upstreams."""

    upstream: str
    suffix: str = ""

    def __post_init__(self) -> None:
        self.name = f"stream_index_{self.upstream}"
        self.metadata = MetaData()
        self.table = Table(
            f"stream_index_{self.upstream}{self.suffix}",
            self.metadata,
            Column("stream_id", String(200), primary_key=True),
            Column("version", Integer, nullable=False),
            Column("events", Integer, nullable=False),
            Column("last_type", String(200), nullable=False),
            Column("last_position", BigInteger, nullable=False),
            Column("first_recorded_at", DateTime(timezone=True), nullable=False),
            Column("last_recorded_at", DateTime(timezone=True), nullable=False),
        )
        # Built once (issue 15): building a statement costs more than running it on SQLite.
        t = self.table
        values: dict[str, Any] = {
            "version": bindparam("version"),
            "events": bindparam("events"),
            "last_type": bindparam("type"),
            "last_position": bindparam("position"),
            "last_recorded_at": bindparam("last"),
        }
        self._known = select(t.c.stream_id, t.c.events).where(t.c.stream_id.in_(bindparam("sids", expanding=True)))
        self._insert = t.insert().values(stream_id=bindparam("sid"), first_recorded_at=bindparam("first"), **values)
        self._update = t.update().where(t.c.stream_id == bindparam("sid")).values(**values)

    def tables(self) -> list[Table]:
        return [self.table]

    def fresh(self, suffix: str) -> StreamIndex:
        return StreamIndex(self.upstream, suffix)

    async def __call__(self, conn: AsyncConnection, message: Message) -> None:
        await self.apply_batch(conn, [message])

    async def apply_batch(self, conn: AsyncConnection, messages: Sequence[Message]) -> None:
        """Fold the batch per stream in memory, then one read and at most two writes."""
        folded: dict[str, dict[str, Any]] = {}
        for m in messages:
            row = folded.setdefault(m.stream_id, {"sid": m.stream_id, "events": 0, "first": m.recorded_at})
            row.update(events=row["events"] + 1, version=m.version, type=m.type, position=m.position,
                       last=m.recorded_at)
        existing = {r.stream_id: r.events for r in await conn.execute(self._known, {"sids": list(folded)})}
        fresh = [row for sid, row in folded.items() if sid not in existing]
        seen = [
            {**row, "events": row["events"] + existing[sid]} for sid, row in folded.items() if sid in existing
        ]
        if fresh:
            await conn.execute(self._insert, fresh)
        if seen:
            await conn.execute(self._update, seen)

