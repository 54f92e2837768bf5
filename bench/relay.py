"""Layer 2: Relay.publish_pending against bare js.publish_async of the same payloads.

Run on an unsigned store and on a signed one together: filling them times store.append
(where signing costs), and the relay rows show the cost of the larger envelope
(signed_by and signature beside prev_hash and hash)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence

from nats.aio.client import Client as NATS

from bench.report import Result, per_second, show
from weibao.shared.events import NewEvent
from weibao.shared.eventstore import NO_STREAM, EventStore
from weibao.shared.messages import encode
from weibao.shared.relay import Relay
from weibao.shared.streams import setup_streams, stream_name

SERVICE = "contracts"
# The signed store relays to its own service's stream, so the two relays never meet on
# one stream; the consumer checks signatures against the key trusted for this name.
SIGNED_SERVICE = "dispatch"
RAW_SERVICE = "benchraw"  # a stream with the same settings as the service's, on its own subjects
EVENTS_PER_APPEND = 100
WARM_UP = 500  # messages published to the broker before the first timed publish


async def fill(stores: Sequence[EventStore], events: int) -> list[float]:
    """Append `events` events to each store (EVENTS_PER_APPEND to a stream); each store's events appended per
    second. The stores take turns append by append, so a change in the machine's load falls on all alike."""
    spent = [0.0] * len(stores)
    for done in range(0, events, EVENTS_PER_APPEND):
        size = min(EVENTS_PER_APPEND, events - done)
        batch = [NewEvent("ContractSigned", {"n": done + i, "customer": "ACME 有限公司"}) for i in range(size)]
        for index, store in enumerate(stores):
            started = time.perf_counter()
            await store.append(f"contract-{done // EVENTS_PER_APPEND}", batch, expected_version=NO_STREAM)
            spent[index] += time.perf_counter() - started
    return [events / max(seconds, 1e-9) for seconds in spent]


async def raw_publish_rate(nc: NATS, payloads: list[bytes]) -> float:
    js = nc.jetstream()
    await setup_streams(js, (RAW_SERVICE,))  # made by the first call, reused by the next
    stream = stream_name(RAW_SERVICE)
    subject = f"{RAW_SERVICE}.ContractSigned"
    started = time.perf_counter()
    futures = [await js.publish_async(subject, payload, stream=stream) for payload in payloads]
    await asyncio.gather(*futures)
    return per_second(len(payloads), started)


async def relay_rates(relays: Sequence[Relay], last: int) -> list[float]:
    """Each relay's events per second up to position `last`; they take turns batch by batch, as above."""
    spent = [0.0] * len(relays)
    while any(relay.position < last for relay in relays):
        for index, relay in enumerate(relays):
            if relay.position < last:
                started = time.perf_counter()
                if await relay.publish_pending() == 0:
                    raise RuntimeError(f"relay stalled at position {relay.position} of {last}")
                spent[index] += time.perf_counter() - started
    return [last / max(seconds, 1e-9) for seconds in spent]


async def bench_relays(stores: Mapping[str, EventStore], nc: NATS, events: int) -> tuple[list[float], list[Result]]:
    """Fill each service's store, relay it to the service's stream: the append rates and the relay rows."""
    append_rates = await fill(list(stores.values()), events)
    payloads = [[encode(service, event)[0] async for event in store.read_all()] for service, store in stores.items()]
    # Untimed: a fresh nats-server's first writes are slower, which would fall on the first baseline only.
    await raw_publish_rate(nc, payloads[0][:WARM_UP])
    raw_rates = [await raw_publish_rate(nc, each) for each in payloads]
    relays = [Relay(store, nc, service) for service, store in stores.items()]
    results = []
    for store, rate, raw_rate in zip(stores.values(), await relay_rates(relays, events), raw_rates, strict=True):
        signed = ", signed" if store.signer is not None else ""
        results.append(show(Result(f"relay{signed} (sqlite -> JetStream)", rate, f"js.publish_async{signed}",
                                   raw_rate)))
    return append_rates, results
