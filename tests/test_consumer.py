"""Tracking consumers on a real nats-server: exactly-once effects, parking, gap filling."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from nats.aio.client import Client as NATS
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tests.helpers import eventually
from weibao.shared.consumer import Incoming, TrackingConsumer, list_parked, retry_parked
from weibao.shared.events import NewEvent
from weibao.shared.eventstore import EventStore
from weibao.shared.messages import BadMessage, Message, encode
from weibao.shared.readmodels import StreamIndex, create_tables
from weibao.shared.relay import Relay


@dataclass
class Flaky:
    """StreamIndex, but failing on chosen positions (forever, or a number of times)."""

    model: StreamIndex
    fail_on: dict[int, int] = field(default_factory=dict)  # position -> failures left (-1: always)
    refuse_version: int | None = None

    async def __call__(self, conn: AsyncConnection, message: Message) -> None:
        if self.refuse_version is not None and message.schema_version == self.refuse_version:
            raise BadMessage(f"unknown schema version {message.schema_version} of {message.type}")
        left = self.fail_on.get(message.position, 0)
        if left != 0:
            self.fail_on[message.position] = left - 1
            raise RuntimeError(f"handler broke on {message.position}")
        await self.model(conn, message)


@pytest.fixture
async def store(engine: AsyncEngine) -> EventStore:
    store = EventStore(engine)
    await store.create_tables()
    return store


@pytest.fixture
async def index(engine: AsyncEngine) -> StreamIndex:
    model = StreamIndex("dispatch")
    await create_tables(engine, model)
    return model


async def index_counts(engine: AsyncEngine, model: StreamIndex) -> dict[str, int]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(model.table.c.stream_id, model.table.c.events))
        return {row.stream_id: row.events for row in rows}


async def append_visits(store: EventStore, visits: int, each: int, *, schema_version: int = 1) -> None:
    for v in range(visits):
        version = await store.version(f"visit-{v}")
        await store.append(f"visit-{v}", [NewEvent("Logged", {"i": i}, schema_version) for i in range(each)],
                           expected_version=version)


@pytest.fixture
async def relayed(store: EventStore, nc: NATS) -> AsyncIterator[Relay]:
    relay = Relay(store, nc, "dispatch")
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    yield relay
    stop.set()
    await task


async def run_consumer(consumer: TrackingConsumer) -> tuple[asyncio.Event, asyncio.Task[None]]:
    await consumer.create_tables()
    stop = asyncio.Event()
    return stop, asyncio.create_task(consumer.run(stop))


async def stop_consumer(stop: asyncio.Event, task: asyncio.Task[None]) -> None:
    stop.set()
    await asyncio.wait_for(task, 10)


async def test_each_event_applied_exactly_once(
    engine: AsyncEngine, nc: NATS, store: EventStore, index: StreamIndex, relayed: Relay
) -> None:
    await append_visits(store, 5, 8)
    consumer = TrackingConsumer(engine, nc, "dispatch", "dispatch-index", index, batch=7)
    stop, task = await run_consumer(consumer)
    await eventually(lambda: _counts_are(engine, index, {f"visit-{v}": 8 for v in range(5)}))
    await stop_consumer(stop, task)
    # A second incarnation of the same durable consumer finds nothing left to apply.
    again = TrackingConsumer(engine, nc, "dispatch", "dispatch-index", index)
    stop, task = await run_consumer(again)
    await asyncio.sleep(0.5)
    await stop_consumer(stop, task)
    assert again.applied == 0
    assert await index_counts(engine, index) == {f"visit-{v}": 8 for v in range(5)}


async def _counts_are(engine: AsyncEngine, index: StreamIndex, expected: dict[str, int]) -> bool:
    return await index_counts(engine, index) == expected


async def test_a_redelivered_batch_has_no_second_effect(
    engine: AsyncEngine, nc: NATS, store: EventStore, index: StreamIndex
) -> None:
    await append_visits(store, 1, 3)
    events = await store.read_from(0)
    batch = [Incoming(e.position, f"dispatch.{e.type}", *encode("dispatch", e)) for e in events]
    consumer = TrackingConsumer(engine, nc, "dispatch", "dispatch-index", index)
    await consumer.create_tables()
    await consumer.handle(batch)
    await consumer.handle(batch)  # JetStream's redelivery after a lost ack
    await consumer.handle(batch[1:2])
    assert await index_counts(engine, index) == {"visit-0": 3}
    assert consumer.applied == 3


async def test_a_gap_is_filled_from_the_stream_before_going_on(
    engine: AsyncEngine, nc: NATS, store: EventStore, index: StreamIndex
) -> None:
    """After a crash JetStream may deliver N+2 while N+1 waits for its ack timer."""
    await append_visits(store, 1, 4)
    relay = Relay(store, nc, "dispatch")
    await relay.publish_pending()
    events = await store.read_from(0)
    consumer = TrackingConsumer(engine, nc, "dispatch", "dispatch-index", index)
    await consumer.create_tables()
    last = events[-1]
    await consumer.handle([Incoming(last.position, "dispatch.Logged", *encode("dispatch", last))])
    assert await index_counts(engine, index) == {"visit-0": 4}
    assert consumer.applied == 4


async def test_a_message_that_keeps_failing_is_parked_and_the_rest_flow(
    engine: AsyncEngine, nc: NATS, store: EventStore, index: StreamIndex, relayed: Relay
) -> None:
    await append_visits(store, 3, 4)  # positions 1..12; position 6 is visit-1's second
    flaky = Flaky(index, fail_on={6: -1, 9: 2})
    flaky.name = index.name  # type: ignore[attr-defined]
    consumer = TrackingConsumer(engine, nc, "dispatch", "dispatch-index", flaky, max_deliveries=3,
                                backoff=lambda attempt: 0.01)
    stop, task = await run_consumer(consumer)
    await eventually(lambda: _counts_are(engine, index, {"visit-0": 4, "visit-1": 3, "visit-2": 4}))
    await stop_consumer(stop, task)
    (parked,) = await list_parked(engine)
    assert parked.position == 6
    assert parked.deliveries == 3
    assert "handler broke on 6" in parked.reason
    # The operator fixes the cause and retries: applied once, and no longer parked.
    flaky.fail_on.clear()
    assert await retry_parked(engine, parked.id, flaky)
    assert await list_parked(engine) == []
    assert await index_counts(engine, index) == {"visit-0": 4, "visit-1": 4, "visit-2": 4}


async def test_a_failed_retry_stays_parked_with_the_new_reason(
    engine: AsyncEngine, nc: NATS, store: EventStore, index: StreamIndex, relayed: Relay
) -> None:
    await append_visits(store, 1, 2)
    flaky = Flaky(index, fail_on={1: -1})
    consumer = TrackingConsumer(engine, nc, "dispatch", "dispatch-index", flaky, max_deliveries=2,
                                backoff=lambda attempt: 0.01)
    stop, task = await run_consumer(consumer)
    await eventually(lambda: _counts_are(engine, index, {"visit-0": 1}))
    await stop_consumer(stop, task)
    (parked,) = await list_parked(engine)
    assert not await retry_parked(engine, parked.id, flaky)
    (still,) = await list_parked(engine)
    assert still.reason.startswith("retry failed") and still.deliveries == parked.deliveries + 1


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\xfe not json", "not JSON"),
        (b'{"envelope": 1, "position": "one"}', "field 'service'"),
        (b'{"envelope": 7, "type": "X"}', "unknown envelope version 7"),
        (b"[1, 2, 3]", "not a JSON object"),
    ],
)
async def test_garbage_is_parked_with_its_reason_and_nothing_crashes(
    engine: AsyncEngine, nc: NATS, store: EventStore, index: StreamIndex, relayed: Relay,
    payload: bytes, reason: str,
) -> None:
    await append_visits(store, 1, 2)
    await eventually(lambda: _relayed(relayed, 2))
    await nc.jetstream().publish("dispatch.Logged", payload, headers={"Weibao-Position": "3"})
    await append_visits(store, 1, 2)
    consumer = TrackingConsumer(engine, nc, "dispatch", "dispatch-index", index)
    stop, task = await run_consumer(consumer)
    await eventually(lambda: _counts_are(engine, index, {"visit-0": 4}))
    await stop_consumer(stop, task)
    (parked,) = await list_parked(engine)
    assert reason in parked.reason
    assert parked.stream_seq == 3


async def _relayed(relay: Relay, position: int) -> bool:
    return relay.position >= position


async def test_an_unknown_schema_version_is_parked_at_once(
    engine: AsyncEngine, nc: NATS, store: EventStore, index: StreamIndex, relayed: Relay
) -> None:
    await append_visits(store, 1, 1)
    await append_visits(store, 1, 1, schema_version=9)
    await append_visits(store, 1, 1)
    refusing = Flaky(index, refuse_version=9)
    consumer = TrackingConsumer(engine, nc, "dispatch", "dispatch-index", refusing)
    stop, task = await run_consumer(consumer)
    await eventually(lambda: _counts_are(engine, index, {"visit-0": 2}))
    await stop_consumer(stop, task)
    (parked,) = await list_parked(engine)
    assert "unknown schema version 9" in parked.reason
    assert parked.deliveries == 1


async def test_tracking_and_effects_share_one_transaction(
    engine: AsyncEngine, nc: NATS, store: EventStore, index: StreamIndex
) -> None:
    """A handler that fails after writing leaves neither its write nor a moved checkpoint."""
    from weibao.shared.consumer import tracking_table

    await append_visits(store, 1, 1)
    (event,) = await store.read_from(0)

    async def half_then_fail(conn: AsyncConnection, message: Message) -> None:
        await index(conn, message)
        raise RuntimeError("after the write")

    consumer = TrackingConsumer(engine, nc, "dispatch", "dispatch-index", half_then_fail, max_deliveries=1)
    await consumer.create_tables()
    await consumer.handle([Incoming(1, "dispatch.Logged", *encode("dispatch", event))])
    assert await index_counts(engine, index) == {}
    async with engine.connect() as conn:
        position = await conn.scalar(select(func.max(tracking_table.c.position)))
    assert position == 1  # moved past it only because it was parked
    assert len(await list_parked(engine)) == 1


async def test_two_replicas_on_one_durable_consumer_apply_each_event_once(
    engine: AsyncEngine, nc: NATS, store: EventStore, index: StreamIndex, relayed: Relay
) -> None:
    """Production runs replicas: they split the deliveries, and the checkpoint row lock
    plus gap filling keep every event applied exactly once and in order."""
    await append_visits(store, 6, 40)
    replicas = [TrackingConsumer(engine, nc, "dispatch", "dispatch-index", index, batch=9) for _ in range(2)]
    running = [await run_consumer(replica) for replica in replicas]
    await eventually(lambda: _counts_are(engine, index, {f"visit-{v}": 40 for v in range(6)}), timeout=60)
    for stop, task in running:
        await stop_consumer(stop, task)
    assert sum(replica.applied for replica in replicas) == 240


async def test_a_gap_another_replica_closed_meanwhile_is_not_parked(
    engine: AsyncEngine, nc: NATS, store: EventStore, index: StreamIndex
) -> None:
    """Replicas: this one saw a gap before position 3, and by the time it looks for what is
    missing, the other replica has applied 1 and 2. Position 3 is now simply the next
    message: taken again, never parked as a hole in the producer's positions."""
    from collections import deque

    from sqlalchemy import update

    from weibao.shared.consumer import tracking_table
    from weibao.shared.db import begin_write

    await append_visits(store, 1, 3)
    third = (await store.read_from(2))[0]
    consumer = TrackingConsumer(engine, nc, "dispatch", "dispatch-index", index)
    await consumer.create_tables()
    async with begin_write(engine) as conn:  # what the other replica committed meanwhile
        await conn.execute(update(tracking_table).values(position=2, stream_seq=2))
    item = Incoming(3, "dispatch.Logged", *encode("dispatch", third))
    work = deque([item])
    await consumer._fill_gap(work, item)
    assert list(work) == [item] and await list_parked(engine) == []
    await consumer.handle(list(work))
    assert consumer.applied == 1 and await list_parked(engine) == []


