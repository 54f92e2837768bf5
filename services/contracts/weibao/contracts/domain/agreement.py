"""The agreement aggregate: signed from a template, kept alive by annual fees.

Coverage (rules C1, C2): the first `free_months` after go-live are free; after them the
customer is covered only for periods whose fee is paid. A payment opens coverage or
extends it; the fee falls due `notice_days` before coverage ends (B4); coverage lapses
when a period ends unpaid. Time comes in with each command: `today` is the caller's
clock (a scheduler in production, a fixed date in tests), never read here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Literal

from weibao.contracts.domain.terms import Terms
from weibao.shared.codec import Codec
from weibao.shared.dates import add_months
from weibao.shared.errors import require
from weibao.shared.money import percent_of, to_fen


@dataclass(frozen=True)
class Office:
    """Where the vendor's technicians start from; C9 'local' is relative to it."""

    name: str
    city_code: str
    latitude: float
    longitude: float


# -- commands ----------------------------------------------------------------------


@dataclass(frozen=True)
class SignAgreement:
    agreement_id: str
    customer_id: str
    template_id: str
    terms: Terms
    go_live: date
    signed_on: date
    office: Office
    site_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class RecordFeePayment:
    """rule C2: a year's fee (or several) paid for a stated period."""

    payment_id: str
    amount: Decimal
    period_from: date
    period_to: date  # inclusive
    paid_on: date


@dataclass(frozen=True)
class AssessCoverage:
    """The daily tick: raise fee-due and lapse events that `today` makes true."""

    today: date


@dataclass(frozen=True)
class AmendAgreement:
    """An amendment is a new event, never an edit: the new terms from `effective_on`."""

    terms: Terms
    effective_on: date
    reason: str


@dataclass(frozen=True)
class TerminateAgreement:
    on: date
    reason: str


Command = SignAgreement | RecordFeePayment | AssessCoverage | AmendAgreement | TerminateAgreement


# -- events ------------------------------------------------------------------------


@dataclass(frozen=True)
class AgreementSigned:
    agreement_id: str
    customer_id: str
    template_id: str
    terms: Terms
    go_live: date
    signed_on: date
    office: Office
    site_ids: tuple[str, ...]
    free_until: date  # last free day, rule C1


@dataclass(frozen=True)
class FeePaid:
    """rule C2: the customer renewed; billing drafts the annual fee from this (B4)."""

    payment_id: str
    amount: Decimal
    period_from: date
    period_to: date
    paid_on: date
    covered_until: date  # coverage after this payment, rule C2


@dataclass(frozen=True)
class FeeFallenDue:
    """rules C2, B4: the next period's fee falls due: a renewal notice for billing's
    clerk, never an invoice line (nobody has agreed to that period yet). The fee is
    billed when the customer renews, i.e. pays it (`FeePaid`)."""

    period_from: date
    period_to: date
    amount: Decimal
    due_on: date


@dataclass(frozen=True)
class CoverageLapsed:
    """rule C1: the paid (or free) period ended without a next payment."""

    lapsed_on: date  # first day without coverage


@dataclass(frozen=True)
class AgreementAmended:
    terms: Terms
    effective_on: date
    reason: str


@dataclass(frozen=True)
class AgreementTerminated:
    on: date
    reason: str


@dataclass(frozen=True)
class ChangeRequestRecorded:
    """rule C8: a change request and how coverage assessed it (decided in `changes`);
    billing prices a billable one by its workload (B6)."""

    ref: str
    description: str
    on: date
    workload_days: Decimal  # working days, exact
    verdict: Literal["covered", "billable", "excluded"]
    clauses: tuple[str, ...]


Event = (AgreementSigned | FeePaid | FeeFallenDue | CoverageLapsed | AgreementAmended | AgreementTerminated
         | ChangeRequestRecorded)
