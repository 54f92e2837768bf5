"""Issue 13, item 6, "idempotent by state": a command asking for what the request already
is stores nothing and is answered 200, with or without an idempotency key. Seen: a
re-sent assignment stored a second `VisitAssigned` to the same technician, while a
re-sent triage or acceptance answered 409. Decided: assigning to the technician already
assigned, accepting an accepted visit, triaging with the outcome already recorded and
completing a completed visit store nothing; every other command keeps its answer.

First the ticket's decider (given events, when a command, then events or a refusal),
then the same re-sends through the HTTP API, counted in the ticket's history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from tests.decider import Decider, Given
from tests.gateway.backends import any_gateway
from tests.gateway.conftest import SITE as SITE_S1
from tests.gateway.conftest import Gateway
from tests.gateway.test_api import PHONE_TIME, post, set_up
from tests.gateway.test_idempotency import history, types
from tests.helpers import eventually
from weibao.dispatch.domain.ticket import (
    Accept,
    CheckIn,
    CheckOut,
    Command,
    Complete,
    Coverage,
    Decline,
    Escalate,
    Event,
    OpenTicket,
    Position,
    RecordAssignment,
    ResolveRemotely,
    Ticket,
    VisitAssigned,
    allowed,
    decide,
    evolve,
)

__all__ = ["any_gateway"]  # the fixture, imported for pytest to find

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
SITE = Position(31.8206, 117.2272)
COVERED = Coverage("a-1", "covered", ("C1", "C9"), True,
                   {"kind": "local_or_out_of_town", "local_hours": 8, "out_of_town_days": 2})

TICKET = Decider(decide=decide, evolve=evolve, initial=Ticket())
History = Given[Command, Event, Ticket]


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def assignment(technician: str = "tech-1", *, minutes: int = 1, by: str = "system",
               reason: str | None = None) -> RecordAssignment:
    return RecordAssignment(technician, at(minutes), {"winner": technician, "asked_at": minutes}, False, by, reason)


def check_in(key: str = "k1", technician: str = "tech-1") -> CheckIn:
    return CheckIn(technician_id=technician, key=key, server_time=at(30), device_time=at(30), position=SITE,
                   accuracy_m=20.0)


def opened() -> History:
    return TICKET.after(OpenTicket("t-1", "c-1", "s-1", SITE, "phone", "开票模块报错", T0, COVERED))


def escalated() -> History:
    return opened().after(Escalate(at(0), "phone guidance failed"))  # rule D3


def assigned() -> History:
    return escalated().after(assignment())


def accepted() -> History:
    return assigned().after(Accept("tech-1", at(2)))


def on_site() -> History:
    return accepted().after(check_in())


def completed() -> History:
    return on_site().after(Complete("tech-1", at(60), "重装打印驱动"))


# -- assignment (D4) -----------------------------------------------------------------


def test_d4_assigning_the_technician_already_assigned_stores_nothing() -> None:
    # The reported bug: the same assignment re-sent without a key, a second VisitAssigned.
    assigned().when(assignment(minutes=5)).then()
    # Named by a dispatcher with a reason this time: the technician has it already, the
    # first decision and its explanation stand.
    assigned().when(assignment(minutes=5, by="dispatcher:li", reason="客户点名")).then()
    assert assigned().after(assignment(minutes=5)).state.assignment == assigned().state.assignment


def test_d4_the_same_technician_after_acceptance_and_on_site_stores_nothing_too() -> None:
    # Chosen: "the technician already assigned" holds while they still have the visit,
    # whatever they did since (accepted, checked in, checked out).
    accepted().when(assignment(minutes=5)).then()
    on_site().when(assignment(minutes=40)).then()
    checked_out = on_site().after(CheckOut(technician_id="tech-1", key="k2", server_time=at(45),
                                           device_time=at(45), position=SITE, accuracy_m=20.0))
    checked_out.when(assignment(minutes=50)).then()


def test_d4_another_technician_keeps_its_answers() -> None:
    # While only assigned: a reassignment, stored as before.
    (event,) = assigned().when(assignment("tech-2", minutes=5, by="dispatcher:li", reason="更近")).events
    assert isinstance(event, VisitAssigned) and event.technician_id == "tech-2"
    # Once accepted: refused as before (no override after acceptance).
    accepted().when(assignment("tech-2", minutes=5)).then_rejected("conflict", "ticket_id")


def test_d4_a_completed_visit_is_not_assigned_even_to_its_own_technician() -> None:
    # Chosen: the visit is done; an assignment of it is refused as before, not a no-op.
    completed().when(assignment(minutes=70)).then_rejected("conflict", "ticket_id")


def test_d4_a_technician_who_declined_no_longer_has_it_and_stays_barred() -> None:
    declined = assigned().after(Decline("tech-1", at(3), "病假"))
    declined.when(assignment(minutes=5)).then_rejected("conflict", "technician_id")


# -- acceptance ----------------------------------------------------------------------


def test_accepting_an_accepted_visit_stores_nothing() -> None:
    accepted().when(Accept("tech-1", at(5))).then()
    # Accepted before the check-in: a late retry from the phone finds it still accepted.
    on_site().when(Accept("tech-1", at(40))).then()


def test_acceptance_by_someone_else_or_never_made_keeps_its_answers() -> None:
    accepted().when(Accept("tech-2", at(5))).then_rejected("forbidden", "technician_id")
    # Checked in without accepting first: there is no acceptance to find, refused as before.
    assigned().after(check_in()).when(Accept("tech-1", at(40))).then_rejected("conflict", "ticket_id")
    # Declined, then given to a colleague: a new assignment, nobody's acceptance holds for it.
    reassigned = accepted().after(Decline("tech-1", at(3), "病假"), assignment("tech-2", minutes=4))
    assert reassigned.state.accepted_by is None
    completed().when(Accept("tech-1", at(70))).then_rejected("conflict", "ticket_id")


def test_the_console_still_does_not_offer_what_would_change_nothing() -> None:
    assert "accept" not in allowed(accepted().state)
    assert "complete" not in allowed(completed().state)
    assert not {"escalate", "resolve_remotely"} & allowed(escalated().state)


# -- triage (D3) ---------------------------------------------------------------------


def test_d3_escalating_an_escalated_request_stores_nothing() -> None:
    escalated().when(Escalate(at(5), "再次升级")).then()  # another note: the outcome is what counts
    assigned().when(Escalate(at(5), "needs hands")).then()
    completed().when(Escalate(at(70), "needs hands")).then()  # it was escalated; that stays recorded


def test_d3_resolving_a_resolved_request_stores_nothing() -> None:
    resolved = opened().after(ResolveRemotely(at(2), "电话指导解决"))
    resolved.when(ResolveRemotely(at(5), "电话指导解决")).then()


def test_d3_the_other_outcome_keeps_its_refusal() -> None:
    opened().after(ResolveRemotely(at(2), "done")).when(Escalate(at(5), "go")).then_rejected("conflict", "ticket_id")
    escalated().when(ResolveRemotely(at(5), "done")).then_rejected("conflict", "ticket_id")
    TICKET.given().when(Escalate(at(5), "go")).then_rejected("not_found", "ticket_id")


# -- completion ----------------------------------------------------------------------


def test_completing_a_completed_visit_stores_nothing_whatever_the_text() -> None:
    # Chosen: the same technician's second completion is a no-op even with another
    # resolution text; the first one stands (and no deadline fact is announced again, D1).
    completed().when(Complete("tech-1", at(65), "重装打印驱动")).then()
    completed().when(Complete("tech-1", at(65), "另一种说法")).then()
    assert completed().state.completed_at == at(60)


def test_completion_by_someone_else_or_before_check_in_keeps_its_answers() -> None:
    completed().when(Complete("tech-2", at(65), "fixed")).then_rejected("forbidden", "technician_id")
    accepted().when(Complete("tech-1", at(65), "fixed")).then_rejected("conflict", "ticket_id")


# -- through the HTTP API, without an Idempotency-Key ----------------------------------


async def counted(gateway: Gateway, *names: str) -> dict[str, int]:
    """How many of each event type the ticket's history holds: private ones
    ("private.<Name>") and the public messages stored with them ("<Name>")."""
    recorded = [e["type"] for e in await history(gateway, "ticket-t-1")]
    return {name: recorded.count(name) for name in names}


async def near_holds_t1(li: httpx.AsyncClient) -> None:
    async def on_the_board() -> bool:  # the technician board is a read model, caught up later
        found = (await li.get("/api/v1/technicians/near")).json()
        return bool(found["open_visits"] == ["t-1"])

    await eventually(on_the_board)


async def test_re_sent_commands_without_a_key_store_one_event_each(any_gateway: Gateway) -> None:
    gateway = any_gateway
    await set_up(gateway)
    async with await gateway.as_user("li") as li, await gateway.as_user("near") as near:
        # One visit a day: the visit D4 gave near must not count against near when the
        # assignment is asked again, or D4 would pass it on to "far" for its own load.
        capped = await li.patch("/api/v1/technicians/near", json={"capacity_per_day": 1})
        assert capped.status_code == 200, capped.text

        # rule D3: escalated twice, one visit requested; the other outcome still refused.
        first = await post(li, "/tickets/t-1/triage", {"outcome": "escalate", "note": "需要上门"})
        assert types(first) == ["private.VisitRequested"]
        again = await post(li, "/tickets/t-1/triage", {"outcome": "escalate", "note": "需要上门"})
        assert again["events"] == [] and again["ticket"]["status"] == "awaiting_assignment"
        refused = await li.post("/api/v1/tickets/t-1/triage", json={"outcome": "remote", "note": "电话解决"})
        assert refused.status_code == 409, refused.text

        # rule D4, by the rule: once; asked again (the board caught up) it finds near again.
        assigned = await post(li, "/tickets/t-1/assignment", {})
        (event,) = [e for e in assigned["events"] if e["type"] == "private.VisitAssigned"]
        assert event["data"]["technician_id"] == "near"
        await near_holds_t1(li)
        again = await post(li, "/tickets/t-1/assignment", {})
        # 200 with the existing result: nothing new, the assignment and its explanation as recorded.
        assert again["events"] == []
        assert again["ticket"]["technician_id"] == "near"
        assert again["ticket"]["assignment"]["explanation"] == event["data"]["explanation"]
        # Naming near, without a reason: near has it already, so no override is asked for.
        named = await post(li, "/tickets/t-1/assignment", {"technician_id": "near"})
        assert named["events"] == [] and named["ticket"]["assignment"]["at"] == event["data"]["at"]

        # Accepted twice: one acceptance; a re-send after the check-in finds it too.
        assert types(await post(near, "/tickets/t-1/acceptance", {})) == ["private.VisitAccepted"]
        again = await post(near, "/tickets/t-1/acceptance", {})
        assert again["events"] == [] and again["ticket"]["status"] == "accepted"
        check = {"key": "phone-key-1301", "device_time": PHONE_TIME, "position": SITE_S1, "accuracy_m": 8}
        assert "private.CheckedIn" in types(await post(near, "/tickets/t-1/check-in", check))
        assert (await post(near, "/tickets/t-1/acceptance", {}))["events"] == []
        assert (await post(li, "/tickets/t-1/assignment", {"technician_id": "near"}))["events"] == []

        # Completed twice: one completion, billing hears of it once.
        done = await post(near, "/tickets/t-1/completion", {"resolution": "重装打印驱动"})
        assert "private.VisitCompleted" in types(done)
        again = await post(near, "/tickets/t-1/completion", {"resolution": "重装打印驱动"})
        assert again["events"] == [] and again["ticket"]["status"] == "completed"

    # Each once in the log: the private event and the public message billing and the
    # console read (stored as "VisitAssigned", published on `dispatch.VisitAssigned`).
    once = ("private.VisitRequested", "VisitRequested", "private.VisitAssigned", "VisitAssigned",
            "private.VisitAccepted", "private.VisitCompleted", "VisitCompleted")
    assert await counted(gateway, *once) == dict.fromkeys(once, 1)
