"""Deadlines of a request: the SLA read from contracts' terms (D1), counted in the
agreement's calendar (D2), paused, stopped, and announced once each.

The official calendar is whatever chinese-calendar 1.11.0 says; the National Day
tests assert its data rather than a calendar of our own."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from tests.decider import Decider
from weibao.dispatch.domain.deadlines import (
    OFFICE_TZ,
    BusinessCalendar,
    DeadlineAtRisk,
    DeadlineBreached,
    DeadlineEvent,
    DeadlineMet,
    Deadlines,
    RiskPolicy,
    YearSchedule,
    add_business_time,
    business_time_between,
    evaluate,
    evolve,
    next_evaluation,
    official,
    publish,
    withdraw,
)
from weibao.dispatch.domain.sla import Span, sla_from_terms
from weibao.shared.errors import Rejected

CALENDAR = BusinessCalendar()

# CoverageGranted.terms["onsite"] of the seed agreements, and variants
YIZHUO: dict[str, Any] = {"kind": "local_or_out_of_town", "local_hours": 8, "out_of_town_days": 2,
                          "local_radius_km": None, "phone_support_24h": False, "service_hours": None,
                          "calendar": "clock"}
YIZHUO_WORKING = {**YIZHUO, "calendar": "working"}
XXX = {"kind": "by_phase", "parallel_run_days": 2, "cutover_days": 1, "calendar": "working"}
QUANSOUSUO = {"kind": "respond_resolve", "respond_hours": 24, "resolve_hours": 24, "calendar": "clock"}
CHAOREN = {"kind": "by_arrangement", "phone_support_24h": True}
ZIGUANG = {"kind": "by_arrangement", "service_hours": ["09:00", "18:00"], "calendar": "clock"}


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """An instant in the servicing office's time (Asia/Shanghai)."""
    return datetime(year, month, day, hour, minute, tzinfo=OFFICE_TZ)


def arrival_in_working_hours(requested: datetime, hours: int) -> Deadlines:
    terms = {**YIZHUO_WORKING, "local_hours": hours}
    return Deadlines.start(requested, sla_from_terms(terms, local=True, phase=None))


def tick(now: datetime, deadlines: Deadlines) -> list[DeadlineEvent]:
    """`evaluate` as a decider's `decide`: the command is the instant the timer fires."""
    return evaluate(deadlines, now)


# What the application does on each timer tick: decide (evaluate), then evolve, so each
# announcement is made once. Clocks start with a request's SLA, so the initial state is
# the announcement tests' usual request: 4 working hours from Friday 17:00, due Monday
# 12:00 (a test that stops or pauses it starts from `given_state`).
TIMER = Decider(decide=tick, evolve=evolve, initial=arrival_in_working_hours(at(2026, 3, 6, 17), 4))


# -- the SLA from the terms (D1) -----------------------------------------------------


def test_d1_c9_a_local_customer_is_owed_arrival_within_n_hours() -> None:
    sla = sla_from_terms(YIZHUO, local=True, phase=None)
    assert sla.arrive_within == Span.hours(8)
    assert sla.respond_within is None and sla.resolve_within is None
    assert sla.calendar == "clock" and sla.clauses == ("C9",)


def test_d1_c9_an_out_of_town_customer_is_owed_arrival_within_m_days() -> None:
    sla = sla_from_terms(YIZHUO, local=False, phase=None)
    assert sla.arrive_within == Span.days(2)
    assert sla.clauses == ("C9",)


@pytest.mark.parametrize(("phase", "days"), [("parallel_run", 2), ("cutover", 1), (None, 2)])
def test_d1_c14_arrival_depends_on_the_phase(phase: Any, days: int) -> None:
    # an unknown phase reads as parallel run, as contracts' own coverage decision does
    sla = sla_from_terms(XXX, local=True, phase=phase)
    assert sla.arrive_within == Span.days(days)
    assert sla.calendar == "working" and sla.clauses == ("C14",)


def test_d1_c15_respond_within_24_hours_and_resolve_within_24_hours() -> None:
    sla = sla_from_terms(QUANSOUSUO, local=False, phase=None)
    assert sla.respond_within == timedelta(hours=24)
    assert sla.resolve_within == timedelta(hours=24)
    assert sla.arrive_within is None and sla.clauses == ("C15",)


