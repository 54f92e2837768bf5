"""GET /api/v1/renewals (issue 13 item 7; rules B4, C2): the renewal notices billing keeps,
for the billing clerk and the auditor; a technician or a dispatcher is refused (403).
Through the gateway, on a real nats-server, the three services on SQLite (the gateway's
fixture, tests/gateway/conftest.py)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.gateway.conftest import HEFEI_OFFICE, SITE, Gateway, gateway  # noqa: F401 - gateway: its fixture
from tests.helpers import eventually

AGREEMENT = {  # [1] 10 % of 120,000.00 a year; free until 2026-08-31 (C1)
    "agreement_id": "a-1", "customer_id": "c-1", "template_id": "yizhuo-crm-maintenance",
    "parameters": {"fee.percent": "10", "fee.licence_price": "120000", "onsite.local_hours": 4,
                   "onsite.out_of_town_days": 2, "hardware.day_rate": "800"},
    "go_live": "2025-09-01", "office": HEFEI_OFFICE, "site_ids": ["s-1"]}


async def post(client: httpx.AsyncClient, path: str, body: dict[str, Any], status: int = 200) -> Any:
    response = await client.post(f"/api/v1{path}", json=body)
    assert response.status_code == status, (path, response.text)
    return response.json()


async def test_b4_the_billing_clerk_and_the_auditor_see_renewal_notices_a_technician_is_refused(
        gateway: Gateway) -> None:  # noqa: F811 - the fixture imported above
    async with await gateway.as_user("qian") as qian, await gateway.as_user("shen") as shen, \
            await gateway.as_user("near") as near, await gateway.as_user("li") as li, \
            await gateway.as_user("root") as root:
        await post(li, "/customers", {"customer_id": "c-1", "name": "天宇贸易", "sites": [
            {"site_id": "s-1", "name": "总部", "address": "安徽省合肥市庐阳区", **SITE}]}, status=201)
        await post(qian, "/agreements", AGREEMENT, status=201)
        # 30 days before the free year ends, the fee for the next falls due (B4): a notice
        await post(root, "/agreements/a-1/assessment", {"today": "2026-08-05"})

        async def listed() -> bool:
            response = await qian.get("/api/v1/renewals", params={"status": "open"})
            return response.status_code == 200 and response.json()["total"] == 1

        await eventually(listed)
        page = (await qian.get("/api/v1/renewals", params={"customer_id": "c-1", "limit": 10})).json()
        (notice,) = page["items"]
        assert page["next_offset"] is None
        assert {k: notice[k] for k in ("agreement_id", "customer_name", "amount", "period_from", "period_to",
                                       "due_on", "status")} == {
            "agreement_id": "a-1", "customer_name": "天宇贸易", "amount": "12000.00", "period_from": "2026-09-01",
            "period_to": "2027-08-31", "due_on": "2026-08-02", "status": "open"}
        # B4: a notice, not an invoice
        assert (await qian.get("/api/v1/invoices", params={"customer_id": "c-1"})).json()["total"] == 0
        assert (await shen.get("/api/v1/renewals")).json()["items"] == [notice]  # the auditor reads them

        for outsider in (near, li):  # a technician, a dispatcher
            refused = await outsider.get("/api/v1/renewals")
            assert refused.status_code == 403, refused.text
        assert (await gateway.http.get("/api/v1/renewals")).status_code == 401  # nobody signed in
        wrong = await qian.get("/api/v1/renewals", params={"status": "lapsed"})
        assert wrong.status_code == 422 and "status" in wrong.text
