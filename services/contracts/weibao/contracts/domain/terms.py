"""The terms of an agreement: what a template fixes and a signature fills in.

Agreements are data, not code: every seed agreement is these terms with other values,
and a vendor writes a sixth as a template file (see `templates/`). Each field cites the
rule of DOMAIN.md it carries. Plain frozen dataclasses; the template loader validates
raw data against them (unknown keys refused, via `__pydantic_config__`, a plain dict
that needs no import here)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal, get_args

# The public vocabularies: channels (C13), priorities (issue 13: priority orders work; it
# moves a deadline only through the agreement's targets), the default service days (C20).
from weibao.shared.public.contracts import MONDAY_TO_FRIDAY, C12Cause, C17Cause
from weibao.shared.public.dispatch import Channel, Priority

STRICT = {"extra": "forbid"}

GEOFENCE_M = (50, 5000)  # rule D5: a check-in radius between these, in metres

# What a term wants, in words: a refused value is named by its path and told this
# (`*` stands for any priority). The template loader says it for a value of the wrong
# type too, so a signer reads "two times HH:MM" rather than a validator's type name.
WANTS: Mapping[str, str] = {
    "onsite.service_hours": "two times HH:MM, opening before closing",
    "onsite.service_days": "the ISO weekdays served, each once: 1 (Monday) to 7 (Sunday)",
    "onsite.geofence_m": f"a check-in radius in whole metres, {GEOFENCE_M[0]} to {GEOFENCE_M[1]}",
    "onsite.priority_targets": "targets by priority: urgent, high, normal, low",
    "onsite.priority_targets.*": "a priority's targets: respond_hours, arrive_hours, resolve_hours",
    "onsite.priority_targets.*.respond_hours": "a positive number of hours",
    "onsite.priority_targets.*.arrive_hours": "a positive number of hours",
    "onsite.priority_targets.*.resolve_hours": "a positive number of hours",
}
# What an unknown key below a section is told, by the section's path.
UNKNOWN: Mapping[str, str] = {
    "onsite.priority_targets": "not a priority: urgent, high, normal or low",
    "onsite.priority_targets.*": "not a target: respond_hours, arrive_hours or resolve_hours",
}
_HHMM = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]")


class TermError(ValueError):
    """A term's value refused: `field` is its path below the section that refused it,
    `reason` says in words what it wants. The template loader names the whole path."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason

# rule C12: maintenance inside coverage; [4] adds fixing problems met in use. rule C17: not
# the vendor's liability. The public vocabulary, shared with dispatch's intake.
C12_CAUSES: tuple[str, ...] = get_args(C12Cause)
C17_CAUSES: tuple[str, ...] = get_args(C17Cause)


@dataclass(frozen=True)
class Fee:
    """rule C2: the annual fee is a percentage of the software's price, per year."""

    __pydantic_config__ = STRICT
    percent: Decimal
    licence_price: Decimal
    period_months: int = 12
    notice_days: int = 30  # fee falls due this many days before coverage ends (B4)


@dataclass(frozen=True)
class Scope:
    __pydantic_config__ = STRICT
    covered_causes: tuple[str, ...] = C12_CAUSES[:4]  # rule C12
    not_liable_causes: tuple[str, ...] = C17_CAUSES  # rule C17
    third_party_hardware: Literal["excluded", "billable"] = "excluded"  # rule C3


