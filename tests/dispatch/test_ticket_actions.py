"""One state machine for a request (issue 14): `allowed(state)`, which the API hands to
the screens, is exactly what `decide` takes. For every state a request can reach, each
action is either allowed and taken, or not allowed and refused; so a screen built on
`allowed` never offers a button the service would refuse (the console once offered an
override on accepted visits, which D4's rules refuse).

Issue 13 ("idempotent by state") adds one answer to "not allowed": a command asking for
what already holds (escalating an escalated request, accepting an accepted visit,
completing a completed one) stores nothing instead of being refused. Such a command is
still not offered (it would change nothing); which ones they are is pinned below, so a
refusal cannot silently become a no-op, nor the other way round."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from tests.decider import Decider
from weibao.dispatch.domain.ticket import (
    ALLOWS,
    Accept,
    Action,
    CheckIn,
    CheckOut,
    Complete,
    Coverage,
    CustomerResponded,
    Decline,
    Escalate,
    FindCoverage,
    LogDeskWork,
    LogWork,
    OpenTicket,
    Position,
    Reclassify,
    RecordAssignment,
    RecordExpense,
    RecordResponse,
    ResolveRemotely,
    Ticket,
    WaitForCustomer,
    allowed,
    decide,
    evolve,
)

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
SITE = Position(31.8206, 117.2272)
FAR = Position(31.9206, 117.2272)  # about 11 km: a check-in recorded and flagged
TECH = "tech-1"
COVERED = Coverage("a-1", "covered", ("C1", "C9"), True,
                   {"kind": "local_or_out_of_town", "local_hours": 8, "out_of_town_days": 2})
NONE_YET = Coverage(None, "unknown", (), True, {})  # opened before the agreement reached dispatch


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


TICKET = Decider(decide=decide, evolve=evolve, initial=Ticket())


def run(state: Ticket, *commands: Any) -> Ticket:
    return TICKET.given_state(state).after(*commands).state


def opened(coverage: Coverage = COVERED) -> Ticket:
    return TICKET.after(OpenTicket("t-1", "c-1", "s-1", SITE, "phone", "开票模块报错", T0, coverage)).state


def assign(technician: str = TECH) -> RecordAssignment:
    return RecordAssignment(technician, at(1), {"winner": technician}, False, "dispatcher:li")


def check_in(key: str, where: Position = SITE) -> CheckIn:
    return CheckIn(technician_id=TECH, key=key, server_time=at(30), device_time=at(30), position=where,
                   accuracy_m=20.0)


# Each action as a valid command (by the assigned technician where only they may act):
# whatever refusal remains can only be the state's.
COMMANDS: dict[Action, Callable[[], Any]] = {
    "escalate": lambda: Escalate(at(5), "needs hands"),
    "resolve_remotely": lambda: ResolveRemotely(at(5), "guided by phone"),
    "assign": lambda: assign("tech-2"),
    "accept": lambda: Accept(TECH, at(5)),
    "decline": lambda: Decline(TECH, at(5), "ill"),
    "report": lambda: LogWork(technician_id=TECH, key="w-new", server_time=at(50), device_time=at(50),
                              kind="software", started=at(35), ended=at(45)),
    "complete": lambda: Complete(TECH, at(60), "fixed"),
    "wait": lambda: WaitForCustomer(at(7), "customer away"),
    "resume": lambda: CustomerResponded(at(90)),
    "find_coverage": lambda: FindCoverage(at(5), COVERED, "system:coverage"),
    "reclassify": lambda: Reclassify(at(5), "dispatcher:li", "misjudged on the phone", "virus_cleanup", None, "high",
                                     COVERED),
    "respond": lambda: RecordResponse(at(5), "call_back", "dispatcher:li", "called back"),
    "desk_work": lambda: LogDeskWork(worker="dispatcher:li", key="desk-new", server_time=at(50), channel="phone",
                                     kind="software", started=at(35), ended=at(45), note="phone guidance"),
}

# Every status a request reaches, and the variants that change what it allows.
STATES: dict[str, Callable[[], Ticket]] = {
    "new": Ticket,
    "triage": opened,
    "triage without an agreement": lambda: opened(NONE_YET),
    "triage, waiting on the customer": lambda: run(opened(), WaitForCustomer(at(2), "away")),
    "resolved": lambda: run(opened(), ResolveRemotely(at(2), "done")),
    "awaiting assignment": lambda: run(opened(), Escalate(at(1), "go")),
    "awaiting assignment, no agreement": lambda: run(opened(NONE_YET), Escalate(at(1), "go")),
    "assigned": lambda: run(opened(), Escalate(at(1), "go"), assign()),
    "assigned, flagged check-in": lambda: run(opened(NONE_YET), Escalate(at(1), "go"), assign(),
                                              check_in("k-far", FAR)),
    "accepted": lambda: run(opened(), Escalate(at(1), "go"), assign(), Accept(TECH, at(2))),
    "declined": lambda: run(opened(), Escalate(at(1), "go"), assign(), Decline(TECH, at(2), "ill")),
    "on site": lambda: run(opened(), Escalate(at(1), "go"), assign(), check_in("k1")),
    "on site, paused": lambda: run(opened(), Escalate(at(1), "go"), assign(), check_in("k1"),
                                   WaitForCustomer(at(31), "parts")),
    "checked out": lambda: run(opened(), Escalate(at(1), "go"), assign(), check_in("k1"),
                               CheckOut(technician_id=TECH, key="k2", server_time=at(40), device_time=at(40),
                                        position=SITE, accuracy_m=20.0)),
    "completed": lambda: run(opened(), Escalate(at(1), "go"), assign(), check_in("k1"),
                             Complete(TECH, at(50), "fixed")),
    "completed, expense uploaded late": lambda: run(
        opened(), Escalate(at(1), "go"), assign(), check_in("k1"), Complete(TECH, at(50), "fixed"),
        RecordExpense(technician_id=TECH, key="e1", server_time=at(70), device_time=at(20), kind="meals",
                      amount=Decimal("30.00"), receipt_no="R1", receipt_date=T0.date())),
}


# Issue 13: the (state, action) pairs whose command above finds its effect already there.
# "assign" names tech-2, who never has the visit here (the same-technician case is in
# test_idempotent_by_state); "on site" was reached without an acceptance, so accepting
# it is still refused.
_ESCALATED = ("awaiting assignment", "awaiting assignment, no agreement", "assigned", "assigned, flagged check-in",
              "accepted", "declined", "on site", "on site, paused", "checked out", "completed",
              "completed, expense uploaded late")
NO_OPS: frozenset[tuple[str, Action]] = frozenset({
    *((name, "escalate") for name in _ESCALATED),  # rule D3: triage's outcome recorded already
    ("resolved", "resolve_remotely"),
    ("accepted", "accept"),
    ("completed", "complete"),
    ("completed, expense uploaded late", "complete"),
})


@pytest.mark.parametrize("name", STATES)
def test_allowed_is_exactly_what_decide_takes(name: str) -> None:
    state = STATES[name]()
    offered = allowed(state)
    for action, command in COMMANDS.items():
        outcome = TICKET.given_state(state).when(command())
        if action in offered:
            assert (name, action) not in NO_OPS
            assert outcome.events is not None, action  # taken: no refusal at all
        elif (name, action) in NO_OPS:
            outcome.then()  # issue 13: not offered, yet not refused either: nothing stored
        else:
            refused = outcome.then_rejected()
            assert refused.code in ("conflict", "not_found", "forbidden"), (action, refused)


def test_the_table_names_every_action_and_the_console_s_drift_is_closed() -> None:
    assert set(ALLOWS) == set(COMMANDS)
    accepted = STATES["accepted"]()
    assert "assign" not in allowed(accepted)  # no override once the technician accepted (D4)
    # issue 13: a no-op is taken, never offered: no "accept" button on an accepted visit
    assert "accept" not in allowed(accepted) and "complete" not in allowed(STATES["completed"]())
    assert {name for name, _ in NO_OPS} <= set(STATES)  # each pinned no-op is one the test reaches
    assert allowed(STATES["new"]()) == frozenset()
    assert allowed(STATES["completed"]()) == {"report", "desk_work"}  # late uploads and desk notes only
    assert "report" not in allowed(STATES["declined"]())  # nobody is assigned
    assert "find_coverage" not in allowed(STATES["assigned, flagged check-in"]())  # reports are in (D1, C1)
    assert {"resume"} <= allowed(STATES["on site, paused"]()) and "wait" not in allowed(STATES["on site, paused"]())
