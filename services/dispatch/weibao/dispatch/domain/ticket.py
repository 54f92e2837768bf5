"""A service request from any channel, and the on-site visit it may become.

Triage comes first (rules C13, D3): a request is resolved remotely or escalated to a
visit. A visit is assigned (D4, decided elsewhere and recorded here with its
explanation), accepted or declined, checked into and out of from a phone (D5), and
records work time and expenses (D6). Times, ids and positions come in with commands;
a phone's action counts at the device's time when it is plausible, else at the
server's, and both are kept (D5, `counted_time`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from weibao.dispatch.domain import deadlines as dl
from weibao.dispatch.domain import intake
from weibao.dispatch.domain.skills import check_skill
from weibao.dispatch.domain.sla import Kind, ServiceHours, sla_from_terms
from weibao.shared.codec import Codec
from weibao.shared.errors import Rejected, require
from weibao.shared.geo import distance_km
from weibao.shared.public.dispatch import (
    Cause,
    Channel,
    DeskChannel,
    ExpenseKind,
    Phase,
    Priority,
    ResponseKind,
    Stage,
    TicketAction,
    TimeFlag,
    TimeSource,
    WorkKind,
)

# rule D1: a call taken on paper and entered later still counts from when it came in,
# but a week back at most: older, it is a record to file, not a request to dispatch,
# and an open door to backdating every deadline.
BACKDATE_LIMIT = timedelta(days=7)
# Desk work is entered by hand from the desk's own clock: a few minutes either way is a
# slip of the keyboard, more is a mistake to point out.
DESK_CLOCK_TOLERANCE = timedelta(minutes=10)


@dataclass(frozen=True)
class Position:
    latitude: float
    longitude: float

    def check(self, field_prefix: str = "") -> None:
        require(-90 <= self.latitude <= 90, "invalid", f"{field_prefix}latitude", "between -90 and 90",
                reason="position.latitude_out_of_range")
        require(-180 <= self.longitude <= 180, "invalid", f"{field_prefix}longitude", "between -180 and 180",
                reason="position.longitude_out_of_range")


@dataclass(frozen=True)
class Coverage:
    """What contracts said, as of the request (from its CoverageGranted messages)."""

    agreement_id: str | None
    verdict: Literal["covered", "billable", "excluded"]
    clauses: tuple[str, ...]
    local: bool
    onsite: Mapping[str, Any] = field(default_factory=dict)  # the agreement's SLA terms
    # Issue 13, intake: the cause it was judged for (domain/intake.py), in words why, and
    # whether a breach carries a penalty (C17: not outside the vendor's liability). A
    # request logged before causes were asked for has none (as a software fault).
    cause: Cause | None = None
    reason: str = ""
    penalty: bool = True
    # The agreement's check-in radius (onsite.geofence_m, D5), kept apart from the SLA
    # terms: work owed no SLA (hardware, C17) is still checked in near the site.
    geofence_m: float | None = None

    @property
    def judged_cause(self) -> Cause:
        """The cause the coverage stands for: a request logged before causes were asked
        for was judged as a software fault."""
        return self.cause or "software_fault"


@dataclass(frozen=True)
class ClockSet:
    kind: Kind
    allowed: timedelta
    due: datetime
    risk_from: datetime
    around_the_clock: bool = False  # rule C16: counted on the clock calendar (a phone request's respond clock)


@dataclass(frozen=True)
class DeadlinesSet:
    """rule D1/D2: the due times, fixed when the request came in. Stored, not recomputed,
    so a later calendar update cannot change what a past request was promised. Fields
    added later have defaults that read older logs as they were decided then (Monday to
    Friday, one calendar for every clock, no priority targets)."""

    requested_at: datetime
    calendar: Literal["clock", "working"]
    service_hours: ServiceHours | None
    clocks: tuple[ClockSet, ...]
    clauses: tuple[str, ...]
    provisional: tuple[int, ...] = ()  # D2: years counted on the regular week, their calendar unknown
    service_days: tuple[int, ...] = (1, 2, 3, 4, 5)  # rule C20: ISO weekdays served (working calendar)
    by_priority: tuple[Kind, ...] = ()  # issue 13: clocks the priority's targets set or tightened

    def rebuild(self) -> dl.Deadlines:
        timeline = dl.Timeline(self.calendar, self.service_hours, dl.OFFICE_TZ, self.service_days)
        return dl.Deadlines(self.requested_at, timeline,
                            tuple(dl.Clock(c.kind, c.allowed, c.due, c.risk_from, around_the_clock=c.around_the_clock)
                                  for c in self.clocks),
                            provisional=frozenset(self.provisional))


def set_deadlines(opened_at: datetime, coverage: Coverage, phase: Phase | None,
                  *, priority: Priority | None = None, channel: Channel | None = None) -> DeadlinesSet | None:
    """No deadline without an SLA, or for work outside coverage (C1, C17). `priority`
    moves a deadline only where the agreement sets targets for it (issue 13); `channel`
    "phone" under 24-hour phone support counts the respond clock around the clock (C16)."""
    if coverage.verdict != "covered" or not coverage.onsite:
        return None
    sla = sla_from_terms(coverage.onsite, local=coverage.local, phase=phase, priority=priority, channel=channel)
    if not sla.sets_deadlines:
        return None
    started = dl.Deadlines.start(opened_at, sla)
    return DeadlinesSet(opened_at, sla.calendar, sla.service_hours,
                        tuple(ClockSet(c.kind, c.allowed, c.due, c.risk_from, c.around_the_clock)
                              for c in started.clocks), sla.clauses,
                        tuple(sorted(started.provisional)), sla.service_days, sla.set_by_priority)


# -- commands ----------------------------------------------------------------------


@dataclass(frozen=True)
class OpenTicket:
    ticket_id: str
    customer_id: str
    site_id: str
    site: Position
    channel: Channel
    summary: str
    opened_at: datetime
    coverage: Coverage
    skill: str = "software:general"  # D4: "software:<product>", "hardware" or "network"
    phase: Phase | None = None  # rule C14
    entered_at: datetime | None = None  # set when entered later than received (`opened_at`)
    priority: Priority = "normal"
    product: str = ""  # the product or device concerned, with its serial number when there is one
    serial: str = ""
    # The agreement's terms as contracts published them (None: no agreement): what the
    # channel (C13) and the phase (C14) are checked against. Not stored with the request.
    terms: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Reclassify:
    """Issue 13: the cause, phase or priority corrected (the caller misjudged it), with the
    coverage judged again for it as of when the request came in (D1). Until the first
    report from site, like FindCoverage: what a technician reported was billed under the
    coverage it had, and the billing clerk corrects money with a credit note."""

    at: datetime
    by: str
    reason: str
    cause: Cause
    phase: Phase | None
    priority: Priority
    coverage: Coverage
    terms: Mapping[str, Any] | None = None  # as OpenTicket's, for the phase


@dataclass(frozen=True)
class RecordResponse:
    """rule C15: a first response by the desk, not on site: a call back to the customer, or
    a remote session started. It meets the respond-by clock (an acceptance also does)."""

    at: datetime
    kind: ResponseKind
    by: str
    note: str


@dataclass(frozen=True)
class LogDeskWork:
    """Issue 13, desk work (C13, B3): phone or remote work on a request, with or without a
    visit, by a technician or a dispatcher (`worker`: a technician's id, or the desk's
    actor). Billed like on-site work: nothing inside coverage, at the agreement's rates
    outside it, hardware and network by the calendar day (C4)."""

    worker: str
    key: str
    server_time: datetime
    channel: DeskChannel
    kind: WorkKind
    started: datetime
    ended: datetime
    note: str


@dataclass(frozen=True)
class Tick:
    """The clock's turn: announce deadlines now at risk, breached (events, once each)."""

    now: datetime


