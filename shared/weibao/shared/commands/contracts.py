"""The contracts service's command and query bodies (`weibao.contracts.<name>`): the
HTTP bodies the gateway validates, then the requests the service decodes, each an HTTP
body plus the fields the gateway takes from the path."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import ConfigDict, Field, field_validator

from weibao.shared.commands import Body, Id, Money, Paging, aware
from weibao.shared.public.dispatch import Channel, Priority


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


# A signature's terms by dotted path: a value, a list (service hours, service days: C20)
# or a table (priority targets: issue 13); the terms' own rules check what each means.
Scalar = str | int | float | bool
Parameters = dict[str, Scalar | list[Scalar] | dict[str, Scalar | dict[str, Scalar]]]


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
    priority: Priority | None = None  # issue 13: its targets, where the agreement sets them
    channel: Channel | None = None  # rule C16: a phone request's respond clock, around the clock
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


class ChangeRequest(Body):  # extra="forbid", as every body
    """rule C8: a change request of the agreement; contracts decides free or billable (B6)."""

    ref: str = Id
    description: str = Field(min_length=1, max_length=2000)
    on: date | None = None  # default: contracts' today
    workload_days: Decimal = Field(gt=0, max_digits=8, decimal_places=2)  # working days, exact


# -- what the contracts service decodes off NATS ---------------------------------------
# The gateway sends an HTTP body with the path's fields beside it (`call.ask(..., body,
# agreement_id=...)`), the CLI and the demo the same object: a command's schema is its
# HTTP body's plus those fields, so both ends refuse the same things by the same names.


def exact(value: object) -> object:
    """A decimal sent straight over NATS is text or a whole number: a JSON float is already
    inexact (0.1 is not a tenth) and a boolean is no number. The gateway sends its decimals
    as text, so this refuses only what a hand-written request might carry."""
    if isinstance(value, float | bool):
        raise ValueError("an exact decimal as text, e.g. '12000.00'")
    return value


class AgreementRef(Body):
    agreement_id: str = Id


class CustomerRef(Body):
    customer_id: str = Id


class SiteRef(CustomerRef):
    site_id: str = Id


class AddSite(NewSite, CustomerRef):
    pass


class MoveSite(SiteMove, SiteRef):
    pass


class PayFee(FeePayment, AgreementRef):
    _amount = field_validator("amount", mode="before")(exact)  # rule B8: money in exact decimals


class AmendAgreement(Amendment, AgreementRef):
    pass


class TerminateAgreement(Termination, AgreementRef):
    pass


class AssessAgreement(Assessment, AgreementRef):
    pass


class RecordChangeRequest(ChangeRequest, AgreementRef):
    _workload = field_validator("workload_days", mode="before")(exact)  # rule C8: the workload, exact


class UseQuota(QuotaUse, AgreementRef):
    pass


class QuotaRef(AgreementRef):
    kind: QuotaKind


class AgreementAsOf(AgreementRef):
    as_of: datetime | None = None  # the agreement as it stood then

    _as_of = field_validator("as_of")(aware)


class NoFields(Body):
    """A query that takes nothing: any field sent is a mistake, named."""


class CustomerSearch(Paging):
    q: str | None = Field(default=None, max_length=100)  # a part of the name or id


# An agreement's standing in the register (contracts' adapters/agreement_register.py):
# signed and not ended, or terminated. A lapse (C1) is a date beside it, not a standing.
AgreementStatus = Literal["active", "terminated"]


class AgreementSearch(Paging):
    customer_id: str | None = Field(default=None, max_length=100)
    status: AgreementStatus | None = None


# Vendor hardware's warranty (rules C11, C18, C19, C21-C24): one schema per action, the
# fields of the domain's command of that action (over HTTP they arrive as a WarrantyRecord).
# A field left out takes the domain's default; what a value means (empty, negative, in
# order) is the domain's rule, as for every command.
HardwareKind = Literal["machine", "dongle", "part"]
FaultKind = Literal["performance", "preinstalled_software"]


class HardwareRegistration(Body):
    serial: str = Id
    kind: HardwareKind
    model: str = Field(max_length=200)
    customer_id: str = Id
    supplied_by_vendor: bool  # rule C3
    purchased_on: date | None
    invoice: bool  # rule C22
    produced_on: date | None
    # The agreement's terms, defaulting to the seeds' values; their ranges are the domain's rule.
    warranty_months: int = 12  # rule C11, C18
    three_guarantees: bool = True  # rule C19
    preinstalled_software_months: int | None = 3  # rule C21
    dongle_replacement_fee: Decimal = Field(default=Decimal("200.00"), max_digits=14, decimal_places=2)  # rule C18


class RepairRecord(Body):
    serial: str = Id
    repaired_on: date
    part: str | None = Field(max_length=200)  # None: the unit as a whole; said either way
    fault: str = Field(max_length=2000)  # what the shop found, in words
    fault_kind: FaultKind = "performance"
    cause: str | None = Field(default=None, max_length=60)  # a C24 cause, or none for a quality defect
    fault_on: date | None = None


class ReturnRecord(Body):
    serial: str = Id
    returned_on: date
    fault_on: date
    fault: FaultKind
    cause: str | None = Field(default=None, max_length=60)


class ReplacementRecord(Body):
    serial: str = Id
    replaced_on: date
    fault_on: date
    fault: FaultKind
    replacement_serial: str = Field(max_length=100)
    replacement_model: str = Field(max_length=200)
    cause: str | None = Field(default=None, max_length=60)


WARRANTY_ACTIONS: dict[str, type[Body]] = {
    "register": HardwareRegistration, "repair": RepairRecord, "return": ReturnRecord, "replace": ReplacementRecord,
}
