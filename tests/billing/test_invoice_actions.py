"""One state machine for an invoice (issue 14): `allowed(state)`, which the API hands to
the console with each invoice, is exactly what `decide` takes. For every status an
invoice reaches, each action is either allowed and taken, or not allowed and refused for
the status (B8: an issued invoice never changes; a draft is neither credited nor paid),
so the console never offers a button billing would refuse."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from tests.decider import Decider
from weibao.billing.domain.invoice import (
    ALLOWS,
    Action,
    CreditNote,
    DraftOpened,
    Invoice,
    Issue,
    Line,
    LineAdded,
    PriceLine,
    RecordPayment,
    RemoveLine,
    allowed,
    decide,
    evolve,
)
from weibao.billing.domain.pricing import RATE_TO_BE_AGREED

D = Decimal
JUNE = date(2026, 6, 30)
INVOICE = Decider(decide=decide, evolve=evolve, initial=Invoice())


def line(item_id: str, clauses: tuple[str, ...] = ("B1",)) -> Line:
    return Line(item_id, "service", f"服务 {item_id}", D(1), "天", D("100.00"), D("100.00"), D("0.06"), clauses,
                (("dispatch", 7, "WorkLogged"),))


def draft() -> Invoice:
    """A draft with an agreed line (C10 [4]: priced by hand once, so it may be issued) and another."""
    return INVOICE.given(DraftOpened("inv-1", "c-1", "2026-06", date(2026, 6, 1)),
                         LineAdded(line("a", ("B3", RATE_TO_BE_AGREED))), LineAdded(line("b"))).after(
        PriceLine("a", D("80.00"), "agreed by phone", "billing:wang", JUNE)).state


def run(state: Invoice, *commands: Any) -> Invoice:
    return INVOICE.given_state(state).after(*commands).state


def issued() -> Invoice:
    return run(draft(), Issue("INV-2026-000001", JUNE))  # gross 190.80


# Each action as a valid command: whatever refusal remains can only be the status's.
COMMANDS: dict[Action, Callable[[], Any]] = {
    "issue": lambda: Issue("INV-2026-000002", JUNE),
    "price_line": lambda: PriceLine("a", D("90.00"), "agreed again", "billing:wang", JUNE),
    "remove_line": lambda: RemoveLine("b", "not done"),
    "credit": lambda: CreditNote("cn-new", ("b",), "not done", JUNE),
    "pay": lambda: RecordPayment("p-new", D("1.00"), JUNE),
}

STATES: dict[str, Callable[[], Invoice]] = {
    "none": Invoice,
    "draft": draft,
    "issued": issued,
    "partially paid": lambda: run(issued(), RecordPayment("p-1", D("50.00"), JUNE)),
    "paid": lambda: run(issued(), RecordPayment("p-1", D("190.80"), JUNE)),
    "credited": lambda: run(issued(), CreditNote("cn-1", None, "cancelled", JUNE)),
}
STATUS_REFUSALS = ("not_found", "issued", "draft", "conflict", "overpaid")


@pytest.mark.parametrize("name", STATES)
def test_b8_allowed_is_exactly_what_decide_takes(name: str) -> None:
    state = STATES[name]()
    offered = allowed(state)
    for action, command in COMMANDS.items():
        outcome = INVOICE.given_state(state).when(command())
        if action in offered:
            assert outcome.events, action  # taken: events, no refusal
        else:
            refused = outcome.then_rejected()
            assert refused.code in STATUS_REFUSALS, (name, action, refused)


def test_b8_every_status_is_covered_and_the_table_names_every_action() -> None:
    assert set(ALLOWS) == set(COMMANDS)
    assert {STATES[name]().status for name in STATES} == {"none", "draft", "issued", "partially_paid", "paid",
                                                          "credited"}
    assert allowed(STATES["draft"]()) == {"issue", "price_line", "remove_line"}
    assert allowed(STATES["paid"]()) == {"credit"}  # a refund, by a credit note (B8)
