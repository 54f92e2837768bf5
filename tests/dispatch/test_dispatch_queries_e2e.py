"""The dispatcher's queries over real NATS: the ticket board and its list, a ticket as it
stood at a past instant, one technician's row, requests entered after they came in (D1),
and the board rebuilt by replay equal to the live one."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client as NATS
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import eventually
from weibao.dispatch.service import spec as dispatch_spec
from weibao.runtime.natsd import NatsServer
from weibao.shared.clock import CHINA
from weibao.shared.service import Settings, replay_command

from .conftest import SITE, ask, ok, running, set_up_customer_and_crew


async def listed(nc: NATS, body: dict[str, Any], expected: list[str]) -> dict[str, Any]:
    """The list once the board (a read model, so it may lag) shows `expected`, in order."""
    page: dict[str, Any] = {}

    async def shown() -> bool:
        nonlocal page
        page = (await ok(nc, "dispatch.tickets", body))["result"]
        return [item["ticket_id"] for item in page["items"]] == expected

    await eventually(shown)
    return page


async def close(nc: NATS, probes: list[str]) -> None:
    for probe in probes:
        await ok(nc, "dispatch.ticket.triage", {"ticket_id": probe, "outcome": "remote", "note": "probe"})


async def test_d1_the_ticket_list_over_nats(services: None, nc: NATS) -> None:
    probes = await set_up_customer_and_crew(nc)
    await close(nc, probes)
    await ok(nc, "dispatch.ticket.open", {"ticket_id": "t-1", "site_id": "s-1", "summary": "报表打不开"})
    await ok(nc, "dispatch.ticket.open", {"ticket_id": "t-2", "site_id": "s-1", "summary": "电话记录补录",
                                          "received_at": "2026-06-01T07:00:00+08:00"})
    await ok(nc, "dispatch.ticket.triage", {"ticket_id": "t-1", "outcome": "escalate", "note": ""})
    await ok(nc, "dispatch.ticket.assign", {"ticket_id": "t-1"})

    page = await listed(nc, {}, ["t-2", "t-1"])  # D1: t-2 came in two hours earlier, due two hours sooner
    assert (page["total"], page["next_offset"]) == (2, None)
    first = page["items"][0]
    assert first["arrive_by"] == "2026-06-01T03:00:00+00:00" and first["opened_at"] == "2026-05-31T23:00:00+00:00"
    assert (first["at_risk"], first["breached"], first["stopped"]) == ([], [], [])
    # Whose site and where, from the coverage book: the phone page shows it to the technician.
    where = (first["customer_name"], first["site_name"], first["site_address"])
    assert where == ("天宇贸易", "总部", "安徽省合肥市庐阳区")
    mine = await listed(nc, {"technician_id": "near", "status": "all"}, ["t-1"])
    assert mine["items"][0]["status"] == "assigned"
    # Closed: the latest finished first (resolved one after the other, so the last probe first).
    closed = await listed(nc, {"status": "closed", "limit": 200}, probes[::-1])
    assert {item["status"] for item in closed["items"]} == {"resolved"}
    paged = await listed(nc, {"status": "all", "limit": 1, "offset": 1}, ["t-1"])
    assert (paged["total"], paged["next_offset"]) == (2 + len(probes), 2)

    for body, field in (({"status": "pending"}, "status"), ({"limit": 500}, "limit"), ({"offset": -5}, "offset")):
        refused = await ask(nc, "dispatch.tickets", body)
        assert refused["error"]["code"] == "invalid" and refused["error"]["field"] == field


async def test_a_ticket_as_it_stood_and_one_technician(services: None, nc: NATS) -> None:
    await set_up_customer_and_crew(nc)
    await ok(nc, "dispatch.ticket.open", {"ticket_id": "t-h", "site_id": "s-1", "summary": "无法登录"})
    # The log records when it was written (the real clock, not the pinned WEIBAO_NOW),
    # and "as of" reads by that time: an instant between the two commands, in Hefei's zone.
    between = datetime.now(UTC).astimezone(CHINA).isoformat()
    await ok(nc, "dispatch.ticket.triage", {"ticket_id": "t-h", "outcome": "escalate", "note": "电话无法解决"})

    now = await ok(nc, "dispatch.ticket", {"ticket_id": "t-h"})
    then = await ok(nc, "dispatch.ticket", {"ticket_id": "t-h", "as_of": between})
    assert (now["result"]["status"], then["result"]["status"]) == ("awaiting_assignment", "triage")
    clock = then["result"]["deadlines"]["clocks"][0]
    assert (clock["kind"], clock["due"], clock["met"]) == ("arrive", "2026-06-01T13:00:00+08:00", None)
    before = await ask(nc, "dispatch.ticket", {"ticket_id": "t-h", "as_of": "2020-01-01T00:00:00+00:00"})
    assert (before["error"]["code"], before["error"]["field"]) == ("not_found", "ticket_id")
    # Naive, not a time. (A number is read as Unix seconds, UTC: the HTTP API's schema, the same one,
    # always read it so.)
    for bad in ("2026-06-01T09:30:00", "yesterday"):
        refused = await ask(nc, "dispatch.ticket", {"ticket_id": "t-h", "as_of": bad})
        assert (refused["error"]["code"], refused["error"]["field"]) == ("invalid", "as_of"), bad

    near = await ok(nc, "dispatch.technician", {"technician_id": "near"})
    assert near["result"]["technician_id"] == "near" and near["result"]["skills"] == ["software:general", "hardware"]
    assert near["result"]["open_visits"] == []
    unknown = await ask(nc, "dispatch.technician", {"technician_id": "ghost"})
    assert (unknown["error"]["code"], unknown["error"]["field"]) == ("not_found", "technician_id")


async def test_d1_a_request_entered_late_counts_from_when_it_came_in(services: None, nc: NATS) -> None:
    await set_up_customer_and_crew(nc)
    opened = await ok(nc, "dispatch.ticket.open", {"ticket_id": "t-p", "site_id": "s-1", "summary": "电话记录补录",
                                                   "received_at": "2026-06-01T06:00:00+08:00"})
    data = opened["result"]["events"][0]["data"]
    assert data["opened_at"].startswith("2026-05-31T22:00:00") and data["entered_at"].startswith("2026-06-01T01:00")
    dues = {clock["kind"]: clock["due"] for clock in data["deadlines"]["clocks"]}
    assert dues["arrive"] == "2026-06-01T10:00:00+08:00"  # C9: 4 hours from the call, not from its entry

    for received in ("2026-06-01T09:01:00+08:00",  # the future: now is 09:00 in Hefei
                     "2026-05-25T08:59:00+08:00",  # more than 7 days ago
                     "2026-06-01T08:00:00", "this morning"):
        refused = await ask(nc, "dispatch.ticket.open", {"ticket_id": "t-q", "site_id": "s-1", "summary": "x",
                                                         "received_at": received})
        assert (refused["error"]["code"], refused["error"]["field"]) == ("invalid", "received_at"), received
    # Nothing stored: the refused request's own stream is empty. (Not the log position:
    # the deadline clock records t-p's at-risk and breach events meanwhile, D1.)
    assert (await ok(nc, "dispatch.history", {"ticket_id": "t-q"}))["result"] == []


async def test_the_ticket_board_rebuilt_by_replay_equals_the_live_one(
        nats_server: NatsServer, nc: NATS, tmp_path: Path, clock: None, db_url: tuple[str, str | None],
        engine: AsyncEngine, capsys: pytest.CaptureFixture[str]) -> None:
    url, schema = db_url  # `engine` drops a PostgreSQL test schema afterwards
    settings = Settings(nats_server.url, url, schema)
    async with running(nats_server, nc, tmp_path, settings):
        await set_up_customer_and_crew(nc)
        await ok(nc, "dispatch.ticket.open", {"ticket_id": "t-1", "site_id": "s-1", "summary": "报表打不开"})
        await ok(nc, "dispatch.ticket.triage", {"ticket_id": "t-1", "outcome": "escalate", "note": ""})
        await ok(nc, "dispatch.ticket.assign", {"ticket_id": "t-1"})
        await ok(nc, "dispatch.ticket.check_in", {"ticket_id": "t-1", "technician_id": "near", "key": "key-0001",
                                                  "device_time": "2026-06-01T09:00:00+08:00", "position": SITE,
                                                  "accuracy_m": 10}, actor="technician:near")
        await ok(nc, "dispatch.ticket.complete", {"ticket_id": "t-1", "technician_id": "near", "resolution": "ok"})
        await ok(nc, "dispatch.ticket.open", {"ticket_id": "t-2", "site_id": "s-1", "summary": "等客户回复",
                                              "received_at": "2026-06-01T08:00:00+08:00"})
        await ok(nc, "dispatch.ticket.wait", {"ticket_id": "t-2", "reason": "客户不在"})
        await listed(nc, {"status": "closed"}, ["t-1"])

        async def paused() -> bool:  # the board's last change: the wait (D1)
            first = (await ok(nc, "dispatch.tickets", {"customer_id": "c-1", "limit": 1}))["result"]["items"]
            return bool(first[0]["ticket_id"] == "t-2" and first[0]["paused"])

        await eventually(paused)
    capsys.readouterr()

    assert await replay_command(dispatch_spec, settings, "ticket_board", show_progress=False) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["equal"] and report["differences"] == {}
    assert report["applied"] == report["live_position"] > 0
