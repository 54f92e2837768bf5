"""The gateway's whole system (as `conftest.gateway`) on either event-store backend: the
tests of what every backend must store take `any_gateway`, run on SQLite and, when
WEIBAO_TEST_POSTGRES_URL is set, on PostgreSQL (a schema per service, dropped after)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from nats.aio.client import Client as NATS
from sqlalchemy import text

from tests.conftest import database_url
from tests.gateway.conftest import SECRET, Gateway, free_port, write_users
from tests.helpers import services_answer
from weibao.billing.service import spec as billing_spec
from weibao.contracts.service import spec as contracts_spec
from weibao.dispatch.service import spec as dispatch_spec
from weibao.gateway.app import create_app
from weibao.runtime.natsd import NatsServer
from weibao.shared.db import make_engine
from weibao.shared.service import Settings, serve

SPECS = {"contracts": contracts_spec, "dispatch": dispatch_spec, "billing": billing_spec}


def _settings(backend: str, nats_url: str, tmp_path: Path, name: str) -> Settings:
    url, schema = database_url(backend, tmp_path)
    if schema is None:
        return Settings(nats_url, f"sqlite:///{tmp_path / name}.db")
    return Settings(nats_url, url, db_schema=f"{schema}_{name}")


async def _drop(settings: Settings) -> None:
    if settings.db_schema is None:
        return
    cleanup = make_engine(settings.database_url)
    async with cleanup.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA IF EXISTS "{settings.db_schema}" CASCADE'))
    await cleanup.dispose()


@pytest.fixture
async def any_gateway(backend: str, nats_server: NatsServer, nc: NATS, tmp_path: Path,
                      monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Gateway]:
    monkeypatch.setenv("WEIBAO_ASSESS_INTERVAL", "3600")
    monkeypatch.setenv("WEIBAO_TICK_INTERVAL", "3600")
    monkeypatch.setenv("WEIBAO_TODAY", "2026-06-01")
    monkeypatch.setenv("WEIBAO_NOW", "2026-06-01T01:00:00+00:00")
    stop = asyncio.Event()
    settings = {name: _settings(backend, nats_server.url, tmp_path, name) for name in SPECS}
    tasks: list[asyncio.Task[Any]] = [asyncio.create_task(serve(spec, settings[name], stop))
                                      for name, spec in SPECS.items()]
    server: uvicorn.Server | None = None
    try:
        await services_answer(nc, *SPECS)
        users = tmp_path / "users.json"
        write_users(users)
        port = free_port()
        app = create_app(nats_server.url, users_path=users, secret=SECRET)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                               lifespan="on", timeout_graceful_shutdown=2))
        tasks.append(asyncio.create_task(server.serve()))
        while not server.started:
            await asyncio.sleep(0.02)
        url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=url, timeout=20) as http:
            yield Gateway(url, http, users)
    finally:
        if server is not None:
            server.should_exit = True
        stop.set()
        await asyncio.gather(*tasks)
        for one in settings.values():
            await _drop(one)
