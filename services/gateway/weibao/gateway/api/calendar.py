"""The official Chinese calendar over HTTP (rule D2): the years entered from the State
Council's notices with their history, and an admin's entry of a year.

Entering a year is an event in dispatch's log (who, when, which notice); entering it again
with other days supersedes the last entry and needs a reason; the same days from the same
notice again store nothing and answer what holds. A deadline decided before an entry keeps
its due time (it is stored on the request); the ones decided after count the new year."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from weibao.gateway.deps import AUDIT, DISPATCH, Caller, IdempotencyKey, caller
from weibao.shared.commands.calendar import CalendarYear
from weibao.shared.views.calendar import CalendarEntered, OfficialCalendar

router = APIRouter(tags=["calendar"])
Desk = Annotated[Caller, caller(*DISPATCH, *AUDIT)]  # and admin, who may do everything
Admin = Annotated[Caller, caller()]  # admin only

# Shapes only here; dispatch's rule says which years may be entered (2000 to 2100).
Year = Annotated[int, Path(ge=1, le=9999, description="the calendar year, e.g. 2027")]


@router.get("/calendar", response_model=OfficialCalendar,
            summary="The official calendar years entered from the State Council's notices, each with its history")
async def calendar(call: Desk, year: Annotated[int | None, Query(ge=1, le=9999)] = None) -> Any:
    return await call.ask("dispatch", "calendar", {}, year=year)


@router.put("/calendar/{year}", response_model=CalendarEntered,
            summary="Enter a year's public holidays and swapped working days (调休) from the notice (admin)")
async def enter_year(year: Year, body: CalendarYear, call: Admin, key: IdempotencyKey = None) -> Any:
    return await call.ask("dispatch", "calendar.enter", body, year=year, key=key)
