"""The agreement aggregate: free year (C1), annual fees (C2), fee due (B4), lapse,
amendments and termination. Given events, when a command, then events."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from weibao.contracts.adapters.templates import TemplateFile
from weibao.contracts.domain.agreement import (
    AgreementAmended,
    AgreementTerminated,
    AmendAgreement,
    AssessCoverage,
    CoverageLapsed,
    FeeFallenDue,
    FeePaid,
    RecordFeePayment,
    TerminateAgreement,
    add_months,
    decide,
)
from weibao.shared.errors import Rejected

from .conftest import YIZHUO_PARAMETERS, apply, signed


@pytest.fixture
def yizhuo(templates: dict[str, TemplateFile]) -> TemplateFile:
    return templates["yizhuo-crm-maintenance"]


def test_c1_first_year_after_go_live_is_free(yizhuo: TemplateFile) -> None:
    state = signed(yizhuo, **YIZHUO_PARAMETERS)
    assert state.free_until == date(2026, 2, 28)
    assert state.covered_on(date(2025, 3, 1)) == "free"
    assert state.covered_on(date(2026, 2, 28)) == "free"
    assert state.covered_on(date(2026, 3, 1)) == "none"
    assert state.covered_on(date(2025, 2, 28)) == "none"  # before go-live


def test_c2_paying_the_annual_fee_extends_coverage(yizhuo: TemplateFile) -> None:
    state = signed(yizhuo, **YIZHUO_PARAMETERS)
    pay = RecordFeePayment("pay-1", Decimal("12000"), date(2026, 3, 1), date(2027, 2, 28), date(2026, 2, 20))
    (event,) = decide(pay, state)
    assert isinstance(event, FeePaid) and event.covered_until == date(2027, 2, 28)
    state = apply(state, [event])
    assert state.covered_on(date(2026, 9, 1)) == "paid"


def test_c2_the_fee_is_a_percentage_of_the_licence_price(yizhuo: TemplateFile) -> None:
    state = signed(yizhuo, **YIZHUO_PARAMETERS)
    short = RecordFeePayment("pay-1", Decimal("11999.99"), date(2026, 3, 1), date(2027, 2, 28), date(2026, 3, 1))
    with pytest.raises(Rejected) as refused:
        decide(short, state)
    assert (refused.value.code, refused.value.field) == ("underpaid", "amount")
    assert "12000.00" in refused.value.message


def test_c2_the_same_payment_twice_has_one_effect(yizhuo: TemplateFile) -> None:
    state = signed(yizhuo, **YIZHUO_PARAMETERS)
    pay = RecordFeePayment("pay-1", Decimal("12000"), date(2026, 3, 1), date(2027, 2, 28), date(2026, 3, 1))
    state = apply(state, decide(pay, state))
    assert decide(pay, state) == []


def test_c2_a_payment_after_a_gap_opens_coverage_from_its_own_start(yizhuo: TemplateFile) -> None:
    state = signed(yizhuo, **YIZHUO_PARAMETERS)
    state = apply(state, decide(AssessCoverage(date(2026, 3, 2)), state))
    assert state.lapsed_on == date(2026, 3, 1)
    pay = RecordFeePayment("pay-1", Decimal("12000"), date(2026, 6, 1), date(2027, 5, 31), date(2026, 6, 1))
    state = apply(state, decide(pay, state))
    assert state.covered_on(date(2026, 4, 1)) == "none"
    assert state.covered_on(date(2026, 6, 1)) == "paid"
    assert state.lapsed_on is None


def test_overlapping_periods_are_refused(yizhuo: TemplateFile) -> None:
    state = signed(yizhuo, **YIZHUO_PARAMETERS)
    first = RecordFeePayment("pay-1", Decimal("12000"), date(2026, 3, 1), date(2027, 2, 28), date(2026, 3, 1))
    state = apply(state, decide(first, state))
    again = RecordFeePayment("pay-2", Decimal("12000"), date(2026, 9, 1), date(2027, 8, 31), date(2026, 9, 1))
    with pytest.raises(Rejected) as refused:
        decide(again, state)
    assert refused.value.field == "period_from"


def test_b4_the_fee_falls_due_before_coverage_ends_once(yizhuo: TemplateFile) -> None:
    state = signed(yizhuo, **YIZHUO_PARAMETERS)
    assert decide(AssessCoverage(date(2026, 1, 29)), state) == []
    (due,) = decide(AssessCoverage(date(2026, 1, 30)), state)  # 30 days' notice
    assert isinstance(due, FeeFallenDue)
    assert (due.period_from, due.period_to, due.amount) == (date(2026, 3, 1), date(2027, 2, 28), Decimal("12000.00"))
    state = apply(state, [due])
    assert decide(AssessCoverage(date(2026, 2, 10)), state) == []


def test_c1_coverage_lapses_when_the_period_ends_unpaid(yizhuo: TemplateFile) -> None:
    state = signed(yizhuo, **YIZHUO_PARAMETERS)
    events = decide(AssessCoverage(date(2026, 3, 1)), state)
    assert CoverageLapsed(date(2026, 3, 1)) in events
    state = apply(state, events)
    assert decide(AssessCoverage(date(2026, 3, 5)), state) == []


def test_an_amendment_is_an_event_and_applies_from_its_date(yizhuo: TemplateFile) -> None:
    state = signed(yizhuo, **YIZHUO_PARAMETERS)
    faster = yizhuo.resolve({**YIZHUO_PARAMETERS, "onsite.local_hours": 4})
    (event,) = decide(AmendAgreement(faster, date(2025, 9, 1), "customer bought the premium SLA"), state)
    assert isinstance(event, AgreementAmended)
    state = apply(state, [event])
    assert state.terms_on(date(2025, 8, 31)).onsite.local_hours == 8
    assert state.terms_on(date(2025, 9, 1)).onsite.local_hours == 4


def test_termination_ends_coverage_and_further_commands(yizhuo: TemplateFile) -> None:
    state = signed(yizhuo, **YIZHUO_PARAMETERS)
    (event,) = decide(TerminateAgreement(date(2025, 6, 1), "customer closed"), state)
    assert isinstance(event, AgreementTerminated)
    state = apply(state, [event])
    assert state.covered_on(date(2025, 6, 1)) == "none"
    assert state.covered_on(date(2025, 5, 31)) == "free"
    with pytest.raises(Rejected) as refused:
        decide(TerminateAgreement(date(2025, 7, 1), "again"), state)
    assert refused.value.code == "conflict"


def test_a_reason_is_required_to_amend_or_terminate(yizhuo: TemplateFile) -> None:
    state = signed(yizhuo, **YIZHUO_PARAMETERS)
    with pytest.raises(Rejected) as refused:
        decide(TerminateAgreement(date(2025, 7, 1), "  "), state)
    assert refused.value.field == "reason"


def test_no_annual_fee_in_a_sale_agreement(templates: dict[str, TemplateFile]) -> None:
    state = signed(templates["chaoren-software-sale"])
    pay = RecordFeePayment("pay-1", Decimal("100"), date(2026, 3, 1), date(2027, 2, 28), date(2026, 3, 1))
    with pytest.raises(Rejected):
        decide(pay, state)


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [(date(2025, 1, 31), 1, date(2025, 2, 28)), (date(2024, 1, 31), 1, date(2024, 2, 29)),
     (date(2025, 3, 1), 12, date(2026, 3, 1)), (date(2025, 12, 15), 3, date(2026, 3, 15))],
)
def test_add_months_clamps_to_the_month_end(start: date, months: int, expected: date) -> None:
    assert add_months(start, months) == expected
