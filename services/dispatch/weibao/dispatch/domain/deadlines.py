"""The deadlines of one request: when they fall, pauses, stops, and what to announce.

rule D1: the deadlines come from the coverage's `Sla` (C9, C14, C15). rule D2: they
count in the agreement's calendar: clock hours, or service hours (C20) on working days
of the official Chinese calendar, public holidays and swapped working days (调休)
included, in the servicing office's time zone. The official calendar comes from the
`chinese_calendar` package, a pure data library, or from a year's schedule the vendor
entered from the State Council's notice (`YearSchedule`, `publish`): the notice comes
late in the year before, often ahead of a package release. A year known to neither is
counted on the regular Monday-to-Friday week, and the deadlines say so (`provisional`):
a customer's call on 30 December is taken, not refused, and the dispatcher sees which
due times are provisional. Due times are stored when decided, so a schedule entered
later does not move what a request was promised.

Service days (rule C20, `service_days`, the ISO weekdays the desk serves, Monday to
Friday unless the agreement says otherwise): on the working calendar a day is a
service day when its weekday is one the desk serves, or the official calendar swaps
it into a working day (调休), and it is not an official public holiday. A public
holiday is a day of the notice's holiday period (放假), weekends inside it included:
a day `YearSchedule.holidays` lists, or one `chinese_calendar.get_holiday_detail`
names a holiday (an ordinary weekend has no name there). So "7 days a week" (C20)
serves ordinary weekends and not the Spring Festival or National Day; with the
default Monday to Friday a service day is exactly an official working day. A year
known to neither source has no holidays and no swaps: the desk's own week, marked
provisional as above.

rule C16: under 24-hour phone support a request by phone has its respond clock
counted around the clock; each clock counts, pauses and resumes on its own timeline
(`Deadlines.timeline_of`), the others on the agreement's.

Pure: no I/O, no clock. `now` and every instant come in as arguments and must be
aware. The state (`Deadlines`) moves by methods that return a new state, and the
announcements are a decide/evolve pair: `evaluate(deadlines, now)` decides which of
`DeadlineAtRisk`, `DeadlineBreached`, `DeadlineMet` are due, and `evolve` folds them
back in, so each is announced once.

At risk: a running deadline is at risk once no more than a threshold of its business
time remains: 20% of the allowed time by default (`RiskPolicy(fraction=0.2)`), or a
fixed lead (`RiskPolicy(lead=timedelta(hours=1))`). Events carry the instant the fact
became true (the at-risk instant, the due instant, the stop), not the instant someone
looked, so two evaluations at different times decide the same events."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Literal, assert_never
from zoneinfo import ZoneInfo

import chinese_calendar  # type: ignore[import-untyped]

from weibao.dispatch.domain.sla import DEFAULT_SERVICE_HOURS, Kind, ServiceHours, Sla
from weibao.shared.errors import Rejected, require
from weibao.shared.public.contracts import MONDAY_TO_FRIDAY
from weibao.shared.public.dispatch import Announcement, CalendarKind, ClockStatus

# rule C20: the servicing office's local time; every Chinese office keeps Beijing time.
OFFICE_TZ: tzinfo = ZoneInfo("Asia/Shanghai")

Milestone = Literal["responded", "arrived", "resolved"]
Status = ClockStatus

# A later milestone implies the earlier ones: rule D5, a valid check-in stops the
# response and the arrival clocks; a resolution (on site or remote) stops them all.
# Issue 13 (C15): a first response is a technician's acceptance, or a remote
# resolution (D3), which is a response and a resolution at once.
STOPS: Mapping[Milestone, tuple[Kind, ...]] = {
    "responded": ("respond",),
    "arrived": ("respond", "arrive"),
    "resolved": ("respond", "arrive", "resolve"),
}

# datetime's resolution: a deadline is breached at the first instant past it.
_TICK = timedelta(microseconds=1)


@dataclass(frozen=True)
class YearSchedule:
    """rule D2: one year's official schedule as the State Council's notice gives it: the
    public holidays (days off, weekdays among them) and the weekend days swapped into
    working days (调休)."""

    year: int
    holidays: frozenset[date]
    workdays: frozenset[date]

    def __post_init__(self) -> None:
        field = f"calendar.{self.year}"
        require(all(d.year == self.year for d in self.holidays | self.workdays), "invalid", field,
                f"every date of the {self.year} schedule lies in {self.year}")
        both = sorted(self.holidays & self.workdays)
        require(not both, "invalid", field, f"a day is a holiday or a working day, not both: "
                f"{', '.join(d.isoformat() for d in both)}")
        weekdays = sorted(d for d in self.workdays if d.weekday() < 5)
        require(not weekdays, "invalid", field, f"a swapped working day (调休) is a Saturday or Sunday: "
                f"{', '.join(d.isoformat() for d in weekdays)}")

    def is_workday(self, day: date) -> bool:
        return day in self.workdays or (day.weekday() < 5 and day not in self.holidays)


# Years the vendor entered from the State Council's notice (adapters/official_calendar
# reads them at start). Reference data, like chinese_calendar's own tables: a deadline
# is computed from it once and stored, never recomputed from it on replay.
_PUBLISHED: dict[int, YearSchedule] = {}


def publish(*schedules: YearSchedule) -> None:
    """Take these years' schedules; an entered year wins over the package's data (the
    notice can be newer than the release, and the State Council has amended a year)."""
    for schedule in schedules:
        _PUBLISHED[schedule.year] = schedule


def withdraw(*years: int) -> None:
    for year in years:
        _PUBLISHED.pop(year, None)


def official(year: int) -> bool:
    """Is this year's official calendar known (entered, or in the package)?"""
    if year in _PUBLISHED:
        return True
    try:
        chinese_calendar.is_workday(date(year, 6, 1))
    except NotImplementedError:  # how chinese_calendar says "no data for that year"
        return False
    return True


