"""Technicians through the real HTTP API: a bad skill is refused at registration naming
the field, with nothing stored; a record made bad some other way no longer blocks
assigning everyone else, and the explanation names it (D4); edits and retirement by a
dispatcher; who sees a technician's home and position."""

from __future__ import annotations

from typing import Any

import httpx

from tests.gateway.backends import any_gateway
from tests.gateway.conftest import Gateway
from tests.gateway.test_api import post, set_up
from tests.helpers import eventually
from weibao.shared.db import make_engine
from weibao.shared.events import NewEvent
from weibao.shared.eventstore import EventStore
from weibao.shared.keys import Keyring

__all__ = ["any_gateway"]  # the fixture, imported for pytest to find

ODD = {"technician_id": "odd", "name": "odd", "skills": ["x"], "home": {"latitude": 31.86, "longitude": 117.28}}


async def stored(auditor: httpx.AsyncClient, stream_id: str) -> list[Any]:
    """The events of one stream in dispatch's log: what a request stored is measured on
    its own stream, never on the log's position (the deadline clock moves that)."""
    response = await auditor.get(f"/api/v1/audit/dispatch/streams/{stream_id}")
    if response.status_code == 404:
        return []
    assert response.status_code == 200, response.text
    return list(response.json()["events"])


async def test_d4_a_bad_skill_is_a_422_naming_the_field_and_nothing_is_stored(any_gateway: Gateway) -> None:
    await set_up(any_gateway)
    async with await any_gateway.as_user("li") as li, await any_gateway.as_user("shen") as shen:
        response = await li.post("/api/v1/technicians", json=ODD)
        assert response.status_code == 422, response.text
        assert (response.json()["error"]["code"], response.json()["error"]["field"]) == ("invalid", "skills")
        assert await stored(shen, "technician-odd") == []
        before = await stored(shen, "technician-near")
        patched = await li.patch("/api/v1/technicians/near", json={"skills": ["hardware", "x"]})
        assert (patched.status_code, patched.json()["error"]["field"]) == (422, "skills")
        unknown = await li.patch("/api/v1/technicians/near", json={"colour": "red"})
        assert unknown.status_code == 422  # extra="forbid"
        assert await stored(shen, "technician-near") == before


async def test_edit_and_retirement_by_a_dispatcher_only(any_gateway: Gateway) -> None:
    await set_up(any_gateway)
    async with await any_gateway.as_user("li") as li, await any_gateway.as_user("qian") as qian, \
            await any_gateway.as_user("near") as near:
        for who in (qian, near):
            assert (await who.patch("/api/v1/technicians/near", json={"name": "x"})).status_code == 403
            assert (await who.post("/api/v1/technicians/far/retirement", json={"reason": "x"})).status_code == 403
        changed = await li.patch("/api/v1/technicians/near", json={"skills": ["network"], "name": "王工",
                                                                    "shift": {"starts": "08:00", "ends": "17:00"}})
        assert changed.status_code == 200, changed.text
        assert changed.json()["events"][0]["type"] == "private.TechnicianChanged"
        await post(li, "/technicians/far/retirement", {"reason": "调往上海"}, status=201)

        async def both_applied() -> bool:
            board = {t["technician_id"]: t for t in (await li.get("/api/v1/technicians")).json()}
            return board["near"]["skills"] == ["network"] and board["far"]["retired_at"] is not None

        await eventually(both_applied)
        # t-1 asks for "software:general": near no longer has it, far is retired: nobody, and why
        await post(li, "/tickets/t-1/triage", {"outcome": "escalate", "note": ""})
        refused = await li.post("/api/v1/tickets/t-1/assignment", json={})
        assert refused.status_code == 422, refused.text
        assert "far (retired on 2026-06-01: 调往上海)" in refused.json()["error"]["message"]


async def test_billing_sees_who_and_skills_and_a_technician_only_themselves(any_gateway: Gateway) -> None:
    await set_up(any_gateway)
    async with await any_gateway.as_user("qian") as qian, await any_gateway.as_user("near") as near, \
            await any_gateway.as_user("li") as li:
        one = await qian.get("/api/v1/technicians/near")
        assert one.status_code == 200 and one.json() == {"technician_id": "near", "name": "near",
                                                         "skills": ["software:general", "hardware"]}
        listed = await qian.get("/api/v1/technicians")
        assert listed.status_code == 200
        assert all(set(t) == {"technician_id", "name", "skills"} for t in listed.json())
        own = (await near.get("/api/v1/technicians/near")).json()
        assert {"home_latitude", "latitude", "open_visits"} <= set(own)  # their own record, whole
        assert (await near.get("/api/v1/technicians/far")).status_code == 403
        assert (await near.get("/api/v1/technicians")).status_code == 403
        assert "latitude" in (await li.get("/api/v1/technicians/far")).json()  # who sends them sees where


async def test_d4_a_bad_record_from_the_log_blocks_nobody_and_is_named(gateway: Gateway) -> None:
    """SQLite only: the append goes straight into dispatch's database file; the same case
    runs on both backends over NATS in tests/dispatch/test_technician_e2e.py."""
    await set_up(gateway)
    engine = make_engine(f"sqlite:///{gateway.users.parent / 'dispatch'}.db")
    ring = Keyring.from_env()
    try:
        store = EventStore(engine, signer=ring.signer("dispatch") if ring is not None else None)
        await store.append("technician-odd", [NewEvent("private.TechnicianRegistered", {
            **ODD, "office_city_code": None, "shift": {"starts": "09:00:00", "ends": "18:00:00"},
            "capacity_per_day": 4})], expected_version=0)
    finally:
        await engine.dispose()
    async with await gateway.as_user("li") as li:
        async def on_the_board() -> bool:
            return "odd" in {t["technician_id"] for t in (await li.get("/api/v1/technicians")).json()}

        await eventually(on_the_board)
        await post(li, "/tickets/t-1/triage", {"outcome": "escalate", "note": ""})
        assigned = await post(li, "/tickets/t-1/assignment", {})
        event = next(e for e in assigned["events"] if e["type"].endswith("VisitAssigned"))
        assert event["data"]["technician_id"] == "near"
        [odd] = event["data"]["explanation"]["excluded"]
        assert odd["technician_id"] == "odd" and "'x'" in odd["reason"]
