"""Device time that holds up (issue 13, item 4; rule D5). A phone's action carries the
phone's time (the server's at its last sync plus its monotonic clock since); it counts
for the deadlines when it is plausible: not after the upload reached the server, not
before the visit was assigned to the technician. Otherwise the server's time counts and
the action is recorded and flagged, never refused. Both times are kept, with the clock
that counted and the reason of a flag; decide counts, evolve folds what was stored.
Given events, when a command, then events."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from tests.decider import Decider, Given
from weibao.dispatch.application.views import ticket_view
from weibao.dispatch.domain.deadlines import DeadlineBreached, DeadlineMet
from weibao.dispatch.domain.ticket import (
    EVENTS,
    Accept,
    CheckedIn,
    CheckedOut,
    CheckIn,
    CheckOut,
    Command,
    Complete,
    Counted,
    Coverage,
    Escalate,
    Event,
    ExpenseRecorded,
    LogWork,
    OpenTicket,
    Position,
    RecordAssignment,
    RecordExpense,
    Tick,
    Ticket,
    VisitAccepted,
    VisitCompleted,
    WorkLogged,
    counted_time,
    decide,
    evolve,
)

BEIJING = ZoneInfo("Asia/Shanghai")
# The user's report: a request at 22:03, on site within 8 hours (C9), so due at 06:03;
# checked in offline at 02:33 by the phone, uploaded at 08:33.
OPENED = datetime(2026, 6, 1, 22, 3, tzinfo=BEIJING)
ASSIGNED = OPENED + timedelta(minutes=10)
DUE = datetime(2026, 6, 2, 6, 3, tzinfo=BEIJING)
ACTED = datetime(2026, 6, 2, 2, 33, tzinfo=BEIJING)
UPLOADED = datetime(2026, 6, 2, 8, 33, tzinfo=BEIJING)

SITE = Position(31.8206, 117.2272)
NEAR = Position(31.8226, 117.2272)  # about 220 m north
C9 = Coverage("a-1", "covered", ("C1", "C9"), True,
              {"kind": "local_or_out_of_town", "local_hours": 8, "out_of_town_days": 2})
C15 = Coverage("a-4", "covered", ("C1", "C15"), True,
               {"kind": "respond_resolve", "respond_hours": 24, "resolve_hours": 24})

TICKET = Decider(decide=decide, evolve=evolve, initial=Ticket())
History = Given[Command, Event, Ticket]


def assigned(coverage: Coverage = C9) -> History:
    return TICKET.after(OpenTicket("t-1", "c-1", "s-1", SITE, "phone", "收银系统数据库连接失败", OPENED, coverage),
                        Escalate(OPENED, "phone guidance failed"),
                        RecordAssignment("tech-1", ASSIGNED, {"winner": "tech-1"}, False, "dispatcher:li"))


def check_in(device: datetime, uploaded: datetime = UPLOADED, key: str = "in-1") -> CheckIn:
    return CheckIn(technician_id="tech-1", key=key, server_time=uploaded, device_time=device, position=NEAR,
                   accuracy_m=20.0)


def arrival(state: Ticket) -> tuple[datetime | None, bool | None]:
    assert state.deadlines is not None
    clock = state.deadlines.clock("arrive")
    assert clock is not None
    return clock.stopped_at, clock.met


# -- the rule itself ---------------------------------------------------------------------


def test_d5_the_device_time_counts_within_the_assignment_and_the_upload_both_included() -> None:
    assert counted_time(ACTED, UPLOADED, ASSIGNED) == Counted(ACTED, "device")
    assert counted_time(ASSIGNED, UPLOADED, ASSIGNED) == Counted(ASSIGNED, "device")
    assert counted_time(UPLOADED, UPLOADED, ASSIGNED) == Counted(UPLOADED, "device")


def test_d5_out_of_bounds_the_server_time_counts_with_the_reason() -> None:
    ahead = UPLOADED + timedelta(seconds=1)
    assert counted_time(ahead, UPLOADED, ASSIGNED) == Counted(UPLOADED, "server", "future")
    early = ASSIGNED - timedelta(seconds=1)
    assert counted_time(early, UPLOADED, ASSIGNED) == Counted(UPLOADED, "server", "before_assignment")
    # a dispatcher's console acting for the technician sends no device time: not a flag
    assert counted_time(None, UPLOADED, ASSIGNED) == Counted(UPLOADED, "server")


# -- check-ins ----------------------------------------------------------------------------


def test_d5_an_offline_check_in_before_the_deadline_uploaded_after_it_is_met() -> None:
    history = assigned()
    assert history.state.deadlines is not None and history.state.deadlines.arrive_by == DUE
    checked_in, met = history.when(check_in(ACTED)).events
    assert isinstance(checked_in, CheckedIn) and checked_in.within_geofence
    assert (checked_in.device_time, checked_in.server_time) == (ACTED, UPLOADED)  # both kept
    assert (checked_in.time_source, checked_in.time_flag, checked_in.counted_at) == ("device", None, ACTED)
    assert met == DeadlineMet("arrive", DUE, ACTED)
    state = history.given(checked_in, met).state
    assert arrival(state) == (ACTED, True) and state.first_check_in == checked_in


def test_d5_a_breach_announced_before_the_upload_is_corrected_to_met_once() -> None:
    breached = assigned().after(Tick(DUE + timedelta(minutes=30)))
    assert any(isinstance(e, DeadlineBreached) for e in assigned().when(Tick(DUE + timedelta(minutes=30))).events)
    checked_in, met = breached.when(check_in(ACTED)).events
    assert isinstance(checked_in, CheckedIn) and met == DeadlineMet("arrive", DUE, ACTED)
    after = breached.given(checked_in, met)
    after.when(check_in(ACTED)).then()  # the same upload again (D5: one effect)
    after.when(Tick(UPLOADED + timedelta(hours=1))).then()  # met announced once, nothing later
    # a later check-in, by device time, does not move the stop
    after.when(check_in(ACTED + timedelta(hours=1), key="in-2")).then(
        CheckedIn("tech-1", "in-2", UPLOADED, ACTED + timedelta(hours=1), NEAR, 20.0, checked_in.distance_m, True,
                  "device"))


def test_d5_a_device_time_in_the_future_is_flagged_and_judged_by_server_time() -> None:
    forged = UPLOADED + timedelta(hours=1)
    checked_in, breached = assigned().when(check_in(forged)).events
    assert isinstance(checked_in, CheckedIn)
    assert (checked_in.device_time, checked_in.time_source, checked_in.time_flag) == (forged, "server", "future")
    assert checked_in.counted_at == UPLOADED and checked_in.within_geofence  # recorded, not refused
    assert isinstance(breached, DeadlineBreached) and breached.kind == "arrive"
    assert arrival(assigned().given(checked_in, breached).state) == (UPLOADED, False)


def test_d5_a_device_time_before_the_assignment_is_flagged_and_judged_by_server_time() -> None:
    forged = ASSIGNED - timedelta(minutes=1)  # before the visit could have reached the phone
    checked_in, breached = assigned().when(check_in(forged)).events
    assert isinstance(checked_in, CheckedIn)
    assert (checked_in.time_source, checked_in.time_flag, checked_in.counted_at) == (
        "server", "before_assignment", UPLOADED)
    assert isinstance(breached, DeadlineBreached)
    assert arrival(assigned().given(checked_in, breached).state) == (UPLOADED, False)


def test_d5_a_late_upload_of_an_earlier_check_in_comes_first_by_the_time_that_counts() -> None:
    later = check_in(ACTED + timedelta(hours=1), uploaded=ACTED + timedelta(hours=1), key="in-later")
    history = assigned().after(later)
    earlier = history.after(check_in(ACTED, key="in-earlier"))
    assert earlier.state.first_check_in is not None and earlier.state.first_check_in.key == "in-earlier"
    assert arrival(earlier.state) == (ACTED, True)
    # a forged early time counts at its upload: it does not displace the check-in before it
    forged = history.after(check_in(ASSIGNED - timedelta(hours=1), key="in-forged"))
    assert forged.state.first_check_in is not None and forged.state.first_check_in.key == "in-later"


def test_d5_check_outs_work_and_expenses_keep_both_times_and_any_flag() -> None:
    on_site = assigned().after(check_in(ACTED))
    out = CheckOut(technician_id="tech-1", key="out-1", server_time=UPLOADED, device_time=ACTED + timedelta(hours=2),
                   position=NEAR, accuracy_m=10.0)
    work = LogWork(technician_id="tech-1", key="work-1", server_time=UPLOADED, device_time=ACTED, kind="hardware",
                   started=ACTED, ended=ACTED + timedelta(hours=2))
    meal = RecordExpense(technician_id="tech-1", key="meal-1", server_time=UPLOADED,
                         device_time=UPLOADED + timedelta(days=1), kind="meals", amount=Decimal("45.50"))
    (checked_out,) = on_site.when(out).events
    (logged,) = on_site.when(work).events
    (spent,) = on_site.when(meal).events
    assert isinstance(checked_out, CheckedOut) and (checked_out.time_source, checked_out.time_flag) == ("device", None)
    assert isinstance(logged, WorkLogged) and (logged.device_time, logged.time_source) == (ACTED, "device")
    assert isinstance(spent, ExpenseRecorded) and (spent.time_source, spent.time_flag) == ("server", "future")
    state = on_site.given(checked_out, logged, spent).state
    view = ticket_view(state, UPLOADED)
    assert view["times"]["checked_out"]["at"] == (ACTED + timedelta(hours=2)).isoformat()
    assert [w["time"]["source"] for w in view["work"]] == ["device"]
    assert [(e["time"]["source"], e["time"]["flagged_reason"]) for e in view["expenses"]] == [("server", "future")]


# -- acceptance and completion ---------------------------------------------------------------


def test_d5_c15_an_acceptance_counts_at_the_phone_s_time() -> None:
    tapped = ASSIGNED + timedelta(minutes=5)
    accepted, met = assigned(C15).when(Accept("tech-1", UPLOADED, tapped)).events
    assert accepted == VisitAccepted("tech-1", UPLOADED, tapped, "device", None)
    assert isinstance(met, DeadlineMet) and (met.kind, met.at) == ("respond", tapped)
    state = assigned(C15).given(accepted, met).state
    assert state.responded_at == tapped and state.acceptance == accepted


def test_d5_an_acceptance_from_the_console_or_out_of_bounds_counts_at_the_server_s_time() -> None:
    console, _ = assigned(C15).when(Accept("tech-1", UPLOADED)).events
    assert console == VisitAccepted("tech-1", UPLOADED)  # as before: no device time, the server's counts
    assert (console.time_source, console.time_flag) == ("server", None)
    early, _ = assigned(C15).when(Accept("tech-1", UPLOADED, ASSIGNED - timedelta(minutes=1))).events
    assert isinstance(early, VisitAccepted) and (early.time_source, early.time_flag) == ("server", "before_assignment")
    assert early.counted_at == UPLOADED


def test_d5_c15_a_completion_counts_at_the_phone_s_time() -> None:
    on_site = assigned(C15).after(check_in(ACTED))
    done_at = ACTED + timedelta(hours=3)
    completed, *announced = on_site.when(Complete("tech-1", UPLOADED, "重装数据库驱动", done_at)).events
    assert completed == VisitCompleted("tech-1", UPLOADED, "重装数据库驱动", done_at, "device", None)
    assert DeadlineMet("resolve", OPENED + timedelta(hours=24), done_at) in announced
    state = on_site.given(completed, *announced).state
    assert state.completed_at == done_at and state.completion == completed
    times = ticket_view(state, UPLOADED)["times"]
    assert times["completed"] == {"at": done_at.isoformat(), "source": "device", "device_time": done_at.isoformat(),
                                  "server_time": UPLOADED.isoformat(), "upload_delay_s": 3 * 3600.0,
                                  "flagged_reason": None}
    assert times["checked_in"]["upload_delay_s"] == 6 * 3600.0  # 02:33 acted, 08:33 uploaded


def test_d5_a_completion_with_a_future_device_time_is_flagged() -> None:
    on_site = assigned(C15).after(check_in(ACTED))
    completed, *_ = on_site.when(Complete("tech-1", UPLOADED, "重装", UPLOADED + timedelta(hours=2))).events
    assert isinstance(completed, VisitCompleted)
    assert (completed.time_source, completed.time_flag, completed.counted_at) == ("server", "future", UPLOADED)


# -- logs written before --------------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    """An event as a log holds it: its type and data (what the codec reads)."""

    type: str
    data: Mapping[str, Any]


def test_d5_old_events_without_the_new_fields_decode_and_fold_as_before() -> None:
    """Before device time counted, a check-in stopped the clock at the server's time, and
    acceptances and completions carried only it: old logs read so, unchanged."""
    site = {"latitude": NEAR.latitude, "longitude": NEAR.longitude}
    old: list[tuple[str, dict[str, Any]]] = [
        ("private.VisitAccepted", {"technician_id": "tech-1", "at": UPLOADED.isoformat()}),
        ("private.CheckedIn", {"technician_id": "tech-1", "key": "in-old", "server_time": UPLOADED.isoformat(),
                               "device_time": ACTED.isoformat(), "position": site, "accuracy_m": 20.0,
                               "distance_m": 221.8, "within_geofence": True}),
        ("private.CheckedOut", {"technician_id": "tech-1", "key": "out-old", "server_time": UPLOADED.isoformat(),
                                "device_time": ACTED.isoformat(), "position": site, "accuracy_m": 20.0,
                                "distance_m": 221.8}),
        ("private.WorkLogged", {"technician_id": "tech-1", "key": "work-old", "kind": "hardware",
                                "started": ACTED.isoformat(), "ended": UPLOADED.isoformat(),
                                "server_time": UPLOADED.isoformat()}),
        ("private.ExpenseRecorded", {"technician_id": "tech-1", "key": "meal-old", "kind": "meals", "amount": "45.50",
                                     "receipt_no": "", "receipt_date": "", "nights": None, "note": "",
                                     "server_time": UPLOADED.isoformat()}),
        ("private.VisitCompleted", {"technician_id": "tech-1", "at": UPLOADED.isoformat(), "resolution": "修复"}),
    ]
    events = [EVENTS.decode(Stored(type_, data)) for type_, data in old]
    assert all(e.time_source == "server" and e.time_flag is None for e in events)
    assert all(e.counted_at == UPLOADED for e in events)  # the check-in's device time was audit only
    state = assigned().given(*events).state
    assert arrival(state) == (UPLOADED, False)  # judged by the server's time, as it was then
    assert state.responded_at == UPLOADED and state.completed_at == UPLOADED
    times = ticket_view(state, UPLOADED)["times"]
    assert times["accepted"]["device_time"] is None and times["accepted"]["upload_delay_s"] is None
    assert times["checked_in"]["source"] == "server" and times["checked_in"]["upload_delay_s"] == 6 * 3600.0
