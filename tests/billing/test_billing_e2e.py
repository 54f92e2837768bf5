"""Billing end to end over real NATS: a visit's hardware days and lodging become invoice
lines with their clauses and sources; issuing freezes the invoice; a late message goes
on a supplementary invoice; a redelivery bills nothing twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client as NATS

from tests.dispatch.test_dispatch_e2e import SITE, ask, ok, set_up_customer_and_crew
from tests.helpers import eventually, services_answer
from weibao.billing.service import spec as billing_spec
from weibao.contracts.service import spec as contracts_spec
from weibao.dispatch.service import spec as dispatch_spec
from weibao.runtime.natsd import NatsServer
from weibao.shared.service import Settings, serve


@pytest.fixture
async def system(nats_server: NatsServer, nc: NATS, tmp_path: Path,
                 monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    monkeypatch.setenv("WEIBAO_ASSESS_INTERVAL", "3600")
    monkeypatch.setenv("WEIBAO_TICK_INTERVAL", "3600")
    monkeypatch.setenv("WEIBAO_TODAY", "2026-06-01")
    monkeypatch.setenv("WEIBAO_NOW", "2026-06-01T01:00:00+00:00")
    stop = asyncio.Event()
    specs = {"contracts": contracts_spec, "dispatch": dispatch_spec, "billing": billing_spec}
    tasks = [asyncio.create_task(serve(spec, Settings(nats_server.url, f"sqlite:///{tmp_path / name}.db"), stop))
             for name, spec in specs.items()]
    await services_answer(nc, *specs)
    yield
    stop.set()
    await asyncio.gather(*tasks)


async def report(nc: NATS, what: str, key: str, **fields: Any) -> None:
    await ok(nc, f"dispatch.ticket.{what}", {"ticket_id": "t-1", "technician_id": "near", "key": key,
                                              "device_time": "2026-06-01T09:00:00+08:00", **fields},
             actor="technician:near")


async def invoice_lines(nc: NATS, invoice_id: str, count: int) -> dict[str, Any]:
    found: dict[str, Any] = {}

    async def enough() -> bool:
        nonlocal found
        answer = await ask(nc, "billing.invoice", {"invoice_id": invoice_id})
        found = answer.get("result") or {}
        return answer["ok"] and len(found["lines"]) >= count

    await eventually(enough)
    return found


async def test_b1_b2_c4_visit_costs_become_invoice_lines_with_provenance(system: None, nc: NATS) -> None:
    await set_up_customer_and_crew(nc)
    await ok(nc, "dispatch.ticket.open", {"ticket_id": "t-1", "site_id": "s-1", "summary": "服务器硬盘故障",
                                          "skill": "hardware"})
    await ok(nc, "dispatch.ticket.triage", {"ticket_id": "t-1", "outcome": "escalate", "note": ""})
    await ok(nc, "dispatch.ticket.assign", {"ticket_id": "t-1", "technician_id": "near", "reason": "硬件专长"})
    await report(nc, "check_in", "in-1", position=SITE, accuracy_m=10)
    # 25 hours of hardware work: part of a day counts as a whole day (C4): 2 days at 800
    await report(nc, "work", "w-1", kind="hardware", started="2026-06-01T09:00:00+08:00",
                 ended="2026-06-02T10:00:00+08:00")
    await report(nc, "expense", "e-1", kind="lodging", amount="268.00", receipt_no="FP-1",
                 receipt_date="2026-06-01", nights=1)
    await report(nc, "expense", "e-1", kind="lodging", amount="268.00", receipt_no="FP-1",
                 receipt_date="2026-06-01", nights=1)  # the phone's retry: one effect

    invoice = await invoice_lines(nc, "c-1-2026-06", 2)
    by_kind = {line["kind"]: line for line in invoice["lines"]}
    assert Decimal(by_kind["hardware_days"]["quantity"]) == 2
    assert Decimal(by_kind["hardware_days"]["amount"]) == Decimal("1600.00")
    assert "B2" in by_kind["hardware_days"]["clauses"] and "C4" in by_kind["hardware_days"]["clauses"]
    assert Decimal(by_kind["expense"]["amount"]) == Decimal("268.00")  # B1, at cost
    assert len(invoice["lines"]) == 2

    issued = await ok(nc, "billing.invoice.issue", {"invoice_id": "c-1-2026-06", "issued_on": "2026-06-30"})
    number = next(e["data"]["number"] for e in issued["result"]["events"] if e["type"] == "private.InvoiceIssued")
    assert number == "INV-2026-000001"

    # A late upload after the invoice was issued: onto a supplementary invoice (B8).
    await report(nc, "expense", "e-2", kind="meals", amount="45.50", receipt_no="FP-2", receipt_date="2026-06-01")
    supplement = await invoice_lines(nc, "c-1-2026-06-S1", 1)
    assert [line["kind"] for line in supplement["lines"]] == ["expense"]
    frozen = await ask(nc, "billing.invoice", {"invoice_id": "c-1-2026-06"})
    assert len(frozen["result"]["lines"]) == 2 and frozen["result"]["status"] == "issued"

    why = await ok(nc, "billing.invoice.explain", {"invoice_id": "c-1-2026-06",
                                                   "item_id": by_kind["hardware_days"]["item_id"]})
    source = why["result"]["sources"][0]
    assert (source["service"], source["type"]) == ("dispatch", "WorkLogged")
    history = await ok(nc, "dispatch.history", {"ticket_id": "t-1"})
    assert any(e["type"] == "WorkLogged" and e["position"] == source["position"] for e in history["result"])
