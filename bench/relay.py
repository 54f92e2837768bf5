"""Layer 2: Relay.publish_pending against bare js.publish_async of the same payloads."""

from __future__ import annotations

import asyncio
import time

from nats.aio.client import Client as NATS

from bench.report import Result, per_second, show
from weibao.shared.events import NewEvent
from weibao.shared.eventstore import NO_STREAM, EventStore
from weibao.shared.messages import encode
from weibao.shared.relay import Relay
from weibao.shared.streams import stream_config, stream_name

SERVICE = "contracts"
RAW_SERVICE = "benchraw"  # a stream with the same settings as the service's, on its own subjects
EVENTS_PER_APPEND = 100


async def fill(store: EventStore, events: int) -> int:
    """Append `events` events (EVENTS_PER_APPEND to a stream); return the last position."""
    done = 0
    while done < events:
        size = min(EVENTS_PER_APPEND, events - done)
        batch = [NewEvent("ContractSigned", {"n": done + i, "customer": "ACME 有限公司"}) for i in range(size)]
        await store.append(f"contract-{done // EVENTS_PER_APPEND}", batch, expected_version=NO_STREAM)
        done += size
    return await store.last_position()


async def raw_publish_rate(nc: NATS, payloads: list[bytes]) -> float:
    js = nc.jetstream()
    await js.add_stream(stream_config(RAW_SERVICE))
    stream = stream_name(RAW_SERVICE)
    subject = f"{RAW_SERVICE}.ContractSigned"
    started = time.perf_counter()
    futures = [await js.publish_async(subject, payload, stream=stream) for payload in payloads]
    await asyncio.gather(*futures)
    return per_second(len(payloads), started)


async def relay_rate(relay: Relay, last: int) -> float:
    started = time.perf_counter()
    while relay.position < last:
        if await relay.publish_pending() == 0:
            raise RuntimeError(f"relay stalled at position {relay.position} of {last}")
    return per_second(last, started)


async def bench_relay(store: EventStore, nc: NATS, events: int) -> Result:
    last = await fill(store, events)
    payloads = [encode(SERVICE, event)[0] async for event in store.read_all()]
    raw_rate = await raw_publish_rate(nc, payloads)
    layer_rate = await relay_rate(Relay(store, nc, SERVICE), last)
    return show(Result("relay (sqlite -> JetStream)", layer_rate, "js.publish_async", raw_rate))
