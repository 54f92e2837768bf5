"""The requests' commands: load, decide, append, with the public messages billing needs.
The technicians' are in `technicians`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from weibao.dispatch.adapters.coverage import CoverageBook, SiteView, coverage_on, site
from weibao.dispatch.adapters.technician_board import TechnicianBoard
from weibao.dispatch.application.official_calendar import refresh as refresh_calendar
from weibao.dispatch.application.technicians import technician_stream
from weibao.dispatch.application.views import counted_days, deadline_view
from weibao.dispatch.domain import deadlines as dl
from weibao.dispatch.domain import intake
from weibao.dispatch.domain import ticket as domain
from weibao.shared import codec
from weibao.shared.aggregates import Repository
from weibao.shared.clock import CHINA
from weibao.shared.commands.dispatch import (
    CompleteVisit,
    DeadlinePreview,
    DeclineVisit,
    DeskWorkReport,
    ExpenseReport,
    NewTicket,
    PresenceReport,
    ReclassifyTicket,
    RespondTicket,
    TicketRef,
    TriageTicket,
    VisitReport,
    WaitTicket,
    WorkReport,
)
from weibao.shared.errors import require
from weibao.shared.events import RecordedEvent
from weibao.shared.eventstore import EventStore
from weibao.shared.money import as_text
from weibao.shared.public import dispatch as public
from weibao.shared.public.dispatch import Cause

TICKET = domain.EVENTS
PUBLIC = public.CODEC


def ticket_stream(ticket_id: str) -> str:
    return f"ticket-{ticket_id}"


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def translate(event: domain.Event, state: domain.Ticket) -> list[Any]:
    """The facts billing and the console need, from a ticket's private events."""
    opened = state.opened
    assert opened is not None
    cover = opened.coverage
    match event:
        case domain.VisitRequested():
            return [public.VisitRequested(opened.ticket_id, opened.customer_id, opened.site_id, cover.agreement_id,
                                          cover.verdict, cover.clauses, _iso(event.at), opened.summary,
                                          opened.skill)]
        case domain.VisitAssigned():
            return [public.VisitAssigned(opened.ticket_id, event.technician_id, _iso(event.at), event.at_risk,
                                         event.by, event.override_reason, dict(event.explanation))]
        case domain.CheckedIn() if event.within_geofence and state.first_check_in == event:
            return [public.VisitCheckedIn(opened.ticket_id, event.technician_id, _iso(event.server_time),
                                          _iso(event.device_time), event.distance_m, event.within_geofence,
                                          _iso(event.counted_at), event.time_source, event.time_flag)]
        case domain.VisitCompleted():
            return [public.VisitCompleted(opened.ticket_id, opened.customer_id, cover.agreement_id,
                                          event.technician_id, _iso(event.at), event.resolution, cover.verdict,
                                          cover.clauses, _iso(event.counted_at), event.time_source, event.time_flag)]
        case domain.WorkLogged():
            return [public.WorkLogged(opened.ticket_id, opened.customer_id, cover.agreement_id, event.technician_id,
                                      event.key, event.kind, _iso(event.started), _iso(event.ended), cover.verdict,
                                      cover.clauses)]
        case domain.DeskWorkLogged():
            # issue 13: billed as any work is (B3 outside coverage, C4 by the day), from the desk
            return [public.WorkLogged(opened.ticket_id, opened.customer_id, cover.agreement_id, event.worker,
                                      event.key, event.kind, _iso(event.started), _iso(event.ended), cover.verdict,
                                      cover.clauses, event.channel)]
        case domain.ExpenseRecorded():
            return [public.ExpenseRecorded(opened.ticket_id, opened.customer_id, cover.agreement_id,
                                           event.technician_id, event.key, event.kind, as_text(event.amount),
                                           event.receipt_no, event.receipt_date, event.nights, event.note)]
        case dl.DeadlineAtRisk():
            return [public.SlaAtRisk(opened.ticket_id, event.kind, _iso(event.due), _iso(event.at))]
        case dl.DeadlineBreached():
            # rule C17: outside the vendor's liability there is no deadline, hence no penalty
            return [public.SlaBreached(opened.ticket_id, event.kind, _iso(event.due), _iso(event.at),
                                       cover.verdict == "covered" and cover.penalty)]
        case dl.DeadlineMet():
            return [public.SlaMet(opened.ticket_id, event.kind, _iso(event.due), _iso(event.at))]
    return []


