"""What the contracts service publishes, on `contracts.<MessageName>`.

Dispatch and billing never ask contracts for a rule: every message carries the terms
they need (SLA, rates, quotas, servicing office, calendar) as plain JSON data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

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
    change-request threshold (C8), warranty terms, billing period."""

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
    """rule B4: billing invoices the annual maintenance fee (rule C2)."""

    SCHEMA = 1
    agreement_id: str
    customer_id: str
    period_from: str
    period_to: str
    amount: str  # yuan, exact decimal text
    due_on: str
    clauses: tuple[str, ...] = ("C2", "B4")


MESSAGES: tuple[type, ...] = (AgreementSigned, CoverageGranted, CoverageChanged, CoverageLapsed, CoverageEnded, FeeDue)
