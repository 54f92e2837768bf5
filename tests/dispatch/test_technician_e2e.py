"""Technicians over real NATS, on both event-store backends: a record made bad some other
way no longer stops the assignment of everyone else (D4), edits and retirement reach the
board and the rule, the day plan survives a double-booked technician, and the board
rebuilt from position 0 equals the live one."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from nats.aio.client import Client as NATS
from sqlalchemy import text

from tests.conftest import database_url
from tests.helpers import eventually
from weibao.dispatch.service import spec as dispatch_spec
from weibao.runtime.natsd import NatsServer
from weibao.shared.db import make_engine
from weibao.shared.events import NewEvent
from weibao.shared.eventstore import EventStore
from weibao.shared.keys import Keyring
from weibao.shared.service import Settings, replay_command

from .conftest import SITE, ask, ok, running, set_up_customer_and_crew


@contextlib.asynccontextmanager
async def dispatch_on(backend: str, nats_server: NatsServer, tmp_path: Path) -> AsyncIterator[Settings]:
    """Dispatch's settings on `backend` (its own schema on PostgreSQL, dropped after)."""
    url, schema = database_url(backend, tmp_path)
    settings = Settings(nats_server.url, url, db_schema=schema)
    try:
        yield settings
    finally:
        if schema is not None:
            cleanup = make_engine(url)
            async with cleanup.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            await cleanup.dispose()


async def board(nc: NATS) -> dict[str, dict[str, Any]]:
    return {t["technician_id"]: t for t in (await ok(nc, "dispatch.technicians", {}))["result"]}


async def escalated(nc: NATS, ticket_id: str, skill: str = "hardware") -> None:
    await ok(nc, "dispatch.ticket.open", {"ticket_id": ticket_id, "site_id": "s-1", "summary": "打印机坏了",
                                          "skill": skill})
    await ok(nc, "dispatch.ticket.triage", {"ticket_id": ticket_id, "outcome": "escalate", "note": ""})


def assigned_to(answer: dict[str, Any]) -> dict[str, Any]:
    return next(e["data"] for e in answer["result"]["events"] if e["type"] == "private.VisitAssigned")


async def test_d4_a_bad_record_from_the_log_blocks_nobody_else_and_is_named(
        backend: str, nats_server: NatsServer, nc: NATS, tmp_path: Path, clock: None) -> None:
    async with dispatch_on(backend, nats_server, tmp_path) as settings, running(nats_server, nc, tmp_path, settings):
        await set_up_customer_and_crew(nc)
        # given a record the commands would refuse, written straight to dispatch's log with
        # dispatch's key (as an older release, or a repair script, could have)
        engine = make_engine(settings.database_url, schema=settings.db_schema)
        ring = Keyring.from_env()
        try:
            store = EventStore(engine, signer=ring.signer("dispatch") if ring is not None else None)
            await store.append("technician-odd", [NewEvent("private.TechnicianRegistered", {
                "technician_id": "odd", "name": "odd", "skills": ["x"],
                "home": {"latitude": 31.86, "longitude": 117.28}, "office_city_code": None,
                "shift": {"starts": "09:00:00", "ends": "18:00:00"},
                "capacity_per_day": 4})], expected_version=0)
        finally:
            await engine.dispose()

        async def odd_on_the_board() -> bool:
            return "odd" in await board(nc)

        await eventually(odd_on_the_board)
        await escalated(nc, "t-1")
        # when a visit is assigned by the rule
        answer = await ok(nc, "dispatch.ticket.assign", {"ticket_id": "t-1"})
        # then everyone else is weighed, and the explanation names the record and why
        event = assigned_to(answer)
        assert event["technician_id"] == "near"
        assert [c["technician_id"] for c in event["explanation"]["candidates"]] == ["near", "far"]
        [left_out] = event["explanation"]["excluded"]
        assert left_out["technician_id"] == "odd" and "skills" in left_out["reason"] and "'x'" in left_out["reason"]
        # an override to it says why it cannot be, by name, instead of "a skill is ..." for all
        refused = await ask(nc, "dispatch.ticket.assign", {"ticket_id": "t-1", "technician_id": "odd",
                                                           "reason": "closest"})
        assert (refused["error"]["code"], refused["error"]["field"]) == ("unavailable", "technician_id")
        # and the re-dispatch after a decline happens (it used to fail silently)
        declined = await ok(nc, "dispatch.ticket.decline", {"ticket_id": "t-1", "technician_id": "near",
                                                            "reason": "车坏了"}, actor="technician:near")
        assert assigned_to(declined)["technician_id"] == "far"


async def test_d4_registration_refuses_an_unknown_skill_and_stores_nothing(
        backend: str, nats_server: NatsServer, nc: NATS, tmp_path: Path, clock: None) -> None:
    async with dispatch_on(backend, nats_server, tmp_path) as settings, running(nats_server, nc, tmp_path, settings):
        await set_up_customer_and_crew(nc)
        refused = await ask(nc, "dispatch.technician.register", {
            "technician_id": "odd", "name": "odd", "skills": ["x"], "home": {"latitude": 31.8, "longitude": 117.2}})
        assert (refused["error"]["code"], refused["error"]["field"]) == ("invalid", "skills")
        # nothing stored: the technician's own stream is still empty (not the log position,
        # which the deadline clock may move meanwhile)
        engine = make_engine(settings.database_url, schema=settings.db_schema)
        try:
            assert await EventStore(engine).version("technician-odd") == 0
        finally:
            await engine.dispose()


