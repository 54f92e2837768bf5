"""Contracts and dispatch running in-process on a real nats-server, and the requests the
dispatch end-to-end tests (and billing's) make of them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client as NATS

from tests.helpers import eventually, request, services_answer, stream_messages
from weibao.contracts.service import spec as contracts_spec
from weibao.dispatch.service import spec as dispatch_spec
from weibao.runtime.natsd import NatsServer
from weibao.shared.service import Settings, serve

HEFEI_OFFICE = {"name": "合肥办事处", "city_code": "3401", "latitude": 31.8206, "longitude": 117.2272}
SITE = {"latitude": 31.8650, "longitude": 117.2830}  # 蜀山/庐阳, a few km from the office
AGREEMENT = {  # C9: on site within 4 hours locally
    "agreement_id": "a-1", "customer_id": "c-1", "template_id": "yizhuo-crm-maintenance",
    "parameters": {"fee.percent": "10", "fee.licence_price": "120000", "onsite.local_hours": 4,
                   "onsite.out_of_town_days": 2, "hardware.day_rate": "800"},
    "go_live": "2025-09-01", "office": HEFEI_OFFICE, "site_ids": ["s-1"]}


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEIBAO_ASSESS_INTERVAL", "3600")
    monkeypatch.setenv("WEIBAO_TODAY", "2026-06-01")
    monkeypatch.setenv("WEIBAO_NOW", "2026-06-01T01:00:00+00:00")  # Monday 09:00 in Hefei
    monkeypatch.setenv("WEIBAO_TICK_INTERVAL", "0.2")


@contextlib.asynccontextmanager
async def running(nats_server: NatsServer, nc: NATS, tmp_path: Path,
                  dispatch: Settings | None = None) -> AsyncIterator[None]:
    """Both services until the block ends; dispatch on SQLite unless told otherwise."""
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(serve(contracts_spec, Settings(nats_server.url, f"sqlite:///{tmp_path / 'c.db'}"), stop)),
        asyncio.create_task(serve(dispatch_spec, dispatch or Settings(nats_server.url,
                                                                      f"sqlite:///{tmp_path / 'd.db'}"), stop)),
    ]
    try:
        await services_answer(nc, "contracts", "dispatch")
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks)


@pytest.fixture
async def services(nats_server: NatsServer, nc: NATS, tmp_path: Path, clock: None) -> AsyncIterator[None]:
    async with running(nats_server, nc, tmp_path):
        yield


async def ask(nc: NATS, subject: str, body: dict[str, Any], actor: str = "dispatcher:li") -> dict[str, Any]:
    """The reply to `weibao.<subject>`, signed as the CLI in `actor`'s name."""
    return await request(nc, f"weibao.{subject}", body, actor)


async def ok(nc: NATS, subject: str, body: dict[str, Any], actor: str = "dispatcher:li") -> dict[str, Any]:
    answer = await ask(nc, subject, body, actor)
    assert answer["ok"], (subject, answer)
    return answer


async def published(nc: NATS, service: str) -> list[str]:
    js = nc.jetstream()
    subjects = []
    for seq, _, _ in await stream_messages(nc, service):
        subjects.append((await js.get_msg(service.upper(), seq)).subject or "")
    return subjects


async def set_up_customer_and_crew(nc: NATS) -> list[str]:
    """Customer c-1 with site s-1 under agreement a-1 (C9: 4 hours locally), technicians
    "near" (Hefei) and "far" (Zhengzhou); answers the ids of the probe tickets it opened
    to learn that dispatch has read contracts' messages."""
    await ok(nc, "contracts.customer.register", {
        "customer_id": "c-1", "name": "天宇贸易",
        "sites": [{"site_id": "s-1", "name": "总部", "address": "安徽省合肥市庐阳区", **SITE}]})
    await ok(nc, "contracts.sign", AGREEMENT)
    for technician, where in (("near", (31.83, 117.24)), ("far", (34.75, 113.62))):  # Hefei, Zhengzhou
        await ok(nc, "dispatch.technician.register", {
            "technician_id": technician, "name": technician, "skills": ["software:general", "hardware"],
            "home": {"latitude": where[0], "longitude": where[1]}})

    probes = iter(range(1000))
    opened: list[str] = []

    async def ready() -> bool:
        board = await ask(nc, "dispatch.technicians", {})
        probe = f"probe-{next(probes)}"
        answer = await ask(nc, "dispatch.ticket.open", {"ticket_id": probe, "site_id": "s-1", "summary": "x"})
        if answer["ok"]:
            opened.append(probe)
        return len(board["result"]) == 2 and answer["ok"] and answer["result"]["events"][0]["data"][
            "coverage"]["agreement_id"] == "a-1"

    await eventually(ready)  # dispatch has read contracts' messages and its own
    return opened
