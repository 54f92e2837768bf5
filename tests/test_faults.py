"""Faults that must lose and duplicate nothing, on a real nats-server and real processes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from nats.aio.client import Client as NATS
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import eventually, relayed_positions, stream_messages
from weibao.runtime.natsd import NatsServer
from weibao.shared.consumer import TrackingConsumer
from weibao.shared.events import NewEvent
from weibao.shared.eventstore import EventStore
from weibao.shared.readmodels import StreamIndex, create_tables, rows_of
from weibao.shared.relay import Relay

pytestmark = pytest.mark.faults

WORKER = Path(__file__).with_name("fault_worker.py")
CRASHED = 137


def worker(*args: str, schema: str | None) -> subprocess.CompletedProcess[str]:
    extra = ["--schema", schema] if schema else []
    return subprocess.run([sys.executable, str(WORKER), *args, *extra], capture_output=True, text=True,
                          timeout=120, check=False)


async def new_store(engine: AsyncEngine) -> EventStore:
    store = EventStore(engine)
    await store.create_tables()
    return store


async def append_many(store: EventStore, streams: int, each: int) -> None:
    for s in range(streams):
        version = await store.version(f"visit-{s}")
        await store.append(f"visit-{s}", [NewEvent("Logged", {"i": i}) for i in range(each)],
                           expected_version=version)


async def test_relay_killed_right_after_publishing_then_restarted(
    engine: AsyncEngine, nc: NATS, nats_server: NatsServer, db_url: tuple[str, str | None]
) -> None:
    store = await new_store(engine)
    await append_many(store, 10, 30)
    url, schema = db_url
    crashed = worker("relay", nats_server.url, url, "--crash-after-publish", "120", schema=schema)
    assert crashed.returncode == CRASHED, crashed.stderr
    halfway = await relayed_positions(nc, "dispatch")
    assert 0 < len(halfway) < 300
    finished = worker("relay", nats_server.url, url, schema=schema)
    assert finished.returncode == 0, finished.stderr
    messages = await stream_messages(nc, "dispatch")
    # The stream equals the log: every position once, in order, nothing else.
    assert [int(h["Weibao-Position"]) for _, h, _ in messages] == list(range(1, 301))
    assert [seq for seq, _, _ in messages] == list(range(1, 301))
    log = [e.data for e in await store.read_from(0, 1000)]
    assert [body["data"] for _, _, body in messages if isinstance(body, dict)] == log


async def test_consumer_killed_between_commit_and_ack_has_no_second_effect(
    engine: AsyncEngine, nc: NATS, nats_server: NatsServer, db_url: tuple[str, str | None]
) -> None:
    store = await new_store(engine)
    await append_many(store, 4, 50)
    relay = Relay(store, nc, "dispatch")
    while relay.position < 200:
        await relay.publish_pending()
    url, schema = db_url
    crashed = worker("consumer", nats_server.url, url, "200", "--crash-after-commit", schema=schema)
    assert crashed.returncode == CRASHED, crashed.stderr
    model = StreamIndex("dispatch")
    first = await rows_of(engine, model)
    assert sum(row[2] for row in first["stream_index_dispatch"]) > 0  # it committed before dying
    finished = worker("consumer", nats_server.url, url, "200", schema=schema)
    assert finished.returncode == 0, finished.stderr
    report = json.loads(finished.stdout)
    assert report["redelivered"] > 0  # the unacked batch did come again...
    rows = (await rows_of(engine, model))["stream_index_dispatch"]
    assert {row[0]: row[2] for row in rows} == {f"visit-{s}": 50 for s in range(4)}  # ...and changed nothing


async def test_nats_server_killed_and_restarted_mid_stream(
    engine: AsyncEngine, nc: NATS, nats_server: NatsServer
) -> None:
    """Relay and consumer ride out a broker crash (SIGKILL) and catch up after it."""
    store = await new_store(engine)
    model = StreamIndex("dispatch")
    await create_tables(engine, model)
    relay = Relay(store, nc, "dispatch", batch=20, ack_timeout=2.0)
    tracker = TrackingConsumer(engine, nc, "dispatch", "dispatch-index", model, batch=20)
    await tracker.create_tables()
    stop = asyncio.Event()
    tasks = [asyncio.create_task(relay.run(stop)), asyncio.create_task(tracker.run(stop))]
    await append_many(store, 5, 20)
    await eventually(lambda: _at_least(tracker, 1))
    nats_server.stop(kill=True)
    await append_many(store, 5, 20)  # the log takes commands while the broker is down
    nats_server.start()
    await append_many(store, 5, 20)

    async def caught_up() -> bool:
        counts = {row[0]: row[2] for row in (await rows_of(engine, model))["stream_index_dispatch"]}
        return counts == {f"visit-{s}": 60 for s in range(5)}

    await eventually(caught_up, timeout=60)
    stop.set()
    await asyncio.gather(*tasks)
    assert await relayed_positions(nc, "dispatch") == list(range(1, 301))


async def _at_least(tracker: TrackingConsumer, applied: int) -> bool:
    return tracker.applied >= applied
