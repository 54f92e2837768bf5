"""What the contracts service publishes, on `contracts.<MessageName>`.

Dispatch and billing never ask contracts for a rule: every message carries the terms
they need (SLA, rates, quotas, servicing office, calendar) as plain JSON data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

from weibao.shared.codec import Codec

# The causes an agreement's scope names (`terms["scope"]`: `covered_causes`,
# `not_liable_causes`), one list each for contracts' terms and dispatch's intake.
# rule C12, maintenance inside coverage: (A)-(D), and [4]'s problems met in use
C12Cause = Literal["environment_readaptation", "os_input_adaptation", "virus_cleanup", "misoperation_repair",
                   "usage_problem"]
# rule C17: not the vendor's liability: billable, no SLA penalty
C17Cause = Literal["telecom_maintenance", "policy_change", "force_majeure", "customer_misoperation_loss"]
# rule C20: the ISO weekdays (1 = Monday ... 7 = Sunday) an agreement's desk serves unless
# `terms["onsite"]["service_days"]` says otherwise; "7 days a week" is all seven
MONDAY_TO_FRIDAY: tuple[int, ...] = (1, 2, 3, 4, 5)

SERVICE = "contracts"


@dataclass(frozen=True)
class Office:
    name: str
    city_code: str
    latitude: float  # WGS-84
    longitude: float


@dataclass(frozen=True)
class AgreementSigned:
    SCHEMA = 1
    agreement_id: str
    customer_id: str
    template_id: str
    go_live: str  # ISO date
    site_ids: tuple[str, ...]
    office: Office


@dataclass(frozen=True)
class CoverageGranted:
    """A period of coverage opened or extended (rules C1, C2).

    `terms` is the agreement's terms as data: onsite SLA (C9, C14, C15, C16, C20, D2),
    hardware day rate (C4), expenses (C5), training and installation quotas (C7, C10),
    change-request threshold (C8), warranty terms, billing period.

    A period opened by a fee payment (basis "paid", C2) is the customer's renewal: it
    names the payment (`payment_id`, `amount` in exact yuan text, `paid_on`), and billing
    drafts the annual fee from it (B4). Added fields with defaults, so still schema 1: a
    grant recorded before them (or the free year, C1) carries none, and billing bills
    nothing from such a grant (the fee of those periods was drafted from `FeeDue` then)."""

    SCHEMA = 1
    agreement_id: str
    customer_id: str
    site_ids: tuple[str, ...]
    period_from: str  # ISO date, inclusive
    period_to: str  # ISO date, inclusive
    basis: Literal["free", "paid"]
    clauses: tuple[str, ...]
    office: Office
    terms: dict[str, Any]
    payment_id: str | None = None  # basis "paid": the payment that renewed (C2, B4)
    amount: str | None = None  # yuan paid, exact decimal text
    paid_on: str | None = None  # ISO date


@dataclass(frozen=True)
class CoverageChanged:
    """An amendment: the terms from `effective_on` on."""

    SCHEMA = 1
    agreement_id: str
    customer_id: str
    effective_on: str
    reason: str
    terms: dict[str, Any]


@dataclass(frozen=True)
class CoverageLapsed:
    SCHEMA = 1
    agreement_id: str
    customer_id: str
    lapsed_on: str  # first day without coverage
    clauses: tuple[str, ...] = ("C1",)


@dataclass(frozen=True)
class CoverageEnded:
    """The agreement was terminated."""

    SCHEMA = 1
    agreement_id: str
    customer_id: str
    on: str
    reason: str


@dataclass(frozen=True)
class FeeDue:
    """rules C2, B4: the next period's annual maintenance fee falls due: billing keeps a
    renewal notice for its clerk and drafts no invoice line (the fee is billed when the
    customer pays it: `CoverageGranted` with basis "paid" and its `payment_id`). Logs
    written before this (issue 13) drafted a line from it; those lines stay as billed."""

    SCHEMA = 1
    agreement_id: str
    customer_id: str
    period_from: str
    period_to: str
    amount: str  # yuan, exact decimal text
    due_on: str
    clauses: tuple[str, ...] = ("C2", "B4")


@dataclass(frozen=True)
class QuotaConsumed:
    """rules C7, C10, B5: units used, split into free, waived and billable."""

    SCHEMA = 1
    agreement_id: str
    customer_id: str
    kind: str  # installation | training_seat | onsite_training_session
    ref: str
    on: str
    free_units: int
    waived_units: int
    billable_units: int
    clauses: tuple[str, ...]
    discount_percent: str | None = None  # rule C7 [1]: paid-up customers' discount on billable training


@dataclass(frozen=True)
class WarrantyVerdict:
    """What happened to a vendor-supplied unit and who pays (C11, C18, C19, C21-C24; B2, B7)."""

    SCHEMA = 1
    serial: str
    customer_id: str
    kind: str  # machine | dongle | part
    action: Literal["repair", "return", "replacement"]
    on: str
    covered: bool
    clauses: tuple[str, ...]
    remedy: str | None = None
    fee: str | None = None  # yuan the customer pays (B7: a dongle after its warranty)
    warranty_until: str | None = None


@dataclass(frozen=True)
class SiteLocated:
    """A customer's site was added or moved: where dispatch sends technicians (D4)."""

    SCHEMA = 1
    customer_id: str
    customer_name: str
    site_id: str
    name: str
    address: str
    latitude: float  # WGS-84
    longitude: float
    city_code: str | None
    precision: str


@dataclass(frozen=True)
class ChangeRequestAssessed:
    """A change request recorded and assessed (rule C8): "covered" (a small change, free)
    or "billable" (larger than the agreement's threshold, or outside any service period,
    C1); billing prices a billable one by its workload at the agreement's day rate (B6)."""

    SCHEMA = 1
    agreement_id: str
    customer_id: str
    ref: str
    description: str
    on: str  # ISO date
    workload_days: str  # working days, exact decimal text
    verdict: Literal["covered", "billable", "excluded"]
    clauses: tuple[str, ...]


# Every message above, as the type a consumer matches on; a field renamed here fails
# mypy wherever a consumer reads it.
Published = (AgreementSigned | CoverageGranted | CoverageChanged | CoverageLapsed | CoverageEnded | FeeDue
             | QuotaConsumed | WarrantyVerdict | SiteLocated | ChangeRequestAssessed)
MESSAGES: tuple[type, ...] = get_args(Published)
CODEC = Codec(MESSAGES, {kind.__name__: kind.SCHEMA for kind in MESSAGES})  # type: ignore[attr-defined]