def _aware(value: datetime, name: str) -> datetime:
    require(value.tzinfo is not None and value.utcoffset() is not None, "invalid", name,
            "a time with its zone (the office's, or UTC), not a naive one")
    return value


def _official_day(day: date) -> tuple[bool, bool]:
    """(a public holiday, a weekend day swapped into a working day 调休) by the official
    calendar; neither in a year it does not know (see the module's note on service days)."""
    schedule = _PUBLISHED.get(day.year)
    if schedule is not None:
        return day in schedule.holidays, day in schedule.workdays
    try:
        off, name = chinese_calendar.get_holiday_detail(day)
    except NotImplementedError:  # no data for that year: the desk's own week, marked provisional
        return False, False
    return bool(off) and name is not None, not off and day.weekday() >= 5


@dataclass(frozen=True)
class BusinessCalendar:
    """The official Chinese calendar with a daily service window (rules C20, D2) on the
    weekdays the desk serves (C20, `service_days`, ISO: 1 = Monday)."""

    service_hours: ServiceHours = DEFAULT_SERVICE_HOURS
    tz: tzinfo = OFFICE_TZ
    service_days: tuple[int, ...] = MONDAY_TO_FRIDAY

    def __post_init__(self) -> None:
        opens, closes = self.service_hours
        require(opens < closes, "invalid", "service_hours", "the window opens before it closes, the same day")
        require(bool(self.service_days) and all(1 <= d <= 7 for d in self.service_days), "invalid",
                "service_days", "the ISO weekdays served: 1 (Monday) to 7 (Sunday)")

    def is_workday(self, day: date) -> bool:
        """Mon-Fri unless a public holiday, and the weekend days swapped into working days (调休)."""
        if isinstance(day, datetime):  # the office's date of that instant
            day = _aware(day, "day").astimezone(self.tz).date()
        schedule = _PUBLISHED.get(day.year)
        if schedule is not None:
            return schedule.is_workday(day)
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:  # no data for that year: the regular week, marked provisional
            return day.weekday() < 5

    def is_holiday(self, day: date) -> bool:
        """A day off: a weekend not swapped into a working day, or a public holiday."""
        return not self.is_workday(day)

    def is_service_day(self, day: date) -> bool:
        """rule C20: a weekday the desk serves or a swapped working day (调休), and not an
        official public holiday; with Monday to Friday, exactly `is_workday`."""
        if isinstance(day, datetime):
            day = _aware(day, "day").astimezone(self.tz).date()
        public_holiday, swapped = _official_day(day)
        return (day.isoweekday() in self.service_days or swapped) and not public_holiday

    def window(self, day: date) -> tuple[datetime, datetime] | None:
        """The service window of a service day, in the office's time; None on a day off."""
        if not self.is_service_day(day):
            return None
        opens, closes = self.service_hours
        return datetime.combine(day, opens, tzinfo=self.tz), datetime.combine(day, closes, tzinfo=self.tz)

    def add(self, start: datetime, span: timedelta) -> datetime:
        """The instant when `span` of service time on service days has passed since `start`.

        Counting starts at the next opening when `start` is outside service hours, and a
        span used up exactly at closing ends at closing, not at the next opening."""
        require(span >= timedelta(0), "invalid", "span", "a span of business time is not negative")
        cursor = _aware(start, "start").astimezone(self.tz)
        if not span:
            return cursor
        remaining, day = span, cursor.date()
        while True:  # ends: service_days is never empty, and public holidays last days, not weeks
            window = self.window(day)
            if window is not None:
                begin, end = max(cursor, window[0]), window[1]
                if begin < end:
                    if remaining <= end - begin:
                        return begin + remaining
                    remaining -= end - begin
            day += timedelta(days=1)

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Service time on service days from `start` to `end` (none when `end` is not after `start`)."""
        first, last = _aware(start, "start").astimezone(self.tz), _aware(end, "end").astimezone(self.tz)
        total, day = timedelta(0), first.date()
        while day <= last.date():
            window = self.window(day)
            if window is not None:
                begin, finish = max(first, window[0]), min(last, window[1])
                total += max(finish - begin, timedelta(0))
            day += timedelta(days=1)
        return total


@dataclass(frozen=True)
class Timeline:
    """How one agreement counts time (rule D2): clock hours, or business time."""

    calendar: CalendarKind = "clock"
    service_hours: ServiceHours | None = None
    tz: tzinfo = OFFICE_TZ
    service_days: tuple[int, ...] = MONDAY_TO_FRIDAY  # rule C20, on the working calendar

    @property
    def business(self) -> BusinessCalendar:
        return BusinessCalendar(self.service_hours or DEFAULT_SERVICE_HOURS, self.tz, self.service_days)

    def add(self, start: datetime, span: timedelta) -> datetime:
        if self.calendar == "clock":
            # in UTC: aware arithmetic in a zone adds wall time, wrong across a DST change
            return (_aware(start, "start").astimezone(UTC) + span).astimezone(self.tz)
        return self.business.add(start, span)

    def unofficial(self, start: datetime, *ends: datetime) -> frozenset[int]:
        """The years from `start` to the last of `ends` counted without their official
        calendar (none on the clock calendar, which needs no calendar)."""
        if self.calendar == "clock":
            return frozenset()
        first = _aware(start, "start").astimezone(self.tz).year
        last = max((_aware(end, "end").astimezone(self.tz).year for end in ends), default=first)
        return frozenset(year for year in range(first, last + 1) if not official(year))

    def between(self, start: datetime, end: datetime) -> timedelta:
        if self.calendar == "clock":
            return max(_aware(end, "end").astimezone(UTC) - _aware(start, "start").astimezone(UTC), timedelta(0))
        return self.business.between(start, end)


def _around_the_clock(timeline: Timeline) -> Timeline:
    """rule C16: the clock calendar in the same office's zone."""
    return Timeline("clock", None, timeline.tz)


