"""Dispatch's requests decoded with the schemas the gateway validates HTTP bodies with
(weibao.shared.commands.dispatch): one vocabulary at both ends (C13's channels, D6's
kinds of expense), and a CLI's request with a bad shape refused by name, storing nothing."""

from __future__ import annotations

from typing import Any, get_args, get_type_hints

from nats.aio.client import Client as NATS

from tests.dispatch.conftest import SITE, ask, ok, set_up_customer_and_crew
from tests.gateway.conftest import Gateway, gateway
from tests.gateway.test_api import PHONE_TIME, post, set_up
from weibao.dispatch.domain import ticket as domain
from weibao.shared.commands import dispatch as commands
from weibao.shared.public import dispatch as public

__all__ = ["gateway"]  # the fixture, imported for pytest to find

C13 = ("phone", "fax", "email", "remote", "letter", "qq", "onsite")  # DOMAIN.md, rule C13
CHECK_IN = {"key": "phone-key-0001", "device_time": PHONE_TIME, "position": SITE, "accuracy_m": 8}
TRAVEL = {"key": "phone-key-0002", "device_time": PHONE_TIME, "kind": "travel", "amount": "154.00",
          "receipt_no": "G7205", "receipt_date": "2026-06-01", "note": "合肥南-绵阳 动车"}


def test_c13_one_channel_list_for_the_api_the_domain_and_the_messages() -> None:
    assert commands.NewTicket.model_fields["channel"].annotation is public.Channel  # the gateway's schema
    assert get_type_hints(domain.OpenTicket)["channel"] is public.Channel  # what decide is given
    assert get_type_hints(domain.TicketOpened)["channel"] is public.Channel  # what the log keeps
    assert get_args(public.Channel) == C13


def test_c5_d6_one_list_of_expense_and_work_kinds() -> None:
    assert commands.Expense.model_fields["kind"].annotation is public.ExpenseKind
    assert commands.ExpenseReport.model_fields["kind"].annotation is public.ExpenseKind
    assert get_type_hints(domain.RecordExpense)["kind"] is public.ExpenseKind
    assert get_type_hints(public.ExpenseRecorded)["kind"] is public.ExpenseKind
    assert "travel" in get_args(public.ExpenseKind)  # rule C5: travel, transport, lodging, meals
    assert commands.WorkReport.model_fields["kind"].annotation is public.WorkKind
    assert get_type_hints(domain.LogWork)["kind"] is public.WorkKind


async def test_c13_each_channel_opens_a_request_through_the_api(gateway: Gateway) -> None:
    await set_up(gateway)
    async with await gateway.as_user("li") as li:
        offered = ("phone", "onsite")  # rule C13: what [1] offers; the others are refused, naming the field
        for channel in get_args(public.Channel):
            opened = await li.post("/api/v1/tickets", json={"ticket_id": f"t-{channel}", "site_id": "s-1",
                                                            "summary": "打印服务停止", "channel": channel})
            if channel not in offered:
                assert opened.status_code == 422 and opened.json()["error"]["field"] == "channel", opened.text
                continue
            assert opened.status_code == 201, opened.text
            ticket = (await li.get(f"/api/v1/tickets/t-{channel}")).json()
            assert ticket["opened"]["channel"] == channel
        refused = await li.post("/api/v1/tickets", json={"ticket_id": "t-x", "site_id": "s-1", "summary": "x",
                                                          "channel": "wechat"})
        assert refused.status_code == 422 and refused.json()["error"]["field"] == "channel"


async def test_c5_d6_a_travel_expense_is_recorded_through_the_api(gateway: Gateway) -> None:
    await set_up(gateway)
    async with await gateway.as_user("li") as li, await gateway.as_user("near") as near:
        await post(li, "/tickets/t-1/triage", {"outcome": "escalate", "note": "需要上门"})
        await post(li, "/tickets/t-1/assignment", {"technician_id": "near", "reason": "就近"})
        await post(near, "/tickets/t-1/check-in", CHECK_IN)
        recorded = await post(near, "/tickets/t-1/expenses", TRAVEL)
        public_twin = next(e for e in recorded["events"] if e["type"] == "ExpenseRecorded")  # billing's (B1)
        assert (public_twin["data"]["kind"], public_twin["data"]["amount"]) == ("travel", "154.00")
        expenses = (await near.get("/api/v1/tickets/t-1")).json()["expenses"]
        assert [(e["kind"], e["amount"], e["receipt_date"]) for e in expenses] == [
            ("travel", "154.00", "2026-06-01")]


