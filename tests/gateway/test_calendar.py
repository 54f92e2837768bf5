"""rule D2 through the real HTTP API: the official calendar's years with their history
(`GET /api/v1/calendar`: dispatcher, auditor, admin) and an admin's entry of a year
(`PUT /api/v1/calendar/{year}`), an event in dispatch's log; a request opened after it
counts the year, one opened before keeps its due time; bad input and other roles are
refused with the error shape and store nothing. On SQLite and PostgreSQL (`any_gateway`).

The 2027 notice is made up for the tests (chinese-calendar 1.11 ends with 2026)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.gateway.backends import any_gateway
from tests.gateway.conftest import HEFEI_OFFICE, SITE, Gateway
from tests.gateway.test_api import dispatch_read_contracts, post
from weibao.dispatch.domain import deadlines

__all__ = ["any_gateway"]  # the fixture, imported for pytest to find

WORKING = {"onsite.calendar": "working"}  # rule C9 counted in working time (D2): 4 working hours locally
NOTICE = {"reference": "国办发明电〔2026〕7号", "title": "国务院办公厅关于2027年部分节假日安排的通知"}
YEAR_2027 = {"holidays": ["2027-01-01", *(date(2027, 2, d).isoformat() for d in range(6, 13))],
             "workdays": ["2027-02-13"], "notice": NOTICE}  # Sat 6 .. Fri 12 February off, Sat 13 worked
AMENDED = {**YEAR_2027, "workdays": ["2027-02-14"], "reason": "国务院办公厅更正: 调休改为2月14日"}


@pytest.fixture(autouse=True)
def registry(official_calendar_registry: None) -> None:
    """The registry restored after each test, and 2027 not entered before it (the tests enter it)."""
    deadlines.withdraw(2027)


@pytest.fixture
def system(any_gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> Gateway:
    monkeypatch.setenv("WEIBAO_TODAY", "2027-02-05")
    monkeypatch.setenv("WEIBAO_NOW", "2027-02-05T09:00:00+00:00")  # Friday 17:00 in Hefei
    return any_gateway


async def calendar(client: httpx.AsyncClient, **params: Any) -> Any:
    response = await client.get("/api/v1/calendar", params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def put(client: httpx.AsyncClient, year: int | str, body: dict[str, Any], status: int = 200,
              key: str | None = None) -> Any:
    response = await client.put(f"/api/v1/calendar/{year}", json=body,
                                headers={"Idempotency-Key": key} if key else {})
    assert response.status_code == status, response.text
    return response.json()


async def arrive_by(client: httpx.AsyncClient, ticket_id: str) -> tuple[datetime, list[int]]:
    response = await client.get(f"/api/v1/tickets/{ticket_id}")
    assert response.status_code == 200, response.text
    found = response.json()["deadlines"]
    due = next(c["due"] for c in found["clocks"] if c["kind"] == "arrive")
    return datetime.fromisoformat(due), found["provisional_years"]


def hefei(day: int, hour: int) -> datetime:
    return datetime(2027, 2, day, hour, tzinfo=deadlines.OFFICE_TZ)


async def test_d2_who_may_read_and_who_may_enter_the_calendar(system: Gateway) -> None:
    async with await system.as_user("li") as li, await system.as_user("shen") as shen, \
            await system.as_user("root") as root, await system.as_user("qian") as qian, \
            await system.as_user("near") as near:
        for reader in (li, shen, root):
            assert await calendar(reader) == {"years": []}
        for outsider in (qian, near):
            response = await outsider.get("/api/v1/calendar")
            assert (response.status_code, response.json()["error"]["field"]) == (403, "(role)")
        for not_admin in (li, shen, qian, near):  # the calendar moves every customer's deadlines
            refused = await put(not_admin, 2027, YEAR_2027, status=403)
            assert refused["error"]["code"] == "forbidden"
        assert await calendar(root) == {"years": []}  # nothing stored


async def test_d2_a_year_entered_counts_for_requests_opened_after_it_only(system: Gateway) -> None:
    async with await system.as_user("li") as li, await system.as_user("qian") as qian, \
            await system.as_user("shen") as shen, await system.as_user("root") as root:
        await post(li, "/customers", {"customer_id": "c-1", "name": "天宇贸易", "sites": [
            {"site_id": "s-1", "name": "总部", "address": "安徽省合肥市庐阳区", **SITE}]}, status=201)
        await post(qian, "/agreements", {
            "agreement_id": "a-1", "customer_id": "c-1", "template_id": "yizhuo-crm-maintenance",
            "go_live": "2026-09-01",
            "parameters": {"fee.percent": "10", "fee.licence_price": "120000", "onsite.local_hours": 4,
                           "onsite.out_of_town_days": 2, "hardware.day_rate": "800", **WORKING},
            "office": HEFEI_OFFICE, "site_ids": ["s-1"]}, status=201)
        await dispatch_read_contracts(shen)

        async def opened(ticket_id: str) -> tuple[datetime, list[int]]:
            await post(li, "/tickets", {"ticket_id": ticket_id, "site_id": "s-1", "summary": "CRM 打不开"}, status=201)
            return await arrive_by(li, ticket_id)

        assert await opened("before") == (hefei(8, 12), [2027])  # 2027 unknown: the regular week
        entered = await put(root, 2027, YEAR_2027, key="calendar-2027-a")
        assert [e["type"] for e in entered["events"]] == ["private.YearEntered"]
        retried = await put(root, 2027, YEAR_2027, key="calendar-2027-a")  # the same request again
        assert [e["position"] for e in retried["events"]] == [e["position"] for e in entered["events"]]
        assert await opened("after") == (hefei(13, 12), [])  # holidays 8-12, Saturday 13 worked (调休)
        assert await arrive_by(li, "before") == (hefei(8, 12), [2027])  # promised before: it stays

        same = await put(root, 2027, YEAR_2027)  # the same notice again, no key: what holds
        assert same["events"] == [] and same["year"]["current"]["revision"] == 1
        unexplained = await put(root, 2027, {**AMENDED, "reason": ""}, status=422)
        assert (unexplained["error"]["code"], unexplained["error"]["field"]) == ("missing", "reason")
        await put(root, 2027, AMENDED)
        assert await opened("amended") == (hefei(14, 12), [])

        (year,) = (await calendar(shen, year=2027))["years"]
        assert [(e["revision"], e["workdays"], e["by"], e["superseded_by"]) for e in year["history"]] == [
            (1, ["2027-02-13"], "admin:root", 2), (2, ["2027-02-14"], "admin:root", None)]
        assert year["current"]["reason"] == AMENDED["reason"] and year["current"]["notice"] == NOTICE


async def test_d2_bad_input_is_a_422_naming_the_field_and_stores_nothing(system: Gateway) -> None:
    cases: list[tuple[int | str, dict[str, Any], str]] = [
        (2027, {**YEAR_2027, "holidays": ["2028-01-01"]}, "holidays[0]"),  # outside the year
        (2027, {**YEAR_2027, "workdays": ["2027-03-10"]}, "workdays[0]"),  # a Wednesday as 调休
        (2027, {**YEAR_2027, "workdays": ["2027-02-06"]}, "workdays[0]"),  # a holiday also a working day
        (1900, {**YEAR_2027, "holidays": [], "workdays": []}, "year"),
        (2027, {**YEAR_2027, "holidays": [(date(2027, 1, 1) + timedelta(days=n % 365)).isoformat()
                                          for n in range(400)]}, "holidays"),
        (2027, {**YEAR_2027, "notice": {"reference": "", "title": "x"}}, "notice.reference"),
        (2027, {**YEAR_2027, "colour": "red"}, "colour"),
        ("twenty", YEAR_2027, "year"),
    ]
    async with await system.as_user("root") as root:
        for year, body, field in cases:
            refused = await put(root, year, body, status=422)
            assert refused["error"]["field"] == field and refused["error"]["message"], (year, refused)
        assert await calendar(root) == {"years": []}
