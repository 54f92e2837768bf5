"""Warranties of hardware the vendor supplies: machines, dongles and parts.

One aggregate per serial number. `decide` registers the hardware and records the
repairs, returns and replacements the repair shop and the vendor's service desk carry
out; `verdict` answers, for a fault on a given day, what the customer is owed and which
rules of DOMAIN.md decided it (C3, C11, C18, C19, C21, C22, C23, C24).

Periods count as Chinese civil law counts them (民法典 art. 201): the first day is not
counted. Bought on 1 March, the 7th day is 8 March and a one-year warranty ends on
1 March next year, both inclusive.

Pure: no I/O, no clock; every date comes in with the command or the query."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import Literal, assert_never, get_args

from weibao.shared.dates import add_months
from weibao.shared.errors import Rejected, require
from weibao.shared.money import yuan

Kind = Literal["machine", "dongle", "part"]
Fault = Literal["performance", "preinstalled_software"]
Remedy = Literal[
    "return_exchange_or_repair",  # rule C19, days 1-7
    "exchange_or_repair",  # rule C19, days 8-15
    "free_replacement",  # rule C19 after two repairs; rule C18 for a dongle in its year
    "repair",  # under warranty (C11, C22, C23)
    "restore_software",  # rule C21
    "paid_replacement",  # rule C18: a dongle outside its warranty
    "not_covered",
]
KINDS: tuple[str, ...] = get_args(Kind)
FAULTS: tuple[str, ...] = get_args(Fault)

# rule C24 ([5] item 6): causes that void the free warranty whatever the date. "Outside
# the warranty" is not a cause: the dates decide it. `cause=None` means the product's
# own quality defect.
EXCLUDED_CAUSES = frozenset({
    "no_brand_label",
    "misuse",
    "wrong_environment",
    "unauthorised_repair",
    "foreign_parts",
    "accident",
    "virus",
    "non_standard_software",
    "force_majeure",
    "not_a_quality_defect",  # [5] item 6.9: any other cause than the product's own quality
})

DONGLE_REPLACEMENT_FEE = yuan("200")  # rule C18
RETURN_DAYS, EXCHANGE_DAYS = 7, 15  # rule C19
REPAIRS_BEFORE_REPLACEMENT, REPLACEMENT_MONTHS = 2, 12  # rule C19
EXTENSION_MONTHS, EXTENSION_MIN_WARRANTY_MONTHS = 3, 12  # rule C23
# What a replacement or return of the whole unit may follow, with what the customer pays.
REPLACEABLE: tuple[Remedy, ...] = ("return_exchange_or_repair", "exchange_or_repair", "free_replacement",
                                   "paid_replacement")



# Commands


@dataclass(frozen=True)
class RegisterHardware:
    serial: str
    kind: Kind
    model: str
    customer_id: str
    supplied_by_vendor: bool  # rule C3: third-party hardware is outside the vendor's warranty
    purchased_on: date | None
    invoice: bool  # rule C22: without one the warranty runs from the production date
    produced_on: date | None
    # The agreement's terms, defaulting to the seeds' values (agreements are data).
    warranty_months: int = 12  # rule C11 (machines, parts), C18 (dongles)
    three_guarantees: bool = True  # rule C19, machines only
    preinstalled_software_months: int | None = 3  # rule C21; None: no free restore
    dongle_replacement_fee: Decimal = DONGLE_REPLACEMENT_FEE  # rule C18


@dataclass(frozen=True)
class RecordRepair:
    serial: str
    repaired_on: date
    part: str | None  # None: the unit as a whole
    fault: str  # what the shop found, in words
    fault_kind: Fault = "performance"
    cause: str | None = None  # one of EXCLUDED_CAUSES, or None for a quality defect
    fault_on: date | None = None  # when the fault was reported; None: the repair day


@dataclass(frozen=True)
class RecordReturn:
    """rule C19: the customer hands the machine back for a refund."""

    serial: str
    returned_on: date
    fault_on: date
    fault: Fault
    cause: str | None = None


@dataclass(frozen=True)
class RecordReplacement:
    """The whole unit exchanged (C19) or a dongle replaced (C18); register the new serial too."""

    serial: str
    replaced_on: date
    fault_on: date
    fault: Fault
    replacement_serial: str
    replacement_model: str
    cause: str | None = None


Command = RegisterHardware | RecordRepair | RecordReturn | RecordReplacement


# Events


@dataclass(frozen=True)
class HardwareRegistered:
    serial: str
    kind: Kind
    model: str
    customer_id: str
    supplied_by_vendor: bool
    purchased_on: date | None
    invoice: bool
    produced_on: date | None
    warranty_months: int
    three_guarantees: bool
    preinstalled_software_months: int | None
    dongle_replacement_fee: Decimal
    warranty_starts_on: date
    warranty_until: date  # before any C23 extension
    clauses: tuple[str, ...]


@dataclass(frozen=True)
class RepairRecorded:
    serial: str
    repaired_on: date
    fault_on: date
    part: str | None
    fault: str
    fault_kind: Fault
    cause: str | None
    covered: bool  # free for the customer under the vendor's warranty
    warranty_until: date  # of the repaired part (or unit) from now on
    clauses: tuple[str, ...]


@dataclass(frozen=True)
class HardwareReturned:
    serial: str
    returned_on: date
    fault_on: date
    clauses: tuple[str, ...]


@dataclass(frozen=True)
class HardwareReplaced:
    serial: str
    replaced_on: date
    fault_on: date
    replacement_serial: str
    replacement_model: str
    remedy: Remedy
    fee: Decimal  # what the customer pays: 0 under warranty, C18's fee for a dongle after it
    clauses: tuple[str, ...]


Event = HardwareRegistered | RepairRecorded | HardwareReturned | HardwareReplaced


# State


@dataclass(frozen=True)
class Hardware:
    registered: HardwareRegistered
    repairs: tuple[RepairRecorded, ...] = ()
    closed: Literal["returned", "replaced"] | None = None
    closed_on: date | None = None

    @property
    def starts_on(self) -> date:
        return self.registered.warranty_starts_on

    @property
    def in_service_since(self) -> date:
        return self.registered.purchased_on or self.registered.produced_on or self.starts_on

    def warranty_until(self, part: str | None = None) -> date:
        """The later of the base warranty and any C23 extension of this part (None: the unit)."""
        return max([self.registered.warranty_until, *(r.warranty_until for r in self.repairs if r.part == part)])

    def guarantee_repairs(self, fault_on: date) -> int:
        """rule C19: free performance repairs within the first year, up to the fault."""
        year_end = add_months(self.starts_on, REPLACEMENT_MONTHS)
        return sum(1 for r in self.repairs
                   if r.covered and r.fault_kind == "performance" and r.repaired_on <= min(fault_on, year_end))


def evolve(state: Hardware | None, event: Event) -> Hardware:
    match event:
        case HardwareRegistered():
            return Hardware(registered=event)
        case RepairRecorded():
            known = _known(state, event.serial)
            return replace(known, repairs=(*known.repairs, event))
        case HardwareReturned():
            return replace(_known(state, event.serial), closed="returned", closed_on=event.returned_on)
        case HardwareReplaced():
            return replace(_known(state, event.serial), closed="replaced", closed_on=event.replaced_on)
        case _:
            assert_never(event)


def _known(state: Hardware | None, serial: str) -> Hardware:
    if state is None:
        raise ValueError(f"an event for hardware {serial} before its registration")
    return state


# Verdict


@dataclass(frozen=True)
class Verdict:
    remedy: Remedy
    covered: bool  # the customer pays nothing for the remedy
    clauses: tuple[str, ...]  # the rule ids that decided it
    warranty_until: date  # of the part asked about (None: the unit), C23 included
    reason: str
    amount: Decimal | None = None  # what the customer pays, when the agreement fixes it (C18)


def verdict(state: Hardware, *, fault_on: date, fault: Fault, cause: str | None = None,
            part: str | None = None) -> Verdict:
    hw = state.registered
    require(fault in FAULTS, "unknown", "fault", f"not one of {', '.join(FAULTS)}")
    require(cause is None or cause in EXCLUDED_CAUSES, "unknown", "cause",
            f"not one of {', '.join(sorted(EXCLUDED_CAUSES))}; leave it empty for a quality defect")
    require(fault_on >= state.in_service_since, "invalid", "fault_on", f"before {state.in_service_since}, "
            "when the hardware was bought (or made)")
    if state.closed_on is not None:
        require(fault_on <= state.closed_on, "invalid", "fault_on", f"after it was {state.closed} on {state.closed_on}")
    until = state.warranty_until(part)
    since = () if hw.invoice else ("C22",)  # rule C22: no invoice, the warranty runs from production
    start = f"{'bought' if hw.invoice else 'made (no invoice)'} on {state.starts_on}"

    if not hw.supplied_by_vendor:  # rule C3
        return Verdict("not_covered", False, ("C3",), until, "not supplied by the vendor: outside its warranty; "
                       f"the supplier's warranty runs until {until}")
    if cause is not None:  # rule C24: whatever the date
        if hw.kind == "dongle":  # rule C18: the key's cost price, as after its warranty
            return Verdict("paid_replacement", False, ("C18", "C24"), until,
                           f"{cause} is excluded from the warranty; a new key costs its fee",
                           hw.dongle_replacement_fee)
        return Verdict("not_covered", False, ("C24",), until, f"{cause} is excluded from the warranty")
    if fault == "preinstalled_software":  # rule C21
        require(hw.kind == "machine", "invalid", "fault", "only a machine comes with pre-installed software")
        months = hw.preinstalled_software_months
        if months is None:
            return Verdict("not_covered", False, ("C21",), until, "the agreement restores no software free")
        restore_until = add_months(state.starts_on, months)
        if fault_on <= restore_until:
            return Verdict("restore_software", True, ("C21", *since), until,
                           f"pre-installed software restored free until {restore_until} ({start})")
        return Verdict("not_covered", False, ("C21", *since), until,
                       f"free restore of pre-installed software ended on {restore_until} ({start})")

    warranty = "C18" if hw.kind == "dongle" else "C11"
    if fault_on > until:
        if hw.kind == "dongle":  # rule C18
            return Verdict("paid_replacement", False, (warranty, *since), until,
                           f"the key's warranty ended on {until}; a new key costs its fee", hw.dongle_replacement_fee)
        return Verdict("not_covered", False, (warranty, *since, "C24"), until, f"the warranty ended on {until}")
    extended = ("C23",) if fault_on > hw.warranty_until else ()  # only the repair's extension covers it
    clauses = (warranty, *since, *extended)
    if hw.kind == "dongle":  # rule C18: within its year a broken key is replaced free
        return Verdict("free_replacement", True, clauses, until, f"the key is under warranty until {until}")
    # rule C19: the three guarantees need the purchase invoice ([5]: 退换货时携带有效购物发票)
    if hw.kind == "machine" and hw.three_guarantees and hw.invoice:
        day = (fault_on - state.starts_on).days
        if day <= RETURN_DAYS:
            return Verdict("return_exchange_or_repair", True, ("C19",), until,
                           f"performance fault on day {day} after purchase: return, exchange or repair")
        if day <= EXCHANGE_DAYS:
            return Verdict("exchange_or_repair", True, ("C19",), until,
                           f"performance fault on day {day} after purchase: exchange or repair")
        repairs = state.guarantee_repairs(fault_on)
        if fault_on <= add_months(state.starts_on, REPLACEMENT_MONTHS) and repairs >= REPAIRS_BEFORE_REPLACEMENT:
            return Verdict("free_replacement", True, ("C19",), until,
                           f"still failing after {repairs} repairs within a year of purchase: "
                           "free replacement with the same model or one not below it")
    return Verdict("repair", True, clauses, until, f"under warranty until {until} ({start})")


# Decide


def decide(command: Command, state: Hardware | None) -> list[Event]:
    match command:
        case RegisterHardware():
            return [_register(command, state)]
        case RecordRepair():
            return [_repair(command, _open(state))]
        case RecordReturn():
            return [_return(command, _open(state))]
        case RecordReplacement():
            return [_replace(command, _open(state))]
        case _:
            assert_never(command)


def _open(state: Hardware | None) -> Hardware:
    if state is None:
        raise Rejected("not_found", "serial", "no hardware registered under this serial",
                       reason="warranty.serial_not_found")
    require(state.closed is None, "conflict", "serial", f"{state.closed} on {state.closed_on}")
    return state


def _register(command: RegisterHardware, state: Hardware | None) -> HardwareRegistered:
    require(state is None, "conflict", "serial", "already registered")
    for name in ("serial", "model", "customer_id"):
        require(bool(getattr(command, name).strip()), "missing", name, "must not be empty")
    require(command.kind in KINDS, "invalid", "kind", f"not one of {', '.join(KINDS)}")
    require(command.warranty_months > 0, "invalid", "warranty_months", "a warranty lasts at least a month")
    require(command.preinstalled_software_months is None or command.preinstalled_software_months > 0,
            "invalid", "preinstalled_software_months", "at least a month, or none")
    require(command.dongle_replacement_fee >= 0, "invalid", "dongle_replacement_fee", "must not be negative")
    if command.purchased_on is not None and command.produced_on is not None:
        require(command.produced_on <= command.purchased_on, "invalid", "produced_on", "after the purchase date")
    if command.invoice:
        if command.purchased_on is None:
            raise Rejected("missing", "purchased_on", "the invoice dates the purchase")
        starts = command.purchased_on
    else:
        if command.produced_on is None:
            raise Rejected("missing", "produced_on", "without an invoice the warranty runs from the production date")
        starts = command.produced_on
    # rule C3: third-party hardware; C18: the key's own year; C11: other vendor hardware
    base = "C3" if not command.supplied_by_vendor else "C18" if command.kind == "dongle" else "C11"
    return HardwareRegistered(
        serial=command.serial, kind=command.kind, model=command.model, customer_id=command.customer_id,
        supplied_by_vendor=command.supplied_by_vendor, purchased_on=command.purchased_on, invoice=command.invoice,
        produced_on=command.produced_on, warranty_months=command.warranty_months,
        three_guarantees=command.three_guarantees, preinstalled_software_months=command.preinstalled_software_months,
        dongle_replacement_fee=command.dongle_replacement_fee, warranty_starts_on=starts,
        warranty_until=add_months(starts, command.warranty_months),
        clauses=(base,) if command.invoice else (base, "C22"),  # rule C22
    )


def _repair(command: RecordRepair, state: Hardware) -> RepairRecorded:
    require(bool(command.fault.strip()), "missing", "fault", "say what was wrong")
    require(command.part is None or bool(command.part.strip()), "missing", "part", "name the part, or leave it out")
    require(command.repaired_on >= state.in_service_since, "invalid", "repaired_on",
            f"before {state.in_service_since}, when the hardware was bought (or made)")
    fault_on = command.fault_on or command.repaired_on
    require(fault_on <= command.repaired_on, "invalid", "fault_on", "after the repair date")
    if state.repairs:
        # C19 and C23 depend on the order of repairs; a late entry would rewrite them
        last = state.repairs[-1].repaired_on
        require(command.repaired_on >= last, "invalid", "repaired_on", f"before the last recorded repair on {last}")
    found = verdict(state, fault_on=fault_on, fault=command.fault_kind, cause=command.cause, part=command.part)
    until, clauses = found.warranty_until, found.clauses
    # rule C23: a part repaired with under 3 months of warranty left keeps 3 months from the repair
    extended_until = add_months(command.repaired_on, EXTENSION_MONTHS)
    if (found.covered and command.fault_kind == "performance" and extended_until > until
            and state.registered.warranty_months >= EXTENSION_MIN_WARRANTY_MONTHS):
        until, clauses = extended_until, (*[c for c in clauses if c != "C23"], "C23")
    return RepairRecorded(
        serial=command.serial, repaired_on=command.repaired_on, fault_on=fault_on, part=command.part,
        fault=command.fault, fault_kind=command.fault_kind, cause=command.cause, covered=found.covered,
        warranty_until=until, clauses=clauses,
    )


def _entitled(found: Verdict, remedies: tuple[Remedy, ...], cause: str | None, what: str) -> None:
    if found.remedy not in remedies:
        raise Rejected("not_entitled", "cause" if cause else "fault_on", f"no {what}: {found.reason}")


def _return(command: RecordReturn, state: Hardware) -> HardwareReturned:
    require(command.returned_on >= command.fault_on, "invalid", "returned_on", "before the fault")
    found = verdict(state, fault_on=command.fault_on, fault=command.fault, cause=command.cause)
    _entitled(found, ("return_exchange_or_repair",), command.cause, "return")  # rule C19: days 1-7 only
    return HardwareReturned(serial=command.serial, returned_on=command.returned_on, fault_on=command.fault_on,
                            clauses=found.clauses)


def _replace(command: RecordReplacement, state: Hardware) -> HardwareReplaced:
    require(command.replaced_on >= command.fault_on, "invalid", "replaced_on", "before the fault")
    require(bool(command.replacement_serial.strip()), "missing", "replacement_serial", "must not be empty")
    require(command.replacement_serial != command.serial, "invalid", "replacement_serial", "the same serial")
    require(bool(command.replacement_model.strip()), "missing", "replacement_model", "must not be empty")
    found = verdict(state, fault_on=command.fault_on, fault=command.fault, cause=command.cause)
    _entitled(found, REPLACEABLE, command.cause, "replacement")
    return HardwareReplaced(
        serial=command.serial, replaced_on=command.replaced_on, fault_on=command.fault_on,
        replacement_serial=command.replacement_serial, replacement_model=command.replacement_model,
        remedy=found.remedy, fee=found.amount if found.amount is not None else yuan(0), clauses=found.clauses,
    )
