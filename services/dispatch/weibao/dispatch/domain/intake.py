"""What a request's cause makes of the coverage its date gives (issue 13, intake).

Contracts publishes each agreement's terms as plain data and the periods it covers
(`CoverageGranted`); the coverage adapter finds the period a request's receipt date falls
in. This module adds the cause: which clauses exclude the work (C3, C24), make it billable
(C17 outside liability, C12 outside scope, C4 hardware days, B3 outside any period) or
keep it covered, whether an SLA is owed (only a fault is: C9, C14, C15) and whether a
breach carries a penalty (C17: never outside liability). Pure: no I/O, no clock.

It answers what contracts' own coverage decision (`contracts.domain.coverage`) answers
for the same agreement, date and cause; `tests/dispatch/test_intake.py` holds the two
equal over every cause, period and seed template, so they cannot drift apart silently."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from weibao.shared.errors import require
from weibao.shared.public.contracts import C12Cause, C17Cause
from weibao.shared.public.dispatch import Cause, Channel, Phase

Verdict = Literal["covered", "billable", "excluded"]
Period = Literal["free", "paid"]

CAUSES: tuple[Cause, ...] = get_args(Cause)
# rule C12 (A)-(D) and [4]'s "problems met in use": the causes a scope may cover; rule
# C17: the causes outside the vendor's liability unless an agreement names others
C12: frozenset[str] = frozenset(get_args(C12Cause))
C17: frozenset[str] = frozenset(get_args(C17Cause))
# What contracts' defaults say when an agreement's terms do not (terms.py `Scope`, `Terms`).
DEFAULT_COVERED_CAUSES = ("environment_readaptation", "os_input_adaptation", "virus_cleanup", "misoperation_repair")
DEFAULT_CHANNELS: tuple[Channel, ...] = ("phone", "onsite")


@dataclass(frozen=True)
class Judged:
    verdict: Verdict
    clauses: tuple[str, ...]
    reason: str
    penalty: bool  # rule C17: a breach outside the vendor's liability carries no penalty
    sla: bool  # whether the agreement's on-site SLA is owed (only for a fault)


def judge(cause: Cause, *, agreement: bool, period: Period | None, period_clauses: tuple[str, ...],
          terms: Mapping[str, Any]) -> Judged:
    """The coverage of a request for `cause`, given the period its receipt date falls in
    (`None`: no free year or paid period covers it) and the agreement's terms."""
    scope = terms.get("scope") or {}
    if cause == "third_party_hardware":
        if scope.get("third_party_hardware", "excluded") == "excluded":
            # rule C3: the supplier's warranty applies; the vendor does not service it
            return Judged("excluded", ("C3",), "third-party hardware under its supplier's warranty", False, False)
        return Judged("billable", ("C3", "B3"), "third-party hardware, serviced at the agreement's rates", False, False)
    if cause == "hardware_misuse":
        # rule C24: misuse, unauthorised repair, foreign parts: outside the warranty's scope
        return Judged("excluded", ("C24",), "outside the warranty: misuse, unauthorised repair or foreign parts",
                      False, False)
    if cause == "hardware_network":
        if terms.get("hardware") is None:
            return Judged("billable", ("C3", "B3"), "hardware and network work is outside the agreement", False, False)
        # rule C4: per day, part-days rounded up, inside coverage too
        return Judged("billable", ("C3", "C4"), "hardware or network work is billed per day", False, False)
    if not agreement:
        return Judged("billable", ("B3",), "no agreement: billed at the vendor's rates", False, False)
    match cause:
        case "training":  # rule C7: the quota ledger decides free or billed, whatever the period
            return Judged("covered", (*period_clauses, "C7"),
                          "training seats come from the free quota, beyond it billed", True, False)
        case "installation":  # rule C10: likewise
            return Judged("covered", (*period_clauses, "C10"),
                          "installations come from the free quota, beyond it billed", True, False)
        case "upgrade":  # rule C6
            if period is not None and terms.get("upgrades_free_in_service", True):
                return Judged("covered", (*period_clauses, "C6"), "upgrades are free within the service period",
                              True, False)
            return Judged("billable", ("C6", "C1", "B3"), "no service period covers this date", False, False)
        case "change_request":  # rule C8: a small change is free in a service period
            if period is None:
                return Judged("billable", ("C1", "C8", "B3"), "no service period covers this date", False, False)
            return Judged("covered", (*period_clauses, "C8"), "a small change is free; a large one billed by workload",
                          True, False)
    not_liable = tuple(scope.get("not_liable_causes", tuple(sorted(C17))))
    if cause in not_liable:
        # rule C17: a visit is possible, billable, and carries no SLA penalty
        return Judged("billable", ("C17",), "the cause is outside the vendor's liability", False, True)
    if period is None:
        # rules C1, B3: outside any free or paid period, at the agreement's rates
        return Judged("billable", ("C1", "B3"), "no free year or paid maintenance period covers this date",
                      False, True)
    if cause != "software_fault":  # a named cause this agreement neither covers nor disclaims: C12's scope
        covered = tuple(scope.get("covered_causes", DEFAULT_COVERED_CAUSES))
        if cause not in covered:
            return Judged("billable", (*period_clauses, "C12"), "outside the agreement's maintenance scope (C12)",
                          False, True)
        return Judged("covered", (*period_clauses, "C12"), "inside the service period and scope", True, True)
    return Judged("covered", period_clauses, "inside the service period", True, True)


def check_channel(channel: Channel, terms: Mapping[str, Any] | None) -> None:
    """rule C13: a request comes in by a channel its agreement offers (phone first, D3).
    Without an agreement every channel is taken: the request is billable (B3) anyway."""
    if terms is None:
        return
    offered = tuple(terms.get("channels") or DEFAULT_CHANNELS)
    require(channel in offered, "invalid", "channel",
            f"the agreement does not offer {channel}; it offers {', '.join(offered)} (rule C13)",
            reason="intake.channel_not_offered", values={"channel": channel, "channels": list(offered)})


def check_phase(phase: Phase | None, terms: Mapping[str, Any] | None) -> None:
    """rule C14: a phase is the customer's project phase, known only to agreements that
    set deadlines by phase; naming one elsewhere is a mistake to point out, not to keep."""
    if phase is None:
        return
    kind = ((terms or {}).get("onsite") or {}).get("kind")
    require(kind == "by_phase", "invalid", "phase",
            "the agreement sets no deadlines by phase (parallel run or cut-over, rule C14)",
            reason="intake.no_deadlines_by_phase")