# The events as stored: `private.<Name>` (the commands append them, the register reads them back).
EVENTS = Codec([AgreementSigned, FeePaid, FeeFallenDue, CoverageLapsed, AgreementAmended, AgreementTerminated,
                ChangeRequestRecorded], prefix="private.")


# -- state -------------------------------------------------------------------------


@dataclass(frozen=True)
class Agreement:
    status: Literal["none", "active", "terminated"] = "none"
    agreement_id: str = ""
    customer_id: str = ""
    template_id: str = ""
    terms: Terms | None = None
    go_live: date | None = None
    office: Office | None = None
    site_ids: tuple[str, ...] = ()
    free_until: date | None = None
    covered_until: date | None = None  # last covered day, free or paid
    paid_periods: tuple[tuple[date, date], ...] = ()
    payment_ids: frozenset[str] = frozenset()
    due_periods: tuple[tuple[date, date], ...] = ()
    lapsed_on: date | None = None
    terminated_on: date | None = None
    amendments: tuple[AgreementAmended, ...] = field(default=())  # in the order agreed
    change_requests: tuple[ChangeRequestRecorded, ...] = ()  # rule C8, by ref

    def change_request(self, ref: str) -> ChangeRequestRecorded | None:
        return next((found for found in self.change_requests if found.ref == ref), None)

    def terms_on(self, day: date) -> Terms:
        """The terms in force on `day`: the last amendment effective by then."""
        assert self.terms is not None
        current = self.terms
        for amendment in self.amendments:
            if amendment.effective_on <= day:
                current = amendment.terms
        return current

    def covered_on(self, day: date) -> Literal["free", "paid", "none"]:
        """rules C1, C2: which period, if any, covers `day`."""
        if self.go_live is None or day < self.go_live:
            return "none"
        if self.terminated_on is not None and day >= self.terminated_on:
            return "none"
        if self.free_until is not None and day <= self.free_until:
            return "free"
        if any(start <= day <= end for start, end in self.paid_periods):
            return "paid"
        return "none"


def annual_fee(terms: Terms, months: int) -> Decimal:
    """rule C2: percent of the software price per year, pro rata for the months paid."""
    assert terms.fee is not None
    return to_fen(percent_of(terms.fee.licence_price, terms.fee.percent) * Decimal(months) / Decimal(12))


def months_between(start: date, end_inclusive: date) -> int:
    months = (end_inclusive.year - start.year) * 12 + end_inclusive.month - start.month
    if add_months(start, months) <= end_inclusive:
        months += 1
    return months


# -- decide ------------------------------------------------------------------------


def decide(command: Command, state: Agreement) -> list[Event]:
    match command:
        case SignAgreement():
            require(state.status == "none", "conflict", "agreement_id", "this agreement is already signed")
            require(command.go_live >= date(1990, 1, 1), "invalid", "go_live", "not a plausible go-live date")
            require(bool(command.customer_id), "missing", "customer_id", "an agreement belongs to a customer")
            free_until = add_months(command.go_live, command.terms.free_months) - timedelta(days=1)
            return [
                AgreementSigned(
                    command.agreement_id, command.customer_id, command.template_id, command.terms,
                    command.go_live, command.signed_on, command.office, command.site_ids, free_until,
                )
            ]
        case RecordFeePayment():
            return _pay(command, state)
        case AssessCoverage():
            return _assess(command.today, state)
        case AmendAgreement():
            _require_active(state)
            require(bool(command.reason.strip()), "missing", "reason", "say why the agreement changes")
            return [AgreementAmended(command.terms, command.effective_on, command.reason)]
        case TerminateAgreement():
            _require_active(state)
            require(bool(command.reason.strip()), "missing", "reason", "say why the agreement ends")
            return [AgreementTerminated(command.on, command.reason)]
    raise AssertionError(f"unknown command {command!r}")


def _require_active(state: Agreement) -> None:
    require(state.status != "none", "not_found", "agreement_id", "no such agreement", reason="agreement.not_found")
    require(state.status == "active", "conflict", "agreement_id", "the agreement is terminated")


