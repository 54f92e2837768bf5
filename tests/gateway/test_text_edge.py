"""Text every backend stores, at both edges: the gateway refuses a NUL in any string
field of a body with a 422 naming it, before anything is sent; a service refuses it
too when the request comes straight over NATS, storing nothing. On both backends: a
NUL that SQLite took once reached PostgreSQL's consumer, which parked the event."""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from nats.aio.client import Client as NATS
from pydantic import BaseModel

from tests.gateway.backends import any_gateway
from tests.gateway.conftest import SITE, Gateway
from tests.gateway.test_api import PHONE_TIME, post, set_up
from tests.helpers import eventually, request, request_raw
from weibao.shared.commands import contracts, dispatch

__all__ = ["any_gateway"]  # the fixture, imported for pytest to find

NUL = "x\x00y"

# A valid body for each model and the route that takes it: only the NUL is wrong.
TICKET = {"ticket_id": "t-8", "site_id": "s-1", "summary": "打印服务停止", "channel": "phone",
          "skill": "software:general"}
CUSTOMER = {"customer_id": "c-8", "name": "天宇贸易", "contacts": [{"name": "王", "phone": "1", "role": "IT"}],
            "sites": [{"site_id": "s-8", "name": "总部", "address": "合肥"}]}
TECHNICIAN = {"technician_id": "x-8", "name": "小李", "skills": ["hardware"], "home": SITE,
              "office_city_code": "3401"}
REPORT = {"key": "phone-key-0801", "device_time": PHONE_TIME, "technician_id": "near"}
EXPENSE = {**REPORT, "kind": "meals", "amount": "30.00", "receipt_no": "R-1", "note": "午饭"}
WORK = {**REPORT, "kind": "software", "started": "2026-06-01T09:10:00+08:00", "ended": "2026-06-01T10:00:00+08:00"}
BODIES: list[tuple[type[BaseModel], str, dict[str, Any]]] = [
    (dispatch.NewTicket, "/tickets", TICKET),
    (contracts.NewCustomer, "/customers", CUSTOMER),
    (dispatch.NewTechnician, "/technicians", TECHNICIAN),
    (dispatch.Expense, "/tickets/t-1/expenses", EXPENSE),
    (dispatch.Work, "/tickets/t-1/work", WORK),
    (dispatch.Triage, "/tickets/t-1/triage", {"outcome": "escalate", "note": "需要上门"}),
    (dispatch.Assign, "/tickets/t-1/assignment", {"technician_id": "near", "reason": "客户点名"}),
    (dispatch.Decline, "/tickets/t-1/decline", {"technician_id": "near", "reason": "生病"}),
    (dispatch.Wait, "/tickets/t-1/wait", {"reason": "等客户"}),
    (dispatch.Completion, "/tickets/t-1/completion", {"technician_id": "near", "resolution": "已修复"}),
]


def _texts(annotation: Any) -> bool:
    """Whether a field holds free text: `str`, or `str | None`."""
    if annotation is str:
        return True
    return typing.get_origin(annotation) in (typing.Union, types.UnionType) and str in typing.get_args(annotation)


def str_fields(model: type[BaseModel], body: dict[str, Any], path: str = "") -> Iterator[tuple[str, list[Any]]]:
    """Every string field of `model` as (its path in the error, its place in `body`),
    nested models and lists of them included (their first element)."""
    for name, field in model.model_fields.items():
        where = f"{path}.{name}" if path else name
        annotation = field.annotation
        if typing.get_origin(annotation) is list:
            (item,) = typing.get_args(annotation)
            if item is str:
                yield f"{where}[0]", [name, 0]
            elif isinstance(item, type) and issubclass(item, BaseModel) and body.get(name):
                for inner, place in str_fields(item, body[name][0], f"{where}[0]"):
                    yield inner, [name, 0, *place]
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel) and name in body:
            for inner, place in str_fields(annotation, body[name], where):
                yield inner, [name, *place]
        elif _texts(annotation):
            yield where, [name]


def with_nul(body: dict[str, Any], place: list[Any]) -> dict[str, Any]:
    copy = json.loads(json.dumps(body))
    target = copy
    for step in place[:-1]:
        target = target[step]
    target[place[-1]] = NUL
    return dict(copy)


CASES = [(path, route, with_nul(body, place)) for model, route, body in BODIES
         for path, place in str_fields(model, body)]