@dataclass(frozen=True)
class WaitForCustomer:
    """rule D1: the clocks pause while the vendor waits on the customer."""

    at: datetime
    reason: str


@dataclass(frozen=True)
class CustomerResponded:
    at: datetime


@dataclass(frozen=True)
class ResolveRemotely:
    at: datetime
    note: str


@dataclass(frozen=True)
class Escalate:
    """rule D3: phone or remote triage failed; someone must go on site."""

    at: datetime
    reason: str


@dataclass(frozen=True)
class RecordAssignment:
    technician_id: str
    at: datetime
    explanation: Mapping[str, Any]
    at_risk: bool
    by: str
    override_reason: str | None = None


@dataclass(frozen=True)
class Accept:
    """`at` is the server's time; `device_time` the phone's (D5), none from a dispatcher's
    console acting for the technician."""

    technician_id: str
    at: datetime
    device_time: datetime | None = None


@dataclass(frozen=True)
class Decline:
    technician_id: str
    at: datetime
    reason: str


# rule D5: each phone event keeps both times, and `time_source` and `time_flag` (the
# public vocabulary) as `counted_time` decided them once (never recomputed); a log written
# before kept only the server's, so it reads as "server". `counted_at` is the time that counts.


def _counted(source: TimeSource, device_time: datetime | None, server_time: datetime) -> datetime:
    return device_time if source == "device" and device_time is not None else server_time


@dataclass(frozen=True, kw_only=True)
class Report:
    """Anything a technician sends from the phone: an idempotency key, device time."""

    technician_id: str
    key: str
    server_time: datetime
    device_time: datetime


@dataclass(frozen=True, kw_only=True)
class CheckIn(Report):
    position: Position
    accuracy_m: float


@dataclass(frozen=True, kw_only=True)
class CheckOut(Report):
    position: Position
    accuracy_m: float


@dataclass(frozen=True, kw_only=True)
class LogWork(Report):
    kind: WorkKind
    started: datetime
    ended: datetime


@dataclass(frozen=True, kw_only=True)
class RecordExpense(Report):
    kind: ExpenseKind
    amount: Decimal
    receipt_no: str = ""
    receipt_date: str = ""
    nights: int | None = None  # lodging
    note: str = ""


@dataclass(frozen=True)
class Complete:
    """As Accept: the server's time, and the phone's when the phone sent it (D5)."""

    technician_id: str
    at: datetime
    resolution: str
    device_time: datetime | None = None


@dataclass(frozen=True)
class FindCoverage:
    """rules D1, C1: a request opened before its customer's coverage reached dispatch (an
    agreement signed moments before the call) takes the coverage found since, as of when
    the request came in. Only while nothing has come from site: what a technician reported
    was published under the coverage it had, and billing priced it so."""

    at: datetime
    coverage: Coverage
    by: str


Command = (OpenTicket | Tick | WaitForCustomer | CustomerResponded | ResolveRemotely | Escalate | RecordAssignment
           | Accept | Decline | CheckIn | CheckOut | LogWork | RecordExpense | Complete | FindCoverage
           | Reclassify | RecordResponse | LogDeskWork)
# rule D2: the commands whose decision counts working time, and so reads the official
# calendar (set_deadlines, or a resume moving the due times on). Every other command
# decides from due times already stored, so the application refreshes the calendar (a
# read of the log) for these alone, not on every check-in (issue 15: cheap commands).
DECIDES_DUE_TIMES: tuple[type[Command], ...] = (OpenTicket, Reclassify, FindCoverage, CustomerResponded)


