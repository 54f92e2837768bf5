"""Rule D4 in the service: who goes, why, and again after a decline.

The board read model says where everyone is and how loaded; the pure `assign` decides
and explains; the explanation is stored with the assignment, so an auditor sees the
candidates, their distances and arrival times, and why the winner won."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

import structlog

from weibao.dispatch.adapters.technician_board import sort_out, technicians
from weibao.dispatch.application.tickets import Tickets
from weibao.dispatch.domain import assignment as d4
from weibao.dispatch.domain import ticket as domain
from weibao.dispatch.domain.travel import TravelModel
from weibao.shared import codec
from weibao.shared.clock import CHINA
from weibao.shared.commands.dispatch import AssignTicket, DeclineVisit
from weibao.shared.errors import Rejected
from weibao.shared.events import RecordedEvent

log = structlog.get_logger("weibao.dispatch")


def view(row: Mapping[str, Any], now: datetime, deciding: str | None = None) -> d4.TechnicianView:
    """A board row as D4 sees it, today in the office's time zone. The visit being decided
    (`deciding`) is no load on whoever has it: asked again, D4 weighs its own assignee as
    it did the first time, so a re-sent assignment finds the same technician and stores
    nothing (issue 13), rather than passing the visit on for the load it is itself."""
    today = now.astimezone(CHINA).date()
    shift = row["shift"]
    starts = datetime.combine(today, time.fromisoformat(shift["starts"]), CHINA)
    ends = datetime.combine(today, time.fromisoformat(shift["ends"]), CHINA)
    on_leave = any(date.fromisoformat(first) <= today <= date.fromisoformat(last) for first, last in row["time_off"])
    return d4.TechnicianView(
        technician_id=row["technician_id"], skills=frozenset(row["skills"]),
        position=(row["latitude"], row["longitude"]), available_from=max(now, starts), shift_end=ends,
        capacity_left=max(row["capacity_per_day"] - len(set(row["open_visits"]) - {deciding}), 0),
        on_leave=on_leave,
    )


@dataclass
class Assigning:
    tickets: Tickets
    travel: TravelModel = field(default_factory=TravelModel)

    async def decide(self, ticket_id: str, ticket: domain.Ticket | None = None) -> tuple[domain.Ticket, d4.Assignment]:
        """D4 for the ticket (`ticket`: its state, when the caller has loaded it already)."""
        if ticket is None:
            ticket = await self.tickets.ticket(ticket_id)
        assert ticket.opened is not None
        now = self.tickets.now()
        # One bad record costs only itself: it is named in the explanation, not raised.
        rows, unusable = sort_out(await technicians(self.tickets.engine, self.tickets.board),
                                  purpose=f"assignment of {ticket_id}")
        arrive_by = ticket.deadlines.arrive_by if ticket.deadlines else None
        need = d4.Need(ticket_id, (ticket.opened.site.latitude, ticket.opened.site.longitude), ticket.opened.skill,
                       arrive_by)
        board = [view(row, now, ticket_id) for row in rows]
        left_out = [d4.Excluded(u.technician_id, u.reason) for u in unusable]
        return ticket, d4.assign(need, board, now=now, travel=self.travel, exclude=ticket.declined_by,
                                 unweighed=left_out)

    async def assign(self, body: AssignTicket, *, command_id: str | None = None,
                     meta: Mapping[str, Any] | None = None) -> list[RecordedEvent]:
        """By rule D4, or the dispatcher's choice with a reason (kept beside the rule's)."""
        ticket_id = body.ticket_id
        if command_id is not None and (done := await self.tickets.store.command_result(command_id, meta)) is not None:
            return list(done.events)
        by = str((meta or {}).get("actor", "system"))
        chosen = body.technician_id
        ticket = await self.tickets.ticket(ticket_id)
        if chosen and chosen == ticket.technician_id and ticket.assignment is not None:
            # issue 13: naming the technician who has the visit asks for what already
            # holds. Not weighed again: a board changed since (D4 now preferring someone
            # else, the technician retired with the visit still theirs) must not turn it
            # into an override wanting a reason. The domain stores nothing, or refuses a
            # completed visit as before.
            held = ticket.assignment
            return await self.tickets.record_assignment(ticket_id, chosen, explanation=held.explanation,
                                                         at_risk=held.at_risk, by=by,
                                                         override_reason=held.override_reason,
                                                         command_id=command_id, meta=meta)
        _, decision = await self.decide(ticket_id, ticket)
        reason = None
        left_out = {e.technician_id: e.reason for e in decision.explanation.excluded}
        if chosen and chosen in left_out:  # retired, or a record the rule cannot weigh: say which
            raise Rejected("unavailable", "technician_id", f"{chosen} cannot be assigned: {left_out[chosen]}",
                           reason="assignment.technician_unavailable")
        if chosen and chosen != decision.technician_id:  # naming the rule's own choice is no override
            reason = body.reason or ""  # d4.override refuses an empty one, naming `reason`
            decision = d4.override(decision, chosen, reason, by)
        if decision.technician_id is None:
            raise Rejected("nobody_available", "ticket_id", decision.explanation.reason)
        explanation = {**codec.dump(decision.explanation), "overrides": codec.dump(decision.overrides)}
        return await self.tickets.record_assignment(ticket_id, decision.technician_id, explanation=explanation,
                                                     at_risk=decision.at_risk, by=by, override_reason=reason,
                                                     command_id=command_id, meta=meta)

    async def decline(self, body: DeclineVisit, *, command_id: str | None = None,
                      meta: Mapping[str, Any] | None = None) -> list[RecordedEvent]:
        """A decline (or no-show) dispatches again, to someone else (D4)."""
        events = await self.tickets.decline(body, command_id=command_id, meta=meta)
        # Nobody else now: the visit waits for a dispatcher, and the board shows it; the
        # log says why, so a re-dispatch that could not happen is not a silent one.
        try:
            events += await self.assign(AssignTicket(ticket_id=body.ticket_id), meta=meta)
        except Rejected as error:
            log.info("redispatch.waits", ticket_id=body.ticket_id, reason=str(error))
        return events
