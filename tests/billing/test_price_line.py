"""A line whose rate is to be agreed (RATE_TO_BE_AGREED, C10 [4] "a negotiated amount")
is priced by the billing clerk on the draft: the amount is `quantity x unit_price`,
once, half-up to the fen (B8); priced again if renegotiated; never once issued (B8: an
issued invoice never changes). The read model, the explanation and the export follow.
And the A4 statement shows an invoice's credit notes and the balance left (B8)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.billing.ledger import Ledger
from tests.decider import Decider, Given
from weibao.billing.adapters.exports import lines_of
from weibao.billing.adapters.invoices import INVOICE as INVOICE_CODEC
from weibao.billing.domain import invoice as domain
from weibao.billing.domain.invoice import (
    RATE_AGREED,
    Command,
    DraftOpened,
    Event,
    Invoice,
    Issue,
    Line,
    LineAdded,
    LinePriced,
    PriceLine,
    decide,
    evolve,
)
from weibao.billing.domain.pricing import RATE_TO_BE_AGREED
from weibao.shared import codec
from weibao.shared.commands import billing as commands
from weibao.shared.errors import Rejected
from weibao.shared.events import RecordedEvent
from weibao.shared.paging import Page
from weibao.shared.public.contracts import WarrantyVerdict
from weibao.shared.public.dispatch import ExpenseRecorded
from weibao.shared.readmodels import rows_of

D = Decimal
OPENED, PRICED_ON, JUNE = date(2026, 6, 1), date(2026, 6, 20), date(2026, 6, 30)
SOURCES = (("contracts", 7, "QuotaConsumed"),)
CLERK = "billing:qian"


def reinstall(quantity: str = "3") -> Line:
    """rule C10 [4]: re-installations charged at a negotiated amount, no price known yet."""
    return Line("contracts:7:0", "installation", "超出免费次数的安装（R-1）（单价待议）", D(quantity), "次", D("0.00"),
                D("0.00"), D("0.06"), ("B5", "C10", RATE_TO_BE_AGREED), SOURCES)


def travel() -> Line:
    return Line("dispatch:3:0", "expense", "交通费", D(1), "次", D("45.75"), D("45.75"), D("0.06"), ("B1", "C5"),
                (("dispatch", 3, "ExpenseRecorded"),))


INVOICE = Decider(decide=decide, evolve=evolve, initial=Invoice())


def draft(*lines: Line) -> Given[Command, Event, Invoice]:
    return INVOICE.given(DraftOpened("inv-1", "cust-1", "2026-06", OPENED), *(LineAdded(line) for line in lines))


def price(unit_price: str, reason: str = "与客户王经理电话议定", *, item_id: str = "contracts:7:0",
          by: str = CLERK) -> PriceLine:
    return PriceLine(item_id, D(unit_price), reason, by, PRICED_ON)


# -- the domain -------------------------------------------------------------------------


def test_c10_b8_a_line_to_be_agreed_is_priced_to_the_fen_half_up() -> None:
    history = draft(reinstall("3"), travel())

    pricing = history.when(price("333.335"))

    # 3 x 333.335 = 1000.005: rounded once, half-up, to the fen (B8)
    priced = LinePriced("contracts:7:0", D("333.335"), D("1000.01"), "与客户王经理电话议定", CLERK, PRICED_ON)
    after = pricing.then(priced).state
    line = after.lines[0]
    assert (line.unit_price, line.amount, line.vat) == (D("333.335"), D("1000.01"), D("60.00"))  # VAT per line
    # RATE_TO_BE_AGREED gives way to RATE_AGREED where it stood; the rule clauses and the
    # sources stay (B8: the line still names the events it came from)
    assert line.clauses == ("B5", "C10", RATE_AGREED) and RATE_TO_BE_AGREED not in line.clauses
    assert line.sources == SOURCES and (line.quantity, line.kind, line.vat_rate) == (D(3), "installation", D("0.06"))
    assert line.description == "超出免费次数的安装（R-1）（单价议定）"
    assert after.lines[1] == travel()  # the other line is untouched, and the order kept
    assert after.totals.net == D("1045.76") and after.totals.vat == D("62.75")  # 60.00 + 2.75
    assert after.pricings_of("contracts:7:0") == (priced,)


def test_c10_a_renegotiated_price_on_the_draft_replaces_the_last_and_keeps_the_history() -> None:
    history = draft(reinstall("3")).after(price("333.335"))

    again = history.after(price("300", "客户要求按老价格"))

    line = again.state.lines[0]
    assert (line.unit_price, line.amount, line.clauses) == (D(300), D("900.00"), ("B5", "C10", RATE_AGREED))
    assert [p.unit_price for p in again.state.pricings_of(line.item_id)] == [D("333.335"), D(300)]
    again.when(price("300", "客户要求按老价格")).then()  # the same price set again: one effect
    assert again.after(Issue("INV-2026-000001", JUNE)).state.totals.net == D("900.00")  # issued as priced


def test_a_price_of_zero_is_a_price_agreed() -> None:
    state = draft(reinstall("1")).after(price("0", "免费重装，作为补偿")).state
    assert (state.lines[0].amount, state.lines[0].clauses[-1]) == (D("0.00"), RATE_AGREED)


def test_only_a_line_whose_rate_is_to_be_agreed_is_priced_by_hand() -> None:
    history = draft(reinstall(), travel())
    # B1: travel is at cost, by its receipt; no clerk overrides it
    history.when(price("40.00", item_id="dispatch:3:0")).then_rejected("not_negotiable", "item_id")
    history.when(price("40.00", item_id="dispatch:99:0")).then_rejected("not_found", "item_id")
    INVOICE.given().when(price("40.00")).then_rejected("not_found", "invoice_id")


def test_b8_an_issued_invoice_refuses_a_price_naming_the_field() -> None:
    issued = draft(reinstall()).after(price("100"), Issue("INV-2026-000001", JUNE))
    error = issued.when(price("333.335")).then_rejected("issued", "invoice_id")
    assert "B8" in error.message and "credit note" in error.message
    priced_then_issued = draft(reinstall()).after(price("100"), Issue("INV-2026-000001", JUNE))
    priced_then_issued.when(price("120", "涨价")).then_rejected("issued", "invoice_id")  # no renegotiation after


@pytest.mark.parametrize(("command", "expected"), [
    (price("333.335", ""), ("missing", "reason")),
    (price("333.335", "   "), ("missing", "reason")),
    (price("-0.01"), ("invalid", "unit_price")),
    (price("-333.335"), ("invalid", "unit_price")),
    (PriceLine("contracts:7:0", D("NaN"), "议定", CLERK, PRICED_ON), ("invalid", "unit_price")),
    (PriceLine("contracts:7:0", D("Infinity"), "议定", CLERK, PRICED_ON), ("invalid", "unit_price")),
    (price("1.0000001"), ("invalid", "unit_price")),  # more places than a price is set in
    (price("1E+12"), ("invalid", "unit_price")),  # more than an invoice holds to the fen
    (price("100", by=""), ("missing", "by")),
])
def test_a_price_needs_a_reason_and_an_exact_non_negative_amount(command: PriceLine,
                                                                  expected: tuple[str, str]) -> None:
    draft(reinstall()).when(command).then_rejected(*expected)


def test_line_priced_is_stored_and_read_back_exactly() -> None:
    event = LinePriced("contracts:7:0", D("333.335"), D("1000.01"), "议定", CLERK, PRICED_ON)
    stored = INVOICE_CODEC.encode(event)
    assert stored.type == "private.LinePriced" and stored.data["unit_price"] == "333.335"
    recorded = RecordedEvent(1, "invoice-inv-1", 3, stored.type, stored.schema_version, stored.data, {},
                             datetime(2026, 6, 20, tzinfo=UTC), "", "")
    assert INVOICE_CODEC.decode(recorded) == event


# -- the application: the command, the read model, the explanation, the statement --------


def dongle(fee: str | None) -> WarrantyVerdict:
    """rule B7: a dongle replaced outside its warranty; without a fee it is to be agreed."""
    return WarrantyVerdict("K-1", "c", "dongle", "replacement", "2026-06-12", False, ("C18",), None, fee)


def expense(key: str, amount: str) -> ExpenseRecorded:
    return ExpenseRecorded("t-1", "c", "ag-c", "tech-1", key, "transport", amount, f"R-{key}", "2026-06-08", None, "")


async def a_draft_with_a_line_to_be_agreed(engine: AsyncEngine) -> tuple[Ledger, str]:
    ledger = await Ledger(engine).start()
    await ledger.agreement("ag-c", "c", "超人客户", "chaoren-software-sale")
    await ledger.send("dispatch", expense("e-1", "10.00"))
    [position] = await ledger.send("contracts", dongle(None))
    item_id = f"contracts:{position}:0"
    state = await ledger.invoice("c-2026-06")
    line = next(ln for ln in state.lines if ln.item_id == item_id)
    assert RATE_TO_BE_AGREED in line.clauses and line.amount == 0
    return ledger, item_id


async def rows(ledger: Ledger, suffix: str) -> dict[str, dict[str, Any]]:
    book = await ledger.book(suffix=suffix)
    async with ledger.engine.connect() as conn:
        items, _ = await book.page(conn, [], Page(limit=50))
    return {item["invoice_id"]: item for item in items}


async def test_c10_b8_the_clerk_prices_a_line_and_lists_explanation_and_export_follow(engine: AsyncEngine) -> None:
    ledger, item_id = await a_draft_with_a_line_to_be_agreed(engine)
    before = (await rows(ledger, "_before"))["c-2026-06"]
    assert before["totals"]["gross"] == "10.60"  # the expense only; the dongle waits at 0.00

    body = {"invoice_id": "c-2026-06", "item_id": item_id, "unit_price": "350.005", "reason": "<与客户议定> 含运费"}

    async def price_line(request: dict[str, Any]) -> list[RecordedEvent]:
        """As the endpoint does: the request decoded with the shared schema, then the command."""
        return await ledger.invoicing.price_line(codec.parse(commands.PriceLine, request), meta={"actor": CLERK})

    stored = await ledger.invoicing.price_line(codec.parse(commands.PriceLine, body),
                                               meta={"actor": CLERK, "correlation_id": "c-1"})

    assert [e.type for e in stored] == ["private.LinePriced"] and stored[0].meta["actor"] == CLERK
    state = await ledger.invoice("c-2026-06")
    line = next(ln for ln in state.lines if ln.item_id == item_id)
    # 1 x 350.005 = 350.01 half-up (B8); dongle VAT 13 %: 45.50
    assert (line.amount, line.vat, line.gross) == (D("350.01"), D("45.50"), D("395.51"))
    after = (await rows(ledger, ""))["c-2026-06"]
    assert after["totals"] == codec.dump(state.totals) and after["totals"]["gross"] == "406.11"
    assert D(after["outstanding"]) == state.outstanding == D("406.11")

    why = await ledger.queries().explain(commands.LineRef(invoice_id="c-2026-06", item_id=item_id))
    assert why["pricing"] == {"unit_price": "350.005", "amount": "350.01", "reason": "<与客户议定> 含运费", "by": CLERK,
                              "on": "2026-06-30"}
    assert RATE_AGREED in why["clauses"] and "B7" in why["clauses"] and why["unit_price"] == "350.005"
    assert why["sources"] and why["sources"][0]["service"] == "contracts"  # B8: still named

    with pytest.raises(Rejected) as refused_line:  # B1: an expense is at cost, not priced by hand
        await price_line({**body, "item_id": "dispatch:1:0"})
    assert (refused_line.value.code, refused_line.value.field) == ("not_negotiable", "item_id")
    for bad, field in (({"unit_price": 350.005}, "unit_price"), ({"unit_price": "abc"}, "unit_price"),
                       ({"unit_price": "-1"}, "unit_price"), ({"reason": ""}, "reason")):
        with pytest.raises(Rejected) as refused_body:
            await price_line({**body, **bad})
        assert (refused_body.value.code, refused_body.value.field)[1] == field

    issued = await ledger.issue("c-2026-06")
    exported = next(row for row in lines_of(issued, "超人客户") if row.item_id == item_id)
    assert (exported.unit_price, exported.net, exported.gross) == (D("350.005"), D("350.01"), D("395.51"))
    assert RATE_AGREED in exported.clauses
    with pytest.raises(Rejected) as refused_issued:  # B8: issued never changes
        await price_line({**body, "unit_price": "400"})
    assert (refused_issued.value.code, refused_issued.value.field) == ("issued", "invoice_id")


@pytest.mark.parametrize("batch", [1, 2, 5])
async def test_the_read_model_of_a_priced_line_agrees_with_the_log_however_batched(
        engine: AsyncEngine, batch: int) -> None:
    ledger, item_id = await a_draft_with_a_line_to_be_agreed(engine)
    for price_agreed in ("100.005", "120"):  # renegotiated
        await ledger.invoicing.price_line(commands.PriceLine(invoice_id="c-2026-06", item_id=item_id,
                                                             unit_price=price_agreed, reason="议定"),
                                          meta={"actor": CLERK})
    issued = await ledger.issue("c-2026-06")
    whole = await ledger.book()
    async with engine.connect() as conn:
        exported, _ = await whole.export(conn, [], after=None, limit=100)
    assert [line for _, line in exported] == lines_of(issued, "超人客户")
    cut = await ledger.book(batch=batch, suffix="__replay")
    assert await rows_of(engine, whole) == await rows_of(engine, cut)


async def test_b8_the_a4_statement_shows_the_credit_notes_and_the_balance(engine: AsyncEngine) -> None:
    ledger = await Ledger(engine).start()
    await ledger.agreement("ag-c", "c", "超人客户", "chaoren-software-sale")
    await ledger.send("dispatch", expense("e-1", "10.00"))
    [position] = await ledger.send("contracts", dongle("200.00"))
    await ledger.issue("c-2026-06")
    # dongle 200.00 + VAT 13 % 26.00 = 226.00; travel 10.00 + 0.60 = 10.60; gross 236.60
    await ledger.invoicing.credit(commands.CreditInvoice(invoice_id="c-2026-06", lines=[f"contracts:{position}:0"],
                                                         reason="客户未收到加密狗 <退回>"))
    await ledger.invoicing.pay(commands.PayInvoice(invoice_id="c-2026-06", payment_id="p-1", amount=D("5.00"),
                                                   paid_on=date(2026, 7, 2)))
    state = await ledger.invoice("c-2026-06")
    assert (state.credited, state.paid, state.outstanding) == (D("226.00"), D("5.00"), D("5.60"))

    page = await ledger.queries().statement(commands.InvoiceRef(invoice_id="c-2026-06"))

    assert "¥236.60" in page  # the invoice as issued (B8: it never changes)
    credit = page[page.index("红字冲销"):]
    assert "c-2026-06-CN1" in credit and "2026-06-30" in credit  # the credit note's id and date
    assert "客户未收到加密狗 &lt;退回&gt;" in credit and "<退回>" not in page  # escaped
    assert "加密狗更换（序列号 K-1）" in credit and f"contracts:{position}:0" in credit  # the credited line
    assert "200.00" in credit and "26.00" in credit and "226.00" in credit
    # the balance: as issued, less the credit notes, less the payments
    assert "减：红字冲销" in credit and "减：已收款" in credit and "5.00" in credit
    assert "应付余额" in credit and "¥5.60" in credit


async def test_a_statement_without_credit_notes_shows_what_is_left_to_pay(engine: AsyncEngine) -> None:
    ledger = await Ledger(engine).start()
    await ledger.agreement("ag-c", "c", "超人客户", "chaoren-software-sale")
    await ledger.send("dispatch", expense("e-1", "10.00"))
    await ledger.issue("c-2026-06")
    page = await ledger.queries().statement(commands.InvoiceRef(invoice_id="c-2026-06"))
    assert "<h2>红字冲销</h2>" not in page and "应付余额（未收）</td><td class=\"num\">¥10.60" in page
    # a credit note that leaves a refund due says so, as a positive amount
    await ledger.invoicing.pay(commands.PayInvoice(invoice_id="c-2026-06", payment_id="p-1", amount=D("10.60")))
    await ledger.invoicing.credit(commands.CreditInvoice(invoice_id="c-2026-06", reason="重复报销"))
    refund = await ledger.queries().statement(commands.InvoiceRef(invoice_id="c-2026-06"))
    assert "应退金额</td><td class=\"num\">¥10.60" in refund


def test_b8_draft_totals_after_pricing_are_the_sums_of_the_lines() -> None:
    state = draft(reinstall("3"), replace(reinstall("2"), item_id="contracts:8:0")).after(
        price("333.335"), price("0.005", item_id="contracts:8:0")).state
    assert [ln.amount for ln in state.lines] == [D("1000.01"), D("0.01")]  # 2 x 0.005 = 0.01
    assert state.totals == domain.totals_of((ln.vat_rate, ln.net, ln.vat) for ln in state.lines)


def test_a_draft_with_a_line_still_to_be_priced_is_not_issued() -> None:
    """rule B8: issued never changes, so a line at 0.00 waiting for its negotiated price
    (C10 [4]) would never be billed; issuing is refused until it is priced (0 waives it)."""
    history = draft(travel(), reinstall())
    refused = history.when(Issue("INV-2026-000001", JUNE)).then_rejected("unpriced", "lines")
    assert "contracts:7:0" in str(refused)
    waived = history.after(PriceLine("contracts:7:0", D("0"), "waived: goodwill", CLERK, PRICED_ON))
    assert [type(e).__name__ for e in waived.when(Issue("INV-2026-000001", JUNE)).events] == ["InvoiceIssued"]
