"""Events that carry their own proof (the Trust issue, items 3-5), on a real nats-server.

An attacker who can publish on a service's stream subjects writes well-formed envelopes
with the next position, takes the relay's next message id, or signs with a key of his
own. Each attack is replayed here: the consumer parks the forgery with its reason and
applies the real event exactly once, the relay raises an alarm instead of taking a
foreign message for its own, and verification of the log and the stream names it."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
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
from weibao.shared.db import make_engine
from weibao.shared.events import GENESIS_HASH, NewEvent, RecordedEvent, canonical_json, event_hash
from weibao.shared.eventstore import SIGNING_STARTED, EventStore
from weibao.shared.messages import MSG_ID, Message, decode, encode
from weibao.shared.proof import Proof, signature_problem
from weibao.shared.readmodels import StreamIndex, create_tables
from weibao.shared.relay import Relay
from weibao.shared.replay import compare, rebuild
from weibao.shared.service import Runtime, ServiceSpec
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
    async with running(TrackingConsumer(engine, nc, "dispatch", "dispatch-index", index,
                                        trust=keyring.trust)) as started:
        yield started


@contextlib.asynccontextmanager
async def running(consumer: TrackingConsumer) -> AsyncIterator[TrackingConsumer]:
    """The consumer applying what its stream holds, until the block ends."""
    await consumer.create_tables()
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        yield consumer
    finally:
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
    health = await Runtime(ServiceSpec("dispatch"), engine, store, nc, relay, []).health()
    assert (health["status"], [f["stream_seq"] for f in health["foreign_messages"]]) == ("alarm", [2])
    # A restart forgets the alarm held in memory, and its tail walk stops at our own last
    # event, after the foreign one: the stream's message count still gives it away, so
    # health is red again from the start (issue 11, item 4).
    restarted = Relay(store, nc, "dispatch")
    await restarted.sync_tail()
    again = await Runtime(ServiceSpec("dispatch"), engine, store, nc, restarted, []).health()
    assert (again["status"], again["relayed_position"]) == ("alarm", 2)
    assert [f["stream_seq"] for f in again["foreign_messages"]] == [0]
    assert "1 not the log's events" in again["foreign_messages"][0]["reason"]


async def test_a_duplicate_the_broker_already_holds_is_compared_not_trusted(
        engine: AsyncEngine, nc: NATS, store: EventStore, index: StreamIndex, consumer: TrackingConsumer) -> None:
    """Even an attacker who learns the event's hash (and so its id) before the relay
    publishes cannot make the relay take his message for it."""
    relay = Relay(store, nc, "dispatch")
    await store.append("visit-1", [NewEvent("Logged", {"i": 0})], expected_version=0)
    await relay_all(relay, store)
    # A clean stream raises nothing, at start either: the count below is no false alarm.
    clean = Relay(store, nc, "dispatch")
    await clean.sync_tail()
    assert clean.alarms == {}
    assert (await Runtime(ServiceSpec("dispatch"), engine, store, nc, relay, [consumer]).health())["status"] == "ok"
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
    # The alarm turns the service's health red (issue 11, item 4): never "ok" meanwhile.
    health = await Runtime(ServiceSpec("dispatch"), engine, store, nc, relay, []).health()
    assert health["status"] == "alarm"
    assert [f["stream_seq"] for f in health["foreign_messages"]] == [2]
    assert "not the log's event" in health["foreign_messages"][0]["reason"]


async def test_a_forked_log_signed_by_the_trusted_key_is_parked_for_its_link(
        engine: AsyncEngine, nc: NATS, store: EventStore, index: StreamIndex, consumer: TrackingConsumer,
        keyring: keys.Keyring, tmp_path: Path) -> None:
    """Two logs under one key (an old backup restored and written to): every signature
    holds, only the previous-hash link tells the fork's event from the real next one."""
    relay = Relay(store, nc, "dispatch")
    await store.append("visit-1", [NewEvent("Logged", {"i": i}) for i in range(3)], expected_version=0)
    await relay_all(relay, store)
    await eventually(lambda: _rows_are(engine, index, {"visit-1": 3}))
    fork = (await _other_log(tmp_path / "fork.db", keyring.signer("dispatch"), "visit-fork", 4))[-1]
    payload, headers = encode("dispatch", fork)
    assert fork.position == 4 and signature_problem(keyring.trust, "dispatch",
                                                    decode(f"dispatch.{fork.type}", payload, headers)) is None
    await publish_foreign(nc, fork)
    await eventually(lambda: _parked(engine, 1))
    assert [(p.position, p.reason) for p in await list_parked(engine)] == [
        (4, "not applied, no proof: does not follow the last event applied from this producer (prev_hash differs)")]
    await store.append("visit-1", [NewEvent("Logged", {"i": 3})], expected_version=3)
    await relay_all(relay, store)
    await eventually(lambda: _rows_are(engine, index, {"visit-1": 4}))
    assert (consumer.applied, consumer.refused) == (4, 1)