def test_c16_c20_by_arrangement_sets_no_deadline_but_keeps_its_clauses() -> None:
    chaoren = sla_from_terms(CHAOREN, local=True, phase=None)
    ziguang = sla_from_terms(ZIGUANG, local=True, phase=None)
    assert not chaoren.sets_deadlines and chaoren.phone_support_24h and chaoren.clauses == ("C16",)
    assert ziguang.service_hours == (time(9), time(18)) and ziguang.clauses == ("C20",)
    deadlines = Deadlines.start(at(2026, 3, 6, 17), chaoren)
    assert deadlines.clocks == () and deadlines.status(at(2026, 4, 1)) == "on_track"
    TIMER.given_state(deadlines).when(at(2026, 4, 1)).then()


def test_d1_readers_ignore_unknown_fields_but_refuse_what_they_cannot_read() -> None:
    assert sla_from_terms({**YIZHUO, "added_in_v2": 1}, local=True, phase=None).arrive_within == Span.hours(8)
    with pytest.raises(Rejected, match="local_hours"):
        sla_from_terms({**YIZHUO, "local_hours": None}, local=True, phase=None)
    with pytest.raises(Rejected, match="kind"):
        sla_from_terms({"kind": "whenever"}, local=True, phase=None)
    with pytest.raises(Rejected, match="service_hours"):
        sla_from_terms({**ZIGUANG, "service_hours": ["18:00", "09:00"]}, local=True, phase=None)


# -- counting time (D2) ----------------------------------------------------------------


def test_d2_the_clock_calendar_simply_adds_hours_over_nights_weekends_and_holidays() -> None:
    eve = at(2026, 9, 30, 17)  # the eve of National Day
    assert add_business_time(eve, timedelta(hours=8), "clock") == at(2026, 10, 1, 1)
    assert business_time_between(at(2026, 10, 1), at(2026, 10, 3), "clock") == timedelta(days=2)


def test_d2_friday_17h_plus_4_working_hours_lands_monday_12h() -> None:
    # given a request on Friday 2026-03-06 at 17:00, one service hour left that day
    friday = at(2026, 3, 6, 17)
    # when 4 working hours are added
    due = add_business_time(friday, timedelta(hours=4), "working")
    # then the weekend does not count: 1 hour on Friday, 3 on Monday from 09:00
    assert due == at(2026, 3, 9, 12)
    assert business_time_between(friday, due, "working") == timedelta(hours=4)


def test_d2_any_aware_instant_counts_in_the_offices_time() -> None:
    friday_in_utc = datetime(2026, 3, 6, 9, tzinfo=UTC)  # 17:00 in Shanghai
    assert add_business_time(friday_in_utc, timedelta(hours=4), "working") == at(2026, 3, 9, 12)
    with pytest.raises(Rejected, match="zone"):
        add_business_time(datetime(2026, 3, 6, 17), timedelta(hours=4), "working")


def test_d2_outside_service_hours_counting_starts_at_the_next_opening() -> None:
    saturday = at(2026, 3, 7, 10)
    assert add_business_time(saturday, timedelta(hours=2), "working") == at(2026, 3, 9, 11)
    before_opening = at(2026, 3, 9, 7)
    assert add_business_time(before_opening, timedelta(hours=9), "working") == at(2026, 3, 9, 18)  # not Tue 09:00


def test_d2_c20_the_agreements_own_service_hours_bound_the_working_day() -> None:
    window = (time(8, 30), time(17, 30))
    assert add_business_time(at(2026, 3, 6, 17), timedelta(hours=1), "working", window) == at(2026, 3, 9, 9)


def test_d2_national_day_2026_as_chinese_calendar_has_it() -> None:
    # the seven days of National Day, Thursday 1 to Wednesday 7 October, are days off
    for day in range(1, 8):
        assert CALENDAR.is_holiday(date(2026, 10, day))
    # the swapped working days (调休): Sunday 20 September and Saturday 10 October are worked
    assert CALENDAR.is_workday(date(2026, 9, 20))
    assert CALENDAR.is_workday(date(2026, 10, 10))
    # Sunday 27 September is not: it closes the Mid-Autumn holiday (25-27 September)
    assert CALENDAR.is_holiday(date(2026, 9, 27))
    assert CALENDAR.is_holiday(date(2026, 10, 11))  # an ordinary Sunday


def test_d2_working_hours_skip_national_day_and_count_the_swapped_saturday() -> None:
    # given a request at 17:00 on the last working day before National Day
    eve = at(2026, 9, 30, 17)
    # then 2 working hours end on the first working day after it
    assert add_business_time(eve, timedelta(hours=2), "working") == at(2026, 10, 8, 10)
    # and Saturday 10 October is a working day
    assert add_business_time(at(2026, 10, 9, 17), timedelta(hours=2), "working") == at(2026, 10, 10, 10)
    assert business_time_between(eve, at(2026, 10, 8, 9), "working") == timedelta(hours=1)


