"""Every contracts request sent straight over NATS (as the CLI and the demo send them) is
decoded with the schema the gateway validates with (weibao.shared.commands.contracts):
an unknown field, a wrong type, a year the services cannot compute with, an amount
beyond the fen are refused `invalid`, naming the field, and nothing is stored. Valid
commands of every kind still store their events."""

from __future__ import annotations

import json
from typing import Any, get_args

import pytest
from nats.aio.client import Client as NATS

from tests.helpers import eventually
from weibao.contracts.domain import quota, warranty
from weibao.shared.commands import contracts as commands

from .conftest import OFFICE, YIZHUO_PARAMETERS, ask, published

SIGN: dict[str, Any] = {"agreement_id": "a-1", "customer_id": "c-1", "template_id": "yizhuo-crm-maintenance",
                        "parameters": YIZHUO_PARAMETERS, "go_live": "2025-03-01", "office": OFFICE,
                        "site_ids": ["hefei"]}
HEFEI: dict[str, Any] = {"site_id": "hefei", "name": "合肥总部", "address": "安徽省合肥市蜀山区长江西路100号"}
CUSTOMER: dict[str, Any] = {"customer_id": "c-1", "name": "天宇贸易", "contacts": [{"name": "王经理"}],
                            "sites": [HEFEI]}
MACHINE: dict[str, Any] = {"serial": "M-1", "kind": "machine", "model": "紫光 P4", "customer_id": "c-1",
                           "supplied_by_vendor": True, "purchased_on": "2025-01-10", "invoice": True,
                           "produced_on": None}
PAY: dict[str, Any] = {"agreement_id": "a-1", "payment_id": "p-1", "amount": "12000.00",
                       "period_from": "2026-03-01", "period_to": "2027-02-28"}
CHANGE: dict[str, Any] = {"agreement_id": "a-1", "ref": "CR-1", "description": "新报表", "workload_days": "4.5"}
RESERVE: dict[str, Any] = {"agreement_id": "a-1", "kind": "training_seat", "ref": "class-1", "units": 1,
                           "on": "2025-04-01"}
AMEND: dict[str, Any] = {"agreement_id": "a-1", "parameters": YIZHUO_PARAMETERS, "effective_on": "2025-06-01",
                         "reason": "补充协议"}
REPAIR: dict[str, Any] = {"serial": "M-1", "repaired_on": "2025-03-01", "part": None, "fault": "硬盘故障"}


async def log_position(nc: NATS) -> int:
    health = json.loads((await nc.request("weibao.contracts.health", b"", timeout=5)).data)
    return int(health["log_position"])


