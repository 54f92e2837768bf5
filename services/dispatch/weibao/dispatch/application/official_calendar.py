"""The official calendar's entries (rule D2): enter a year, read the years with their
history, and keep this process's business calendar (`deadlines`' registry of entered
years) as the log says.

The log is the record; the file is seed data. At start, a year in the calendar file
(`official_calendar.toml`, or WEIBAO_OFFICIAL_CALENDAR's) that the log does not hold is
entered into the log as `system:calendar`; a year the log holds is left as the log has
it, and a file that says otherwise is logged as such. Not the file as a fallback under
the log, because: every replica counts the same calendar (the log is one; files can
differ between machines), the history shows where every year a deadline was counted
with came from (DESIGN's "the logs are the audit trail"), and a change needs no file
edit and no restart (an amendment is an entry, with who, when and why).

Effect without restart: an entry publishes its year in this process at once; another
replica takes it before it decides its next deadline, by `refresh(store)`: one indexed
read of the calendar stream's version, and a fold of the (small) stream only when it
moved. Deadlines already decided do not move: due times are stored on the request.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from itertools import pairwise
from pathlib import Path
from typing import Any

import structlog

from weibao.dispatch.adapters import official_calendar as calendar_file
from weibao.dispatch.domain import deadlines
from weibao.dispatch.domain import official_calendar as domain
from weibao.shared.aggregates import Repository
from weibao.shared.clock import utc_now
from weibao.shared.commands.calendar import CalendarQuery, EnterCalendarYear
from weibao.shared.errors import Rejected
from weibao.shared.events import RecordedEvent
from weibao.shared.eventstore import ConcurrencyError, EventStore

log = structlog.get_logger("weibao.dispatch.calendar")


@dataclass
class OfficialCalendar:
    """One process's view of the calendar stream in one database (one per EventStore)."""

    store: EventStore
    now: Callable[[], datetime] = utc_now
    # The years read from the file at start, entered into the log on the first refresh.
    seeds: Sequence[calendar_file.FileYear] = ()
    seed_source: str = calendar_file.PACKAGED.name
    # The stream's version this process's registry was last folded from.
    seen: int = field(default=-1, init=False)
    _seeded: bool = field(default=False, init=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)

    @property
    def repository(self) -> Repository[domain.Calendar, domain.Event]:
        return Repository(self.store, domain.EVENTS, domain.evolve, domain.Calendar())

    async def enter(self, body: EnterCalendarYear, *, command_id: str | None = None,
                    meta: Mapping[str, Any] | None = None) -> list[RecordedEvent]:
        """rule D2: a year's schedule from the State Council's notice, by the actor the
        request proves; the same content again stores nothing."""
        await self.refresh()  # the file's years first: an admin's entry amends them
        command = domain.EnterYear(
            body.year, tuple(body.holidays), tuple(body.workdays),
            domain.Notice(body.notice.reference, body.notice.title),
            by=str((meta or {}).get("actor") or "unknown"), at=self.now(), reason=body.reason)
        events = await self.repository.execute(domain.STREAM, lambda state: domain.decide(command, state),
                                               command_id=command_id, meta=meta)
        await self.refresh()  # in effect in this process at once
        if events:
            log.info("calendar.entered", year=body.year, revision=events[0].data["revision"],
                     by=command.by, reference=command.notice.reference)
        return events

    async def refresh(self) -> bool:
        """Take what the log holds if it changed since this process last looked (and, the
        first time, enter the file's years the log lacks). True when it reloaded."""
        if self._seeded and await self.store.version(domain.STREAM) == self.seen:
            return False  # the common case, without waiting on another request's refresh
        async with self._lock:
            if not self._seeded:
                await self._seed()
                self._seeded = True
            version = await self.store.version(domain.STREAM)
            if version == self.seen:
                return False
            state, version = await self.repository.load(domain.STREAM)
            schedules = state.schedules()
            deadlines.publish(*schedules)
            self.seen = version
            log.info("calendar.loaded", version=version, years=[s.year for s in schedules])
            return True

    async def _seed(self) -> None:
        for seed in self.seeds:
            schedule = seed.schedule
            entry = seed_entry(seed, self.seed_source, self.now())
            try:
                # Two replicas starting together: the loser decides again on the winner's
                # entry and stores nothing (Repository retries a lost race).
                stored = await self.repository.execute(domain.STREAM, partial(domain.decide, domain.SeedYear(entry)),
                                                       meta={"actor": domain.SYSTEM})
            except ConcurrencyError:
                stored = []
            state, _ = await self.repository.load(domain.STREAM)
            held = state.current(schedule.year)
            if stored:
                log.info("calendar.seeded", year=schedule.year, source=self.seed_source)
            elif held is not None and held.schedule != schedule:
                log.warning("calendar.file_differs", year=schedule.year, source=self.seed_source,
                            revision=held.revision, why="the log holds the year as entered; enter a change "
                            "through the API (PUT /api/v1/calendar/{year}), not the file")

    async def years(self, asked: CalendarQuery) -> dict[str, Any]:
        """Every entered year (or the one asked for): what holds and its whole history."""
        await self.refresh()
        recorded = await self.store.load(domain.STREAM)
        by_year: dict[int, list[dict[str, Any]]] = {}
        for event in recorded:
            if not domain.EVENTS.knows(event.type):
                continue
            entry: domain.YearEntered = domain.EVENTS.decode(event)
            if asked.year is not None and entry.year != asked.year:
                continue
            by_year.setdefault(entry.year, []).append(_entry_view(event))
        years = []
        for year, history in sorted(by_year.items()):
            for earlier, later in pairwise(history):
                earlier["superseded_by"] = later["revision"]
            years.append({"year": year, "current": history[-1], "history": history})
        return {"years": years}

    async def year(self, year: int) -> dict[str, Any] | None:
        found = (await self.years(CalendarQuery(year=year)))["years"]
        return found[0] if found else None


