"""The contracts views (weibao.shared.views.contracts) follow the service's own shapes:
a field added to the terms, a coverage decision, a warranty verdict or a customer is
declared in its view too (else the gateway would answer it with a 500), and every
shipped template's terms read as the agreement's view answers them."""

from __future__ import annotations

from dataclasses import fields
from datetime import date

import pytest
from pydantic import BaseModel

from tests.gateway.conftest import SITE, Gateway
from tests.gateway.test_api import AGREEMENT, post
from tests.helpers import eventually
from weibao.contracts.adapters.templates import load_templates
from weibao.contracts.domain import coverage, customer, quota, terms, warranty
from weibao.shared import codec
from weibao.shared.views import contracts as views

MIRRORS: list[tuple[type, type[BaseModel]]] = [
    (terms.Terms, views.AgreementTerms),
    (terms.Onsite, views.OnsiteTerms),
    (terms.PriorityTargets, views.TargetsByPriority),
    (terms.Targets, views.TargetHours),
    (terms.Fee, views.FeeTerms),
    (terms.Scope, views.ScopeTerms),
    (terms.HardwareService, views.HardwareTerms),
    (terms.ServiceRates, views.RateTerms),
    (terms.Training, views.TrainingTerms),
    (terms.Installation, views.InstallationTerms),
    (terms.Changes, views.ChangeTerms),
    (terms.Warranty, views.WarrantyTerms),
    (coverage.Decision, views.CoverageVerdict),
    (coverage.Sla, views.ServiceLevel),
    (warranty.Verdict, views.WarrantyVerdict),
    (customer.Customer, views.Customer),
    (customer.Contact, views.CustomerContact),
    (customer.Site, views.CustomerSite),
    (customer.Location, views.SiteLocation),
]


@pytest.mark.parametrize(("kind", "view"), MIRRORS, ids=lambda kind: kind.__name__)
def test_a_view_declares_every_field_of_what_the_service_dumps(kind: type, view: type[BaseModel]) -> None:
    assert [f.name for f in fields(kind)] == list(view.model_fields)


def test_a_quota_balance_is_the_ledger_s_with_its_agreement_and_kind() -> None:
    assert list(views.QuotaBalance.model_fields) == ["agreement_id", "kind", *(f.name for f in
                                                                               fields(quota.Balance))]


def test_every_shipped_template_reads_as_the_templates_and_terms_views() -> None:
    for loaded in load_templates().values():
        template = loaded.template
        views.AgreementTemplate.model_validate({"id": template.id, "name": template.name,
                                                "parameters": list(template.parameters),
                                                "description": template.description})
        dumped = codec.dump(template.terms)
        assert views.AgreementTerms.model_validate(dumped).model_dump(mode="json") == dumped


def test_a_coverage_decision_round_trips_through_its_view() -> None:
    onsite = terms.Onsite(kind="respond_resolve", respond_hours=2, resolve_hours=24, service_hours=("09:00", "18:00"))
    sla = coverage.sla_for(onsite, coverage.Question(on=date(2027, 1, 4), service="fault"))
    decision = coverage.Decision("covered", ("C15",), "inside the service period and scope", sla=sla,
                                 charges=("expenses",))
    dumped = codec.dump(decision)
    assert views.CoverageVerdict.model_validate(dumped).model_dump(mode="json") == dumped


# -- every contracts query answers through its view, over HTTP --------------------------


