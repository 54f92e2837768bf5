"""Change requests of an agreement (rule C8): small changes free, large ones (more than
the agreement's working days, 3 in [4]) billed by the actual workload (B6).

The verdict is the coverage decision's (`decide_coverage`, service "change_request"), so
a change outside any free or paid period is billable too (C1). The event lives on the
agreement's stream; its ref makes recording the same change twice one effect."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from weibao.contracts.domain.agreement import Agreement, ChangeRequestRecorded, Event
from weibao.contracts.domain.coverage import Question, decide_coverage
from weibao.shared.errors import require


@dataclass(frozen=True)
class RecordChangeRequest:
    ref: str
    description: str
    on: date
    workload_days: Decimal  # working days of actual workload, exact (C8)


def decide(command: RecordChangeRequest, state: Agreement) -> list[Event]:
    require(state.status != "none", "not_found", "agreement_id", "no such agreement", reason="agreement.not_found")
    require(bool(command.ref.strip()), "missing", "ref", "a change request needs its reference")
    require(bool(command.description.strip()), "missing", "description", "say what the change is")
    workload = command.workload_days
    require(workload.is_finite() and workload > 0, "invalid", "workload_days", "working days of workload, more than 0")
    known = state.change_request(command.ref)
    if known is not None:
        same = (known.description, known.on, known.workload_days) == (command.description, command.on, workload)
        require(same, "conflict", "ref", "this change request is already recorded with other details")
        return []  # the same change recorded twice: one effect
    # rules C8 and C1: free when small and inside a service period, else billed by workload (B6)
    decision = decide_coverage(state, Question(on=command.on, service="change_request", onsite=False,
                                               workload_working_days=workload))
    return [ChangeRequestRecorded(command.ref, command.description, command.on, workload, decision.verdict,
                                  decision.clauses)]
