"""What the HTTP API accepts: every body is checked here first, unknown fields refused,
so a typo in a field name is an error that names it rather than a silent default.

The services check the meaning again (they are the authority); these models check the
shape, document the API in /openapi.json, and keep garbage off the bus."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from weibao.gateway.deps import in_years

Id = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:\-]+$")
Text = Field(default="", max_length=2000)
Money = Field(gt=0, max_digits=14, decimal_places=2)


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*")
    @classmethod
    def _years(cls, value: object) -> object:
        # Every date and time of every body within the years the services compute with
        # (9999-12-31 plus a term overflows there): a 422 naming the field, not a 502.
        return in_years(value) if isinstance(value, date) else value


class Login(Body):
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=200)


class Point(Body):
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


def _aware(value: datetime | None, field: str = "time") -> datetime | None:
    # A phone's or clerk's time without its UTC offset is ambiguous by eight hours.
    if value is not None and value.tzinfo is None:
        raise ValueError("a time with its UTC offset, e.g. 2026-11-24T09:30:00+08:00")
    return value


# -- contracts -----------------------------------------------------------------------

class Contact(Body):
    name: str = Field(min_length=1, max_length=100)
    phone: str = Field(default="", max_length=40)
    role: str = Field(default="", max_length=100)


class NewSite(Body):
    site_id: str = Id
    name: str = Field(min_length=1, max_length=200)
    address: str = Field(default="", max_length=500)
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    datum: Literal["wgs84", "gcj02"] = "wgs84"


class NewCustomer(Body):
    customer_id: str = Id
    name: str = Field(min_length=1, max_length=200)
    contacts: list[Contact] = Field(default_factory=list, max_length=50)
    sites: list[NewSite] = Field(default_factory=list, max_length=500)


class SiteMove(Body):
    address: str = Field(default="", max_length=500)
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    datum: Literal["wgs84", "gcj02"] = "wgs84"


class Office(Body):
    name: str = Field(min_length=1, max_length=200)
    city_code: str = Field(min_length=2, max_length=12)
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


Parameters = dict[str, str | int | float | bool]


class Signature(Body):
    agreement_id: str = Id
    customer_id: str = Id
    template_id: str = Id
    parameters: Parameters = Field(default_factory=dict)
    go_live: date
    signed_on: date | None = None
    office: Office
    site_ids: list[str] = Field(default_factory=list, max_length=500)


class FeePayment(Body):
    payment_id: str = Id
    amount: Decimal = Money
    period_from: date
    period_to: date
    paid_on: date | None = None


class Amendment(Body):
    parameters: Parameters
    effective_on: date
    reason: str = Field(min_length=1, max_length=2000)


class Termination(Body):
    on: date | None = None
    reason: str = Field(min_length=1, max_length=2000)


class Assessment(Body):
    today: date | None = None


class CoverageQuestion(Body):
    agreement_id: str | None = None
    site_id: str | None = None
    serial: str | None = None  # vendor hardware: its warranty decides
    on: date | None = None
    service: str = Field(min_length=1, max_length=60)
    cause: str | None = None
    onsite: bool = True
    local: bool | None = None
    phase: str | None = None
    third_party_under_warranty: bool = False
    # working days, exact, bounded as a change request's (a 1E+999999 would reach contracts' arithmetic)
    workload_working_days: Decimal | None = Field(default=None, ge=0, max_digits=8, decimal_places=2)
    basic_computer_training: bool = False
    fault_on: date | None = None
    fault: str | None = None
    part: str | None = None


QuotaKind = Literal["installation", "training_seat", "onsite_training_session"]


class QuotaUse(Body):
    kind: QuotaKind
    ref: str | None = Field(default=None, max_length=100)
    units: int | None = Field(default=None, ge=1, le=10000)
    on: date | None = None
    basic_computer_training: bool | None = None
    reinstall_after_fault: bool | None = None
    os_sound: bool | None = None


class WarrantyRecord(Body):
    serial: str = Id
    model_config = ConfigDict(extra="allow")  # each action has its own fields; contracts checks them


class WarrantyQuestion(Body):
    serial: str = Id
    fault_on: date
    fault: str = "performance"
    cause: str | None = None
    part: str | None = None


# -- dispatch ------------------------------------------------------------------------

Channel = Literal["phone", "email", "web", "wechat", "onsite", "remote"]


class NewTicket(Body):
    ticket_id: str = Id
    site_id: str = Id
    summary: str = Field(min_length=1, max_length=2000)
    channel: str = Field(default="phone", max_length=20)
    skill: str = Field(default="software:general", max_length=100)
    received_at: datetime | None = None

    _received = field_validator("received_at")(_aware)


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

    _device = field_validator("device_time")(_aware)


class Presence(PhoneReport):
    position: Point
    accuracy_m: float = Field(ge=0, le=100000)


class Work(PhoneReport):
    kind: Literal["hardware", "network", "software"]
    started: datetime
    ended: datetime

    _times = field_validator("started", "ended")(_aware)


class Expense(PhoneReport):
    kind: Literal["transport", "lodging", "meals"]
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


# -- billing -------------------------------------------------------------------------

class Issue(Body):
    issued_on: date | None = None


class CreditNote(Body):
    credit_id: str | None = Field(default=None, max_length=100)
    lines: list[str] = Field(default_factory=list, max_length=1000)  # item ids; empty: the whole invoice
    reason: str = Field(min_length=1, max_length=2000)


class Payment(Body):
    payment_id: str = Id
    amount: Decimal = Money
    paid_on: date | None = None
