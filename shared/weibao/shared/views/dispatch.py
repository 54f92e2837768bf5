"""What the dispatch service's queries answer (issue 12, item 4): requests and visits,
their deadlines (D1, D2), the assignment's explanation (D4), the phone's times (D5),
the deadline preview, today's plan and the technicians.

Times are ISO 8601 text with their UTC offset, as the service writes them (dates
`YYYY-MM-DD`, times of day `HH:MM` or `HH:MM:SS`); durations recorded with a due time
are ISO 8601 durations (`PT4H`). A field that an older record may lack (the log keeps
what was decided then) has a default: the gateway answers it only when the service
sent it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from weibao.shared.public.dispatch import (
    Announcement,
    AssignmentRule,
    CalendarKind,
    Cause,
    Channel,
    ClockKind,
    ClockStatus,
    DeskChannel,
    ExpenseKind,
    Ineligible,
    Phase,
    Priority,
    Stage,
    TicketAction,
    TimeFlag,
    TimeSource,
    TravelMode,
    WorkKind,
)
from weibao.shared.views import Listing, Stored, View

Action = TicketAction  # what may be asked of a request next (the screens offer only these)
Verdict = Literal["covered", "billable", "excluded"]  # what contracts said of the request (C1)
Calendar = CalendarKind  # rule D2: every hour counts, or working time only
Rule = AssignmentRule  # which branch of rule D4 chose the technician
Mode = TravelMode


class Position(View):
    latitude: float = Field(description="degrees north (WGS-84)")
    longitude: float = Field(description="degrees east (WGS-84)")


# -- the agreement's on-site terms, as the coverage carries them ------------------------


class Targets(View):
    respond_hours: int | None = Field(default=None, description="respond within this many hours")
    arrive_hours: int | None = Field(default=None, description="be on site within this many hours")
    resolve_hours: int | None = Field(default=None, description="resolve within this many hours")


class PriorityTargets(View):
    urgent: Targets | None = Field(default=None, description="the targets of an urgent request")
    high: Targets | None = Field(default=None, description="the targets of a high-priority request")
    normal: Targets | None = Field(default=None, description="the targets of a normal request")
    low: Targets | None = Field(default=None, description="the targets of a low-priority request")


class Onsite(View):
    """The agreement's on-site service terms (C9, C14, C15, C16, C20, D2, D5); none
    without an agreement."""

    kind: Literal["local_or_out_of_town", "by_phase", "respond_resolve", "by_arrangement"] | None = Field(
        default=None, description="which kind of on-site deadline the agreement sets")
    local_hours: int | None = Field(default=None, description="on site within this many hours, locally (C9)")
    out_of_town_days: int | None = Field(default=None, description="on site within this many days, out of town (C9)")
    local_radius_km: float | None = Field(default=None, description="a site this close to the office is local")
    parallel_run_days: int | None = Field(default=None, description="on site within this many days, parallel run (C14)")
    cutover_days: int | None = Field(default=None, description="on site within this many days after cutover (C14)")
    respond_hours: int | None = Field(default=None, description="respond within this many hours (C15)")
    resolve_hours: int | None = Field(default=None, description="resolve within this many hours (C15)")
    phone_support_24h: bool | None = Field(default=None, description="phone requests answered around the clock (C16)")
    service_hours: list[str] | None = Field(default=None, description="the desk's opening and closing, HH:MM (C20)")
    calendar: Calendar | None = Field(default=None, description="how the deadlines count time (D2)")
    service_days: list[int] | None = Field(default=None, description="the ISO weekdays served, 1 = Monday (C20)")
    geofence_m: int | None = Field(default=None, description="check-in radius in metres (D5); null: the default")
    priority_targets: PriorityTargets | None = Field(default=None, description="targets by priority (issue 13)")


class Coverage(View):
    agreement_id: str | None = Field(description="the agreement covering the request; null: none found")
    verdict: Verdict = Field(description="covered, billable or excluded (C1)")
    clauses: list[str] = Field(description="the rules the verdict rests on")
    local: bool = Field(description="the site counts as local for the deadlines (C9)")
    onsite: Onsite = Field(description="the agreement's on-site terms")
    cause: Cause | None = Field(default=None, description="the cause it was judged for; null: logged before causes")
    reason: str = Field(default="", description="why, in words")
    penalty: bool = Field(default=True, description="a breach carries a penalty (not for C17 causes)")
    geofence_m: float | None = Field(default=None, description="the agreement's check-in radius in metres (D5)")


# -- deadlines ---------------------------------------------------------------------------


class ClockSet(View):
    kind: ClockKind = Field(description="respond, arrive or resolve")
    allowed: str = Field(description="the time allowed, an ISO 8601 duration (`PT4H`)")
    due: str = Field(description="when it falls due")
    risk_from: str = Field(description="from when it is at risk")
    around_the_clock: bool = Field(default=False, description="counted on the clock calendar (C16)")


class DeadlinesSet(View):
    """The due times as fixed when the request came in (D1, D2)."""

    requested_at: str = Field(description="when the request came in")
    calendar: Calendar = Field(description="how time counts (D2)")
    service_hours: list[str] | None = Field(description="the service window, HH:MM:SS (C20); null: the default")
    clocks: list[ClockSet] = Field(description="the clocks set")
    clauses: list[str] = Field(description="the rules that set them")
    provisional: list[int] = Field(default_factory=list, description="years counted on the regular week (D2)")
    service_days: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5],
                                    description="the ISO weekdays served (C20)")
    by_priority: list[ClockKind] = Field(default_factory=list, description="clocks the priority's targets set")


class Clock(View):
    kind: ClockKind = Field(description="respond, arrive or resolve")
    allowed_seconds: float = Field(description="the time allowed, in seconds of its calendar")
    due: str = Field(description="when it falls due")
    risk_from: str = Field(description="from when it is at risk")
    stopped_at: str | None = Field(description="when a response, check-in or completion stopped it; null: running")
    met: bool | None = Field(description="stopped in time; null: still running")
    status: ClockStatus = Field(description="on track, at risk, breached or met, at the instant asked about")
    announced: list[Announcement] = Field(description="what was announced of it (once each)")


class Deadlines(View):
    """The clocks' standing at the instant asked about (D1, D2)."""

    requested_at: str = Field(description="when the request came in")
    calendar: Calendar = Field(description="how time counts (D2)")
    provisional_years: list[int] = Field(description="years counted on the regular week, their calendar unknown")
    service_hours: list[str] | None = Field(description="the service window, HH:MM (C20); null: the default")
    paused_at: str | None = Field(description="waiting on the customer since; null: not paused")
    paused_total_seconds: float = Field(description="time paused so far, in seconds")
    status: ClockStatus = Field(description="the worst of the clocks")
    clocks: list[Clock] = Field(description="each clock")


