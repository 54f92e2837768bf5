"""Today's plan: every open visit across the technicians, as routes with time windows.

Minutes count from midnight in the office's time zone. A visit's window closes at its
arrival deadline (D1), or at the end of the day without one; visits already under way
(checked in) stay with their technician, first in the route. Planning proposes; a
dispatcher still assigns, so nothing is stored here."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any

from sqlalchemy import select

from weibao.dispatch.adapters.technician_board import sort_out, technicians
from weibao.dispatch.adapters.ticket_board import TicketBoard
from weibao.dispatch.application.tickets import Tickets
from weibao.dispatch.domain.ticket import Ticket
from weibao.dispatch.planning.model import Plan, Technician, Visit, plannable
from weibao.dispatch.planning.solver import plan_day
from weibao.dispatch.planning.travel import TravelModel
from weibao.shared.clock import CHINA

# The visits a day's plan routes: waiting for a technician, on the way, or under way.
ROUTED = ("awaiting_assignment", "assigned", "accepted", "on_site")
VISIT_MINUTES = 90  # a visit's expected length when nothing better is known


def minutes(moment: datetime, midnight: datetime) -> int:
    return max(0, int((moment - midnight).total_seconds() // 60))


def visit_of(ticket: Ticket, now: datetime, midnight: datetime) -> Visit:
    assert ticket.opened is not None
    due = ticket.deadlines.arrive_by if ticket.deadlines else None
    latest = minutes(due, midnight) if due else 24 * 60 - VISIT_MINUTES
    under_way = ticket.status == "on_site"
    return Visit(ticket.opened.ticket_id, (ticket.opened.site.latitude, ticket.opened.site.longitude),
                 earliest=minutes(now, midnight), latest=max(latest, minutes(now, midnight)),
                 duration=VISIT_MINUTES, skill=ticket.opened.skill,
                 locked_to=ticket.technician_id if under_way else None)


@dataclass
class Planning:
    tickets: Tickets
    board: TicketBoard
    travel: TravelModel = field(default_factory=TravelModel)

    async def today(self, *, seconds: float = 5.0) -> dict[str, Any]:
        now = self.tickets.now()
        midnight = datetime.combine(now.astimezone(CHINA).date(), time(0), CHINA)
        board = self.board.table
        async with self.tickets.engine.connect() as conn:
            ids = [r.ticket_id for r in await conn.execute(select(board.c.ticket_id).where(board.c.status.in_(ROUTED)))]
        tickets = [await self.tickets.ticket(ticket_id) for ticket_id in ids]
        # The board may lag the log by a moment: what the log says now decides.
        visits = [visit_of(t, now, midnight) for t in tickets if t.status in ROUTED]
        rows, unusable = sort_out(await technicians(self.tickets.engine, self.tickets.board), purpose="plan")
        under_way = {v.locked_to for v in visits if v.locked_to is not None}
        # A retired technician is worth naming only while a visit is still under way with them.
        absent = {u.technician_id: u.reason for u in unusable if not u.retired or u.technician_id in under_way}
        crew = [
            Technician(row["technician_id"], (row["latitude"], row["longitude"]),
                       minutes(datetime.combine(midnight.date(), time.fromisoformat(row["shift"]["starts"]), CHINA),
                               midnight),
                       minutes(datetime.combine(midnight.date(), time.fromisoformat(row["shift"]["ends"]), CHINA),
                               midnight),
                       frozenset(row["skills"]), end=(row["home_latitude"], row["home_longitude"]))
            for row in rows
        ]
        # Whoever the solver cannot plan is named, never a reason to plan nobody.
        crew, visits, not_planned = plannable(crew, visits, absent=absent)
        # The solver is CPU-bound: off the event loop, so the service keeps answering.
        plan: Plan = await asyncio.to_thread(plan_day, crew, visits, self.travel, seconds=seconds)
        return {
            "day": midnight.date().isoformat(),
            "routes": {tech: [{"ticket_id": s.visit_id, "arrival": s.arrival, "late": s.late} for s in stops]
                       for tech, stops in plan.routes.items() if stops},
            "unassigned": plan.unassigned,
            "late": plan.late_visits,
            "total_travel_minutes": plan.total_travel_minutes,
            "not_planned": [{"technician_id": n.technician_id, "reason": n.reason, "visits": list(n.visits)}
                            for n in not_planned],
        }
