"""The terms the seeds need, counted (issue 13): service days (C20) on the official
calendar (D2), priority targets (the tighter of clause and target wins), and C16's
phone request whose respond clock runs around the clock. Contracts validates these
terms (tests/contracts/test_terms_parameters.py); here dispatch reads them as plain
data from `CoverageGranted.terms["onsite"]` and counts.

The official calendar is chinese-calendar 1.11.0's: 2026's National Day runs 1-7
October (the weekend of 3-4 October inside it), Saturday 10 October is worked
instead (调休), Sunday 11 October is an ordinary Sunday."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest

from weibao.dispatch.domain.deadlines import (
    OFFICE_TZ,
    BusinessCalendar,
    DeadlineAtRisk,
    Deadlines,
    YearSchedule,
    _official_day,
    evaluate,
    publish,
    withdraw,
)
from weibao.dispatch.domain.sla import Span, sla_from_terms
from weibao.dispatch.domain.ticket import ClockSet, Coverage, DeadlinesSet, set_deadlines
from weibao.shared import codec
from weibao.shared.errors import Rejected

ALL_WEEK = [1, 2, 3, 4, 5, 6, 7]
# rule C9 on the working calendar (D2), 9:00-18:00, as contracts publishes it
WORKING: dict[str, Any] = {"kind": "local_or_out_of_town", "local_hours": 4, "out_of_town_days": 1,
                           "calendar": "working", "phone_support_24h": False, "service_hours": None}
SEVEN_DAYS = {**WORKING, "service_hours": ["09:00", "18:00"], "service_days": ALL_WEEK}  # rule C20, seed [5]


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """An instant in the servicing office's time (Asia/Shanghai)."""
    return datetime(year, month, day, hour, minute, tzinfo=OFFICE_TZ)


def arrive_by(onsite: dict[str, Any], requested: datetime, *, local: bool = True, **kw: Any) -> datetime | None:
    return Deadlines.start(requested, sla_from_terms(onsite, local=local, phase=None, **kw)).arrive_by


# -- service days (C20, D2) ------------------------------------------------------------------


def test_c20_d2_seven_days_a_week_counts_the_weekend() -> None:
    friday = at(2026, 3, 6, 17)
    # Monday to Friday: 1 hour on Friday, 3 on Monday
    assert arrive_by(WORKING, friday) == at(2026, 3, 9, 12)
    # 7 days a week: 1 hour on Friday, 3 on Saturday
    assert arrive_by(SEVEN_DAYS, friday) == at(2026, 3, 7, 12)
    assert sla_from_terms(SEVEN_DAYS, local=True, phase=None).clauses == ("C9", "C20")


def test_c20_d2_seven_days_a_week_still_rests_on_official_public_holidays() -> None:
    eve = at(2026, 9, 30, 17)  # National Day: 1-7 October, its weekend included
    assert arrive_by(SEVEN_DAYS, eve) == at(2026, 10, 8, 12)
    assert arrive_by(WORKING, eve) == at(2026, 10, 8, 12)
    # the Saturday worked instead (调休) serves either way; the ordinary Sunday only 7 days a week
    assert arrive_by(WORKING, at(2026, 10, 10, 17)) == at(2026, 10, 12, 12)
    assert arrive_by(SEVEN_DAYS, at(2026, 10, 10, 17)) == at(2026, 10, 11, 12)


def test_c9_c20_d2_days_on_a_seven_day_desk_are_its_service_days() -> None:
    # rule C9 out of town "within 1 day": one full service window, landing a service day later
    assert arrive_by(SEVEN_DAYS, at(2026, 3, 6, 15), local=False) == at(2026, 3, 7, 15)
    assert arrive_by(WORKING, at(2026, 3, 6, 15), local=False) == at(2026, 3, 9, 15)