def add_business_time(start: datetime, span: timedelta, calendar: CalendarKind,
                      service_hours: ServiceHours | None = None, *, tz: tzinfo = OFFICE_TZ,
                      service_days: tuple[int, ...] = MONDAY_TO_FRIDAY) -> datetime:
    """rule D2: clock mode adds; working mode counts only service hours (C20, default
    09:00-18:00) on service days (C20, default the official working days). The result is in `tz`."""
    return Timeline(calendar, service_hours, tz, service_days).add(start, span)


def business_time_between(start: datetime, end: datetime, calendar: CalendarKind,
                          service_hours: ServiceHours | None = None, *, tz: tzinfo = OFFICE_TZ,
                          service_days: tuple[int, ...] = MONDAY_TO_FRIDAY) -> timedelta:
    """rule D2: the time from `start` to `end` that counts towards a deadline."""
    return Timeline(calendar, service_hours, tz, service_days).between(start, end)


# -- state ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RiskPolicy:
    """When a running deadline is at risk: once no more than `lead` (if given), else
    `fraction` of its allowed business time, remains."""

    fraction: float = 0.2
    lead: timedelta | None = None

    def __post_init__(self) -> None:
        require(0 <= self.fraction <= 1, "invalid", "fraction", "between 0 and 1")
        require(self.lead is None or self.lead >= timedelta(0), "invalid", "lead", "not negative")

    def threshold(self, allowed: timedelta) -> timedelta:
        return min(self.lead, allowed) if self.lead is not None else allowed * self.fraction