# -- the request's record ------------------------------------------------------------------


class Opened(View):
    """The request as it came in (C13, issue 13)."""

    ticket_id: str = Field(description="the request")
    customer_id: str = Field(description="whose it is")
    site_id: str = Field(description="where")
    site: Position = Field(description="the site's position")
    channel: Channel = Field(description="how it came in (C13)")
    summary: str = Field(description="what the customer said")
    opened_at: str = Field(description="when it came in (D1: the deadlines count from here)")
    coverage: Coverage = Field(description="what contracts said of it")
    skill: str = Field(description="the skill a visit needs (D4)")
    deadlines: DeadlinesSet | None = Field(default=None, description="the due times fixed; null: none owed")
    entered_at: str | None = Field(default=None, description="when it was entered, if later than it came in")
    phase: Phase | None = Field(default=None, description="the customer's phase (C14)")
    priority: Priority = Field(default="normal", description="orders the work")
    product: str = Field(default="", description="the product or device concerned")
    serial: str = Field(default="", description="its serial number")


class Considered(View):
    """One technician weighed for the visit (D4)."""

    technician_id: str = Field(description="who")
    distance_km: float = Field(description="how far from the site")
    mode: Mode = Field(description="how they would travel")
    travel_minutes: float = Field(description="how long the journey takes")
    departs: str = Field(description="when they could set off")
    arrives: str = Field(description="when they would arrive")
    eligible: bool = Field(description="whether the rule could send them")
    why_not: list[Ineligible] = Field(description="why not; empty when eligible")
    can_make_deadline: bool = Field(description="they would arrive by the deadline (or there is none)")


