"""Pricing, rule by rule (B1-B7 with C2, C4, C5, C7, C8, C10, C18): what each public
message makes the customer owe, built from the real public message dataclasses."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any, Literal

import pytest

from tests.billing.ledger import HEFEI
from weibao.billing.domain.pricing import (
    RATE_TO_BE_AGREED,
    BillableItem,
    Source,
    for_change_request,
    for_dongle,
    for_expense,
    for_quota,
    for_renewal,
    for_work,
    work_days,
)
from weibao.shared.errors import Rejected
from weibao.shared.money import to_fen
from weibao.shared.public.contracts import ChangeRequestAssessed, CoverageGranted, QuotaConsumed, WarrantyVerdict
from weibao.shared.public.dispatch import ExpenseKind, ExpenseRecorded, WorkKind, WorkLogged

# The yizhuo seed's terms as contracts publishes them (JSON: decimals as text)
TERMS: dict[str, Any] = {
    "customer_pays_expenses": True,
    "hardware": {"day_rate": "800"},
    "training": {"paid_up_discount_percent": "20"},
    "changes": {"free_up_to_working_days": 3},
    "billing_period": "monthly",
}
PRICES = {"installation": Decimal("300"), "training_seat": Decimal("500"),
          "onsite_training_session": Decimal("1200")}


def source(message_type: str, position: int = 41, service: str = "dispatch") -> Source:
    return Source(service, position, message_type)


def work(kind: WorkKind = "hardware", started: str = "2026-03-02T01:00:00+00:00",
         ended: str = "2026-03-02T02:00:00+00:00", verdict: str = "billable",
         clauses: tuple[str, ...] = ("C3", "C4", "C5")) -> WorkLogged:
    return WorkLogged("T-1", "cust-1", "agr-1", "tech-1", "w1", kind, started, ended, verdict, clauses)


def expense(kind: ExpenseKind = "lodging", amount: str = "268.50") -> ExpenseRecorded:
    return ExpenseRecorded("T-1", "cust-1", "agr-1", "tech-1", "e1", kind, amount, "R-0091", "2026-03-02",
                           1 if kind == "lodging" else None, "如家")


def quota(kind: str, billable: int, discount: str | None = None, free: int = 1) -> QuotaConsumed:
    return QuotaConsumed("agr-1", "cust-1", kind, "ref-7", "2026-04-01", free, 0, billable,
                         ("C7",) if "training" in kind else ("C10",), discount)


def only(items: list[BillableItem]) -> BillableItem:
    assert len(items) == 1, items
    return items[0]


def assert_exact(item: BillableItem) -> None:
    """No float anywhere; the amount is the fen-rounded product, computed once."""
    for value in (item.quantity, item.unit_price, item.amount):
        assert type(value) is Decimal
    assert item.amount == to_fen(item.quantity * item.unit_price)
    assert item.amount.as_tuple().exponent == -2


# B1, C5: expenses at cost


def test_b1_c5_expense_billed_at_cost_when_customer_pays_expenses() -> None:
    item = only(for_expense(expense("lodging", "268.50"), TERMS, source("ExpenseRecorded")))
    assert item.kind == "expense" and item.amount == Decimal("268.50") and item.quantity == 1
    assert item.clauses == ("B1", "C5")
    assert item.customer_id == "cust-1" and item.agreement_id == "agr-1"
    assert item.occurred_on == date(2026, 3, 2)
    assert item.sources == (Source("dispatch", 41, "ExpenseRecorded"),)
    assert "R-0091" in item.description
    assert_exact(item)


def test_b1_c5_no_expense_item_when_agreement_does_not_make_customer_pay() -> None:
    assert for_expense(expense(), {**TERMS, "customer_pays_expenses": False}, source("ExpenseRecorded")) == []
    assert for_expense(expense(), {}, source("ExpenseRecorded")) == []


@pytest.mark.parametrize("kind", ["transport", "lodging", "meals", "travel"])
def test_b1_every_expense_kind_is_billed(kind: str) -> None:
    assert only(for_expense(expense(kind, "12.3"), TERMS, source("ExpenseRecorded"))).amount == Decimal("12.30")


def test_b1_unknown_expense_kind_or_float_amount_is_rejected() -> None:
    with pytest.raises(Rejected):
        for_expense(expense("souvenirs"), TERMS, source("ExpenseRecorded"))
    float_amount = replace(expense(), amount=12.3)
    with pytest.raises(Rejected):
        for_expense(float_amount, TERMS, source("ExpenseRecorded"))


# B2, C4: hardware and network days, part-days rounded up, per calendar day


@pytest.mark.parametrize(("started", "ended", "days"), [
    ("2026-03-02T01:00:00+00:00", "2026-03-02T01:01:00+00:00", 1),  # one minute
    ("2026-03-02T01:00:00+00:00", "2026-03-02T02:00:00+00:00", 1),  # one hour
    ("2026-03-02T01:00:00+00:00", "2026-03-02T09:00:00+00:00", 1),  # 09:00-17:00 in Shanghai
    ("2026-03-02T01:00:00+00:00", "2026-03-03T01:00:00+00:00", 2),  # 24 h from 09:00: two calendar days
    ("2026-03-02T15:00:00+00:00", "2026-03-02T17:00:00+00:00", 2),  # 2 h across midnight in Shanghai
    ("2026-03-02T14:00:00+00:00", "2026-03-02T16:00:00+00:00", 1),  # 22:00 to 00:00 sharp: no time on the 3rd
    ("2026-03-02T01:00:00+00:00", "2026-03-04T09:00:00+00:00", 3),  # 09:00 on the 2nd to 17:00 on the 4th
])
def test_b2_c4_part_of_a_calendar_day_counts_as_a_whole_day(started: str, ended: str, days: int) -> None:
    item = only(for_work(work("hardware", started, ended), TERMS, source("WorkLogged")))
    assert item.kind == "hardware_days" and item.unit == "天"
    assert item.quantity == Decimal(days) and len(item.days) == days
    assert item.unit_price == Decimal("800.00")
    assert item.amount == Decimal(800 * days)
    assert item.clauses == ("B2", "C4")
    assert_exact(item)


def test_c4_days_already_billed_are_not_billed_again() -> None:
    # 23:00 on 2 March to 01:00 on 3 March, Beijing time; the 2nd was billed by another record
    across = work("hardware", "2026-03-02T15:00:00+00:00", "2026-03-02T17:00:00+00:00")
    assert work_days(across, TERMS) == (date(2026, 3, 2), date(2026, 3, 3))
    item = only(for_work(across, TERMS, source("WorkLogged"), already={date(2026, 3, 2)}))
    assert (item.quantity, item.days, item.occurred_on) == (Decimal(1), (date(2026, 3, 3),), date(2026, 3, 3))
    assert "2026-03-03" in item.description and "2026-03-02" not in item.description
    # No new day: nothing billed, not a zero line
    assert for_work(across, TERMS, source("WorkLogged"), already={date(2026, 3, 2), date(2026, 3, 3)}) == []


def test_c4_calendar_days_are_the_agreements_time_zone() -> None:
    # 15:00-17:00 UTC: across midnight in Beijing (two days), one day in an agreement on UTC
    across = work("hardware", "2026-03-02T15:00:00+00:00", "2026-03-02T17:00:00+00:00")
    assert work_days(across, {**TERMS, "time_zone": "UTC"}) == (date(2026, 3, 2),)
    assert only(for_work(across, {**TERMS, "time_zone": "UTC"}, source("WorkLogged"))).quantity == 1
    with pytest.raises(Rejected):
        work_days(across, {**TERMS, "time_zone": "Mars/Olympus"})


def test_c4_software_work_is_per_record_and_bills_no_calendar_day() -> None:
    software = work("software", clauses=("C1", "B3"))
    assert work_days(software, TERMS) == ()
    item = only(for_work(software, {**TERMS, "service": {"day_rate": "1000"}}, source("WorkLogged"),
                         already={date(2026, 3, 2)}))  # a hardware day billed that day takes nothing off
    assert (item.quantity, item.days) == (Decimal(1), ())


def test_c4_network_work_is_billed_per_day_too_and_dated_in_china() -> None:
    # 23:30 UTC on 1 March is 07:30 on 2 March in Shanghai
    item = only(for_work(work("network", "2026-03-01T23:30:00Z", "2026-03-02T03:00:00Z"), TERMS,
                         source("WorkLogged")))
    assert item.kind == "network_days" and item.quantity == 1 and item.occurred_on == date(2026, 3, 2)


def test_b2_no_bill_for_hardware_under_the_vendors_own_warranty() -> None:
    for clauses in (("C11",), ("C19",), ("C11", "C23")):
        assert for_work(work(verdict="covered", clauses=clauses), TERMS, source("WorkLogged")) == []
        assert work_days(work(verdict="covered", clauses=clauses), TERMS) == ()  # rule C4: no day used up


def test_b2_a_lapsed_vendor_warranty_is_billed() -> None:
    # contracts cites C11 for a warranty that ended too, but the verdict is not "covered"
    item = only(for_work(work(verdict="billable", clauses=("C11", "C24")), TERMS, source("WorkLogged")))
    assert item.amount == Decimal("800.00")


def test_b2_without_a_day_rate_the_item_waits_for_a_rate_instead_of_guessing() -> None:
    item = only(for_work(work(), {**TERMS, "hardware": None}, source("WorkLogged")))
    assert item.unit_price == Decimal(0) and item.amount == Decimal("0.00")
    assert RATE_TO_BE_AGREED in item.clauses and "待议" in item.description
    assert_exact(item)


def test_b2_zero_time_bills_nothing_and_negative_time_is_rejected() -> None:
    same = "2026-03-02T01:00:00+00:00"
    assert for_work(work(started=same, ended=same), TERMS, source("WorkLogged")) == []
    with pytest.raises(Rejected):
        for_work(work(started="2026-03-02T02:00:00+00:00", ended=same), TERMS, source("WorkLogged"))


# B3 (C1): software work outside coverage


def test_b3_software_work_inside_coverage_is_not_billed() -> None:
    assert for_work(work("software", verdict="covered", clauses=("C1", "C9")), TERMS, source("WorkLogged")) == []


def test_b3_c1_software_work_outside_coverage_without_a_rate_is_to_be_agreed() -> None:
    item = only(for_work(work("software", verdict="billable", clauses=("C1", "B3", "C9")), TERMS,
                         source("WorkLogged")))
    assert item.kind == "service" and item.clauses == ("B3", "C1", RATE_TO_BE_AGREED)
    assert item.unit_price == 0 and item.quantity == 1 and item.unit == "天"
    assert_exact(item)


def test_b3_c1_software_work_outside_coverage_at_the_agreements_rates() -> None:
    ninety_minutes = ("2026-03-02T01:00:00+00:00", "2026-03-02T02:30:00+00:00")
    hourly = only(for_work(work("software", *ninety_minutes, clauses=("C1", "B3")),
                           {**TERMS, "service": {"hourly_rate": "150.5"}}, source("WorkLogged")))
    assert (hourly.quantity, hourly.unit, hourly.amount) == (Decimal(2), "小时", Decimal("301.00"))
    daily = only(for_work(work("software", *ninety_minutes, clauses=("C1", "B3")),
                          {**TERMS, "service": {"day_rate": "1000"}}, source("WorkLogged")))
    assert (daily.quantity, daily.unit, daily.amount) == (Decimal(1), "天", Decimal("1000.00"))
    assert daily.clauses == ("B3", "C1")
    assert_exact(hourly)
    assert_exact(daily)


def test_b3_c13_desk_work_says_on_the_line_whether_it_was_by_phone_or_remote() -> None:
    # issue 13: a desk hour is billed like an on-site one; the line says where it was done
    terms = {**TERMS, "service": {"hourly_rate": "150"}}
    lines = {channel: only(for_work(replace(work("software", clauses=("C1", "B3")), channel=channel), terms,
                                    source("WorkLogged"))).description
             for channel in ("onsite", "phone", "remote")}
    assert lines == {"onsite": "服务范围外的软件服务（工单 T-1）", "phone": "服务范围外的软件服务（电话，工单 T-1）",
                     "remote": "服务范围外的软件服务（远程，工单 T-1）"}
    hardware = only(for_work(replace(work(), channel="remote"), TERMS, source("WorkLogged")))
    assert hardware.description == "硬件维护（远程，工单 T-1，2026-03-02）"


# B4, C2: the annual fee


def test_b4_c2_the_annual_fee_is_billed_from_the_renewal_not_from_the_fee_falling_due() -> None:
    # issue 13: the fee falling due is a renewal notice (no pricing function takes FeeDue);
    # the item comes from the payment's grant, dated the day it was paid
    granted = CoverageGranted("agr-1", "cust-1", ("s-1",), "2026-06-01", "2027-05-31", "paid", ("C2",), HEFEI, {},
                              payment_id="fee-2026", amount="12000.00", paid_on="2026-05-20")
    item = only(for_renewal(granted, source("CoverageGranted", 7, "contracts")))
    assert item.kind == "annual_fee" and item.amount == Decimal("12000.00")
    assert item.clauses == ("B4", "C2") and item.occurred_on == date(2026, 5, 20)
    assert "2026-06-01" in item.description and "fee-2026" in item.description and item.item_id == "contracts:7:0"
    assert item.sources == (source("CoverageGranted", 7, "contracts"),)  # B8: the payment's message
    assert_exact(item)
    # the free year (C1), and a grant recorded before issue 13 (no payment named), bill nothing
    assert for_renewal(replace(granted, basis="free"), source("CoverageGranted", 8, "contracts")) == []
    assert for_renewal(replace(granted, payment_id=None, amount=None, paid_on=None),
                       source("CoverageGranted", 9, "contracts")) == []


# B5, C7, C10: beyond the free quotas


def test_b5_c10_installations_beyond_the_free_quota() -> None:
    item = only(for_quota(quota("installation", 2), PRICES, source("QuotaConsumed", service="contracts")))
    assert item.kind == "installation" and item.unit == "次"
    assert (item.quantity, item.unit_price, item.amount) == (Decimal(2), Decimal("300.00"), Decimal("600.00"))
    assert item.clauses == ("B5", "C10") and item.occurred_on == date(2026, 4, 1)
    assert_exact(item)


def test_b5_c7_training_seats_beyond_the_quota_with_paid_up_discount() -> None:
    full = only(for_quota(quota("training_seat", 3), PRICES, source("QuotaConsumed")))
    assert full.kind == "training" and full.unit == "人" and full.amount == Decimal("1500.00")
    assert full.clauses == ("B5", "C7")
    discounted = only(for_quota(quota("training_seat", 3, discount="20"), PRICES, source("QuotaConsumed")))
    assert discounted.unit_price == Decimal("400") and discounted.amount == Decimal("1200.00")
    assert "20%" in discounted.description
    assert_exact(full)
    assert_exact(discounted)


def test_c7_discount_rounds_once_half_up_to_the_fen() -> None:
    # 333.33 x 85% = 283.3305 a seat; three seats 849.9915 -> 849.99
    item = only(for_quota(quota("training_seat", 3, discount="15"), {"training_seat": Decimal("333.33")},
                          source("QuotaConsumed")))
    assert item.unit_price == Decimal("283.3305") and item.amount == Decimal("849.99")
    assert_exact(item)


def test_c10_discount_applies_to_training_only() -> None:
    item = only(for_quota(quota("installation", 1, discount="20"), PRICES, source("QuotaConsumed")))
    assert item.amount == Decimal("300.00")


def test_b5_free_and_waived_units_cost_nothing() -> None:
    assert for_quota(quota("onsite_training_session", 0, free=1), PRICES, source("QuotaConsumed")) == []


def test_b5_no_price_for_a_quota_kind_is_to_be_agreed() -> None:
    item = only(for_quota(quota("onsite_training_session", 1), {}, source("QuotaConsumed")))
    assert item.amount == 0 and RATE_TO_BE_AGREED in item.clauses


def test_b5_a_float_price_is_refused() -> None:
    with pytest.raises(Rejected):
        for_quota(quota("installation", 1), {"installation": 300.0}, source("QuotaConsumed"))  # type: ignore[dict-item]


# B6, C8: large change requests by workload


def change(workload: str, verdict: Literal["covered", "billable", "excluded"] = "excluded") -> ChangeRequestAssessed:
    """A change request as contracts assessed it; neither "covered" nor "billable" leaves
    the size to the agreement's threshold (C8)."""
    return ChangeRequestAssessed("agr-1", "cust-1", "CR-12", "", "2026-05-10", workload, verdict, ("C8",))


