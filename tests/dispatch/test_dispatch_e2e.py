"""A request flows from coverage to deadline, assignment, check-in and completion over
real NATS: the contracts and dispatch services both running, as in production."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from nats.aio.client import Client as NATS

from tests.helpers import eventually, stream_messages

# Billing's end-to-end test imports these from here.
from .conftest import AGREEMENT, SITE, ask, ok, published, set_up_customer_and_crew

__all__ = ["SITE", "ask", "ok", "set_up_customer_and_crew"]


async def test_d1_d4_d5_a_request_from_coverage_to_completion(services: None, nc: NATS) -> None:
    await set_up_customer_and_crew(nc)
    opened = await ok(nc, "dispatch.ticket.open", {"ticket_id": "t-1", "site_id": "s-1", "channel": "phone",
                                                   "summary": "CRM 报表打不开"})
    ticket = opened["result"]["events"][0]["data"]
    assert ticket["coverage"]["verdict"] == "covered" and ticket["coverage"]["local"]  # C1, C9
    dues = {c["kind"]: datetime.fromisoformat(c["due"]) for c in ticket["deadlines"]["clocks"]}
    assert dues["arrive"] == datetime(2026, 6, 1, 5, 0, tzinfo=UTC)  # D1: 4 hours locally (C9)

    await ok(nc, "dispatch.ticket.triage", {"ticket_id": "t-1", "outcome": "escalate", "note": "电话无法解决"})
    assigned = await ok(nc, "dispatch.ticket.assign", {"ticket_id": "t-1"})
    event = assigned["result"]["events"][0]["data"]
    assert event["technician_id"] == "near" and not event["at_risk"]  # D4: least travel, in time
    assert [c["technician_id"] for c in event["explanation"]["candidates"]] == ["near", "far"]

    await ok(nc, "dispatch.ticket.accept", {"ticket_id": "t-1", "technician_id": "near"}, actor="technician:near")
    check_in = {"ticket_id": "t-1", "technician_id": "near", "key": "phone-0001", "device_time":
                "2026-06-01T08:59:00+08:00", "position": SITE, "accuracy_m": 15}
    first = await ok(nc, "dispatch.ticket.check_in", check_in, actor="technician:near")
    again = await ok(nc, "dispatch.ticket.check_in", check_in, actor="technician:near")  # offline retry
    assert [e["type"] for e in first["result"]["events"]] == [
        "private.CheckedIn", "VisitCheckedIn", "private.DeadlineMet", "SlaMet"]
    assert again["result"]["events"] == []
    await ok(nc, "dispatch.ticket.complete", {"ticket_id": "t-1", "technician_id": "near", "resolution": "修复报表"},
             actor="technician:near")

    async def relayed() -> bool:
        return "dispatch.VisitCompleted" in await published(nc, "dispatch")

    await eventually(relayed)
    subjects = await published(nc, "dispatch")
    for public in ("VisitRequested", "VisitAssigned", "VisitCheckedIn", "SlaMet", "VisitCompleted"):
        assert subjects.count(f"dispatch.{public}") == 1, public


async def test_bad_input_gets_a_structured_error_and_stores_nothing(services: None, nc: NATS) -> None:
    await set_up_customer_and_crew(nc)
    await ok(nc, "dispatch.ticket.open", {"ticket_id": "t-2", "site_id": "s-1", "summary": "打印机无法连接"})
    await ok(nc, "dispatch.ticket.triage", {"ticket_id": "t-2", "outcome": "escalate", "note": ""})
    await ok(nc, "dispatch.ticket.assign", {"ticket_id": "t-2"})
    # "Stores nothing" means the requests' own streams did not grow; the service's log
    # position would also count what the deadline clock (D1) records meanwhile.
    before = {ticket: (await ok(nc, "dispatch.history", {"ticket_id": ticket}))["result"] for ticket in ("t-2", "nope")}
    cases = [
        ({"ticket_id": "nope", "technician_id": "near", "key": "phone-k1", "device_time": "2026-06-01T09:00:00+08:00",
          "position": SITE, "accuracy_m": 5}, "ticket_id"),
        ({"ticket_id": "t-2", "technician_id": "far", "key": "phone-k1", "device_time": "2026-06-01T09:00:00+08:00",
          "position": SITE, "accuracy_m": 5}, "technician_id"),
        ({"ticket_id": "t-2", "technician_id": "near", "key": "phone-k1", "device_time": "2026-06-01T09:00:00+08:00",
          "position": {"latitude": 123, "longitude": 117}, "accuracy_m": 5}, "position.latitude"),
        # (a device time in the future is recorded, flagged and judged by the server's time,
        # D5: tests/dispatch/test_device_time.py)
    ]
    for body, field in cases:
        answer = await ask(nc, "dispatch.ticket.check_in", body)
        assert not answer["ok"] and answer["error"]["field"] == field, (field, answer)
    override = await ask(nc, "dispatch.ticket.assign", {"ticket_id": "t-2", "technician_id": "far"})
    assert override["error"]["field"] == "reason"  # D4: a dispatcher's override says why
    after = {ticket: (await ok(nc, "dispatch.history", {"ticket_id": ticket}))["result"] for ticket in ("t-2", "nope")}
    assert after == before and before["nope"] == []


async def test_d1_a_missed_deadline_is_announced_by_the_clock(services: None, nc: NATS,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    await set_up_customer_and_crew(nc)
    await ok(nc, "dispatch.ticket.open", {"ticket_id": "t-3", "site_id": "s-1", "summary": "数据库连接失败"})
    monkeypatch.setenv("WEIBAO_NOW", "2026-06-01T06:00:00+00:00")  # 14:00: past the 4 hours (C9)

    async def breached() -> bool:
        return "dispatch.SlaBreached" in await published(nc, "dispatch")

    await eventually(breached)
    await asyncio.sleep(0.5)  # more ticks: still one announcement per deadline
    subjects = await published(nc, "dispatch")
    assert subjects.count("dispatch.SlaAtRisk") == 0  # first seen already past due: breached only
    assert subjects.count("dispatch.SlaBreached") >= 1
    kinds = [body["data"]["kind"] for _, headers, body in await stream_messages(nc, "dispatch")
             if headers.get("Weibao-Type") == "SlaBreached" and isinstance(body, dict)
             and body["data"]["ticket_id"] == "t-3"]
    assert sorted(kinds) == ["arrive"]  # each deadline of this ticket once


async def test_todays_plan_routes_the_open_visits(services: None, nc: NATS) -> None:
    await set_up_customer_and_crew(nc)
    for n in range(3):
        await ok(nc, "dispatch.ticket.open", {"ticket_id": f"p-{n}", "site_id": "s-1", "summary": "巡检"})
        await ok(nc, "dispatch.ticket.triage", {"ticket_id": f"p-{n}", "outcome": "escalate", "note": ""})
    result: dict[str, Any] = {}

    async def planned_all() -> bool:  # the plan reads the stream index, a read model: it may lag
        nonlocal result
        result = (await ok(nc, "dispatch.plan", {"seconds": 0.5}))["result"]
        planned = [stop["ticket_id"] for stops in result["routes"].values() for stop in stops]
        return sorted(planned + result["unassigned"]) == ["p-0", "p-1", "p-2"]

    await eventually(planned_all)
    assert result["routes"]  # somebody goes


async def test_d1_c1_the_clock_finds_the_coverage_a_request_was_opened_without(services: None, nc: NATS) -> None:
    """A call between the customer's site and its agreement reaching dispatch: the clock's
    next turn (0.2 s here) finds the agreement, by itself, once and only once."""
    await ok(nc, "contracts.customer.register", {
        "customer_id": "c-1", "name": "天宇贸易",
        "sites": [{"site_id": "s-1", "name": "总部", "address": "安徽省合肥市庐阳区", **SITE}]})

    async def site_known() -> bool:
        answer = await ask(nc, "dispatch.ticket.open", {"ticket_id": "t-1", "site_id": "s-1",
                                                        "summary": "打印服务停止"})
        return bool(answer["ok"])

    await eventually(site_known)
    opened = await ok(nc, "dispatch.ticket", {"ticket_id": "t-1"})
    assert opened["result"]["opened"]["coverage"]["agreement_id"] is None and opened["result"]["deadlines"] is None
    await ok(nc, "contracts.sign", AGREEMENT)

    async def covered() -> bool:
        ticket = (await ok(nc, "dispatch.ticket", {"ticket_id": "t-1"}))["result"]
        listed = (await ok(nc, "dispatch.tickets", {"status": "open"}))["result"]["items"]
        return bool(ticket["opened"]["coverage"]["agreement_id"] == "a-1" and listed[0]["agreement_id"] == "a-1"
                    and listed[0]["arrive_by"])

    await eventually(covered)
    await asyncio.sleep(0.5)  # more turns of the clock: nothing more to find
    history = (await ok(nc, "dispatch.history", {"ticket_id": "t-1"}))["result"]
    found = [e for e in history if e["type"] == "private.CoverageFound"]
    assert len(found) == 1 and found[0]["data"]["by"] == "system:coverage"
    assert found[0]["data"]["deadlines"]["requested_at"] == "2026-06-01T01:00:00Z"  # the call, not the finding
