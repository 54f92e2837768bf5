"""Coverage decisions, case by case, with the clauses that decide them."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from tests.decider import Decider
from weibao.contracts.adapters.templates import TemplateFile
from weibao.contracts.domain.agreement import Agreement, RecordFeePayment
from weibao.contracts.domain.coverage import Question, decide_coverage

from .conftest import AGREEMENT, YIZHUO_PARAMETERS, signing

IN_FREE_YEAR = date(2025, 6, 1)
AFTER_FREE_YEAR = date(2026, 6, 1)


@pytest.fixture
def yizhuo(templates: dict[str, TemplateFile]) -> Agreement:
    return AGREEMENT.after(signing(templates["yizhuo-crm-maintenance"], **YIZHUO_PARAMETERS)).state


def test_c1_c9_a_local_fault_in_the_free_year_is_covered_within_n_hours(yizhuo: Agreement) -> None:
    decision = decide_coverage(yizhuo, Question(IN_FREE_YEAR, "fault", local=True))
    assert decision.verdict == "covered"
    assert decision.clauses[:2] == ("C1", "C9")
    assert decision.sla is not None and decision.sla.arrive_within_hours == 8


def test_c9_out_of_town_gets_m_days(yizhuo: Agreement) -> None:
    decision = decide_coverage(yizhuo, Question(IN_FREE_YEAR, "fault", local=False))
    assert decision.sla is not None
    assert (decision.sla.arrive_within_hours, decision.sla.arrive_within_days) == (None, 2)


def test_c5_expenses_are_the_customers_inside_coverage_too(yizhuo: Agreement) -> None:
    decision = decide_coverage(yizhuo, Question(IN_FREE_YEAR, "fault"))
    assert "expenses" in decision.charges and "C5" in decision.clauses
    remote = decide_coverage(yizhuo, Question(IN_FREE_YEAR, "fault", onsite=False))
    assert remote.charges == () and remote.sla is None


def test_c1_b3_after_the_free_year_unpaid_is_billable(yizhuo: Agreement) -> None:
    decision = decide_coverage(yizhuo, Question(AFTER_FREE_YEAR, "fault"))
    assert decision.verdict == "billable"
    assert decision.clauses[:2] == ("C1", "B3")
    assert not decision.penalty_applies


def test_c2_a_paid_year_covers_again(yizhuo: Agreement) -> None:
    pay = RecordFeePayment("p", Decimal("12000"), date(2026, 3, 1), date(2027, 2, 28), date(2026, 3, 1))
    state = AGREEMENT.given_state(yizhuo).after(pay).state
    decision = decide_coverage(state, Question(AFTER_FREE_YEAR, "fault"))
    assert decision.verdict == "covered" and decision.clauses[0] == "C2"


def test_c3_third_party_hardware_under_its_warranty_is_excluded(yizhuo: Agreement) -> None:
    decision = decide_coverage(yizhuo, Question(IN_FREE_YEAR, "hardware_network", third_party_under_warranty=True))
    assert (decision.verdict, decision.clauses) == ("excluded", ("C3",))


def test_c4_hardware_work_is_billed_per_day_inside_coverage(yizhuo: Agreement) -> None:
    decision = decide_coverage(yizhuo, Question(IN_FREE_YEAR, "hardware_network"))
    assert decision.verdict == "billable"
    assert "C4" in decision.clauses and decision.charges[0] == "day_rate"


def test_c12_scope_and_c17_liability(templates: dict[str, TemplateFile]) -> None:
    xxx = AGREEMENT.after(signing(templates["xxx-software-service"])).state
    virus = decide_coverage(xxx, Question(IN_FREE_YEAR, "fault", cause="virus_cleanup"))
    assert virus.verdict == "covered" and "C12" in virus.clauses
    telecom = decide_coverage(xxx, Question(IN_FREE_YEAR, "fault", cause="telecom_maintenance"))
    assert telecom.verdict == "billable" and telecom.clauses[0] == "C17"
    assert telecom.sla is not None and not telecom.penalty_applies  # a visit is possible, no penalty
    other = decide_coverage(xxx, Question(IN_FREE_YEAR, "fault", cause="usage_problem"))
    assert other.verdict == "billable" and "C12" in other.clauses  # [4]'s extra scope, not [2]'s


def test_c14_urgency_by_phase(templates: dict[str, TemplateFile]) -> None:
    xxx = AGREEMENT.after(signing(templates["xxx-software-service"])).state
    parallel = decide_coverage(xxx, Question(IN_FREE_YEAR, "fault", phase="parallel_run"))
    cutover = decide_coverage(xxx, Question(IN_FREE_YEAR, "fault", phase="cutover"))
    assert parallel.sla is not None and parallel.sla.arrive_within_days == 2
    assert cutover.sla is not None and cutover.sla.arrive_within_days == 1
    assert "C14" in cutover.clauses


def test_c15_respond_and_resolve_within_24_hours(templates: dict[str, TemplateFile]) -> None:
    quan = AGREEMENT.after(signing(templates["quansousuo-purchasing"])).state
    decision = decide_coverage(quan, Question(IN_FREE_YEAR, "fault", cause="usage_problem"))
    assert decision.verdict == "covered" and "C15" in decision.clauses
    assert decision.sla is not None
    assert (decision.sla.respond_within_hours, decision.sla.resolve_within_hours) == (24, 24)


def test_c16_and_c20_phone_support_and_service_hours(templates: dict[str, TemplateFile]) -> None:
    chaoren = decide_coverage(AGREEMENT.after(signing(templates["chaoren-software-sale"])).state,
                              Question(IN_FREE_YEAR, "fault"))
    assert chaoren.sla is not None and chaoren.sla.phone_support_24h and "C16" in chaoren.clauses
    ziguang = decide_coverage(AGREEMENT.after(signing(templates["ziguang-three-guarantees"])).state,
                              Question(IN_FREE_YEAR, "fault"))
    assert ziguang.sla is not None and ziguang.sla.service_hours == ("09:00", "18:00")
    assert "C20" in ziguang.clauses


def test_c6_upgrades_free_in_the_service_period_only(yizhuo: Agreement) -> None:
    assert decide_coverage(yizhuo, Question(IN_FREE_YEAR, "upgrade")).verdict == "covered"
    assert decide_coverage(yizhuo, Question(AFTER_FREE_YEAR, "upgrade")).verdict == "billable"


def test_c7_training_uses_the_quota_and_basic_training_is_never_free(yizhuo: Agreement) -> None:
    seat = decide_coverage(yizhuo, Question(IN_FREE_YEAR, "training"))
    assert seat.verdict == "covered" and "quota" in seat.charges and seat.clauses == ("C7",)
    basic = decide_coverage(yizhuo, Question(IN_FREE_YEAR, "training", basic_computer_training=True))
    assert basic.verdict == "billable"


def test_c8_small_changes_free_large_ones_by_workload(yizhuo: Agreement) -> None:
    small = decide_coverage(yizhuo, Question(IN_FREE_YEAR, "change_request", workload_working_days=Decimal(2)))
    large = decide_coverage(yizhuo, Question(IN_FREE_YEAR, "change_request", workload_working_days=Decimal("3.5")))
    assert small.verdict == "covered"
    assert (large.verdict, large.clauses) == ("billable", ("C8", "B6"))


def test_c10_installations_use_the_quota(templates: dict[str, TemplateFile]) -> None:
    decision = decide_coverage(AGREEMENT.after(signing(templates["xxx-software-service"])).state,
                               Question(IN_FREE_YEAR, "installation"))
    assert decision.clauses == ("C10",) and "quota" in decision.charges


def test_no_agreement_is_excluded() -> None:
    assert decide_coverage(Agreement(), Question(IN_FREE_YEAR, "fault")).verdict == "excluded"


def test_c13_the_agreement_lists_its_service_channels(templates: dict[str, TemplateFile]) -> None:
    assert "qq" in templates["quansousuo-purchasing"].template.terms.channels
    assert "fax" in templates["xxx-software-service"].template.terms.channels
    assert templates["xxx-software-service"].template.terms.channels[0] == "phone"  # phone first (C13, D3)


def test_c11_c19_c24_vendor_hardware_coverage_comes_from_its_warranty() -> None:
    from weibao.contracts.domain.coverage import from_warranty
    from weibao.contracts.domain.warranty import RegisterHardware, verdict
    from weibao.contracts.domain.warranty import decide as decide_warranty
    from weibao.contracts.domain.warranty import evolve as evolve_warranty

    hardware = Decider(decide=decide_warranty, evolve=evolve_warranty, initial=None)
    (registered,) = hardware.given().when(RegisterHardware(
        serial="PC-1", kind="machine", model="紫光 T100", customer_id="c", supplied_by_vendor=True,
        purchased_on=date(2025, 3, 1), invoice=True, produced_on=None)).events
    unit = hardware.given(registered).state
    assert unit is not None
    early = from_warranty(verdict(unit, fault_on=date(2025, 3, 5), fault="performance"))
    assert early.verdict == "covered" and "C19" in early.clauses
    misuse = from_warranty(verdict(unit, fault_on=date(2025, 6, 1), fault="performance", cause="misuse"))
    assert misuse.verdict == "excluded" and "C24" in misuse.clauses
    late = from_warranty(verdict(unit, fault_on=date(2026, 6, 1), fault="performance"))
    assert late.verdict in ("billable", "excluded") and not late.penalty_applies
