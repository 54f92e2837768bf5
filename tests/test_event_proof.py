"""Events that carry their own proof (the Trust issue, items 3-5), on a real nats-server.

An attacker who can publish on a service's stream subjects writes well-formed envelopes
with the next position, takes the relay's next message id, or signs with a key of his
own. Each attack is replayed here: the consumer parks the forgery with its reason and
applies the real event exactly once, the relay raises an alarm instead of taking a
foreign message for its own, and verification of the log and the stream names it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from nats.aio.client import Client as NATS
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import eventually
from weibao.shared import keys
from weibao.shared.consumer import TrackingConsumer, list_parked
from weibao.shared.events import NewEvent, RecordedEvent, canonical_json, event_hash
from weibao.shared.eventstore import SIGNING_STARTED, EventStore
from weibao.shared.messages import MSG_ID, encode
from weibao.shared.readmodels import StreamIndex, create_tables
from weibao.shared.relay import Relay
from weibao.shared.replay import compare, rebuild
from weibao.shared.verification import verify_stream


@pytest.fixture
def keyring(tmp_path: Path) -> keys.Keyring:
    return keys.generate(tmp_path / "keys", ["dispatch"])


@pytest.fixture
async def store(engine: AsyncEngine, keyring: keys.Keyring) -> EventStore:
    store = EventStore(engine, signer=keyring.signer("dispatch"))
    await store.create_tables()
    return store


@pytest.fixture
async def index(engine: AsyncEngine) -> StreamIndex:
    model = StreamIndex("dispatch")
    await create_tables(engine, model)
    return model


@pytest.fixture
async def consumer(engine: AsyncEngine, nc: NATS, index: StreamIndex,
                   keyring: keys.Keyring) -> AsyncIterator[TrackingConsumer]:
    consumer = TrackingConsumer(engine, nc, "dispatch", "dispatch-index", index, trust=keyring.trust)
    await consumer.create_tables()
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    yield consumer
    stop.set()
    await asyncio.wait_for(task, 10)


async def relay_all(relay: Relay, store: EventStore) -> None:
    while relay.position < await store.last_position():
        if not await relay.publish_pending():
            await asyncio.sleep(0.05)


async def index_rows(engine: AsyncEngine, model: StreamIndex) -> dict[str, int]:
    async with engine.connect() as conn:
        return {r.stream_id: r.events for r in await conn.execute(select(model.table.c.stream_id,
                                                                           model.table.c.events))}


def forged(after: RecordedEvent, signer: keys.Signer | None, *, stream_id: str = "invoice-evil",
           type: str = "ExpenseRecorded") -> RecordedEvent:
    """A well-formed event at the next position, linked to the real last one, its hash
    right: everything an attacker reading the stream can make."""
    data = {"amount": "88888.00"}
    meta = {"actor": "admin:admin"}
    moment = datetime.now(UTC)
    digest = event_hash(after.hash, position=after.position + 1, stream_id=stream_id, version=1, type=type,
                        schema_version=1, data_json=canonical_json(data), meta_json=canonical_json(meta),
                        recorded_at=moment)
    return RecordedEvent(after.position + 1, stream_id, 1, type, 1, data, meta, moment, after.hash, digest,
                         signer.key_id if signer else None,
                         signer.sign(keys.EVENT, digest.encode()) if signer else None)


async def publish_foreign(nc: NATS, event: RecordedEvent, *, msg_id: str | None = None) -> None:
    payload, headers = encode("dispatch", event)
    if msg_id is not None:
        headers[MSG_ID] = msg_id
    await nc.jetstream().publish(f"dispatch.{event.type}", payload, headers=headers)


async def parked_reasons(engine: AsyncEngine) -> list[str]:
    return [p.reason for p in await list_parked(engine)]


async def test_an_injected_event_with_the_next_position_is_never_applied(
        engine: AsyncEngine, nc: NATS, store: EventStore, index: StreamIndex, consumer: TrackingConsumer) -> None:
    relay = Relay(store, nc, "dispatch")
    await store.append("visit-1", [NewEvent("Logged", {"i": i}) for i in range(3)], expected_version=0)
    await relay_all(relay, store)
    await eventually(lambda: _rows_are(engine, index, {"visit-1": 3}))
    last = (await store.read_from(2))[0]
    # Signed by the attacker's own key, then not signed at all: both ahead of the real N+1.
    await publish_foreign(nc, forged(last, keys.Signer.generate("dispatch")), msg_id="dispatch:4")
    await publish_foreign(nc, forged(last, None, stream_id="invoice-evil-2"))
    await eventually(lambda: _parked(engine, 2))
    reasons = await parked_reasons(engine)
    assert any("not trusted for dispatch" in r for r in reasons), reasons
    assert any("unsigned" in r for r in reasons), reasons
    # The real event at that position still comes, is applied once, and the relay was not
    # fooled by the foreign messages on its stream: it says so.
    await store.append("visit-1", [NewEvent("Logged", {"i": 3})], expected_version=3)
    await relay_all(relay, store)
    await eventually(lambda: _rows_are(engine, index, {"visit-1": 4}))
    assert consumer.refused == 2
    assert len(relay.alarms) == 2 and all("not the log's event" in r for r in relay.alarms.values())
    report = await verify_stream(store, nc, "dispatch")
    assert (report.checked, report.foreign, report.missing, report.ok) == (4, 2, 0, False)
    # A replay that checks proofs equals the live model; one that does not, differs.
    assert await compare(engine, index, await _replayed(engine, nc, index, trust=consumer.trust)) == {}
    naive = await _replayed(engine, nc, index, trust=None, suffix="__naive")
    assert "invoice-evil" in json.dumps(await compare(engine, index, naive), default=str)


async def test_the_relays_next_id_taken_first_erases_nothing(
        engine: AsyncEngine, nc: NATS, store: EventStore, index: StreamIndex, consumer: TrackingConsumer) -> None:
    relay = Relay(store, nc, "dispatch")
    await store.append("visit-1", [NewEvent("Logged", {"i": 0})], expected_version=0)
    await relay_all(relay, store)
    # The old attack: anything published under the id `dispatch:2` before the relay.
    await nc.jetstream().publish("dispatch.Junk", b"{}", headers={MSG_ID: "dispatch:2", "Weibao-Position": "2"})
    await store.append("visit-1", [NewEvent("Logged", {"i": 1})], expected_version=1)
    await relay_all(relay, store)
    await eventually(lambda: _rows_are(engine, index, {"visit-1": 2}))
    assert list(relay.alarms.values()) == ["unreadable message claiming position 2: "
                                          "unknown envelope version None (we read 1)"]


async def test_a_duplicate_the_broker_already_holds_is_compared_not_trusted(
        engine: AsyncEngine, nc: NATS, store: EventStore, index: StreamIndex, consumer: TrackingConsumer) -> None:
    """Even an attacker who learns the event's hash (and so its id) before the relay
    publishes cannot make the relay take his message for it."""
    relay = Relay(store, nc, "dispatch")
    await store.append("visit-1", [NewEvent("Logged", {"i": 0})], expected_version=0)
    await relay_all(relay, store)
    await store.append("visit-1", [NewEvent("Logged", {"i": 1})], expected_version=1)
    real = (await store.read_from(1))[0]
    fake = forged((await store.read_from(0))[0], keys.Signer.generate("dispatch"))
    await publish_foreign(nc, fake, msg_id=f"dispatch:2:{real.hash[:16]}")
    # Refused for the sequence (the forgery took it), then, from the re-read tail, answered
    # "duplicate": neither time taken as stored.
    assert await relay.publish_pending() == 0
    assert await relay.publish_pending() == 0
    assert relay.position == 1
    assert any("not the log's event" in r for r in relay.alarms.values())
    await eventually(lambda: _parked(engine, 1))
    assert await index_rows(engine, index) == {"visit-1": 1}


async def test_a_log_written_before_signing_is_vouched_for_by_its_signing_started(
        engine: AsyncEngine, nc: NATS, keyring: keys.Keyring, index: StreamIndex) -> None:
    old = EventStore(engine)
    await old.create_tables()
    await old.append("visit-1", [NewEvent("Logged", {"i": i}) for i in range(2)], expected_version=0)
    await relay_all(Relay(old, nc, "dispatch"), old)  # relayed before signing, unsigned
    store = EventStore(engine, signer=keyring.signer("dispatch"))
    started = await store.start_signing()
    assert started is not None and started.type == SIGNING_STARTED and started.data["unsigned_through"] == 2
    assert await store.start_signing() is None  # once
    await store.append("visit-1", [NewEvent("Logged", {"i": 2})], expected_version=2)
    report = await store.verify(keyring.trust, "dispatch")
    assert (report.ok, report.unsigned, report.signed) == (True, 2, 2)
    relay = Relay(store, nc, "dispatch")
    await relay_all(relay, store)
    consumer = TrackingConsumer(engine, nc, "dispatch", "dispatch-index", index, trust=keyring.trust)
    await consumer.create_tables()
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        await eventually(lambda: _rows_are(engine, index, {"visit-1": 3, "$signing": 1}))
        # After the mark, an unsigned event is a forgery, whatever it links to.
        last = (await store.read_from(3))[0]
        await publish_foreign(nc, forged(last, None))
        await eventually(lambda: _parked(engine, 1))
        assert "unsigned" in (await parked_reasons(engine))[0]
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    # An unsigned event stored after signing started breaks verification.
    await old.append("visit-1", [NewEvent("Logged", {"i": 9})], expected_version=3)
    broken = await store.verify(keyring.trust, "dispatch")
    assert not broken.ok and broken.first_broken == 5 and "unsigned" in broken.reason


async def test_verify_names_an_event_signed_by_a_key_not_trusted(
        engine: AsyncEngine, keyring: keys.Keyring) -> None:
    store = EventStore(engine, signer=keyring.signer("dispatch"))
    await store.create_tables()
    await store.append("visit-1", [NewEvent("Logged", {"i": 0})], expected_version=0)
    rogue = EventStore(engine, signer=keys.Signer.generate("dispatch"))
    await rogue.append("visit-1", [NewEvent("Logged", {"i": 1})], expected_version=1)
    report = await store.verify(keyring.trust, "dispatch")
    assert (report.ok, report.first_broken, report.signed) == (False, 2, 1)
    assert "not trusted for dispatch" in report.reason
    assert (await store.verify()).ok  # the chain alone cannot tell


async def _rows_are(engine: AsyncEngine, model: StreamIndex, expected: dict[str, int]) -> bool:
    return await index_rows(engine, model) == expected


async def _parked(engine: AsyncEngine, count: int) -> bool:
    return len(await list_parked(engine)) >= count


async def _replayed(engine: AsyncEngine, nc: NATS, live: StreamIndex, *, trust: keys.Trust | None,
                    suffix: str = "__replay") -> StreamIndex:
    fresh = live.fresh(suffix)
    await rebuild(engine, nc, "dispatch", fresh, trust=trust)
    return fresh