def test_c20_d2_a_service_day_is_a_served_weekday_or_a_swap_and_not_a_public_holiday() -> None:
    weekends_only = BusinessCalendar(service_days=(6, 7))
    assert weekends_only.is_service_day(date(2026, 3, 7))  # an ordinary Saturday
    assert not weekends_only.is_service_day(date(2026, 3, 9))  # a Monday it does not serve
    assert not weekends_only.is_service_day(date(2026, 10, 3))  # a Saturday inside National Day
    assert weekends_only.is_service_day(date(2026, 10, 10))  # a Saturday worked instead (调休)
    # rule D2: the entered schedule speaks for its year (its holidays the whole 放假 period)
    publish(YearSchedule(2099, frozenset({date(2099, 2, 7), date(2099, 2, 9)}), frozenset({date(2099, 2, 14)})))
    try:
        seven = BusinessCalendar(service_days=tuple(ALL_WEEK))
        assert not seven.is_service_day(date(2099, 2, 7))  # a Saturday of the holiday
        assert not seven.is_service_day(date(2099, 2, 9))  # a Monday of the holiday
        assert seven.is_service_day(date(2099, 2, 8))  # a Sunday the notice does not list
        assert not BusinessCalendar().is_service_day(date(2099, 2, 8))
        assert BusinessCalendar().is_service_day(date(2099, 2, 14))  # the swap, on the regular week too
    finally:
        withdraw(2099)


@pytest.mark.parametrize("year", [2025, 2026])
def test_c20_d2_with_the_default_week_a_service_day_is_exactly_an_official_working_day(year: int) -> None:
    """The documented rule, with Monday to Friday, is the official calendar unchanged."""
    calendar, day = BusinessCalendar(), date(year, 1, 1)
    while day.year == year:
        holiday, swapped = _official_day(day)
        assert calendar.is_service_day(day) == calendar.is_workday(day), day
        assert ((day.isoweekday() <= 5 or swapped) and not holiday) == calendar.is_workday(day), day
        day += timedelta(days=1)


def test_c20_d2_the_default_is_unchanged_whether_said_or_not() -> None:
    said = {**WORKING, "service_days": [5, 4, 3, 2, 1]}
    for requested in (at(2026, 3, 6, 17), at(2026, 9, 30, 17), at(2026, 10, 9, 17), at(2026, 12, 31, 17)):
        assert arrive_by(said, requested) == arrive_by(WORKING, requested)
    assert sla_from_terms(said, local=True, phase=None) == sla_from_terms(WORKING, local=True, phase=None)


@pytest.mark.parametrize("days", [[], [0], [1, 8], [1, 1], "all", [True]])
def test_c20_service_days_dispatch_cannot_read_are_refused_naming_the_term(days: Any) -> None:
    with pytest.raises(Rejected) as refused:
        sla_from_terms({**WORKING, "service_days": days}, local=True, phase=None)
    assert refused.value.field == "onsite.service_days"


# -- priority targets (issue 13: clauses set deadlines, priority orders work) ---------------------

TARGETS = {**WORKING, "priority_targets": {"urgent": {"arrive_hours": 2, "respond_hours": 1},
                                           "high": {"arrive_hours": 6}, "low": None}}


def test_without_targets_a_priority_changes_nothing() -> None:
    plain = sla_from_terms(WORKING, local=True, phase=None)
    for priority in ("urgent", "high", "normal", "low", None):
        assert sla_from_terms(WORKING, local=True, phase=None, priority=priority) == plain
    # targets for other priorities, or none for this one, change nothing either
    assert sla_from_terms(TARGETS, local=True, phase=None, priority="normal").arrive_within == Span.hours(4)
    assert sla_from_terms(TARGETS, local=True, phase=None, priority="low").set_by_priority == ()


def test_d1_the_tighter_of_clause_and_target_wins() -> None:
    urgent = sla_from_terms(TARGETS, local=True, phase=None, priority="urgent")
    assert urgent.arrive_within == Span.hours(2)  # tighter than C9's 4 hours
    # a clock the clauses do not set (C9 sets no respond-by) is set by the target
    assert urgent.respond_within == timedelta(hours=1)
    assert urgent.set_by_priority == ("respond", "arrive") and urgent.priority == "urgent"
    assert urgent.clauses == ("C9",)  # the clauses still cite the agreement's rule
    high = sla_from_terms(TARGETS, local=True, phase=None, priority="high")
    assert high.arrive_within == Span.hours(4) and high.set_by_priority == ()  # the clause is tighter
    # out of town "within 1 day" is 9 service hours: the high target of 6 wins
    assert sla_from_terms(TARGETS, local=False, phase=None, priority="high").arrive_within == Span.hours(6)
    assert arrive_by(TARGETS, at(2026, 3, 6, 17), priority="urgent") == at(2026, 3, 9, 10)