async def ok(nc: NATS, name: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = await ask(nc, name, body)
    assert answer["ok"], (name, answer)
    return answer


async def customer_agreement_and_machine(nc: NATS) -> None:
    await ok(nc, "customer.register", CUSTOMER)
    await ok(nc, "sign", SIGN)
    await ok(nc, "warranty.register", MACHINE)


REFUSED = [
    # an unknown field: a typo is named, never a silent default
    ("customer.register", {**CUSTOMER, "customer_id": "c-2", "emial": "wang@example.com"}, "emial"),
    ("customer.register", {**CUSTOMER, "customer_id": "c-2", "sites": [{**HEFEI, "lat": 31.8}]},
     "sites.0.lat"),
    ("sign", {**SIGN, "agreement_id": "a-2", "signed_by": "李"}, "signed_by"),
    ("pay", {**PAY, "note": "转账"}, "note"),
    ("quota.reserve", {**RESERVE, "annual_fee_paid": True}, "annual_fee_paid"),  # rule C7: contracts decides it
    ("warranty.repair", {**REPAIR, "technician": "near"}, "technician"),
    ("coverage", {"agreement_id": "a-1", "service": "fault", "sites": "hefei"}, "sites"),
    ("templates", {"template": "x"}, "template"),
    # a wrong type
    ("customer.add_site", {"customer_id": "c-1", "site_id": "s-2", "name": "仓库", "address": "合肥市蜀山区",
                           "latitude": "north", "longitude": 117.2}, "latitude"),
    ("sign", {**SIGN, "agreement_id": "a-2", "site_ids": "hefei"}, "site_ids"),
    ("sign", {**SIGN, "agreement_id": "a-2", "office": {**OFFICE, "latitude": 95}}, "office.latitude"),
    ("quota.reserve", {**RESERVE, "units": "two"}, "units"),
    ("terminate", {"agreement_id": "a-1", "reason": ["到期"]}, "reason"),
    ("pay", {**PAY, "amount": 12000.0}, "amount"),  # rule B8: a JSON float is not an exact amount
    ("change.record", {**CHANGE, "workload_days": 4.5}, "workload_days"),  # rule C8: exact working days
    ("customers", {"limit": "many"}, "limit"),
    ("history", {}, "agreement_id"),
    # a year outside 1900..2199: a term or warranty added to it would overflow
    ("sign", {**SIGN, "agreement_id": "a-2", "go_live": "9999-03-01"}, "go_live"),
    ("pay", {**PAY, "period_to": "9999-12-31"}, "period_to"),
    ("amend", {**AMEND, "effective_on": "9999-01-01"}, "effective_on"),
    ("terminate", {"agreement_id": "a-1", "on": "9999-12-31", "reason": "到期"}, "on"),
    ("assess", {"agreement_id": "a-1", "today": "9999-12-31"}, "today"),
    ("change.record", {**CHANGE, "on": "9999-06-10"}, "on"),
    ("quota.consume", {**RESERVE, "on": "9999-04-01"}, "on"),
    ("warranty.register", {**MACHINE, "serial": "M-2", "purchased_on": "9999-01-10"}, "purchased_on"),
    ("warranty.repair", {**REPAIR, "repaired_on": "9999-03-01"}, "repaired_on"),
    ("coverage", {"agreement_id": "a-1", "service": "fault", "on": "9999-06-01"}, "on"),
    ("warranty.verdict", {"serial": "M-1", "fault_on": "9999-06-01"}, "fault_on"),
    ("agreement", {"agreement_id": "a-1", "as_of": "9999-01-01T00:00:00+08:00"}, "as_of"),
    # an amount beyond the fen (rule B8), a workload beyond the hundredth
    ("pay", {**PAY, "amount": "12000.001"}, "amount"),
    ("change.record", {**CHANGE, "workload_days": "4.125"}, "workload_days"),
    ("warranty.register", {**MACHINE, "serial": "M-2", "dongle_replacement_fee": "200.001"},
     "dongle_replacement_fee"),
]


@pytest.mark.parametrize(("name", "body", "field"), REFUSED, ids=[f"{n}-{f}" for n, _, f in REFUSED])
async def test_a_bad_request_is_refused_invalid_by_field_and_stores_nothing(
        contracts: None, nc: NATS, name: str, body: dict[str, Any], field: str) -> None:
    await customer_agreement_and_machine(nc)
    before = await log_position(nc)
    refused = await ask(nc, name, {**body, "command_id": f"bad-{name}"})
    assert refused["ok"] is False, refused
    assert (refused["error"]["code"], refused["error"]["field"]) == ("invalid", field), refused
    assert refused["error"]["message"]
    assert await log_position(nc) == before


async def test_valid_commands_of_every_kind_store_their_events(contracts: None, nc: NATS) -> None:
    """Sign, pay, assess, change.record, customer.register, quota.reserve/consume and
    warranty.register/replace are proven over NATS in test_contracts_e2e.py and
    test_change_requests.py; the other kinds here."""
    await customer_agreement_and_machine(nc)

    def types(answer: dict[str, Any]) -> list[str]:
        return [e["type"] for e in answer["result"]["events"]]

    added = await ok(nc, "customer.add_site", {"customer_id": "c-1", "site_id": "zz", "name": "郑州仓库",
                                               "address": "郑州市金水区"})
    assert types(added) == ["private.SiteAdded", "SiteLocated"]
    moved = await ok(nc, "customer.move_site", {"customer_id": "c-1", "site_id": "hefei", "address": "郑州市金水区"})
    assert types(moved) == ["private.SiteMoved", "SiteLocated"]
    assert moved["result"]["events"][1]["data"]["city_code"] == "4101"
    away = await ok(nc, "coverage", {"agreement_id": "a-1", "on": "2025-06-01", "service": "fault",
                                     "site_id": "hefei"})
    assert away["result"]["sla"]["arrive_within_days"] == 2  # rule C9: moved out of town

    amended = await ok(nc, "amend", {**AMEND, "parameters": {**YIZHUO_PARAMETERS, "onsite.local_hours": 4}})
    assert types(amended) == ["private.AgreementAmended", "CoverageChanged"]
    local = await ok(nc, "coverage", {"agreement_id": "a-1", "on": "2025-07-01", "service": "fault", "local": True})
    assert local["result"]["sla"]["arrive_within_hours"] == 4  # rule C9: the amended N hours

    await ok(nc, "quota.reserve", RESERVE)
    released = await ok(nc, "quota.release", {"agreement_id": "a-1", "kind": "training_seat", "ref": "class-1",
                                              "on": "2025-04-02"})
    assert types(released) == ["private.QuotaReleased"]
    # rule C10: these installations never lapse; the schema admits the expiry, the domain refuses it
    expired = await ask(nc, "quota.expire", {"agreement_id": "a-1", "kind": "installation", "on": "2030-01-01"})
    assert (expired["error"]["code"], expired["error"]["field"]) == ("no_period_end", "on")

    repaired = await ok(nc, "warranty.repair", REPAIR)
    assert types(repaired) == ["private.RepairRecorded", "WarrantyVerdict"]  # rule C11: under warranty
    assert repaired["result"]["events"][1]["data"]["covered"] is True
    covered = await ok(nc, "coverage", {"serial": "M-1", "fault_on": "2025-03-02", "service": "hardware_network"})
    assert covered["result"]["verdict"] == "covered"  # vendor hardware: its warranty decides (C11)
    await ok(nc, "warranty.register", {**MACHINE, "serial": "M-3", "purchased_on": "2025-05-01"})
    returned = await ok(nc, "warranty.return", {"serial": "M-3", "returned_on": "2025-05-04",
                                                "fault_on": "2025-05-03", "fault": "performance"})
    assert types(returned) == ["private.HardwareReturned", "WarrantyVerdict"]  # rule C19: within 7 days

    terminated = await ok(nc, "terminate", {"agreement_id": "a-1", "on": "2025-08-01", "reason": "合同到期不续"})
    assert types(terminated) == ["private.AgreementTerminated", "CoverageEnded"]
    history = await ok(nc, "history", {"agreement_id": "a-1"})
    assert [e["type"] for e in history["result"]][-1] == "CoverageEnded"
    wanted = {"contracts.CoverageChanged", "contracts.WarrantyVerdict", "contracts.CoverageEnded"}

    async def relayed() -> bool:
        # The relay publishes after the commit: on a loaded machine the last messages come a
        # moment after the first 20 (the count `published` waits for), so wait for these.
        return wanted <= {subject for subject, _ in await published(nc, 20)}

    await eventually(relayed)


def test_the_schemas_speak_the_domains_vocabulary() -> None:
    """The shared schemas cannot import the service: their word lists must stay the domain's."""
    assert get_args(commands.QuotaKind) == get_args(quota.QuotaKind)
    assert get_args(commands.HardwareKind) == warranty.KINDS
    assert get_args(commands.FaultKind) == warranty.FAULTS