def test_b6_c8_large_change_billed_by_actual_workload() -> None:
    item = only(for_change_request(change("3.5"), TERMS, Decimal("900"), source("ChangeRequest")))
    assert item.kind == "change_request" and item.clauses == ("B6", "C8")
    assert (item.quantity, item.unit_price, item.amount) == (Decimal("3.5"), Decimal("900.00"), Decimal("3150.00"))
    assert_exact(item)


def test_c8_small_changes_are_free() -> None:
    assert for_change_request(change("3"), TERMS, Decimal("900"), source("ChangeRequest")) == []
    assert for_change_request(change("5", verdict="covered"), TERMS, Decimal("900"), source("ChangeRequest")) == []


def test_b6_a_billable_verdict_bills_even_a_small_change_and_no_rate_is_to_be_agreed() -> None:
    # outside coverage (C1, B3) every change is billed, whatever its size
    item = only(for_change_request(change("1", verdict="billable"), TERMS, None, source("ChangeRequest")))
    assert item.amount == 0 and RATE_TO_BE_AGREED in item.clauses


# B7, C18: dongles after their warranty


def dongle(covered: bool, fee: str | None, clauses: tuple[str, ...] = ("C18",)) -> WarrantyVerdict:
    return WarrantyVerdict("SN-9", "cust-1", "dongle", "replacement", "2026-07-01", covered, clauses,
                           "paid_replacement" if not covered else "free_replacement", fee)


