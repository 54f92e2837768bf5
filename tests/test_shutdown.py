"""A service stopping (Ctrl-C, a restart) lets its consumers finish the batch they hold:
nothing is cancelled between a write and its commit, so no connection is left holding
SQLite's write lock for the next writer to find the database locked."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nats.aio.client import Client as NATS
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.helpers import eventually, harness_seed
from weibao.runtime.natsd import NatsServer
from weibao.shared.consumer import tracking_table
from weibao.shared.db import make_engine
from weibao.shared.events import NewEvent
from weibao.shared.eventstore import EventStore
from weibao.shared.keys import Keyring
from weibao.shared.messages import Message
from weibao.shared.readmodels import StreamIndex
from weibao.shared.service import ServiceSpec, Settings, serve


@dataclass
class SlowIndex(StreamIndex):
    """The auditor's stream index, slow to apply: it is mid-transaction when the stop comes."""

    entered: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.name = "slow_index"

    async def apply_batch(self, conn: AsyncConnection, messages: Sequence[Message]) -> None:
        await super().apply_batch(conn, messages)
        self.entered.set()
        await asyncio.sleep(0.5)  # written, not yet committed


async def test_a_stop_mid_batch_commits_the_batch_and_leaves_the_database_unlocked(
        nats_server: NatsServer, nc: NATS, tmp_path: Path) -> None:
    path = tmp_path / "dispatch.db"
    model = SlowIndex("dispatch")
    entered = model.entered
    spec = ServiceSpec(name="dispatch", read_models=lambda _store: [("dispatch", model)])
    stop = asyncio.Event()
    # As the harness: a read model of the kit's own, whose durable no real service has.
    settings = Settings(nats_server.url, f"sqlite:///{path}", nats_seed=str(harness_seed()))
    service = asyncio.create_task(serve(spec, settings, stop))
    engine = make_engine(f"sqlite:///{path}")
    try:
        # Another writer on the service's log, with the service's key (its consumer checks).
        ring = Keyring.from_env()
        store = EventStore(engine, signer=ring.signer("dispatch") if ring is not None else None)
        await eventually(lambda: _has_tables(path))
        await store.append("thing-1", [NewEvent("Made", {"n": 1})], expected_version=None)
        await asyncio.wait_for(entered.wait(), 30)
        stop.set()  # while the batch is written and not committed
        await asyncio.wait_for(service, 30)
    finally:
        stop.set()
        await engine.dispose()
    # the batch was committed, not cut off
    check = make_engine(f"sqlite:///{path}")
    async with check.connect() as conn:
        position = await conn.scalar(select(tracking_table.c.position).where(
            tracking_table.c.consumer == "dispatch-slow_index"))
        rows = (await conn.execute(select(model.table))).all()
    await check.dispose()
    assert position == 1 and len(rows) == 1
    # and nobody holds the write lock: a writer that does not wait at all gets it
    raw = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        raw.execute("BEGIN IMMEDIATE")
        raw.execute("ROLLBACK")
    finally:
        raw.close()


async def _has_tables(path: Path) -> bool:
    return await asyncio.to_thread(_tables_made, path)


def _tables_made(path: Path) -> bool:
    if not path.exists():
        return False
    raw = sqlite3.connect(path)
    try:
        names = {row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        raw.close()
    return {"events", "tracking"} <= names
