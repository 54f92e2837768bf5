"""The API end to end: a request goes from the dispatcher's HTTP call through the
services and back, with validation, object-level access, idempotency, audit and live
events, on a real nats-server."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.gateway.conftest import HEFEI_OFFICE, SITE, Gateway
from tests.helpers import eventually

PHONE_TIME = "2026-06-01T09:05:00+08:00"
AGREEMENT = {  # C9: on site within 4 hours locally
    "agreement_id": "a-1", "customer_id": "c-1", "template_id": "yizhuo-crm-maintenance",
    "parameters": {"fee.percent": "10", "fee.licence_price": "120000", "onsite.local_hours": 4,
                   "onsite.out_of_town_days": 2, "hardware.day_rate": "800"},
    "go_live": "2025-09-01", "office": HEFEI_OFFICE, "site_ids": ["s-1"]}


async def post(client: httpx.AsyncClient, path: str, body: dict[str, Any], key: str | None = None,
               status: int = 200) -> Any:
    response = await client.post(f"/api/v1{path}", json=body, headers={"Idempotency-Key": key} if key else {})
    assert response.status_code == status, (path, response.text)
    return response.json()


async def dispatch_read_contracts(auditor: httpx.AsyncClient) -> None:
    async def caught_up() -> bool:
        status = (await auditor.get("/api/v1/audit/status")).json()
        services = {s["service"]: s for s in status["services"]}
        stored = services["contracts"]["log_position"]
        coverage = next(m for m in services["dispatch"]["read_models"] if m["consumer"].endswith("coverage_book"))
        return bool(coverage["applied_seq"] >= stored)

    await eventually(caught_up)


async def set_up(gateway: Gateway) -> None:
    """A customer with a Hefei site, its agreement, two technicians: all through HTTP."""
    async with await gateway.as_user("li") as li, await gateway.as_user("qian") as qian, \
            await gateway.as_user("shen") as shen:
        await post(li, "/customers", {"customer_id": "c-1", "name": "天宇贸易", "sites": [
            {"site_id": "s-1", "name": "总部", "address": "安徽省合肥市庐阳区", **SITE}]}, status=201)
        await post(qian, "/agreements", AGREEMENT, status=201)
        for technician, (lat, lon) in (("near", (31.83, 117.24)), ("far", (34.75, 113.62))):
            await post(li, "/technicians", {"technician_id": technician, "name": technician,
                                            "skills": ["software:general", "hardware"],
                                            "home": {"latitude": lat, "longitude": lon}}, status=201)

        # Coverage reaches dispatch as messages, the site (with the customer) before the
        # agreement: a request opened in between is opened without it (see the test of
        # finding it later). Wait until dispatch has read all contracts has stored.
        await dispatch_read_contracts(shen)
        await post(li, "/tickets", {"ticket_id": "t-1", "site_id": "s-1", "summary": "打印服务停止"}, status=201)

        async def crew_on_the_board() -> bool:  # the technician board is a read model too
            found = (await li.get("/api/v1/technicians")).json()
            return sorted(t["technician_id"] for t in found) == ["far", "near"]

        await eventually(crew_on_the_board)


async def test_a_request_from_the_console_to_the_technicians_check_in(gateway: Gateway) -> None:
    await set_up(gateway)
    async with await gateway.as_user("li") as li, await gateway.as_user("near") as near, \
            await gateway.as_user("far") as far:
        await post(li, "/tickets/t-1/triage", {"outcome": "escalate", "note": "需要上门"})
        assigned = await post(li, "/tickets/t-1/assignment", {})
        event = next(e for e in assigned["events"] if e["type"].endswith("VisitAssigned"))
        assert event["data"]["technician_id"] == "near"  # D4: the one near Hefei
        assert event["data"]["explanation"]  # the console shows why

        async def on_the_board() -> bool:
            found = (await near.get("/api/v1/me/visits")).json()
            return [row["ticket_id"] for row in found["items"]] == ["t-1"]

        await eventually(on_the_board)
        assert (await far.get("/api/v1/me/visits")).json()["items"] == []

        # Object-level access: another technician neither sees nor reports on it.
        assert (await far.get("/api/v1/tickets/t-1")).status_code == 403
        check_in = {"key": "phone-key-0001", "device_time": PHONE_TIME, "position": SITE, "accuracy_m": 8}
        refused = await far.post("/api/v1/tickets/t-1/check-in", json=check_in)
        assert refused.status_code == 403
        forged = await far.post("/api/v1/tickets/t-1/check-in", json={**check_in, "technician_id": "near"})
        assert forged.status_code == 403

        # The phone retries its upload: one check-in.
        first = await post(near, "/tickets/t-1/check-in", check_in, key="phone-key-0001")
        again = await post(near, "/tickets/t-1/check-in", check_in, key="phone-key-0001")
        assert [e["type"] for e in first["events"]].count("private.CheckedIn") == 1
        assert again == first  # a retry answers what the first upload stored
        async with await gateway.as_user("root") as root:
            history = (await root.get("/api/v1/audit/dispatch/streams/ticket-t-1")).json()
        assert [e["type"] for e in history["events"]].count("private.CheckedIn") == 1
        ticket = (await near.get("/api/v1/tickets/t-1")).json()
        assert ticket["status"] == "on_site"


async def test_bad_input_is_refused_naming_the_field(gateway: Gateway) -> None:
    async with await gateway.as_user("li") as li:
        cases: list[tuple[str, dict[str, Any], int, str]] = [
            ("/tickets", {"ticket_id": "t-9", "site_id": "s-1", "summary": "x", "urgency": "high"}, 422,
             "urgency"),  # unknown fields are refused, not ignored
            ("/tickets", {"ticket_id": "t-9", "site_id": "s-1", "summary": "x", "priority": "p0"}, 422,
             "priority"),  # issue 13: urgent, high, normal or low
            ("/tickets", {"ticket_id": "t 9", "site_id": "s-1", "summary": "x"}, 422, "ticket_id"),
            ("/tickets", {"ticket_id": "t-9", "summary": "x"}, 422, "site_id"),
            ("/tickets", {"ticket_id": "t-9", "site_id": "nowhere", "summary": "x"}, 404, "site_id"),  # dispatch
            ("/tickets/t-9/check-in", {"key": "phone-key-0002", "device_time": "2026-06-01T09:00:00",
                                       "position": SITE, "accuracy_m": 5, "technician_id": "near"}, 422,
             "device_time"),  # no UTC offset
            ("/tickets/t-9/check-in", {"key": "phone-key-0002", "device_time": PHONE_TIME,
                                       "position": {"latitude": 95, "longitude": 117}, "accuracy_m": 5,
                                       "technician_id": "near"}, 422, "position.latitude"),
        ]
        for path, body, status, field in cases:
            response = await li.post(f"/api/v1{path}", json=body)
            assert response.status_code == status, (path, response.text)
            error = response.json()["error"]
            assert error["field"] == field, (path, error)
            assert error["message"]
        too_big = await li.get("/api/v1/tickets", params={"limit": 500})
        assert too_big.status_code == 422
        assert too_big.json()["error"]["field"] == "limit"
        not_json = await li.post("/api/v1/tickets", content=b"{", headers={"Content-Type": "application/json"})
        assert not_json.status_code == 422


async def test_the_auditor_reads_history_as_of_a_time_and_replay_status(gateway: Gateway) -> None:
    await set_up(gateway)
    before_triage = datetime.now(UTC)
    await asyncio.sleep(0.05)
    async with await gateway.as_user("li") as li, await gateway.as_user("shen") as shen:
        await post(li, "/tickets/t-1/triage", {"outcome": "escalate", "note": "需要上门"})
        history = (await shen.get("/api/v1/audit/dispatch/streams/ticket-t-1")).json()
        types = [e["type"] for e in history["events"]]
        assert types[0] == "private.TicketOpened" and "private.VisitRequested" in types
        assert history["events"][1]["meta"]["actor"] == "dispatcher:li"  # who did it
        then = (await shen.get("/api/v1/audit/dispatch/streams/ticket-t-1",
                               params={"as_of": before_triage.isoformat()})).json()
        assert [e["type"] for e in then["events"]] == ["private.TicketOpened"]

        async def listed() -> bool:
            streams = (await shen.get("/api/v1/audit/dispatch/streams", params={"prefix": "ticket-"})).json()
            return [s["stream_id"] for s in streams["items"]] == ["ticket-t-1"]

        await eventually(listed)
        status = (await shen.get("/api/v1/audit/status", params={"verify": "true"})).json()
        by_service = {s["service"]: s for s in status["services"]}
        assert set(by_service) == {"contracts", "dispatch", "billing"}
        assert by_service["dispatch"]["chain"]["ok"] is True
        assert all(m["parked"] == 0 for s in status["services"] for m in s["read_models"])


async def read_events(response: httpx.Response, into: list[dict[str, Any]]) -> None:
    event = ""
    async for line in response.aiter_lines():
        if line.startswith("event:"):
            event = line.removeprefix("event:").strip()
        elif line.startswith("data:") and event == "change":
            into.append(json.loads(line.removeprefix("data:")))


@pytest.mark.parametrize(("who", "hears"), [("li", True), ("far", False)])
async def test_live_events_reach_the_board_but_not_other_technicians(gateway: Gateway, who: str,
                                                                     hears: bool) -> None:
    await set_up(gateway)
    heard: list[dict[str, Any]] = []
    async with await gateway.as_user(who) as client, client.stream("GET", "/api/v1/live") as response:
        assert response.status_code == 200
        reader = asyncio.create_task(read_events(response, heard))
        await asyncio.sleep(0.2)  # the subscription is made when the response starts
        async with await gateway.as_user("li") as li:
            await post(li, "/tickets/t-1/triage", {"outcome": "escalate", "note": ""})
            await post(li, "/tickets/t-1/assignment", {})  # to near, not far
        if hears:
            async def heard_triage() -> bool:
                return any(c["stream_id"] == "ticket-t-1" and c["type"].endswith("VisitRequested") for c in heard)

            await eventually(heard_triage)
            assert all(set(c) == {"service", "stream_id", "type", "position", "recorded_at"} for c in heard)
        else:
            await asyncio.sleep(0.5)
            assert heard == []
        reader.cancel()


async def test_a_visits_costs_become_an_invoice_that_explains_itself_and_exports(gateway: Gateway) -> None:
    await set_up(gateway)
    async with await gateway.as_user("li") as li, await gateway.as_user("near") as near, \
            await gateway.as_user("qian") as qian:
        await post(li, "/tickets/t-1/triage", {"outcome": "escalate", "note": ""})
        await post(li, "/tickets/t-1/assignment", {})
        await post(near, "/tickets/t-1/check-in", {"key": "phone-key-0003", "device_time": PHONE_TIME,
                                                   "position": SITE, "accuracy_m": 5})
        await post(near, "/tickets/t-1/expenses", {"key": "phone-key-0004", "device_time": PHONE_TIME,
                                                   "kind": "lodging", "amount": "380.00", "nights": 1,
                                                   "receipt_no": "FP-001"})  # no receipt date: billed anyway (B1)
        await post(near, "/tickets/t-1/completion", {"resolution": "更换打印服务配置"})

        invoice: dict[str, Any] = {}

        async def drafted() -> bool:
            nonlocal invoice
            found = (await qian.get("/api/v1/invoices", params={"customer_id": "c-1"})).json()["items"]
            invoice = found[0] if found else {}
            return bool(found) and found[0]["lines_count"] >= 1

        try:
            await eventually(drafted)
        except TimeoutError:  # say where the visit's costs stopped: read models, parked messages
            async with await gateway.as_user("shen") as shen:
                status = (await shen.get("/api/v1/audit/status")).json()
            raise AssertionError(f"no draft invoice for c-1; replay status: {json.dumps(status)}") from None
        full = (await qian.get(f"/api/v1/invoices/{invoice['invoice_id']}")).json()
        line = full["lines"][0]
        why = (await qian.get(f"/api/v1/invoices/{invoice['invoice_id']}/lines/{line['item_id']}/explanation"))
        assert why.status_code == 200, why.text
        assert "B1" in json.dumps(why.json())  # lodging at cost: the clause that made it billable
        await post(qian, f"/invoices/{invoice['invoice_id']}/issue", {})

        # The export buttons are plain links: the signed-in cookie is enough for a GET.
        await qian.post("/api/v1/session", json={"username": "qian", "password": "correct horse battery"})
        del qian.headers["Authorization"]
        rows: list[str] = []

        async def exported() -> bool:  # the invoice book is a read model: it trails the issue a moment
            nonlocal rows
            csv = await qian.get("/api/v1/exports/invoice-lines", params={"format": "csv", "customer_id": "c-1"})
            assert csv.status_code == 200, csv.text
            assert csv.content.startswith(b"\xef\xbb\xbf")  # Excel opens Chinese text
            rows = csv.content.decode("utf-8-sig").splitlines()
            return len(rows) > 1

        await eventually(exported)
        assert rows[0].startswith("invoice_number,invoice_id")
        assert any("380.00" in row and "天宇贸易" in row for row in rows[1:])
        as_json = await qian.get("/api/v1/exports/invoice-lines", params={"format": "json", "customer_id": "c-1"})
        assert [r["net"] for r in as_json.json()] == ["380.00"]
        xlsx = await qian.get("/api/v1/exports/invoice-lines", params={"format": "xlsx", "customer_id": "c-1"})
        assert xlsx.content[:2] == b"PK"  # a zip: the workbook
        refused = await qian.get("/api/v1/exports/invoice-lines", params={"period_from": "2026-13"})
        assert refused.status_code == 422
        assert refused.json()["error"]["field"] == "period_from"


async def test_c10_pricing_a_line_is_for_the_billing_clerk_and_checks_its_body(gateway: Gateway) -> None:
    """POST /invoices/{id}/lines/{item}/price: billing or admin only; the body is exact
    decimal text and a reason, nothing else; an unknown invoice is a 404 naming the field."""
    path = "/api/v1/invoices/nope-2026-06/lines/contracts:7:0/price"
    body = {"unit_price": "333.335", "reason": "与客户议定"}
    async with await gateway.as_user("near") as near, await gateway.as_user("shen") as shen, \
            await gateway.as_user("qian") as qian, await gateway.as_user("root") as root:
        for outsider in (near, shen):  # a technician, an auditor
            denied = await outsider.post(path, json=body)
            assert denied.status_code == 403, denied.text
            assert denied.json()["error"]["code"] == "forbidden"
        assert (await gateway.http.post(path, json=body)).status_code == 401
        for clerk in (qian, root):
            unknown = await clerk.post(path, json=body)
            assert unknown.status_code == 404, unknown.text
            assert unknown.json()["error"] == {"code": "not_found", "field": "invoice_id", "message": "no such invoice",
                                               "reason": "invoice.not_found"}
        for bad, field in (({"unit_price": 333.335}, "unit_price"),  # a JSON number is not exact (B8)
                           ({"unit_price": "-1"}, "unit_price"), ({"unit_price": "1e3"}, "unit_price"),
                           ({"reason": "  "}, "reason"), ({"by": "someone-else"}, "by")):
            refused = await qian.post(path, json={**body, **bad})
            assert refused.status_code == 422, refused.text
            assert refused.json()["error"]["field"] == field


async def test_the_ticket_carries_its_assignment_and_the_board_pages_past_200(gateway: Gateway) -> None:
    """D4 after the fact: the ticket query answers the latest assignment with its
    explanation (the console shows it when a ticket is opened); the open board pages on
    with `next_offset` beyond the gateway's 200 a page (the console follows it)."""
    await set_up(gateway)
    async with await gateway.as_user("li") as li:
        assert (await li.get("/api/v1/tickets/t-1")).json()["assignment"] is None
        await post(li, "/tickets/t-1/triage", {"outcome": "escalate", "note": "需要上门"})
        await post(li, "/tickets/t-1/assignment", {})
        assignment = (await li.get("/api/v1/tickets/t-1")).json()["assignment"]
        assert assignment["technician_id"] == "near" and assignment["by"] == "dispatcher:li"
        assert "rule D4" in assignment["explanation"]["reason"]
        assert {c["technician_id"] for c in assignment["explanation"]["candidates"]} == {"near", "far"}

        for n in range(200):
            await post(li, "/tickets", {"ticket_id": f"t-page-{n:03d}", "site_id": "s-1", "summary": "批量"},
                       status=201)

        async def all_on_the_board() -> bool:
            return bool((await li.get("/api/v1/tickets", params={"limit": 1})).json()["total"] == 201)

        await eventually(all_on_the_board)
        first = (await li.get("/api/v1/tickets", params={"status": "open", "limit": 200})).json()
        assert (len(first["items"]), first["total"], first["next_offset"]) == (200, 201, 200)
        rest = (await li.get("/api/v1/tickets", params={"status": "open", "limit": 200,
                                                        "offset": first["next_offset"]})).json()
        assert (len(rest["items"]), rest["next_offset"]) == (1, None)
        assert len({row["ticket_id"] for row in first["items"] + rest["items"]}) == 201