def seed_entry(seed: calendar_file.FileYear, source: str, at: datetime) -> domain.EnterYear:
    """A year of the calendar file as `system:calendar` enters it; its notice is the file's
    when the file names one, else the file itself."""
    schedule = seed.schedule
    notice = domain.Notice(seed.reference or source, seed.title or f"{schedule.year}, from {source} at start")
    return domain.EnterYear(schedule.year, tuple(sorted(schedule.holidays)), tuple(sorted(schedule.workdays)),
                            notice, by=domain.SYSTEM, at=at)


def _entry_view(event: RecordedEvent) -> dict[str, Any]:
    data = dict(event.data)
    return {**data, "superseded_by": None, "position": event.position, "recorded_at": event.recorded_at.isoformat(),
            "correlation_id": event.meta.get("correlation_id")}


# One per event store (per database this process writes): the deadlines' registry is the
# process's, the version seen is the store's. A WeakKeyDictionary, so a store closed and
# dropped (tests start many) takes its entry with it.
_CALENDARS: weakref.WeakKeyDictionary[EventStore, OfficialCalendar] = weakref.WeakKeyDictionary()


def calendar_for(store: EventStore) -> OfficialCalendar:
    found = _CALENDARS.get(store)
    if found is None:
        found = _CALENDARS[store] = OfficialCalendar(store)
    return found


def start(store: EventStore, source: Path | None = None, *,
          now: Callable[[], datetime] = utc_now) -> OfficialCalendar:
    """At the service's start: read the calendar file (a file that does not read, or a
    year in it the rule refuses, stops the start, naming the entry) and make this
    store's calendar, which enters the file's new years into the log on its first refresh."""
    path = source or calendar_file.path()
    seeds = calendar_file.entries(path)
    for seed in seeds:  # refused now, at start, rather than at the first request
        try:
            domain.check(seed_entry(seed, path.name, now()))
        except Rejected as refused:  # named as the file names it: the year's table
            raise Rejected(refused.code, f"calendar.{seed.schedule.year}.{refused.field}",
                           f"{path}: {refused.message}") from None
    calendar = OfficialCalendar(store, now, seeds, path.name)
    _CALENDARS[store] = calendar
    return calendar


async def refresh(store: EventStore) -> bool:
    """rule D2, for whoever decides deadlines (`Tickets.open`, a resume, coverage found):
    call before deciding, so that a year entered on another replica counts here too. One
    indexed read when nothing changed. True when it reloaded."""
    return await calendar_for(store).refresh()