DEFAULT_RISK = RiskPolicy()


@dataclass(frozen=True)
class Clock:
    """One deadline: how much business time it allows and when it runs out."""

    kind: Kind
    allowed: timedelta
    due: datetime  # moved on by pauses
    risk_from: datetime  # when only the at-risk threshold remains; moved on by pauses
    stopped_at: datetime | None = None  # the earliest stop (D5: reports may come late, out of order, twice)
    met: bool | None = None  # decided at the stop
    announced: frozenset[Announcement] = frozenset()
    # rule C16: counted on the clock calendar, whatever the agreement's (a phone request's
    # respond clock under 24-hour phone support)
    around_the_clock: bool = False

    def status(self, now: datetime) -> Status:
        if self.met is not None:
            return "met" if self.met else "breached"
        if now > self.due:
            return "breached"
        return "at_risk" if now >= self.risk_from else "on_track"


@dataclass(frozen=True)
class Deadlines:
    """The deadline clocks of one request (rules D1, D2, D5)."""

    requested_at: datetime
    timeline: Timeline
    clocks: tuple[Clock, ...]
    paused_at: datetime | None = None  # waiting on the customer since
    paused_total: timedelta = timedelta(0)  # business time spent waiting on the customer
    # Years whose official calendar was unknown when due times were counted through them:
    # the regular week stood in (D2). Shown beside the due times; never cleared.
    provisional: frozenset[int] = frozenset()

    @classmethod
    def start(cls, requested_at: datetime, sla: Sla, *, risk: RiskPolicy = DEFAULT_RISK,
              tz: tzinfo = OFFICE_TZ) -> Deadlines:
        """rule D1: each deadline the SLA sets, counted from the request in its calendar (D2)."""
        _aware(requested_at, "requested_at")
        timeline = Timeline(sla.calendar, sla.service_hours, tz, sla.service_days)
        arrive = sla.arrive_within.business_time(sla.calendar, sla.service_hours) if sla.arrive_within else None
        allowances: tuple[tuple[Kind, timedelta | None], ...] = (
            ("respond", sla.respond_within), ("arrive", arrive), ("resolve", sla.resolve_within))
        clocks: list[Clock] = []
        for kind, allowed in allowances:
            if allowed is None:
                continue
            around = kind in sla.around_the_clock  # rule C16
            counted = _around_the_clock(timeline) if around else timeline
            clocks.append(Clock(kind, allowed, counted.add(requested_at, allowed),
                                counted.add(requested_at, allowed - risk.threshold(allowed)), around_the_clock=around))
        return cls(requested_at.astimezone(tz), timeline, tuple(clocks),
                   provisional=timeline.unofficial(requested_at, *(c.due for c in clocks if not c.around_the_clock)))

    def timeline_of(self, clock: Clock) -> Timeline:
        """The timeline a clock counts on: the agreement's, or the clock calendar (C16)."""
        return _around_the_clock(self.timeline) if clock.around_the_clock else self.timeline

    def clock(self, kind: Kind) -> Clock | None:
        return next((clock for clock in self.clocks if clock.kind == kind), None)

    @property
    def respond_by(self) -> datetime | None:
        return self._due("respond")

    @property
    def arrive_by(self) -> datetime | None:
        return self._due("arrive")

    @property
    def resolve_by(self) -> datetime | None:
        return self._due("resolve")

    def _due(self, kind: Kind) -> datetime | None:
        clock = self.clock(kind)
        return clock.due if clock else None

    def frozen_at(self, now: datetime) -> datetime:
        """The instant that counts: while waiting on the customer the clocks stand still."""
        _aware(now, "now")
        return now if self.paused_at is None else min(now, self.paused_at)

    def pause(self, at: datetime) -> Deadlines:
        """Waiting on the customer: no business time counts until `resume`."""
        require(self.paused_at is None, "conflict", "paused_at", "already waiting on the customer")
        require(_aware(at, "at") >= self.requested_at, "invalid", "at", "a pause starts after the request")
        return replace(self, paused_at=at)

    def resume(self, at: datetime) -> Deadlines:
        """Deadlines not yet run out move on by the business time spent waiting."""
        paused_at = self.paused_at
        if paused_at is None:
            raise Rejected("conflict", "paused_at", "not waiting on the customer")
        require(_aware(at, "at") >= paused_at, "invalid", "at", "a pause ends after it starts")
        # The wait in the agreement's calendar (`paused_total`); each clock moves by the
        # wait in its own (C16: a clock counted around the clock waited every hour of it).
        waited = self.timeline.between(paused_at, at)

        def moved(clock: Clock) -> Clock:
            timeline = self.timeline_of(clock)
            spent = timeline.between(paused_at, at)

            def shifted(instant: datetime) -> datetime:
                # An instant already passed when the pause began (at risk, or run out) stays passed.
                return timeline.add(instant, spent) if instant > paused_at else instant

            return replace(clock, due=shifted(clock.due), risk_from=shifted(clock.risk_from))

        clocks = tuple(clock if clock.met is not None else moved(clock) for clock in self.clocks)
        provisional = self.provisional | self.timeline.unofficial(
            paused_at, at, *(c.due for c in clocks if not c.around_the_clock))
        return replace(self, clocks=clocks, paused_at=None, paused_total=self.paused_total + waited,
                       provisional=provisional)

    def stop(self, milestone: Milestone, at: datetime) -> Deadlines:
        """Someone responded (accepted the visit, or resolved remotely: C15), arrived (a
        valid check-in, D5) or resolved at `at`: the clocks it stops are met if it
        happened by their due, else breached. A repeated or later report changes nothing;
        an earlier one (an offline phone, D5) replaces the stop: the clock stops when the
        technician acted, so a breach announced before the report arrived is corrected."""
        require(_aware(at, "at") >= self.requested_at, "invalid", "at", "a stop comes after the request")
        counted = self.frozen_at(at)
        clocks = tuple(
            replace(clock, stopped_at=at, met=counted <= clock.due)
            if clock.kind in STOPS[milestone] and (clock.stopped_at is None or at < clock.stopped_at) else clock
            for clock in self.clocks)
        return replace(self, clocks=clocks)

    def status(self, now: datetime, kind: Kind | None = None) -> Status:
        """One clock's status, or the request's: breached if any is, else at risk if any
        is, else met when all are stopped in time, else on track (also with no deadline)."""
        counted = self.frozen_at(now)
        if kind is not None:
            clock = self.clock(kind)
            if clock is None:
                raise Rejected("not_found", "kind", f"the SLA sets no {kind} deadline")
            return clock.status(counted)
        statuses = {clock.status(counted) for clock in self.clocks}
        if "breached" in statuses:
            return "breached"
        if "at_risk" in statuses:
            return "at_risk"
        return "met" if statuses == {"met"} else "on_track"