@pytest.fixture
def entered() -> Any:
    """Years entered from the notice for one test, withdrawn after it (the registry is
    the process's, like the package's own tables)."""
    years: list[int] = []

    def enter(schedule: YearSchedule) -> None:
        years.append(schedule.year)
        publish(schedule)

    yield enter
    withdraw(*years)


def test_d2_a_year_without_its_official_calendar_counts_the_regular_week_marked_provisional() -> None:
    # given 2099, which no chinese-calendar release knows: Friday 2 hours before closing
    assert not official(2099)
    deadlines = arrival_in_working_hours(at(2099, 3, 6, 16), 8)
    # then 6 more working hours run on Monday (the weekend is off) and the years are marked
    assert deadlines.arrive_by == at(2099, 3, 9, 15)
    assert deadlines.provisional == {2099}
    assert arrival_in_working_hours(at(2026, 3, 6, 16), 8).provisional == frozenset()  # 2026 is known


@pytest.mark.skipif(official(2027), reason="the pinned chinese-calendar now knows 2027")
def test_d2_a_working_deadline_running_into_an_unknown_year_is_taken_and_marked() -> None:
    # a call at 17:00 on New Year's Eve is taken, its due time counted into 2027 on the regular week
    deadlines = arrival_in_working_hours(at(2026, 12, 31, 17), 2)
    assert deadlines.arrive_by == at(2027, 1, 1, 10)
    assert deadlines.provisional == {2027}


def test_d2_a_year_entered_from_the_notice_counts_its_holidays_and_swapped_days(entered: Any) -> None:
    # given 2099's notice: Monday 9 March off, Saturday 14 March worked instead (调休)
    entered(YearSchedule(2099, frozenset({date(2099, 3, 9)}), frozenset({date(2099, 3, 14)})))
    assert official(2099)
    deadlines = arrival_in_working_hours(at(2099, 3, 6, 16), 8)
    assert deadlines.arrive_by == at(2099, 3, 10, 15)  # Monday was a holiday
    assert deadlines.provisional == frozenset()
    assert add_business_time(at(2099, 3, 13, 17), timedelta(hours=2), "working") == at(2099, 3, 14, 10)


def test_d2_an_entered_year_wins_over_the_packages_data(entered: Any) -> None:
    # Monday 1 June 2026 is a working day in the package; an amended notice gives it off
    assert CALENDAR.is_workday(date(2026, 6, 1))
    entered(YearSchedule(2026, frozenset({date(2026, 6, 1)}), frozenset()))
    assert not CALENDAR.is_workday(date(2026, 6, 1))
    assert add_business_time(at(2026, 5, 29, 17), timedelta(hours=2), "working") == at(2026, 6, 2, 10)


@pytest.mark.parametrize(("holidays", "workdays", "reason"), [
    ({date(2099, 3, 9)}, {date(2099, 3, 9)}, "not both"),
    (set(), {date(2099, 3, 10)}, "Saturday or Sunday"),  # a Tuesday is always a working day
    ({date(2098, 12, 31)}, set(), "lies in 2099"),
])
def test_d2_a_schedule_that_cannot_be_the_notice_is_refused(holidays: set[date], workdays: set[date],
                                                            reason: str) -> None:
    with pytest.raises(Rejected, match=reason) as refused:
        YearSchedule(2099, frozenset(holidays), frozenset(workdays))
    assert refused.value.field == "calendar.2099"


def test_d2_waiting_into_an_unknown_year_marks_the_moved_due_times() -> None:
    deadlines = arrival_in_working_hours(at(2098, 3, 6, 10), 8).pause(at(2098, 3, 6, 11))
    assert deadlines.provisional == {2098}
    resumed = deadlines.resume(at(2099, 1, 5, 11))
    assert resumed.provisional == {2098, 2099}


def test_d2_the_clock_calendar_needs_no_official_calendar_in_2027() -> None:
    assert add_business_time(at(2027, 3, 1, 10), timedelta(hours=8), "clock") == at(2027, 3, 1, 18)


# -- M days (C9, C14) --------------------------------------------------------------------


def test_c9_out_of_town_m_days_on_the_clock_calendar_are_m_times_24_hours() -> None:
    sla = sla_from_terms(YIZHUO, local=False, phase=None)
    deadlines = Deadlines.start(at(2026, 3, 6, 15), sla)
    assert deadlines.arrive_by == at(2026, 3, 8, 15)


