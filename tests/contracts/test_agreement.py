"""The agreement aggregate: free year (C1), annual fees (C2), fee due (B4), lapse,
amendments and termination. Given events, when a command, then events."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from tests.decider import Given
from weibao.contracts.adapters.templates import TemplateFile
from weibao.contracts.domain.agreement import (
    Agreement,
    AgreementAmended,
    AgreementTerminated,
    AmendAgreement,
    AssessCoverage,
    Command,
    CoverageLapsed,
    Event,
    FeeFallenDue,
    FeePaid,
    RecordFeePayment,
    TerminateAgreement,
    add_months,
)

from .conftest import AGREEMENT, YIZHUO_PARAMETERS, signing


def signed_history(template: TemplateFile, **parameters: Any) -> Given[Command, Event, Agreement]:
    """The agreement as the contracts fixtures sign it (conftest's `signing`)."""
    return AGREEMENT.after(signing(template, **parameters))


@pytest.fixture
def yizhuo(templates: dict[str, TemplateFile]) -> TemplateFile:
    return templates["yizhuo-crm-maintenance"]


def test_c1_first_year_after_go_live_is_free(yizhuo: TemplateFile) -> None:
    state = signed_history(yizhuo, **YIZHUO_PARAMETERS).state
    assert state.free_until == date(2026, 2, 28)
    assert state.covered_on(date(2025, 3, 1)) == "free"
    assert state.covered_on(date(2026, 2, 28)) == "free"
    assert state.covered_on(date(2026, 3, 1)) == "none"
    assert state.covered_on(date(2025, 2, 28)) == "none"  # before go-live


def test_c2_paying_the_annual_fee_extends_coverage(yizhuo: TemplateFile) -> None:
    pay = RecordFeePayment("pay-1", Decimal("12000"), date(2026, 3, 1), date(2027, 2, 28), date(2026, 2, 20))
    paying = signed_history(yizhuo, **YIZHUO_PARAMETERS).when(pay)
    (event,) = paying.events
    assert isinstance(event, FeePaid) and event.covered_until == date(2027, 2, 28)
    assert paying.state.covered_on(date(2026, 9, 1)) == "paid"


def test_c2_the_fee_is_a_percentage_of_the_licence_price(yizhuo: TemplateFile) -> None:
    short = RecordFeePayment("pay-1", Decimal("11999.99"), date(2026, 3, 1), date(2027, 2, 28), date(2026, 3, 1))
    signed_history(yizhuo, **YIZHUO_PARAMETERS).when(short).then_rejected("underpaid", "amount", message="12000.00")


def test_c2_the_same_payment_twice_has_one_effect(yizhuo: TemplateFile) -> None:
    pay = RecordFeePayment("pay-1", Decimal("12000"), date(2026, 3, 1), date(2027, 2, 28), date(2026, 3, 1))
    signed_history(yizhuo, **YIZHUO_PARAMETERS).after(pay).when(pay).then()


def test_c2_a_payment_after_a_gap_opens_coverage_from_its_own_start(yizhuo: TemplateFile) -> None:
    lapsed = signed_history(yizhuo, **YIZHUO_PARAMETERS).after(AssessCoverage(date(2026, 3, 2)))
    assert lapsed.state.lapsed_on == date(2026, 3, 1)
    pay = RecordFeePayment("pay-1", Decimal("12000"), date(2026, 6, 1), date(2027, 5, 31), date(2026, 6, 1))
    state = lapsed.after(pay).state
    assert state.covered_on(date(2026, 4, 1)) == "none"
    assert state.covered_on(date(2026, 6, 1)) == "paid"
    assert state.lapsed_on is None


def test_overlapping_periods_are_refused(yizhuo: TemplateFile) -> None:
    first = RecordFeePayment("pay-1", Decimal("12000"), date(2026, 3, 1), date(2027, 2, 28), date(2026, 3, 1))
    paid = signed_history(yizhuo, **YIZHUO_PARAMETERS).after(first)
    again = RecordFeePayment("pay-2", Decimal("12000"), date(2026, 9, 1), date(2027, 8, 31), date(2026, 9, 1))
    paid.when(again).then_rejected(field="period_from")


def test_b4_the_fee_falls_due_before_coverage_ends_once(yizhuo: TemplateFile) -> None:
    history = signed_history(yizhuo, **YIZHUO_PARAMETERS)
    history.when(AssessCoverage(date(2026, 1, 29))).then()
    (due,) = history.when(AssessCoverage(date(2026, 1, 30))).events  # 30 days' notice
    assert isinstance(due, FeeFallenDue)
    assert (due.period_from, due.period_to, due.amount) == (date(2026, 3, 1), date(2027, 2, 28), Decimal("12000.00"))
    history.given(due).when(AssessCoverage(date(2026, 2, 10))).then()


def test_c1_coverage_lapses_when_the_period_ends_unpaid(yizhuo: TemplateFile) -> None:
    history = signed_history(yizhuo, **YIZHUO_PARAMETERS)
    events = history.when(AssessCoverage(date(2026, 3, 1))).events
    assert CoverageLapsed(date(2026, 3, 1)) in events
    history.given(*events).when(AssessCoverage(date(2026, 3, 5))).then()


def test_an_amendment_is_an_event_and_applies_from_its_date(yizhuo: TemplateFile) -> None:
    history = signed_history(yizhuo, **YIZHUO_PARAMETERS)
    faster = yizhuo.resolve({**YIZHUO_PARAMETERS, "onsite.local_hours": 4})
    (event,) = history.when(AmendAgreement(faster, date(2025, 9, 1), "customer bought the premium SLA")).events
    assert isinstance(event, AgreementAmended)
    state = history.given(event).state
    assert state.terms_on(date(2025, 8, 31)).onsite.local_hours == 8
    assert state.terms_on(date(2025, 9, 1)).onsite.local_hours == 4


def test_termination_ends_coverage_and_further_commands(yizhuo: TemplateFile) -> None:
    history = signed_history(yizhuo, **YIZHUO_PARAMETERS)
    (event,) = history.when(TerminateAgreement(date(2025, 6, 1), "customer closed")).events
    assert isinstance(event, AgreementTerminated)
    terminated = history.given(event)
    assert terminated.state.covered_on(date(2025, 6, 1)) == "none"
    assert terminated.state.covered_on(date(2025, 5, 31)) == "free"
    terminated.when(TerminateAgreement(date(2025, 7, 1), "again")).then_rejected("conflict")


def test_a_reason_is_required_to_amend_or_terminate(yizhuo: TemplateFile) -> None:
    signed_history(yizhuo, **YIZHUO_PARAMETERS).when(
        TerminateAgreement(date(2025, 7, 1), "  ")).then_rejected(field="reason")


def test_no_annual_fee_in_a_sale_agreement(templates: dict[str, TemplateFile]) -> None:
    pay = RecordFeePayment("pay-1", Decimal("100"), date(2026, 3, 1), date(2027, 2, 28), date(2026, 3, 1))
    signed_history(templates["chaoren-software-sale"]).when(pay).then_rejected()


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [(date(2025, 1, 31), 1, date(2025, 2, 28)), (date(2024, 1, 31), 1, date(2024, 2, 29)),
     (date(2025, 3, 1), 12, date(2026, 3, 1)), (date(2025, 12, 15), 3, date(2026, 3, 15))],
)
def test_add_months_clamps_to_the_month_end(start: date, months: int, expected: date) -> None:
    assert add_months(start, months) == expected