# -- announcements: decide and evolve ------------------------------------------------


@dataclass(frozen=True)
class DeadlineAtRisk:
    kind: Kind
    due: datetime
    at: datetime  # when only the at-risk threshold remained


@dataclass(frozen=True)
class DeadlineBreached:
    kind: Kind
    due: datetime
    at: datetime  # the due instant: the clock ran out then


@dataclass(frozen=True)
class DeadlineMet:
    kind: Kind
    due: datetime
    at: datetime  # the stop


DeadlineEvent = DeadlineAtRisk | DeadlineBreached | DeadlineMet


def evaluate(deadlines: Deadlines, now: datetime) -> list[DeadlineEvent]:
    """Decide what is newly true at `now`, each fact once (the state remembers what was
    announced). A clock found past due unannounced as at risk is only announced
    breached. A stopped clock is announced met or breached once, and nothing after
    (no at-risk, no breach later: C15). A clock announced breached and then found
    stopped in time (a late report from an offline phone, D5) is announced met: the
    later fact corrects."""
    counted = deadlines.frozen_at(now)
    events: list[DeadlineEvent] = []
    for clock in deadlines.clocks:
        if clock.met and clock.stopped_at is not None:
            if "met" not in clock.announced:
                events.append(DeadlineMet(clock.kind, clock.due, clock.stopped_at))
        elif clock.met is False or counted > clock.due:
            if "breached" not in clock.announced:
                events.append(DeadlineBreached(clock.kind, clock.due, clock.due))
        elif counted >= clock.risk_from and "at_risk" not in clock.announced:
            events.append(DeadlineAtRisk(clock.kind, clock.due, clock.risk_from))
    return events


