"""The official calendar's bodies (rule D2): `weibao.dispatch.calendar.enter` and
`weibao.dispatch.calendar`, and `PUT /api/v1/calendar/{year}`'s HTTP body.

Shapes only: what a year's schedule may be (dates inside the year, a holiday or a working
day, not both, a swapped working day on a weekend, a year from 2000 to 2100) is
dispatch's one rule (domain/official_calendar.py), which names the field and the date."""

from __future__ import annotations

from datetime import date

from pydantic import Field

from weibao.shared.commands import Body, Whole

# A year has at most 366 days; the service counts both lists together.
MAX_DATES = 366


class Notice(Body):
    """The State Council's notice the dates come from."""

    reference: str = Field(min_length=1, max_length=200, description="its document number (文号)")
    title: str = Field(min_length=1, max_length=500)


class CalendarYear(Body):
    """One year's official schedule, as the notice gives it (the year is the path's)."""

    holidays: list[date] = Field(default_factory=list, max_length=MAX_DATES,
                                 description="the public holidays: days off, weekdays among them")
    workdays: list[date] = Field(default_factory=list, max_length=MAX_DATES,
                                 description="weekend days worked instead (调休)")
    notice: Notice
    reason: str = Field(default="", max_length=2000,
                        description="required when the year was entered before: why it changes")


class EnterCalendarYear(CalendarYear):
    """`weibao.dispatch.calendar.enter`: the HTTP body with the path's year."""

    year: Whole


class CalendarQuery(Body):
    """`weibao.dispatch.calendar`: every entered year, or the one named, with its history."""

    year: Whole | None = None