@dataclass(frozen=True)
class Targets:
    """Issue 13: one priority's own targets, in hours of the agreement's calendar (D2).

    Clauses set deadlines; priority orders work. A target moves a deadline only where
    the agreement sets it, and then the tighter of clause and target wins; a clock the
    clauses do not set (by arrangement) is set by the target."""

    __pydantic_config__ = STRICT
    respond_hours: int | None = None
    arrive_hours: int | None = None
    resolve_hours: int | None = None

    def __post_init__(self) -> None:
        for name in ("respond_hours", "arrive_hours", "resolve_hours"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise TermError(name, "a positive number of hours")


@dataclass(frozen=True)
class PriorityTargets:
    """Issue 13: the targets by priority; a priority left out keeps the clauses' deadlines."""

    __pydantic_config__ = STRICT
    urgent: Targets | None = None
    high: Targets | None = None
    normal: Targets | None = None
    low: Targets | None = None

    def of(self, priority: Priority | None) -> Targets | None:
        return getattr(self, priority) if priority is not None else None


@dataclass(frozen=True)
class Onsite:
    """How fast someone must be on site (D1) and how the clock counts (D2)."""

    __pydantic_config__ = STRICT
    kind: Literal["local_or_out_of_town", "by_phase", "respond_resolve", "by_arrangement"]
    local_hours: int | None = None  # rule C9
    out_of_town_days: int | None = None  # rule C9
    local_radius_km: float | None = None  # D1: "local" also within this radius of the office
    parallel_run_days: int | None = None  # rule C14
    cutover_days: int | None = None  # rule C14
    respond_hours: int | None = None  # rule C15
    resolve_hours: int | None = None  # rule C15
    # rule C16: a request by phone has its respond-by clock counted around the clock
    phone_support_24h: bool = False
    service_hours: tuple[str, str] | None = None  # rule C20, e.g. ("09:00", "18:00"), office's local time
    calendar: Literal["clock", "working"] = "clock"  # rule D2
    # rule C20: the ISO weekdays the desk serves on the working calendar (D2); official
    # public holidays are off and swapped working days (调休) on, whatever the weekday.
    service_days: tuple[int, ...] = MONDAY_TO_FRIDAY
    geofence_m: int | None = None  # rule D5: check-in radius; None: the service-wide setting
    priority_targets: PriorityTargets | None = None  # issue 13: the tighter of clause and target wins

    def __post_init__(self) -> None:
        needs = {
            "local_or_out_of_town": ("local_hours", "out_of_town_days"),
            "by_phase": ("parallel_run_days", "cutover_days"),
            "respond_resolve": ("respond_hours", "resolve_hours"),
            "by_arrangement": (),
        }[self.kind]
        for name in needs:
            value = getattr(self, name)
            if value is None or value <= 0:
                raise TermError(name, f"a {self.kind} SLA needs it, a positive number")
        if self.service_hours is not None:
            opens, closes = self.service_hours
            if not (_HHMM.fullmatch(opens) and _HHMM.fullmatch(closes) and opens < closes):
                raise TermError("service_hours", WANTS["onsite.service_hours"])
        days = self.service_days
        if not days or len(set(days)) != len(days) or any(not 1 <= day <= 7 for day in days):
            raise TermError("service_days", WANTS["onsite.service_days"])
        object.__setattr__(self, "service_days", tuple(sorted(days)))  # one spelling of a week
        low, high = GEOFENCE_M
        if self.geofence_m is not None and not low <= self.geofence_m <= high:
            raise TermError("geofence_m", WANTS["onsite.geofence_m"])


@dataclass(frozen=True)
class HardwareService:
    """rule C4: hardware and network work on request, per day, part-days rounded up."""

    __pydantic_config__ = STRICT
    day_rate: Decimal


@dataclass(frozen=True)
class ServiceRates:
    """rules B3, C1: the agreement's rates for service outside coverage (no free year, no
    paid period, or a cause outside scope or liability): per started hour, else per
    started day. None: a rate to be agreed. The day rate also prices large change
    requests by workload (B6, C8)."""

    __pydantic_config__ = STRICT
    hourly_rate: Decimal | None = None
    day_rate: Decimal | None = None

    def __post_init__(self) -> None:
        for name in ("hourly_rate", "day_rate"):
            value = getattr(self, name)
            if value is not None and (not value.is_finite() or value < 0):
                raise ValueError(f"{name} is an amount of yuan, not negative")


@dataclass(frozen=True)
class Training:
    """rule C7."""

    __pydantic_config__ = STRICT
    free_seats: int = 0
    free_sessions: int = 0
    paid_up_discount_percent: Decimal = Decimal(0)
    basic_computer_training_free: bool = False


@dataclass(frozen=True)
class Installation:
    """rule C10."""

    __pydantic_config__ = STRICT
    free: int = 0
    reinstall_policy: Literal["free_if_os_sound", "charged"] = "charged"


@dataclass(frozen=True)
class Changes:
    """rule C8: small changes free; larger than this many working days billed by workload."""

    __pydantic_config__ = STRICT
    free_up_to_working_days: int | None = None


@dataclass(frozen=True)
class Warranty:
    __pydantic_config__ = STRICT
    hardware_months: int = 12  # rule C11
    dongle_months: int | None = None  # rule C18
    dongle_replacement_fee: Decimal | None = None  # rule C18
    three_guarantees: bool = False  # rule C19
    preinstalled_software_months: int | None = None  # rule C21


@dataclass(frozen=True)
class Terms:
    __pydantic_config__ = STRICT
    onsite: Onsite
    free_months: int = 12  # rule C1: free service after go-live
    fee: Fee | None = None  # rule C2; None: no paid maintenance beyond the free period
    scope: Scope = field(default_factory=Scope)
    hardware: HardwareService | None = None  # rule C4
    service: ServiceRates | None = None  # rules B3, C1: rates outside coverage; B6, C8: changes by workload
    customer_pays_expenses: bool = True  # rule C5
    upgrades_free_in_service: bool = True  # rule C6
    training: Training = field(default_factory=Training)
    installation: Installation = field(default_factory=Installation)
    changes: Changes = field(default_factory=Changes)
    warranty: Warranty | None = None
    billing_period: Literal["monthly", "per_visit"] = "monthly"
    # rule C13: how the customer may reach the vendor; phone comes first (D3)
    channels: tuple[Channel, ...] = ("phone", "onsite")


@dataclass(frozen=True)
class Template:
    """A kind of agreement: its terms, and which of them a signature must supply."""

    __pydantic_config__ = STRICT
    id: str
    name: str
    sources: tuple[str, ...]
    terms: Terms
    # Dotted paths into `terms` that each signature must give, e.g. "fee.percent".
    parameters: tuple[str, ...] = ()
    description: str = ""