# -- events ------------------------------------------------------------------------


@dataclass(frozen=True)
class TicketOpened:
    ticket_id: str
    customer_id: str
    site_id: str
    site: Position
    channel: Channel
    summary: str
    opened_at: datetime
    coverage: Coverage
    skill: str
    deadlines: DeadlinesSet | None = None
    entered_at: datetime | None = None  # a request received earlier than it was entered (D1)
    phase: Phase | None = None  # rule C14
    priority: Priority = "normal"
    product: str = ""
    serial: str = ""


@dataclass(frozen=True)
class Reclassified:
    """The cause, phase or priority corrected, the coverage and deadlines decided again
    from when the request came in (D1), stored as decided; `changes` says what changed,
    field by field, as [before, after]."""

    at: datetime
    by: str
    reason: str
    phase: Phase | None
    priority: Priority
    coverage: Coverage
    deadlines: DeadlinesSet | None
    changes: Mapping[str, Any]


@dataclass(frozen=True)
class Responded:
    """rule C15: a call back or a remote session started (the desk's first response)."""

    at: datetime
    kind: ResponseKind
    by: str
    note: str


@dataclass(frozen=True)
class DeskWorkLogged:
    """Issue 13: phone or remote work on a request (B3 outside coverage, C4 by the day)."""

    worker: str
    key: str
    channel: DeskChannel
    kind: WorkKind
    started: datetime
    ended: datetime
    note: str
    server_time: datetime


@dataclass(frozen=True)
class CoverageFound:
    """The coverage a request opened without an agreement has after all, and the deadlines
    it sets, counted from when the request came in (D1), stored as decided."""

    at: datetime
    coverage: Coverage
    by: str
    deadlines: DeadlinesSet | None = None


@dataclass(frozen=True)
class ClocksPaused:
    at: datetime
    reason: str


@dataclass(frozen=True)
class ClocksResumed:
    """The due times after the wait, stored as decided (never recomputed on replay)."""

    at: datetime
    clocks: tuple[ClockSet, ...]
    provisional: tuple[int, ...] = ()  # D2: years the moved due times were counted in on the regular week


@dataclass(frozen=True)
class ResolvedRemotely:
    at: datetime
    note: str


@dataclass(frozen=True)
class VisitRequested:
    at: datetime
    reason: str


@dataclass(frozen=True)
class VisitAssigned:
    technician_id: str
    at: datetime
    explanation: Mapping[str, Any]
    at_risk: bool
    by: str
    override_reason: str | None


@dataclass(frozen=True)
class VisitAccepted:
    """`at`: the server's time; `device_time`: the phone's, when it sent one (D5)."""

    technician_id: str
    at: datetime
    device_time: datetime | None = None
    time_source: TimeSource = "server"
    time_flag: TimeFlag | None = None

    @property
    def counted_at(self) -> datetime:
        return _counted(self.time_source, self.device_time, self.at)


@dataclass(frozen=True)
class VisitDeclined:
    technician_id: str
    at: datetime
    reason: str


@dataclass(frozen=True)
class CheckedIn:
    """rule D5: accepted near the site; it stops the response clock."""

    technician_id: str
    key: str
    server_time: datetime
    device_time: datetime
    position: Position
    accuracy_m: float
    distance_m: float
    within_geofence: bool
    time_source: TimeSource = "server"
    time_flag: TimeFlag | None = None

    @property
    def counted_at(self) -> datetime:
        return _counted(self.time_source, self.device_time, self.server_time)


@dataclass(frozen=True)
class CheckedOut:
    technician_id: str
    key: str
    server_time: datetime
    device_time: datetime
    position: Position
    accuracy_m: float
    distance_m: float
    time_source: TimeSource = "server"
    time_flag: TimeFlag | None = None

    @property
    def counted_at(self) -> datetime:
        return _counted(self.time_source, self.device_time, self.server_time)


@dataclass(frozen=True)
class WorkLogged:
    """rule D6 (C4: hardware and network days are billed per day)."""

    technician_id: str
    key: str
    kind: WorkKind
    started: datetime
    ended: datetime
    server_time: datetime
    device_time: datetime | None = None  # none in a log written before it was kept
    time_source: TimeSource = "server"
    time_flag: TimeFlag | None = None

    @property
    def counted_at(self) -> datetime:
        return _counted(self.time_source, self.device_time, self.server_time)


@dataclass(frozen=True)
class ExpenseRecorded:
    """rule D6 (C5, B1: borne by the customer, at cost)."""

    technician_id: str
    key: str
    kind: ExpenseKind
    amount: Decimal
    receipt_no: str
    receipt_date: str
    nights: int | None
    note: str
    server_time: datetime
    device_time: datetime | None = None  # none in a log written before it was kept
    time_source: TimeSource = "server"
    time_flag: TimeFlag | None = None

    @property
    def counted_at(self) -> datetime:
        return _counted(self.time_source, self.device_time, self.server_time)


@dataclass(frozen=True)
class VisitCompleted:
    """As VisitAccepted: the server's time, the phone's, and which counts (D5)."""

    technician_id: str
    at: datetime
    resolution: str
    device_time: datetime | None = None
    time_source: TimeSource = "server"
    time_flag: TimeFlag | None = None

    @property
    def counted_at(self) -> datetime:
        return _counted(self.time_source, self.device_time, self.at)


