"""The requests' commands: load, decide, append, with the public messages billing needs.
The technicians' are in `technicians`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from weibao.dispatch.adapters.coverage import CoverageBook, SiteView, coverage_on, site
from weibao.dispatch.adapters.technician_board import TechnicianBoard
from weibao.dispatch.domain import deadlines as dl
from weibao.dispatch.domain import ticket as domain
from weibao.shared import codec
from weibao.shared.aggregates import Repository
from weibao.shared.clock import CHINA
from weibao.shared.errors import Rejected, require
from weibao.shared.events import RecordedEvent
from weibao.shared.eventstore import EventStore
from weibao.shared.fields import instant
from weibao.shared.money import as_text
from weibao.shared.public import dispatch as public

TICKET = domain.EVENTS
PUBLIC = public.CODEC

REPORTS: dict[str, type] = {"check_in": domain.CheckIn, "check_out": domain.CheckOut, "work": domain.LogWork,
                            "expense": domain.RecordExpense}


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
                                          _iso(event.device_time), event.distance_m, event.within_geofence)]
        case domain.VisitCompleted():
            return [public.VisitCompleted(opened.ticket_id, opened.customer_id, cover.agreement_id,
                                          event.technician_id, _iso(event.at), event.resolution, cover.verdict,
                                          cover.clauses)]
        case domain.WorkLogged():
            return [public.WorkLogged(opened.ticket_id, opened.customer_id, cover.agreement_id, event.technician_id,
                                      event.key, event.kind, _iso(event.started), _iso(event.ended), cover.verdict,
                                      cover.clauses)]
        case domain.ExpenseRecorded():
            return [public.ExpenseRecorded(opened.ticket_id, opened.customer_id, cover.agreement_id,
                                           event.technician_id, event.key, event.kind, as_text(event.amount),
                                           event.receipt_no, event.receipt_date, event.nights, event.note)]
        case dl.DeadlineAtRisk():
            return [public.SlaAtRisk(opened.ticket_id, event.kind, _iso(event.due), _iso(event.at))]
        case dl.DeadlineBreached():
            # rule C17: outside the vendor's liability there is no deadline, hence no penalty
            return [public.SlaBreached(opened.ticket_id, event.kind, _iso(event.due), _iso(event.at),
                                       cover.verdict == "covered")]
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

    @property
    def repository(self) -> Repository[domain.Ticket, domain.Event]:
        return Repository(self.store, TICKET, domain.evolve, domain.Ticket(), PUBLIC, translate)

    async def ticket(self, ticket_id: str, *, as_of: datetime | None = None) -> domain.Ticket:
        """The ticket now, or as it stood at `as_of` (the events recorded by then)."""
        # The log keeps UTC; SQLite compares the text, so the instant goes in as UTC too.
        state, _ = await self.repository.load(ticket_stream(ticket_id), as_of=as_of.astimezone(UTC) if as_of else None)
        require(state.status != "none", "not_found", "ticket_id",
                "no such ticket" if as_of is None else "no such ticket at that time")
        return state

    async def execute(self, ticket_id: str, command: domain.Command, **kw: Any) -> list[RecordedEvent]:
        return await self.repository.execute(
            ticket_stream(ticket_id), lambda state: domain.decide(command, state, geofence_radius_m=self.geofence_m),
            **kw)

    # -- requests --------------------------------------------------------------------

    async def open(self, data: Mapping[str, Any], **kw: Any) -> list[RecordedEvent]:
        """A request from any channel (C13), with the coverage contracts last published.
        `received_at` (a call taken on paper, entered later): deadlines and coverage count
        from it (D1), within the domain's limits."""
        where = await site(self.engine, self.book, str(data.get("site_id", "")))
        require(where is not None, "not_found", "site_id", "no such site (has contracts published it?)")
        assert where is not None
        now = self.now()
        received = instant(data, "received_at")
        opened_at = received.astimezone(UTC) if received is not None else now
        coverage = await self._coverage(where, opened_at)
        command = domain.OpenTicket(
            ticket_id=str(data.get("ticket_id", "")), customer_id=where.customer_id, site_id=where.site_id,
            site=domain.Position(where.latitude, where.longitude),
            channel=codec.parse(public.Channel, data.get("channel", "phone"), field="channel"),  # type: ignore[arg-type]
            summary=str(data.get("summary", "")), opened_at=opened_at, coverage=coverage,
            skill=str(data.get("skill", "software:general")), entered_at=now if received is not None else None,
        )
        require(bool(command.ticket_id), "missing", "ticket_id", "a ticket needs an id")
        return await self.execute(command.ticket_id, command, **kw)

    async def find_coverage(self, data: Mapping[str, Any], *, meta: Mapping[str, Any] | None = None,
                            **kw: Any) -> list[RecordedEvent]:
        """rules D1, C1: look again for the coverage of a request opened without an agreement
        (its coverage had not reached dispatch yet), as of when it came in; nothing is
        stored when there is still none."""
        state = await self.ticket(_id(data))
        opened = state.opened
        assert opened is not None
        where = await site(self.engine, self.book, opened.site_id)
        require(where is not None, "not_found", "site_id", "the request's site is no longer published")
        assert where is not None
        coverage = await self._coverage(where, opened.opened_at)
        by = str((meta or {}).get("actor", "system"))
        return await self.execute(opened.ticket_id, domain.FindCoverage(self.now(), coverage, by), meta=meta, **kw)

    async def _coverage(self, where: SiteView, received: datetime) -> domain.Coverage:
        """The coverage contracts last published for the site, on the day the request came in."""
        cover = await coverage_on(self.engine, self.book, where, received.astimezone(CHINA).date())
        return domain.Coverage(cover.agreement_id, cover.verdict, cover.clauses, cover.local,  # type: ignore[arg-type]
                               cover.onsite)

    async def tick(self, ticket_id: str, **kw: Any) -> list[RecordedEvent]:
        """Announce what the clock made true (D1): at risk, breached."""
        return await self.execute(ticket_id, domain.Tick(self.now()), **kw)

    async def wait(self, data: Mapping[str, Any], **kw: Any) -> list[RecordedEvent]:
        """rule D1: waiting on the customer pauses the clocks; their answer resumes them."""
        if data.get("until_customer_responds", True):
            command: domain.Command = domain.WaitForCustomer(self.now(), str(data.get("reason", "")))
        else:
            command = domain.CustomerResponded(self.now())
        return await self.execute(_id(data), command, **kw)

    async def triage(self, data: Mapping[str, Any], **kw: Any) -> list[RecordedEvent]:
        """rule D3: resolved remotely, or escalated to an on-site visit."""
        outcome = data.get("outcome")
        note = str(data.get("note", ""))
        command: domain.Command
        if outcome == "remote":
            command = domain.ResolveRemotely(self.now(), note)
        elif outcome == "escalate":
            command = domain.Escalate(self.now(), note)
        else:
            raise Rejected("invalid", "outcome", "remote or escalate")
        return await self.execute(_id(data), command, **kw)

    async def record_assignment(self, ticket_id: str, technician_id: str, *, explanation: Mapping[str, Any],
                                at_risk: bool, by: str, override_reason: str | None = None,
                                **kw: Any) -> list[RecordedEvent]:
        command = domain.RecordAssignment(technician_id, self.now(), explanation, at_risk, by, override_reason)
        return await self.execute(ticket_id, command, **kw)

    async def accept(self, data: Mapping[str, Any], **kw: Any) -> list[RecordedEvent]:
        return await self.execute(_id(data), domain.Accept(str(data.get("technician_id", "")), self.now()), **kw)

    async def decline(self, data: Mapping[str, Any], **kw: Any) -> list[RecordedEvent]:
        command = domain.Decline(str(data.get("technician_id", "")), self.now(), str(data.get("reason", "")))
        return await self.execute(_id(data), command, **kw)

    async def report(self, kind: str, data: Mapping[str, Any], **kw: Any) -> list[RecordedEvent]:
        """rule D5 and D6: a phone's report; the server's clock is stamped here."""
        fields = {k: v for k, v in data.items() if k not in ("ticket_id", "command_id")}
        fields["server_time"] = self.now().isoformat()
        command: Any = codec.parse(REPORTS[kind], fields)
        for name in ("device_time", "started", "ended"):
            value = getattr(command, name, None)
            require(value is None or value.tzinfo is not None, "invalid", name, "a time with its UTC offset")
        return await self.execute(_id(data), command, **kw)

    async def complete(self, data: Mapping[str, Any], **kw: Any) -> list[RecordedEvent]:
        command = domain.Complete(str(data.get("technician_id", "")), self.now(), str(data.get("resolution", "")))
        return await self.execute(_id(data), command, **kw)


def _id(data: Mapping[str, Any]) -> str:
    value = data.get("ticket_id")
    require(isinstance(value, str) and bool(value), "missing", "ticket_id", "which ticket")
    return str(value)
