"""Replay: a read model rebuilt from position 0 equals the live one."""

from __future__ import annotations

import asyncio

from nats.aio.client import Client as NATS
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import eventually
from weibao.shared.consumer import TrackingConsumer
from weibao.shared.events import NewEvent
from weibao.shared.eventstore import EventStore
from weibao.shared.readmodels import StreamIndex, create_tables
from weibao.shared.relay import Relay
from weibao.shared.replay import compare, live_position, rebuild


async def live_model(engine: AsyncEngine, nc: NATS) -> tuple[StreamIndex, EventStore]:
    """A store with 3 kinds of history, relayed and consumed into a live StreamIndex."""
    store = EventStore(engine)
    await store.create_tables()
    for n in range(40):
        stream = f"agreement-{n % 7}"
        await store.append(stream, [NewEvent("Paid", {"n": n}), NewEvent("Extended", {"n": n})],
                           expected_version=await store.version(stream))
    model = StreamIndex("contracts")
    await create_tables(engine, model)
    relay = Relay(store, nc, "contracts", batch=30)
    tracker = TrackingConsumer(engine, nc, "contracts", "contracts-index", model, batch=16)
    await tracker.create_tables()
    stop = asyncio.Event()
    tasks = [asyncio.create_task(relay.run(stop)), asyncio.create_task(tracker.run(stop))]

    async def done() -> bool:
        return tracker.applied == 80

    await eventually(done)
    stop.set()
    await asyncio.gather(*tasks)
    return model, store


async def test_rebuilt_read_model_equals_the_live_one(engine: AsyncEngine, nc: NATS) -> None:
    live, _ = await live_model(engine, nc)
    fresh = live.fresh("__replay")
    seen: list[tuple[int, int]] = []
    result = await rebuild(engine, nc, "contracts", fresh, progress=lambda seq, last: seen.append((seq, last)),
                           batch=7)
    assert result.applied == 80
    assert result.position == await live_position(engine, "contracts-index", "contracts")
    assert await compare(engine, live, fresh) == {}
    assert seen[-1] == (80, 80)


async def test_replay_stops_at_the_live_models_position(engine: AsyncEngine, nc: NATS) -> None:
    live, store = await live_model(engine, nc)
    await store.append("agreement-late", [NewEvent("Paid", {})], expected_version=0)
    await Relay(store, nc, "contracts").publish_pending()
    fresh = live.fresh("__replay")
    result = await rebuild(engine, nc, "contracts", fresh, until=80)
    assert result.position == 80
    assert await compare(engine, live, fresh) == {}


async def test_replay_reveals_a_live_model_that_drifted(engine: AsyncEngine, nc: NATS) -> None:
    live, _ = await live_model(engine, nc)
    async with engine.begin() as conn:
        await conn.execute(live.table.update().where(live.table.c.stream_id == "agreement-3").values(events=1))
    fresh = live.fresh("__replay")
    await rebuild(engine, nc, "contracts", fresh)
    differences = await compare(engine, live, fresh)
    assert list(differences) == ["stream_index_contracts"]
    assert differences["stream_index_contracts"]["live_only"][0][0] == "agreement-3"
