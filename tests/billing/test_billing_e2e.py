"""Billing end to end over real NATS: a visit's hardware days and lodging become invoice
lines with their clauses and sources; issuing freezes the invoice; a late message goes
on a supplementary invoice; the phone's retry bills nothing twice; the list, the export's
pages and the A4 statement follow the log."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from nats.aio.client import Client as NATS

from tests.dispatch.test_dispatch_e2e import SITE, ask, ok, set_up_customer_and_crew
from tests.helpers import eventually
from weibao.shared.public.billing import line_of


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


async def technician_on_site(nc: NATS) -> None:
    """Request t-1 (hardware) escalated (D3), assigned to `near` (D4), checked in on site (D5)."""
    await set_up_customer_and_crew(nc)
    await ok(nc, "dispatch.ticket.open", {"ticket_id": "t-1", "site_id": "s-1", "summary": "服务器硬盘故障",
                                          "skill": "hardware"})
    await ok(nc, "dispatch.ticket.triage", {"ticket_id": "t-1", "outcome": "escalate", "note": ""})
    await ok(nc, "dispatch.ticket.assign", {"ticket_id": "t-1", "technician_id": "near", "reason": "硬件专长"})
    await report(nc, "check_in", "check-in-1", position=SITE, accuracy_m=10)


async def test_b1_b2_c4_visit_costs_become_invoice_lines_with_provenance(system: None, nc: NATS) -> None:
    await technician_on_site(nc)
    # 25 hours of hardware work: part of a day counts as a whole day (C4): 2 days at 800
    await report(nc, "work", "work-1-1", kind="hardware", started="2026-06-01T09:00:00+08:00",
                 ended="2026-06-02T10:00:00+08:00")
    await report(nc, "expense", "expense-1", kind="lodging", amount="268.00", receipt_no="FP-1",
                 receipt_date="2026-06-01", nights=1)
    await report(nc, "expense", "expense-1", kind="lodging", amount="268.00", receipt_no="FP-1",
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
    await report(nc, "expense", "expense-2", kind="meals", amount="45.50", receipt_no="FP-2", receipt_date="2026-06-01")
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

    # The read model follows the log: the list shows the issue, then the payment.
    await ok(nc, "billing.invoice.pay", {"invoice_id": "c-1-2026-06", "payment_id": "p-1", "amount": "100.00"})

    async def listed() -> bool:
        answer = await ask(nc, "billing.invoices", {"customer_id": "c-1"})
        items = {item["invoice_id"]: item for item in answer["result"]["items"]}
        issued = items.get("c-1-2026-06", {})
        return len(items) == 2 and issued.get("status") == "partially_paid"

    await eventually(listed)
    page = (await ok(nc, "billing.invoices", {"customer_id": "c-1", "status": "partially_paid"}))["result"]
    [item] = page["items"]
    assert (page["total"], page["next_offset"], item["number"], item["customer_name"]) == (
        1, None, "INV-2026-000001", "天宇贸易")
    assert (item["totals"]["gross"], item["outstanding"]) == (frozen["result"]["totals"]["gross"],
                                                            str(Decimal(frozen["result"]["totals"]["gross"]) - 100))
    exported = (await ok(nc, "billing.export.lines", {"customer_id": "c-1", "limit": 1}))["result"]
    rest = (await ok(nc, "billing.export.lines", {"customer_id": "c-1", "after": exported["next"]}))["result"]
    rows = [line_of(row) for row in exported["lines"] + rest["lines"]]  # what the gateway formats
    assert [(r.invoice_number, r.line_no, r.status) for r in rows] == [
        ("INV-2026-000001", 1, "partially_paid"), ("INV-2026-000001", 2, "partially_paid")]  # drafts: not exported
    assert rest["next"] is None
    statement = (await ok(nc, "billing.invoice.page", {"invoice_id": "c-1-2026-06"}))["result"]["html"]
    assert "<h1>结算单</h1>" in statement and "INV-2026-000001" in statement
    refusals = [("billing.invoice", {"invoice_id": "c-1-2026-06", "as_of": "last week"}, "as_of"),
                ("billing.invoice", {"invoice_id": "c-1-2026-06", "as_of": "2020-01-01T00:00:00+08:00"}, "invoice_id"),
                ("billing.invoices", {"limit": 500}, "limit"),
                ("billing.export.lines", {"after": "garbage"}, "after"),
                ("billing.invoice.page", {"invoice_id": "c-1-2026-06-S1"}, "invoice_id")]
    for subject, body, field in refusals:
        answer = await ask(nc, subject, body)
        assert not answer["ok"] and answer["error"]["field"] == field, (subject, answer)
