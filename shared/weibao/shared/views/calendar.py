"""What the official calendar's query and command answer (rule D2): the years entered
from the State Council's notices, each with its history (dispatch's calendar).

Dates are `YYYY-MM-DD`; instants are ISO 8601 text with their UTC offset, as the
service writes them."""

from __future__ import annotations

from datetime import date

from pydantic import Field

from weibao.shared.views import Stored, View


class CalendarNotice(View):
    reference: str = Field(description="the notice's document number (文号)")
    title: str = Field(description="the notice's title")


class CalendarEntry(View):
    """One entry of a year's schedule: the first, or one superseding the last."""

    year: int = Field(description="the calendar year")
    revision: int = Field(ge=1, description="1 for the year's first entry; each later entry one more")
    holidays: list[date] = Field(description="the public holidays: days off, weekdays among them")
    workdays: list[date] = Field(description="the weekend days worked instead (调休)")
    notice: CalendarNotice = Field(description="the State Council's notice the dates come from")
    by: str = Field(description="who entered it: a user, or `system:calendar` for the calendar file")
    at: str = Field(description="when it was entered")
    reason: str = Field(default="", description="why it changed an earlier entry; empty for a first entry")
    superseded_by: int | None = Field(description="the revision that replaced it; null: it holds")
    position: int = Field(ge=1, description="its position in dispatch's log")
    recorded_at: str = Field(description="when the log stored it")
    correlation_id: str | None = Field(description="the request that entered it, for the audit trail; "
                                                   "null: none recorded")


class CalendarYearEntered(View):
    year: int = Field(description="the calendar year")
    current: CalendarEntry = Field(description="the entry that holds")
    history: list[CalendarEntry] = Field(description="every entry of the year, first to last")


class OfficialCalendar(View):
    years: list[CalendarYearEntered] = Field(description="the years entered, in order (or the one asked for)")


class CalendarEntered(Stored):
    """An entry of a year: the events stored, or none and what holds (the same days from
    the same notice again)."""

    year: CalendarYearEntered | None = Field(default=None, description=(
        "what holds for the year when nothing was stored; null when the entry was stored (its event says it)"))
