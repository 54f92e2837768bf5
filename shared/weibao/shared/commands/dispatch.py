"""The dispatch service's command and query bodies (`weibao.dispatch.<name>`).

The vocabularies (channels, kinds of work and expense) are dispatch's public ones, the
same lists its domain decides with and its messages carry."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from typing import Literal

from pydantic import Field, field_validator

from weibao.shared.commands import Body, Id, MaybeId, Money, Paging, Point, Text, aware
from weibao.shared.public.dispatch import (
    Cause,
    Channel,
    DeskChannel,
    ExpenseKind,
    Phase,
    Priority,
    ResponseKind,
    WorkKind,
)


class NewTicket(Body):
    """A request from any channel (C13), with what the rules need at intake (issue 13):
    its cause (the coverage is judged for it: C3, C12, C17, C24), the customer's phase
    where the agreement sets deadlines by phase (C14), the product or device concerned,
    and a priority (it orders the work; it moves a deadline only where the agreement sets
    priority targets)."""

    ticket_id: str = Id
    site_id: str = Id
    summary: str = Field(min_length=1, max_length=2000)
    channel: Channel = "phone"
    skill: str = Field(default="software:general", max_length=100)
    received_at: datetime | None = None
    cause: Cause = "software_fault"
    phase: Phase | None = None
    priority: Priority = "normal"
    product: str = Field(default="", max_length=200)
    serial: str = Field(default="", max_length=100)

    _received = field_validator("received_at")(aware)


class Reclassification(Body):
    """Issue 13: the cause, phase or priority corrected, and why; what is not sent stays."""

    cause: Cause | None = None
    phase: Phase | None = None
    priority: Priority | None = None
    reason: str = Field(min_length=1, max_length=2000)


class Response(Body):
    """rule C15: the desk's first response without a visit."""

    kind: ResponseKind
    note: str = Field(min_length=1, max_length=2000)


class DeadlinePreview(Body):
    """Issue 13 (D1, D2): the due times a request would get, at any time, past or future:
    the same coverage and deadline code as a request opened at `at`."""

    site_id: str = Id
    at: datetime
    channel: Channel = "phone"
    cause: Cause = "software_fault"
    phase: Phase | None = None
    priority: Priority = "normal"

    _at = field_validator("at")(aware)


class Triage(Body):
    outcome: Literal["remote", "escalate"]
    note: str = Text


class Assign(Body):
    technician_id: str | None = None  # none: rule D4 chooses
    reason: str | None = Field(default=None, max_length=2000)  # required by dispatch for an override


class Named(Body):
    """Who a technician's action is by, in an HTTP body: the token says it for a technician;
    a dispatcher acting for one names them (or the visit's technician is meant). On
    dispatch's side the name is required (VisitReport below)."""

    technician_id: str | None = None


class DeskWork(Named):
    """Issue 13: phone or remote work on a request; `key` makes a retry one record. Who:
    a technician is always themselves; a dispatcher names a technician, or logs their own."""

    technician_id: str | None = MaybeId

    key: str = Field(min_length=8, max_length=100)
    channel: DeskChannel
    kind: WorkKind = "software"
    started: datetime
    ended: datetime
    note: str = Field(min_length=1, max_length=2000)

    _times = field_validator("started", "ended")(aware)


class DeclineReason(Body):
    reason: str = Field(min_length=1, max_length=2000)


class Decline(Named, DeclineReason):
    pass


class Wait(Body):
    until_customer_responds: bool = True
    reason: str = Text


class PhoneReport(Body):
    """What every phone action carries: its idempotency key and the phone's clock."""

    key: str = Field(min_length=8, max_length=100)
    device_time: datetime

    _device = field_validator("device_time")(aware)


class Fix(PhoneReport):
    """Where the phone was (D5: the geofence widens with its stated accuracy)."""

    position: Point
    accuracy_m: float = Field(ge=0, le=100000)


class Presence(Named, Fix):
    pass


class WorkTime(PhoneReport):
    kind: WorkKind
    started: datetime
    ended: datetime

    _times = field_validator("started", "ended")(aware)


class Work(Named, WorkTime):
    pass


class Receipt(PhoneReport):
    kind: ExpenseKind
    amount: Decimal = Money
    receipt_no: str = Field(default="", max_length=100)
    receipt_date: date | None = None
    nights: int | None = Field(default=None, ge=1, le=365)
    note: str = Text


class Expense(Named, Receipt):
    pass


class Resolution(Body):
    resolution: str = Field(min_length=1, max_length=4000)


class DeviceClock(Body):
    """rule D5: when the technician acted, by the phone (the server's time at its last
    sync plus its monotonic clock since); none from a dispatcher's console acting for
    them. Optional where an action may come from either (acceptance, completion)."""

    device_time: datetime | None = None

    _device_clock = field_validator("device_time")(aware)


