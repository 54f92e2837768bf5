"""The official calendar's command and query on NATS (rule D2):
`weibao.dispatch.calendar.enter` and `weibao.dispatch.calendar`."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import structlog
from faststream.nats import NatsBroker

from weibao.dispatch.application import official_calendar
from weibao.dispatch.application.official_calendar import OfficialCalendar
from weibao.shared.clock import utc_now
from weibao.shared.commands.calendar import CalendarQuery, EnterCalendarYear
from weibao.shared.rpc import Handler, command, expose, query
from weibao.shared.service import Runtime

log = structlog.get_logger("weibao.dispatch")


def register(broker: NatsBroker, runtime: Runtime) -> OfficialCalendar:
    """Read the calendar file (a bad one stops the start, naming the entry) and answer the
    calendar's subjects. The log's years (and the file's new ones) are taken on the
    calendar's first refresh: `loaded` runs it at start, and `refresh` before every
    deadline decided, so nothing depends on which comes first."""
    calendar = official_calendar.start(runtime.store, now=utc_now)
    if calendar.seeds:
        log.info("official calendar file read", years=sorted(s.schedule.year for s in calendar.seeds),
                 source=calendar.seed_source)
    enter = command(calendar.enter, EnterCalendarYear)

    async def entered(body: Mapping[str, Any], meta: Mapping[str, Any]) -> Any:
        # Idempotent by content (issue 13): the same year's schedule from the same notice
        # again stores nothing and answers what holds beside the (no) events.
        reply = await enter(body, meta)
        if reply["events"] or not isinstance(body.get("year"), int):
            return reply
        return {**reply, "year": await calendar.year(int(body["year"]))}

    handlers: dict[str, Handler] = {
        "calendar.enter": entered,
        "calendar": query(calendar.years, CalendarQuery),
    }
    for name, handler in handlers.items():
        expose(broker, "dispatch", name, handler, keys=runtime.keys)
    return calendar


async def loaded(runtime: Runtime, stop: asyncio.Event) -> None:
    """At start, before the deadline clock's first turn: the file's new years entered,
    the log's years taken (a failure here is retried by the service's supervisor)."""
    if not stop.is_set():
        await official_calendar.refresh(runtime.store)
