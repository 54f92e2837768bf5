"""Requests, triage, visits and phone reports. Given events, when a command, then events."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from tests.decider import Decider, Given
from weibao.dispatch.application.views import ticket_view
from weibao.dispatch.domain.deadlines import (
    DeadlineAtRisk,
    DeadlineBreached,
    DeadlineMet,
    YearSchedule,
    publish,
    withdraw,
)
from weibao.dispatch.domain.ticket import (
    Accept,
    CheckedIn,
    CheckIn,
    CheckOut,
    Command,
    Complete,
    Coverage,
    CoverageFound,
    CustomerResponded,
    Decline,
    Escalate,
    Event,
    ExpenseRecorded,
    FindCoverage,
    LogWork,
    OpenTicket,
    Position,
    RecordAssignment,
    RecordExpense,
    ResolveRemotely,
    Tick,
    Ticket,
    TicketOpened,
    VisitRequested,
    WaitForCustomer,
    WorkLogged,
    decide,
    evolve,
)

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
SITE = Position(31.8206, 117.2272)
NEAR = Position(31.8226, 117.2272)  # about 220 m north
FAR = Position(31.9206, 117.2272)  # about 11 km north


TICKET = Decider(decide=decide, evolve=evolve, initial=Ticket())
History = Given[Command, Event, Ticket]


def opened() -> History:
    coverage = Coverage("a-1", "covered", ("C1", "C9"), True,
                        {"kind": "local_or_out_of_town", "local_hours": 8, "out_of_town_days": 2})
    return TICKET.after(OpenTicket("t-1", "c-1", "s-1", SITE, "phone", "开票模块报错", T0, coverage))


def assigned(technician: str = "tech-1") -> History:
    return opened().after(Escalate(T0, "phone guidance failed"),
                          RecordAssignment(technician, T0, {"winner": technician}, False, "dispatcher:li"))


def check_in(key: str, where: Position = NEAR, *, at: datetime = T0, device: datetime | None = None,
             technician: str = "tech-1") -> CheckIn:
    return CheckIn(technician_id=technician, key=key, server_time=at, device_time=device or at,
                   position=where, accuracy_m=20.0)


def test_d3_triage_resolves_remotely_or_escalates() -> None:
    assert opened().after(ResolveRemotely(T0, "guided by phone")).state.status == "resolved"
    (event,) = opened().when(Escalate(T0, "needs hands")).events
    assert isinstance(event, VisitRequested)
    opened().after(ResolveRemotely(T0, "done")).when(Escalate(T0, "again")).then_rejected()


def test_d5_a_check_in_near_the_site_is_accepted() -> None:
    event, *_ = assigned().when(check_in("k1")).events
    assert isinstance(event, CheckedIn) and event.within_geofence
    assert 150 < event.distance_m < 300
    state = assigned().given(event).state
    assert state.status == "on_site" and state.first_check_in == event


def test_d1_d5_a_check_in_in_time_meets_the_arrival_deadline() -> None:
    state = assigned().state
    assert state.deadlines is not None and state.deadlines.arrive_by == T0 + timedelta(hours=8)  # C9: 8 hours
    events = assigned().when(check_in("k1", at=T0 + timedelta(hours=3))).events
    met = [e for e in events if isinstance(e, DeadlineMet)]
    assert [e.kind for e in met] == ["arrive"]


def test_d1_at_risk_then_breached_each_announced_once() -> None:
    risky = assigned().when(Tick(T0 + timedelta(hours=7))).events
    assert [type(e) for e in risky] == [DeadlineAtRisk]
    at_risk = assigned().after(Tick(T0 + timedelta(hours=7)))
    at_risk.when(Tick(T0 + timedelta(hours=7, minutes=30))).then()
    late = at_risk.when(Tick(T0 + timedelta(hours=9))).events
    assert [type(e) for e in late] == [DeadlineBreached]
    at_risk.after(Tick(T0 + timedelta(hours=9))).when(Tick(T0 + timedelta(hours=10))).then()


def test_c17_no_deadline_for_work_outside_coverage() -> None:
    coverage = Coverage("a-1", "billable", ("C17",), True, {"kind": "local_or_out_of_town", "local_hours": 8,
                                                            "out_of_town_days": 2})
    state = TICKET.after(OpenTicket("t-2", "c-1", "s-1", SITE, "phone", "线路故障", T0, coverage)).state
    assert state.deadlines is None


def test_d5_a_check_in_far_away_is_recorded_and_flagged_not_lost() -> None:
    (event,) = assigned().when(check_in("k1", FAR)).events
    assert isinstance(event, CheckedIn) and not event.within_geofence
    state = assigned().given(event).state
    assert state.flagged_check_ins == 1 and state.first_check_in is None and state.status == "assigned"


def test_d5_duplicates_and_late_uploads_have_one_effect() -> None:
    checked_in = assigned().after(check_in("k1"))
    checked_in.when(check_in("k1")).then()  # the same upload again
    late = check_in("k0", at=T0 + timedelta(hours=5), device=T0 - timedelta(hours=1))
    reported = checked_in.after(late)
    state = reported.state
    assert state.first_check_in is not None and state.first_check_in.key == "k1"  # server time decides
    reported.when(late).then()


def test_d5_a_check_out_may_arrive_before_its_check_in() -> None:
    out = CheckOut(technician_id="tech-1", key="o1", server_time=T0, device_time=T0, position=NEAR, accuracy_m=5)
    state = assigned().after(out, check_in("k1")).state
    assert state.first_check_in is not None


def test_only_the_assigned_technician_checks_in() -> None:
    assigned().when(check_in("k1", technician="tech-2")).then_rejected("forbidden", "technician_id")


def test_coordinates_out_of_range_are_refused_by_field() -> None:
    assigned().when(check_in("k1", Position(91.0, 117.0))).then_rejected(field="latitude")


def test_d5_a_device_time_in_the_future_is_flagged_and_judged_by_server_time_not_refused() -> None:
    event, *_ = assigned().when(check_in("k1", device=T0 + timedelta(hours=2))).events
    assert isinstance(event, CheckedIn) and (event.time_source, event.time_flag) == ("server", "future")


def test_an_unknown_visit_is_not_found() -> None:
    TICKET.given().when(check_in("k1")).then_rejected("not_found")


def test_d4_a_decline_sends_the_visit_back_and_bars_that_technician() -> None:
    declined = assigned().after(Decline("tech-1", T0, "sick"))
    assert declined.state.status == "awaiting_assignment" and "tech-1" in declined.state.declined_by
    declined.when(RecordAssignment("tech-1", T0, {}, False, "auto")).then_rejected()
    state = declined.after(RecordAssignment("tech-2", T0, {}, False, "auto"), Accept("tech-2", T0)).state
    assert state.status == "accepted"


def test_d6_work_time_and_expenses_with_receipts() -> None:
    on_site = assigned().after(check_in("k1"))
    work = LogWork(technician_id="tech-1", key="w1", server_time=T0, device_time=T0, kind="hardware",
                   started=T0, ended=T0 + timedelta(hours=9))
    hotel = RecordExpense(technician_id="tech-1", key="e1", server_time=T0, device_time=T0, kind="lodging",
                          amount=Decimal("268.00"), receipt_no="FP-001", receipt_date="2026-06-01", nights=1)
    (logged,) = on_site.when(work).events
    (spent,) = on_site.when(hotel).events
    assert isinstance(logged, WorkLogged) and logged.kind == "hardware"
    assert isinstance(spent, ExpenseRecorded) and spent.amount == Decimal("268.00")
    no_nights = RecordExpense(technician_id="tech-1", key="e2", server_time=T0, device_time=T0, kind="lodging",
                              amount=Decimal("100"))
    on_site.when(no_nights).then_rejected(field="nights")
    fen = RecordExpense(technician_id="tech-1", key="e3", server_time=T0, device_time=T0, kind="meals",
                        amount=Decimal("10.005"))
    on_site.when(fen).then_rejected(field="amount")
    backwards = LogWork(technician_id="tech-1", key="w2", server_time=T0, device_time=T0, kind="network",
                        started=T0, ended=T0 - timedelta(hours=1))
    on_site.when(backwards).then_rejected()


def test_a_visit_completes_after_a_check_in() -> None:
    assigned().when(Complete("tech-1", T0, "fixed")).then_rejected()
    state = assigned().after(check_in("k1"), Complete("tech-1", T0, "fixed")).state
    assert state.status == "completed"


def test_d1_waiting_on_the_customer_pauses_the_clocks() -> None:
    responded = assigned().after(WaitForCustomer(T0 + timedelta(hours=1), "customer away"),
                                 CustomerResponded(T0 + timedelta(hours=3)))
    state = responded.state
    assert state.deadlines is not None
    assert state.deadlines.arrive_by == T0 + timedelta(hours=10)  # 8 hours plus the 2 waited
    responded.when(CustomerResponded(T0 + timedelta(hours=4))).then_rejected()  # not waiting any more


@pytest.mark.parametrize("channel", ["phone", "fax", "email", "remote", "letter", "qq", "onsite"])
def test_c13_requests_come_from_every_service_channel_and_triage_first(channel: str) -> None:
    coverage = Coverage("a-1", "covered", ("C1",), True, {})
    state = TICKET.after(OpenTicket("t-9", "c-1", "s-1", SITE, channel, "问题", T0, coverage)).state  # type: ignore[arg-type]
    assert state.status == "triage"  # rule D3: phone or remote guidance before any visit
    assert state.opened is not None and state.opened.channel == channel


COVERED = Coverage("a-1", "covered", ("C1", "C9"), True,
                   {"kind": "local_or_out_of_town", "local_hours": 8, "out_of_town_days": 2})


def backdated(received: datetime, entered: datetime) -> OpenTicket:
    return OpenTicket("t-5", "c-1", "s-1", SITE, "phone", "电话记录补录", received, COVERED, entered_at=entered)


def test_d1_a_request_entered_late_counts_from_when_it_was_received() -> None:
    state = TICKET.after(backdated(T0 - timedelta(hours=3), T0)).state
    assert state.deadlines is not None and state.opened is not None
    assert state.deadlines.arrive_by == T0 + timedelta(hours=5)  # 8 hours from the call, 3 of them gone
    assert state.opened.entered_at == T0


@pytest.mark.parametrize("received", [T0 + timedelta(minutes=1), T0 - timedelta(days=7, minutes=1)])
def test_d1_a_request_is_not_received_in_the_future_nor_over_a_week_ago(received: datetime) -> None:
    TICKET.given().when(backdated(received, T0)).then_rejected("invalid", "received_at")


def test_d1_a_week_ago_exactly_is_still_taken() -> None:
    (event, *_) = TICKET.given().when(backdated(T0 - timedelta(days=7), T0)).events
    assert isinstance(event, TicketOpened) and event.opened_at == T0 - timedelta(days=7)


def test_d2_due_times_counted_without_the_official_calendar_are_stored_as_promised() -> None:
    """A call in a year no calendar release knows is taken, its due times marked
    provisional; the notice entered later does not move what the request was promised."""
    coverage = Coverage("a-1", "covered", ("C1", "C9", "C20"), True, {
        "kind": "local_or_out_of_town", "local_hours": 8, "out_of_town_days": 2, "calendar": "working"})
    friday = datetime(2099, 3, 6, 8, 0, tzinfo=UTC)  # 16:00 in Beijing, two working hours left
    events = TICKET.given().when(
        OpenTicket("t-1", "c-1", "s-1", SITE, "phone", "开票模块报错", friday, coverage)).events
    opened_event = events[0]
    assert isinstance(opened_event, TicketOpened) and opened_event.deadlines is not None
    assert opened_event.deadlines.provisional == (2099,)
    promised = TICKET.given(opened_event).state
    assert promised.deadlines is not None and promised.deadlines.provisional == {2099}
    due = promised.deadlines.arrive_by
    assert ticket_view(promised, friday)["deadlines"]["provisional_years"] == [2099]  # the console says so
    assert due == datetime(2099, 3, 9, 7, 0, tzinfo=UTC)  # Monday 15:00 in Beijing, on the regular week
    publish(YearSchedule(2099, frozenset({date(2099, 3, 9)}), frozenset()))  # the notice: Monday off
    try:
        replayed = TICKET.given(opened_event).state
        assert replayed.deadlines is not None
        assert replayed.deadlines.arrive_by == due and replayed.deadlines.provisional == {2099}
        later = TICKET.given().when(
            OpenTicket("t-2", "c-1", "s-1", SITE, "phone", "同样的问题", friday, coverage)).events[0]
        assert isinstance(later, TicketOpened) and later.deadlines is not None
        assert later.deadlines.provisional == ()  # a request after the notice counts it exactly
        arrive = next(c for c in later.deadlines.clocks if c.kind == "arrive")
        assert arrive.due == datetime(2099, 3, 10, 7, 0, tzinfo=UTC)  # Tuesday 15:00: Monday is off
    finally:
        withdraw(2099)


NO_AGREEMENT = Coverage(None, "billable", ("B3",), True, {})
FOUND = Coverage("a-1", "covered", ("C1", "C9"), True,
                 {"kind": "local_or_out_of_town", "local_hours": 8, "out_of_town_days": 2})


def opened_without_agreement() -> History:
    return TICKET.after(OpenTicket("t-1", "c-1", "s-1", SITE, "phone", "开票模块报错", T0, NO_AGREEMENT))


def test_d1_c1_coverage_found_after_opening_sets_deadlines_from_the_request() -> None:
    assert opened_without_agreement().state.deadlines is None
    later = T0 + timedelta(seconds=3)
    events = opened_without_agreement().when(FindCoverage(later, FOUND, "system:coverage")).events
    assert [type(e) for e in events] == [CoverageFound]
    found = opened_without_agreement().after(FindCoverage(later, FOUND, "system:coverage"))
    state = found.state
    assert state.opened is not None and state.opened.coverage.agreement_id == "a-1"
    assert state.deadlines is not None
    assert state.deadlines.arrive_by == T0 + timedelta(hours=8)  # from the call, not from the finding
    # once found, what it was promised stays
    found.when(FindCoverage(later, FOUND, "dispatcher:li")).then_rejected(field="coverage")


def test_d1_c1_still_no_coverage_stores_nothing() -> None:
    opened_without_agreement().when(FindCoverage(T0, NO_AGREEMENT, "dispatcher:li")).then()


def test_d1_c1_no_coverage_is_taken_once_a_report_came_from_site() -> None:
    reported = opened_without_agreement().after(
        Escalate(T0, "上门"), RecordAssignment("tech-1", T0, {"winner": "tech-1"}, False, "dispatcher:li"),
        check_in("k-1"))
    reported.when(FindCoverage(T0 + timedelta(hours=1), FOUND, "dispatcher:li")).then_rejected("conflict", "ticket_id")
    TICKET.given().when(FindCoverage(T0, FOUND, "dispatcher:li")).then_rejected()  # no such ticket


# rule D2, issue 15: only the commands that count working time read the official calendar,
# so the application refreshes it (a read of the log) for those alone


def test_d2_only_the_commands_that_decide_due_times_read_the_official_calendar(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from typing import get_args

    from weibao.dispatch.domain import deadlines
    from weibao.dispatch.domain.ticket import (
        DECIDES_DUE_TIMES,
        LogDeskWork,
        Reclassify,
        RecordResponse,
    )
    from weibao.shared.errors import Rejected

    working = Coverage("a-1", "covered", ("C1", "C9"), True,
                       {"kind": "local_or_out_of_town", "local_hours": 8, "out_of_town_days": 2,
                        "calendar": "working"})
    on_a_weekday = datetime(2026, 6, 2, 1, 0, tzinfo=UTC)  # Tuesday 09:00 in Beijing
    history = TICKET.after(OpenTicket("t-1", "c-1", "s-1", SITE, "phone", "开票模块报错", on_a_weekday, working),
                           Escalate(on_a_weekday, "上门"))
    later = on_a_weekday + timedelta(hours=1)
    in_triage = TICKET.after(OpenTicket("t-2", "c-1", "s-1", SITE, "phone", "报错", later, working))

    def no_calendar(*_: object) -> object:
        raise AssertionError("read the official calendar")

    monkeypatch.setattr(deadlines, "_official_day", no_calendar)
    monkeypatch.setattr(deadlines, "official", no_calendar)
    assigned = history.after(RecordAssignment("tech-1", later, {"winner": "tech-1"}, False, "dispatcher:li"))
    work = LogWork(technician_id="tech-1", key="w1", server_time=later, device_time=later, kind="software",
                   started=on_a_weekday, ended=later)
    hotel = RecordExpense(technician_id="tech-1", key="e1", server_time=later, device_time=later, kind="meals",
                          amount=Decimal("30"))
    others: list[Command] = [
        Tick(later), WaitForCustomer(later, "客户不在"), ResolveRemotely(later, "远程解决"),
        RecordResponse(later, "call_back", "dispatcher:li", "回电"), Accept("tech-1", later),
        Decline("tech-1", later, "冲突"), check_in("k1", at=later), work, hotel,
        CheckOut(technician_id="tech-1", key="k2", server_time=later, device_time=later, position=NEAR,
                 accuracy_m=20.0),
        Complete("tech-1", later, "修复"),
        LogDeskWork(worker="dispatcher:li", key="d1", server_time=later, channel="phone", kind="software",
                    started=on_a_weekday, ended=later, note="电话指导"),
    ]
    for command in others:  # decided (events or a refusal) without a calendar read
        target = assigned if not isinstance(command, (ResolveRemotely, RecordResponse, LogDeskWork)) else history
        try:
            decide(command, target.state)
        except AssertionError as read:
            raise AssertionError(f"{type(command).__name__} {read}") from None
        except Rejected:  # a refusal is a decision too; only a calendar read fails here
            pass
    decide(Complete("tech-1", later, "修复"), assigned.after(check_in("k1", at=later)).state)
    decide(RecordAssignment("tech-2", later, {}, True, "dispatcher:li"), history.state)
    decide(Escalate(later, "上门"), in_triage.state)
    exercised = {type(c) for c in others} | {RecordAssignment, Escalate}
    # every command is either refreshed for or shown here to read no calendar
    assert {*DECIDES_DUE_TIMES, *exercised} == set(get_args(Command))
    assert Reclassify in DECIDES_DUE_TIMES
    # and the probe does catch a read: a resume counts working time
    paused = history.after(WaitForCustomer(later, "客户不在"))
    with pytest.raises(AssertionError, match="official calendar"):
        decide(CustomerResponded(later + timedelta(hours=1)), paused.state)
