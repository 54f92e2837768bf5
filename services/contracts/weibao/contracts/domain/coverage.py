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
from weibao.shared.public.contracts import MONDAY_TO_FRIDAY
from weibao.shared.public.dispatch import Channel, Priority

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
    priority: Priority | None = None  # issue 13: moves a deadline only through the agreement's targets
    channel: Channel | None = None  # rule C16: how the request came in ("phone")


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
    service_days: tuple[int, ...] = MONDAY_TO_FRIDAY  # rule C20: ISO weekdays served (working calendar)
    # rule C16: a phone request's respond-by clock counts around the clock, whatever the calendar
    respond_around_the_clock: bool = False
    # issue 13: the clocks the question's priority set or tightened ("respond", "arrive", "resolve")
    set_by_priority: tuple[str, ...] = ()


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


# rule C20: the service window when the agreement names none (dispatch counts the same)
DEFAULT_SERVICE_HOURS = ("09:00", "18:00")


def sla_for(onsite: Onsite, question: Question) -> Sla | None:
    """rules C9, C14, C15, C16, C20 and D2, and the agreement's priority targets (issue 13).

    The same answer as dispatch's `sla_from_terms` for the same terms and question:
    clauses set deadlines; a priority target moves one only where the agreement sets it,
    the tighter of the two winning (compared in the agreement's calendar: a day is 24
    hours on the clock calendar, one service window on the working one), and sets a
    clock the clauses leave unset. rule C16: under 24-hour phone support a request by
    phone has its respond-by clock counted around the clock."""
    extra: tuple[str, ...] = ("C16",) if onsite.phone_support_24h else ()
    extra += ("C20",) if onsite.service_hours or onsite.service_days != MONDAY_TO_FRIDAY else ()
    respond = hours = days = resolve = None
    clauses: tuple[str, ...] = ()
    match onsite.kind:
        case "local_or_out_of_town":
            clauses = ("C9",)
            if question.local:
                hours = onsite.local_hours
            else:
                days = onsite.out_of_town_days
        case "by_phase":
            clauses = ("C14",)
            days = onsite.cutover_days if question.phase == "cutover" else onsite.parallel_run_days
        case "respond_resolve":
            clauses = ("C15",)
            respond, resolve = onsite.respond_hours, onsite.resolve_hours
        case "by_arrangement":
            pass
        case _:
            raise AssertionError(onsite.kind)
    targets = onsite.priority_targets.of(question.priority) if onsite.priority_targets else None
    by_priority: tuple[str, ...] = ()
    if targets is not None:
        if _tighter(targets.respond_hours, respond):
            respond, by_priority = targets.respond_hours, (*by_priority, "respond")
        clause_arrive = hours if hours is not None else (days * _day_hours(onsite) if days is not None else None)
        if _tighter(targets.arrive_hours, clause_arrive):
            hours, days, by_priority = targets.arrive_hours, None, (*by_priority, "arrive")
        if _tighter(targets.resolve_hours, resolve):
            resolve, by_priority = targets.resolve_hours, (*by_priority, "resolve")
    if onsite.kind == "by_arrangement" and not extra and not by_priority:
        return None
    around = onsite.phone_support_24h and question.channel == "phone" and respond is not None
    return Sla(respond, hours, days, resolve, onsite.calendar, onsite.service_hours, onsite.phone_support_24h,
               (*clauses, *extra), onsite.service_days, around, by_priority)


def _tighter(target: int | None, clause: float | None) -> bool:
    """A target wins when the clause sets no such clock, or allows more; a tie keeps the clause."""
    return target is not None and (clause is None or target < clause)


def _day_hours(onsite: Onsite) -> float:
    """rules C9, C14, D2: the hours one day of a "within M days" clause is worth."""
    if onsite.calendar == "clock":
        return 24.0
    opens, closes = onsite.service_hours or DEFAULT_SERVICE_HOURS
    (oh, om), (ch, cm) = (map(int, opens.split(":")), map(int, closes.split(":")))
    return (ch * 60 + cm - oh * 60 - om) / 60


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
