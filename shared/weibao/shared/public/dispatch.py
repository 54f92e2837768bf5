"""What the dispatch service publishes, on `dispatch.<MessageName>`.

Billing needs nothing else from dispatch: each message names the customer, the
agreement and the coverage verdict the visit ran under."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

from weibao.shared.codec import Codec
from weibao.shared.public.contracts import C12Cause, C17Cause

SERVICE = "dispatch"

# Dispatch's vocabulary, one list each: the commands' schemas accept these, the domain
# decides with them and the messages below carry them.
Channel = Literal["phone", "fax", "email", "remote", "letter", "qq", "onsite"]  # rule C13
WorkKind = Literal["hardware", "network", "software"]  # rule D6; C4 prices hardware and network by the day
ExpenseKind = Literal["transport", "lodging", "meals", "travel"]  # rule C5, billed at cost (B1)
# Why the customer called (issue 13): the causes the agreements' clauses name, so the
# coverage decided at intake is the full one (dispatch's domain/intake.py judges them).
Cause = Literal[
    "software_fault",  # a fault of the software (C9, C12)
    C12Cause,  # rule C12, maintenance inside coverage (contracts' scope vocabulary)
    "hardware_network",  # hardware or network work the customer asks for (C3, C4)
    "third_party_hardware",  # rule C3: a third party's equipment under its supplier's warranty
    "hardware_misuse",  # rule C24: vendor-supplied hardware misused, repaired elsewhere, foreign parts
    C17Cause,  # rule C17, not the vendor's liability: billable, no SLA penalty
    "upgrade",  # rule C6
    "training",  # rule C7
    "installation",  # rule C10
    "change_request",  # rule C8
]
Phase = Literal["parallel_run", "cutover"]  # rule C14: 人机并行, or 脱离手工阶段
ResponseKind = Literal["call_back", "remote_session"]  # rule C15: the desk's first response
DeskChannel = Literal["phone", "remote"]  # issue 13: work done from the desk (C13)
# Priority orders the board and the plan; it moves a deadline only where the agreement
# sets targets for it (onsite.priority_targets), and then the tighter one wins.
Priority = Literal["urgent", "high", "normal", "low"]
PRIORITIES: tuple[Priority, ...] = get_args(Priority)
# rule D5: which clock a phone's action counts at (the device's, within bounds, or the
# server's receipt), and why the device's was not believed when it was not.
TimeSource = Literal["device", "server"]
TimeFlag = Literal["future", "before_assignment"]

# The words dispatch's answers speak in, defined once for its domain (which decides with
# them) and the gateway's views (which declare them to clients): a request's stage (D3 to
# D5; its domain adds "none", before it is opened), what may be asked of it next, its
# deadline clocks and their standing (D1), how a clock counts (D2), why a technician was
# not eligible and which branch chose one (D4), how a trip is made.
Stage = Literal["triage", "resolved", "awaiting_assignment", "assigned", "accepted", "on_site", "checked_out",
                "completed"]
TicketAction = Literal["escalate", "resolve_remotely", "assign", "accept", "decline", "report", "complete", "wait",
                       "resume", "find_coverage", "reclassify", "respond", "desk_work"]
ClockKind = Literal["respond", "arrive", "resolve"]
ClockStatus = Literal["on_track", "at_risk", "breached", "met"]
Announcement = Literal["at_risk", "breached", "met"]
CalendarKind = Literal["clock", "working"]
Ineligible = Literal["skill", "leave", "shift_over", "capacity", "excluded"]
AssignmentRule = Literal["in_time_least_travel", "earliest_arrival_at_risk", "nobody_eligible", "round_optimum"]
TravelMode = Literal["road", "rail", "air"]


@dataclass(frozen=True)
class VisitRequested:
    """rule D3: triage escalated a request to an on-site visit."""

    SCHEMA = 1
    ticket_id: str
    customer_id: str
    site_id: str
    agreement_id: str | None
    verdict: str  # covered | billable | excluded, as contracts said
    clauses: tuple[str, ...]
    requested_at: str  # ISO datetime, UTC
    summary: str
    skill: str


@dataclass(frozen=True)
class VisitAssigned:
    """rule D4, with its explanation (candidates, distances, arrival times, why)."""

    SCHEMA = 1
    ticket_id: str
    technician_id: str
    assigned_at: str
    at_risk: bool
    by: str
    override_reason: str | None
    explanation: dict[str, Any]


@dataclass(frozen=True)
class VisitCheckedIn:
    """rule D5: the first check-in within the geofence stops the response clock at
    `counted_at`: the device's time when it lies within bounds (`time_source` "device"),
    else the server's receipt `at` ("server", with `time_flag` saying why)."""

    SCHEMA = 1
    ticket_id: str
    technician_id: str
    at: str
    device_time: str
    distance_m: float
    within_geofence: bool
    # issue 13; defaults read messages published before them (then the server's time counted)
    counted_at: str = ""
    time_source: TimeSource = "server"
    time_flag: TimeFlag | None = None


@dataclass(frozen=True)
class VisitCompleted:
    SCHEMA = 1
    ticket_id: str
    customer_id: str
    agreement_id: str | None
    technician_id: str
    completed_at: str
    resolution: str
    verdict: str
    clauses: tuple[str, ...]
    # rule D5 (issue 13), as on VisitCheckedIn: the time that met the resolve clock
    counted_at: str = ""
    time_source: TimeSource = "server"
    time_flag: TimeFlag | None = None


@dataclass(frozen=True)
class WorkLogged:
    """rule D6; billing turns hardware and network time into days (C4, B2)."""

    SCHEMA = 1
    ticket_id: str
    customer_id: str
    agreement_id: str | None
    technician_id: str
    key: str
    kind: WorkKind
    started: str
    ended: str
    verdict: str
    clauses: tuple[str, ...]
    # Issue 13: where the work was done: on site, or from the desk by phone or remote
    # session (then `technician_id` names whoever did it, a technician or the desk's actor).
    channel: str = "onsite"


@dataclass(frozen=True)
class ExpenseRecorded:
    """rule D6; billed at cost (C5, B1)."""

    SCHEMA = 1
    ticket_id: str
    customer_id: str
    agreement_id: str | None
    technician_id: str
    key: str
    kind: ExpenseKind
    amount: str  # yuan, exact decimal text
    receipt_no: str
    receipt_date: str
    nights: int | None
    note: str


@dataclass(frozen=True)
class SlaMet:
    SCHEMA = 1
    ticket_id: str
    kind: str  # respond | arrive | resolve
    due: str
    at: str


@dataclass(frozen=True)
class SlaBreached:
    SCHEMA = 1
    ticket_id: str
    kind: str
    due: str
    at: str
    penalty_applies: bool  # rule C17: not for causes outside the vendor's liability


@dataclass(frozen=True)
class SlaAtRisk:
    SCHEMA = 1
    ticket_id: str
    kind: str
    due: str
    at: str


# Every message above, as the type a consumer matches on; a field renamed here fails
# mypy wherever a consumer reads it.
Published = (VisitRequested | VisitAssigned | VisitCheckedIn | VisitCompleted | WorkLogged | ExpenseRecorded
             | SlaMet | SlaBreached | SlaAtRisk)
MESSAGES: tuple[type, ...] = get_args(Published)
CODEC = Codec(MESSAGES, {kind.__name__: kind.SCHEMA for kind in MESSAGES})  # type: ignore[attr-defined]
