"""Coverage decisions: is this service, at this site, on this date, for this cause,
covered, billable or excluded, by which clauses, and under which SLA?

A pure function of the agreement's state and the question; the application works out
the facts that need the world (is the site local, rule C9, from geography)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Literal

from weibao.contracts.domain.agreement import Agreement
from weibao.contracts.domain.terms import Onsite, Terms
from weibao.contracts.domain.warranty import Verdict

Service = Literal[
    "fault",  # a fault of the software (C9, C12)
    "hardware_network",  # work on hardware or network on the customer's request (C3, C4)
    "upgrade",  # C6
    "training",  # C7
    "installation",  # C10
    "change_request",  # C8
]
Phase = Literal["parallel_run", "cutover"]


@dataclass(frozen=True)
class Question:
    on: date
    service: Service
    cause: str | None = None  # a C12 or C17 cause code
    onsite: bool = True
    local: bool = True  # rule C9: the application decides it from the site and the office
    phase: Phase | None = None  # rule C14
    third_party_under_warranty: bool = False  # rule C3
    workload_working_days: Decimal | None = None  # rule C8
    basic_computer_training: bool = False  # rule C7


@dataclass(frozen=True)
class Sla:
    """D1: how soon someone must respond and be on site; D2: how the clock counts."""

    respond_within_hours: int | None
    arrive_within_hours: int | None
    arrive_within_days: int | None
    resolve_within_hours: int | None
    calendar: Literal["clock", "working"]
    service_hours: tuple[str, str] | None
    phone_support_24h: bool
    clauses: tuple[str, ...]


@dataclass(frozen=True)
class Decision:
    verdict: Literal["covered", "billable", "excluded"]
    clauses: tuple[str, ...]
    reason: str
    sla: Sla | None = None
    # Charges on top of the verdict: "expenses" at cost (C5), "day_rate" (C4),
    # "quota" (the quota ledger decides free or paid: C7, C10), "workload" (C8).
    charges: tuple[str, ...] = ()
    penalty_applies: bool = True  # rule C17: no SLA penalty for causes outside liability


def from_warranty(verdict: Verdict) -> Decision:
    """Vendor-supplied hardware: the warranty decides (C11, C18, C19, C21, C22, C23, C24),
    and work the warranty does not cover is billed (B2, B7)."""
    if verdict.covered:
        return Decision("covered", verdict.clauses, verdict.reason)
    charges = ("fee",) if verdict.amount is not None else ("day_rate",)
    excluded = "C24" in verdict.clauses or "C3" in verdict.clauses
    return Decision("excluded" if excluded and verdict.amount is None else "billable", verdict.clauses,
                    verdict.reason, charges=charges, penalty_applies=False)


def sla_for(onsite: Onsite, question: Question) -> Sla | None:
    """rules C9, C14, C15, C16, C20 and D2."""
    extra: tuple[str, ...] = ("C16",) if onsite.phone_support_24h else ()
    extra += ("C20",) if onsite.service_hours else ()

    def sla(clause: tuple[str, ...], *, respond: int | None = None, hours: int | None = None,
            days: int | None = None, resolve: int | None = None) -> Sla:
        return Sla(respond, hours, days, resolve, onsite.calendar, onsite.service_hours,
                   onsite.phone_support_24h, (*clause, *extra))

    match onsite.kind:
        case "local_or_out_of_town":
            return sla(("C9",), hours=onsite.local_hours) if question.local else sla(
                ("C9",), days=onsite.out_of_town_days)
        case "by_phase":
            days = onsite.cutover_days if question.phase == "cutover" else onsite.parallel_run_days
            return sla(("C14",), days=days)
        case "respond_resolve":
            return sla(("C15",), respond=onsite.respond_hours, resolve=onsite.resolve_hours)
        case "by_arrangement":
            return sla(()) if extra else None
    raise AssertionError(onsite.kind)


def decide_coverage(agreement: Agreement, question: Question) -> Decision:
    if agreement.status == "none":
        return Decision("excluded", (), "no agreement")
    terms = agreement.terms_on(question.on)
    period = agreement.covered_on(question.on)
    expenses = ("expenses",) if question.onsite and terms.customer_pays_expenses else ()
    expense_clause = ("C5",) if expenses else ()

    match question.service:
        case "hardware_network":
            if question.third_party_under_warranty:
                # rule C3: the supplier's warranty applies; the vendor does not service it
                return Decision("excluded", ("C3",), "third-party hardware under its supplier's warranty")
            if terms.hardware is None:
                return Decision("billable", ("C3", "B3"), "hardware and network work is outside the agreement",
                                charges=expenses, penalty_applies=False)
            # rule C4: per day, part-days rounded up, expenses on top, inside coverage too
            return Decision("billable", ("C3", "C4", *expense_clause), "hardware or network work is billed per day",
                            charges=("day_rate", *expenses), penalty_applies=False)
        case "training":
            if question.basic_computer_training and not terms.training.basic_computer_training_free:
                return Decision("billable", ("C7",), "basic computer training is never free", charges=expenses)
            return Decision("covered", ("C7",), "training seats come from the free quota, beyond it billed",
                            charges=("quota", *expenses))
        case "installation":
            return Decision("covered", ("C10",), "installations come from the free quota, beyond it billed",
                            charges=("quota", *expenses))
        case "upgrade":
            if period != "none" and terms.upgrades_free_in_service:
                return Decision("covered", ("C6",), "upgrades are free within the service period")
            return Decision("billable", ("C6", "C1", "B3"), "no service period covers this date")
        case "change_request":
            limit = terms.changes.free_up_to_working_days
            large = limit is not None and (question.workload_working_days or Decimal(0)) > limit
            if period == "none":
                return Decision("billable", ("C1", "C8", "B3"), "no service period covers this date",
                                charges=("workload",))
            if large:
                return Decision("billable", ("C8", "B6"), f"more than {limit} working days: billed by workload",
                                charges=("workload",))
            return Decision("covered", ("C8",), "a small change is free")
        case "fault":
            return _fault(terms, period, question, expenses, expense_clause)
    raise AssertionError(question.service)


def _fault(
    terms: Terms, period: str, question: Question, expenses: tuple[str, ...], expense_clause: tuple[str, ...]
) -> Decision:
    sla = sla_for(terms.onsite, question) if question.onsite else None
    sla_clauses = sla.clauses if sla else ()
    if question.cause in terms.scope.not_liable_causes:
        # rule C17: a visit is possible, billable, and carries no SLA penalty
        return Decision("billable", ("C17", *expense_clause), "the cause is outside the vendor's liability",
                        sla=sla, charges=("workload", *expenses), penalty_applies=False)
    if period == "none":
        # rules C1 and B3: outside any free or paid period, at the agreement's rates
        return Decision("billable", ("C1", "B3", *sla_clauses, *expense_clause),
                        "no free year or paid maintenance period covers this date", sla=sla,
                        charges=("workload", *expenses), penalty_applies=False)
    basis = "C1" if period == "free" else "C2"
    if question.cause is not None and question.cause not in terms.scope.covered_causes:
        return Decision("billable", (basis, "C12", *expense_clause), f"{question.cause} is outside the scope (C12)",
                        sla=sla, charges=("workload", *expenses), penalty_applies=False)
    clauses = (basis, *(("C12",) if question.cause else ()), *sla_clauses, *expense_clause)
    return Decision("covered", clauses, "inside the service period and scope", sla=sla, charges=expenses)
