"""Each item is billed exactly once (B8) however dispatch's messages reach billing, on a
real nats-server: the same message twice in the stream, a duplicate arriving while
billing is down, and billing's consumer replayed from position 0 after the invoice was
issued and a supplementary one opened. Dispatch's stream is written here as its relay
writes it (envelope, position header, message id), so each delivery is under control."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from nats.aio.client import Client as NATS
from nats.js.errors import NotFoundError
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.billing.ledger import HEFEI, Ledger, as_message, terms_of
from tests.dispatch.test_dispatch_e2e import ask, ok
from tests.helpers import eventually, services_answer, upstream_events
from weibao.billing.application.policy import TermsNotYetKnown
from weibao.billing.service import spec
from weibao.runtime.natsd import NatsServer
from weibao.shared.consumer import tracking_table
from weibao.shared.db import begin_write
from weibao.shared.eventstore import EventStore
from weibao.shared.messages import MSG_ID, encode
from weibao.shared.public.contracts import CoverageGranted, SiteLocated
from weibao.shared.public.dispatch import ExpenseRecorded, WorkLogged
from weibao.shared.replay import compare, live_position, rebuild
from weibao.shared.service import Settings, serve
from weibao.shared.streams import stream_name

DISPATCH = "billing-policy_dispatch"
BOOK = "billing-invoice_book"
INVOICE = "r-1-2026-06"


def ticket(key: str, kind: str, amount: str) -> ExpenseRecorded:
    return ExpenseRecorded("t-1", "r-1", "ag-r", "tech-1", key, kind, amount, f"R-{key}", "2026-06-08", None, "")


UPSTREAM: dict[str, list[Any]] = {
    "contracts": [
        CoverageGranted("ag-r", "r-1", ("s-1",), "2025-06-01", "2026-05-31", "free", ("C1",), HEFEI,
                        terms_of("yizhuo-crm-maintenance", {
                            "fee.percent": "10", "fee.licence_price": "100000", "onsite.local_hours": 4,
                            "onsite.out_of_town_days": 2, "hardware.day_rate": "800"})),
        SiteLocated("r-1", "润泽商贸", "s-1", "总部", "合肥", 31.86, 117.28, "3401", "street"),
    ],
    "dispatch": [
        WorkLogged("t-1", "r-1", "ag-r", "tech-1", "w-1", "hardware", "2026-06-08T09:00:00+08:00",
                   "2026-06-09T10:00:00+08:00", "billable", ("C3",)),  # 25 h: 2 days (C4)
        ticket("e-1", "lodging", "268.00"),
        ticket("e-2", "meals", "45.75"),
        ticket("e-3", "transport", "224.50"),  # after the invoice is issued
    ],
}


async def publish(nc: NATS, service: str, position: int, *, msg_id: str | None = None) -> bool:
    """Message `position` of `service` as its relay publishes it; with another `msg_id`,
    a second copy the broker cannot tell from a new message. True if it was stored."""
    kind = type(UPSTREAM[service][position - 1])
    # Signed and linked as the service's own log would hold them: billing checks both.
    event = upstream_events(service, [(f"{type(m).__name__}-{p}", type(m).__name__, type(m).SCHEMA, asdict(m))
                                      for p, m in enumerate(UPSTREAM[service], start=1)],
                            datetime(2026, 6, 8, tzinfo=UTC))[position - 1]
    payload, headers = encode(service, event)
    if msg_id is not None:
        headers[MSG_ID] = msg_id
    ack = await nc.jetstream().publish(f"{service}.{kind.__name__}", payload, stream=stream_name(service),
                                       headers=headers)
    return not ack.duplicate


@pytest.fixture
def settings(nats_server: NatsServer, engine: AsyncEngine, db_url: tuple[str, str | None],
             monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("WEIBAO_TODAY", "2026-06-10")  # drafts open on billing's today
    url, schema = db_url
    return Settings(nats_server.url, url, schema)  # `engine` drops the PostgreSQL schema afterwards


@dataclass
class Service:
    """The billing service alone, in-process, stopped and started at will."""

    settings: Settings
    nc: NATS
    running: list[tuple[asyncio.Event, asyncio.Task[None]]] = field(default_factory=list)

    async def start(self) -> None:
        stop = asyncio.Event()
        self.running.append((stop, asyncio.create_task(serve(spec, self.settings, stop))))
        await services_answer(self.nc, "billing")

    async def stop(self) -> None:
        while self.running:
            stop, task = self.running.pop()
            stop.set()
            await task


@pytest.fixture
async def billing(settings: Settings, nc: NATS) -> AsyncIterator[Service]:
    service = Service(settings, nc)
    await service.start()
    yield service
    await service.stop()


async def drained(nc: NATS, service: str, consumer: str) -> None:
    """Every message in the stream delivered to the consumer and acked."""
    js = nc.jetstream()

    async def done() -> bool:
        try:
            info = await js.consumer_info(stream_name(service), consumer)
        except NotFoundError:
            return False  # not subscribed yet
        return info.num_pending == 0 and info.num_ack_pending == 0

    await eventually(done)


async def settled(nc: NATS) -> None:
    """Every billing consumer has acked all it was sent: stopping now leaves nothing
    fetched and unacked (which the broker would redeliver only after its ack wait)."""
    for upstream, model in (("contracts", "policy_contracts"), ("dispatch", "policy_dispatch"),
                            ("billing", "stream_index_billing"), ("billing", "invoice_book")):
        await drained(nc, upstream, f"billing-{model}")


async def health(nc: NATS) -> dict[str, Any]:
    found: dict[str, Any] = json.loads((await nc.request("weibao.billing.health", b"", timeout=5)).data)
    return found


async def item_ids(nc: NATS, invoice_id: str) -> list[str]:
    answer = await ok(nc, "billing.invoice", {"invoice_id": invoice_id})
    return [line["item_id"] for line in answer["result"]["lines"]]


async def replay_from_zero(nc: NATS, engine: AsyncEngine, upstream: str, consumer: str) -> None:
    """What an operator does to re-run a policy from position 0: forget the durable
    consumer and the checkpoint (the service is stopped meanwhile)."""
    await nc.jetstream().delete_consumer(stream_name(upstream), consumer)
    async with begin_write(engine) as conn:
        await conn.execute(update(tracking_table).where(tracking_table.c.consumer == consumer,
                                                        tracking_table.c.upstream == upstream)
                           .values(position=0, stream_seq=0))


async def test_b8_each_item_billed_once_through_duplicates_restarts_and_replay_from_zero(
        billing: Service, nc: NATS, engine: AsyncEngine) -> None:
    for position in (1, 2):
        assert await publish(nc, "contracts", position)
    for position in (1, 2, 3):
        assert await publish(nc, "dispatch", position)
    # The relay's retry with the same message id: the broker keeps one copy.
    assert not await publish(nc, "dispatch", 2)
    # Copies under other ids (a relay that outlived the duplicate window): both delivered.
    assert await publish(nc, "dispatch", 2, msg_id="dispatch:2:copy")
    assert await publish(nc, "dispatch", 1, msg_id="dispatch:1:copy")

    async def three_lines() -> bool:
        answer = await ask(nc, "billing.invoice", {"invoice_id": INVOICE})
        return answer["ok"] and len(answer["result"]["lines"]) == 3

    await eventually(three_lines)
    await drained(nc, "dispatch", DISPATCH)
    assert await item_ids(nc, INVOICE) == ["dispatch:1:0", "dispatch:2:0", "dispatch:3:0"]
    issued = await ok(nc, "billing.invoice.issue", {"invoice_id": INVOICE, "issued_on": "2026-06-30"})
    assert issued["result"]["events"]
    assert await publish(nc, "dispatch", 4)  # after the issue: a supplementary draft (B8)

    async def supplement() -> bool:
        answer = await ask(nc, "billing.invoice", {"invoice_id": f"{INVOICE}-S1"})
        return answer["ok"] and len(answer["result"]["lines"]) == 1

    await eventually(supplement)
    await drained(nc, "dispatch", DISPATCH)
    before = (await health(nc))["log_position"]

    # A copy arrives while billing is down; billing comes back and only acks it.
    await settled(nc)
    await billing.stop()
    assert await publish(nc, "dispatch", 3, msg_id="dispatch:3:copy")
    await billing.start()
    await drained(nc, "dispatch", DISPATCH)
    assert (await health(nc))["log_position"] == before

    # Replay from position 0: every message applied again, after the issue and the supplement.
    await settled(nc)
    await billing.stop()
    await replay_from_zero(nc, engine, "dispatch", DISPATCH)
    await billing.start()

    async def replayed() -> bool:
        return (await health(nc))["consumers"].get(DISPATCH) == 4  # positions 1-4; the copies are skipped

    await eventually(replayed)
    await drained(nc, "dispatch", DISPATCH)
    assert (await health(nc))["log_position"] == before  # nothing appended: nothing billed twice
    assert await item_ids(nc, INVOICE) == ["dispatch:1:0", "dispatch:2:0", "dispatch:3:0"]
    assert await item_ids(nc, f"{INVOICE}-S1") == ["dispatch:4:0"]
    missing = await ask(nc, "billing.invoice", {"invoice_id": f"{INVOICE}-S2"})
    assert missing["error"]["code"] == "not_found"
    frozen = await ok(nc, "billing.invoice", {"invoice_id": INVOICE})
    # 2 days x 800.00 = 1,600.00 (96.00) + 268.00 (16.08) + 45.75 (2.75): 1,913.75 + 114.83 = 2,028.58
    assert (frozen["result"]["status"], frozen["result"]["totals"]["gross"]) == ("issued", "2028.58")

    # The invoice read model, rebuilt from position 0, equals the live one.
    async def caught_up() -> bool:
        return await live_position(engine, BOOK, "billing") == before

    await eventually(caught_up)
    listed = await ok(nc, "billing.invoices", {"customer_id": "r-1"})
    assert [(i["invoice_id"], i["lines_count"]) for i in listed["result"]["items"]] == [(INVOICE, 3),
                                                                                       (f"{INVOICE}-S1", 1)]
    live = next(model for _, model in spec.read_models(EventStore(engine)) if model.name == "invoice_book")
    fresh = live.fresh("__replay")  # type: ignore[attr-defined]
    result = await rebuild(engine, nc, "billing", fresh, until=before)
    assert result.position == before
    assert await compare(engine, live, fresh) == {}


async def test_b1_a_visit_read_before_its_agreements_terms_waits_for_them(engine: AsyncEngine) -> None:
    """The two policies run apart: dispatch's consumer may be ahead of contracts'. Priced
    without terms, a visit's costs would be dropped (B1 needs `customer_pays_expenses`);
    the message is refused, so the consumer retries it once the terms are in."""
    ledger = await Ledger(engine).start()
    early = as_message("dispatch", 1, UPSTREAM["dispatch"][1])
    with pytest.raises(TermsNotYetKnown, match="ag-r"):
        await ledger.deliver(early)
    await ledger.send("contracts", *UPSTREAM["contracts"])
    await ledger.deliver(early)  # the retry
    [line] = (await ledger.invoice(INVOICE)).lines
    assert (line.kind, line.net, line.clauses) == ("expense", Decimal("268.00"), ("B1", "C5"))
