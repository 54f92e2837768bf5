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


def view(row: Mapping[str, Any], now: datetime) -> d4.TechnicianView:
    """A board row as D4 sees it, today in the office's time zone."""
    today = now.astimezone(CHINA).date()
    shift = row["shift"]
    starts = datetime.combine(today, time.fromisoformat(shift["starts"]), CHINA)
    ends = datetime.combine(today, time.fromisoformat(shift["ends"]), CHINA)
    on_leave = any(date.fromisoformat(first) <= today <= date.fromisoformat(last) for first, last in row["time_off"])
    return d4.TechnicianView(
        technician_id=row["technician_id"], skills=frozenset(row["skills"]),
        position=(row["latitude"], row["longitude"]), available_from=max(now, starts), shift_end=ends,
        capacity_left=max(row["capacity_per_day"] - len(row["open_visits"]), 0), on_leave=on_leave,
    )


@dataclass
class Assigning:
    tickets: Tickets
    travel: TravelModel = field(default_factory=TravelModel)

    async def decide(self, ticket_id: str) -> tuple[domain.Ticket, d4.Assignment]:
        ticket = await self.tickets.ticket(ticket_id)
        assert ticket.opened is not None
        now = self.tickets.now()
        # One bad record costs only itself: it is named in the explanation, not raised.
        rows, unusable = sort_out(await technicians(self.tickets.engine, self.tickets.board),
                                  purpose=f"assignment of {ticket_id}")
        arrive_by = ticket.deadlines.arrive_by if ticket.deadlines else None
        need = d4.Need(ticket_id, (ticket.opened.site.latitude, ticket.opened.site.longitude), ticket.opened.skill,
                       arrive_by)
        board = [view(row, now) for row in rows]
        left_out = [d4.Excluded(u.technician_id, u.reason) for u in unusable]
        return ticket, d4.assign(need, board, now=now, travel=self.travel, exclude=ticket.declined_by,
                                 unweighed=left_out)

    async def assign(self, body: AssignTicket, *, command_id: str | None = None,
                     meta: Mapping[str, Any] | None = None) -> list[RecordedEvent]:
        """By rule D4, or the dispatcher's choice with a reason (kept beside the rule's)."""
        ticket_id = body.ticket_id
        if command_id is not None and (done := await self.tickets.store.command_result(command_id, meta)) is not None:
            return list(done.events)
        _, decision = await self.decide(ticket_id)
        by = str((meta or {}).get("actor", "system"))
        chosen = body.technician_id
        reason = None
        left_out = {e.technician_id: e.reason for e in decision.explanation.excluded}
        if chosen and chosen in left_out:  # retired, or a record the rule cannot weigh: say which
            raise Rejected("unavailable", "technician_id", f"{chosen} cannot be assigned: {left_out[chosen]}")
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
