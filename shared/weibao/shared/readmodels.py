"""Read models built from a service's stream, and how to rebuild one from position 0.

A read model defines its tables under a name suffix, so a replay can build a fresh copy
beside the live one and compare them row by row."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import BigInteger, Column, DateTime, Integer, MetaData, String, Table, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from weibao.shared.db import ensure_schema
from weibao.shared.messages import Message


class ReadModel(Protocol):
    """A handler for a TrackingConsumer whose tables can be rebuilt elsewhere."""

    name: str
    metadata: MetaData

    def tables(self) -> list[Table]: ...

    async def __call__(self, conn: AsyncConnection, message: Message) -> None: ...


async def create_tables(engine: AsyncEngine, model: ReadModel) -> None:
    await ensure_schema(engine)
    async with engine.begin() as conn:
        await conn.run_sync(model.metadata.create_all)


async def drop_tables(engine: AsyncEngine, model: ReadModel) -> None:
    async with engine.begin() as conn:
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

    def tables(self) -> list[Table]:
        return [self.table]

    def fresh(self, suffix: str) -> StreamIndex:
        return StreamIndex(self.upstream, suffix)

    async def __call__(self, conn: AsyncConnection, message: Message) -> None:
        t = self.table
        row = (await conn.execute(select(t.c.events).where(t.c.stream_id == message.stream_id))).first()
        values = {
            "version": message.version,
            "last_type": message.type,
            "last_position": message.position,
            "last_recorded_at": message.recorded_at,
        }
        if row is None:
            await conn.execute(
                t.insert().values(
                    stream_id=message.stream_id, events=1, first_recorded_at=message.recorded_at, **values
                )
            )
        else:
            await conn.execute(
                t.update().where(t.c.stream_id == message.stream_id).values(events=row.events + 1, **values)
            )


Fresh = Callable[[str], ReadModel]