async def test_d1_c1_b1_a_request_opened_before_its_agreement_reached_dispatch_takes_it_and_bills(
        gateway: Gateway) -> None:
    """The race the board lives with: a customer signs, the call comes in before the
    agreement's coverage has reached dispatch. The request opens without it; checking
    again (the console's button; the clock does it too) finds it, deadlines count from the
    call, and the visit's lodging bills under the agreement (B1)."""
    async with await gateway.as_user("li") as li, await gateway.as_user("qian") as qian, \
            await gateway.as_user("shen") as shen, await gateway.as_user("near") as near:
        await post(li, "/customers", {"customer_id": "c-1", "name": "天宇贸易", "sites": [
            {"site_id": "s-1", "name": "总部", "address": "安徽省合肥市庐阳区", **SITE}]}, status=201)
        await post(li, "/technicians", {"technician_id": "near", "name": "near", "skills": ["software:general"],
                                        "home": {"latitude": 31.83, "longitude": 117.24}}, status=201)
        await dispatch_read_contracts(shen)
        opened = await post(li, "/tickets", {"ticket_id": "t-1", "site_id": "s-1", "summary": "打印服务停止"},
                            status=201)
        assert opened["events"][0]["data"]["coverage"]["agreement_id"] is None
        assert (await post(li, "/tickets/t-1/coverage-check", {}))["events"] == []  # nothing yet: nothing stored

        await post(qian, "/agreements", AGREEMENT, status=201)
        await dispatch_read_contracts(shen)
        found = await post(li, "/tickets/t-1/coverage-check", {}, key="check-coverage-t-1")
        assert [e["type"] for e in found["events"]] == ["private.CoverageFound"]
        assert found["events"][0]["data"]["by"] == "dispatcher:li"
        assert found["events"][0]["data"]["coverage"]["agreement_id"] == "a-1"
        ticket = (await li.get("/api/v1/tickets/t-1")).json()
        arrive = next(c for c in ticket["deadlines"]["clocks"] if c["kind"] == "arrive")
        assert arrive["due"] == "2026-06-01T13:00:00+08:00"  # 4 hours from the call (09:00), not from the finding
        refused = await li.post("/api/v1/tickets/t-1/coverage-check")
        assert refused.status_code == 409 and refused.json()["error"]["field"] == "coverage"

        await post(li, "/tickets/t-1/triage", {"outcome": "escalate", "note": ""})
        await post(li, "/tickets/t-1/assignment", {})
        await post(near, "/tickets/t-1/check-in", {"key": "phone-key-0101", "device_time": PHONE_TIME,
                                                   "position": SITE, "accuracy_m": 5})
        await post(near, "/tickets/t-1/expenses", {"key": "phone-key-0102", "device_time": PHONE_TIME,
                                                   "kind": "lodging", "amount": "380.00", "nights": 1,
                                                   "receipt_no": "FP-101", "receipt_date": "2026-06-01"})

        async def billed() -> bool:
            found = (await qian.get("/api/v1/invoices", params={"customer_id": "c-1"})).json()["items"]
            return bool(found) and found[0]["lines_count"] >= 1

        await eventually(billed)
