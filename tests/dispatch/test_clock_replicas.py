"""The deadline clock is exactly-once across replicas and restarts (rule D1; issue 15):
two dispatch replicas on one database both run the clock, one is stopped and started
again in the middle, and every at-risk and breach is still announced exactly once."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from nats.aio.client import Client as NATS

from tests.dispatch.conftest import ok, running, set_up_customer_and_crew
from tests.helpers import eventually, stream_messages
from weibao.dispatch.service import spec as dispatch_spec
from weibao.runtime.natsd import NatsServer
from weibao.shared.service import Settings, serve

TICKETS = [f"t-{n}" for n in range(6)]


@contextlib.asynccontextmanager
async def replica(nats_server: NatsServer, database: Path) -> AsyncIterator[None]:
    """A second dispatch process on the same database (its own engine, relay, consumers and clock)."""
    stop = asyncio.Event()
    task = asyncio.create_task(serve(dispatch_spec, Settings(nats_server.url, f"sqlite:///{database}"), stop))
    try:
        yield
    finally:
        stop.set()
        await task


async def announced(nc: NATS, kind: str) -> Counter[str]:
    """How many times each request was announced `kind` (SlaAtRisk, SlaBreached) on the stream."""
    return Counter(body["data"]["ticket_id"] for _, headers, body in await stream_messages(nc, "dispatch")
                   if headers.get("Weibao-Type") == kind and isinstance(body, dict))


async def every(nc: NATS, kind: str) -> Counter[str]:
    async def all_there() -> bool:
        counts = await announced(nc, kind)
        return all(counts[t] >= 1 for t in TICKETS)

    await eventually(all_there)
    return await announced(nc, kind)


async def test_d1_two_replicas_and_a_restart_announce_each_deadline_fact_once(
        nats_server: NatsServer, nc: NATS, tmp_path: Path, clock: None, monkeypatch: pytest.MonkeyPatch) -> None:
    database = tmp_path / "d.db"
    async with running(nats_server, nc, tmp_path, Settings(nats_server.url, f"sqlite:///{database}")):
        async with replica(nats_server, database):
            await set_up_customer_and_crew(nc)
            for ticket_id in TICKETS:  # 09:00: on site by 13:00 (C9), at risk from 12:12
                await ok(nc, "dispatch.ticket.open", {"ticket_id": ticket_id, "site_id": "s-1",
                                                      "summary": "数据库连接失败"})
            monkeypatch.setenv("WEIBAO_NOW", "2026-06-01T04:30:00+00:00")  # 12:30: every arrival at risk
            at_risk = await every(nc, "SlaAtRisk")
        # the replica is gone; it comes back while the other breaches what falls due
        monkeypatch.setenv("WEIBAO_NOW", "2026-06-01T05:30:00+00:00")  # 13:30: every arrival breached
        async with replica(nats_server, database):
            breached = await every(nc, "SlaBreached")
            # both replicas keep turning: anything they would announce twice is announced by now
            await ok(nc, "dispatch.ticket.open", {"ticket_id": "t-late", "site_id": "s-1", "summary": "后到的请求"})
            monkeypatch.setenv("WEIBAO_NOW", "2026-06-01T10:00:00+00:00")  # t-late (14:30+4 h) breached too

            async def late_breached() -> bool:
                return (await announced(nc, "SlaBreached"))["t-late"] >= 1

            await eventually(late_breached)
    assert all(at_risk[t] == 1 for t in TICKETS), at_risk
    assert all(breached[t] == 1 for t in TICKETS), breached
    final = await announced(nc, "SlaBreached")
    assert all(count == 1 for count in final.values()), final  # after every later turn of both clocks