async def test_every_contracts_query_answers_its_declared_shape(gateway: Gateway) -> None:
    """Each query route of api/contracts.py with a real answer: FastAPI validates it
    against the route's view (a field missed or mistyped would be a 500 here)."""
    async with await gateway.as_user("li") as li, await gateway.as_user("qian") as qian, \
            await gateway.as_user("root") as root:
        templates = (await li.get("/api/v1/templates")).json()
        assert len(templates) == 5 and all(isinstance(t["parameters"], list) for t in templates)
        await post(li, "/customers", {"customer_id": "c-1", "name": "天宇贸易",
                                      "contacts": [{"name": "王经理", "phone": "0551-1234567"}],
                                      "sites": [{"site_id": "s-1", "name": "总部", "address": "安徽省合肥市庐阳区",
                                                 **SITE}]}, status=201)
        await post(qian, "/agreements", AGREEMENT, status=201)
        customer = (await li.get("/api/v1/customers/c-1")).json()
        assert customer["contacts"] == [{"name": "王经理", "phone": "0551-1234567", "email": "", "qq": ""}]
        assert customer["sites"][0]["location"]["latitude"] == SITE["latitude"]

        agreement = (await li.get("/api/v1/agreements/a-1")).json()
        assert agreement["terms"]["fee"]["percent"] == "10" and agreement["paid_periods"] == []
        assert agreement["terms"]["onsite"]["local_hours"] == 4
        paid = await post(qian, "/agreements/a-1/payments", {"payment_id": "p-1", "amount": "12000.00",
                                                              "period_from": "2026-09-01",
                                                              "period_to": "2027-08-31"}, status=201)
        assert paid["events"]
        agreement = (await li.get("/api/v1/agreements/a-1")).json()
        assert agreement["paid_periods"] == [["2026-09-01", "2027-08-31"]]
        before = (await li.get("/api/v1/agreements/a-1", params={"as_of": "2000-01-01T00:00:00+00:00"}))
        assert before.status_code == 404  # not signed yet then

        covered = await post(li, "/coverage", {"agreement_id": "a-1", "site_id": "s-1", "service": "fault",
                                               "on": "2026-10-01", "priority": "urgent", "channel": "phone"})
        assert covered["verdict"] == "covered" and covered["sla"]["arrive_within_hours"] == 4

        balance = (await li.get("/api/v1/agreements/a-1/quotas/training_seat")).json()
        assert balance["kind"] == "training_seat" and balance["available"] == balance["free_total"]

        await post(root, "/warranties/register", {
            "serial": "SN-1", "kind": "dongle", "model": "加密狗", "customer_id": "c-1", "supplied_by_vendor": True,
            "purchased_on": "2026-01-05", "invoice": True, "produced_on": "2025-12-01"}, status=201)
        verdict = await post(li, "/warranties/verdict", {"serial": "SN-1", "fault_on": "2026-03-01"})
        assert verdict["covered"] is True and verdict["amount"] is None
        late = await post(li, "/warranties/verdict", {"serial": "SN-1", "fault_on": "2027-06-01"})
        assert late["amount"] == "200.00"  # rule C18: a dongle replaced after its year
        assert (await post(li, "/coverage", {"serial": "SN-1", "fault_on": "2026-03-01",
                                              "service": "hardware_network"}))["verdict"] == "covered"

        async def listed() -> bool:
            overview = (await li.get("/api/v1/customers/c-1/overview")).json()
            found = (await li.get("/api/v1/agreements", params={"customer_id": "c-1"})).json()["items"]
            return bool(overview["agreements"]) and bool(found)

        await eventually(listed)
        customers = (await li.get("/api/v1/customers", params={"q": "天宇"})).json()
        assert customers["items"][0]["sites"][0]["site_id"] == "s-1"
        overview = (await li.get("/api/v1/customers/c-1/overview")).json()
        assert overview["customer"]["contacts"][0]["name"] == "王经理"
        card = overview["agreements"][0]
        assert card["coverage"]["verdict"] in ("covered", "billable", "excluded") and len(card["quotas"]) == 3

        await post(root, "/agreements/a-1/termination", {"on": "2027-01-01", "reason": "客户停用"})

        async def ended() -> bool:
            found = (await li.get("/api/v1/agreements", params={"status": "terminated"})).json()["items"]
            return [row["terminated_on"] for row in found] == ["2027-01-01"]

        await eventually(ended)
        assert (await li.get("/api/v1/customers/c-1/overview")).json()["agreements"][0]["quotas"] == []


async def test_an_agreement_shows_its_amendments_beside_the_terms_as_signed(gateway: Gateway) -> None:
    """An amendment is a new event, never an edit: the agreement answers the terms as
    signed and each amendment with its day and reason, so a clerk sees what applied when."""
    async with await gateway.as_user("li") as li, await gateway.as_user("qian") as qian, \
            await gateway.as_user("root") as root:
        await post(li, "/customers", {"customer_id": "c-1", "name": "天宇贸易", "sites": [
            {"site_id": "s-1", "name": "总部", "address": "安徽省合肥市庐阳区", **SITE}]}, status=201)
        await post(qian, "/agreements", AGREEMENT, status=201)
        signed = (await li.get("/api/v1/agreements/a-1")).json()
        assert (signed["amendments"], signed["customer_id"], signed["terminated_on"]) == ([], "c-1", None)

        upgrade = {**AGREEMENT["parameters"], "onsite.local_hours": 2}
        await post(root, "/agreements/a-1/amendments",
                   {"parameters": upgrade, "effective_on": "2027-01-01", "reason": "升级为两小时到场"}, status=201)
        agreement = (await li.get("/api/v1/agreements/a-1")).json()
        assert agreement["terms"] == signed["terms"]  # as signed, untouched
        [amended] = agreement["amendments"]
        assert (amended["effective_on"], amended["reason"]) == ("2027-01-01", "升级为两小时到场")
        assert amended["terms"]["onsite"]["local_hours"] == 2
