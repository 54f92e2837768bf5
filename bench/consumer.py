"""Layer 3: a TrackingConsumer applying a read model against a bare ordered-consumer read."""

from __future__ import annotations

import asyncio
import contextlib
import time

from nats.aio.client import Client as NATS
from nats.js.api import DeliverPolicy
from sqlalchemy.ext.asyncio import AsyncConnection

from bench.report import per_second
from weibao.shared.consumer import TrackingConsumer
from weibao.shared.messages import Message
from weibao.shared.replay import live_position
from weibao.shared.streams import stream_name


async def ordered_read_rate(nc: NATS, upstream: str, count: int) -> float:
    """Messages per second an ordered consumer reads from the start of `upstream`'s stream."""
    js = nc.jetstream()
    started = time.perf_counter()
    sub = await js.subscribe(
        f"{upstream}.>", stream=stream_name(upstream), ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
    )
    try:
        for _ in range(count):
            await sub.next_msg(timeout=10.0)
        return per_second(count, started)
    finally:
        await sub.unsubscribe()


async def no_op(conn: AsyncConnection, message: Message) -> None:
    """A handler that writes nothing: what is left is the consumer's own cost."""


async def consumer_rate(consumer: TrackingConsumer, count: int) -> float:
    """Events per second a fresh durable `consumer` applies and commits, from position 0 (the store was filled
    from position 1, so position `count` is the last). With a trust list, it verifies each message first."""
    await consumer.create_tables()
    stop = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(consumer.run(stop))
    try:
        # `applied` counts inside the open transaction; the clock stops at the commit of position `count`.
        while (consumer.applied < count
               or await live_position(consumer.engine, consumer.name, consumer.upstream) < count):
            if task.done():
                task.result()  # raises what ended it
                raise RuntimeError(f"consumer ended after {consumer.applied} of {count}")
            # A refused message is parked, not applied: the figure would be for less work than claimed.
            if consumer.refused:
                raise RuntimeError(f"consumer {consumer.name} refused {consumer.refused} message(s) for want of proof")
            await asyncio.sleep(0.005)
        return per_second(count, started)
    finally:
        stop.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
