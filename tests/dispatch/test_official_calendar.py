"""Official calendar years entered by hand (rule D2): the file the dispatch service reads
at start, and its refusals, each naming the entry."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from weibao.dispatch.adapters import official_calendar
from weibao.dispatch.domain.deadlines import BusinessCalendar, official, publish, withdraw
from weibao.shared.errors import Rejected


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "official_calendar.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_d2_a_notice_entered_as_dates_and_ranges_is_read_into_a_year(tmp_path: Path) -> None:
    path = write(tmp_path, '[2099]\nholidays = ["2099-01-01", "2099-02-06..2099-02-09"]\nworkdays = ["2099-02-14"]\n')
    (year,) = official_calendar.load(path)
    assert year.year == 2099
    assert year.holidays == {date(2099, 1, 1), *(date(2099, 2, d) for d in range(6, 10))}
    assert year.workdays == {date(2099, 2, 14)}
    publish(year)
    try:
        calendar = BusinessCalendar()
        assert official(2099)
        assert not calendar.is_workday(date(2099, 2, 9))  # a Monday inside the range
        assert calendar.is_workday(date(2099, 2, 14))  # the Saturday worked instead
    finally:
        withdraw(2099)


def test_d2_the_packaged_file_enters_nothing_until_a_vendor_writes_a_year() -> None:
    assert official_calendar.load(official_calendar.PACKAGED) == []  # commented examples only
    assert official_calendar.load(Path("/nonexistent/official_calendar.toml")) == []


def test_d2_the_environment_names_another_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(official_calendar.ENV, str(tmp_path / "mine.toml"))
    assert official_calendar.path() == tmp_path / "mine.toml"
    monkeypatch.delenv(official_calendar.ENV)
    assert official_calendar.path() == official_calendar.PACKAGED


@pytest.mark.parametrize(("text", "field"), [
    ('[2099]\nholidays = ["2099-02-30"]\n', "calendar.2099.holidays[0]"),
    ('[2099]\nholidays = ["2099-01-01", "2099-02-09..2099-02-06"]\n', "calendar.2099.holidays[1]"),
    ('[2099]\nholidays = "2099-01-01"\n', "calendar.2099.holidays"),
    ('[2099]\nholidays = [20990101]\n', "calendar.2099.holidays[0]"),
    ('[2099]\nholiday = ["2099-01-01"]\n', "calendar.2099.holiday"),
    ('[next]\nholidays = []\n', "calendar.next"),
    ('[2099]\nworkdays = ["2099-02-10"]\n', "calendar.2099"),  # a Tuesday is no swapped day
    ('[2099\n', "calendar"),
])
def test_d2_an_entry_that_does_not_read_is_refused_naming_it(tmp_path: Path, text: str, field: str) -> None:
    with pytest.raises(Rejected) as refused:
        official_calendar.load(write(tmp_path, text))
    assert refused.value.field == field and refused.value.code == "invalid"
