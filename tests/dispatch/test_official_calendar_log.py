"""rule D2: the official calendar as data with a history (issue 13, item 10).

A year's schedule from the State Council's notice is entered as an event in dispatch's
log (who, when, which notice); entering it again is a new event that supersedes, with a
reason; every year's history is readable. A request opened after an entry counts the
year's holidays and swapped working days (调休); one opened before keeps its stored due
time. Another replica on the same database takes the entry before its next deadline,
without a restart. Bad input is refused naming the field and stores nothing.

The 2027 notice below is made up for the tests (chinese-calendar 1.11 ends with 2026):
Spring Festival holidays from Saturday 6 to Friday 12 February 2027, Saturday 13 worked
instead; an amendment moves the worked day to Sunday 14."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client as NATS
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import database_url
from tests.decider import Decider
from tests.dispatch.conftest import HEFEI_OFFICE, SITE, ask, ok, running
from tests.helpers import eventually
from weibao.dispatch.adapters import official_calendar as calendar_file
from weibao.dispatch.application import official_calendar as application
from weibao.dispatch.domain import deadlines
from weibao.dispatch.domain import official_calendar as domain
from weibao.dispatch.domain.deadlines import BusinessCalendar, official
from weibao.runtime.natsd import NatsServer
from weibao.shared.commands.calendar import CalendarQuery, EnterCalendarYear
from weibao.shared.db import make_engine, schema_of
from weibao.shared.errors import Rejected
from weibao.shared.eventstore import EventStore
from weibao.shared.service import Settings

ADMIN = "admin:root"
AT = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
SPRING = [date(2027, 2, d) for d in range(6, 13)]  # Sat 6 .. Fri 12 February 2027
NOTICE = {"reference": "国办发明电〔2026〕7号", "title": "国务院办公厅关于2027年部分节假日安排的通知"}
YEAR_2027 = {"year": 2027, "holidays": ["2027-01-01", *(d.isoformat() for d in SPRING)],
             "workdays": ["2027-02-13"], "notice": NOTICE}
AMENDED = {**YEAR_2027, "workdays": ["2027-02-14"], "reason": "国务院办公厅更正: 调休改为2月14日(星期日)",
           "notice": {**NOTICE, "reference": "国办发明电〔2026〕8号"}}


pytestmark = pytest.mark.usefixtures("official_calendar_registry")


def enter(**changes: Any) -> domain.EnterYear:
    fields: dict[str, Any] = {
        "year": 2027, "holidays": (date(2027, 1, 1), *SPRING), "workdays": (date(2027, 2, 13),),
        "notice": domain.Notice(NOTICE["reference"], NOTICE["title"]), "by": ADMIN, "at": AT, **changes}
    return domain.EnterYear(**fields)


# -- the decider: given entries, when a year is entered, then ... ------------------------


CALENDAR = Decider(decide=domain.decide, evolve=domain.evolve, initial=domain.Calendar())


def test_d2_a_first_entry_is_revision_one_with_who_when_and_the_notice() -> None:
    (event,) = domain.decide(enter(), domain.Calendar())
    assert (event.year, event.revision, event.by, event.at, event.notice.reference) == (
        2027, 1, ADMIN, AT, "国办发明电〔2026〕7号")
    assert event.schedule.is_workday(date(2027, 2, 13)) and not event.schedule.is_workday(date(2027, 2, 8))


def test_d2_the_same_year_again_with_the_same_content_stores_nothing() -> None:
    state = CALENDAR.after(enter()).state
    again = enter(holidays=tuple(reversed(enter().holidays)), by="admin:other", at=AT + timedelta(days=1))
    assert domain.decide(again, state) == []  # the order of the dates, who or when: not content


def test_d2_entering_a_year_again_supersedes_it_and_needs_a_reason() -> None:
    state = CALENDAR.after(enter()).state
    amended = enter(workdays=(date(2027, 2, 14),))
    with pytest.raises(Rejected) as refused:
        domain.decide(amended, state)
    assert (refused.value.code, refused.value.field) == ("missing", "reason")
    (event,) = domain.decide(enter(workdays=(date(2027, 2, 14),), reason="amended"), state)
    state = domain.evolve(state, event)
    assert event.revision == 2 and [e.revision for e in state.years[2027]] == [1, 2]
    assert state.current(2027) == event and state.schedules() == [event.schedule]


def test_d2_a_year_in_the_file_is_seeded_only_while_the_log_lacks_it() -> None:
    seeded = domain.decide(domain.SeedYear(enter(by=domain.SYSTEM)), domain.Calendar())
    assert [e.by for e in seeded] == [domain.SYSTEM]
    entered = CALENDAR.after(enter()).state
    assert domain.decide(domain.SeedYear(enter(workdays=(), by=domain.SYSTEM)), entered) == []  # the log holds


@pytest.mark.parametrize(("changes", "code", "field", "words"), [
    ({"holidays": (date(2028, 1, 1),)}, "invalid", "holidays[0]", "2028-01-01 is not in 2027"),
    ({"workdays": (date(2027, 3, 10),)}, "invalid", "workdays[0]", "2027-03-10 is a Wednesday"),
    ({"workdays": (date(2027, 2, 6),)}, "invalid", "workdays[0]", "also among the holidays"),
    ({"year": 1900, "holidays": (), "workdays": ()}, "invalid", "year", "a year from 2000 to 2100"),
    ({"year": 2101, "holidays": (), "workdays": ()}, "invalid", "year", "a year from 2000 to 2100"),
    ({"holidays": tuple(date(2027, 1, 1) + timedelta(days=n % 365) for n in range(400))},
     "invalid", "holidays", "at most 366 dates"),
    ({"holidays": (date(2027, 1, 1), date(2027, 1, 1))}, "duplicate", "holidays[1]", "listed twice"),
    ({"notice": domain.Notice(" ", "t")}, "missing", "notice.reference", "document number"),
    ({"by": "dispatcher:li"}, "forbidden", "(role)", "only an admin"),
])
def test_d2_a_bad_schedule_is_refused_naming_the_field_in_words(changes: dict[str, Any], code: str, field: str,
                                                                 words: str) -> None:
    with pytest.raises(Rejected) as refused:
        domain.decide(enter(**changes), domain.Calendar())
    assert (refused.value.code, refused.value.field) == (code, field)
    assert words in refused.value.message


# -- the application on a real log: seed, refresh, a second process -----------------------


def body(data: dict[str, Any]) -> EnterCalendarYear:
    return EnterCalendarYear.model_validate(data)


@pytest.fixture
async def store(engine: AsyncEngine) -> EventStore:
    events = EventStore(engine)
    await events.create_tables()
    return events


async def test_d2_the_files_years_enter_the_log_once_as_system_calendar(store: EventStore, tmp_path: Path) -> None:
    deadlines.withdraw(2099)
    path = tmp_path / "official_calendar.toml"
    path.write_text('[2099]\ntitle = "test notice"\nholidays = ["2099-01-01"]\nworkdays = []\n', encoding="utf-8")
    first = application.start(store, path, now=lambda: AT)
    assert await first.refresh()
    assert official(2099) and not BusinessCalendar().is_workday(date(2099, 1, 1))
    (year,) = (await first.years(CalendarQuery()))["years"]
    assert (year["year"], year["current"]["by"], year["current"]["notice"]["title"]) == (
        2099, domain.SYSTEM, "test notice")
    # A restart with the file changed: the log holds the year as entered, the file does not overrule it.
    path.write_text('[2099]\nholidays = ["2099-01-02"]\n', encoding="utf-8")
    second = application.start(EventStore(store.engine), path, now=lambda: AT)
    await second.refresh()
    assert [len(y["history"]) for y in (await second.years(CalendarQuery()))["years"]] == [1]
    assert not BusinessCalendar().is_workday(date(2099, 1, 1)) and BusinessCalendar().is_workday(date(2099, 1, 2))


async def test_d2_a_bad_file_stops_the_start_naming_the_entry(store: EventStore, tmp_path: Path) -> None:
    path = tmp_path / "official_calendar.toml"
    path.write_text('[1999]\nholidays = ["1999-01-01"]\n', encoding="utf-8")
    with pytest.raises(Rejected) as refused:
        application.start(store, path)
    assert refused.value.field == "calendar.1999.year" and "from 2000 to 2100" in refused.value.message
    assert await store.version(domain.STREAM) == 0


async def test_d2_a_replica_in_this_process_takes_the_year_at_its_next_refresh(store: EventStore) -> None:
    """The refresh a replica runs before deciding a deadline: one read of the stream's
    version; the log folded again only when it moved."""
    here = application.OfficialCalendar(store, lambda: AT)
    replica = application.OfficialCalendar(EventStore(store.engine), lambda: AT)  # another store: its own view
    await replica.refresh()
    assert not await replica.refresh()  # nothing entered since: nothing folded
    await here.enter(body(YEAR_2027), meta={"actor": ADMIN})
    assert official(2027)
    deadlines.withdraw(2027)  # as the replica's own process would be: without the year
    assert await replica.refresh()
    assert official(2027) and BusinessCalendar().is_workday(date(2027, 2, 13))


REPLICA = """
import asyncio, json, sys
from datetime import date
from weibao.dispatch.application.official_calendar import refresh
from weibao.dispatch.domain.deadlines import BusinessCalendar, official
from weibao.shared.db import make_engine
from weibao.shared.eventstore import EventStore