async def test_only_a_commit_that_appended_wakes_the_relay(
    engine: AsyncEngine, nc: NATS, store: EventStore, index: StreamIndex
) -> None:
    """A read model's commit leaves the relay asleep (it would read the log for nothing);
    a policy's commit, which appended events in the same transaction, wakes it."""
    await append_visits(store, 1, 2)
    first, second = await store.read_from(0)
    woken: list[str] = []

    async def policy(conn: AsyncConnection, message: Message) -> None:
        await store.append("reaction", [NewEvent("Reacted", {"to": message.position})], expected_version=None,
                           conn=conn)

    reader = TrackingConsumer(engine, nc, "dispatch", "dispatch-index", index, on_commit=lambda: woken.append("index"))
    writer = TrackingConsumer(engine, nc, "dispatch", "dispatch-policy", policy,
                              on_commit=lambda: woken.append("policy"))
    for consumer in (reader, writer):
        await consumer.create_tables()
        await consumer.handle([Incoming(1, "dispatch.Logged", *encode("dispatch", first)),
                               Incoming(2, "dispatch.Logged", *encode("dispatch", second))])
    assert (reader.applied, writer.applied) == (2, 2)
    assert woken == ["policy"]
    assert [e.stream_id for e in await store.read_from(2)] == ["reaction", "reaction"]


