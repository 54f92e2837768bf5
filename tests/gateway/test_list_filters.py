"""Issue 14: the gateway's list filters are the services' own query schemas' (the same
Literals and patterns, from weibao.shared.commands), so the API lets through what the
service takes (`period=visit:<ticket_id>`, refused before by a pattern of the gateway's
own) and refuses, 422 naming the parameter, what the service would refuse."""

from __future__ import annotations

from typing import Any

import pytest

from tests.gateway.conftest import HEFEI_OFFICE, SITE, Gateway
from tests.gateway.test_api import PHONE_TIME, dispatch_read_contracts, post
from tests.helpers import eventually

PER_VISIT = {  # billed per visit: each visit's costs on an invoice of their own, period `visit:<ticket>`
    "agreement_id": "a-1", "customer_id": "c-1", "template_id": "yizhuo-crm-maintenance",
    "parameters": {"fee.percent": "10", "fee.licence_price": "120000", "onsite.local_hours": 4,
                   "onsite.out_of_town_days": 2, "hardware.day_rate": "800", "billing_period": "per_visit"},
    "go_live": "2025-09-01", "office": HEFEI_OFFICE, "site_ids": ["s-1"]}


async def test_invoices_of_one_visit_are_listed_by_its_period(gateway: Gateway) -> None:
    async with await gateway.as_user("li") as li, await gateway.as_user("qian") as qian, \
            await gateway.as_user("shen") as shen, await gateway.as_user("near") as near:
        await post(li, "/customers", {"customer_id": "c-1", "name": "天宇贸易", "sites": [
            {"site_id": "s-1", "name": "总部", "address": "安徽省合肥市庐阳区", **SITE}]}, status=201)
        await post(qian, "/agreements", PER_VISIT, status=201)
        await post(li, "/technicians", {"technician_id": "near", "name": "near", "skills": ["software:general"],
                                        "home": {"latitude": 31.83, "longitude": 117.24}}, status=201)
        await dispatch_read_contracts(shen)
        await post(li, "/tickets", {"ticket_id": "t-1", "site_id": "s-1", "summary": "打印服务停止"}, status=201)

        async def on_the_board() -> bool:
            return bool((await li.get("/api/v1/technicians")).json())

        await eventually(on_the_board)
        await post(li, "/tickets/t-1/triage", {"outcome": "escalate", "note": ""})
        await post(li, "/tickets/t-1/assignment", {})
        await post(near, "/tickets/t-1/check-in", {"key": "phone-key-0101", "device_time": PHONE_TIME,
                                                   "position": SITE, "accuracy_m": 5})
        await post(near, "/tickets/t-1/expenses", {"key": "phone-key-0102", "device_time": PHONE_TIME,
                                                   "kind": "travel", "amount": "120.00",
                                                   "receipt_no": "FP-101"})  # travel: accepted by the API
        await post(near, "/tickets/t-1/completion", {"resolution": "更换打印服务配置"})

        listed: list[dict[str, Any]] = []

        async def drafted() -> bool:
            nonlocal listed
            answer = await qian.get("/api/v1/invoices", params={"period": "visit:t-1"})
            assert answer.status_code == 200, answer.text
            listed = answer.json()["items"]
            return bool(listed)

        await eventually(drafted)
        assert [(i["customer_id"], i["period"]) for i in listed] == [("c-1", "visit:t-1")]
        other = await qian.get("/api/v1/invoices", params={"period": "visit:t-2"})
        assert other.status_code == 200 and other.json()["items"] == []
        month = await qian.get("/api/v1/invoices", params={"period": "2026-06", "status": "draft"})
        assert [i["invoice_id"] for i in month.json()["items"]] == [listed[0]["invoice_id"]]

        # B8: an issued invoice has its number; found by it, as an auditor types it off the paper (any case).
        invoice_id = listed[0]["invoice_id"]
        await post(qian, f"/invoices/{invoice_id}/issue", {})
        number = (await qian.get(f"/api/v1/invoices/{invoice_id}")).json()["number"]
        assert number and number.startswith("INV-")
        found: list[dict[str, Any]] = []

        async def listed_by_number() -> bool:  # the list is billing's read model: it follows the log
            nonlocal found
            found = (await shen.get("/api/v1/invoices", params={"number": number.lower()})).json()["items"]
            return bool(found)

        await eventually(listed_by_number)
        assert [(i["invoice_id"], i["number"]) for i in found] == [(invoice_id, number)]
        nothing = (await shen.get("/api/v1/invoices", params={"number": "INV-1999-000001"})).json()
        assert (nothing["items"], nothing["total"]) == ([], 0)


@pytest.mark.parametrize(("path", "params", "field"), [
    ("/invoices", {"status": "bogus"}, "status"),  # billing's InvoiceStatus
    ("/invoices", {"period": "2026-13"}, "period"),  # billing's PERIOD: a month, or visit:<ticket_id>
    ("/invoices", {"period": "visit:"}, "period"),
    ("/invoices", {"period": "june"}, "period"),
    ("/invoices", {"number": "INV 2026"}, "number"),  # letters, digits and hyphens only
    ("/invoices", {"number": "N" * 41}, "number"),
    ("/renewals", {"status": "lapsed"}, "status"),  # billing's RenewalStatus
    ("/tickets", {"status": "pending"}, "status"),  # dispatch's TicketStatus
    ("/agreements", {"status": "lapsed"}, "status"),  # contracts' AgreementStatus: a lapse is no standing
])
async def test_a_bad_filter_is_a_422_naming_it(gateway: Gateway, path: str, params: dict[str, str],
                                               field: str) -> None:
    async with await gateway.as_user("root") as root:
        refused = await root.get(f"/api/v1{path}", params=params)
    assert refused.status_code == 422, refused.text
    assert (refused.json()["error"]["code"], refused.json()["error"]["field"]) == ("invalid", field)


async def test_the_filters_document_their_values(gateway: Gateway) -> None:
    # The OpenAPI shows each filter's values: the shared Literal, not a plain string.
    document = (await gateway.http.get("/openapi.json")).json()

    def values(path: str, name: str) -> set[str]:
        [parameter] = [p for p in document["paths"][f"/api/v1{path}"]["get"]["parameters"] if p["name"] == name]
        return {value for option in parameter["schema"].get("anyOf", [parameter["schema"]])
                for value in option.get("enum", [])}

    assert values("/invoices", "status") == {"draft", "issued", "partially_paid", "paid", "credited"}
    assert values("/renewals", "status") == {"open", "renewed", "withdrawn"}
    assert values("/tickets", "status") == {"open", "closed", "all"}
    assert values("/agreements", "status") == {"active", "terminated"}