def test_c9_d2_out_of_town_m_days_on_the_working_calendar_are_m_service_days() -> None:
    # given a request on Thursday at 15:00, out of town, 2 days, working calendar
    sla = sla_from_terms(YIZHUO_WORKING, local=False, phase=None)
    deadlines = Deadlines.start(at(2026, 3, 5, 15), sla)
    # then 2 x 9 service hours: the same time of day two working days later, over the weekend
    assert deadlines.arrive_by == at(2026, 3, 9, 15)


def test_c14_d2_after_cutover_one_working_day_skips_national_day() -> None:
    sla = sla_from_terms(XXX, local=True, phase="cutover")
    deadlines = Deadlines.start(at(2026, 9, 30, 14), sla)
    assert deadlines.arrive_by == at(2026, 10, 8, 14)


def test_c15_respond_and_resolve_clocks_both_start_at_the_request() -> None:
    deadlines = Deadlines.start(at(2026, 3, 6, 17), sla_from_terms(QUANSOUSUO, local=True, phase=None))
    assert deadlines.respond_by == deadlines.resolve_by == at(2026, 3, 7, 17)
    assert deadlines.arrive_by is None


# -- pauses ---------------------------------------------------------------------------


def test_d2_waiting_on_the_customer_shifts_the_deadline_by_the_paused_time() -> None:
    # given 8 clock hours to arrive from 09:00
    deadlines = Deadlines.start(at(2026, 3, 4, 9), sla_from_terms(YIZHUO, local=True, phase=None))
    assert deadlines.arrive_by == at(2026, 3, 4, 17)
    # when the request waits on the customer from 10:00 to 13:00
    deadlines = deadlines.pause(at(2026, 3, 4, 10)).resume(at(2026, 3, 4, 13))
    # then the deadline moves on by those 3 hours
    assert deadlines.arrive_by == at(2026, 3, 4, 20)
    assert deadlines.paused_total == timedelta(hours=3)


def test_d2_a_pause_over_the_weekend_costs_only_its_service_hours() -> None:
    # given 4 working hours from Friday 17:00: due Monday 12:00
    deadlines = arrival_in_working_hours(at(2026, 3, 6, 17), 4)
    # when it waits on the customer from Friday 17:30 to Saturday 10:00
    deadlines = deadlines.pause(at(2026, 3, 6, 17, 30)).resume(at(2026, 3, 7, 10))
    # then only Friday's last half hour was paused: 3.5 hours remain from Monday 09:00
    assert deadlines.arrive_by == at(2026, 3, 9, 12, 30)


def test_d2_while_paused_the_status_stands_still_and_nothing_is_announced() -> None:
    deadlines = arrival_in_working_hours(at(2026, 3, 4, 9), 4).pause(at(2026, 3, 4, 10))
    much_later = at(2026, 3, 5, 12)
    assert deadlines.status(much_later) == "on_track"
    TIMER.given_state(deadlines).when(much_later).then()
    assert next_evaluation(deadlines) is None
    with pytest.raises(Rejected, match="already waiting"):
        deadlines.pause(at(2026, 3, 4, 11))


def test_d2_a_deadline_run_out_before_the_pause_stays_breached() -> None:
    deadlines = arrival_in_working_hours(at(2026, 3, 4, 9), 2)
    deadlines = deadlines.pause(at(2026, 3, 4, 12)).resume(at(2026, 3, 4, 15))
    assert deadlines.arrive_by == at(2026, 3, 4, 11)
    assert deadlines.status(at(2026, 3, 4, 15)) == "breached"


def test_d2_a_resume_without_a_pause_is_refused() -> None:
    with pytest.raises(Rejected, match="not waiting"):
        arrival_in_working_hours(at(2026, 3, 4, 9), 2).resume(at(2026, 3, 4, 10))


# -- announcements ----------------------------------------------------------------------


def test_d1_at_risk_then_breached_are_each_announced_exactly_once() -> None:
    # given 4 working hours from Friday 17:00: due Monday 12:00, at risk with 20% (48 min) left
    requested = TIMER.given()
    due = at(2026, 3, 9, 12)
    assert requested.state.status(at(2026, 3, 9, 11)) == "on_track"
    assert next_evaluation(requested.state) == at(2026, 3, 9, 11, 12)

    # when the application evaluates at 11:15 Monday, and again
    at_risk = requested.when(at(2026, 3, 9, 11, 15)).then(DeadlineAtRisk("arrive", due, at(2026, 3, 9, 11, 12)))
    assert at_risk.state.status(at(2026, 3, 9, 11, 15)) == "at_risk"
    at_risk = at_risk.when(at(2026, 3, 9, 11, 30)).then()

    # when the deadline passes
    breached = at_risk.when(at(2026, 3, 9, 12, 1)).then(DeadlineBreached("arrive", due, due))
    assert breached.state.status(at(2026, 3, 9, 12, 1)) == "breached"
    assert next_evaluation(breached.when(at(2026, 3, 10, 9)).then().state) is None


