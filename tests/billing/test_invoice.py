"""Invoices (rule B8: exact fen, VAT per line, an issued invoice never changes, a
correction is a credit note, every line names its sources) and gap-free numbering.
Given events, when a command, then events."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from tests.decider import Decider, Given
from weibao.billing.domain import series as sr
from weibao.billing.domain.invoice import (
    AddLine,
    Command,
    CreditNote,
    CreditNoted,
    DraftOpened,
    Event,
    Invoice,
    InvoiceIssued,
    Issue,
    Line,
    LineAdded,
    LineRemoved,
    OpenDraft,
    PaymentRecorded,
    RateTotal,
    RecordPayment,
    RemoveLine,
    decide,
    evolve,
)

D = Decimal
JUNE = date(2026, 6, 30)
SERVICES = D("0.06")
GOODS = D("0.13")


def line(item_id: str, amount: str, rate: Decimal = SERVICES, kind: str = "travel") -> Line:
    return Line(item_id, kind, f"{kind} {item_id}", D(1), "次", D(amount), D(amount), rate, ("B1",),
                (("dispatch-t-1", 7, "ExpenseRecorded"),))


INVOICE = Decider(decide=decide, evolve=evolve, initial=Invoice())
History = Given[Command, Event, Invoice]


def draft(*lines: Line) -> History:
    return INVOICE.given(DraftOpened("inv-1", "cust-1", "2026-06", date(2026, 6, 1)), *(LineAdded(x) for x in lines))


def issued(*lines: Line) -> History:
    return draft(*lines).after(Issue("INV-2026-000001", JUNE))


# -- drafts ------------------------------------------------------------------------


def test_open_draft_monthly_or_per_visit() -> None:
    INVOICE.given().when(OpenDraft("inv-1", "cust-1", "2026-06", date(2026, 6, 1))).then(
        DraftOpened("inv-1", "cust-1", "2026-06", date(2026, 6, 1)))
    assert INVOICE.given().when(OpenDraft("inv-2", "cust-1", "visit:t-9", date(2026, 6, 1))).events
    for bad in ("2026-13", "2026-6", "visit:", "june"):
        INVOICE.given().when(OpenDraft("inv-3", "cust-1", bad, date(2026, 6, 1))).then_rejected(field="period")
    draft().when(OpenDraft("inv-1", "cust-1", "2026-06", date(2026, 6, 1))).then_rejected("conflict")


def test_b8_duplicate_item_id_is_a_no_op() -> None:
    history = draft(line("item-1", "100.00"))
    history.when(AddLine(line("item-1", "100.00"))).then()
    history.when(AddLine(line("item-1", "999.00"))).then()  # same item, never billed twice


def test_b8_removed_item_is_not_brought_back_by_a_redelivery() -> None:
    removed = draft(line("item-1", "100.00")).after(RemoveLine("item-1", "covered by the agreement"))
    assert removed.state.lines == ()
    removed.when(AddLine(line("item-1", "100.00"))).then()
    removed.when(RemoveLine("item-1", "again")).then()


def test_b8_every_line_names_its_sources_and_exact_fen() -> None:
    history = draft()
    history.when(AddLine(replace(line("i", "1.00"), sources=()))).then_rejected(field="line.sources")
    history.when(AddLine(line("i", "1.005"))).then_rejected(field="line.amount")
    history.when(AddLine(line("i", "-1.00"))).then_rejected(field="line.amount")
    history.when(AddLine(line("i", "1.00", rate=D("1.5")))).then_rejected(field="line.vat_rate")


def test_remove_needs_a_known_line_and_a_reason() -> None:
    history = draft(line("item-1", "100.00"))
    history.when(RemoveLine("nope", "x")).then_rejected("not_found")
    history.when(RemoveLine("item-1", " ")).then_rejected(field="reason")
    history.when(RemoveLine("item-1", "duplicate of item-2")).then(LineRemoved("item-1", "duplicate of item-2"))


# -- VAT and totals ----------------------------------------------------------------


@pytest.mark.parametrize(("amount", "rate", "vat"), [
    ("33.33", "0.06", "2.00"),   # 1.9998 -> 2.00
    ("0.05", "0.13", "0.01"),    # 0.0065 -> 0.01, half-up
    ("0.25", "0.06", "0.02"),    # 0.015 -> 0.02
    ("0.75", "0.06", "0.05"),    # 0.045 -> 0.05 half-up (banker's rounding would give 0.04)
    ("0.08", "0.06", "0.00"),    # 0.0048 -> 0.00
    ("800.00", "0.13", "104.00"),
])
def test_b8_vat_is_rounded_per_line_half_up_to_the_fen(amount: str, rate: str, vat: str) -> None:
    assert line("i", amount, D(rate)).vat == D(vat)
    assert line("i", amount, D(rate)).gross == D(amount) + D(vat)


def test_b8_invoice_vat_is_the_sum_of_line_vats_not_rate_times_subtotal() -> None:
    # three lines of 0.25 at 6%: 0.015 each -> 0.02 each -> 0.06; 0.75 x 6% would be 0.05
    state = draft(line("a", "0.25"), line("b", "0.25"), line("c", "0.25")).state
    assert state.totals.net == D("0.75")
    assert state.totals.vat == D("0.06")
    assert state.totals.gross == D("0.81")


def test_b8_totals_by_vat_rate() -> None:
    state = draft(line("travel", "33.33"), line("dongle", "200.00", GOODS, "dongle"),
                  line("meals", "66.67"), line("disk", "0.05", GOODS, "part")).state
    totals = state.totals
    assert totals.by_rate == (
        RateTotal(D("0.06"), D("100.00"), D("6.00"), D("106.00")),   # 2.00 + 4.00 (66.67 x 0.06 = 4.0002)
        RateTotal(D("0.13"), D("200.05"), D("26.01"), D("226.06")),  # 26.00 + 0.01
    )
    assert (totals.net, totals.vat, totals.gross) == (D("300.05"), D("32.01"), D("332.06"))


# -- issue: B8 frozen --------------------------------------------------------------


def test_issue_freezes_totals_and_numbers_the_invoice() -> None:
    history = draft(line("a", "33.33"), line("b", "200.00", GOODS))
    after = history.when(Issue("INV-2026-000001", JUNE)).then(
        InvoiceIssued("INV-2026-000001", JUNE, ("a", "b"), history.state.totals))
    assert (after.state.status, after.state.number, after.state.outstanding) == ("issued", "INV-2026-000001",
                                                                                 D("261.33"))
    after.when(Issue("INV-2026-000001", JUNE)).then()  # redelivered
    after.when(Issue("INV-2026-000002", JUNE)).then_rejected("issued")


def test_an_empty_draft_is_not_issued() -> None:
    draft().when(Issue("INV-2026-000001", JUNE)).then_rejected("empty")


def test_b8_issued_invoice_is_frozen_add_line_refused() -> None:
    issued(line("a", "100.00")).when(AddLine(line("late", "50.00"))).then_rejected(
        "issued", "invoice_id", message="next draft")


def test_b8_issued_invoice_is_frozen_remove_line_refused() -> None:
    issued(line("a", "100.00")).when(RemoveLine("a", "wrong price")).then_rejected("issued", "invoice_id")


def test_b8_redelivered_line_after_issue_is_still_a_no_op() -> None:
    issued(line("a", "100.00")).when(AddLine(line("a", "100.00"))).then()


# -- credit notes ------------------------------------------------------------------


def test_b8_partial_credit_note_records_negative_lines() -> None:
    history = issued(line("a", "33.33"), line("b", "200.00", GOODS))
    [event] = history.when(CreditNote("cn-1", ("a",), "travel was covered", date(2026, 7, 2))).events
    assert isinstance(event, CreditNoted)
    [credited] = event.lines
    assert (credited.item_id, credited.net, credited.vat, credited.gross) == ("a", D("-33.33"), D("-2.00"),
                                                                             D("-35.33"))
    assert credited.sources == (("dispatch-t-1", 7, "ExpenseRecorded"),)
    assert event.totals.gross == D("-35.33")
    after = history.given(event)
    state = history.state
    assert after.state.lines == state.lines and after.state.totals == state.totals  # the invoice itself never changes
    assert (after.state.status, after.state.outstanding) == ("issued", D("226.00"))
    after.when(CreditNote("cn-2", ("a",), "again", date(2026, 7, 3))).then_rejected("conflict")
    after.when(CreditNote("cn-1", ("a",), "travel was covered", date(2026, 7, 2))).then()


def test_b8_full_credit_note_credits_what_is_left() -> None:
    history = issued(line("a", "33.33"), line("b", "200.00", GOODS)).after(
        CreditNote("cn-1", ("a",), "covered", date(2026, 7, 2)))
    [event] = history.when(CreditNote("cn-2", None, "wrong customer", date(2026, 7, 3))).events
    assert isinstance(event, CreditNoted)
    assert [c.item_id for c in event.lines] == ["b"]
    after = history.given(event)
    assert (after.state.status, after.state.outstanding) == ("credited", D("0.00"))
    after.when(CreditNote("cn-3", None, "again", date(2026, 7, 4))).then_rejected("conflict")


def test_credit_note_refusals() -> None:
    draft(line("a", "1.00")).when(CreditNote("cn", None, "x", JUNE)).then_rejected("draft")
    history = issued(line("a", "1.00"))
    history.when(CreditNote("cn", ("zz",), "x", JUNE)).then_rejected("not_found")
    history.when(CreditNote("cn", (), "x", JUNE)).then_rejected(field="lines")
    history.when(CreditNote("cn", None, " ", JUNE)).then_rejected(field="reason")
    history.when(CreditNote("cn", None, "x", date(2026, 6, 29))).then_rejected(field="on")


def test_credit_after_full_payment_leaves_a_refund_due() -> None:
    state = issued(line("a", "100.00"), line("b", "100.00")).after(
        RecordPayment("p-1", D("212.00"), JUNE), CreditNote("cn-1", ("b",), "not done", date(2026, 7, 1))).state
    assert (state.status, state.outstanding) == ("paid", D("-106.00"))


# -- payments ----------------------------------------------------------------------


def test_payments_partial_then_full() -> None:
    history = issued(line("a", "100.00"))  # gross 106.00
    partly = history.when(RecordPayment("p-1", D("6.00"), JUNE)).then(PaymentRecorded("p-1", D("6.00"), JUNE))
    assert (partly.state.status, partly.state.outstanding) == ("partially_paid", D("100.00"))
    state = partly.after(RecordPayment("p-2", D("100.00"), date(2026, 7, 10))).state
    assert (state.status, state.outstanding) == ("paid", D("0.00"))


def test_duplicate_payment_id_is_a_no_op() -> None:
    history = issued(line("a", "100.00")).after(RecordPayment("p-1", D("50.00"), JUNE))
    history.when(RecordPayment("p-1", D("50.00"), JUNE)).then()
    assert history.state.paid == D("50.00")


def test_overpayment_is_refused_on_amount() -> None:
    history = issued(line("a", "100.00"))
    history.when(RecordPayment("p-1", D("106.01"), JUNE)).then_rejected("overpaid", "amount", message="106.00")
    paid = history.after(RecordPayment("p-1", D("106.00"), JUNE))
    paid.when(RecordPayment("p-2", D("0.01"), JUNE)).then_rejected(field="amount")


def test_payment_refusals() -> None:
    draft(line("a", "1.00")).when(RecordPayment("p", D("1.00"), JUNE)).then_rejected("draft")
    history = issued(line("a", "100.00"))
    history.when(RecordPayment("p", D("0"), JUNE)).then_rejected(field="amount")
    history.when(RecordPayment("p", D("1.001"), JUNE)).then_rejected(field="amount")
    INVOICE.given().when(RecordPayment("p", D("1.00"), JUNE)).then_rejected("not_found")


# -- series ------------------------------------------------------------------------

SERIES = Decider(decide=sr.decide, evolve=sr.evolve, initial=sr.Series("INV-2026"))


def test_b8_series_numbers_are_gap_free_and_in_order_over_100_allocations() -> None:
    history = SERIES.given()
    allocated: list[sr.Event] = []
    for i in range(1, 101):
        events = history.when(sr.Allocate(f"inv-{i}")).events
        history = history.given(*events)
        allocated += events
    assert [e.sequence for e in allocated] == list(range(1, 101))
    assert [e.number for e in allocated] == [f"INV-2026-{i:06d}" for i in range(1, 101)]
    assert allocated[0] == sr.NumberAllocated("inv-1", "INV-2026-000001", 1)
    assert sorted(e.number for e in allocated) == [e.number for e in allocated]
    assert sr.fold("INV-2026", allocated) == history.state


def test_series_same_invoice_twice_gets_no_new_number() -> None:
    history = SERIES.after(sr.Allocate("inv-1")).when(sr.Allocate("inv-1")).then()
    assert history.state.number_of("inv-1") == "INV-2026-000001"
    history.when(sr.Allocate("inv-2")).then(sr.NumberAllocated("inv-2", "INV-2026-000002", 2))


def test_series_allocation_then_issue() -> None:
    number = SERIES.after(sr.Allocate("inv-1")).state.number_of("inv-1")
    assert number is not None
    assert issued(line("a", "1.00")).state.number == number
