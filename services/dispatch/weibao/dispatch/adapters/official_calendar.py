"""The official calendar file (rule D2): seed data for dispatch's log, read at start.

The State Council's notice of next year's holidays (国务院办公厅关于某年部分节假日安排的
通知) comes out late in the year; a `chinese-calendar` release carrying it can come weeks
later. An admin enters it through the API (`weibao.dispatch.calendar.enter`, `PUT
/api/v1/calendar/{year}`): an event in dispatch's log, in effect at once on every replica.
A year can also be written here, as the packaged seed or for an installation without the
API at hand:

    [2027]
    reference = "国办发明电〔2026〕7号"  # the notice's document number (optional)
    title = "国务院办公厅关于2027年部分节假日安排的通知"  # (optional)
    holidays = ["2027-01-01", "2027-02-06..2027-02-12"]  # days off; a range is inclusive
    workdays = ["2027-02-14"]  # weekend days worked instead (调休)

At start, a year here that the log does not hold yet is entered into the log as
`system:calendar` (application/official_calendar.py says why the log, not the file, is
the record); a year the log holds is left as the log has it. The file is
`official_calendar.toml` beside the package, or the one named by
`WEIBAO_OFFICIAL_CALENDAR`. A file that does not read is refused at start, naming the
entry, rather than half used."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from weibao.dispatch.domain.deadlines import YearSchedule
from weibao.shared.errors import Rejected, require
from weibao.shared.settings import environment

PACKAGED = Path(__file__).resolve().parent.parent / "official_calendar.toml"
ENV = "WEIBAO_OFFICIAL_CALENDAR"


def path() -> Path:
    chosen = environment().official_calendar
    return Path(chosen) if chosen else PACKAGED


@dataclass(frozen=True)
class FileYear:
    """One year of the file: its schedule and, when the file says, the notice's
    reference and title."""

    schedule: YearSchedule
    reference: str | None = None
    title: str | None = None


KEYS = ("reference", "title", "holidays", "workdays")


def load(source: Path) -> list[YearSchedule]:
    """Every year's schedule in the file; a missing file is no year entered."""
    return [entry.schedule for entry in entries(source)]


def entries(source: Path) -> list[FileYear]:
    """Every year in the file with its notice; a missing file is no year entered."""
    if not source.exists():
        return []
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise Rejected("invalid", "calendar", f"{source}: not TOML: {error}") from error
    return [_year(key, entry) for key, entry in data.items()]


def _year(key: str, entry: Any) -> FileYear:
    field = f"calendar.{key}"
    require(key.isdigit() and len(key) == 4, "invalid", field, "a table per year, named by its four digits")
    require(isinstance(entry, dict), "invalid", field, "a table with `holidays` and `workdays`")
    unknown = sorted(set(entry) - set(KEYS))
    require(not unknown, "invalid", f"{field}.{unknown[0] if unknown else ''}",
            "only `reference`, `title`, `holidays` and `workdays`")
    for name in ("reference", "title"):
        require(isinstance(entry.get(name, ""), str), "invalid", f"{field}.{name}", "text")
    schedule = YearSchedule(int(key), _days(entry.get("holidays", []), f"{field}.holidays"),
                            _days(entry.get("workdays", []), f"{field}.workdays"))
    return FileYear(schedule, entry.get("reference") or None, entry.get("title") or None)


def _days(items: Any, field: str) -> frozenset[date]:
    require(isinstance(items, list), "invalid", field,
            "a list of dates (YYYY-MM-DD) or ranges (YYYY-MM-DD..YYYY-MM-DD)")
    days: set[date] = set()
    for i, item in enumerate(items):
        where = f"{field}[{i}]"
        require(isinstance(item, str), "invalid", where, "a date as text, YYYY-MM-DD")
        first, _, last = item.partition("..")
        start, end = _date(first, where), _date(last or first, where)
        require(start <= end, "invalid", where, "a range ends on or after its first day")
        days.update(start + timedelta(days=n) for n in range((end - start).days + 1))
    return frozenset(days)


def _date(text: str, where: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise Rejected("invalid", where, f"not a date (YYYY-MM-DD): {text!r}") from None
