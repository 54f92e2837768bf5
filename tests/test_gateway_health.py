"""The gateway answers /healthz 200 only when every service answers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from nats.aio.client import Client as NATS

from tests.helpers import eventually
from weibao.gateway.app import create_app
from weibao.runtime.natsd import NatsServer


@pytest.fixture
async def client(nats_server: NatsServer) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(nats_server.url, services=("contracts", "billing"), timeout=0.5)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            yield http


async def answer_health(nc: NATS, service: str) -> None:
    async def reply(msg: object) -> None:
        await msg.respond(json.dumps({"service": service, "status": "ok"}).encode())  # type: ignore[attr-defined]

    await nc.subscribe(f"weibao.{service}.health", cb=reply)
    await nc.flush()


async def test_healthz_is_503_while_a_service_is_silent(client: httpx.AsyncClient, nc: NATS) -> None:
    await answer_health(nc, "contracts")
    response = await client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["services"]["billing"]["status"] == "down"
    assert body["services"]["contracts"]["status"] == "ok"


async def test_healthz_is_200_when_every_service_answers(client: httpx.AsyncClient, nc: NATS) -> None:
    await answer_health(nc, "contracts")
    await answer_health(nc, "billing")
    await asyncio.sleep(0)
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_healthz_names_the_broker_when_the_gateway_has_lost_it(client: httpx.AsyncClient,
                                                                     nats_server: NatsServer) -> None:
    nats_server.stop(kill=True)  # and nobody restarts it here

    async def broker_named_down() -> bool:
        response = await client.get("/healthz")
        body = response.json()
        return response.status_code == 503 and "broker" in body.get("down", [])

    await eventually(broker_named_down)
    body = (await client.get("/healthz")).json()
    assert body["broker"]["status"] == "down" and "broker unreachable" in body["broker"]["why"]