def test_d1_targets_give_an_agreement_by_arrangement_its_deadlines() -> None:
    onsite = {"kind": "by_arrangement", "phone_support_24h": True,
              "priority_targets": {"urgent": {"respond_hours": 2}}}
    assert not sla_from_terms(onsite, local=True, phase=None, priority="normal").sets_deadlines
    urgent = sla_from_terms(onsite, local=True, phase=None, priority="urgent")
    assert urgent.respond_within == timedelta(hours=2) and urgent.clauses == ("C16",)


def test_targets_and_priorities_dispatch_cannot_read_are_refused_naming_them() -> None:
    with pytest.raises(Rejected) as refused:
        sla_from_terms({**WORKING, "priority_targets": {"urgent": {"arrive_hours": 0}}}, local=True, phase=None,
                       priority="urgent")
    assert (refused.value.field, refused.value.message) == (
        "onsite.priority_targets.urgent.arrive_hours", "a positive number of hours, not 0")
    with pytest.raises(Rejected) as refused:
        sla_from_terms(WORKING, local=True, phase=None, priority="critical")  # type: ignore[arg-type]
    assert refused.value.field == "priority"


# -- rule C16: 24-hour phone support ---------------------------------------------------------------

# respond within 4 hours, resolve within 24 (C15), in service hours (D2), 24-hour phone line (C16),
# and an urgent request is owed an arrival within 8 service hours
C16_TERMS: dict[str, Any] = {"kind": "respond_resolve", "respond_hours": 4, "resolve_hours": 24,
                             "calendar": "working", "phone_support_24h": True,
                             "priority_targets": {"urgent": {"arrive_hours": 8}}}


def test_c16_a_phone_request_is_responded_to_around_the_clock_its_arrival_in_service_hours() -> None:
    friday_evening = at(2026, 3, 6, 20)
    sla = sla_from_terms(C16_TERMS, local=True, phase=None, priority="urgent", channel="phone")
    assert sla.around_the_clock == ("respond",) and sla.clauses == ("C15", "C16")
    deadlines = Deadlines.start(friday_evening, sla)
    assert deadlines.respond_by == at(2026, 3, 7, 0)  # four clock hours, Friday night
    assert deadlines.arrive_by == at(2026, 3, 9, 17)  # eight service hours, from Monday's opening
    assert deadlines.resolve_by == at(2026, 3, 11, 15)  # 24 service hours: Monday, Tuesday, Wednesday
    assert deadlines.provisional == frozenset()


def test_c16_a_request_by_another_channel_keeps_service_hours_for_every_clock() -> None:
    friday_evening = at(2026, 3, 6, 20)
    for channel in ("email", "qq", None):
        sla = sla_from_terms(C16_TERMS, local=True, phase=None, priority="urgent", channel=channel)
        assert sla.around_the_clock == ()
        assert Deadlines.start(friday_evening, sla).respond_by == at(2026, 3, 9, 13)
    # without 24-hour phone support a phone request counts in service hours too
    plain = sla_from_terms({**C16_TERMS, "phone_support_24h": False}, local=True, phase=None, channel="phone")
    assert Deadlines.start(friday_evening, plain).respond_by == at(2026, 3, 9, 13)


