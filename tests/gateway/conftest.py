"""A whole system for the gateway's tests: nats-server, the three services and the
gateway itself, serving real HTTP on a free port."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from nats.aio.client import Client as NATS

from tests.helpers import services_answer
from weibao.billing.service import spec as billing_spec
from weibao.contracts.service import spec as contracts_spec
from weibao.dispatch.service import spec as dispatch_spec
from weibao.gateway.app import create_app
from weibao.runtime.natsd import NatsServer
from weibao.shared.service import Settings, serve
from weibao.shared.users import User, hash_password, save_users

SECRET = "test-secret-" + "x" * 60  # 64+ bytes, as HS512 would want (the tests forge one)
PASSWORD = "correct horse battery"
HEFEI_OFFICE = {"name": "合肥办事处", "city_code": "3401", "latitude": 31.8206, "longitude": 117.2272}
SITE = {"latitude": 31.8650, "longitude": 117.2830}  # 蜀山/庐阳, a few km from the office
USERS = {
    "li": ("dispatcher", None),
    "near": ("technician", "near"),
    "far": ("technician", "far"),
    "qian": ("billing", None),
    "shen": ("auditor", None),
    "root": ("admin", None),
}


@dataclass
class Gateway:
    url: str
    http: httpx.AsyncClient
    users: Path

    async def token(self, username: str, password: str = PASSWORD) -> str:
        response = await self.http.post("/api/v1/session", json={"username": username, "password": password})
        assert response.status_code == 200, response.text
        self.http.cookies.clear()  # `http` stays anonymous; the cookie is tested on its own
        return str(response.json()["access_token"])

    async def as_user(self, username: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=20,
                                 headers={"Authorization": f"Bearer {await self.token(username)}"})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_users(path: Path) -> None:
    hashed = hash_password(PASSWORD)  # one hash for all: argon2 is slow on purpose
    save_users(path, {name: User(name, role, hashed, name.title(), technician)  # type: ignore[arg-type]
                      for name, (role, technician) in USERS.items()})


@pytest.fixture
async def gateway(nats_server: NatsServer, nc: NATS, tmp_path: Path,
                  monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Gateway]:
    monkeypatch.setenv("WEIBAO_ASSESS_INTERVAL", "3600")
    monkeypatch.setenv("WEIBAO_TICK_INTERVAL", "3600")
    monkeypatch.setenv("WEIBAO_TODAY", "2026-06-01")
    monkeypatch.setenv("WEIBAO_NOW", "2026-06-01T01:00:00+00:00")
    stop = asyncio.Event()
    specs = {"contracts": contracts_spec, "dispatch": dispatch_spec, "billing": billing_spec}
    tasks: list[asyncio.Task[Any]] = [
        asyncio.create_task(serve(spec, Settings(nats_server.url, f"sqlite:///{tmp_path / name}.db"), stop))
        for name, spec in specs.items()]
    await services_answer(nc, *specs)
    users = tmp_path / "users.json"
    write_users(users)
    port = free_port()
    app = create_app(nats_server.url, users_path=users, secret=SECRET)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
                                                timeout_graceful_shutdown=2))
    tasks.append(asyncio.create_task(server.serve()))
    while not server.started:
        await asyncio.sleep(0.02)
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=url, timeout=20) as http:
        yield Gateway(url, http, users)
    server.should_exit = True
    stop.set()
    await asyncio.gather(*tasks)