Event = (TicketOpened | ResolvedRemotely | VisitRequested | VisitAssigned | VisitAccepted | VisitDeclined
         | CheckedIn | CheckedOut | WorkLogged | ExpenseRecorded | VisitCompleted | ClocksPaused | ClocksResumed
         | CoverageFound | Reclassified | Responded | DeskWorkLogged | dl.DeadlineAtRisk
         | dl.DeadlineBreached | dl.DeadlineMet)

Status = Literal["none"] | Stage  # none: not opened yet
# Nothing is pending on these: no clock runs, no plan includes them, the lists call them closed.
CLOSED: frozenset[Status] = frozenset({"resolved", "completed"})
OPEN: frozenset[Status] = frozenset({"triage", "awaiting_assignment", "assigned", "accepted", "on_site",
                                     "checked_out"})

# What someone may ask of a request next, named as the API's actions.
Action = TicketAction
# The state machine: the statuses in which each action may be taken (evolve says where
# each event leads). `decide` refuses an action in any other status, unless the action's
# effect already holds (`_already_holds`, issue 13 "idempotent by state": the same
# assignment, acceptance, triage outcome or completion sent again is answered with
# nothing stored); `allowed` hands the same table to the API, so a screen offers only
# what would change something. "report" (the phone's check-ins, work and expenses) and
# "resume" depend on more than the status.
ALLOWS: Mapping[Action, frozenset[Status]] = {
    "escalate": frozenset({"triage"}),
    "resolve_remotely": frozenset({"triage"}),
    "assign": frozenset({"awaiting_assignment", "assigned"}),  # D4, or a dispatcher's override
    "accept": frozenset({"assigned"}),
    "decline": frozenset({"assigned", "accepted"}),
    # Offline phones upload late and out of order: every status after assignment takes reports.
    "report": OPEN | CLOSED,
    "complete": frozenset({"on_site", "checked_out"}),
    "wait": OPEN,
    "resume": OPEN | CLOSED,
    "find_coverage": frozenset({"triage", "awaiting_assignment", "assigned", "accepted"}),
    "reclassify": frozenset({"triage", "awaiting_assignment", "assigned", "accepted"}),
    "respond": OPEN,  # rule C15: a call back or a remote session, whatever else is under way
    # Desk work is logged late too (a call noted after the request closed), like the phone's reports.
    "desk_work": OPEN | CLOSED,
}


# -- state -------------------------------------------------------------------------


@dataclass(frozen=True)
class Ticket:
    status: Status = "none"
    opened: TicketOpened | None = None
    technician_id: str | None = None
    declined_by: frozenset[str] = frozenset()
    keys: frozenset[str] = frozenset()  # idempotency keys of phone reports already applied
    first_check_in: CheckedIn | None = None
    flagged_check_ins: int = 0
    work: tuple[WorkLogged, ...] = ()
    expenses: tuple[ExpenseRecorded, ...] = ()
    deadlines: dl.Deadlines | None = None
    # The latest assignment with its D4 explanation, kept after a decline: what was decided, and why.
    assignment: VisitAssigned | None = None
    completed_at: datetime | None = None
    # Who accepted the current assignment (none since a reassignment or a decline): an
    # acceptance sent again after the check-in finds it still holds (issue 13).
    accepted_by: str | None = None
    # rule C15: when a technician first accepted the visit or the desk first responded
    # (the first response), kept through declines, so coverage found later (D1) counts it
    responded_at: datetime | None = None
    desk_work: tuple[DeskWorkLogged, ...] = ()  # issue 13: phone and remote work
    # rule D5: the events behind the status times, so each shows its clock, both times
    # and any flag: the first acceptance, the last check-out, the completion
    acceptance: VisitAccepted | None = None
    check_out: CheckedOut | None = None
    completion: VisitCompleted | None = None


def allowed(state: Ticket) -> frozenset[Action]:
    """What the request's state lets someone do next; `decide` refuses every other action
    as a conflict, or stores nothing when its effect already holds (an acceptance of an
    accepted visit: not offered, since it would change nothing). Who may do it is another
    question: only the assigned technician accepts, declines, reports and completes
    (`decide` answers forbidden otherwise)."""
    return frozenset(action for action, statuses in ALLOWS.items()
                     if state.status in statuses and _also_allows(state, action))


def _also_allows(state: Ticket, action: Action) -> bool:
    match action:
        case "report":
            return state.technician_id is not None
        case "wait":
            return state.deadlines is None or state.deadlines.paused_at is None
        case "resume":
            return state.deadlines is not None and state.deadlines.paused_at is not None
        case "find_coverage":  # rules D1, C1: nothing yet published under the coverage it has
            return (state.opened is not None and state.opened.coverage.agreement_id is None
                    and _nothing_from_site(state))
        case "reclassify":  # nothing from site yet, and no clock paused (deadlines are decided again)
            return _nothing_from_site(state) and (state.deadlines is None or state.deadlines.paused_at is None)
    return True


def _nothing_from_site(state: Ticket) -> bool:
    return (state.first_check_in is None and state.flagged_check_ins == 0 and not state.work
            and not state.expenses)


def _allows(state: Ticket, action: Action) -> bool:
    return state.status in ALLOWS[action]


# rule D3: only an escalation leads a request out of triage into these; a request in one
# of them has had its triage outcome "escalate" recorded (and keeps it once completed).
ESCALATED: frozenset[Status] = frozenset({"awaiting_assignment", "assigned", "accepted", "on_site", "checked_out",
                                          "completed"})