async def main() -> None:
    store = EventStore(make_engine(sys.argv[1], schema=sys.argv[2] or None))
    loop = asyncio.get_running_loop()
    while await loop.run_in_executor(None, sys.stdin.readline):
        await refresh(store)
        calendar = BusinessCalendar()
        print("ANSWER", json.dumps({"official": official(2027), "13": calendar.is_workday(date(2027, 2, 13)),
                          "14": calendar.is_workday(date(2027, 2, 14))}), flush=True)
    await store.engine.dispose()

asyncio.run(main())
"""


async def test_d2_a_second_dispatch_process_on_the_same_database_takes_the_year_without_restart(
        store: EventStore, tmp_path: Path) -> None:
    """A replica in a process of its own (its own registry), running all along: before its
    next deadline it refreshes, and counts what was entered on this one."""
    script = tmp_path / "replica.py"
    script.write_text(REPLICA, encoding="utf-8")
    url = store.engine.url.render_as_string(hide_password=False).replace("+aiosqlite", "").replace("+asyncpg", "")
    replica = await asyncio.create_subprocess_exec(
        sys.executable, str(script), url, schema_of(store.engine) or "", stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, env=os.environ.copy())
    assert replica.stdin is not None and replica.stdout is not None

    async def asked() -> dict[str, bool]:
        assert replica.stdin is not None and replica.stdout is not None
        replica.stdin.write(b"refresh\n")
        await replica.stdin.drain()
        while not (line := (await replica.stdout.readline()).decode()).startswith("ANSWER "):
            assert line, "the replica ended"  # anything else is its log
        answer: dict[str, bool] = json.loads(line.removeprefix("ANSWER "))
        return answer

    try:
        assert await asked() == {"official": False, "13": False, "14": False}  # a regular week
        here = application.OfficialCalendar(store, lambda: AT)
        await here.enter(body(YEAR_2027), meta={"actor": ADMIN})
        assert await asked() == {"official": True, "13": True, "14": False}
        await here.enter(body(AMENDED), meta={"actor": ADMIN})
        assert await asked() == {"official": True, "13": False, "14": True}
    finally:
        replica.stdin.close()
        await replica.wait()


# -- end to end over NATS: contracts and dispatch running ---------------------------------

WORKING = {"onsite.calendar": "working"}  # rule C9 on the working calendar (D2): 4 working hours locally


@pytest.fixture
def friday_before_spring_festival(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEIBAO_ASSESS_INTERVAL", "3600")
    monkeypatch.setenv("WEIBAO_TICK_INTERVAL", "3600")
    monkeypatch.setenv("WEIBAO_TODAY", "2027-02-05")
    monkeypatch.setenv("WEIBAO_NOW", "2027-02-05T09:00:00+00:00")  # Friday 17:00 in Hefei: an hour left


@pytest.fixture
async def system(backend: str, nats_server: NatsServer, nc: NATS, tmp_path: Path,
                 friday_before_spring_festival: None) -> AsyncIterator[Settings]:
    url, schema = database_url(backend, tmp_path)
    settings = Settings(nats_server.url, url, db_schema=schema) if schema else \
        Settings(nats_server.url, f"sqlite:///{tmp_path / 'd.db'}")
    try:
        async with running(nats_server, nc, tmp_path, dispatch=settings):
            yield settings
    finally:
        if schema:
            cleanup = make_engine(url)
            async with cleanup.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            await cleanup.dispose()


async def customer_on_working_time(nc: NATS) -> None:
    await ok(nc, "contracts.customer.register", {
        "customer_id": "c-1", "name": "天宇贸易",
        "sites": [{"site_id": "s-1", "name": "总部", "address": "安徽省合肥市庐阳区", **SITE}]})
    await ok(nc, "contracts.sign", {
        "agreement_id": "a-1", "customer_id": "c-1", "template_id": "yizhuo-crm-maintenance", "go_live": "2026-09-01",
        "parameters": {"fee.percent": "10", "fee.licence_price": "120000", "onsite.local_hours": 4,
                       "onsite.out_of_town_days": 2, "hardware.day_rate": "800", **WORKING},
        "office": HEFEI_OFFICE, "site_ids": ["s-1"]})
    probes = iter(range(1000))

    async def covered() -> bool:  # dispatch has read contracts' messages
        answer = await ask(nc, "dispatch.ticket.open", {"ticket_id": f"probe-{next(probes)}", "site_id": "s-1",
                                                        "summary": "x"})
        return bool(answer["ok"] and answer["result"]["events"][0]["data"]["coverage"]["agreement_id"] == "a-1")

    await eventually(covered)


async def arrive_by(nc: NATS, ticket_id: str) -> tuple[datetime, list[int]]:
    """The request's stored arrival due time (C9) and the years counted provisionally."""
    data = (await ok(nc, "dispatch.ticket", {"ticket_id": ticket_id}))["result"]["deadlines"]
    due = next(c["due"] for c in data["clocks"] if c["kind"] == "arrive")
    return datetime.fromisoformat(due), data["provisional_years"]


