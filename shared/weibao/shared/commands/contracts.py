"""The contracts service's command and query bodies (`weibao.contracts.<name>`)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import ConfigDict, Field

from weibao.shared.commands import Body, Id, Money


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