def _already_holds(command: Command, state: Ticket) -> bool:
    """Issue 13, "idempotent by state": the command asks for what the request already is,
    so it is answered with nothing stored, without an idempotency key. Only the outcome
    counts, not the words sent with it: a second completion with another resolution text,
    a second escalation with another note, or the same technician named with another
    override reason changes nothing recorded. Only who has the visit finds their own
    acceptance or completion there: anyone else is still told it is not theirs
    (forbidden), and every other command keeps its answer (the other triage outcome,
    another technician once accepted, an assignment of a completed visit)."""
    match command:
        case Escalate():
            return state.status in ESCALATED
        case ResolveRemotely():
            return state.status == "resolved"
        case RecordAssignment():
            # The technician still has the visit (a decline would have cleared it) and it
            # is not done: assigned, accepted, on site or checked out (D4's answer stands).
            return state.technician_id == command.technician_id and state.status not in CLOSED
        case Accept():
            # accepted_by is cleared by a reassignment or a decline: it is always the assignee
            return state.accepted_by == command.technician_id and state.status not in CLOSED
        case Complete():
            return state.status == "completed" and state.technician_id == command.technician_id
    return False  # every other command keeps its answer


# The ticket's events as its log names them ("private.<Name>"): what commands store and
# what the board folds, with this module's own `evolve`.
EVENTS = Codec([TicketOpened, ResolvedRemotely, VisitRequested, VisitAssigned, VisitAccepted, VisitDeclined,
                CheckedIn, CheckedOut, WorkLogged, ExpenseRecorded, VisitCompleted, ClocksPaused, ClocksResumed,
                CoverageFound, Reclassified, Responded, DeskWorkLogged, dl.DeadlineAtRisk, dl.DeadlineBreached,
                dl.DeadlineMet],
               prefix="private.")


def geofence_radius(state: Ticket, default_m: float) -> float:
    """rule D5: the agreement's own radius (onsite.geofence_m), else the service's."""
    own = state.opened.coverage.geofence_m if state.opened is not None else None
    return float(own) if own else default_m


def geofence_m(accuracy_m: float, radius_m: float) -> float:
    """How far from the site a check-in may be: the radius, widened by the phone's own
    stated uncertainty (capped, so a wild fix cannot claim to be anywhere)."""
    return radius_m + min(max(accuracy_m, 0.0), radius_m)


def decide(command: Command, state: Ticket, *, geofence_radius_m: float = 500.0) -> list[Event]:
    if _already_holds(command, state):
        # issue 13: asked again for what already holds (one VisitRequested per visit, one
        # VisitAssigned per technician, D3, D4): nothing stored, whatever else was sent.
        return []
    match command:
        case OpenTicket():
            require(state.status == "none", "conflict", "ticket_id", "this ticket already exists",
                    reason="ticket.already_exists")
            require(bool(command.summary.strip()), "missing", "summary", "say what is wrong",
                    reason="ticket.summary_missing")
            command.site.check("site.")
            check_skill(command.skill, "skill")  # D4: the same vocabulary technicians are matched on
            if command.entered_at is not None:
                _check_backdating(command.opened_at, command.entered_at)
            intake.check_channel(command.channel, command.terms)  # rule C13
            intake.check_phase(command.phase, command.terms)  # rule C14
            due = set_deadlines(command.opened_at, command.coverage, command.phase, priority=command.priority,
                                channel=command.channel)
            return [TicketOpened(command.ticket_id, command.customer_id, command.site_id, command.site,
                                 command.channel, command.summary.strip(), command.opened_at, command.coverage,
                                 command.skill, due, command.entered_at, command.phase, command.priority,
                                 command.product.strip(), command.serial.strip())]
        case Reclassify():
            return _reclassify(command, state)
        case RecordResponse():
            _require(state, "respond", "only an open request is responded to", "ticket.respond_not_open")
            require(bool(command.note.strip()), "missing", "note", "say what was done",
                    reason="ticket.response_note_missing")
            # rule C15: a first response; the respond clock stops at the first one only
            return _with_clocks(state, [Responded(command.at, command.kind, command.by, command.note.strip())],
                                command.at)
        case LogDeskWork():
            return _desk_work(command, state)
        case FindCoverage():
            require(state.opened is not None, "not_found", "ticket_id", "no such ticket", reason="ticket.not_found")
            assert state.opened is not None
            require(state.opened.coverage.agreement_id is None, "conflict", "coverage",
                    "the request has its agreement; what it was promised stays (D1)",
                    reason="ticket.coverage_already_found")
            require("find_coverage" in allowed(state), "conflict", "ticket_id",
                    "closed, or reports from site are in: they were published under the coverage they had",
                    reason="ticket.coverage_frozen")
            if command.coverage.agreement_id is None:
                return []  # still none: nothing to record
            due = set_deadlines(state.opened.opened_at, command.coverage, state.opened.phase,
                                priority=state.opened.priority, channel=state.opened.channel)
            return [CoverageFound(command.at, command.coverage, command.by, due)]
        case Tick():
            if state.deadlines is None:
                return []
            return list(dl.evaluate(state.deadlines, command.now))
        case WaitForCustomer():
            require(_allows(state, "wait"), "conflict", "ticket_id", "no open ticket to wait on",
                    reason="ticket.nothing_to_wait_on")
            if state.deadlines is None:
                return [ClocksPaused(command.at, command.reason)]
            state.deadlines.pause(command.at)  # refuses a second pause, or one before the request
            return [ClocksPaused(command.at, command.reason)]
        case CustomerResponded():
            require(state.deadlines is not None, "conflict", "ticket_id", "no deadline is running",
                    reason="ticket.no_deadline_running")
            assert state.deadlines is not None
            resumed = state.deadlines.resume(command.at)
            return [ClocksResumed(command.at, tuple(ClockSet(c.kind, c.allowed, c.due, c.risk_from)
                                                    for c in resumed.clocks), tuple(sorted(resumed.provisional)))]
        case ResolveRemotely():
            _require(state, "resolve_remotely", "only a request in triage is resolved remotely",
                     "ticket.resolve_needs_triage")
            # rules D3, C15: a response and a resolution; the clocks it stops are announced with it
            return _with_clocks(state, [ResolvedRemotely(command.at, command.note)], command.at)
        case Escalate():
            _require(state, "escalate", "only a request in triage is escalated", "ticket.escalate_needs_triage")
            return [VisitRequested(command.at, command.reason)]
        case RecordAssignment():
            require(_allows(state, "assign"), "conflict", "ticket_id", "the visit is not waiting for a technician",
                    reason="ticket.not_waiting_for_technician")
            require(command.technician_id not in state.declined_by, "conflict", "technician_id",
                    "this technician declined the visit", reason="ticket.technician_declined")
            return [VisitAssigned(command.technician_id, command.at, command.explanation, command.at_risk,
                                  command.by, command.override_reason)]
        case Accept():
            return _accept(command, state)
        case Decline():
            _require_assignee(state, command.technician_id)
            require(_allows(state, "decline"), "conflict", "ticket_id", "nothing to decline",
                    reason="ticket.nothing_to_decline")
            require(bool(command.reason.strip()), "missing", "reason", "say why",
                    reason="ticket.decline_reason_missing")
            return [VisitDeclined(command.technician_id, command.at, command.reason)]
        case CheckIn() | CheckOut() | LogWork() | RecordExpense():
            return _with_clocks(state, _report(command, state, geofence_radius_m), command.server_time)
        case Complete():
            return _complete(command, state)
    raise AssertionError(command)