async def opened(nc: NATS, ticket_id: str) -> tuple[datetime, list[int]]:
    await ok(nc, "dispatch.ticket.open", {"ticket_id": ticket_id, "site_id": "s-1", "summary": "CRM 打不开"})
    return await arrive_by(nc, ticket_id)


def hefei(day: int, hour: int) -> datetime:
    return datetime(2027, 2, day, hour, tzinfo=deadlines.OFFICE_TZ)


async def test_d2_a_year_entered_counts_for_requests_opened_after_and_moves_no_earlier_due_time(
        system: Settings, nc: NATS) -> None:
    deadlines.withdraw(2027)
    await customer_on_working_time(nc)
    # Before: 2027 unknown, the regular week: Friday's last hour, then Monday 9-12.
    assert await opened(nc, "before") == (hefei(8, 12), [2027])

    entered = await ok(nc, "dispatch.calendar.enter", YEAR_2027, actor=ADMIN)
    assert [e["type"] for e in entered["result"]["events"]] == ["private.YearEntered"]
    # After: 8-12 February are holidays, Saturday the 13th is worked instead (调休).
    assert await opened(nc, "after") == (hefei(13, 12), [])
    assert await arrive_by(nc, "before") == (hefei(8, 12), [2027])  # stored when decided: it stays

    again = await ok(nc, "dispatch.calendar.enter", YEAR_2027, actor=ADMIN)  # the same notice again
    assert again["result"]["events"] == [] and again["result"]["year"]["current"]["revision"] == 1

    unexplained = await ask(nc, "dispatch.calendar.enter", {**AMENDED, "reason": ""}, actor=ADMIN)
    assert (unexplained["error"]["code"], unexplained["error"]["field"]) == ("missing", "reason")
    await ok(nc, "dispatch.calendar.enter", AMENDED, actor=ADMIN)
    assert await opened(nc, "amended") == (hefei(14, 12), [])  # the amendment's Sunday
    assert await arrive_by(nc, "after") == (hefei(13, 12), [])

    (year,) = (await ok(nc, "dispatch.calendar", {"year": 2027}))["result"]["years"]
    first, second = year["history"]
    assert (first["revision"], first["workdays"], first["by"], first["superseded_by"]) == (
        1, ["2027-02-13"], ADMIN, 2)
    assert (second["revision"], second["workdays"], second["reason"], second["notice"]["reference"]) == (
        2, ["2027-02-14"], AMENDED["reason"], "国办发明电〔2026〕8号")
    assert year["current"] == second and second["superseded_by"] is None
    assert first["at"] and first["recorded_at"] and first["position"] < second["position"]


