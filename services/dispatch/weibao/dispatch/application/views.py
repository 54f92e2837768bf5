"""What `weibao.dispatch.ticket` answers: a ticket's state as plain JSON data.

The state itself does not serialise (its deadlines carry their calendar's time zone
object), and a reply should not expose the idempotency keys of phone reports; this
view says what a dispatcher reads, the clocks' standing at the instant asked about
included (D1)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from weibao.dispatch.domain import deadlines as dl
from weibao.dispatch.domain.ticket import (
    CheckedIn,
    CheckedOut,
    ExpenseRecorded,
    Ticket,
    VisitAccepted,
    VisitCompleted,
    WorkLogged,
    allowed,
)
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
        # rule D5: each phone record with the time that counts, its clock and both times ("time")
        "work": [{**codec.dump(work), "time": reported_time(work)} for work in state.work],
        "expenses": [{**codec.dump(expense), "time": reported_time(expense)} for expense in state.expenses],
        # issue 13: phone and remote work from the desk, and the first response (C15)
        "desk_work": [codec.dump(work) for work in state.desk_work],
        "responded_at": state.responded_at.isoformat() if state.responded_at else None,
        # rule D5: each status time with its source (device or server), both times, the upload
        # delay and, when the phone's time was out of bounds, why (null: not reached yet)
        "times": {name: reported_time(event) if event is not None else None for name, event in (
            ("accepted", state.acceptance), ("checked_in", state.first_check_in), ("checked_out", state.check_out),
            ("completed", state.completion))},
        "deadlines": deadline_view(state.deadlines, at) if state.deadlines is not None else None,
        "at": at.isoformat(),
    }


def reported_time(event: VisitAccepted | CheckedIn | CheckedOut | WorkLogged | ExpenseRecorded | VisitCompleted
                  ) -> dict[str, Any]:
    """rule D5: when a phone's action counts (`at`), by which clock (`source`), both times,
    how long the upload took (`upload_delay_s`, server minus device: negative for a device
    time in the future) and why the phone's time was not believed (`flagged_reason`:
    "future", "before_assignment", or null). Times as ISO text, as the event keeps them."""
    server = event.at if isinstance(event, VisitAccepted | VisitCompleted) else event.server_time
    device = event.device_time
    return {
        "at": event.counted_at.isoformat(),
        "source": event.time_source,
        "device_time": device.isoformat() if device is not None else None,
        "server_time": server.isoformat(),
        "upload_delay_s": (server - device).total_seconds() if device is not None else None,
        "flagged_reason": event.time_flag,
    }


def deadline_view(deadlines: dl.Deadlines, at: datetime) -> dict[str, Any]:
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


# A preview lists the days it counted; past this many, the rest is left to the due times.
MAX_DAYS_SHOWN = 62


def counted_days(deadlines: dl.Deadlines) -> list[dict[str, Any]]:
    """Issue 13, the deadline preview: each day from the request to its last due time on
    the working calendar (D2), whether the official calendar makes it a working day, its
    service window (C20) and the service time it counted. Nothing on the clock calendar,
    where every hour counts."""
    timeline = deadlines.timeline
    if timeline.calendar != "working" or not deadlines.clocks:
        return []
    start = deadlines.requested_at.astimezone(timeline.tz)
    last = max(clock.due for clock in deadlines.clocks).astimezone(timeline.tz)
    days: list[dict[str, Any]] = []
    day = start.date()
    while day <= last.date() and len(days) < MAX_DAYS_SHOWN:
        window = timeline.business.window(day)
        counted = timeline.between(max(start, window[0]), min(last, window[1])) if window else None
        days.append({
            "date": day.isoformat(),
            "working_day": window is not None,
            "opens": window[0].isoformat() if window else None,
            "closes": window[1].isoformat() if window else None,
            "counted_seconds": counted.total_seconds() if counted is not None else 0.0,
        })
        day += timedelta(days=1)
    return days