def _accept(command: Accept, state: Ticket) -> list[Event]:
    _require_assignee(state, command.technician_id)
    require(_allows(state, "accept"), "conflict", "ticket_id", "the visit is not awaiting acceptance",
            reason="ticket.not_awaiting_acceptance")
    # rule C15: a technician's acceptance is a first response (the respond clock, if
    # running), stopped when the technician acted: the phone's time if plausible (D5)
    counted = counted_time(command.device_time, command.at, _assigned_at(state, command.technician_id))
    accepted = VisitAccepted(command.technician_id, command.at, command.device_time, counted.source, counted.flag)
    return _with_clocks(state, [accepted], command.at)


def _complete(command: Complete, state: Ticket) -> list[Event]:
    _require_assignee(state, command.technician_id)
    require(_allows(state, "complete"), "conflict", "ticket_id", "a visit is completed after a check-in",
            reason="ticket.complete_needs_check_in")
    counted = counted_time(command.device_time, command.at, _assigned_at(state, command.technician_id))  # D5
    completed = VisitCompleted(command.technician_id, command.at, command.resolution, command.device_time,
                               counted.source, counted.flag)
    return _with_clocks(state, [completed], command.at)


def _with_clocks(state: Ticket, events: list[Event], now: datetime) -> list[Event]:
    """The one way a milestone stops clocks (`Deadlines.stop`, folded by `evolve`): an
    acceptance the response clock (C15), a valid check-in the response and arrival
    clocks (D5), a remote resolution (D3) or a completion all of them. What that decides
    (met, breached) is announced with it, once; a breach already announced stays one."""
    after = state
    for event in events:
        after = evolve(after, event)
    if after.deadlines is None or after.deadlines == state.deadlines:
        return events
    return [*events, *dl.evaluate(after.deadlines, now)]


def _desk_work(command: LogDeskWork, state: Ticket) -> list[Event]:
    """Issue 13: phone or remote work, checked as a phone's work record is (D6), keyed
    for one effect however often it is sent."""
    _require(state, "desk_work", "no such request", "ticket.desk_work_not_allowed")
    require(bool(command.key), "missing", "key", "every work record carries an idempotency key",
            reason="work.key_missing")
    if command.key in state.keys:
        return []
    _check_span(command.started, command.ended)
    require(command.ended <= command.server_time + DESK_CLOCK_TOLERANCE, "invalid", "ended",
            "work is logged once done, not ahead", reason="work.ended_in_future")
    assert state.opened is not None
    require(command.started >= state.opened.opened_at - DESK_CLOCK_TOLERANCE, "invalid", "started",
            "work on a request starts after the request came in", reason="work.started_before_request")
    return [DeskWorkLogged(command.worker, command.key, command.channel, command.kind, command.started,
                           command.ended, command.note.strip(), command.server_time)]


def _check_span(started: datetime, ended: datetime) -> None:
    """rule D6: a work record, on site or from the desk, spans a positive time, a month at most."""
    require(ended > started, "invalid", "ended", "work ends after it starts",
            reason="work.ends_before_start")
    require(ended - started <= timedelta(days=31), "invalid", "ended", "one record covers at most a month",
            reason="work.longer_than_a_month")


