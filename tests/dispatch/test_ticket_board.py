"""The ticket board read model on both backends: rows as the domain's events leave each
ticket (D1 deadlines, D5 check-ins), and the list query's order, filters and pages.

The messages are the domain's own events, encoded as the service stores them, with the
public translations between them as on the real stream."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from weibao.dispatch.adapters.ticket_board import TicketBoard, ticket_page
from weibao.dispatch.application.tickets import PUBLIC, TICKET, translate
from weibao.dispatch.domain.ticket import (
    CheckIn,
    Complete,
    Coverage,
    CustomerResponded,
    Escalate,
    OpenTicket,
    Position,
    RecordAssignment,
    ResolveRemotely,
    Tick,
    Ticket,
    WaitForCustomer,
    decide,
    evolve,
)
from weibao.shared import codec
from weibao.shared.commands.dispatch import TicketList
from weibao.shared.db import begin_write
from weibao.shared.errors import Rejected
from weibao.shared.messages import Message
from weibao.shared.readmodels import create_tables

T0 = datetime(2026, 6, 1, 1, 0, tzinfo=UTC)  # Monday 09:00 in Hefei
SITE = Position(31.8206, 117.2272)
C9_LOCAL = Coverage("a-1", "covered", ("C1", "C9"), True, {"kind": "local_or_out_of_town", "local_hours": 4,
                                                           "out_of_town_days": 2})
C15 = Coverage("a-2", "covered", ("C1", "C15"), True, {"kind": "respond_resolve", "respond_hours": 4,
                                                       "resolve_hours": 24})
OUTSIDE = Coverage(None, "billable", ("B3",), True, {})


def listed(body: dict[str, Any]) -> TicketList:
    """A list request as `weibao.dispatch.tickets` decodes it (a shape refused names its field)."""
    return codec.parse(TicketList, body)


def hours(n: float) -> datetime:
    return T0 + timedelta(hours=n)


class Log:
    """Tickets' events as the stream carries them: private, then their public twins."""

    def __init__(self) -> None:
        self.states: dict[str, Ticket] = {}
        self.versions: dict[str, int] = {}
        self.messages: list[Message] = []

    def do(self, ticket_id: str, command: Any, at: datetime) -> None:
        state = self.states.get(ticket_id, Ticket())
        for event in decide(command, state):
            state = evolve(state, event)
            for new in (TICKET.encode(event), *(PUBLIC.encode(m) for m in translate(event, state))):
                version = self.versions[ticket_id] = self.versions.get(ticket_id, 0) + 1
                self.messages.append(Message("dispatch", len(self.messages) + 1, f"ticket-{ticket_id}", version,
                                             new.type, new.schema_version, at, new.data, {}))
        self.states[ticket_id] = state

    def open(self, ticket_id: str, coverage: Coverage, at: datetime, customer: str = "c-1") -> None:
        self.do(ticket_id, OpenTicket(ticket_id, customer, "s-1", SITE, "phone", "报表打不开", at, coverage), at)

    def visit(self, ticket_id: str, technician: str, at: datetime) -> None:
        self.do(ticket_id, Escalate(at, "电话无法解决"), at)
        self.do(ticket_id, RecordAssignment(technician, at, {}, False, "dispatcher:li"), at)

    def check_in(self, ticket_id: str, technician: str, at: datetime) -> None:
        self.do(ticket_id, CheckIn(technician_id=technician, key=f"{ticket_id}-{at}", server_time=at,
                                   device_time=at, position=SITE, accuracy_m=10.0), at)


@pytest.fixture
async def board(engine: AsyncEngine) -> TicketBoard:
    model = TicketBoard()
    await create_tables(engine, model)
    return model


async def feed(engine: AsyncEngine, board: TicketBoard, log: Log) -> None:
    async with begin_write(engine) as conn:
        for message in log.messages:
            await board(conn, message)
    log.messages.clear()


async def row(engine: AsyncEngine, board: TicketBoard, ticket_id: str) -> dict[str, Any]:
    found = [item for item in (await ticket_page(engine, board, listed({"status": "all"})))["items"]
             if item["ticket_id"] == ticket_id]
    assert len(found) == 1
    first: dict[str, Any] = found[0]
    return first


