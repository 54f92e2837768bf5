"""Device time that holds up, through the HTTP API (issue 13, item 4; rule D5): a
check-in made offline before the deadline and uploaded after it is met, by the phone's
time; one whose device time is forged (in the future, or before the visit was assigned)
is recorded, flagged and judged by the server's time. Every status time shows its source
and both times. The services' clock is pinned (WEIBAO_NOW) and moved between steps."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.gateway.conftest import SITE, Gateway
from tests.gateway.test_api import post, set_up

ASSIGNED = "2026-06-01T01:00:00+00:00"  # 09:00 in Hefei: the request comes in, on site within 4 h (C9)
DUE = datetime(2026, 6, 1, 5, 0, tzinfo=UTC)  # 13:00 in Hefei
ACTED = "2026-06-01T10:33:00+08:00"  # the technician checks in, offline, before the deadline
UPLOADED = "2026-06-01T08:33:00+00:00"  # 16:33 in Hefei: the phone finds a network, after the deadline


async def visits(gateway: Gateway, li: httpx.AsyncClient, *ticket_ids: str) -> None:
    """Requests escalated and assigned by D4 to "near", at the pinned 09:00."""
    for ticket_id in ticket_ids:
        if ticket_id != "t-1":  # set_up opened t-1
            await post(li, "/tickets", {"ticket_id": ticket_id, "site_id": "s-1", "summary": "收银系统数据库连接失败"},
                       status=201)
        await post(li, f"/tickets/{ticket_id}/triage", {"outcome": "escalate", "note": "需要上门"})
        assigned = await post(li, f"/tickets/{ticket_id}/assignment", {})
        assert next(e for e in assigned["events"] if e["type"].endswith("VisitAssigned"))["data"][
            "technician_id"] == "near"


def check_in(key: str, device_time: str) -> dict[str, Any]:
    return {"key": key, "device_time": device_time, "position": SITE, "accuracy_m": 8}


def types(answer: dict[str, Any]) -> list[str]:
    return [e["type"] for e in answer["events"]]


def public(answer: dict[str, Any], message: str) -> dict[str, Any]:
    [data] = [e["data"] for e in answer["events"] if e["type"] == message]
    return data


def arrival(ticket: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in ticket["deadlines"]["clocks"] if c["kind"] == "arrive")


async def test_d5_an_offline_check_in_before_the_deadline_uploaded_after_it_is_met(
        gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    await set_up(gateway)
    async with await gateway.as_user("li") as li, await gateway.as_user("near") as near:
        await visits(gateway, li, "t-1")
        monkeypatch.setenv("WEIBAO_NOW", "2026-06-01T01:20:00+00:00")
        accepted = await post(near, "/tickets/t-1/acceptance", {"device_time": "2026-06-01T09:15:00+08:00"})
        [acceptance] = [e["data"] for e in accepted["events"] if e["type"] == "private.VisitAccepted"]
        assert (acceptance["time_source"], acceptance["time_flag"]) == ("device", None)

        monkeypatch.setenv("WEIBAO_NOW", UPLOADED)
        uploaded = await post(near, "/tickets/t-1/check-in", check_in("phone-d5-0001", ACTED), key="phone-d5-0001")
        assert types(uploaded) == ["private.CheckedIn", "VisitCheckedIn", "private.DeadlineMet", "SlaMet"]
        again = await post(near, "/tickets/t-1/check-in", check_in("phone-d5-0001", ACTED), key="phone-d5-0001")
        assert again == uploaded  # the phone's retry: one check-in, one SlaMet
        published = public(uploaded, "VisitCheckedIn")  # what billing and the board read says the same
        assert (published["time_source"], published["time_flag"]) == ("device", None)
        assert datetime.fromisoformat(published["counted_at"]) == datetime.fromisoformat(ACTED)

        ticket = (await li.get("/api/v1/tickets/t-1")).json()
        assert arrival(ticket)["met"] is True
        assert datetime.fromisoformat(arrival(ticket)["stopped_at"]) == datetime.fromisoformat(ACTED) < DUE
        times = ticket["times"]
        assert times["checked_in"]["source"] == "device" and times["checked_in"]["flagged_reason"] is None
        assert times["checked_in"]["upload_delay_s"] == 6 * 3600  # acted 10:33, uploaded 16:33
        assert datetime.fromisoformat(times["checked_in"]["server_time"]) == datetime.fromisoformat(UPLOADED)
        assert times["accepted"]["source"] == "device" and times["accepted"]["upload_delay_s"] == 5 * 60
        assert ticket["first_check_in"]["device_time"] == ticket["times"]["checked_in"]["device_time"]  # kept too

        done = await post(near, "/tickets/t-1/completion", {"resolution": "重启数据库服务",
                                                             "device_time": "2026-06-01T11:40:00+08:00"})
        [completed] = [e["data"] for e in done["events"] if e["type"] == "private.VisitCompleted"]
        assert completed["time_source"] == "device"
        published = public(done, "VisitCompleted")
        assert (published["time_source"], published["time_flag"]) == ("device", None)
        assert datetime.fromisoformat(published["counted_at"]) == datetime.fromisoformat("2026-06-01T11:40:00+08:00")
        assert datetime.fromisoformat(completed["device_time"]) == datetime.fromisoformat("2026-06-01T11:40:00+08:00")
        times = (await li.get("/api/v1/tickets/t-1")).json()["times"]
        assert times["completed"]["source"] == "device" and times["completed"]["upload_delay_s"] == 4 * 3600 + 53 * 60

        async with await gateway.as_user("shen") as shen:
            log = (await shen.get("/api/v1/audit/dispatch/streams/ticket-t-1")).json()["events"]
        recorded = [e["type"] for e in log]
        assert recorded.count("private.DeadlineMet") == 1 and "private.DeadlineBreached" not in recorded  # met once


async def test_d5_a_forged_device_time_is_flagged_and_judged_by_server_time(
        gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    await set_up(gateway)
    async with await gateway.as_user("li") as li, await gateway.as_user("near") as near:
        await visits(gateway, li, "t-1", "t-2")
        monkeypatch.setenv("WEIBAO_NOW", UPLOADED)
        forged = {"t-1": ("2026-06-01T18:00:00+08:00", "future"),  # later than the upload reached the server
                  "t-2": ("2026-06-01T08:30:00+08:00", "before_assignment")}  # before the 09:00 assignment
        for ticket_id, (device_time, reason) in forged.items():
            uploaded = await post(near, f"/tickets/{ticket_id}/check-in", check_in(f"phone-forged-{ticket_id}",
                                                                                   device_time))
            assert types(uploaded) == ["private.CheckedIn", "VisitCheckedIn", "private.DeadlineBreached",
                                       "SlaBreached"], ticket_id  # recorded, not refused; judged late
            [checked_in] = [e["data"] for e in uploaded["events"] if e["type"] == "private.CheckedIn"]
            assert (checked_in["time_source"], checked_in["time_flag"]) == ("server", reason)
            assert datetime.fromisoformat(checked_in["device_time"]) == datetime.fromisoformat(device_time)  # kept
            published = public(uploaded, "VisitCheckedIn")
            assert (published["time_source"], published["time_flag"]) == ("server", reason)
            assert datetime.fromisoformat(published["counted_at"]) == datetime.fromisoformat(UPLOADED)

            ticket = (await li.get(f"/api/v1/tickets/{ticket_id}")).json()
            assert arrival(ticket)["met"] is False
            assert datetime.fromisoformat(arrival(ticket)["stopped_at"]) == datetime.fromisoformat(UPLOADED)
            shown = ticket["times"]["checked_in"]
            assert (shown["source"], shown["flagged_reason"]) == ("server", reason)
            assert datetime.fromisoformat(shown["at"]) == datetime.fromisoformat(UPLOADED)
