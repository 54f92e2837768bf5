"""The official Chinese calendar as entered from the State Council's notices (rule D2).

The notice of a year's public holidays and swapped working days (调休) (国务院办公厅关于
某年部分节假日安排的通知) comes out late in the year before, often ahead of a
`chinese-calendar` release carrying it. An admin enters it; the entry is a fact in
dispatch's log: who entered it, when, from which notice. The State Council has amended a
year's notice before: entering the year again is a new entry that supersedes the last,
with a reason, and the history of every year stays readable.

Pure: the time and the actor come in with the command. What a year's schedule may be is
the deadlines module's rule (`YearSchedule`: dates inside the year, a day a holiday or a
working day, not both, a swapped working day on a weekend); it is checked here first
date by date, so a refusal names the field and the date in words, and then by
`YearSchedule` itself, the one rule the business calendar counts with.

Due times are stored on a request when decided (`DeadlinesSet`, `TicketOpened`): an entry
changes only deadlines decided after it, never one a customer was already promised."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime

from weibao.dispatch.domain.deadlines import YearSchedule
from weibao.shared.codec import Codec
from weibao.shared.errors import Rejected, require

# One stream for the whole calendar: its version is all a replica compares to know
# whether anything was entered since it last looked (one indexed read per check).
STREAM = "official-calendar"

# The years an entry may be for: the State Council's calendar as this system will meet
# it; outside them a year is a typo (1900, 20277), not a notice.
FIRST_YEAR, LAST_YEAR = 2000, 2100
# A year has at most 366 days: more dates than that cannot be one year's schedule.
MAX_DATES = 366
MAX_REFERENCE, MAX_TITLE, MAX_REASON = 200, 500, 2000

# Who enters a year found in the packaged file (or WEIBAO_OFFICIAL_CALENDAR's) at start.
SYSTEM = "system:calendar"
# Whose entries are taken: an admin's (the actor as the gateway or the CLI proves it).
ENTERING_ROLES = ("admin:",)

_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class Notice:
    """The State Council's notice the dates come from: its document number (文号, e.g.
    国办发明电〔2026〕7号) and its title."""

    reference: str
    title: str


# -- commands ----------------------------------------------------------------------


@dataclass(frozen=True)
class EnterYear:
    """An admin enters (or enters again) one year's official schedule."""

    year: int
    holidays: tuple[date, ...]
    workdays: tuple[date, ...]
    notice: Notice
    by: str
    at: datetime
    reason: str = ""  # required when the year was entered before: why it changes


@dataclass(frozen=True)
class SeedYear:
    """A year read from the calendar file at start: entered only when the log holds no
    entry of that year (the log, not the file, is the record once a year is in it)."""

    entry: EnterYear


Command = EnterYear | SeedYear


# -- events ------------------------------------------------------------------------


@dataclass(frozen=True)
class YearEntered:
    """One year's schedule as entered; `revision` 1 is the first entry of the year, a
    higher one supersedes revision - 1 (with the `reason`)."""

    year: int
    revision: int
    holidays: tuple[date, ...]  # sorted, each once
    workdays: tuple[date, ...]
    notice: Notice
    by: str
    at: datetime
    reason: str = ""

    @property
    def schedule(self) -> YearSchedule:
        return YearSchedule(self.year, frozenset(self.holidays), frozenset(self.workdays))

    def same_content(self, other: EnterYear) -> bool:
        """The same days from the same notice: entering it again changes nothing."""
        return (self.holidays, self.workdays, self.notice) == (
            tuple(sorted(other.holidays)), tuple(sorted(other.workdays)), _notice(other.notice))


Event = YearEntered
# Stored as `private.YearEntered`, on dispatch's stream as `dispatch.private.YearEntered`.
EVENTS = Codec([YearEntered], prefix="private.")


# -- state -------------------------------------------------------------------------


@dataclass(frozen=True)
class Calendar:
    """Every year's entries, oldest first; the last one of a year is what holds."""

    years: Mapping[int, tuple[YearEntered, ...]] = field(default_factory=dict)

    def current(self, year: int) -> YearEntered | None:
        entries = self.years.get(year)
        return entries[-1] if entries else None

    def schedules(self) -> list[YearSchedule]:
        return [entries[-1].schedule for _, entries in sorted(self.years.items()) if entries]


