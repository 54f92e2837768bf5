"""Agreements signed from the shipped templates, and the contracts service running
in-process on a real nats-server, for the contracts tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client as NATS

from tests.decider import Decider
from tests.helpers import eventually, request, services_answer, stream_messages
from weibao.contracts.adapters.templates import TemplateFile, load_templates
from weibao.contracts.domain.agreement import Agreement, Office, SignAgreement, decide, evolve
from weibao.contracts.service import spec
from weibao.runtime.natsd import NatsServer
from weibao.shared.service import Settings, serve

HEFEI = Office("合肥办事处", "3401", 31.8206, 117.2272)

YIZHUO_PARAMETERS: dict[str, Any] = {
    "fee.percent": "10",
    "fee.licence_price": "120000",
    "onsite.local_hours": 8,
    "onsite.out_of_town_days": 2,
    "hardware.day_rate": "800",
}


@pytest.fixture(scope="session")
def templates() -> dict[str, TemplateFile]:
    return load_templates()


# The agreement's decider, for every contracts test that starts from a signed agreement:
# the one given/when/then helper (tests/decider.py), not a fold of its own.
AGREEMENT = Decider(decide=decide, evolve=evolve, initial=Agreement())


def signing(template: TemplateFile, go_live: date = date(2025, 3, 1), **parameters: Any) -> SignAgreement:
    """The command that signs agreement `agr-1` for `cust-1` from `template` with `parameters`:
    `AGREEMENT.after(signing(...))` is the signed agreement's history."""
    terms = template.resolve(parameters)
    return SignAgreement("agr-1", "cust-1", template.template.id, terms, go_live, go_live, HEFEI)


OFFICE = {"name": "合肥办事处", "city_code": "3401", "latitude": 31.8206, "longitude": 117.2272}


@pytest.fixture
def clock() -> dict[str, str]:
    """The contracts service's injected clock and assessment interval."""
    return {"WEIBAO_TODAY": "2025-03-01", "WEIBAO_ASSESS_INTERVAL": "3600"}


@contextlib.asynccontextmanager
async def running(nc: NATS, settings: Settings) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(serve(spec, settings, stop))
    try:
        await services_answer(nc, "contracts")
        yield
    finally:
        stop.set()
        await task


@pytest.fixture
async def contracts(nats_server: NatsServer, nc: NATS, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                    clock: dict[str, str]) -> AsyncIterator[None]:
    for name, value in clock.items():
        monkeypatch.setenv(name, value)
    async with running(nc, Settings(nats_server.url, f"sqlite:///{tmp_path / 'c.db'}")):
        yield


async def ask(nc: NATS, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """The reply to `weibao.contracts.<name>`, signed as the CLI."""
    return await request(nc, f"weibao.contracts.{name}", body, "dispatcher:test")


async def published(nc: NATS, count: int) -> list[tuple[str, dict[str, Any]]]:
    async def enough() -> bool:
        return len(await stream_messages(nc, "contracts")) >= count

    await eventually(enough)
    found = []
    js = nc.jetstream()
    for seq, _, body in await stream_messages(nc, "contracts"):
        raw = await js.get_msg("CONTRACTS", seq)
        assert isinstance(body, dict)
        found.append((raw.subject or "", body))
    return found