class Acceptance(Named, DeviceClock):
    """The technician accepts the visit (the body may be empty)."""


class Completion(Named, Resolution, DeviceClock):
    pass


class Shift(Body):
    starts: time = time(9, 0)  # rule C20: 9:00-18:00 unless said otherwise
    ends: time = time(18, 0)


# Which skills exist, and everything else about a valid record, is dispatch's one rule
# (domain/technician.py): the gateway checks shapes only, so the two cannot drift apart.
class NewTechnician(Body):
    technician_id: str = Id
    name: str = Field(min_length=1, max_length=100)
    skills: list[str] = Field(min_length=1, max_length=50)
    home: Point
    office_city_code: str | None = None
    shift: Shift | None = None
    capacity_per_day: int = Field(default=4, ge=1, le=50)


class TechnicianChange(Body):
    """PATCH: only the fields sent change; dispatch checks the record as it would become."""

    name: str | None = Field(default=None, min_length=1, max_length=100)
    skills: list[str] | None = Field(default=None, min_length=1, max_length=50)
    home: Point | None = None
    shift: Shift | None = None
    capacity_per_day: int | None = Field(default=None, ge=1, le=50)


class Retirement(Body):
    reason: str = Field(min_length=1, max_length=500)


class TimeOff(Body):
    first_day: date
    last_day: date
    reason: str = Field(min_length=1, max_length=500)


# -- what dispatch's NATS requests carry -------------------------------------------------
# The gateway sends an HTTP body with what the path and the caller's token said beside it
# (api/dispatch.py: `call.ask(..., ticket_id=..., technician_id=...)`); the CLI and the
# demo loader send the same. So each request's schema is its HTTP body's plus those fields,
# defined here once; `weibao.shared.rpc.command` decodes into them before the service runs.
# A reference to a ticket or a technician is an id of the shape they are created with.


class TicketRef(Body):
    """`weibao.dispatch.ticket.find_coverage` and `.history`: which request."""

    ticket_id: str = Id


class TicketQuery(TicketRef):
    """`weibao.dispatch.ticket`: the request now, or as it stood at `as_of` (D1's clocks too)."""

    as_of: datetime | None = None

    _as_of = field_validator("as_of")(aware)


class TriageTicket(TicketRef, Triage):
    """rule D3"""


class AssignTicket(TicketRef, Assign):
    """rule D4, or the dispatcher's override with its reason"""


class ReclassifyTicket(TicketRef, Reclassification):
    """issue 13: cause, phase or priority corrected until the first report from site"""


class RespondTicket(TicketRef, Response):
    """rule C15"""


class DeskWorkReport(TicketRef, DeskWork):
    """issue 13: the technician named, or the desk's actor when none is"""


class WaitTicket(TicketRef, Wait):
    """rule D1: the clocks pause while waiting on the customer"""


class Visit(TicketRef):
    """A technician's word on their visit: who, always named. The gateway names the
    token's technician (or the dispatcher's choice); dispatch checks the visit is
    assigned to them."""

    technician_id: str = Id


class VisitReport(Visit, DeviceClock):
    """`ticket.accept`: who, and the phone's time when the phone sent it (D5)."""


# The HTTP bodies' parts without their optional `Named`: here the name is required.
class DeclineVisit(Visit, DeclineReason):
    """rule D4: dispatch assigns again"""


class PresenceReport(Visit, Fix):
    """`ticket.check_in` and `ticket.check_out`, rule D5"""


class WorkReport(Visit, WorkTime):
    """rule D6"""


class ExpenseReport(Visit, Receipt):
    """rules D6, C5"""


class CompleteVisit(VisitReport, Resolution):
    """the phone's time optional, as for `ticket.accept` (D5)"""


class TechnicianRef(Body):
    """`weibao.dispatch.technician`: which technician."""

    technician_id: str = Id


class TechnicianPatch(TechnicianRef, TechnicianChange):
    pass


class TechnicianRetirement(TechnicianRef, Retirement):
    pass


class TechnicianTimeOff(TechnicianRef, TimeOff):
    pass


# Which requests a list shows: those still pending, those closed, or all (the gateway's
# query parameter is this same Literal).
TicketStatus = Literal["open", "closed", "all"]


class TicketList(Paging):
    """`weibao.dispatch.tickets`: a page of the board."""

    status: TicketStatus = "open"
    technician_id: str | None = None  # a filter: an unknown id lists nothing
    customer_id: str | None = None


class PlanQuery(Body):
    """`weibao.dispatch.plan`: how long the solver may search (at most a minute, whatever is asked)."""

    seconds: float = Field(default=5.0, gt=0, allow_inf_nan=False)
