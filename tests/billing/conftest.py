"""The three services that billing needs, running in-process on a real nats-server, on
SQLite files or (with WEIBAO_TEST_POSTGRES_URL) a PostgreSQL schema each."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from nats.aio.client import Client as NATS
from sqlalchemy import text

from tests.conftest import database_url
from tests.helpers import services_answer
from weibao.billing.service import spec as billing_spec
from weibao.contracts.service import spec as contracts_spec
from weibao.dispatch.service import spec as dispatch_spec
from weibao.runtime.natsd import NatsServer
from weibao.shared.db import make_engine
from weibao.shared.service import ServiceSpec, Settings, serve

SPECS: dict[str, ServiceSpec] = {"contracts": contracts_spec, "dispatch": dispatch_spec, "billing": billing_spec}


def settings_for(backend: str, tmp_path: Path, url: str, name: str) -> Settings:
    if backend == "sqlite":
        return Settings(url, f"sqlite:///{tmp_path / name}.db")
    database, schema = database_url(backend, tmp_path)
    return Settings(url, database, f"{schema}_{name[:1]}" if schema else None)


async def drop_schemas(settings: list[Settings]) -> None:
    for found in settings:
        if found.db_schema is None:
            continue
        engine = make_engine(found.database_url)
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{found.db_schema}" CASCADE'))
        await engine.dispose()


@pytest.fixture
async def system(backend: str, nats_server: NatsServer, nc: NATS, tmp_path: Path,
                 monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[dict[str, Settings]]:
    monkeypatch.setenv("WEIBAO_ASSESS_INTERVAL", "3600")
    monkeypatch.setenv("WEIBAO_TICK_INTERVAL", "3600")
    monkeypatch.setenv("WEIBAO_TODAY", "2026-06-01")
    monkeypatch.setenv("WEIBAO_NOW", "2026-06-01T01:00:00+00:00")
    settings = {name: settings_for(backend, tmp_path, nats_server.url, name) for name in SPECS}
    stop = asyncio.Event()
    tasks = [asyncio.create_task(serve(SPECS[name], settings[name], stop)) for name in SPECS]
    await services_answer(nc, *SPECS)
    yield settings
    stop.set()
    await asyncio.gather(*tasks)
    await drop_schemas(list(settings.values()))