class Excluded(View):
    technician_id: str = Field(description="who could not be weighed")
    reason: str = Field(description="why, in words")


class Facts(View):
    """Why the winner won, as data (issue 16)."""

    winner: str | None = Field(description="the rule's choice; null: nobody eligible")
    weighed: int = Field(description="technicians weighed")
    eligible: int = Field(description="of them eligible")
    in_time: int = Field(description="eligible and able to arrive in time")
    runner_up: str | None = Field(default=None, description="the next the rule would take")
    earliest: str | None = Field(default=None, description="someone eligible arriving before the winner")
    late_minutes: float | None = Field(default=None, description="how late the winner would arrive")
    ineligible: list[list[Ineligible | int]] = Field(default_factory=list, description=(
        "how many were kept out, by reason: pairs [reason, count]"))
    round_size: int | None = Field(default=None, description="requests assigned together in a round")
    alone: str | None = Field(default=None, description="whom the request would have had alone")
    alone_goes_to: str | None = Field(default=None, description="which request of the round has them")


class Override(View):
    technician_id: str = Field(description="whom the dispatcher sent")
    replaced: str | None = Field(description="whom the rule had chosen")
    reason: str = Field(description="why")
    by: str = Field(description="who overrode")


class AssignmentExplanation(View):
    """Rule D4's decision: every technician weighed, and why the winner won."""

    request_id: str = Field(description="the request")
    skill: str = Field(description="the skill needed")
    arrive_by: str | None = Field(description="the arrival deadline; null: none")
    now: str = Field(description="when it was decided")
    rule: Rule = Field(description="which branch of rule D4 chose")
    reason: str = Field(description="why the winner won, in words")
    candidates: list[Considered] = Field(description="ranked: the rule's choice first, the ineligible last")
    excluded: list[Excluded] = Field(default_factory=list, description="not weighed at all, and why")
    facts: Facts | None = Field(default=None, description="`reason` as data; absent in older explanations")
    overrides: list[Override] = Field(default_factory=list, description="dispatchers' overrides, oldest first")


class Assignment(View):
    technician_id: str = Field(description="who was sent")
    at: str = Field(description="when")
    explanation: AssignmentExplanation = Field(description="why (D4)")
    at_risk: bool = Field(description="they cannot arrive by the deadline")
    by: str = Field(description="who assigned")
    override_reason: str | None = Field(description="the dispatcher's reason for overriding the rule")


class ReportedTime(View):
    """rule D5: when a phone's action counts, and by which clock."""

    at: str = Field(description="the time that counts")
    source: TimeSource = Field(description="the device's clock or the server's")
    device_time: str | None = Field(description="the phone's time; null: none sent")
    server_time: str = Field(description="when the server received it")
    upload_delay_s: float | None = Field(description="server minus device, in seconds")
    flagged_reason: TimeFlag | None = Field(description="why the phone's time was not believed")


class CheckIn(View):
    technician_id: str = Field(description="who checked in")
    key: str = Field(description="the phone's idempotency key")
    server_time: str = Field(description="when the server received it")
    device_time: str = Field(description="the phone's time")
    position: Position = Field(description="where the phone was")
    accuracy_m: float = Field(description="the position's accuracy in metres")
    distance_m: float = Field(description="distance from the site in metres")
    within_geofence: bool = Field(description="near enough the site to count (D5)")
    time_source: TimeSource = Field(default="server", description="which clock counts")
    time_flag: TimeFlag | None = Field(default=None, description="why the phone's time was not believed")


class WorkEntry(View):
    technician_id: str = Field(description="who worked")
    key: str = Field(description="the phone's idempotency key")
    kind: WorkKind = Field(description="hardware, network or software (D6)")
    started: str = Field(description="when the work started")
    ended: str = Field(description="when it ended")
    server_time: str = Field(description="when the server received it")
    device_time: str | None = Field(default=None, description="the phone's time")
    time_source: TimeSource = Field(default="server", description="which clock counts")
    time_flag: TimeFlag | None = Field(default=None, description="why the phone's time was not believed")
    time: ReportedTime = Field(description="the time that counts (D5)")