BAD = [
    ({"holidays": ["2028-01-01"]}, "holidays[0]"),  # a date outside the year
    ({"workdays": ["2027-03-10"]}, "workdays[0]"),  # a Wednesday as 调休
    ({"workdays": ["2027-02-06"]}, "workdays[0]"),  # a holiday also a working day
    ({"year": 1900, "holidays": [], "workdays": []}, "year"),
    ({"holidays": [(date(2027, 1, 1) + timedelta(days=n % 365)).isoformat() for n in range(400)]}, "holidays"),
    ({"notice": {"reference": "", "title": "x"}}, "notice.reference"),
    ({"year": "2027年"}, "year"),
]


async def test_d2_bad_input_is_a_structured_error_and_stores_nothing(system: Settings, nc: NATS) -> None:
    async def refused_all() -> None:
        for changes, field in BAD:
            answer = await ask(nc, "dispatch.calendar.enter", {**YEAR_2027, "reason": "x", **changes}, actor=ADMIN)
            assert not answer["ok"] and answer["error"]["field"] == field, (changes, answer)
            assert answer["error"]["code"] in ("invalid", "missing") and answer["error"]["message"]

    await refused_all()  # as a first entry
    assert (await ok(nc, "dispatch.calendar", {}))["result"] == {"years": []}
    await ok(nc, "dispatch.calendar.enter", YEAR_2027, actor=ADMIN)
    before = (await ok(nc, "dispatch.calendar", {}))["result"]
    await refused_all()  # as an amendment
    assert (await ok(nc, "dispatch.calendar", {}))["result"] == before