def test_every_string_field_is_enumerated() -> None:
    paths = {(route, path) for path, route, _ in CASES}
    # A few by hand, to show the enumeration reaches into nested bodies and lists.
    assert {("/tickets", "summary"), ("/customers", "contacts[0].phone"), ("/customers", "sites[0].address"),
            ("/technicians", "skills[0]"), ("/tickets/t-1/expenses", "note"),
            ("/tickets/t-1/work", "key")} <= paths
    assert len(CASES) >= 25


async def test_the_gateway_refuses_a_nul_in_every_string_field(any_gateway: Gateway) -> None:
    async with await any_gateway.as_user("root") as root:
        for path, route, body in CASES:
            response = await root.post(f"/api/v1{route}", json=body)
            assert response.status_code == 422, (route, path, response.text)
            error = response.json()["error"]
            assert (error["code"], error["field"]) == ("invalid", path), (route, error)
            assert "NUL" in error["message"]
        # Dict keys too, and the other classes the rule names, each in words.
        for body, field, words in [({**TECHNICIAN, "shift": {"mon\x00": "08:00"}}, "shift.mon\\u0000", "NUL"),
                                   ({**TECHNICIAN, "name": "a\ud800"}, "name", "surrogate"),
                                   ({**TECHNICIAN, "name": "a\x1b"}, "name", "control"),
                                   ({**TECHNICIAN, "name": "a\uffff"}, "name", "non-character")]:
            response = await root.post("/api/v1/technicians", content=json.dumps(body), headers={
                "Content-Type": "application/json"})
            assert response.status_code == 422, response.text
            assert response.json()["error"]["field"] == field
            assert words in response.json()["error"]["message"]
        # Path and query parameters: the same rule.
        refused = await root.get("/api/v1/tickets", params={"customer_id": NUL})
        assert (refused.status_code, refused.json()["error"]["field"]) == (422, "customer_id")
        status = (await root.get("/api/v1/audit/status")).json()
        assert [s["log_position"] for s in status["services"]] == [0, 0, 0]  # nothing reached a service's log


async def test_text_people_write_is_stored(any_gateway: Gateway) -> None:
    await set_up(any_gateway)
    async with await any_gateway.as_user("li") as li:
        summary = "打印服务停止 🖨️\n第二行\t(tab)"
        await post(li, "/tickets", {**TICKET, "summary": summary}, status=201)
        assert (await li.get("/api/v1/tickets/t-8")).json()["opened"]["summary"] == summary

        async def listed() -> bool:  # the board is a read model: its consumer stored the text too
            items = (await li.get("/api/v1/tickets")).json()["items"]
            return any(row["ticket_id"] == "t-8" for row in items)

        await eventually(listed)


async def test_a_service_refuses_a_nul_sent_straight_over_nats(any_gateway: Gateway, nc: NATS) -> None:
    await set_up(any_gateway)
    async with await any_gateway.as_user("shen") as shen:
        before = await dispatch_log_position(shen)
        cases: list[tuple[dict[str, Any], str]] = [
            ({**TICKET, "summary": NUL}, "summary"),
            ({**TICKET, "summary": "ok", "parameters": {"a": ["ok", "\ud800"]}}, "parameters.a[1]")]
        for body, field in cases:
            # ensure_ascii: a lone surrogate travels escaped, as any JSON encoder may send it.
            # Signed as the CLI is, so the service believes the caller and reads the body.
            payload = json.dumps({**body, "command_id": "straight-0001"}).encode()
            answer = await request_raw(nc, "weibao.dispatch.ticket.open", payload)
            assert answer["ok"] is False
            assert (answer["error"]["code"], answer["error"]["field"]) == ("invalid", field)
        assert await dispatch_log_position(shen) == before
        ticket = await request(nc, "weibao.dispatch.ticket", {"ticket_id": "t-8"})
        assert ticket["error"]["code"] == "not_found"


async def dispatch_log_position(auditor: httpx.AsyncClient) -> int:
    status = (await auditor.get("/api/v1/audit/status")).json()
    return int(next(s for s in status["services"] if s["service"] == "dispatch")["log_position"])


@pytest.mark.parametrize("model", [m for m, _, _ in BODIES])
def test_each_listed_body_is_valid_without_the_nul(model: type[BaseModel]) -> None:
    body = next(b for m, _, b in BODIES if m is model)
    model.model_validate(body)  # so each 422 above is the NUL's, not the body's
