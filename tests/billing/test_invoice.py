"""Invoices (rule B8: exact fen, VAT per line, an issued invoice never changes, a
correction is a credit note, every line names its sources) and gap-free numbering.
Given events, when a command, then events."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from weibao.billing.domain import series as sr
from weibao.billing.domain.invoice import (
    AddLine,
    CreditNote,
    CreditNoted,
    DraftOpened,
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
from weibao.shared.errors import Rejected

D = Decimal
JUNE = date(2026, 6, 30)
SERVICES = D("0.06")
GOODS = D("0.13")


def line(item_id: str, amount: str, rate: Decimal = SERVICES, kind: str = "travel") -> Line:
    return Line(item_id, kind, f"{kind} {item_id}", D(1), "次", D(amount), D(amount), rate, ("B1",),
                (("dispatch-t-1", 7, "ExpenseRecorded"),))


def given(*events: Any) -> Invoice:
    state = Invoice()
    for event in events:
        state = evolve(state, event)
    return state


def run(state: Invoice, *commands: Any) -> Invoice:
    for command in commands:
        for event in decide(command, state):
            state = evolve(state, event)
    return state


def draft(*lines: Line) -> Invoice:
    return given(DraftOpened("inv-1", "cust-1", "2026-06", date(2026, 6, 1)), *(LineAdded(x) for x in lines))


def issued(*lines: Line) -> Invoice:
    return run(draft(*lines), Issue("INV-2026-000001", JUNE))


def rejected(state: Invoice, command: Any) -> Rejected:
    with pytest.raises(Rejected) as caught:
        decide(command, state)
    return caught.value


# -- drafts ------------------------------------------------------------------------


def test_open_draft_monthly_or_per_visit() -> None:
    assert decide(OpenDraft("inv-1", "cust-1", "2026-06", date(2026, 6, 1)), Invoice()) == [
        DraftOpened("inv-1", "cust-1", "2026-06", date(2026, 6, 1))]
    assert decide(OpenDraft("inv-2", "cust-1", "visit:t-9", date(2026, 6, 1)), Invoice())
    for bad in ("2026-13", "2026-6", "visit:", "june"):
        assert rejected(Invoice(), OpenDraft("inv-3", "cust-1", bad, date(2026, 6, 1))).field == "period"
    assert rejected(draft(), OpenDraft("inv-1", "cust-1", "2026-06", date(2026, 6, 1))).code == "conflict"


def test_b8_duplicate_item_id_is_a_no_op() -> None:
    state = draft(line("item-1", "100.00"))
    assert decide(AddLine(line("item-1", "100.00")), state) == []
    assert decide(AddLine(line("item-1", "999.00")), state) == []  # same item, never billed twice


def test_b8_removed_item_is_not_brought_back_by_a_redelivery() -> None:
    state = run(draft(line("item-1", "100.00")), RemoveLine("item-1", "covered by the agreement"))
    assert state.lines == ()
    assert decide(AddLine(line("item-1", "100.00")), state) == []
    assert decide(RemoveLine("item-1", "again"), state) == []


def test_b8_every_line_names_its_sources_and_exact_fen() -> None:
    state = draft()
    assert rejected(state, AddLine(replace(line("i", "1.00"), sources=()))).field == "line.sources"
    assert rejected(state, AddLine(line("i", "1.005"))).field == "line.amount"
    assert rejected(state, AddLine(line("i", "-1.00"))).field == "line.amount"
    assert rejected(state, AddLine(line("i", "1.00", rate=D("1.5")))).field == "line.vat_rate"


def test_remove_needs_a_known_line_and_a_reason() -> None:
    state = draft(line("item-1", "100.00"))
    assert rejected(state, RemoveLine("nope", "x")).code == "not_found"
    assert rejected(state, RemoveLine("item-1", " ")).field == "reason"
    assert decide(RemoveLine("item-1", "duplicate of item-2"), state) == [
        LineRemoved("item-1", "duplicate of item-2")]


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
    state = draft(line("a", "0.25"), line("b", "0.25"), line("c", "0.25"))
    assert state.totals.net == D("0.75")
    assert state.totals.vat == D("0.06")
    assert state.totals.gross == D("0.81")


def test_b8_totals_by_vat_rate() -> None:
    state = draft(line("travel", "33.33"), line("dongle", "200.00", GOODS, "dongle"),
                  line("meals", "66.67"), line("disk", "0.05", GOODS, "part"))
    totals = state.totals
    assert totals.by_rate == (
        RateTotal(D("0.06"), D("100.00"), D("6.00"), D("106.00")),   # 2.00 + 4.00 (66.67 x 0.06 = 4.0002)
        RateTotal(D("0.13"), D("200.05"), D("26.01"), D("226.06")),  # 26.00 + 0.01
    )
    assert (totals.net, totals.vat, totals.gross) == (D("300.05"), D("32.01"), D("332.06"))


# -- issue: B8 frozen --------------------------------------------------------------


def test_issue_freezes_totals_and_numbers_the_invoice() -> None:
    state = draft(line("a", "33.33"), line("b", "200.00", GOODS))
    events = decide(Issue("INV-2026-000001", JUNE), state)
    assert events == [InvoiceIssued("INV-2026-000001", JUNE, ("a", "b"), state.totals)]
    after = evolve(state, events[0])
    assert (after.status, after.number, after.outstanding) == ("issued", "INV-2026-000001", D("261.33"))
    assert decide(Issue("INV-2026-000001", JUNE), after) == []  # redelivered
    assert rejected(after, Issue("INV-2026-000002", JUNE)).code == "issued"


def test_an_empty_draft_is_not_issued() -> None:
    assert rejected(draft(), Issue("INV-2026-000001", JUNE)).code == "empty"


def test_b8_issued_invoice_is_frozen_add_line_refused() -> None:
    state = issued(line("a", "100.00"))
    error = rejected(state, AddLine(line("late", "50.00")))
    assert (error.code, error.field) == ("issued", "invoice_id")
    assert "next draft" in error.message


def test_b8_issued_invoice_is_frozen_remove_line_refused() -> None:
    error = rejected(issued(line("a", "100.00")), RemoveLine("a", "wrong price"))
    assert (error.code, error.field) == ("issued", "invoice_id")


def test_b8_redelivered_line_after_issue_is_still_a_no_op() -> None:
    assert decide(AddLine(line("a", "100.00")), issued(line("a", "100.00"))) == []


# -- credit notes ------------------------------------------------------------------


def test_b8_partial_credit_note_records_negative_lines() -> None:
    state = issued(line("a", "33.33"), line("b", "200.00", GOODS))
    [event] = decide(CreditNote("cn-1", ("a",), "travel was covered", date(2026, 7, 2)), state)
    assert isinstance(event, CreditNoted)
    [credited] = event.lines
    assert (credited.item_id, credited.net, credited.vat, credited.gross) == ("a", D("-33.33"), D("-2.00"),
                                                                             D("-35.33"))
    assert credited.sources == (("dispatch-t-1", 7, "ExpenseRecorded"),)
    assert event.totals.gross == D("-35.33")
    after = evolve(state, event)
    assert after.lines == state.lines and after.totals == state.totals  # the invoice itself never changes
    assert (after.status, after.outstanding) == ("issued", D("226.00"))
    assert rejected(after, CreditNote("cn-2", ("a",), "again", date(2026, 7, 3))).code == "conflict"
    assert decide(CreditNote("cn-1", ("a",), "travel was covered", date(2026, 7, 2)), after) == []


def test_b8_full_credit_note_credits_what_is_left() -> None:
    state = run(issued(line("a", "33.33"), line("b", "200.00", GOODS)),
                CreditNote("cn-1", ("a",), "covered", date(2026, 7, 2)))
    [event] = decide(CreditNote("cn-2", None, "wrong customer", date(2026, 7, 3)), state)
    assert isinstance(event, CreditNoted)
    assert [c.item_id for c in event.lines] == ["b"]
    after = evolve(state, event)
    assert (after.status, after.outstanding) == ("credited", D("0.00"))
    assert rejected(after, CreditNote("cn-3", None, "again", date(2026, 7, 4))).code == "conflict"


def test_credit_note_refusals() -> None:
    assert rejected(draft(line("a", "1.00")), CreditNote("cn", None, "x", JUNE)).code == "draft"
    state = issued(line("a", "1.00"))
    assert rejected(state, CreditNote("cn", ("zz",), "x", JUNE)).code == "not_found"
    assert rejected(state, CreditNote("cn", (), "x", JUNE)).field == "lines"
    assert rejected(state, CreditNote("cn", None, " ", JUNE)).field == "reason"
    assert rejected(state, CreditNote("cn", None, "x", date(2026, 6, 29))).field == "on"


def test_credit_after_full_payment_leaves_a_refund_due() -> None:
    state = run(issued(line("a", "100.00"), line("b", "100.00")), RecordPayment("p-1", D("212.00"), JUNE),
                CreditNote("cn-1", ("b",), "not done", date(2026, 7, 1)))
    assert (state.status, state.outstanding) == ("paid", D("-106.00"))


# -- payments ----------------------------------------------------------------------


def test_payments_partial_then_full() -> None:
    state = issued(line("a", "100.00"))  # gross 106.00
    assert decide(RecordPayment("p-1", D("6.00"), JUNE), state) == [PaymentRecorded("p-1", D("6.00"), JUNE)]
    state = run(state, RecordPayment("p-1", D("6.00"), JUNE))
    assert (state.status, state.outstanding) == ("partially_paid", D("100.00"))
    state = run(state, RecordPayment("p-2", D("100.00"), date(2026, 7, 10)))
    assert (state.status, state.outstanding) == ("paid", D("0.00"))


def test_duplicate_payment_id_is_a_no_op() -> None:
    state = run(issued(line("a", "100.00")), RecordPayment("p-1", D("50.00"), JUNE))
    assert decide(RecordPayment("p-1", D("50.00"), JUNE), state) == []
    assert state.paid == D("50.00")


def test_overpayment_is_refused_on_amount() -> None:
    state = issued(line("a", "100.00"))
    error = rejected(state, RecordPayment("p-1", D("106.01"), JUNE))
    assert (error.code, error.field) == ("overpaid", "amount")
    assert "106.00" in error.message
    paid = run(state, RecordPayment("p-1", D("106.00"), JUNE))
    assert rejected(paid, RecordPayment("p-2", D("0.01"), JUNE)).field == "amount"


def test_payment_refusals() -> None:
    assert rejected(draft(line("a", "1.00")), RecordPayment("p", D("1.00"), JUNE)).code == "draft"
    state = issued(line("a", "100.00"))
    assert rejected(state, RecordPayment("p", D("0"), JUNE)).field == "amount"
    assert rejected(state, RecordPayment("p", D("1.001"), JUNE)).field == "amount"
    assert rejected(Invoice(), RecordPayment("p", D("1.00"), JUNE)).code == "not_found"


# -- series ------------------------------------------------------------------------


def allocate(state: sr.Series, invoice_id: str) -> tuple[sr.Series, list[sr.Event]]:
    events = sr.decide(sr.Allocate(invoice_id), state)
    for event in events:
        state = sr.evolve(state, event)
    return state, events


def test_b8_series_numbers_are_gap_free_and_in_order_over_100_allocations() -> None:
    state = sr.Series("INV-2026")
    allocated: list[sr.Event] = []
    for i in range(1, 101):
        state, events = allocate(state, f"inv-{i}")
        allocated += events
    assert [e.sequence for e in allocated] == list(range(1, 101))
    assert [e.number for e in allocated] == [f"INV-2026-{i:06d}" for i in range(1, 101)]
    assert allocated[0] == sr.NumberAllocated("inv-1", "INV-2026-000001", 1)
    assert sorted(e.number for e in allocated) == [e.number for e in allocated]
    assert sr.fold("INV-2026", allocated) == state


def test_series_same_invoice_twice_gets_no_new_number() -> None:
    state, _ = allocate(sr.Series("INV-2026"), "inv-1")
    state, events = allocate(state, "inv-1")
    assert events == []
    assert state.number_of("inv-1") == "INV-2026-000001"
    state, events = allocate(state, "inv-2")
    assert events == [sr.NumberAllocated("inv-2", "INV-2026-000002", 2)]


def test_series_allocation_then_issue() -> None:
    numbers, _ = allocate(sr.Series("INV-2026"), "inv-1")
    number = numbers.number_of("inv-1")
    assert number is not None
    assert issued(line("a", "1.00")).number == number
