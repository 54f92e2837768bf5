"""Each seed template end to end over real NATS: sign, pay, cover, lapse, and the
messages the contracts service publishes for dispatch and billing."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from nats.aio.client import Client as NATS

from tests.helpers import eventually, request_raw

from .conftest import OFFICE, YIZHUO_PARAMETERS, ask, published

CASES = [
    ("yizhuo-crm-maintenance", YIZHUO_PARAMETERS, {"service": "fault", "local": True}, "C9", "12000.00"),
    ("xxx-software-service", {}, {"service": "fault", "phase": "cutover", "cause": "virus_cleanup"}, "C14", None),
    ("chaoren-software-sale", {}, {"service": "fault"}, "C16", None),
    ("quansousuo-purchasing", {}, {"service": "fault", "cause": "usage_problem"}, "C15", None),
    ("ziguang-three-guarantees", {}, {"service": "fault"}, "C20", None),
]


@pytest.mark.parametrize(("template_id", "parameters", "question", "sla_clause", "fee"), CASES)
async def test_sign_pay_cover_lapse(
    contracts: None, nc: NATS, template_id: str, parameters: dict[str, Any], question: dict[str, Any],
    sla_clause: str, fee: str | None,
) -> None:
    signed = await ask(nc, "sign", {
        "command_id": "sign-1", "agreement_id": "a-1", "customer_id": "c-1", "template_id": template_id,
        "parameters": parameters, "go_live": "2025-03-01", "office": OFFICE, "site_ids": ["s-1"],
    })
    assert signed["ok"], signed
    again = await ask(nc, "sign", {"command_id": "sign-1", "agreement_id": "a-1", "customer_id": "c-1",
                                   "template_id": template_id, "parameters": parameters,
                                   "go_live": "2025-03-01", "office": OFFICE})
    assert again["ok"] and again["result"]["events"] == signed["result"]["events"]  # a retry stores nothing

    covered = await ask(nc, "coverage", {"agreement_id": "a-1", "on": "2025-06-01", **question})
    assert covered["ok"], covered
    assert covered["result"]["verdict"] == "covered"
    assert sla_clause in covered["result"]["clauses"]

    if fee is not None:
        paid = await ask(nc, "pay", {"agreement_id": "a-1", "payment_id": "p-1", "amount": fee,
                                     "period_from": "2026-03-01", "period_to": "2027-02-28"})
        assert paid["ok"], paid
        later = await ask(nc, "coverage", {"agreement_id": "a-1", "on": "2026-06-01", **question})
        assert later["result"]["verdict"] == "covered" and "C2" in later["result"]["clauses"]

    lapse_day = "2027-03-01" if fee else "2026-03-01"
    assessed = await ask(nc, "assess", {"agreement_id": "a-1", "today": lapse_day})
    assert assessed["ok"], assessed
    after = await ask(nc, "coverage", {"agreement_id": "a-1", "on": lapse_day, **question})
    assert after["result"]["verdict"] == "billable" and after["result"]["clauses"][:2] == ["C1", "B3"]

    kinds = [subject for subject, _ in await published(nc, 6 if fee else 5)]
    assert kinds[:3] == ["contracts.private.AgreementSigned", "contracts.AgreementSigned",
                         "contracts.CoverageGranted"]
    assert "contracts.CoverageLapsed" in kinds
    messages: dict[str, dict[str, Any]] = {}
    for subject, body in await published(nc, 5):
        messages.setdefault(subject, body)  # the first of each kind: the free year's grant
    granted = messages["contracts.CoverageGranted"]["data"]
    # Everything dispatch and billing need, without asking contracts.
    assert granted["period_from"] == "2025-03-01" and granted["period_to"] == "2026-02-28"
    assert granted["office"]["city_code"] == "3401"
    assert granted["terms"]["onsite"]["kind"]
    assert messages["contracts.CoverageLapsed"]["data"]["lapsed_on"] == lapse_day
    if fee is not None:
        assert messages["contracts.FeeDue"]["data"]["amount"] == fee  # rule B4


async def test_an_invalid_command_answers_a_structured_error_and_stores_nothing(contracts: None, nc: NATS) -> None:
    refused = await ask(nc, "sign", {"agreement_id": "a-2", "customer_id": "c-1",
                                     "template_id": "yizhuo-crm-maintenance", "parameters": {},
                                     "go_live": "2025-03-01", "office": OFFICE})
    assert refused == {"ok": False, "error": {"code": "missing", "field": "parameters.fee.percent",
                                              "message": "this template needs it at signing"}}
    bad_date = await ask(nc, "sign", {"agreement_id": "a-2", "customer_id": "c-1",
                                      "template_id": "xxx-software-service", "go_live": "soon", "office": OFFICE})
    assert bad_date["error"]["field"] == "go_live"
    garbage = await request_raw(nc, "weibao.contracts.pay", b"{not json")
    assert garbage["error"]["field"] == "(body)"
    health = json.loads((await nc.request("weibao.contracts.health", b"", timeout=5)).data)
    assert health["log_position"] == 0


async def sign_xxx(nc: NATS) -> None:
    signed = await ask(nc, "sign", {"agreement_id": "a-9", "customer_id": "c-9", "template_id": "xxx-software-service",
                                    "go_live": "2025-03-01", "office": OFFICE})
    assert signed["ok"], signed


async def test_c7_b5_training_seats_free_then_billable_over_nats(contracts: None, nc: NATS) -> None:
    await sign_xxx(nc)
    booked = await ask(nc, "quota.reserve", {"agreement_id": "a-9", "kind": "training_seat", "ref": "class-1",
                                             "units": 2, "on": "2025-04-01"})
    assert booked["ok"], booked
    used = await ask(nc, "quota.consume", {"agreement_id": "a-9", "kind": "training_seat", "ref": "class-2",
                                           "units": 2, "on": "2025-04-02"})
    assert used["ok"], used
    message = next(e["data"] for e in used["result"]["events"] if e["type"] == "QuotaConsumed")
    # rule C7 [2]: three free seats; two reserved, so one of these is free and one billable (B5)
    assert (message["free_units"], message["billable_units"]) == (1, 1)
    assert message["customer_id"] == "c-9"
    balance = await ask(nc, "quota.balance", {"agreement_id": "a-9", "kind": "training_seat"})
    assert balance["result"]["available"] == 0
    bad = await ask(nc, "quota.reserve", {"agreement_id": "a-9", "kind": "training_seat", "ref": "x", "units": 0})
    assert bad["error"]["field"] == "units"


async def test_c10_installations_use_the_quota_over_nats(contracts: None, nc: NATS) -> None:
    await sign_xxx(nc)
    for n in range(4):
        used = await ask(nc, "quota.consume", {"agreement_id": "a-9", "kind": "installation", "ref": f"i-{n}",
                                               "units": 1, "on": "2025-04-02"})
        assert used["ok"], used
    last = next(e["data"] for e in used["result"]["events"] if e["type"] == "QuotaConsumed")
    assert last["billable_units"] == 1  # the fourth of three free installations


async def test_c18_b7_a_dongle_after_its_warranty_costs_200_over_nats(contracts: None, nc: NATS) -> None:
    registered = await ask(nc, "warranty.register", {
        "serial": "DG-1", "kind": "dongle", "model": "超人加密狗", "customer_id": "c-3", "supplied_by_vendor": True,
        "purchased_on": "2024-01-10", "invoice": True, "produced_on": None, "warranty_months": 12,
    })
    assert registered["ok"], registered
    verdict = await ask(nc, "warranty.verdict", {"serial": "DG-1", "fault_on": "2025-06-01"})
    assert verdict["result"]["remedy"] == "paid_replacement" and verdict["result"]["amount"] == "200.00"
    replaced = await ask(nc, "warranty.replace", {
        "serial": "DG-1", "replaced_on": "2025-06-02", "fault_on": "2025-06-01", "fault": "performance",
        "replacement_serial": "DG-2", "replacement_model": "超人加密狗",
    })
    assert replaced["ok"], replaced
    message = next(e["data"] for e in replaced["result"]["events"] if e["type"] == "WarrantyVerdict")
    assert (message["action"], message["fee"], message["covered"]) == ("replacement", "200.00", False)
    assert "C18" in message["clauses"]
    unknown = await ask(nc, "warranty.verdict", {"serial": "nope", "fault_on": "2025-06-01"})
    assert unknown["error"]["field"] == "serial"


async def test_c9_local_or_out_of_town_is_decided_from_the_site(contracts: None, nc: NATS) -> None:
    registered = await ask(nc, "customer.register", {
        "customer_id": "c-1", "name": "天宇贸易", "contacts": [{"name": "王经理", "phone": "0551-1234567"}],
        "sites": [{"site_id": "hefei", "name": "合肥总部", "address": "安徽省合肥市蜀山区长江西路100号"},
                  {"site_id": "canton", "name": "广州分部", "address": "广州市天河区体育西路1号"}],
    })
    assert registered["ok"], registered
    signed = await ask(nc, "sign", {"agreement_id": "a-1", "customer_id": "c-1",
                                    "template_id": "yizhuo-crm-maintenance", "parameters": YIZHUO_PARAMETERS,
                                    "go_live": "2025-03-01", "office": OFFICE, "site_ids": ["hefei", "canton"]})
    assert signed["ok"], signed
    local = await ask(nc, "coverage", {"agreement_id": "a-1", "on": "2025-06-01", "service": "fault",
                                       "site_id": "hefei"})
    away = await ask(nc, "coverage", {"agreement_id": "a-1", "on": "2025-06-01", "service": "fault",
                                      "site_id": "canton"})
    assert local["result"]["sla"]["arrive_within_hours"] == 8  # rule C9: N hours locally
    assert away["result"]["sla"]["arrive_within_days"] == 2  # rule C9: M days out of town
    messages = [body for subject, body in await published(nc, 2) if subject == "contracts.SiteLocated"]
    assert {m["data"]["site_id"]: m["data"]["city_code"] for m in messages} == {"hefei": "3401", "canton": "4401"}
    unknown = await ask(nc, "coverage", {"agreement_id": "a-1", "service": "fault", "site_id": "nowhere"})
    assert unknown["error"]["field"] == "site_id"
    bad = await ask(nc, "customer.add_site", {"customer_id": "c-1", "site_id": "x", "name": "?",
                                              "address": "somewhere", "latitude": 95, "longitude": 10})
    assert bad["error"]["field"] == "latitude"


@pytest.mark.parametrize("clock", [{"WEIBAO_TODAY": "2026-03-02", "WEIBAO_ASSESS_INTERVAL": "0.2"}])
async def test_c1_the_daily_assessment_lapses_coverage_by_itself(contracts: None, nc: NATS) -> None:
    signed = await ask(nc, "sign", {"agreement_id": "a-5", "customer_id": "c-5", "template_id": "xxx-software-service",
                                    "go_live": "2025-03-01", "office": OFFICE})
    assert signed["ok"], signed

    async def lapsed() -> bool:
        subjects = [subject for subject, _ in await published(nc, 3)]
        return "contracts.CoverageLapsed" in subjects

    await eventually(lapsed)
    # Reruns the same day are no-ops: one lapse, however often the clock ticks.
    await asyncio.sleep(0.6)
    subjects = [subject for subject, _ in await published(nc, 3)]
    assert subjects.count("contracts.CoverageLapsed") == 1
