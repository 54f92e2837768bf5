"""Issue 13, the desk: a call back or a remote session started is a first response (C15),
and phone or remote work is logged on a request without a visit, billed as on-site work
is: nothing inside coverage, at the agreement's rates outside it (B3, C13)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.decider import Decider, Given
from tests.dispatch.test_intake import opened_data, sign_up
from tests.gateway.backends import any_gateway
from tests.gateway.conftest import Gateway
from tests.gateway.test_api import post
from tests.helpers import eventually
from weibao.dispatch.domain.deadlines import DeadlineMet
from weibao.dispatch.domain.ticket import (
    Command,
    Coverage,
    DeskWorkLogged,
    Event,
    LogDeskWork,
    OpenTicket,
    Position,
    RecordResponse,
    ResolveRemotely,
    Responded,
    Ticket,
    decide,
    evolve,
)

__all__ = ["any_gateway"]  # the fixture, imported for pytest to find

TICKET = Decider(decide=decide, evolve=evolve, initial=Ticket())
History = Given[Command, Event, Ticket]
T0 = datetime(2026, 6, 1, 1, 0, tzinfo=UTC)
HOURS = timedelta(hours=1)
C15 = Coverage("a-q", "covered", ("C1",), True, {"kind": "respond_resolve", "respond_hours": 24, "resolve_hours": 24})


def opened() -> History:
    return TICKET.after(OpenTicket("t-1", "c-q", "s-q", Position(31.86, 117.28), "phone", "订单无法同步", T0, C15))


def desk(key: str = "desk-0001", *, started: datetime = T0 + HOURS, ended: datetime = T0 + 3 * HOURS,
         now: datetime = T0 + 4 * HOURS) -> LogDeskWork:
    return LogDeskWork(worker="dispatcher:li", key=key, server_time=now, channel="remote", kind="software",
                       started=started, ended=ended, note="远程修复索引")


def test_c15_a_call_back_is_the_first_response_and_meets_the_respond_clock_once() -> None:
    history = opened()
    call = RecordResponse(T0 + 2 * HOURS, "call_back", "dispatcher:li", "回电指导重启服务")
    history.when(call).then(Responded(call.at, "call_back", "dispatcher:li", "回电指导重启服务"),
                            DeadlineMet("respond", T0 + 24 * HOURS, call.at))
    later = RecordResponse(T0 + 5 * HOURS, "remote_session", "dispatcher:li", "远程会话")
    # a later response is recorded, the clock it stopped stays stopped, nothing announced again
    history.after(call).when(later).then(Responded(later.at, "remote_session", "dispatcher:li", "远程会话"))
    state = history.after(call, later).state
    assert state.deadlines is not None and state.deadlines.clock("resolve") is not None
    assert state.deadlines.clock("resolve").stopped_at is None  # type: ignore[union-attr]
    history.when(RecordResponse(T0, "call_back", "dispatcher:li", " ")).then_rejected("missing", "note")
    resolved = history.after(ResolveRemotely(T0 + HOURS, "done"))
    resolved.when(call).then_rejected("conflict", "ticket_id")  # a closed request is not responded to


def test_b3_desk_work_is_logged_without_a_visit_once_per_key() -> None:
    history = opened()
    (logged,) = history.when(desk()).events
    assert isinstance(logged, DeskWorkLogged) and logged.channel == "remote"
    history.after(desk()).when(desk()).then()  # the same key again: one record
    assert len(history.after(desk(), desk("desk-0002")).state.desk_work) == 2


def test_desk_work_times_are_checked_and_named() -> None:
    history = opened()
    history.when(desk(ended=T0)).then_rejected("invalid", "ended")  # ends before it starts
    history.when(desk(ended=T0 + 9 * HOURS)).then_rejected("invalid", "ended")  # ahead of the desk's clock
    history.when(desk(started=T0 - 2 * HOURS)).then_rejected("invalid", "started")  # before the request
    TICKET.given().when(desk()).then_rejected("not_found", "ticket_id")
    # a call noted after the request was resolved is still logged (late, like a phone's upload)
    (late,) = history.after(ResolveRemotely(T0 + 3 * HOURS, "done")).when(desk()).events
    assert isinstance(late, DeskWorkLogged)


# -- through the HTTP API ---------------------------------------------------------------------


async def billed_lines(client: httpx.AsyncClient, customer_id: str) -> list[dict[str, Any]]:
    found = (await client.get("/api/v1/invoices", params={"customer_id": customer_id})).json()["items"]
    lines: list[dict[str, Any]] = []
    for invoice in found:
        lines += (await client.get(f"/api/v1/invoices/{invoice['invoice_id']}")).json()["lines"]
    return lines


async def test_c15_b3_a_call_back_responds_and_desk_work_is_billed_outside_coverage_only(
        any_gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    gateway = any_gateway
    await sign_up(gateway)
    async with await gateway.as_user("li") as li, await gateway.as_user("qian") as qian, \
            await gateway.as_user("near") as near:
        await post(li, "/technicians", {"technician_id": "near", "name": "近", "skills": ["software:general"],
                                        "home": {"latitude": 31.83, "longitude": 117.24}}, status=201)
        covered = opened_data(await post(li, "/tickets", {"ticket_id": "t-in", "site_id": "s-x",
                                                          "summary": "总账无法结账"}, status=201))
        assert covered["coverage"]["verdict"] == "covered"
        called = await post(li, "/tickets/t-in/responses", {"kind": "call_back", "note": "回电指导"})
        assert [e["type"] for e in called["events"]] == ["private.Responded"]  # C14 sets no respond clock
        outside = opened_data(await post(li, "/tickets", {"ticket_id": "t-out", "site_id": "s-x", "summary": "误删凭证",
                                                          "cause": "customer_misoperation_loss"}, status=201))
        assert outside["coverage"]["verdict"] == "billable"
        monkeypatch.setenv("WEIBAO_NOW", "2026-06-01T12:00:00+08:00")  # the work below is done by then

        work = {"key": "desk-work-01", "channel": "remote", "kind": "software", "note": "远程恢复凭证",
                "started": "2026-06-01T09:10:00+08:00", "ended": "2026-06-01T10:40:00+08:00"}
        inside = await post(li, "/tickets/t-in/desk-work", work)
        public = next(e for e in inside["events"] if e["type"] == "WorkLogged")["data"]
        assert (public["technician_id"], public["channel"], public["verdict"]) == ("dispatcher:li", "remote", "covered")
        again = await post(li, "/tickets/t-in/desk-work", work)  # the same key: one record
        assert again["events"] == [] or again == inside
        by_phone = await post(near, "/tickets/t-out/desk-work", {**work, "key": "desk-work-02", "channel": "phone"})
        public = next(e for e in by_phone["events"] if e["type"] == "WorkLogged")["data"]
        assert (public["technician_id"], public["channel"], public["verdict"]) == ("near", "phone", "billable")

        # a technician logs only their own work; a dispatcher names a technician who exists
        forged = await near.post("/api/v1/tickets/t-out/desk-work",
                                 json={**work, "key": "desk-work-03", "technician_id": "far"})
        assert forged.status_code == 403, forged.text
        nobody = await li.post("/api/v1/tickets/t-out/desk-work",
                               json={**work, "key": "desk-work-04", "technician_id": "ghost"})
        assert nobody.status_code == 404 and nobody.json()["error"]["field"] == "technician_id"

        async def billed() -> bool:  # B3: the C17 request's two hours, at the agreement's rates
            return any("t-out" in line["description"] for line in await billed_lines(qian, "c-x"))

        await eventually(billed)
        lines = [line for line in await billed_lines(qian, "c-x") if "t-out" in line["description"]]
        assert len(lines) == 1 and "B3" in lines[0]["clauses"] and "C17" in lines[0]["clauses"], lines
        assert "WorkLogged" in json.dumps(lines[0]["sources"])  # its provenance: the desk's work record
        assert not [line for line in await billed_lines(qian, "c-x") if "t-in" in line["description"]]
