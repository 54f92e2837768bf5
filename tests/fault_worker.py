"""A relay or a consumer in a process of its own, so a fault test can kill it at an
exact point: `os._exit` at the crash point is what SIGKILL does there (no cleanup, no
flush of anything not yet sent).

    python tests/fault_worker.py relay    NATS_URL DB_URL [--crash-after-publish N]
    python tests/fault_worker.py consumer NATS_URL DB_URL TARGET [--crash-after-commit]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from typing import Any

import nats
from nats.js.errors import NotFoundError

from weibao.shared import consumer as consumer_module
from weibao.shared import relay as relay_module
from weibao.shared.consumer import TrackingConsumer
from weibao.shared.db import make_engine
from weibao.shared.eventstore import EventStore
from weibao.shared.logs import configure
from weibao.shared.readmodels import StreamIndex, create_tables
from weibao.shared.streams import stream_name

CRASHED = 137


async def harness(nats_url: str) -> nats.aio.client.Client:
    """As the tests' harness (tests/conftest.py admits it with no limits); not imported
    from tests.helpers, since this runs as a script of its own."""
    return await nats.connect(nats_url, nkeys_seed=os.path.join(os.environ["WEIBAO_KEYS"], "harness.nk"))


async def run_relay(nats_url: str, db_url: str, crash_after: int | None, schema: str | None) -> None:
    nc = await harness(nats_url)
    store = EventStore(make_engine(db_url, schema=schema))
    published = 0
    original = relay_module._Pipeline.publish

    async def publish_then_maybe_die(self: Any, subject: str, payload: bytes, headers: dict[str, str]) -> Any:
        nonlocal published
        future = await original(self, subject, payload, headers)
        published += 1
        if crash_after is not None and published >= crash_after:
            await self.nc.flush()  # the broker has it: die before the ack is read
            os._exit(CRASHED)
        return future

    relay_module._Pipeline.publish = publish_then_maybe_die  # type: ignore[method-assign]
    relay = relay_module.Relay(store, nc, "dispatch", batch=50)
    last = await store.last_position()
    while relay.position < last:
        await relay.publish_pending()
    print(json.dumps({"position": relay.position}))
    await nc.close()


async def run_consumer(nats_url: str, db_url: str, target: int, crash_after_commit: bool, schema: str | None) -> None:
    nc = await harness(nats_url)
    engine = make_engine(db_url, schema=schema)
    model = StreamIndex("dispatch")
    await create_tables(engine, model)
    tracker = TrackingConsumer(engine, nc, "dispatch", "dispatch-index", model, batch=25, ack_wait=1.0)
    original = consumer_module.TrackingConsumer._ack

    async def ack_or_die(self: Any, items: Any) -> None:
        if crash_after_commit:
            os._exit(CRASHED)  # committed, not acked: the broker will deliver these again
        await original(self, items)

    consumer_module.TrackingConsumer._ack = ack_or_die  # type: ignore[method-assign]
    stop = asyncio.Event()
    task = asyncio.create_task(tracker.run(stop))
    js = nc.jetstream()
    while True:
        await asyncio.sleep(0.2)
        try:
            info = await js.consumer_info(stream_name("dispatch"), "dispatch-index")
        except NotFoundError:
            continue  # the tracker has not subscribed yet (its tables first; slow on a busy machine)
        position = await _tracked(engine)
        if position >= target and info.num_pending == 0 and info.num_ack_pending == 0:
            break
    stop.set()
    await task
    print(json.dumps({"applied": tracker.applied, "redelivered": tracker.duplicates, "position": position}))
    await nc.close()


async def _tracked(engine: Any) -> int:
    from sqlalchemy import select

    async with engine.connect() as conn:
        value = await conn.scalar(select(consumer_module.tracking_table.c.position))
        return int(value or 0)


def main() -> None:
    configure(json=True, level="WARNING")
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["relay", "consumer"])
    parser.add_argument("nats_url")
    parser.add_argument("db_url")
    parser.add_argument("target", type=int, nargs="?", default=0)
    parser.add_argument("--crash-after-publish", type=int)
    parser.add_argument("--crash-after-commit", action="store_true")
    parser.add_argument("--schema")
    args = parser.parse_args()
    if args.mode == "relay":
        asyncio.run(run_relay(args.nats_url, args.db_url, args.crash_after_publish, args.schema))
    else:
        asyncio.run(run_consumer(args.nats_url, args.db_url, args.target, args.crash_after_commit, args.schema))


if __name__ == "__main__":
    main()
