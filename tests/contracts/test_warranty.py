"""Warranties of vendor-supplied hardware: given events, when a command or a fault, then events or a verdict.

Each test names the DOMAIN.md rule it checks (C3, C11, C18, C19, C21, C22, C23, C24)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest

from tests.decider import Decider, Given
from weibao.contracts.domain.warranty import (
    EXCLUDED_CAUSES,
    Command,
    Event,
    Hardware,
    HardwareRegistered,
    HardwareReplaced,
    HardwareReturned,
    RecordRepair,
    RecordReplacement,
    RecordReturn,
    RegisterHardware,
    RepairRecorded,
    add_months,
    decide,
    evolve,
    verdict,
)
from weibao.shared.errors import Rejected
from weibao.shared.money import yuan

BOUGHT = date(2024, 3, 1)
MADE = date(2024, 1, 10)
SERIAL = "UN-0001"


def day(n: int) -> date:
    """The n-th day after purchase; the purchase day itself is day 0 (民法典 art. 201)."""
    return BOUGHT + timedelta(days=n)


def register(**overrides: Any) -> RegisterHardware:
    command = RegisterHardware(serial=SERIAL, kind="machine", model="紫光 M100", customer_id="c-1",
                               supplied_by_vendor=True, purchased_on=BOUGHT, invoice=True, produced_on=MADE)
    return replace(command, **overrides)


# A unit's history starts from commands: its events carry the warranty periods the rules
# under test work out (C11, C22, C23), which written by hand would copy those rules.
HARDWARE: Decider[Command, Event, Hardware | None] = Decider(decide=decide, evolve=evolve, initial=None)
History = Given[Command, Event, Hardware | None]


def unit(history: History) -> Hardware:
    """The registered unit a history leaves, for a verdict."""
    assert history.state is not None
    return history.state


def repair(on: date, part: str | None = None, **overrides: Any) -> RecordRepair:
    return replace(RecordRepair(serial=SERIAL, repaired_on=on, part=part, fault="no boot"), **overrides)


# month arithmetic


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (date(2024, 1, 31), 1, date(2024, 2, 29)),
        (date(2023, 1, 31), 1, date(2023, 2, 28)),
        (date(2024, 3, 31), -1, date(2024, 2, 29)),
        (date(2024, 11, 15), 3, date(2025, 2, 15)),
        (date(2024, 2, 29), 12, date(2025, 2, 28)),
        (date(2024, 5, 1), 0, date(2024, 5, 1)),
    ],
)
def test_add_months_clamps_the_day_to_the_end_of_the_month(start: date, months: int, expected: date) -> None:
    assert add_months(start, months) == expected


# rule C11


def test_c11_vendor_machine_is_registered_with_a_one_year_warranty() -> None:
    [event] = HARDWARE.given().when(register()).events
    assert isinstance(event, HardwareRegistered)
    assert event.warranty_starts_on == BOUGHT
    assert event.warranty_until == date(2025, 3, 1)
    assert event.clauses == ("C11",)


def test_c11_repair_is_free_to_the_last_day_of_the_year_and_not_after() -> None:
    state = unit(HARDWARE.after(register()))
    last = verdict(state, fault_on=date(2025, 3, 1), fault="performance")
    assert (last.remedy, last.covered, last.clauses, last.warranty_until) == ("repair", True, ("C11",),
                                                                             date(2025, 3, 1))
    after = verdict(state, fault_on=date(2025, 3, 2), fault="performance")
    assert (after.remedy, after.covered, after.clauses) == ("not_covered", False, ("C11", "C24"))


def test_c11_vendor_part_is_repaired_under_warranty_and_not_exchanged() -> None:
    state = unit(HARDWARE.after(register(kind="part", model="disk 1TB")))
    found = verdict(state, fault_on=day(3), fault="performance")
    assert (found.remedy, found.covered, found.clauses) == ("repair", True, ("C11",))


# rule C18


def test_c18_dongle_is_replaced_free_within_its_year() -> None:
    state = unit(HARDWARE.after(register(kind="dongle", model="超人 key")))
    assert state.registered.clauses == ("C18",)
    found = verdict(state, fault_on=date(2025, 3, 1), fault="performance")
    assert (found.remedy, found.covered, found.clauses, found.amount) == ("free_replacement", True, ("C18",), None)


def test_c18_dongle_replacement_costs_200_yuan_after_its_year() -> None:
    history = HARDWARE.after(register(kind="dongle", model="超人 key"))
    found = verdict(unit(history), fault_on=date(2025, 3, 2), fault="performance")
    assert (found.remedy, found.covered, found.clauses) == ("paid_replacement", False, ("C18",))
    assert found.amount == yuan("200")
    command = RecordReplacement(serial=SERIAL, replaced_on=date(2025, 3, 5), fault_on=date(2025, 3, 2),
                                fault="performance", replacement_serial="KEY-2", replacement_model="超人 key")
    history.when(command).then(HardwareReplaced(
        serial=SERIAL, replaced_on=date(2025, 3, 5), fault_on=date(2025, 3, 2), replacement_serial="KEY-2",
        replacement_model="超人 key", remedy="paid_replacement", fee=yuan("200"), clauses=("C18",)))


def test_c18_dongle_fee_comes_from_the_agreement() -> None:
    state = unit(HARDWARE.after(register(kind="dongle", dongle_replacement_fee=yuan("150"))))
    assert verdict(state, fault_on=date(2025, 6, 1), fault="performance").amount == yuan("150")


# rule C19


@pytest.mark.parametrize(
    ("n", "remedy"),
    [
        (0, "return_exchange_or_repair"),
        (7, "return_exchange_or_repair"),
        (8, "exchange_or_repair"),
        (15, "exchange_or_repair"),
        (16, "repair"),
    ],
)
def test_c19_day_boundaries_7_8_15_16(n: int, remedy: str) -> None:
    found = verdict(unit(HARDWARE.after(register())), fault_on=day(n), fault="performance")
    assert found.remedy == remedy and found.covered
    assert found.clauses == (("C11",) if remedy == "repair" else ("C19",))


def test_c19_return_within_7_days_is_recorded_and_closes_the_unit() -> None:
    closed = HARDWARE.after(register()).when(
        RecordReturn(serial=SERIAL, returned_on=day(9), fault_on=day(7), fault="performance"),
    ).then(HardwareReturned(serial=SERIAL, returned_on=day(9), fault_on=day(7), clauses=("C19",)))
    closed.when(repair(day(10))).then_rejected(field="serial")


def test_c19_no_return_from_day_8() -> None:
    HARDWARE.after(register()).when(
        RecordReturn(serial=SERIAL, returned_on=day(8), fault_on=day(8), fault="performance"),
    ).then_rejected("not_entitled", "fault_on")


def test_c19_exchange_on_days_8_to_15_is_free() -> None:
    [event] = HARDWARE.after(register()).when(
        RecordReplacement(serial=SERIAL, replaced_on=day(16), fault_on=day(15), fault="performance",
                          replacement_serial="UN-0002", replacement_model="紫光 M100"),
    ).events
    assert isinstance(event, HardwareReplaced)
    assert (event.remedy, event.fee, event.clauses) == ("exchange_or_repair", yuan(0), ("C19",))


def test_c19_no_exchange_from_day_16_without_two_repairs() -> None:
    HARDWARE.after(register()).when(
        RecordReplacement(serial=SERIAL, replaced_on=day(20), fault_on=day(16), fault="performance",
                          replacement_serial="UN-0002", replacement_model="紫光 M100"),
    ).then_rejected("not_entitled", "fault_on")


def test_c19_free_replacement_within_a_year_after_two_repairs() -> None:
    history = HARDWARE.after(register(), repair(day(30)), repair(day(90), part="board"))
    found = verdict(unit(history), fault_on=day(200), fault="performance")
    assert (found.remedy, found.covered, found.clauses) == ("free_replacement", True, ("C19",))
    [event] = history.when(RecordReplacement(serial=SERIAL, replaced_on=day(201), fault_on=day(200),
                                             fault="performance", replacement_serial="UN-0002",
                                             replacement_model="紫光 M200")).events
    assert isinstance(event, HardwareReplaced) and event.fee == yuan(0)


def test_c19_one_repair_is_not_enough_for_replacement() -> None:
    state = unit(HARDWARE.after(register(), repair(day(30))))
    assert verdict(state, fault_on=day(200), fault="performance").remedy == "repair"


def test_c19_replacement_right_ends_after_one_year_even_if_the_warranty_runs_on() -> None:
    state = unit(HARDWARE.after(register(warranty_months=24), repair(day(30)), repair(day(90))))
    assert verdict(state, fault_on=date(2025, 3, 1), fault="performance").remedy == "free_replacement"
    assert verdict(state, fault_on=date(2025, 3, 2), fault="performance").remedy == "repair"


def test_c19_paid_repairs_for_excluded_causes_do_not_count() -> None:
    state = unit(HARDWARE.after(register(), repair(day(30), cause="virus"), repair(day(90))))
    assert [r.covered for r in state.repairs] == [False, True]
    assert verdict(state, fault_on=day(200), fault="performance").remedy == "repair"


def test_c19_needs_the_invoice_c22() -> None:
    state = unit(HARDWARE.after(register(invoice=False, purchased_on=BOUGHT, produced_on=BOUGHT)))
    found = verdict(state, fault_on=day(3), fault="performance")
    assert (found.remedy, found.clauses) == ("repair", ("C11", "C22"))


def test_c19_only_when_the_agreement_has_three_guarantees() -> None:
    state = unit(HARDWARE.after(register(three_guarantees=False)))
    assert verdict(state, fault_on=day(3), fault="performance").remedy == "repair"


# rule C21


def test_c21_preinstalled_software_restored_free_within_3_months() -> None:
    state = unit(HARDWARE.after(register()))
    found = verdict(state, fault_on=date(2024, 6, 1), fault="preinstalled_software")
    assert (found.remedy, found.covered, found.clauses) == ("restore_software", True, ("C21",))
    late = verdict(state, fault_on=date(2024, 6, 2), fault="preinstalled_software")
    assert (late.remedy, late.covered, late.clauses) == ("not_covered", False, ("C21",))


def test_c21_software_restore_does_not_count_as_a_c19_repair() -> None:
    state = unit(HARDWARE.after(register(), repair(day(30), fault_kind="preinstalled_software"), repair(day(60))))
    assert state.repairs[0].clauses == ("C21",)
    assert verdict(state, fault_on=day(100), fault="performance").remedy == "repair"


def test_c21_only_machines_carry_preinstalled_software() -> None:
    state = unit(HARDWARE.after(register(kind="dongle")))
    with pytest.raises(Rejected) as caught:
        verdict(state, fault_on=day(3), fault="preinstalled_software")
    assert (caught.value.code, caught.value.field) == ("invalid", "fault")


# rule C22


def test_c22_without_invoice_the_warranty_runs_from_the_production_date() -> None:
    [event] = HARDWARE.given().when(register(invoice=False)).events
    assert isinstance(event, HardwareRegistered)
    assert (event.warranty_starts_on, event.warranty_until, event.clauses) == (MADE, date(2025, 1, 10),
                                                                              ("C11", "C22"))
    state = unit(HARDWARE.given(event))
    assert verdict(state, fault_on=date(2025, 1, 10), fault="performance").covered
    found = verdict(state, fault_on=date(2025, 1, 11), fault="performance")  # still within a year of purchase
    assert (found.covered, found.clauses) == (False, ("C11", "C22", "C24"))


# rule C23


def test_c23_part_repaired_with_under_3_months_left_keeps_3_months_from_the_repair() -> None:
    history = HARDWARE.after(register())
    [event] = history.when(repair(date(2025, 1, 15), part="disk")).events
    assert isinstance(event, RepairRecorded)
    assert (event.covered, event.warranty_until, event.clauses) == (True, date(2025, 4, 15), ("C11", "C23"))
    state = unit(history.given(event))
    found = verdict(state, fault_on=date(2025, 4, 15), fault="performance", part="disk")
    assert (found.remedy, found.covered, found.clauses, found.warranty_until) == ("repair", True, ("C11", "C23"),
                                                                                  date(2025, 4, 15))
    other = verdict(state, fault_on=date(2025, 4, 15), fault="performance", part="fan")
    assert (other.covered, other.warranty_until) == (False, date(2025, 3, 1))


def test_c23_chains_when_the_extended_part_is_repaired_again() -> None:
    [event] = HARDWARE.after(register(), repair(date(2025, 1, 15), part="disk")).when(
        repair(date(2025, 4, 1), part="disk")).events
    assert isinstance(event, RepairRecorded) and event.warranty_until == date(2025, 7, 1)


def test_c23_no_extension_with_3_months_or_more_left() -> None:
    [event] = HARDWARE.after(register()).when(repair(date(2024, 12, 1), part="disk")).events
    assert isinstance(event, RepairRecorded)
    assert (event.warranty_until, event.clauses) == (date(2025, 3, 1), ("C11",))


def test_c23_only_for_warranties_of_a_year_or_more() -> None:
    [event] = HARDWARE.after(register(warranty_months=6)).when(repair(date(2024, 8, 15), part="disk")).events
    assert isinstance(event, RepairRecorded)
    assert (event.covered, event.warranty_until) == (True, date(2024, 9, 1))


def test_c23_no_extension_for_a_paid_repair_after_the_warranty() -> None:
    [event] = HARDWARE.after(register()).when(repair(date(2025, 4, 1), part="disk")).events
    assert isinstance(event, RepairRecorded)
    assert (event.covered, event.warranty_until) == (False, date(2025, 3, 1))


def test_c23_fault_reported_in_warranty_and_repaired_after_it_is_extended() -> None:
    [event] = HARDWARE.after(register()).when(
        repair(date(2025, 3, 10), part="disk", fault_on=date(2025, 2, 27))).events
    assert isinstance(event, RepairRecorded)
    assert (event.covered, event.warranty_until) == (True, date(2025, 6, 10))


# rule C24


@pytest.mark.parametrize("cause", sorted(EXCLUDED_CAUSES))
def test_c24_excluded_causes_are_not_covered_even_in_the_first_week(cause: str) -> None:
    found = verdict(unit(HARDWARE.after(register())), fault_on=day(2), fault="performance", cause=cause)
    assert (found.remedy, found.covered, found.clauses) == ("not_covered", False, ("C24",))


def test_c24_dongle_broken_by_accident_costs_its_fee_c18() -> None:
    dongle = unit(HARDWARE.after(register(kind="dongle")))
    found = verdict(dongle, fault_on=day(20), fault="performance", cause="accident")
    assert (found.remedy, found.covered, found.clauses, found.amount) == ("paid_replacement", False,
                                                                          ("C18", "C24"), yuan("200"))


def test_c24_no_exchange_for_misuse_names_the_cause() -> None:
    HARDWARE.after(register()).when(
        RecordReplacement(serial=SERIAL, replaced_on=day(10), fault_on=day(10), fault="performance",
                          replacement_serial="UN-0002", replacement_model="紫光 M100", cause="misuse"),
    ).then_rejected("not_entitled", "cause")


def test_c24_unknown_cause_is_refused_rather_than_covered() -> None:
    with pytest.raises(Rejected) as caught:
        verdict(unit(HARDWARE.after(register())), fault_on=day(2), fault="performance", cause="spilled coffee")
    assert (caught.value.code, caught.value.field) == ("unknown", "cause")


# rule C3


def test_c3_third_party_hardware_is_outside_the_vendors_warranty() -> None:
    state = unit(HARDWARE.after(register(supplied_by_vendor=False, model="HP printer")))
    assert state.registered.clauses == ("C3",)
    found = verdict(state, fault_on=day(2), fault="performance")
    assert (found.remedy, found.covered, found.clauses) == ("not_covered", False, ("C3",))
    assert "supplier" in found.reason


def test_c3_repair_of_third_party_hardware_is_not_free_and_not_extended() -> None:
    [event] = HARDWARE.after(register(supplied_by_vendor=False)).when(repair(date(2025, 2, 1), part="disk")).events
    assert isinstance(event, RepairRecorded)
    assert (event.covered, event.warranty_until, event.clauses) == (False, date(2025, 3, 1), ("C3",))


# rejections


@pytest.mark.parametrize(
    ("overrides", "code", "field"),
    [
        ({"serial": " "}, "missing", "serial"),
        ({"model": ""}, "missing", "model"),
        ({"customer_id": ""}, "missing", "customer_id"),
        ({"kind": "laptop"}, "invalid", "kind"),
        ({"warranty_months": 0}, "invalid", "warranty_months"),
        ({"preinstalled_software_months": 0}, "invalid", "preinstalled_software_months"),
        ({"dongle_replacement_fee": yuan("-1")}, "invalid", "dongle_replacement_fee"),
        ({"purchased_on": None}, "missing", "purchased_on"),
        ({"invoice": False, "produced_on": None}, "missing", "produced_on"),
        ({"produced_on": BOUGHT + timedelta(days=1)}, "invalid", "produced_on"),
    ],
)
def test_register_rejects_bad_commands_naming_the_field(overrides: dict[str, Any], code: str, field: str) -> None:
    HARDWARE.given().when(register(**overrides)).then_rejected(code, field)


def test_register_twice_is_a_conflict() -> None:
    HARDWARE.after(register()).when(register()).then_rejected("conflict", "serial")


@pytest.mark.parametrize(
    ("command", "code", "field"),
    [
        (repair(BOUGHT - timedelta(days=1)), "invalid", "repaired_on"),
        (repair(day(40), fault=" "), "missing", "fault"),
        (repair(day(40), part=""), "missing", "part"),
        (repair(day(40), fault_on=day(41)), "invalid", "fault_on"),
        (repair(day(19)), "invalid", "repaired_on"),  # before the repair of day 20
        (repair(day(40), cause="bad luck"), "unknown", "cause"),
        (RecordReturn(serial=SERIAL, returned_on=day(2), fault_on=day(3), fault="performance"), "invalid",
         "returned_on"),
        (RecordReplacement(serial=SERIAL, replaced_on=day(2), fault_on=day(3), fault="performance",
                           replacement_serial="X", replacement_model="M"), "invalid", "replaced_on"),
        (RecordReplacement(serial=SERIAL, replaced_on=day(3), fault_on=day(3), fault="performance",
                           replacement_serial=SERIAL, replacement_model="M"), "invalid", "replacement_serial"),
        (RecordReplacement(serial=SERIAL, replaced_on=day(3), fault_on=day(3), fault="performance",
                           replacement_serial="X", replacement_model=""), "missing", "replacement_model"),
    ],
)
def test_record_rejects_bad_commands_naming_the_field(command: Command, code: str, field: str) -> None:
    HARDWARE.after(register(), repair(day(20))).when(command).then_rejected(code, field)


def test_commands_for_unregistered_hardware_are_not_found() -> None:
    HARDWARE.given().when(repair(day(3))).then_rejected("not_found", "serial")


def test_replaced_hardware_takes_no_more_commands_and_no_later_faults() -> None:
    history = HARDWARE.after(register(), RecordReplacement(serial=SERIAL, replaced_on=day(5), fault_on=day(4),
                                                           fault="performance", replacement_serial="UN-0002",
                                                           replacement_model="紫光 M100"))
    state = unit(history)
    assert (state.closed, state.closed_on) == ("replaced", day(5))
    history.when(
        RecordReturn(serial=SERIAL, returned_on=day(6), fault_on=day(4), fault="performance"),
    ).then_rejected("conflict", "serial")
    with pytest.raises(Rejected) as caught:
        verdict(state, fault_on=day(6), fault="performance")
    assert caught.value.field == "fault_on"


def test_verdict_refuses_a_fault_before_the_purchase() -> None:
    with pytest.raises(Rejected) as caught:
        verdict(unit(HARDWARE.after(register())), fault_on=BOUGHT - timedelta(days=1), fault="performance")
    assert (caught.value.code, caught.value.field) == ("invalid", "fault_on")
