"""Layer 1: EventStore.append against a bare SQLAlchemy Core insert.

Both run on the same engine (make_engine: same pool, same SQLite pragmas), one row per
transaction opened with begin_write (BEGIN IMMEDIATE on SQLite), with the same number of
concurrent writers, each writing its own stream and tracking its own version."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, MetaData, String, Table, Text, UniqueConstraint
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.report import Result, show
from weibao.shared.db import begin_write
from weibao.shared.events import GENESIS_HASH, NewEvent, canonical_json
from weibao.shared.eventstore import NO_STREAM, EventStore

# The events table's shape, minus what only the store computes (position, hash chain).
raw_metadata = MetaData()
raw_events = Table(
    "bench_raw_events",
    raw_metadata,
    Column("position", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("stream_id", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("type", String(200), nullable=False),
    Column("schema_version", Integer, nullable=False),
    Column("data", Text, nullable=False),
    Column("meta", Text, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    UniqueConstraint("stream_id", "version", name="bench_raw_stream_version"),
    Index("bench_raw_recorded_at", "recorded_at"),
)

# One write to `stream` that expects it at `version`; returns the stream's new version.
Append = Callable[[str, int], Awaitable[int]]


def store_append(store: EventStore) -> Append:
    async def append(stream: str, version: int) -> int:
        result = await store.append(stream, [NewEvent("Thing", {"n": version})], expected_version=version)
        return result.version

    return append


def raw_insert(engine: AsyncEngine) -> Append:
    async def insert(stream: str, version: int) -> int:
        async with begin_write(engine) as conn:
            await conn.execute(
                raw_events.insert().values(
                    stream_id=stream, version=version + 1, type="Thing", schema_version=1,
                    data=canonical_json({"n": version}), meta="{}", recorded_at=datetime.now(UTC),
                    prev_hash=GENESIS_HASH, hash=GENESIS_HASH,
                )
            )
        return version + 1

    return insert


async def drive(append: Append, writers: int, seconds: float, prefix: str) -> float:
    """Writes per second by `writers` concurrent writers, each on its own stream, for `seconds`."""
    counts = [0] * writers

    async def writer(index: int) -> None:
        stream, version = f"{prefix}-{index}", NO_STREAM
        while time.perf_counter() < deadline:
            version = await append(stream, version)
            counts[index] += 1

    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*(writer(i) for i in range(writers)))
    return sum(counts) / (time.perf_counter() - started)


async def bench_store(
    backend: str, engine: AsyncEngine, seconds: float, writer_counts: tuple[int, ...]
) -> list[Result]:
    store = EventStore(engine)
    await store.create_tables()
    async with engine.begin() as conn:
        await conn.run_sync(raw_metadata.create_all)
    raw, layer = raw_insert(engine), store_append(store)
    results = []
    for writers in writer_counts:
        # Untimed warm-up: opens the pool's connections for both sides.
        await drive(raw, writers, 0.2, f"warm-raw-{writers}")
        await drive(layer, writers, 0.2, f"warm-store-{writers}")
        raw_rate = await drive(raw, writers, seconds, f"raw-{writers}")
        layer_rate = await drive(layer, writers, seconds, f"store-{writers}")
        results.append(show(Result(
            f"store.append {backend} x{writers}", layer_rate, f"Core insert {backend} x{writers}", raw_rate,
        )))
    return results
