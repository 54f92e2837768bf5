"""Request/reply: every request gets an answer, even when the handler's result cannot
be encoded or the handler refuses with a Rejected raised through a context manager."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from faststream.nats import NatsBroker
from nats.aio.client import Client as NATS

from tests.helpers import eventually, harness_seed, request
from weibao.runtime.natsd import NatsServer
from weibao.shared.client import Unanswered
from weibao.shared.errors import Rejected
from weibao.shared.eventstore import ConcurrencyError
from weibao.shared.keys import Keyring
from weibao.shared.rpc import expose
from weibao.shared.service import broker_options


@contextlib.asynccontextmanager
async def transaction() -> AsyncIterator[None]:
    yield  # contextlib assigns __traceback__ to what passes through: a frozen exception broke here


async def unencodable(_body: Mapping[str, Any], _meta: Mapping[str, Any]) -> Any:
    return {"zone": ZoneInfo("Asia/Shanghai")}


async def refuses(_body: Mapping[str, Any], _meta: Mapping[str, Any]) -> Any:
    async with transaction():
        raise Rejected("invalid", "when", "not a date")


def harness_broker(url: str) -> dict[str, Any]:
    # A probe service no identity is made for: it connects as the tests' harness.
    return broker_options(url, str(harness_seed()))


async def collides(_body: Mapping[str, Any], _meta: Mapping[str, Any]) -> Any:
    raise ConcurrencyError("ticket-t-1", 3, 4)  # the deadline clock wrote first


async def test_every_request_is_answered(nats_server: NatsServer, nc: NATS) -> None:
    broker = NatsBroker(nats_server.url, logger=None, **harness_broker(nats_server.url))
    keys = Keyring.from_env()  # as a service holds them: the requests below are signed
    expose(broker, "probe", "unencodable", unencodable, keys=keys)
    expose(broker, "probe", "refuses", refuses, keys=keys)
    expose(broker, "probe", "collides", collides, keys=keys)
    await broker.start()

    async def subscribed() -> bool:  # the broker's subscriptions reach the server a moment after start
        try:
            await request(nc, "weibao.probe.refuses", {}, timeout=1)
        except Unanswered:
            return False
        return True

    try:
        await eventually(subscribed)
        failed = await request(nc, "weibao.probe.unencodable", {})
        assert failed == {"ok": False, "error": {"code": "internal", "field": "(server)",
                                                 "message": "the service failed; see its log"}}
        refused = await request(nc, "weibao.probe.refuses", {})
        assert refused == {"ok": False, "error": {"code": "invalid", "field": "when", "message": "not a date"}}
        collided = await request(nc, "weibao.probe.collides", {})
        assert collided["error"]["code"] == "concurrency"  # the gateway answers 409: retry
    finally:
        await broker.stop()


async def test_replicas_share_requests_each_decided_once(nats_server: NatsServer, nc: NATS) -> None:
    """Two replicas of a service: every request reaches exactly one of them (a queue
    group), so a command is not decided by each replica racing to answer first."""
    calls: dict[str, int] = {"a": 0, "b": 0}
    brokers = []
    for replica in calls:
        async def count(_body: Mapping[str, Any], _meta: Mapping[str, Any], replica: str = replica) -> Any:
            calls[replica] += 1
            return {"replica": replica}

        broker = NatsBroker(nats_server.url, logger=None, **harness_broker(nats_server.url))
        expose(broker, "probe", "count", count, keys=Keyring.from_env())
        await broker.start()
        brokers.append(broker)

    try:
        await eventually(lambda: _answered(nc))
        before = sum(calls.values())
        for _ in range(40):
            await request(nc, "weibao.probe.count", {})
        assert sum(calls.values()) - before == 40  # each request handled once, not once per replica
    finally:
        for broker in brokers:
            await broker.stop()


async def _answered(nc: NATS) -> bool:
    try:
        await request(nc, "weibao.probe.count", {}, timeout=1)
    except Unanswered:
        return False
    return True