async def test_d1_open_tickets_by_the_earliest_running_deadline_closed_by_the_latest_finished(
        engine: AsyncEngine, board: TicketBoard) -> None:
    log = Log()
    log.open("later", C9_LOCAL, T0)  # arrive by 05:00 UTC (C9: 4 hours locally)
    log.open("sooner", C9_LOCAL, hours(-2))  # arrive by 03:00
    log.open("no-sla", OUTSIDE, hours(-5))  # billable: no deadline (C1, B3), listed last
    log.open("tie", C9_LOCAL, T0)  # the same due time as "later": then by id
    log.open("done-first", C9_LOCAL, hours(-3), customer="c-2")
    log.do("done-first", ResolveRemotely(hours(-1), "guided by phone"), hours(-1))
    log.open("done-last", C9_LOCAL, hours(-3))
    log.visit("done-last", "near", hours(-2.5))
    log.check_in("done-last", "near", hours(-2))
    log.do("done-last", Complete("near", hours(-0.5), "fixed"), hours(-0.5))
    await feed(engine, board, log)

    def ids(page: dict[str, Any]) -> list[str]:
        return [item["ticket_id"] for item in page["items"]]

    assert ids(await ticket_page(engine, board, listed({}))) == ["sooner", "later", "tie", "no-sla"]
    assert ids(await ticket_page(engine, board, listed({"status": "closed"}))) == ["done-last", "done-first"]
    assert ids(await ticket_page(engine, board, listed({"status": "all"}))) == [
        "sooner", "later", "tie", "no-sla", "done-last", "done-first"]
    assert ids(await ticket_page(engine, board, listed({"status": "all", "technician_id": "near"}))) == ["done-last"]
    assert ids(await ticket_page(engine, board, listed({"status": "all", "customer_id": "c-2"}))) == ["done-first"]

    first = await ticket_page(engine, board, listed({"limit": 3}))
    rest = await ticket_page(engine, board, listed({"limit": 3, "offset": first["next_offset"]}))
    assert (ids(first), first["total"], first["next_offset"]) == (["sooner", "later", "tie"], 4, 3)
    assert (ids(rest), rest["total"], rest["next_offset"]) == (["no-sla"], 4, None)

    sooner = await row(engine, board, "sooner")
    assert sooner["opened_at"] == "2026-05-31T23:00:00+00:00"
    assert sooner["arrive_by"] == sooner["next_due"] == "2026-06-01T03:00:00+00:00"
    assert (sooner["respond_by"], sooner["resolve_by"]) == (None, None)  # C9 sets an arrival only
    assert (sooner["status"], sooner["verdict"], sooner["local"], sooner["agreement_id"]) == (
        "triage", "covered", True, "a-1")
    assert (sooner["at_risk"], sooner["breached"], sooner["paused"]) == ([], [], False)
    done = await row(engine, board, "done-last")
    assert (done["status"], done["technician_id"], done["next_due"]) == ("completed", "near", None)
    assert done["checked_in_at"] == "2026-05-31T23:00:00+00:00"
    assert done["completed_at"] == done["updated_at"] == "2026-06-01T00:30:00+00:00"
    assert done["last_event"] == "VisitCompleted"  # the last private event, not its public twin
    assert done["stopped"] == ["arrive"]


async def test_d1_d5_at_risk_breached_paused_and_stopped_clocks(engine: AsyncEngine, board: TicketBoard) -> None:
    log = Log()
    log.open("t-1", C15, T0)  # C15: respond within 4 hours, resolve within 24
    log.do("t-1", WaitForCustomer(hours(1), "客户不在"), hours(1))
    await feed(engine, board, log)
    waiting = await row(engine, board, "t-1")
    assert waiting["paused"] and waiting["next_due"] == waiting["respond_by"] == "2026-06-01T05:00:00+00:00"

    log.do("t-1", CustomerResponded(hours(2)), hours(2))
    log.do("t-1", Tick(hours(4.5)), hours(4.5))  # at risk from 05:12 after the hour waited
    await feed(engine, board, log)
    at_risk = await row(engine, board, "t-1")
    assert not at_risk["paused"]
    assert at_risk["respond_by"] == at_risk["next_due"] == "2026-06-01T06:00:00+00:00"  # moved on by the wait
    assert at_risk["resolve_by"] == "2026-06-02T02:00:00+00:00"
    assert (at_risk["at_risk"], at_risk["breached"]) == (["respond"], [])

    log.do("t-1", Tick(hours(6)), hours(6))
    log.visit("t-1", "near", hours(6))
    log.check_in("t-1", "near", hours(7))  # D5: stops the response clock, late
    await feed(engine, board, log)
    on_site = await row(engine, board, "t-1")
    assert (on_site["at_risk"], on_site["breached"], on_site["stopped"]) == ([], ["respond"], ["respond"])
    assert on_site["status"] == "on_site" and on_site["next_due"] == on_site["resolve_by"]


async def test_a_row_changes_only_with_private_events(engine: AsyncEngine, board: TicketBoard) -> None:
    log = Log()
    log.open("t-1", C9_LOCAL, T0)
    log.visit("t-1", "near", T0)  # VisitRequested and VisitAssigned each have a public twin
    await feed(engine, board, log)
    assigned = await row(engine, board, "t-1")
    assert (assigned["status"], assigned["technician_id"], assigned["last_event"]) == (
        "assigned", "near", "VisitAssigned")


@pytest.mark.parametrize(("body", "field"), [
    ({"status": "pending"}, "status"), ({"limit": 0}, "limit"), ({"limit": 201}, "limit"),
    ({"limit": "many"}, "limit"), ({"limit": True}, "limit"), ({"offset": -1}, "offset"),
])
async def test_a_bad_list_request_is_refused_by_field(engine: AsyncEngine, board: TicketBoard,
                                                      body: dict[str, Any], field: str) -> None:
    with pytest.raises(Rejected) as refused:
        await ticket_page(engine, board, listed(body))
    assert (refused.value.code, refused.value.field) == ("invalid", field)