def test_b7_c18_dongle_replaced_after_its_warranty_costs_its_fee() -> None:
    item = only(for_dongle(dongle(False, "200.00"), TERMS, source("WarrantyVerdict", service="contracts")))
    assert item.kind == "dongle" and item.amount == Decimal("200.00") and item.clauses == ("B7", "C18")
    assert item.agreement_id is None and item.occurred_on == date(2026, 7, 1)
    assert_exact(item)


def test_c18_dongle_under_warranty_or_other_verdicts_cost_nothing() -> None:
    assert for_dongle(dongle(True, "0.00"), TERMS, source("WarrantyVerdict")) == []
    machine = replace(dongle(False, None), kind="machine")
    assert for_dongle(machine, TERMS, source("WarrantyVerdict")) == []


def test_b7_fee_falls_back_to_the_terms_then_to_be_agreed() -> None:
    with_terms = {**TERMS, "warranty": {"dongle_replacement_fee": "200"}}
    item = only(for_dongle(dongle(False, None, ("C18", "C24")), with_terms, source("WarrantyVerdict")))
    assert item.amount == Decimal("200.00") and item.clauses == ("B7", "C18", "C24")
    assert RATE_TO_BE_AGREED in only(for_dongle(dongle(False, None), TERMS, source("WarrantyVerdict"))).clauses


# Idempotence: ids derive from the source alone


def test_b8_the_same_message_twice_gives_identical_items() -> None:
    first = for_work(work(), TERMS, source("WorkLogged", 99))
    again = for_work(work(), TERMS, source("WorkLogged", 99))
    assert first == again and first[0].item_id == "dispatch:99:0"
    other = for_work(work(), TERMS, source("WorkLogged", 100))
    assert other[0].item_id != first[0].item_id


def test_items_are_frozen() -> None:
    item = only(for_expense(expense(), TERMS, source("ExpenseRecorded")))
    with pytest.raises(AttributeError):
        item.amount = Decimal(0)  # type: ignore[misc]
