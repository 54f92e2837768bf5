"""The dispatch service's commands and queries on NATS (`weibao.dispatch.<name>`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import structlog
from faststream.nats import NatsBroker
from sqlalchemy import select

from weibao.dispatch.adapters.coverage import CoverageBook
from weibao.dispatch.adapters.technician_board import TechnicianBoard, technician, technicians
from weibao.dispatch.adapters.ticket_board import TicketBoard, ticket_page, utc
from weibao.dispatch.application.assigning import Assigning
from weibao.dispatch.application.planning import Planning
from weibao.dispatch.application.technicians import Technicians
from weibao.dispatch.application.tickets import Tickets, ticket_stream
from weibao.dispatch.application.views import ticket_view
from weibao.dispatch.domain.ticket import ALLOWS
from weibao.dispatch.entrypoints import calendar
from weibao.shared.clock import utc_now
from weibao.shared.commands import Body
from weibao.shared.commands import dispatch as c
from weibao.shared.errors import Rejected, require
from weibao.shared.eventstore import ConcurrencyError
from weibao.shared.rpc import Handler, command, expose, history_reply, query
from weibao.shared.service import Runtime
from weibao.shared.settings import environment

log = structlog.get_logger("weibao.dispatch")

def application(runtime: Runtime, now: Callable[[], datetime] = utc_now) -> Tickets:
    """The requests' commands over the read models this service runs (service.py builds them)."""
    radius = environment().geofence_m
    return Tickets(runtime.store, runtime.engine, runtime.read_model(CoverageBook),
                   runtime.read_model(TechnicianBoard), now, radius)


def answering_what_holds(handler: Handler, tickets: Tickets) -> Handler:
    """Issue 13, "idempotent by state": a command whose effect already holds (the same
    assignment, acceptance, triage outcome or completion sent again, with no idempotency
    key) stores nothing and answers no events; beside them, the request as it stands
    (`ticket`, as the `.ticket` query answers it: status, technician, the assignment with
    its D4 explanation), so the caller gets the existing result, not an empty one. Read
    only on that path: a command that stored something answers exactly as before."""

    async def handle(body: Mapping[str, Any], meta: Mapping[str, Any]) -> Any:
        reply = await handler(body, meta)
        if reply["events"] or not body.get("ticket_id"):
            return reply
        state = await tickets.ticket(str(body["ticket_id"]))
        return {**reply, "ticket": ticket_view(state, tickets.now())}

    return handle


def register(broker: NatsBroker, runtime: Runtime) -> None:
    # D2: the official calendar's years, entered as events in the log (the file is seed data)
    calendar.register(broker, runtime)
    tickets = application(runtime)
    crew = Technicians(runtime.store, tickets.now)
    book, technician_board, ticket_board = tickets.book, tickets.board, runtime.read_model(TicketBoard)
    assigning = Assigning(tickets)
    # Every body decoded with its schema (the gateway's HTTP body plus what it adds from
    # the path and the token): the gateway's, the CLI's and the demo's requests alike.
    commands: dict[str, Handler] = {
        "ticket.open": command(tickets.open, c.NewTicket),
        "ticket.triage": answering_what_holds(command(tickets.triage, c.TriageTicket), tickets),
        "ticket.assign": answering_what_holds(command(assigning.assign, c.AssignTicket), tickets),
        "ticket.accept": answering_what_holds(command(tickets.accept, c.VisitReport), tickets),
        "ticket.decline": command(assigning.decline, c.DeclineVisit),
        "ticket.check_in": command(tickets.check_in, c.PresenceReport),
        "ticket.check_out": command(tickets.check_out, c.PresenceReport),
        "ticket.work": command(tickets.work, c.WorkReport),
        "ticket.expense": command(tickets.expense, c.ExpenseReport),
        "ticket.complete": answering_what_holds(command(tickets.complete, c.CompleteVisit), tickets),
        "ticket.wait": command(tickets.wait, c.WaitTicket),
        "ticket.find_coverage": command(tickets.find_coverage, c.TicketRef),
        "ticket.reclassify": command(tickets.reclassify, c.ReclassifyTicket),
        "ticket.respond": command(tickets.respond, c.RespondTicket),
        "ticket.desk_work": command(tickets.desk_work, c.DeskWorkReport),
        "technician.register": command(crew.register, c.NewTechnician),
        "technician.time_off": command(crew.time_off, c.TechnicianTimeOff),
        "technician.change": command(crew.change, c.TechnicianPatch),
        "technician.retire": command(crew.retire, c.TechnicianRetirement),
    }

    async def ticket(asked: c.TicketQuery) -> Any:
        state = await tickets.ticket(asked.ticket_id, as_of=asked.as_of)
        return ticket_view(state, asked.as_of or tickets.now())

    async def ticket_list(asked: c.TicketList) -> Any:
        return await ticket_page(runtime.engine, ticket_board, asked, sites=book.sites)

    async def history(asked: c.TicketRef) -> Any:
        return history_reply(await runtime.store.load(ticket_stream(asked.ticket_id)))  # none: []

    async def technician_list(_asked: Body) -> Any:
        return await technicians(runtime.engine, technician_board)

    async def one_technician(asked: c.TechnicianRef) -> Any:
        found = await technician(runtime.engine, technician_board, asked.technician_id)
        require(found is not None, "not_found", "technician_id", "no such technician", reason="technician.not_found")
        return found

    planning = Planning(tickets, ticket_board)

    async def plan(asked: c.PlanQuery) -> Any:
        return await planning.today(seconds=min(asked.seconds, 60.0))

    queries: dict[str, Handler] = {
        "deadlines.preview": query(tickets.preview, c.DeadlinePreview),
        "plan": query(plan, c.PlanQuery),
        "ticket": query(ticket, c.TicketQuery),
        "history": query(history, c.TicketRef),
        "technicians": query(technician_list, Body),  # no fields: anything sent is a mistake to name
        "technician": query(one_technician, c.TechnicianRef),
        "tickets": query(ticket_list, c.TicketList),
    }
    for name, handler in {**commands, **queries}.items():
        expose(broker, "dispatch", name, handler, keys=runtime.keys)


