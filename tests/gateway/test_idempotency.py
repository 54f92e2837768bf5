"""Idempotency-Key through the real HTTP API: a key is the caller's own, for one route
and one object (DESIGN "Trust"); the same key with the same body is one command (D5: a
phone's retry has one effect); the same key with another body is refused, storing
nothing. On both event-store backends."""

from __future__ import annotations

from typing import Any

import httpx

from tests.gateway.backends import any_gateway
from tests.gateway.conftest import Gateway
from tests.gateway.test_api import PHONE_TIME, post, set_up

__all__ = ["any_gateway"]  # the fixture, imported for pytest to find

KEY = "shared-key-0001"


async def history(gateway: Gateway, stream: str) -> list[dict[str, Any]]:
    async with await gateway.as_user("root") as root:
        response = await root.get(f"/api/v1/audit/dispatch/streams/{stream}")
        return list(response.json().get("events", [])) if response.status_code == 200 else []


async def log_position(gateway: Gateway) -> int:
    async with await gateway.as_user("shen") as shen:
        status = (await shen.get("/api/v1/audit/status")).json()
    return int(next(s for s in status["services"] if s["service"] == "dispatch")["log_position"])


def types(answer: dict[str, Any]) -> list[str]:
    """The command's private events (the public messages it makes true come along)."""
    return [e["type"] for e in answer["events"] if e["type"].startswith("private.")]


def work(key: str, ended: str = "2026-06-01T10:00:00+08:00") -> dict[str, Any]:
    return {"key": key, "device_time": PHONE_TIME, "kind": "software", "started": "2026-06-01T09:10:00+08:00",
            "ended": ended}


async def two_visits(gateway: Gateway, li: httpx.AsyncClient) -> None:
    """t-1 assigned to near (D4), t-2 to far (an override); both triaged with one key."""
    await set_up(gateway)
    await post(li, "/tickets", {"ticket_id": "t-2", "site_id": "s-1", "summary": "网络中断"}, status=201)
    # One dispatcher, one route, the same key, two objects: two commands.
    for ticket in ("t-1", "t-2"):
        triaged = await post(li, f"/tickets/{ticket}/triage", {"outcome": "escalate"}, key=KEY)
        assert "private.VisitRequested" in types(triaged), ticket
    assert "private.VisitAssigned" in types(await post(li, "/tickets/t-1/assignment", {}))
    override = await post(li, "/tickets/t-2/assignment", {"technician_id": "far", "reason": "客户点名"})
    assert next(e for e in override["events"] if e["type"] == "private.VisitAssigned")["data"]["technician_id"] == "far"


async def test_one_key_from_two_users_routes_and_objects_is_several_commands(any_gateway: Gateway) -> None:
    gateway = any_gateway
    async with await gateway.as_user("li") as li, await gateway.as_user("near") as near, \
            await gateway.as_user("far") as far:
        await two_visits(gateway, li)

        logged = await post(near, "/tickets/t-1/work", work("phone-key-0201"), key=KEY)
        assert types(logged) == ["private.WorkLogged"]
        # The reported bug: another technician's acceptance with that key answered the
        # work log and was never applied.
        accepted = await post(far, "/tickets/t-2/acceptance", {}, key=KEY)
        assert types(accepted) == ["private.VisitAccepted"]
        assert accepted["events"][0]["data"]["technician_id"] == "far"
        # The first technician, the same key, another route: applied too.
        mine = await post(near, "/tickets/t-1/acceptance", {}, key=KEY)
        assert types(mine) == ["private.VisitAccepted"]
        assert mine["events"][0]["data"]["technician_id"] == "near"

        assert (await near.get("/api/v1/tickets/t-1")).json()["status"] == "accepted"
        assert (await far.get("/api/v1/tickets/t-2")).json()["status"] == "accepted"
        # Each command's id is its own scope's, never the bare key.
        ids = {e["meta"]["command_id"] for stream in ("ticket-t-1", "ticket-t-2")
               for e in await history(gateway, stream) if e["meta"].get("command_fingerprint")}
        assert len(ids) == 5 and KEY not in ids  # two triages, two acceptances, one work log


async def test_the_same_key_with_another_body_is_refused_and_stores_nothing(any_gateway: Gateway) -> None:
    gateway = any_gateway
    await set_up(gateway)
    async with await gateway.as_user("li") as li:
        first_body = {"ticket_id": "t-9", "site_id": "s-1", "summary": "打印机卡纸"}
        first = await post(li, "/tickets", first_body, key="open-key-0009", status=201)
        assert types(first)[0] == "private.TicketOpened"
        before = await log_position(gateway)

        # Another body (another request) under the key: refused, whichever stream it names.
        reused = await post(li, "/tickets", {**first_body, "ticket_id": "t-10", "summary": "另一件事"},
                            key="open-key-0009", status=409)
        assert reused["error"]["code"] == "idempotency_key_reused"
        assert reused["error"]["field"] == "Idempotency-Key"
        assert reused["error"]["message"]
        assert (await li.get("/api/v1/tickets/t-10")).status_code == 404
        assert await log_position(gateway) == before

        # The same body again: the same command, answered as the first time.
        again = await post(li, "/tickets", first_body, key="open-key-0009", status=201)
        assert again == first
        assert [e["type"] for e in await history(gateway, "ticket-t-9")].count("private.TicketOpened") == 1
        assert await log_position(gateway) == before


async def test_d5_a_phone_that_reuses_its_key_for_another_report_is_refused(any_gateway: Gateway) -> None:
    gateway = any_gateway
    async with await gateway.as_user("li") as li, await gateway.as_user("near") as near:
        await two_visits(gateway, li)
        first = await post(near, "/tickets/t-1/work", work("phone-key-0301"), key="phone-key-0301")
        before = await log_position(gateway)

        changed = await post(near, "/tickets/t-1/work", work("phone-key-0301", ended="2026-06-01T11:00:00+08:00"),
                             key="phone-key-0301", status=409)
        assert changed["error"]["code"] == "idempotency_key_reused"
        # Without the header the body's own key is the Idempotency-Key: the same refusal.
        unkeyed = await post(near, "/tickets/t-1/work", work("phone-key-0301", ended="2026-06-01T11:00:00+08:00"),
                             status=409)
        assert unkeyed["error"]["code"] == "idempotency_key_reused"
        assert await log_position(gateway) == before

        retried = await post(near, "/tickets/t-1/work", work("phone-key-0301"), key="phone-key-0301")
        assert retried == first
        logged = [e for e in await history(gateway, "ticket-t-1") if e["type"] == "private.WorkLogged"]
        assert len(logged) == 1 and logged[0]["data"]["ended"] == "2026-06-01T10:00:00+08:00"