class ExpenseEntry(View):
    technician_id: str = Field(description="who spent it")
    key: str = Field(description="the phone's idempotency key")
    kind: ExpenseKind = Field(description="travel, transport, lodging or meals (C5)")
    amount: str = Field(description="yuan, exact decimal text")
    receipt_no: str = Field(description="the receipt's number")
    receipt_date: str = Field(description="the receipt's date")
    nights: int | None = Field(description="nights of lodging")
    note: str = Field(description="a note")
    server_time: str = Field(description="when the server received it")
    device_time: str | None = Field(default=None, description="the phone's time")
    time_source: TimeSource = Field(default="server", description="which clock counts")
    time_flag: TimeFlag | None = Field(default=None, description="why the phone's time was not believed")
    time: ReportedTime = Field(description="the time that counts (D5)")


class DeskWorkEntry(View):
    worker: str = Field(description="the technician, or the desk user, who worked")
    key: str = Field(description="the entry's idempotency key")
    channel: DeskChannel = Field(description="by phone or remote session")
    kind: WorkKind = Field(description="hardware, network or software")
    started: str = Field(description="when the work started")
    ended: str = Field(description="when it ended")
    note: str = Field(description="a note")
    server_time: str = Field(description="when it was entered")


class StatusTimes(View):
    """rule D5: each status time with its clock (null: not reached yet)."""

    accepted: ReportedTime | None = Field(description="the first acceptance")
    checked_in: ReportedTime | None = Field(description="the first check-in")
    checked_out: ReportedTime | None = Field(description="the last check-out")
    completed: ReportedTime | None = Field(description="the completion")


class Ticket(View):
    """A request and its visit, now or as it stood at the instant asked about."""

    status: Stage = Field(description="where the request stands")
    actions: list[Action] = Field(description="what may be asked of it next")
    opened: Opened | None = Field(description="the request as it came in")
    technician_id: str | None = Field(description="who has the visit; null: nobody")
    assignment: Assignment | None = Field(description="the latest assignment and why (D4); null: none yet")
    declined_by: list[str] = Field(description="technicians who declined it")
    first_check_in: CheckIn | None = Field(description="the first check-in on site (D5)")
    flagged_check_ins: int = Field(description="check-ins recorded far from the site")
    work: list[WorkEntry] = Field(description="work time from the phone (D6)")
    expenses: list[ExpenseEntry] = Field(description="expenses from the phone (D6, C5)")
    desk_work: list[DeskWorkEntry] = Field(description="phone and remote work from the desk")
    responded_at: str | None = Field(description="the first response (C15); null: none yet")
    times: StatusTimes = Field(description="the status times with their clocks (D5)")
    deadlines: Deadlines | None = Field(description="the clocks' standing; null: no deadline owed")
    at: str = Field(description="the instant the clocks are read at")


class StoredOrStanding(Stored):
    """A command's events; when it stored nothing because its effect already holds, the
    request as it stands beside them (issue 13)."""

    ticket: Ticket | None = Field(default=None, description="the request as it stands; only when nothing was stored")


# -- the board's rows -----------------------------------------------------------------------


class TicketRow(View):
    """A request in the lists, most urgent first."""

    ticket_id: str = Field(description="the request")
    customer_id: str = Field(description="whose it is")
    customer_name: str | None = Field(description="the customer's name; null: not known to dispatch")
    site_id: str = Field(description="where")
    site_name: str | None = Field(description="the site's name")
    site_address: str | None = Field(description="the site's address")
    summary: str = Field(description="what the customer said")
    channel: Channel = Field(description="how it came in (C13)")
    skill: str = Field(description="the skill a visit needs")
    status: Stage = Field(description="where it stands")
    opened_at: str = Field(description="when it came in (UTC)")
    latitude: float = Field(description="the site's latitude")
    longitude: float = Field(description="the site's longitude")
    agreement_id: str | None = Field(description="the covering agreement; null: none")
    verdict: Verdict = Field(description="covered, billable or excluded")
    cause: Cause | None = Field(description="why the customer called; null: logged before causes")
    priority: Priority = Field(description="orders the work")
    phase: Phase | None = Field(description="the customer's phase (C14)")
    local: bool = Field(description="the site counts as local (C9)")
    technician_id: str | None = Field(description="who has the visit")
    respond_by: str | None = Field(description="respond by (UTC)")
    arrive_by: str | None = Field(description="be on site by (UTC)")
    resolve_by: str | None = Field(description="resolve by (UTC)")
    next_due: str | None = Field(description="the earliest due time still running; null on a closed request")
    at_risk: list[ClockKind] = Field(description="clocks at risk")
    breached: list[ClockKind] = Field(description="clocks breached")
    stopped: list[ClockKind] = Field(description="clocks stopped")
    paused: bool = Field(description="waiting on the customer")
    checked_in_at: str | None = Field(description="the first check-in's time that counts")
    flagged_check_ins: int = Field(description="check-ins recorded far from the site")
    completed_at: str | None = Field(description="when the visit was completed")
    actions: list[Action] = Field(description="what may be asked of it next")
    next_check: str | None = Field(description="when its deadlines next have news")
    updated_at: str = Field(description="when the row last changed")
    last_event: str = Field(description="what last happened to it")
    version: int = Field(description="the request's version the row shows")