@dataclass
class Tickets:
    """A request's commands and its state, as the desk and the phones ask for them."""

    store: EventStore
    engine: AsyncEngine
    book: CoverageBook
    board: TechnicianBoard
    now: Callable[[], datetime]
    geofence_m: float = 500.0

    @cached_property  # one per application, so its folded states are kept (issue 15)
    def repository(self) -> Repository[domain.Ticket, domain.Event]:
        return Repository(self.store, TICKET, domain.evolve, domain.Ticket(), PUBLIC, translate)

    async def ticket(self, ticket_id: str, *, as_of: datetime | None = None) -> domain.Ticket:
        """The ticket now, or as it stood at `as_of` (the events recorded by then)."""
        # The log keeps UTC; SQLite compares the text, so the instant goes in as UTC too.
        state, _ = await self.repository.load(ticket_stream(ticket_id), as_of=as_of.astimezone(UTC) if as_of else None)
        require(state.status != "none", "not_found", "ticket_id",
                "no such ticket" if as_of is None else "no such ticket at that time",
                reason="ticket.not_found" if as_of is None else "ticket.not_found_at_that_time")
        return state

    async def execute(self, ticket_id: str, command: domain.Command, **kw: Any) -> list[RecordedEvent]:
        # rule D2: a year another replica entered counts before this one decides a due time
        # (one indexed read of the calendar stream's version; folded again only when it
        # moved), for the commands that count working time; the others read no calendar
        if isinstance(command, domain.DECIDES_DUE_TIMES):
            await refresh_calendar(self.store)
        return await self.repository.execute(
            ticket_stream(ticket_id),
            lambda state: domain.decide(command, state,
                                        geofence_radius_m=domain.geofence_radius(state, self.geofence_m)),
            **kw)

    # -- requests --------------------------------------------------------------------
    # Each command comes decoded (weibao.shared.commands.dispatch: shapes, vocabularies,
    # times with their UTC offset); what is checked here and in the domain is meaning.

    async def open(self, body: NewTicket, **kw: Any) -> list[RecordedEvent]:
        """A request from any channel (C13), with the coverage contracts last published.
        `received_at` (a call taken on paper, entered later): deadlines and coverage count
        from it (D1), within the domain's limits."""
        where = await site(self.engine, self.book, body.site_id)
        require(where is not None, "not_found", "site_id", "no such site (has contracts published it?)",
                reason="site.not_found")
        assert where is not None
        now = self.now()
        received = body.received_at
        opened_at = received.astimezone(UTC) if received is not None else now
        coverage, terms = await self._coverage(where, opened_at, body.cause)
        command = domain.OpenTicket(
            ticket_id=body.ticket_id, customer_id=where.customer_id, site_id=where.site_id,
            site=domain.Position(where.latitude, where.longitude), channel=body.channel, summary=body.summary,
            opened_at=opened_at, coverage=coverage, skill=body.skill, entered_at=now if received is not None else None,
            phase=body.phase, priority=body.priority, product=body.product, serial=body.serial, terms=terms,
        )
        return await self.execute(command.ticket_id, command, **kw)

    async def reclassify(self, body: ReclassifyTicket, *, meta: Mapping[str, Any] | None = None,
                         **kw: Any) -> list[RecordedEvent]:
        """Issue 13: a corrected cause, phase or priority; the coverage judged again as of
        when the request came in (D1), from the terms contracts last published."""
        opened, where = await self._opened_where(body.ticket_id)
        cause = body.cause or opened.coverage.judged_cause
        phase = body.phase or opened.phase  # what is not sent stays
        coverage, terms = await self._coverage(where, opened.opened_at, cause)
        by = str((meta or {}).get("actor", "system"))
        command = domain.Reclassify(self.now(), by, body.reason, cause, phase, body.priority or opened.priority,
                                    coverage, terms)
        return await self.execute(opened.ticket_id, command, meta=meta, **kw)

    async def find_coverage(self, body: TicketRef, *, meta: Mapping[str, Any] | None = None,
                            **kw: Any) -> list[RecordedEvent]:
        """rules D1, C1: look again for the coverage of a request opened without an agreement
        (its coverage had not reached dispatch yet), as of when it came in; nothing is
        stored when there is still none."""
        opened, where = await self._opened_where(body.ticket_id)
        coverage, _ = await self._coverage(where, opened.opened_at, opened.coverage.judged_cause)
        by = str((meta or {}).get("actor", "system"))
        return await self.execute(opened.ticket_id, domain.FindCoverage(self.now(), coverage, by), meta=meta, **kw)

    async def _opened_where(self, ticket_id: str) -> tuple[domain.TicketOpened, SiteView]:
        """A request as it was opened and its site as contracts last published it: what
        judging its coverage again needs (coverage found, a reclassification)."""
        opened = (await self.ticket(ticket_id)).opened
        assert opened is not None
        where = await site(self.engine, self.book, opened.site_id)
        require(where is not None, "not_found", "site_id", "the request's site is no longer published",
                reason="site.no_longer_published")
        assert where is not None
        return opened, where

    async def _coverage(self, where: SiteView, received: datetime, cause: Cause
                        ) -> tuple[domain.Coverage, dict[str, Any] | None]:
        """The coverage contracts last published for the site, on the day the request came
        in, judged for its cause (domain/intake.py); and the agreement's terms (None: none)."""
        cover = await coverage_on(self.engine, self.book, where, received.astimezone(CHINA).date())
        judged = intake.judge(cause, agreement=cover.agreement_id is not None,
                              period=cover.period,  # type: ignore[arg-type]
                              period_clauses=cover.clauses if cover.period else (), terms=cover.terms or {})
        coverage = domain.Coverage(cover.agreement_id, judged.verdict, judged.clauses, cover.local,
                                   cover.onsite if judged.sla else {}, cause, judged.reason, judged.penalty,
                                   cover.onsite.get("geofence_m"))
        return coverage, cover.terms

    async def preview(self, asked: DeadlinePreview) -> dict[str, Any]:
        """Issue 13 (D1, D2): the coverage and due times a request at this site would get
        if received at `asked.at` (any date, past or future): the same lookup, judgement
        and deadline code as `open`, nothing stored. Each day the working calendar counts
        is listed with its service window, so a due time can be checked by hand."""
        where = await site(self.engine, self.book, asked.site_id)
        require(where is not None, "not_found", "site_id", "no such site (has contracts published it?)",
                reason="site.not_found")
        assert where is not None
        at = asked.at.astimezone(UTC)
        await refresh_calendar(self.store)  # rule D2, as `execute`
        coverage, terms = await self._coverage(where, at, asked.cause)
        intake.check_channel(asked.channel, terms)  # rule C13
        intake.check_phase(asked.phase, terms)  # rule C14
        stored = domain.set_deadlines(at, coverage, asked.phase, priority=asked.priority, channel=asked.channel)
        deadlines = stored.rebuild() if stored is not None else None
        return {
            "site_id": where.site_id,
            "customer_id": where.customer_id,
            "at": at.isoformat(),
            "coverage": codec.dump(coverage),
            "clauses": list(stored.clauses) if stored is not None else [],
            "deadlines": deadline_view(deadlines, at) if deadlines is not None else None,
            "days": counted_days(deadlines) if deadlines is not None else [],
        }

    async def respond(self, body: RespondTicket, *, meta: Mapping[str, Any] | None = None,
                      **kw: Any) -> list[RecordedEvent]:
        """rule C15: the desk called the customer back or started a remote session."""
        by = str((meta or {}).get("actor", "system"))
        return await self.execute(body.ticket_id, domain.RecordResponse(self.now(), body.kind, by, body.note),
                                  meta=meta, **kw)

    async def desk_work(self, body: DeskWorkReport, *, meta: Mapping[str, Any] | None = None,
                        **kw: Any) -> list[RecordedEvent]:
        """Issue 13: phone or remote work; the worker is the technician named (the gateway
        names a technician's own id) or else whoever logs it (the desk's actor)."""
        if body.technician_id is not None:
            # Asked of the log, not the board: a technician registered a moment ago is known
            # before the board's consumer has caught up (the board is eventually consistent).
            known = await self.store.version(technician_stream(body.technician_id)) > 0
            require(known, "not_found", "technician_id", "no such technician", reason="technician.not_found")
        worker = body.technician_id or str((meta or {}).get("actor", "system"))
        command = domain.LogDeskWork(worker=worker, key=body.key, server_time=self.now(), channel=body.channel,
                                     kind=body.kind, started=body.started, ended=body.ended, note=body.note)
        return await self.execute(body.ticket_id, command, meta=meta, **kw)

    async def tick(self, ticket_id: str, **kw: Any) -> list[RecordedEvent]:
        """Announce what the clock made true (D1): at risk, breached."""
        return await self.execute(ticket_id, domain.Tick(self.now()), **kw)

    async def wait(self, body: WaitTicket, **kw: Any) -> list[RecordedEvent]:
        """rule D1: waiting on the customer pauses the clocks; their answer resumes them."""
        if body.until_customer_responds:
            command: domain.Command = domain.WaitForCustomer(self.now(), body.reason)
        else:
            command = domain.CustomerResponded(self.now())
        return await self.execute(body.ticket_id, command, **kw)

    async def triage(self, body: TriageTicket, **kw: Any) -> list[RecordedEvent]:
        """rule D3: resolved remotely, or escalated to an on-site visit."""
        command: domain.Command
        if body.outcome == "remote":
            command = domain.ResolveRemotely(self.now(), body.note)
        else:
            command = domain.Escalate(self.now(), body.note)
        return await self.execute(body.ticket_id, command, **kw)

    async def record_assignment(self, ticket_id: str, technician_id: str, *, explanation: Mapping[str, Any],
                                at_risk: bool, by: str, override_reason: str | None = None,
                                **kw: Any) -> list[RecordedEvent]:
        command = domain.RecordAssignment(technician_id, self.now(), explanation, at_risk, by, override_reason)
        return await self.execute(ticket_id, command, **kw)

    async def accept(self, body: VisitReport, **kw: Any) -> list[RecordedEvent]:
        # rule D5: the server's time stamped here, the phone's (if sent) beside it; decide counts one
        command = domain.Accept(body.technician_id, self.now(), body.device_time)
        return await self.execute(body.ticket_id, command, **kw)

    async def decline(self, body: DeclineVisit, **kw: Any) -> list[RecordedEvent]:
        command = domain.Decline(body.technician_id, self.now(), body.reason)
        return await self.execute(body.ticket_id, command, **kw)

    # -- a phone's reports (rules D5, D6): the server's clock is stamped here -----------

    async def check_in(self, body: PresenceReport, **kw: Any) -> list[RecordedEvent]:
        command = domain.CheckIn(technician_id=body.technician_id, key=body.key, server_time=self.now(),
                                 device_time=body.device_time, position=_position(body),
                                 accuracy_m=body.accuracy_m)
        return await self.execute(body.ticket_id, command, **kw)

    async def check_out(self, body: PresenceReport, **kw: Any) -> list[RecordedEvent]:
        command = domain.CheckOut(technician_id=body.technician_id, key=body.key, server_time=self.now(),
                                  device_time=body.device_time, position=_position(body),
                                  accuracy_m=body.accuracy_m)
        return await self.execute(body.ticket_id, command, **kw)

    async def work(self, body: WorkReport, **kw: Any) -> list[RecordedEvent]:
        command = domain.LogWork(technician_id=body.technician_id, key=body.key, server_time=self.now(),
                                 device_time=body.device_time, kind=body.kind, started=body.started,
                                 ended=body.ended)
        return await self.execute(body.ticket_id, command, **kw)

    async def expense(self, body: ExpenseReport, **kw: Any) -> list[RecordedEvent]:
        command = domain.RecordExpense(
            technician_id=body.technician_id, key=body.key, server_time=self.now(), device_time=body.device_time,
            kind=body.kind, amount=body.amount, receipt_no=body.receipt_no,
            # the event keeps the receipt's date as ISO text, "" when none was given
            receipt_date=body.receipt_date.isoformat() if body.receipt_date is not None else "",
            nights=body.nights, note=body.note)
        return await self.execute(body.ticket_id, command, **kw)

    async def complete(self, body: CompleteVisit, **kw: Any) -> list[RecordedEvent]:
        command = domain.Complete(body.technician_id, self.now(), body.resolution, body.device_time)  # D5
        return await self.execute(body.ticket_id, command, **kw)


def _position(body: PresenceReport) -> domain.Position:
    return domain.Position(body.position.latitude, body.position.longitude)