def _pay(command: RecordFeePayment, state: Agreement) -> list[Event]:
    _require_active(state)
    if command.payment_id in state.payment_ids:
        return []  # the same payment recorded twice: one effect
    terms = state.terms_on(command.period_from)
    require(terms.fee is not None, "invalid", "payment_id", "this agreement has no annual fee (rule C2)")
    require(command.period_to >= command.period_from, "invalid", "period_to", "ends before period_from")
    months = months_between(command.period_from, command.period_to)
    due = annual_fee(terms, months)
    require(command.amount >= due, "underpaid", "amount", f"{months} months cost {due} yuan (rule C2)")
    for start, end in state.paid_periods:
        overlap = command.period_from <= end and start <= command.period_to
        require(not overlap, "conflict", "period_from", f"{start}..{end} is already paid")
    assert state.covered_until is not None
    covered_until = state.covered_until
    # rule C2: paying opens or extends coverage; a gap before this period stays uncovered
    if command.period_from <= covered_until + timedelta(days=1):
        covered_until = max(covered_until, command.period_to)
    else:
        covered_until = command.period_to
    return [FeePaid(command.payment_id, to_fen(command.amount), command.period_from, command.period_to,
                    command.paid_on, covered_until)]


def _assess(today: date, state: Agreement) -> list[Event]:
    if state.status != "active":
        return []
    assert state.covered_until is not None
    events: list[Event] = []
    terms = state.terms_on(today)
    if terms.fee is not None:
        start = state.covered_until + timedelta(days=1)
        end = add_months(start, terms.fee.period_months) - timedelta(days=1)
        due_on = start - timedelta(days=terms.fee.notice_days)
        if today >= due_on and (start, end) not in state.due_periods:
            # rules C2, B4: a notice of the fee for the next period, once per period; billing
            # keeps it as a renewal notice and bills nothing until the customer pays
            events.append(FeeFallenDue(start, end, annual_fee(terms, terms.fee.period_months), due_on))
    if today > state.covered_until and state.lapsed_on is None:
        events.append(CoverageLapsed(state.covered_until + timedelta(days=1)))  # rule C1
    return events


# -- evolve ------------------------------------------------------------------------


def evolve(state: Agreement, event: Event) -> Agreement:
    match event:
        case AgreementSigned():
            return replace(
                state, status="active", agreement_id=event.agreement_id, customer_id=event.customer_id,
                template_id=event.template_id, terms=event.terms, go_live=event.go_live, office=event.office,
                site_ids=event.site_ids, free_until=event.free_until, covered_until=event.free_until,
            )
        case FeePaid():
            return replace(
                state,
                paid_periods=(*state.paid_periods, (event.period_from, event.period_to)),
                payment_ids=state.payment_ids | {event.payment_id},
                covered_until=event.covered_until,
                lapsed_on=None,  # a payment after a lapse reopens coverage
            )
        case FeeFallenDue():
            return replace(state, due_periods=(*state.due_periods, (event.period_from, event.period_to)))
        case CoverageLapsed():
            return replace(state, lapsed_on=event.lapsed_on)
        case AgreementAmended():
            return replace(state, amendments=(*state.amendments, event))
        case AgreementTerminated():
            return replace(state, status="terminated", terminated_on=event.on)
        case ChangeRequestRecorded():
            return replace(state, change_requests=(*state.change_requests, event))
    raise AssertionError(f"unknown event {event!r}")


def summary(state: Agreement) -> Mapping[str, Any]:
    """What a dispatcher's customer page shows about an agreement."""
    return {
        "agreement_id": state.agreement_id,
        "status": state.status,
        "template_id": state.template_id,
        "go_live": state.go_live,
        "free_until": state.free_until,
        "covered_until": state.covered_until,
        "lapsed_on": state.lapsed_on,
        "paid_periods": state.paid_periods,
    }