def test_d1_a_deadline_found_already_past_is_announced_breached_only() -> None:
    breached = TIMER.given().when(at(2026, 3, 9, 13)).then(
        DeadlineBreached("arrive", at(2026, 3, 9, 12), at(2026, 3, 9, 12)))
    breached.when(at(2026, 3, 9, 14)).then()


def test_d1_the_at_risk_threshold_may_be_a_fixed_lead() -> None:
    sla = sla_from_terms(YIZHUO, local=True, phase=None)
    deadlines = Deadlines.start(at(2026, 3, 4, 9), sla, risk=RiskPolicy(lead=timedelta(hours=1)))
    assert deadlines.status(at(2026, 3, 4, 15, 59)) == "on_track"
    assert deadlines.status(at(2026, 3, 4, 16)) == "at_risk"


# -- stops (D5) ------------------------------------------------------------------------


def test_d5_a_check_in_before_the_deadline_is_met() -> None:
    deadlines = TIMER.initial.stop("arrived", at(2026, 3, 9, 11, 50))
    assert deadlines.status(at(2026, 3, 9, 13)) == "met"
    met = TIMER.given_state(deadlines).when(at(2026, 3, 9, 13)).then(
        DeadlineMet("arrive", at(2026, 3, 9, 12), at(2026, 3, 9, 11, 50)))
    met.when(at(2026, 3, 9, 14)).then()


def test_d5_a_check_in_after_the_deadline_is_breached_once() -> None:
    late = TIMER.given().when(at(2026, 3, 9, 12, 5))
    assert [type(e) for e in late.events] == [DeadlineBreached]
    deadlines = late.state.stop("arrived", at(2026, 3, 9, 12, 30))
    assert deadlines.status(at(2026, 3, 9, 13)) == "breached"
    TIMER.given_state(deadlines).when(at(2026, 3, 9, 13)).then()


def test_d5_an_arrival_stops_the_response_clock_too_and_counts_once() -> None:
    sla = sla_from_terms(QUANSOUSUO, local=True, phase=None)
    deadlines = Deadlines.start(at(2026, 3, 4, 9), sla)
    deadlines = deadlines.stop("arrived", at(2026, 3, 4, 20)).stop("arrived", at(2026, 3, 4, 21))
    assert deadlines.status(at(2026, 3, 5, 4), "respond") == "met"
    assert deadlines.status(at(2026, 3, 5, 4), "resolve") == "on_track"
    assert deadlines.status(at(2026, 3, 5, 4)) == "on_track"
    clock = deadlines.clock("respond")
    assert clock is not None and clock.stopped_at == at(2026, 3, 4, 20)
    deadlines = deadlines.stop("resolved", at(2026, 3, 5, 10))
    assert deadlines.status(at(2026, 3, 5, 10)) == "breached"  # resolved an hour late (C15)
    assert deadlines.status(at(2026, 3, 5, 10), "respond") == "met"


def test_d5_a_late_report_of_an_earlier_check_in_corrects_a_breach_to_met() -> None:
    # given an offline phone: the breach is announced before its check-in reaches us
    deadlines = TIMER.given().when(at(2026, 3, 9, 12, 5)).state
    deadlines = deadlines.stop("arrived", at(2026, 3, 9, 13))
    # when the phone's earlier check-in (11:40) arrives
    deadlines = deadlines.stop("arrived", at(2026, 3, 9, 11, 40))
    # then the arrival was in time, announced once
    met = TIMER.given_state(deadlines).when(at(2026, 3, 9, 14)).then(
        DeadlineMet("arrive", at(2026, 3, 9, 12), at(2026, 3, 9, 11, 40)))
    met.when(at(2026, 3, 9, 15)).then()


def test_d5_a_stop_while_waiting_on_the_customer_counts_at_the_pause() -> None:
    deadlines = arrival_in_working_hours(at(2026, 3, 4, 9), 2).pause(at(2026, 3, 4, 10))
    deadlines = deadlines.stop("resolved", at(2026, 3, 4, 15)).resume(at(2026, 3, 4, 16))
    assert deadlines.status(at(2026, 3, 4, 16)) == "met"
