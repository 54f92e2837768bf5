"""A service request from any channel, and the on-site visit it may become.

Triage comes first (rules C13, D3): a request is resolved remotely or escalated to a
visit. A visit is assigned (D4, decided elsewhere and recorded here with its
explanation), accepted or declined, checked into and out of from a phone (D5), and
records work time and expenses (D6). Times, ids and positions come in with commands;
the server's time decides deadlines, the device's time is kept for audit (D5)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from weibao.dispatch.domain import deadlines as dl
from weibao.dispatch.domain.skills import check_skill
from weibao.dispatch.domain.sla import ServiceHours, sla_from_terms
from weibao.shared.codec import Codec
from weibao.shared.errors import Rejected, require
from weibao.shared.geo import distance_km
from weibao.shared.public.dispatch import Channel, ExpenseKind, WorkKind

# A phone may be offline for hours, but its clock must not be ahead of ours by more.
DEVICE_CLOCK_TOLERANCE = timedelta(minutes=10)
# rule D1: a call taken on paper and entered later still counts from when it came in,
# but a week back at most: older, it is a record to file, not a request to dispatch,
# and an open door to backdating every deadline.
BACKDATE_LIMIT = timedelta(days=7)


@dataclass(frozen=True)
class Position:
    latitude: float
    longitude: float

    def check(self, field_prefix: str = "") -> None:
        require(-90 <= self.latitude <= 90, "invalid", f"{field_prefix}latitude", "between -90 and 90")
        require(-180 <= self.longitude <= 180, "invalid", f"{field_prefix}longitude", "between -180 and 180")


@dataclass(frozen=True)
class Coverage:
    """What contracts said, as of the request (from its CoverageGranted messages)."""

    agreement_id: str | None
    verdict: Literal["covered", "billable", "excluded"]
    clauses: tuple[str, ...]
    local: bool
    onsite: Mapping[str, Any] = field(default_factory=dict)  # the agreement's SLA terms


@dataclass(frozen=True)
class ClockSet:
    kind: dl.Kind
    allowed: timedelta
    due: datetime
    risk_from: datetime


@dataclass(frozen=True)
class DeadlinesSet:
    """rule D1/D2: the due times, fixed when the request came in. Stored, not recomputed,
    so a later calendar update cannot change what a past request was promised."""

    requested_at: datetime
    calendar: Literal["clock", "working"]
    service_hours: ServiceHours | None
    clocks: tuple[ClockSet, ...]
    clauses: tuple[str, ...]
    provisional: tuple[int, ...] = ()  # D2: years counted on the regular week, their calendar unknown

    def rebuild(self) -> dl.Deadlines:
        timeline = dl.Timeline(self.calendar, self.service_hours)
        return dl.Deadlines(self.requested_at, timeline,
                            tuple(dl.Clock(c.kind, c.allowed, c.due, c.risk_from) for c in self.clocks),
                            provisional=frozenset(self.provisional))


def set_deadlines(opened_at: datetime, coverage: Coverage, phase: Literal["parallel_run", "cutover"] | None
                  ) -> DeadlinesSet | None:
    """No deadline without an SLA, or for work outside coverage (C1, C17)."""
    if coverage.verdict != "covered" or not coverage.onsite:
        return None
    sla = sla_from_terms(coverage.onsite, local=coverage.local, phase=phase)
    if not sla.sets_deadlines:
        return None
    started = dl.Deadlines.start(opened_at, sla)
    return DeadlinesSet(opened_at, sla.calendar, sla.service_hours,
                        tuple(ClockSet(c.kind, c.allowed, c.due, c.risk_from) for c in started.clocks), sla.clauses,
                        tuple(sorted(started.provisional)))


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
    phase: Literal["parallel_run", "cutover"] | None = None  # rule C14
    entered_at: datetime | None = None  # set when entered later than received (`opened_at`)


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
    technician_id: str
    at: datetime


@dataclass(frozen=True)
class Decline:
    technician_id: str
    at: datetime
    reason: str


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
    technician_id: str
    at: datetime
    resolution: str


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
           | Accept | Decline | CheckIn | CheckOut | LogWork | RecordExpense | Complete | FindCoverage)


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
    technician_id: str
    at: datetime


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


@dataclass(frozen=True)
class CheckedOut:
    technician_id: str
    key: str
    server_time: datetime
    device_time: datetime
    position: Position
    accuracy_m: float
    distance_m: float


@dataclass(frozen=True)
class WorkLogged:
    """rule D6 (C4: hardware and network days are billed per day)."""

    technician_id: str
    key: str
    kind: WorkKind
    started: datetime
    ended: datetime
    server_time: datetime


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


@dataclass(frozen=True)
class VisitCompleted:
    technician_id: str
    at: datetime
    resolution: str


Event = (TicketOpened | ResolvedRemotely | VisitRequested | VisitAssigned | VisitAccepted | VisitDeclined
         | CheckedIn | CheckedOut | WorkLogged | ExpenseRecorded | VisitCompleted | ClocksPaused | ClocksResumed
         | CoverageFound | dl.DeadlineAtRisk
         | dl.DeadlineBreached | dl.DeadlineMet)

Status = Literal["none", "triage", "resolved", "awaiting_assignment", "assigned", "accepted", "on_site",
                 "checked_out", "completed"]
# Nothing is pending on these: no clock runs, no plan includes them, the lists call them closed.
CLOSED: frozenset[Status] = frozenset({"resolved", "completed"})
OPEN: frozenset[Status] = frozenset({"triage", "awaiting_assignment", "assigned", "accepted", "on_site",
                                     "checked_out"})

# What someone may ask of a request next, named as the API's actions.
Action = Literal["escalate", "resolve_remotely", "assign", "accept", "decline", "report", "complete", "wait",
                 "resume", "find_coverage"]
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
    # rule C15: when a technician first accepted the visit (the first response), kept
    # through declines, so coverage found later (D1) counts it
    responded_at: datetime | None = None


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
                    and state.first_check_in is None and state.flagged_check_ins == 0 and not state.work
                    and not state.expenses)
    return True


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
                CoverageFound, dl.DeadlineAtRisk, dl.DeadlineBreached, dl.DeadlineMet], prefix="private.")


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
            require(state.status == "none", "conflict", "ticket_id", "this ticket already exists")
            require(bool(command.summary.strip()), "missing", "summary", "say what is wrong")
            command.site.check("site.")
            check_skill(command.skill, "skill")  # D4: the same vocabulary technicians are matched on
            if command.entered_at is not None:
                _check_backdating(command.opened_at, command.entered_at)
            due = set_deadlines(command.opened_at, command.coverage, command.phase)
            return [TicketOpened(command.ticket_id, command.customer_id, command.site_id, command.site,
                                 command.channel, command.summary.strip(), command.opened_at, command.coverage,
                                 command.skill, due, command.entered_at)]
        case FindCoverage():
            require(state.opened is not None, "not_found", "ticket_id", "no such ticket")
            assert state.opened is not None
            require(state.opened.coverage.agreement_id is None, "conflict", "coverage",
                    "the request has its agreement; what it was promised stays (D1)")
            require("find_coverage" in allowed(state), "conflict", "ticket_id",
                    "closed, or reports from site are in: they were published under the coverage they had")
            if command.coverage.agreement_id is None:
                return []  # still none: nothing to record
            due = set_deadlines(state.opened.opened_at, command.coverage, None)
            return [CoverageFound(command.at, command.coverage, command.by, due)]
        case Tick():
            if state.deadlines is None:
                return []
            return list(dl.evaluate(state.deadlines, command.now))
        case WaitForCustomer():
            require(_allows(state, "wait"), "conflict", "ticket_id", "no open ticket to wait on")
            if state.deadlines is None:
                return [ClocksPaused(command.at, command.reason)]
            state.deadlines.pause(command.at)  # refuses a second pause, or one before the request
            return [ClocksPaused(command.at, command.reason)]
        case CustomerResponded():
            require(state.deadlines is not None, "conflict", "ticket_id", "no deadline is running")
            assert state.deadlines is not None
            resumed = state.deadlines.resume(command.at)
            return [ClocksResumed(command.at, tuple(ClockSet(c.kind, c.allowed, c.due, c.risk_from)
                                                    for c in resumed.clocks), tuple(sorted(resumed.provisional)))]
        case ResolveRemotely():
            _require(state, "resolve_remotely", "only a request in triage is resolved remotely")
            # rules D3, C15: a response and a resolution; the clocks it stops are announced with it
            return _with_clocks(state, [ResolvedRemotely(command.at, command.note)], command.at)
        case Escalate():
            _require(state, "escalate", "only a request in triage is escalated")
            return [VisitRequested(command.at, command.reason)]
        case RecordAssignment():
            require(_allows(state, "assign"), "conflict", "ticket_id", "the visit is not waiting for a technician")
            require(command.technician_id not in state.declined_by, "conflict", "technician_id",
                    "this technician declined the visit")
            return [VisitAssigned(command.technician_id, command.at, command.explanation, command.at_risk,
                                  command.by, command.override_reason)]
        case Accept():
            _require_assignee(state, command.technician_id)
            require(_allows(state, "accept"), "conflict", "ticket_id", "the visit is not awaiting acceptance")
            # rule C15: a technician's acceptance is a first response (the respond clock, if running)
            return _with_clocks(state, [VisitAccepted(command.technician_id, command.at)], command.at)
        case Decline():
            _require_assignee(state, command.technician_id)
            require(_allows(state, "decline"), "conflict", "ticket_id", "nothing to decline")
            require(bool(command.reason.strip()), "missing", "reason", "say why")
            return [VisitDeclined(command.technician_id, command.at, command.reason)]
        case CheckIn() | CheckOut() | LogWork() | RecordExpense():
            return _with_clocks(state, _report(command, state, geofence_radius_m), command.server_time)
        case Complete():
            _require_assignee(state, command.technician_id)
            require(_allows(state, "complete"), "conflict", "ticket_id", "a visit is completed after a check-in")
            return _with_clocks(state, [VisitCompleted(command.technician_id, command.at, command.resolution)],
                                command.at)
    raise AssertionError(command)


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


def _check_backdating(received_at: datetime, entered_at: datetime) -> None:
    """rule D1: deadlines count from when the request was received, within limits."""
    require(received_at <= entered_at, "invalid", "received_at", "a request is not received in the future")
    require(entered_at - received_at <= BACKDATE_LIMIT, "invalid", "received_at",
            f"at most {BACKDATE_LIMIT.days} days ago; an older request is opened as of now")


def _require(state: Ticket, action: Action, message: str) -> None:
    require(state.status != "none", "not_found", "ticket_id", "no such ticket")
    require(_allows(state, action), "conflict", "ticket_id", message)


def _require_assignee(state: Ticket, technician_id: str) -> None:
    require(state.status != "none", "not_found", "ticket_id", "no such visit")
    if state.technician_id != technician_id:
        raise Rejected("forbidden", "technician_id", "the visit is not assigned to this technician")


def _report(command: CheckIn | CheckOut | LogWork | RecordExpense, state: Ticket, radius_m: float) -> list[Event]:
    """rule D5: duplicates and late offline uploads have exactly one effect."""
    _require_assignee(state, command.technician_id)
    require(bool(command.key), "missing", "key", "every phone report carries an idempotency key")
    if command.key in state.keys:
        return []
    # Offline phones upload late and out of order (a check-out before its check-in, an
    # expense after completion): every state after assignment takes them.
    require(command.device_time <= command.server_time + DEVICE_CLOCK_TOLERANCE, "invalid", "device_time",
            "the phone's clock is ahead of the server's")
    assert state.opened is not None
    match command:
        case CheckIn():
            command.position.check()
            meters = distance_km(command.position, state.opened.site) * 1000
            return [CheckedIn(command.technician_id, command.key, command.server_time, command.device_time,
                              command.position, command.accuracy_m, round(meters, 1),
                              meters <= geofence_m(command.accuracy_m, radius_m))]
        case CheckOut():
            command.position.check()
            meters = distance_km(command.position, state.opened.site) * 1000
            return [CheckedOut(command.technician_id, command.key, command.server_time, command.device_time,
                               command.position, command.accuracy_m, round(meters, 1))]
        case LogWork():
            require(command.ended > command.started, "invalid", "ended", "work ends after it starts")
            require(command.ended - command.started <= timedelta(days=31), "invalid", "ended",
                    "one record covers at most a month")
            return [WorkLogged(command.technician_id, command.key, command.kind, command.started, command.ended,
                               command.server_time)]
        case RecordExpense():
            require(command.amount > 0, "invalid", "amount", "a positive amount of yuan")
            require(command.amount == command.amount.quantize(Decimal("0.01")), "invalid", "amount",
                    "yuan to the fen at most")
            if command.kind == "lodging":
                require(command.nights is not None and command.nights > 0, "missing", "nights",
                        "lodging is recorded by the night")
            return [ExpenseRecorded(command.technician_id, command.key, command.kind, command.amount,
                                    command.receipt_no, command.receipt_date, command.nights, command.note,
                                    command.server_time)]
    raise AssertionError(command)


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
            found = event.deadlines.rebuild() if event.deadlines else None
            if found is not None and state.responded_at is not None:
                # rule C15: an acceptance before the coverage was found was the first response
                found = found.stop("responded", state.responded_at)
            return replace(state, opened=opened, deadlines=found)
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
            # rule C15: the first response (a later acceptance, after a decline, changes nothing)
            stopped = state.deadlines.stop("responded", event.at) if state.deadlines else None
            responded = min(state.responded_at or event.at, event.at)
            return replace(state, status="accepted", accepted_by=event.technician_id, deadlines=stopped,
                           responded_at=responded)
        case VisitDeclined():
            return replace(state, status="awaiting_assignment", technician_id=None, accepted_by=None,
                           declined_by=state.declined_by | {event.technician_id})
        case CheckedIn():
            keys = state.keys | {event.key}
            if not event.within_geofence:
                # Recorded and flagged, never lost; it does not stop the clock.
                return replace(state, keys=keys, flagged_check_ins=state.flagged_check_ins + 1)
            first = state.first_check_in
            if first is None or event.server_time < first.server_time:
                first = event
            status: Status = "on_site" if state.status in ("assigned", "accepted") else state.status
            stopped = state.deadlines.stop("arrived", event.server_time) if state.deadlines else None
            return replace(state, keys=keys, first_check_in=first, status=status, deadlines=stopped)
        case CheckedOut():
            status = "checked_out" if state.status == "on_site" else state.status
            return replace(state, keys=state.keys | {event.key}, status=status)
        case WorkLogged():
            return replace(state, keys=state.keys | {event.key}, work=(*state.work, event))
        case ExpenseRecorded():
            return replace(state, keys=state.keys | {event.key}, expenses=(*state.expenses, event))
        case VisitCompleted():
            stopped = state.deadlines.stop("resolved", event.at) if state.deadlines else None
            return replace(state, status="completed", deadlines=stopped, completed_at=event.at)
    raise AssertionError(event)
