"""The invoice read model and the queries on it: the list of invoices, the export's pages,
the invoice as it stood at a time, and the A4 statement. The read model must agree with
the invoices folded from the log after drafts lose lines, issue, credit notes and payments
(B8), and come out the same however its stream is cut into batches (replay)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.billing.ledger import HEFEI, Ledger
from weibao.billing.adapters.exports import lines_of
from weibao.billing.adapters.invoices import InvoiceBook, invoice_stream
from weibao.billing.application.queries import Queries
from weibao.billing.domain import invoice as domain
from weibao.shared import codec
from weibao.shared.commands.billing import CreditInvoice, ExportQuery, InvoiceAsOf, InvoiceList, InvoiceRef, PayInvoice
from weibao.shared.errors import Rejected
from weibao.shared.paging import Page
from weibao.shared.public.billing import COLUMNS, line_of
from weibao.shared.public.contracts import CoverageGranted, QuotaConsumed, WarrantyVerdict
from weibao.shared.public.dispatch import ExpenseRecorded, WorkLogged
from weibao.shared.readmodels import rows_of

D = Decimal
INVOICES = ("a-2026-06", "a-2026-06-S1", "a-2026-07", "b-visit:t-9", "c-2026-06")


def expense(customer: str, key: str, amount: str, on: str = "2026-06-08", ticket: str = "t-1") -> ExpenseRecorded:
    return ExpenseRecorded(ticket, customer, f"ag-{customer}", "tech-1", key, "transport", amount, f"R-{key}", on,
                           None, "")


def hardware(customer: str, key: str, ticket: str = "t-1") -> WorkLogged:
    return WorkLogged(ticket, customer, f"ag-{customer}", "tech-1", key, "hardware", "2026-06-08T09:00:00+08:00",
                      "2026-06-09T10:00:00+08:00", "billable", ("C3",))  # 25 h: 2 days (C4)


async def history(engine: AsyncEngine) -> Ledger:
    """Three customers' invoices through every change an invoice goes through."""
    ledger = await Ledger(engine).start()
    await ledger.agreement("ag-a", "a", "天宇贸易", "yizhuo-crm-maintenance",
                           {"fee.percent": "10", "fee.licence_price": "100000", "onsite.local_hours": 4,
                            "onsite.out_of_town_days": 2, "hardware.day_rate": "800"})
    await ledger.agreement("ag-c", "c", "超人客户", "chaoren-software-sale")
    per_visit = {"customer_pays_expenses": True, "billing_period": "per_visit"}
    await ledger.send("contracts", CoverageGranted("ag-b", "b", ("s-1",), "2025-06-01", "2026-05-31", "free", ("C1",),
                                                   HEFEI, per_visit))
    ledger.now = datetime(2026, 6, 29, 1, 0, tzinfo=UTC)
    await ledger.send("dispatch", hardware("a", "w-1"), expense("a", "e-1", "224.50"), expense("a", "e-2", "12.30"),
                      expense("a", "e-3", "45.75"), expense("a", "e-4", "30.00", on="2026-07-02"),
                      expense("b", "e-5", "99.99", ticket="t-9"), expense("c", "e-6", "10.00"))
    await ledger.send("contracts", QuotaConsumed("ag-a", "a", "training_seat", "q", "2026-06-20", 0, 0, 1, ("C7",),
                                                 "20"),
                      WarrantyVerdict("K-1", "c", "dongle", "replacement", "2026-06-12", False, ("C18",), None,
                                      "200.00"))
    # a draft loses a line (the receipt was the technician's own)
    await ledger.policy.invoices.execute(invoice_stream("a-2026-06"), lambda s: domain.decide(
        domain.RemoveLine("dispatch:3:0", "个人消费，非客户费用"), s))
    ledger.now = datetime(2026, 6, 30, 5, 0, tzinfo=UTC)  # 13:00 in Beijing
    await ledger.issue("a-2026-06")
    await ledger.issue("b-visit:t-9")
    await ledger.issue("c-2026-06")
    await ledger.send("dispatch", expense("a", "e-7", "66.00"))  # late: a supplementary draft (B8)
    await ledger.invoicing.pay(PayInvoice(invoice_id="a-2026-06", payment_id="p-1", amount=D("1000.00")))
    await ledger.invoicing.credit(CreditInvoice(invoice_id="a-2026-06", lines=["dispatch:4:0"], reason="重复报销"))
    await ledger.invoicing.pay(PayInvoice(invoice_id="b-visit:t-9", payment_id="p-2", amount=D("105.99")))
    await ledger.invoicing.credit(CreditInvoice(invoice_id="c-2026-06", reason="客户未收到加密狗"))
    return ledger


async def states(ledger: Ledger) -> dict[str, domain.Invoice]:
    return {invoice_id: await ledger.invoice(invoice_id) for invoice_id in INVOICES}