async def test_a_message_waiting_for_another_upstream_is_retried_past_max_deliveries_not_parked(
    engine: AsyncEngine, nc: NATS, store: EventStore, index: StreamIndex, relayed: Relay
) -> None:
    """NotYet (billing's terms not read yet): the consumer keeps retrying for its patience,
    however many deliveries that takes; only an ordinary failure is parked after a few."""
    from datetime import timedelta

    from weibao.shared.consumer import NotYet

    await append_visits(store, 1, 2)
    tries: dict[int, int] = {}

    async def waits_for_terms(conn: AsyncConnection, message: Message) -> None:
        tries[message.position] = tries.get(message.position, 0) + 1
        if message.position == 1 and tries[1] <= 6:  # the terms come on the 7th try
            raise NotYet("no terms yet for agreement a-1")
        await index(conn, message)

    consumer = TrackingConsumer(engine, nc, "dispatch", "dispatch-index", waits_for_terms, max_deliveries=2,
                                backoff=lambda attempt: 0.01)
    stop, task = await run_consumer(consumer)
    await eventually(lambda: _counts_are(engine, index, {"visit-0": 2}))
    await stop_consumer(stop, task)
    assert await list_parked(engine) == [] and tries[1] == 7

    # Out of patience, it is parked like any other failure (an agreement that never comes).
    await append_visits(store, 1, 1)
    never = TrackingConsumer(engine, nc, "dispatch", "dispatch-never", _never, max_deliveries=2,
                             backoff=lambda attempt: 0.01, patience=timedelta(0))
    stop, task = await run_consumer(never)
    await eventually(lambda: _parked_count_is(engine, 3))
    await stop_consumer(stop, task)


async def _never(_conn: AsyncConnection, _message: Message) -> None:
    from weibao.shared.consumer import NotYet

    raise NotYet("the terms never come")


async def _parked_count_is(engine: AsyncEngine, count: int) -> bool:
    return len(await list_parked(engine)) == count
