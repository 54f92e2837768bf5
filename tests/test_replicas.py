"""Replicas of one service start together on one database: each creates the log, its read
models and their tracking rows as if alone, and none fails on the other's tables."""

from __future__ import annotations

import asyncio
from unittest.mock import MagicMock

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from weibao.dispatch.adapters.technician_board import TechnicianBoard
from weibao.dispatch.adapters.ticket_board import TicketBoard
from weibao.shared.consumer import TrackingConsumer, tracking_table
from weibao.shared.db import make_engine, schema_of
from weibao.shared.eventstore import EventStore
from weibao.shared.readmodels import StreamIndex, create_tables


async def start_replica(engine: AsyncEngine) -> None:
    """What `serve` creates before it takes any message."""
    await EventStore(engine).create_tables()
    for model in (TechnicianBoard(), TicketBoard(), StreamIndex("dispatch")):
        await create_tables(engine, model)
        await TrackingConsumer(engine, MagicMock(), "dispatch", f"dispatch-{model.name}", model).create_tables()


async def test_four_replicas_starting_together_create_everything_once(engine: AsyncEngine) -> None:
    url = engine.url.render_as_string(hide_password=False)
    replicas = [make_engine(url, schema=schema_of(engine)) for _ in range(4)]  # as separate processes do
    try:
        await asyncio.gather(*(start_replica(replica) for replica in replicas))
    finally:
        for replica in replicas:
            await replica.dispose()
    async with engine.connect() as conn:
        rows = await conn.scalar(select(func.count()).select_from(tracking_table))
    assert rows == 3  # one tracking row per read model, not one per replica
