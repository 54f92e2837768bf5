"""Layer 4: replay.rebuild of StreamIndex into fresh tables, checked against the live copy."""

from __future__ import annotations

import time

from nats.aio.client import Client as NATS
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.relay import SERVICE
from bench.report import per_second
from weibao.shared.readmodels import StreamIndex
from weibao.shared.replay import compare, rebuild


async def replay_rate(engine: AsyncEngine, nc: NATS, count: int) -> float:
    fresh = StreamIndex(SERVICE, suffix="_replay")
    started = time.perf_counter()
    result = await rebuild(engine, nc, SERVICE, fresh, until=None)
    rate = per_second(result.applied, started)
    if result.applied != count:
        raise RuntimeError(f"replay applied {result.applied} of {count} (skipped {result.skipped})")
    differences = await compare(engine, StreamIndex(SERVICE), fresh)
    if differences:
        raise RuntimeError(f"replay differs from the live read model: {differences}")
    return rate