TicketPage = Listing[TicketRow]


# -- the deadline preview ---------------------------------------------------------------


class CountedDay(View):
    date: str = Field(description="the day")
    working_day: bool = Field(description="a working day on the official calendar (D2)")
    opens: str | None = Field(description="when the service window opens; null on a day off")
    closes: str | None = Field(description="when it closes")
    counted_seconds: float = Field(description="service time counted that day, in seconds")


class Preview(View):
    """The coverage and due times a request would get (D1, D2); nothing stored."""

    site_id: str = Field(description="the site")
    customer_id: str = Field(description="whose site")
    at: str = Field(description="when the request would come in (UTC)")
    coverage: Coverage = Field(description="what contracts would say")
    clauses: list[str] = Field(description="the rules that would set the deadlines")
    deadlines: Deadlines | None = Field(description="the clocks; null: no deadline owed")
    days: list[CountedDay] = Field(description="each day counted on the working calendar")


# -- today's plan -----------------------------------------------------------------------------


class Stop(View):
    ticket_id: str = Field(description="the visit")
    arrival: int = Field(description="arrival, minutes after midnight (office time)")
    late: bool = Field(description="after the deadline")


class NotPlanned(View):
    technician_id: str = Field(description="who the plan leaves out")
    reason: str = Field(description="why, in words")
    visits: list[str] = Field(description="visits under way with them")


class Plan(View):
    """Today's open visits routed across the technicians: a proposal, nothing stored."""

    day: str = Field(description="the day planned")
    routes: dict[str, list[Stop]] = Field(description="each technician's stops in order, by technician id")
    unassigned: list[str] = Field(description="visits nobody can serve today")
    late: list[str] = Field(description="visits served after their deadline")
    total_travel_minutes: int = Field(description="travel over all routes, in minutes")
    not_planned: list[NotPlanned] = Field(description="technicians left out, and why")


# -- technicians --------------------------------------------------------------------------------


class Shift(View):
    starts: str = Field(description="the shift's start, HH:MM:SS")
    ends: str = Field(description="its end")


class TechnicianCard(View):
    """Who a technician is and what they can do (what billing sees)."""

    technician_id: str | None = Field(description="the technician")
    name: str | None = Field(description="their name")
    skills: list[str] | None = Field(description="what they can do (D4)")


class Technician(View):
    """A technician with their position, shift, load and time off."""

    technician_id: str = Field(description="the technician")
    name: str = Field(description="their name")
    skills: list[str] = Field(description="what they can do (D4)")
    home_latitude: float = Field(description="home base latitude")
    home_longitude: float = Field(description="home base longitude")
    latitude: float = Field(description="where last seen on site, else home")
    longitude: float = Field(description="where last seen on site, else home")
    last_seen: str | None = Field(description="when last seen on site; null: never")
    shift: Shift = Field(description="working hours")
    capacity_per_day: int = Field(description="visits a day")
    time_off: list[list[str]] = Field(description="days away: pairs [first day, last day]")
    open_visits: list[str] = Field(description="visits assigned and not done")
    retired_at: str | None = Field(description="when retired; null: active")
    retirement_reason: str | None = Field(description="why retired")


__all__ = ["Plan", "Preview", "Stored", "StoredOrStanding", "Technician", "TechnicianCard", "Ticket", "TicketPage",
           "TicketRow"]