async def test_b8_the_read_model_agrees_with_the_log_after_removal_issue_credit_and_payment(
        engine: AsyncEngine) -> None:
    ledger = await history(engine)
    book = await ledger.book()
    found = await states(ledger)
    assert {k: v.status for k, v in found.items()} == {
        "a-2026-06": "partially_paid", "a-2026-06-S1": "draft", "a-2026-07": "draft", "b-visit:t-9": "paid",
        "c-2026-06": "credited"}

    async with engine.connect() as conn:
        items, total = await book.page(conn, [], Page(limit=50))
        exported, more = await book.export(conn, [], after=None, limit=5000)
    rows = [line for _, line in exported]
    assert total == 5 and not more
    for item in items:
        state = found[item["invoice_id"]]
        assert (item["status"], item["number"], item["period"], item["lines_count"]) == (
            state.status, state.number, state.period, len(state.lines))
        assert item["totals"] == codec.dump(state.totals)
        assert D(item["outstanding"]) == state.outstanding
        assert item["issued_on"] == (state.issued_on.isoformat() if state.issued_on else None)
    names = {"a": "天宇贸易", "b": "b", "c": "超人客户"}  # b has no site: its id stands in for a name
    expected = [row for invoice_id in sorted(INVOICES) if found[invoice_id].status != "draft"
                for row in lines_of(found[invoice_id], names[found[invoice_id].customer_id])]
    assert rows == expected  # drafts are not exported; credit notes follow their invoice
    credit = next(row for row in rows if row.credit_id == "a-2026-06-CN1")
    assert (credit.status, credit.item_id, credit.quantity, credit.net) == ("credit_note", "dispatch:4:0", D(-1),
                                                                          D("-45.75"))
    # the removed line is gone and the lines after it moved up
    assert [(r.line_no, r.item_id) for r in rows if r.invoice_id == "a-2026-06" and not r.credit_id] == [
        (1, "dispatch:1:0"), (2, "dispatch:2:0"), (3, "dispatch:4:0"), (4, "contracts:6:0")]
    visit = next(row for row in rows if row.invoice_id == "b-visit:t-9")
    assert visit.period == "2026-06"  # a per-visit invoice exports under the month it opened


@pytest.mark.parametrize("batch", [1, 3, 7])
async def test_replay_builds_the_same_rows_however_the_stream_is_batched(engine: AsyncEngine, batch: int) -> None:
    ledger = await history(engine)
    whole = await ledger.book()
    cut = await ledger.book(batch=batch, suffix="__replay")
    assert await rows_of(engine, whole) == await rows_of(engine, cut)


# -- queries ----------------------------------------------------------------------------


async def invoices(queries: Queries, body: Mapping[str, Any]) -> dict[str, Any]:
    """`weibao.billing.invoices` as billing answers it: the body decoded as the endpoint does."""
    return await queries.invoices(codec.parse(InvoiceList, body))


async def export_lines(queries: Queries, body: Mapping[str, Any]) -> dict[str, Any]:
    return await queries.export_lines(codec.parse(ExportQuery, body))


async def queries_on(engine: AsyncEngine) -> Queries:
    ledger = await history(engine)
    return ledger.queries(await ledger.book())


async def test_invoices_filter_and_page(engine: AsyncEngine) -> None:
    queries = await queries_on(engine)

    async def ids(**body: Any) -> list[str]:
        return [item["invoice_id"] for item in (await invoices(queries, body))["items"]]

    assert await ids() == ["a-2026-07", "a-2026-06", "a-2026-06-S1", "b-visit:t-9", "c-2026-06"]  # newest month first
    assert await ids(customer_id="a") == ["a-2026-07", "a-2026-06", "a-2026-06-S1"]
    assert await ids(period="2026-06") == ["a-2026-06", "a-2026-06-S1", "b-visit:t-9", "c-2026-06"]
    assert await ids(period="visit:t-9") == ["b-visit:t-9"]
    assert await ids(status="draft") == ["a-2026-07", "a-2026-06-S1"]
    assert await ids(status="paid", customer_id=None) == ["b-visit:t-9"]
    first = await invoices(queries, {"limit": 2})
    second = await invoices(queries, {"limit": 2, "offset": first["next_offset"]})
    last = await invoices(queries, {"limit": 2, "offset": second["next_offset"]})
    assert (first["total"], first["next_offset"], second["next_offset"], last["next_offset"]) == (5, 2, 4, None)
    assert [i["invoice_id"] for page in (first, second, last) for i in page["items"]] == await ids()
    item = first["items"][1]
    assert set(item) >= {"invoice_id", "customer_id", "customer_name", "period", "status", "number", "issued_on",
                         "totals", "outstanding", "lines_count"}
    assert (item["customer_name"], item["number"], item["issued_on"]) == ("天宇贸易", "INV-2026-000001", "2026-06-30")


@pytest.mark.parametrize(("body", "field"), [
    ({"limit": 0}, "limit"), ({"limit": 201}, "limit"), ({"limit": "five"}, "limit"), ({"limit": True}, "limit"),
    ({"offset": -1}, "offset"), ({"status": "bogus"}, "status"), ({"period": "2026-6"}, "period"),
    ({"period": "visit:"}, "period"), ({"customer_id": 7}, "customer_id"), ({"customer_id": ""}, "customer_id"),
])
async def test_invoices_refusals_name_the_field(engine: AsyncEngine, body: dict[str, Any], field: str) -> None:
    queries = Ledger(engine).queries(InvoiceBook())
    with pytest.raises(Rejected) as refused:
        await invoices(queries, body)
    assert (refused.value.code, refused.value.field) == ("invalid", field)


