"""Change requests (rule C8): small ones free, large ones billed by workload (B6), none
free outside a service period (C1); and the agreement's rates for service outside
coverage (B3), which also price large changes."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from nats.aio.client import Client as NATS

from tests.decider import Decider, Given
from weibao.contracts.adapters.templates import TemplateFile
from weibao.contracts.domain.agreement import (
    Agreement,
    ChangeRequestRecorded,
    Event,
    TerminateAgreement,
    evolve,
)
from weibao.contracts.domain.changes import RecordChangeRequest
from weibao.contracts.domain.changes import decide as decide_change
from weibao.contracts.domain.terms import ServiceRates
from weibao.shared import codec
from weibao.shared.errors import Rejected

from .conftest import AGREEMENT, OFFICE, ask, published, signing

IN_FREE_YEAR = date(2025, 6, 1)
AFTER_FREE_YEAR = date(2026, 6, 1)  # go-live 2025-03-01, twelve free months, no fee paid

# One history, two deciders: change requests (changes.decide) and the agreement's own commands
CHANGES = Decider(decide=decide_change, evolve=evolve, initial=Agreement())
Signed = Given[RecordChangeRequest, Event, Agreement]


@pytest.fixture
def quansousuo(templates: dict[str, TemplateFile]) -> Signed:
    """[4]: changes of more than 3 working days are large."""
    return CHANGES.given_state(AGREEMENT.after(signing(templates["quansousuo-purchasing"])).state)


def change(workload: str, on: date = IN_FREE_YEAR, ref: str = "CR-1") -> RecordChangeRequest:
    return RecordChangeRequest(ref, "报表增加一列", on, Decimal(workload))


def test_c8_a_small_change_in_the_service_period_is_free(quansousuo: Signed) -> None:
    quansousuo.when(change("3")).then(  # exactly the threshold: still small
        ChangeRequestRecorded("CR-1", "报表增加一列", IN_FREE_YEAR, Decimal(3), "covered", ("C8",)))


def test_c8_b6_a_change_of_more_than_3_working_days_is_billable_by_workload(quansousuo: Signed) -> None:
    [event] = quansousuo.when(change("3.5")).events
    assert isinstance(event, ChangeRequestRecorded)
    assert (event.verdict, event.clauses, event.workload_days) == ("billable", ("C8", "B6"), Decimal("3.5"))


def test_c1_c8_without_a_service_period_even_a_small_change_is_billable(quansousuo: Signed) -> None:
    [event] = quansousuo.when(change("1", AFTER_FREE_YEAR)).events
    assert isinstance(event, ChangeRequestRecorded)
    assert (event.verdict, event.clauses) == ("billable", ("C1", "C8", "B3"))


def test_c1_c8_after_termination_a_change_is_billable(quansousuo: Signed) -> None:
    ended = AGREEMENT.given_state(quansousuo.state).after(TerminateAgreement(date(2025, 5, 1), "contract ended"))
    [event] = CHANGES.given_state(ended.state).when(change("1")).events
    assert isinstance(event, ChangeRequestRecorded) and event.verdict == "billable" and "C1" in event.clauses


def test_c8_the_same_change_recorded_twice_is_one_effect(quansousuo: Signed) -> None:
    recorded = quansousuo.after(change("5"))
    recorded.when(change("5")).then()
    recorded.when(change("6")).then_rejected("conflict", "ref")


@pytest.mark.parametrize("workload", ["0", "-1", "NaN", "Infinity"])
def test_c8_a_workload_is_more_than_zero_working_days(quansousuo: Signed, workload: str) -> None:
    quansousuo.when(change(workload)).then_rejected("invalid", "workload_days")


def test_c8_a_change_needs_an_agreement() -> None:
    CHANGES.given().when(change("1")).then_rejected("not_found", "agreement_id")


# rule B3 (C1): the agreement's rates outside coverage, set by a signature's parameters


def test_b3_c1_service_rates_come_from_a_signatures_parameters(templates: dict[str, TemplateFile]) -> None:
    terms = templates["chaoren-software-sale"].resolve({"service.hourly_rate": "150", "service.day_rate": "980.50"})
    assert terms.service == ServiceRates(Decimal(150), Decimal("980.50"))
    # CoverageGranted carries the terms as data: rates as exact decimal text
    assert codec.dump(terms)["service"] == {"hourly_rate": "150", "day_rate": "980.50"}
    assert templates["chaoren-software-sale"].resolve({}).service is None  # no rate: to be agreed


def test_b3_a_service_rate_is_not_negative(templates: dict[str, TemplateFile]) -> None:
    with pytest.raises(Rejected) as refused:
        templates["chaoren-software-sale"].resolve({"service.day_rate": "-1"})
    assert refused.value.field.startswith("parameters.service")
    with pytest.raises(Rejected) as unknown:
        templates["chaoren-software-sale"].resolve({"service.weekly_rate": "1"})
    assert (unknown.value.code, unknown.value.field) == ("unknown", "parameters.service.weekly_rate")


# Over NATS: the command, its stored event and the public message


async def sign_quansousuo(nc: NATS) -> None:
    signed_ = await ask(nc, "sign", {"agreement_id": "a-q", "customer_id": "c-q",
                                     "template_id": "quansousuo-purchasing", "parameters": {"service.day_rate": "900"},
                                     "go_live": "2025-03-01", "office": OFFICE})
    assert signed_["ok"], signed_


RECORD: dict[str, Any] = {"command_id": "cr-cmd-1", "agreement_id": "a-q", "ref": "CR-7",
                          "description": "对接新的物流接口", "on": "2025-06-10", "workload_days": "4.5"}


async def test_c8_b6_recording_a_change_stores_its_event_and_publishes_the_assessment(contracts: None,
                                                                                      nc: NATS) -> None:
    await sign_quansousuo(nc)
    recorded = await ask(nc, "change.record", RECORD)
    assert recorded["ok"], recorded
    events = recorded["result"]["events"]
    assert [e["type"] for e in events] == ["private.ChangeRequestRecorded", "ChangeRequestAssessed"]
    assert events[1]["data"] == {
        "agreement_id": "a-q", "customer_id": "c-q", "ref": "CR-7", "description": "对接新的物流接口",
        "on": "2025-06-10", "workload_days": "4.5", "verdict": "billable", "clauses": ["C8", "B6"],
    }

    # the same command id again: the same answer, nothing stored twice
    again = await ask(nc, "change.record", RECORD)
    assert again["ok"] and again["result"]["events"] == events
    # the same ref under another command id: one effect (the change is already recorded)
    retried = await ask(nc, "change.record", {**RECORD, "command_id": "cr-cmd-2"})
    assert retried["ok"] and retried["result"]["events"] == []
    history = await ask(nc, "history", {"agreement_id": "a-q"})
    assert [e["type"] for e in history["result"]].count("private.ChangeRequestRecorded") == 1

    subjects = [subject for subject, _ in await published(nc, 5)]
    assert subjects.count("contracts.ChangeRequestAssessed") == 1
    # billing prices it with the terms the grant carried: the agreement's day rate (B3, B6)
    granted = next(body for subject, body in await published(nc, 5) if subject == "contracts.CoverageGranted")
    assert granted["data"]["terms"]["service"] == {"hourly_rate": None, "day_rate": "900"}


@pytest.mark.parametrize("workload", ["0", "-2", "lots", 2.5, None, True])
async def test_c8_an_invalid_workload_answers_a_structured_error_and_stores_nothing(contracts: None, nc: NATS,
                                                                                   workload: Any) -> None:
    await sign_quansousuo(nc)
    before = (await ask(nc, "history", {"agreement_id": "a-q"}))["result"]
    refused = await ask(nc, "change.record", {**RECORD, "command_id": None, "workload_days": workload})
    assert refused["ok"] is False
    assert refused["error"]["code"] == "invalid" and refused["error"]["field"] == "workload_days"
    assert (await ask(nc, "history", {"agreement_id": "a-q"}))["result"] == before


async def test_c8_a_change_for_no_agreement_is_refused(contracts: None, nc: NATS) -> None:
    refused = await ask(nc, "change.record", {**RECORD, "agreement_id": "nobody"})
    assert refused["error"]["code"] == "not_found" and refused["error"]["field"] == "agreement_id"
    missing = await ask(nc, "change.record", {k: v for k, v in RECORD.items() if k != "description"})
    assert missing["error"]["field"] == "description"