async def test_edits_and_retirement_reach_the_board_and_the_rule_and_replay_equal(
        backend: str, nats_server: NatsServer, nc: NATS, tmp_path: Path, clock: None) -> None:
    async with dispatch_on(backend, nats_server, tmp_path) as settings:
        async with running(nats_server, nc, tmp_path, settings):
            await set_up_customer_and_crew(nc)
            bad = await ask(nc, "dispatch.technician.change", {"technician_id": "near", "skills": ["x"]})
            assert bad["error"]["field"] == "skills"
            changed = await ok(nc, "dispatch.technician.change", {
                "technician_id": "near", "name": "王工", "skills": ["network", "hardware"],
                "home": {"latitude": 31.80, "longitude": 117.20}, "shift": {"starts": "08:00", "ends": "17:00"}})
            assert [e["type"] for e in changed["result"]["events"]] == ["private.TechnicianChanged"]
            again = await ok(nc, "dispatch.technician.change", {"technician_id": "near", "name": "王工"})
            assert again["result"]["events"] == []  # the same edit twice stores nothing

            async def edited() -> bool:
                near = (await board(nc))["near"]
                return bool(near["name"] == "王工" and near["shift"]["starts"] == "08:00:00"
                            and near["latitude"] == 31.80)  # never checked in: where home is

            await eventually(edited)
            await escalated(nc, "t-1")
            assert assigned_to(await ok(nc, "dispatch.ticket.assign", {"ticket_id": "t-1"}))["technician_id"] == "near"

            await ok(nc, "dispatch.technician.retire", {"technician_id": "near", "reason": "调往上海"})

            async def retired() -> bool:
                return bool((await board(nc))["near"]["retired_at"])

            await eventually(retired)
            # the visit already assigned stays with them until reassigned
            assert (await ok(nc, "dispatch.ticket", {"ticket_id": "t-1"}))["result"]["technician_id"] == "near"
            # no new assignment goes to them: the rule leaves them out and says so
            await escalated(nc, "t-2")
            event = assigned_to(await ok(nc, "dispatch.ticket.assign", {"ticket_id": "t-2"}))
            assert event["technician_id"] == "far"
            assert event["explanation"]["excluded"] == [{"technician_id": "near",
                                                         "reason": "retired on 2026-06-01: 调往上海"}]
            later = await ask(nc, "dispatch.technician.change", {"technician_id": "near", "name": "x"})
            assert later["error"]["code"] == "retired"
            # reassigning the open visit is possible, to someone else
            moved = await ok(nc, "dispatch.ticket.assign", {"ticket_id": "t-1", "technician_id": "far",
                                                            "reason": "near retired"})
            assert assigned_to(moved)["technician_id"] == "far"

            async def unloaded() -> bool:
                return bool((await board(nc))["near"]["open_visits"] == [])

            await eventually(unloaded)
        # the board rebuilt from position 0 equals the live one
        assert await replay_command(dispatch_spec, settings, "technician_board", show_progress=False) == 0


async def test_d4_the_plan_names_a_double_booked_technician_and_plans_everyone_else(
        backend: str, nats_server: NatsServer, nc: NATS, tmp_path: Path, clock: None) -> None:
    async with dispatch_on(backend, nats_server, tmp_path) as settings, running(nats_server, nc, tmp_path, settings):
        await set_up_customer_and_crew(nc)
        # given "near" on site at two visits at once, which the API allows
        for ticket_id in ("t-a", "t-b"):
            await escalated(nc, ticket_id)
            assert assigned_to(await ok(nc, "dispatch.ticket.assign", {"ticket_id": ticket_id}))[
                "technician_id"] == "near"
            await ok(nc, "dispatch.ticket.accept", {"ticket_id": ticket_id, "technician_id": "near"},
                     actor="technician:near")
            await ok(nc, "dispatch.ticket.check_in", {
                "ticket_id": ticket_id, "technician_id": "near", "key": f"phone-{ticket_id}",
                "device_time": "2026-06-01T08:59:00+08:00", "position": SITE, "accuracy_m": 10},
                actor="technician:near")
        await escalated(nc, "t-c")  # and one more visit, not yet assigned
        result: dict[str, Any] = {}

        async def planned() -> bool:  # the plan reads the stream index, a read model: it may lag
            nonlocal result
            answer = await ask(nc, "dispatch.plan", {"seconds": 0.5})
            assert answer["ok"], answer  # never a refusal for everyone
            result = answer["result"]
            routed = [stop["ticket_id"] for stops in result["routes"].values() for stop in stops]
            return sorted(routed + result["unassigned"]) == ["t-c"] and bool(result["not_planned"])

        await eventually(planned)
        [near] = result["not_planned"]
        assert near["technician_id"] == "near" and near["visits"] == ["t-a", "t-b"]
        assert "2 visits under way at once" in near["reason"]
        assert "near" not in result["routes"]