def evolve(deadlines: Deadlines, event: DeadlineEvent) -> Deadlines:
    """Remember an announcement, so `evaluate` does not decide it again. A breach
    announced of a clock already stopped in time can only come from a log written under
    earlier rules (before an acceptance stopped the respond clock, C15): what was
    published then stands, and is not turned into a late "met" now."""
    marks: frozenset[Announcement]
    match event:
        case DeadlineAtRisk():
            marks = frozenset({"at_risk"})
        case DeadlineBreached():
            marks = frozenset({"at_risk", "breached"})  # a breach makes a later "at risk" moot
        case DeadlineMet():
            marks = frozenset({"met"})
        case _:
            assert_never(event)

    def marked(clock: Clock) -> Clock:
        met = False if isinstance(event, DeadlineBreached) and clock.met else clock.met
        return replace(clock, announced=clock.announced | marks, met=met)

    return replace(deadlines, clocks=tuple(
        marked(clock) if clock.kind == event.kind else clock for clock in deadlines.clocks))


def next_evaluation(deadlines: Deadlines) -> datetime | None:
    """The next instant at which `evaluate` will have something new to say, for the
    application's timer; None while waiting on the customer or when nothing is left."""
    if deadlines.paused_at is not None:
        return None
    instants: list[datetime] = []
    for clock in deadlines.clocks:
        if clock.stopped_at is not None:
            pending = "met" if clock.met else "breached"
            if pending not in clock.announced:
                instants.append(clock.stopped_at)
        elif "breached" not in clock.announced:
            instants.append(clock.due + _TICK)
            if "at_risk" not in clock.announced:
                instants.append(clock.risk_from)
    return min(instants, default=None)