async def test_export_lines_pages_through_in_a_stable_order(engine: AsyncEngine) -> None:
    queries = await queries_on(engine)
    everything = (await export_lines(queries, {}))["lines"]
    assert everything and all(list(row) == list(COLUMNS) for row in everything)
    pages, after = [], None
    while True:
        page = await export_lines(queries, {"limit": 2, **({"after": after} if after else {})})
        pages.append(page["lines"])
        after = page["next"]
        if after is None:
            break
    assert [row for page in pages for row in page] == everything
    assert all(len(page) == 2 for page in pages[:-1]) and pages[-1]
    assert [line_of(row).invoice_id for row in everything] == sorted(line_of(row).invoice_id for row in everything)

    async def count(**body: Any) -> int:
        return len((await export_lines(queries, body))["lines"])

    assert await count(customer_id="a") == 5  # 4 lines and 1 credited
    assert await count(invoice_id="c-2026-06") == 4  # the dongle and the expense, and the credit note of both
    assert await count(period_from="2026-07") == 0  # July is still a draft
    assert await count(period_from="2026-06", period_to="2026-06") == len(everything)


async def test_a_page_stops_short_of_an_oversized_reply(engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    queries = await queries_on(engine)
    everything = (await export_lines(queries, {}))["lines"]
    monkeypatch.setattr("weibao.billing.application.queries.REPLY_BYTES", 1)  # every row is over budget
    pages, after = [], None
    while True:
        page = await export_lines(queries, {"limit": 1000, **({"after": after} if after else {})})
        pages.append(page["lines"])
        if (after := page["next"]) is None:
            break
    assert [len(page) for page in pages] == [1] * len(everything)  # one row a page, none lost
    assert [row for page in pages for row in page] == everything


@pytest.mark.parametrize(("body", "field"), [
    ({"limit": 5001}, "limit"), ({"limit": 0}, "limit"), ({"limit": 2.5}, "limit"),
    ({"after": "not-a-cursor"}, "after"), ({"after": 12}, "after"), ({"period_from": "2026-13"}, "period_from"),
    ({"period_to": "June"}, "period_to"),
    ({"period_from": "2026-07", "period_to": "2026-06"}, "period_to"), ({"invoice_id": 3}, "invoice_id"),
])
async def test_export_lines_refusals_name_the_field(engine: AsyncEngine, body: dict[str, Any], field: str) -> None:
    queries = Ledger(engine).queries(InvoiceBook())
    with pytest.raises(Rejected) as refused:
        await export_lines(queries, body)
    assert (refused.value.code, refused.value.field) == ("invalid", field)


# -- the log as it stood, and the statement ------------------------------------------------


async def test_an_invoice_as_it_stood_at_a_time(engine: AsyncEngine) -> None:
    ledger = await history(engine)
    queries = ledger.queries()

    async def as_of(moment: object) -> domain.Invoice:
        return await queries.invoice(codec.parse(InvoiceAsOf, {"invoice_id": "a-2026-06", "as_of": moment}))

    # lines recorded 09:00 Beijing time, issued 13:00 (see `history`)
    before = await as_of("2026-06-30T12:00:00+08:00")
    naive = await as_of("2026-06-30T12:00:00")  # Beijing time
    after = await as_of("2026-06-30T05:00:00+00:00")
    assert (before.status, naive.status, after.status) == ("draft", "draft", "partially_paid")
    assert before.number is None and len(before.lines) == 4
    with pytest.raises(Rejected) as refused:
        await as_of("2026-06-28T12:00:00+08:00")
    assert (refused.value.code, refused.value.field) == ("not_found", "invoice_id")
    for bad in ("yesterday", 20260630, "2026-06-31T00:00:00"):
        with pytest.raises(Rejected) as refused:
            await as_of(bad)
        assert (refused.value.code, refused.value.field) == ("invalid", "as_of")


async def test_the_a4_statement_is_titled_as_a_statement_of_charges(engine: AsyncEngine) -> None:
    ledger = await history(engine)
    page = await ledger.queries().statement(InvoiceRef(invoice_id="a-2026-06"))
    assert "<h1>结算单</h1>" in page and "INV-2026-000001" in page and "天宇贸易" in page
    assert "不是增值税发票" in page  # 发票 comes from the tax system; this page says it is not one
    issued = await ledger.invoice("a-2026-06")
    assert f"¥{issued.totals.gross:,.2f}" in page  # as issued: a credit note is a document of its own (B8)
    assert "45.75" in page and "-45.75" not in page
    with pytest.raises(Rejected) as refused:
        await ledger.queries().statement(InvoiceRef(invoice_id="a-2026-07"))
    assert (refused.value.code, refused.value.field) == ("draft", "invoice_id")