async def test_d2_only_an_admin_enters_a_year(system: Settings, nc: NATS) -> None:
    answer = await ask(nc, "dispatch.calendar.enter", YEAR_2027, actor="dispatcher:li")
    assert (answer["error"]["code"], answer["error"]["field"]) == ("forbidden", "(role)")
    assert (await ok(nc, "dispatch.calendar", {"year": 2027}))["result"] == {"years": []}


async def test_d2_at_start_the_files_new_year_is_entered_and_taken_before_any_request(
        nats_server: NatsServer, nc: NATS, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        friday_before_spring_festival: None) -> None:
    deadlines.withdraw(2099)
    path = tmp_path / "official_calendar.toml"
    path.write_text('[2099]\nholidays = ["2099-01-01..2099-01-03"]\n', encoding="utf-8")
    monkeypatch.setenv(calendar_file.ENV, str(path))
    async with running(nats_server, nc, tmp_path):

        async def taken() -> bool:  # by the service's start, nobody asked anything
            return official(2099)

        await eventually(taken)
        (year,) = (await ok(nc, "dispatch.calendar", {}))["result"]["years"]
        assert (year["year"], year["current"]["by"], year["current"]["notice"]["reference"]) == (
            2099, domain.SYSTEM, "official_calendar.toml")
        assert year["current"]["holidays"] == ["2099-01-01", "2099-01-02", "2099-01-03"]