def _reclassify(command: Reclassify, state: Ticket) -> list[Event]:
    """Issue 13: the coverage and deadlines judged again for the corrected cause, phase or
    priority, from when the request came in (D1); nothing stored when nothing changes."""
    require(state.opened is not None, "not_found", "ticket_id", "no such ticket", reason="ticket.not_found")
    assert state.opened is not None
    require("reclassify" in allowed(state), "conflict", "ticket_id",
            "closed, paused, or reports from site are in: they were billed under the coverage they had; "
            "the billing clerk corrects money with a credit note", reason="ticket.reclassify_not_allowed")
    require(bool(command.reason.strip()), "missing", "reason", "say why the request is reclassified",
            reason="ticket.reclassify_reason_missing")
    intake.check_phase(command.phase, command.terms)  # rule C14
    opened = state.opened
    before = {"cause": opened.coverage.judged_cause, "phase": opened.phase,
              "priority": opened.priority}
    after = {"cause": command.cause, "phase": command.phase, "priority": command.priority}
    if before == after:
        return []  # idempotent by state: it already is what is asked
    due = set_deadlines(opened.opened_at, command.coverage, command.phase, priority=command.priority,
                        channel=opened.channel)
    changes: dict[str, Any] = {name: [before[name], after[name]] for name in before if before[name] != after[name]}
    if command.coverage.verdict != opened.coverage.verdict:
        changes["verdict"] = [opened.coverage.verdict, command.coverage.verdict]
    if command.coverage.clauses != opened.coverage.clauses:
        changes["clauses"] = [list(opened.coverage.clauses), list(command.coverage.clauses)]
    old_due = {c.kind: c.due.isoformat() for c in (opened.deadlines.clocks if opened.deadlines else ())}
    new_due = {c.kind: c.due.isoformat() for c in (due.clocks if due else ())}
    if old_due != new_due:
        changes["due"] = [old_due, new_due]
    event = Reclassified(command.at, command.by, command.reason.strip(), command.phase, command.priority,
                         command.coverage, due, changes)
    return _with_clocks(state, [event], command.at)


def _check_backdating(received_at: datetime, entered_at: datetime) -> None:
    """rule D1: deadlines count from when the request was received, within limits."""
    require(received_at <= entered_at, "invalid", "received_at", "a request is not received in the future",
            reason="ticket.received_in_future")
    require(entered_at - received_at <= BACKDATE_LIMIT, "invalid", "received_at",
            f"at most {BACKDATE_LIMIT.days} days ago; an older request is opened as of now",
            reason="ticket.received_too_long_ago", values={"days": BACKDATE_LIMIT.days})


def _require(state: Ticket, action: Action, message: str, reason: str) -> None:
    require(state.status != "none", "not_found", "ticket_id", "no such ticket", reason="ticket.not_found")
    require(_allows(state, action), "conflict", "ticket_id", message, reason=reason)


def _require_assignee(state: Ticket, technician_id: str) -> None:
    require(state.status != "none", "not_found", "ticket_id", "no such visit", reason="ticket.not_found")
    if state.technician_id != technician_id:
        raise Rejected("forbidden", "technician_id", "the visit is not assigned to this technician",
                       reason="ticket.not_assigned_to_technician")


@dataclass(frozen=True)
class Counted:
    """rule D5: the time a phone's action counts at, the clock it comes from, and why the
    phone's was not believed (None: it was)."""

    at: datetime
    source: TimeSource
    flag: TimeFlag | None = None


def counted_time(device_time: datetime | None, server_time: datetime, assigned_at: datetime | None) -> Counted:
    """rule D5: the phone's time (the server's at its last sync plus its monotonic clock
    since) counts when it is plausible: not after the upload reached the server
    (`server_time`) and not before the visit reached the phone (`assigned_at`, when the
    visit was assigned to this technician). Otherwise the server's time counts and the
    action is flagged with the reason; it is recorded, never refused. No device time (a
    dispatcher's console acting for the technician): the server's, unflagged."""
    if device_time is None:
        return Counted(server_time, "server")
    if device_time > server_time:
        return Counted(server_time, "server", "future")
    if assigned_at is not None and device_time < assigned_at:
        return Counted(server_time, "server", "before_assignment")
    return Counted(device_time, "device")


def _assigned_at(state: Ticket, technician_id: str) -> datetime | None:
    """rule D5's lower bound: the VisitAssigned that gave this technician the visit (the
    latest assignment: only its technician accepts, reports and completes). Without one,
    the request's own time, before which nothing counts."""
    if state.assignment is not None and state.assignment.technician_id == technician_id:
        return state.assignment.at
    return state.opened.opened_at if state.opened is not None else None


def _report(command: CheckIn | CheckOut | LogWork | RecordExpense, state: Ticket, radius_m: float) -> list[Event]:
    """rule D5: duplicates and late offline uploads have exactly one effect; each counts
    at the time `counted_time` decides, stored with the event (evolve never recomputes it)."""
    _require_assignee(state, command.technician_id)
    require(bool(command.key), "missing", "key", "every phone report carries an idempotency key",
            reason="report.key_missing")
    if command.key in state.keys:
        return []
    # Offline phones upload late and out of order (a check-out before its check-in, an
    # expense after completion): every state after assignment takes them. A device time
    # out of bounds is recorded and flagged, not refused (D5).
    counted = counted_time(command.device_time, command.server_time, _assigned_at(state, command.technician_id))
    assert state.opened is not None
    match command:
        case CheckIn():
            command.position.check()
            meters = distance_km(command.position, state.opened.site) * 1000
            return [CheckedIn(command.technician_id, command.key, command.server_time, command.device_time,
                              command.position, command.accuracy_m, round(meters, 1),
                              meters <= geofence_m(command.accuracy_m, radius_m), counted.source, counted.flag)]
        case CheckOut():
            command.position.check()
            meters = distance_km(command.position, state.opened.site) * 1000
            return [CheckedOut(command.technician_id, command.key, command.server_time, command.device_time,
                               command.position, command.accuracy_m, round(meters, 1), counted.source, counted.flag)]
        case LogWork():
            _check_span(command.started, command.ended)
            return [WorkLogged(command.technician_id, command.key, command.kind, command.started, command.ended,
                               command.server_time, command.device_time, counted.source, counted.flag)]
        case RecordExpense():
            require(command.amount > 0, "invalid", "amount", "a positive amount of yuan",
                    reason="expense.amount_not_positive")
            require(command.amount == command.amount.quantize(Decimal("0.01")), "invalid", "amount",
                    "yuan to the fen at most", reason="expense.amount_below_fen")
            if command.kind == "lodging":
                require(command.nights is not None and command.nights > 0, "missing", "nights",
                        "lodging is recorded by the night", reason="expense.nights_missing")
            return [ExpenseRecorded(command.technician_id, command.key, command.kind, command.amount,
                                    command.receipt_no, command.receipt_date, command.nights, command.note,
                                    command.server_time, command.device_time, counted.source, counted.flag)]
    raise AssertionError(command)