async def test_an_unsigned_event_of_a_forked_old_log_is_parked_though_its_position_is_vouched_for(
        engine: AsyncEngine, nc: NATS, keyring: keys.Keyring, index: StreamIndex, tmp_path: Path) -> None:
    """Before SigningStarted nothing is signed, but the log was a hash chain all along:
    an unsigned event at a vouched-for position must still follow the last one applied.
    Else a fork's event is applied and the real one at its position skipped as a repeat."""
    old = EventStore(engine)
    await old.create_tables()
    old_relay = Relay(old, nc, "dispatch")
    await old.append("visit-1", [NewEvent("Logged", {"i": i}) for i in range(2)], expected_version=0)
    await relay_all(old_relay, old)
    fork = (await _other_log(tmp_path / "old-fork.db", None, "visit-fork", 3))[-1]
    await publish_foreign(nc, fork)  # ahead of the real position 3
    await old.append("visit-1", [NewEvent("Logged", {"i": 2})], expected_version=2)
    await relay_all(old_relay, old)
    store = EventStore(engine, signer=keyring.signer("dispatch"))
    started = await store.start_signing()
    assert started is not None and started.data["unsigned_through"] == 3
    await relay_all(Relay(store, nc, "dispatch"), store)
    async with running(TrackingConsumer(engine, nc, "dispatch", "dispatch-index", index,
                                        trust=keyring.trust)) as consumer:
        await eventually(lambda: _rows_are(engine, index, {"visit-1": 3, "$signing": 1}))
        assert [(p.position, p.reason) for p in await list_parked(engine)] == [
            (3, "not applied, no proof: does not follow the last event applied from this producer "
                "(prev_hash differs)")]
        assert (consumer.applied, consumer.refused) == (4, 1)


async def test_unsigned_events_are_linked_and_old_checkpoints_still_apply(nc: NATS, keyring: keys.Keyring) -> None:
    proof = Proof(keyring.trust, "dispatch", unsigned_through=10)  # as a SigningStarted at 11 vouches
    first, second = (_message(e) for e in _unsigned_chain(2))

    async def problem(message: Message, applied: int, last_hash: str | None) -> str | None:
        return await proof.problem(message, applied, last_hash, nc)

    assert await problem(first, 0, None) is None  # position 1 follows the genesis hash
    assert await problem(second, 1, first.hash) is None
    assert "prev_hash differs" in str(await problem(second, 1, "f" * 64))
    # A checkpoint from before links were kept (or moved past a parked event) knows no
    # hash: the old log applies as before.
    assert await problem(second, 1, None) is None
    # The vouched-for position proves no content: the hash still must match it.
    tampered = dataclasses.replace(second, data={"i": 99})
    assert await problem(tampered, 1, first.hash) == "content does not match its hash"
    # Relayed before envelopes carried links: fine at the start of an old stream, not
    # after the chain was seen.
    unlinked = [dataclasses.replace(m, prev_hash=None, hash=None) for m in (first, second)]
    assert await problem(unlinked[0], 0, None) is None
    assert await problem(unlinked[1], 1, None) is None
    assert "carries no prev_hash" in str(await problem(unlinked[1], 1, first.hash))


async def _other_log(path: Path, signer: keys.Signer | None, stream_id: str, count: int) -> list[RecordedEvent]:
    """The events of another log of the same producer at positions 1..count."""
    engine = make_engine(f"sqlite:///{path}")
    try:
        other = EventStore(engine, signer=signer)
        await other.create_tables()
        await other.append(stream_id, [NewEvent("Logged", {"fork": i}) for i in range(count)], expected_version=0)
        return await other.read_from(0)
    finally:
        await engine.dispose()


def _unsigned_chain(count: int, stream_id: str = "visit-1") -> list[RecordedEvent]:
    events: list[RecordedEvent] = []
    moment = datetime.now(UTC)
    for position in range(1, count + 1):
        prev = events[-1].hash if events else GENESIS_HASH
        data = {"i": position}
        digest = event_hash(prev, position=position, stream_id=stream_id, version=position, type="Logged",
                            schema_version=1, data_json=canonical_json(data), meta_json=canonical_json({}),
                            recorded_at=moment)
        events.append(RecordedEvent(position, stream_id, position, "Logged", 1, data, {}, moment, prev, digest,
                                    None, None))
    return events


def _message(event: RecordedEvent) -> Message:
    payload, headers = encode("dispatch", event)
    return decode(f"dispatch.{event.type}", payload, headers)


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
    async with running(TrackingConsumer(engine, nc, "dispatch", "dispatch-index", index,
                                        trust=keyring.trust)):
        await eventually(lambda: _rows_are(engine, index, {"visit-1": 3, "$signing": 1}))
        # After the mark, an unsigned event is a forgery, whatever it links to.
        last = (await store.read_from(3))[0]
        await publish_foreign(nc, forged(last, None))
        await eventually(lambda: _parked(engine, 1))
        assert "unsigned" in (await parked_reasons(engine))[0]
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