def test_c16_a_pause_moves_each_clock_by_the_wait_in_its_own_calendar() -> None:
    friday = at(2026, 3, 6, 17)
    sla = sla_from_terms(C16_TERMS, local=True, phase=None, priority="urgent", channel="phone")
    deadlines = Deadlines.start(friday, sla)
    assert (deadlines.respond_by, deadlines.arrive_by) == (at(2026, 3, 6, 21), at(2026, 3, 9, 16))
    # waiting on the customer from 18:00 to 19:00: an hour of the clock, none of service time
    resumed = deadlines.pause(at(2026, 3, 6, 18)).resume(at(2026, 3, 6, 19))
    assert resumed.respond_by == at(2026, 3, 6, 22)
    assert resumed.arrive_by == at(2026, 3, 9, 16)
    assert resumed.paused_total == timedelta(0)  # in the agreement's calendar
    # at risk by the respond clock's own calendar: 20% of 4 hours left from 21:12
    assert resumed.status(at(2026, 3, 6, 21, 30), "respond") == "at_risk"
    assert resumed.status(at(2026, 3, 6, 21, 30), "arrive") == "on_track"
    assert evaluate(resumed, at(2026, 3, 6, 21, 30)) == [
        DeadlineAtRisk("respond", at(2026, 3, 6, 22), at(2026, 3, 6, 21, 12))]
    # a wait inside service hours moves both
    both = deadlines.pause(at(2026, 3, 6, 17, 30)).resume(at(2026, 3, 6, 18))
    assert (both.respond_by, both.arrive_by) == (at(2026, 3, 6, 21, 30), at(2026, 3, 9, 16, 30))


# -- what dispatch stores (D1: decided once; old logs still read) --------------------------------------


def test_c16_c20_set_deadlines_stores_each_clock_s_calendar_and_the_service_days() -> None:
    coverage = Coverage("agr-1", "covered", ("C1", "C15", "C16"), True, {**C16_TERMS, "service_days": ALL_WEEK})
    stored = set_deadlines(at(2026, 3, 6, 20), coverage, None, priority="urgent", channel="phone")
    assert stored is not None
    assert [(c.kind, c.around_the_clock) for c in stored.clocks] == [
        ("respond", True), ("arrive", False), ("resolve", False)]
    assert stored.service_days == tuple(ALL_WEEK) and stored.by_priority == ("arrive",)
    again = codec.load(DeadlinesSet, codec.dump(stored))
    assert again == stored
    rebuilt = again.rebuild()
    assert rebuilt.clock("respond") is not None and rebuilt.timeline.service_days == tuple(ALL_WEEK)
    assert rebuilt.respond_by == at(2026, 3, 7, 0) and rebuilt.arrive_by == at(2026, 3, 7, 17)
    # moved by a pause as the request was decided: the respond clock around the clock
    moved = rebuilt.pause(at(2026, 3, 6, 21)).resume(at(2026, 3, 6, 22))
    assert (moved.respond_by, moved.arrive_by) == (at(2026, 3, 7, 1), at(2026, 3, 7, 17))


def test_d1_deadlines_stored_before_these_terms_read_as_they_were_decided() -> None:
    old = {"requested_at": "2026-03-06T17:00:00+08:00", "calendar": "working", "service_hours": None,
           "clocks": [{"kind": "arrive", "allowed": "PT4H", "due": "2026-03-09T12:00:00+08:00",
                       "risk_from": "2026-03-09T11:12:00+08:00"}], "clauses": ["C9"], "provisional": []}
    stored = codec.load(DeadlinesSet, old)
    assert stored.service_days == (1, 2, 3, 4, 5) and stored.by_priority == ()
    assert stored.clocks == (ClockSet("arrive", timedelta(hours=4), at(2026, 3, 9, 12), at(2026, 3, 9, 11, 12)),)
    rebuilt = stored.rebuild()
    assert rebuilt.timeline.service_days == (1, 2, 3, 4, 5)
    assert rebuilt.pause(at(2026, 3, 7, 10)).resume(at(2026, 3, 7, 11)).arrive_by == at(2026, 3, 9, 12)


def test_without_priority_or_channel_set_deadlines_decides_as_before() -> None:
    coverage = Coverage("agr-1", "covered", ("C1", "C9"), True, WORKING)
    stored = set_deadlines(at(2026, 3, 6, 17), coverage, None)
    assert stored is not None and [c.due for c in stored.clocks] == [at(2026, 3, 9, 12)]
    assert stored == set_deadlines(at(2026, 3, 6, 17), coverage, None, priority="urgent", channel="phone")