async def watch_deadlines(runtime: Runtime, stop: asyncio.Event) -> None:
    """rule D1: at-risk and breached deadlines become events when the clock says so,
    not only when someone looks (WEIBAO_TICK_INTERVAL seconds, default 30).

    Each turn ticks only the tickets whose next deadline news is due (the board's
    `next_check`, from the domain's `next_evaluation`), not every open one: an idle
    service's work does not grow with the requests left open. A tick is idempotent (each
    fact is announced once), so a ticket ticked again before the board caught up, or by
    two replicas, stores nothing twice."""
    interval = environment().tick_interval
    tickets = application(runtime)
    board = runtime.read_model(TicketBoard).table
    while not stop.is_set():
        async with runtime.engine.connect() as conn:
            rows = await conn.execute(select(board.c.ticket_id).where(
                board.c.next_check.is_not(None), board.c.next_check <= utc(tickets.now()))
                .order_by(board.c.next_check))
            due = [row.ticket_id for row in rows]
        for ticket_id in due:
            try:
                await tickets.tick(ticket_id)
            except (Rejected, ConcurrencyError) as error:
                log.info("tick.skipped", ticket_id=ticket_id, reason=str(error))  # retried next tick
        await find_missing_coverage(runtime, tickets)
        try:
            await asyncio.wait_for(stop.wait(), interval)
        except TimeoutError:
            continue


# How long after a request came in the clock looks for coverage it lacked: the race is
# seconds long. Later, an agreement signed since (with an earlier go-live) would turn an
# old request's deadlines into breaches nobody could have met; a dispatcher decides that.
COVERAGE_LOOKBACK = timedelta(minutes=10)


async def find_missing_coverage(runtime: Runtime, tickets: Tickets) -> None:
    """rules D1, C1: a request opened in the moment between a customer's site and its
    agreement reaching dispatch (both come as contracts' messages) would stay without
    agreement, deadline or billable expenses. Each turn of the clock looks again for the
    recent open ones nobody has reported on from site yet."""
    board = runtime.read_model(TicketBoard).table
    since = utc(tickets.now() - COVERAGE_LOOKBACK)
    async with runtime.engine.connect() as conn:
        rows = await conn.execute(select(board.c.ticket_id).where(
            board.c.agreement_id.is_(None), board.c.checked_in_at.is_(None), board.c.opened_at >= since,
            board.c.status.in_(sorted(ALLOWS["find_coverage"]))))
        waiting = [row.ticket_id for row in rows]
    for ticket_id in waiting:
        try:
            # The board's own id, not outside input: constructed, not validated again.
            found = await tickets.find_coverage(c.TicketRef.model_construct(ticket_id=ticket_id),
                                                meta={"actor": "system:coverage"})
        except (Rejected, ConcurrencyError) as error:
            log.info("coverage.skipped", ticket_id=ticket_id, reason=str(error))  # e.g. a report came in
            continue
        if found:
            log.info("coverage.found", ticket_id=ticket_id, agreement_id=found[0].data["coverage"]["agreement_id"])
