"""The relay on a real nats-server: the stream is an exact, duplicate-free copy of the log."""

from __future__ import annotations

import asyncio
import json

import pytest
from nats.aio.client import Client as NATS
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import eventually, relayed_positions, stream_messages
from weibao.shared.db import make_engine
from weibao.shared.events import NewEvent
from weibao.shared.eventstore import NO_STREAM, EventStore
from weibao.shared.relay import Relay
from weibao.shared.streams import stream_name


async def new_store(engine: AsyncEngine) -> EventStore:
    store = EventStore(engine)
    await store.create_tables()
    return store


async def fill(store: EventStore, streams: int, events: int) -> None:
    for s in range(streams):
        await store.append(f"visit-{s}", [NewEvent("Logged", {"i": i}) for i in range(events)],
                           expected_version=NO_STREAM)


async def relay_all(relay: Relay, store: EventStore) -> None:
    while relay.position < await store.last_position():
        await relay.publish_pending()


async def test_relays_in_position_order_with_ids_and_envelope(engine: AsyncEngine, nc: NATS) -> None:
    store = await new_store(engine)
    await fill(store, 3, 4)
    relay = Relay(store, nc, "dispatch", batch=5)
    await relay_all(relay, store)
    messages = await stream_messages(nc, "dispatch")
    assert [seq for seq, _, _ in messages] == list(range(1, 13))
    # The id binds the position to the event's hash: nobody can take it before we publish.
    hashes = [e.hash for e in await store.read_from(0)]
    assert [h["Nats-Msg-Id"] for _, h, _ in messages] == [f"dispatch:{p}:{hashes[p - 1][:16]}" for p in range(1, 13)]
    _, headers, body = messages[4]
    assert isinstance(body, dict)
    assert body["position"] == 5 and body["stream_id"] == "visit-1" and body["type"] == "Logged"
    assert headers["Weibao-Type"] == "Logged"


async def test_a_new_relay_resumes_from_the_stream_tail(engine: AsyncEngine, nc: NATS) -> None:
    """A relay keeps no state: a fresh one reads where the stream ends and adds only the rest."""
    store = await new_store(engine)
    await fill(store, 2, 5)
    await relay_all(Relay(store, nc, "contracts"), store)
    await fill_more(store)
    await relay_all(Relay(store, nc, "contracts"), store)
    assert await relayed_positions(nc, "contracts") == list(range(1, 16))


async def fill_more(store: EventStore) -> None:
    await store.append("agreement-x", [NewEvent("Paid", {"n": n}) for n in range(5)], expected_version=NO_STREAM)


async def test_rival_relays_never_duplicate(engine: AsyncEngine, nc: NATS) -> None:
    """Two relays on one log (two replicas): expected-last-sequence lets only one place each."""
    store = await new_store(engine)
    await fill(store, 10, 20)
    one, two = Relay(store, nc, "billing", batch=7), Relay(store, nc, "billing", batch=11)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(one.run(stop)), asyncio.create_task(two.run(stop))]

    async def complete() -> bool:
        info = await nc.jetstream().stream_info(stream_name("billing"))
        return info.state.last_seq >= 200

    await eventually(complete)
    stop.set()
    await asyncio.gather(*tasks)
    assert await relayed_positions(nc, "billing") == list(range(1, 201))


async def test_foreign_messages_on_our_subjects_are_stepped_over(engine: AsyncEngine, nc: NATS) -> None:
    store = await new_store(engine)
    await fill(store, 1, 3)
    relay = Relay(store, nc, "contracts")
    await relay_all(relay, store)
    await nc.jetstream().publish("contracts.garbage", b"not json at all")
    await fill_more(store)
    await relay_all(Relay(store, nc, "contracts"), store)
    assert await relayed_positions(nc, "contracts") == list(range(1, 9))


async def test_relay_is_woken_by_a_commit(engine: AsyncEngine, nc: NATS) -> None:
    store = await new_store(engine)
    # A poll interval far longer than the test may wait: only the commit can wake it.
    relay = Relay(store, nc, "dispatch", poll_interval=3600)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    await eventually(lambda: _tail_read(relay))
    await store.append("visit-1", [NewEvent("Requested", {})], expected_version=NO_STREAM)

    async def relayed() -> bool:
        return relay.position == 1

    await eventually(relayed, timeout=10)
    stop.set()
    await task
    (_, _, body), = await stream_messages(nc, "dispatch")
    assert isinstance(body, dict) and json.dumps(body["data"]) == "{}"


async def _tail_read(relay: Relay) -> bool:
    return relay.last_seq is not None


async def test_foreign_publishes_racing_the_pipeline_never_open_a_hole(engine: AsyncEngine, nc: NATS) -> None:
    """A foreign message between two pipelined publishes must not let the later one in."""
    store = await new_store(engine)
    await fill(store, 20, 25)
    relay = Relay(store, nc, "dispatch", batch=50)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    js = nc.jetstream()
    for n in range(40):
        await js.publish("dispatch.noise", f"foreign {n}".encode())
        await asyncio.sleep(0.002)

    async def complete() -> bool:
        return relay.position == 500

    await eventually(complete)
    stop.set()
    await task
    assert await relayed_positions(nc, "dispatch") == list(range(1, 501))


async def test_relay_is_woken_by_a_commit_in_another_process(
    engine: AsyncEngine, nc: NATS, db_url: tuple[str, str | None], backend: str
) -> None:
    """PostgreSQL: NOTIFY at commit reaches a relay whose store did not make the append."""
    if backend == "sqlite":
        pytest.skip("SQLite has no notification channel; relays there poll")
    store = await new_store(engine)
    relay = Relay(store, nc, "dispatch", poll_interval=3600)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    await eventually(lambda: _tail_read(relay))
    url, schema = db_url
    other = make_engine(url, schema=schema)  # another replica's connection pool
    await EventStore(other).append("visit-9", [NewEvent("Requested", {})], expected_version=NO_STREAM)
    await other.dispose()

    async def relayed() -> bool:
        return relay.position == 1

    await eventually(relayed, timeout=10)
    stop.set()
    await task