# -- the rule ----------------------------------------------------------------------


def check(command: EnterYear) -> None:
    """The first thing wrong with a year's schedule, as a refusal naming its field; the
    order is the body's (year, holidays, workdays, notice, reason)."""
    year = command.year
    require(not isinstance(year, bool) and isinstance(year, int) and FIRST_YEAR <= year <= LAST_YEAR,
            "invalid", "year", f"a year from {FIRST_YEAR} to {LAST_YEAR}")
    counted = len(command.holidays) + len(command.workdays)
    require(counted <= MAX_DATES, "invalid", "holidays" if len(command.holidays) > len(command.workdays)
            else "workdays", f"at most {MAX_DATES} dates in all (a year has no more days): {counted} given")
    for name, days in (("holidays", command.holidays), ("workdays", command.workdays)):
        seen: set[date] = set()
        for i, day in enumerate(days):
            where = f"{name}[{i}]"
            require(day.year == year, "invalid", where,
                    f"{day.isoformat()} is not in {year}: every date of the {year} schedule lies in {year}")
            require(day not in seen, "duplicate", where, f"{day.isoformat()} is listed twice")
            seen.add(day)
    holidays = set(command.holidays)
    for i, day in enumerate(command.workdays):
        where = f"workdays[{i}]"
        require(day not in holidays, "invalid", where,
                f"{day.isoformat()} is also among the holidays: a day is a holiday or a working day, not both")
        require(day.weekday() >= 5, "invalid", where,
                f"{day.isoformat()} is a {_WEEKDAYS[day.weekday()]}: a swapped working day (调休) is a Saturday "
                "or a Sunday worked instead of a holiday")
    notice = _notice(command.notice)
    require(0 < len(notice.reference) <= MAX_REFERENCE, "missing" if not notice.reference else "invalid",
            "notice.reference", f"the notice's document number (文号), 1 to {MAX_REFERENCE} characters")
    require(0 < len(notice.title) <= MAX_TITLE, "missing" if not notice.title else "invalid", "notice.title",
            f"the notice's title, 1 to {MAX_TITLE} characters")
    require(len(command.reason) <= MAX_REASON, "invalid", "reason", f"at most {MAX_REASON} characters")
    require(bool(command.by.strip()), "missing", "by", "who enters the year")
    try:  # the business calendar's own rule, whatever it grows into
        YearSchedule(year, frozenset(command.holidays), frozenset(command.workdays))
    except Rejected as refused:
        raise Rejected(refused.code, "holidays", refused.message) from None


def _notice(notice: Notice) -> Notice:
    return Notice(notice.reference.strip(), notice.title.strip())


def decide(command: Command, state: Calendar) -> list[Event]:
    match command:
        case SeedYear(entry=entry):
            check(entry)
            if state.current(entry.year) is not None:
                return []  # the log holds the year: the file does not overrule it
            return [_entered(entry, 1)]
        case EnterYear():
            # The gateway lets only an admin in; the CLI names its actor too: the calendar
            # moves every customer's deadlines, so the rule holds here, whoever asks.
            require(command.by.startswith(ENTERING_ROLES), "forbidden", "(role)",
                    f"only an admin enters the official calendar, not {command.by or 'an unnamed caller'}")
            check(command)
            current = state.current(command.year)
            if current is None:
                return [_entered(command, 1)]
            if current.same_content(command):
                return []  # the same notice's days again: what holds already holds
            require(bool(command.reason.strip()), "missing", "reason",
                    f"{command.year} was entered before (revision {current.revision}, by {current.by}): say why "
                    "it is entered again, e.g. the State Council amended its notice")
            return [_entered(command, current.revision + 1)]
    raise AssertionError(command)


def _entered(command: EnterYear, revision: int) -> YearEntered:
    return YearEntered(command.year, revision, tuple(sorted(command.holidays)), tuple(sorted(command.workdays)),
                       _notice(command.notice), command.by.strip(), command.at, command.reason.strip())


def evolve(state: Calendar, event: Event) -> Calendar:
    match event:
        case YearEntered():
            years = dict(state.years)
            years[event.year] = (*years.get(event.year, ()), event)
            return replace(state, years=years)
    raise AssertionError(event)