# What the CLI could send straight over NATS: each refused by the schema, naming the field.
OPEN = {"ticket_id": "t-9", "site_id": "s-1", "summary": "打印机无法连接"}
REPORT = {"ticket_id": "t-1", "technician_id": "near", "device_time": PHONE_TIME}
BAD: list[tuple[str, dict[str, Any], str]] = [
    ("ticket.open", {**OPEN, "priority": "p1"}, "priority"),  # issue 13: urgent, high, normal or low
    ("ticket.open", {**OPEN, "cause": "bad luck"}, "cause"),  # issue 13: a cause the clauses name
    ("ticket.open", {**OPEN, "summary": 42}, "summary"),
    ("ticket.open", {**OPEN, "channel": "wechat"}, "channel"),  # not a C13 channel
    ("ticket.open", {**OPEN, "received_at": "2026-06-01T08:00:00"}, "received_at"),  # no UTC offset (D1)
    ("ticket.triage", {"ticket_id": "t-1", "outcome": "phone"}, "outcome"),  # D3: remote or escalate
    ("ticket.wait", {"ticket_id": "t-1", "until": "tomorrow"}, "until"),
    ("ticket.assign", {"ticket_id": "t-1", "technician": "near"}, "technician"),
    ("ticket.check_in", {**REPORT, "key": "phone-key-0003", "position": SITE, "accuracy_m": "close"}, "accuracy_m"),
    ("ticket.check_in", {**REPORT, "key": "phone-key-0003", "position": SITE, "accuracy_m": 5, "gps": True}, "gps"),
    ("ticket.work", {**REPORT, "key": "phone-key-0004", "kind": "plumbing", "started": PHONE_TIME,
                     "ended": PHONE_TIME}, "kind"),  # D6
    ("ticket.expense", {**REPORT, "key": "phone-key-0005", "kind": "meals", "amount": 30, "nights": "two"},
     "nights"),
    ("ticket.complete", {"ticket_id": "t-1", "resolution": "已修复"}, "technician_id"),  # who: always named
    ("technician.register", {"technician_id": "new", "name": "新人", "skills": "hardware",
                             "home": {"latitude": 31.8, "longitude": 117.2}}, "skills"),  # a list, not text
    ("technician.change", {"technician_id": "near", "skills": ["hardware"], "rank": 3}, "rank"),
    ("technician.time_off", {"technician_id": "near", "first_day": "soon", "last_day": "2026-06-02",
                             "reason": "年假"}, "first_day"),
]


async def test_a_cli_request_of_the_wrong_shape_is_refused_naming_the_field_and_stores_nothing(
        services: None, nc: NATS) -> None:
    await set_up_customer_and_crew(nc)
    await ok(nc, "dispatch.ticket.open", {"ticket_id": "t-1", "site_id": "s-1", "summary": "打印服务停止"})
    # The streams these requests would write to: two requests', two technicians'.
    streams = ("ticket-t-1", "ticket-t-9", "technician-near", "technician-new")
    before = {stream: await _stored(nc, stream) for stream in streams}
    assert before["ticket-t-1"] and before["technician-near"] and not before["ticket-t-9"]

    for name, body, field in BAD:
        answer = await ask(nc, f"dispatch.{name}", {**body, "command_id": f"cli-{name}-{field}"})
        assert not answer["ok"], (name, answer)
        assert (answer["error"]["code"], answer["error"]["field"]) == ("invalid", field), (name, answer)
    assert {stream: await _stored(nc, stream) for stream in streams} == before


async def _stored(nc: NATS, stream_id: str) -> list[Any]:
    """A stream's events as the log holds them (not a read model that may lag); [] for none."""
    answer = await ask(nc, "dispatch.audit.stream", {"stream_id": stream_id})
    if not answer["ok"]:
        assert answer["error"]["code"] == "not_found", answer
        return []
    return list(answer["result"]["events"])