def _redecided(state: Ticket, stored: DeadlinesSet | None) -> dl.Deadlines | None:
    """Deadlines decided again (coverage found, a reclassification), as stored; rule C15:
    an acceptance before them was the first response."""
    found = stored.rebuild() if stored else None
    if found is not None and state.responded_at is not None:
        found = found.stop("responded", state.responded_at)
    return found


def evolve(state: Ticket, event: Event) -> Ticket:
    match event:
        case TicketOpened():
            return Ticket(status="triage", opened=event,
                          deadlines=event.deadlines.rebuild() if event.deadlines else None)
        case dl.DeadlineAtRisk() | dl.DeadlineBreached() | dl.DeadlineMet():
            assert state.deadlines is not None
            return replace(state, deadlines=dl.evolve(state.deadlines, event))
        case ClocksPaused():
            return replace(state, deadlines=state.deadlines.pause(event.at) if state.deadlines else None)
        case ClocksResumed():
            assert state.deadlines is not None
            resumed = state.deadlines.resume(event.at)
            stored = {c.kind: c for c in event.clocks}
            clocks = tuple(replace(c, due=stored[c.kind].due, risk_from=stored[c.kind].risk_from)
                           for c in resumed.clocks)
            # as decided: a calendar entered since does not change what was stored
            provisional = state.deadlines.provisional | frozenset(event.provisional)
            return replace(state, deadlines=replace(resumed, clocks=clocks, provisional=provisional))
        case CoverageFound():
            assert state.opened is not None
            opened = replace(state.opened, coverage=event.coverage, deadlines=event.deadlines)
            return replace(state, opened=opened, deadlines=_redecided(state, event.deadlines))
        case Responded():
            stopped = state.deadlines.stop("responded", event.at) if state.deadlines else None
            return replace(state, deadlines=stopped, responded_at=min(state.responded_at or event.at, event.at))
        case DeskWorkLogged():
            return replace(state, keys=state.keys | {event.key}, desk_work=(*state.desk_work, event))
        case Reclassified():
            assert state.opened is not None
            opened = replace(state.opened, coverage=event.coverage, deadlines=event.deadlines, phase=event.phase,
                             priority=event.priority)
            return replace(state, opened=opened, deadlines=_redecided(state, event.deadlines))
        case ResolvedRemotely():
            # rules D3, C15: resolved by phone or remote session, so responded too
            stopped = state.deadlines.stop("resolved", event.at) if state.deadlines else None
            return replace(state, status="resolved", deadlines=stopped)
        case VisitRequested():
            return replace(state, status="awaiting_assignment")
        case VisitAssigned():
            return replace(state, status="assigned", technician_id=event.technician_id, assignment=event,
                           accepted_by=None)
        case VisitAccepted():
            # rule C15: the first response (a later acceptance, after a decline, changes nothing),
            # at the time decide counted (D5)
            at = event.counted_at
            stopped = state.deadlines.stop("responded", at) if state.deadlines else None
            responded = min(state.responded_at or at, at)
            earliest = state.acceptance if state.acceptance is not None and state.acceptance.counted_at <= at \
                else event
            return replace(state, status="accepted", accepted_by=event.technician_id, deadlines=stopped,
                           responded_at=responded, acceptance=earliest)
        case VisitDeclined():
            return replace(state, status="awaiting_assignment", technician_id=None, accepted_by=None,
                           declined_by=state.declined_by | {event.technician_id})
        case CheckedIn():
            keys = state.keys | {event.key}
            if not event.within_geofence:
                # Recorded and flagged, never lost; it does not stop the clock.
                return replace(state, keys=keys, flagged_check_ins=state.flagged_check_ins + 1)
            # rule D5: the clocks stop when the technician acted, as decide counted it (the
            # phone's time when plausible): an earlier check-in uploaded late comes first
            first = state.first_check_in
            if first is None or event.counted_at < first.counted_at:
                first = event
            status: Status = "on_site" if state.status in ("assigned", "accepted") else state.status
            stopped = state.deadlines.stop("arrived", event.counted_at) if state.deadlines else None
            return replace(state, keys=keys, first_check_in=first, status=status, deadlines=stopped)
        case CheckedOut():
            status = "checked_out" if state.status == "on_site" else state.status
            last = state.check_out if state.check_out is not None and state.check_out.counted_at > event.counted_at \
                else event
            return replace(state, keys=state.keys | {event.key}, status=status, check_out=last)
        case WorkLogged():
            return replace(state, keys=state.keys | {event.key}, work=(*state.work, event))
        case ExpenseRecorded():
            return replace(state, keys=state.keys | {event.key}, expenses=(*state.expenses, event))
        case VisitCompleted():
            stopped = state.deadlines.stop("resolved", event.counted_at) if state.deadlines else None
            return replace(state, status="completed", deadlines=stopped, completed_at=event.counted_at,
                           completion=event)
    raise AssertionError(event)
