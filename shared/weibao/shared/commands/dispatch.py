"""The dispatch service's command and query bodies (`weibao.dispatch.<name>`).

The vocabularies (channels, kinds of work and expense) are dispatch's public ones, the
same lists its domain decides with and its messages carry."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from typing import Literal

from pydantic import Field, field_validator

from weibao.shared.commands import Body, Id, Money, Point, Text, aware
from weibao.shared.public.dispatch import Channel, ExpenseKind, WorkKind


class NewTicket(Body):
    ticket_id: str = Id
    site_id: str = Id
    summary: str = Field(min_length=1, max_length=2000)
    channel: Channel = "phone"
    skill: str = Field(default="software:general", max_length=100)
    received_at: datetime | None = None

    _received = field_validator("received_at")(aware)


class Triage(Body):
    outcome: Literal["remote", "escalate"]
    note: str = Text


class Assign(Body):
    technician_id: str | None = None  # none: rule D4 chooses
    reason: str | None = Field(default=None, max_length=2000)  # required by dispatch for an override


class Decline(Body):
    technician_id: str | None = None
    reason: str = Field(min_length=1, max_length=2000)


class Wait(Body):
    until_customer_responds: bool = True
    reason: str = Text


class PhoneReport(Body):
    """What every phone action carries: its idempotency key and the phone's clock."""

    key: str = Field(min_length=8, max_length=100)
    device_time: datetime
    technician_id: str | None = None  # a dispatcher reporting for a technician names them

    _device = field_validator("device_time")(aware)


class Presence(PhoneReport):
    position: Point
    accuracy_m: float = Field(ge=0, le=100000)


class Work(PhoneReport):
    kind: WorkKind
    started: datetime
    ended: datetime

    _times = field_validator("started", "ended")(aware)


class Expense(PhoneReport):
    kind: ExpenseKind
    amount: Decimal = Money
    receipt_no: str = Field(default="", max_length=100)
    receipt_date: date | None = None
    nights: int | None = Field(default=None, ge=1, le=365)
    note: str = Text


class Completion(Body):
    technician_id: str | None = None
    resolution: str = Field(min_length=1, max_length=4000)


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
