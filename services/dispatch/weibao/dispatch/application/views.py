"""What `weibao.dispatch.ticket` answers: a ticket's state as plain JSON data.

The state itself does not serialise (its deadlines carry their calendar's time zone
object), and a reply should not expose the idempotency keys of phone reports; this
view says what a dispatcher reads, the clocks' standing at the instant asked about
included (D1)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from weibao.dispatch.domain import deadlines as dl
from weibao.dispatch.domain.ticket import Ticket, allowed
from weibao.shared import codec


def ticket_view(state: Ticket, at: datetime) -> dict[str, Any]:
    """`at`: the instant the clocks' statuses are read at (now, or the `as_of` asked)."""
    return {
        "status": state.status,
        # What may be asked of it next (the domain's state machine): the screens offer only these.
        "actions": sorted(allowed(state)),
        "opened": codec.dump(state.opened) if state.opened is not None else None,
        "technician_id": state.technician_id,
        # rule D4: the latest assignment and why (candidates, travel, deadline, override), as recorded
        "assignment": codec.dump(state.assignment) if state.assignment is not None else None,
        "declined_by": sorted(state.declined_by),
        "first_check_in": codec.dump(state.first_check_in) if state.first_check_in is not None else None,
        "flagged_check_ins": state.flagged_check_ins,
        "work": [codec.dump(work) for work in state.work],
        "expenses": [codec.dump(expense) for expense in state.expenses],
        "deadlines": _deadlines(state.deadlines, at) if state.deadlines is not None else None,
        "at": at.isoformat(),
    }


def _deadlines(deadlines: dl.Deadlines, at: datetime) -> dict[str, Any]:
    timeline = deadlines.timeline
    hours = timeline.service_hours
    return {
        "requested_at": deadlines.requested_at.isoformat(),
        "calendar": timeline.calendar,  # rule D2
        "provisional_years": sorted(deadlines.provisional),  # D2: counted on the regular week, calendar unknown
        "service_hours": [t.isoformat(timespec="minutes") for t in hours] if hours else None,  # rule C20
        "paused_at": deadlines.paused_at.isoformat() if deadlines.paused_at else None,
        "paused_total_seconds": deadlines.paused_total.total_seconds(),
        "status": deadlines.status(at),
        "clocks": [{
            "kind": clock.kind,
            "allowed_seconds": clock.allowed.total_seconds(),
            "due": clock.due.isoformat(),
            "risk_from": clock.risk_from.isoformat(),
            "stopped_at": clock.stopped_at.isoformat() if clock.stopped_at else None,
            "met": clock.met,
            "status": clock.status(deadlines.frozen_at(at)),
            "announced": sorted(clock.announced),
        } for clock in deadlines.clocks],
    }
