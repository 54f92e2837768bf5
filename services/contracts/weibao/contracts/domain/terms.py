"""The terms of an agreement: what a template fixes and a signature fills in.

Agreements are data, not code: every seed agreement is these terms with other values,
and a vendor writes a sixth as a template file (see `templates/`). Each field cites the
rule of DOMAIN.md it carries. Plain frozen dataclasses; the template loader validates
raw data against them (unknown keys refused, via `__pydantic_config__`, a plain dict
that needs no import here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

STRICT = {"extra": "forbid"}

Channel = Literal["phone", "fax", "email", "remote", "letter", "qq", "onsite"]

# rule C12: maintenance inside coverage; [4] adds fixing problems met in use
C12_CAUSES = ("environment_readaptation", "os_input_adaptation", "virus_cleanup", "misoperation_repair",
              "usage_problem")
# rule C17: not the vendor's liability: billable, no SLA penalty
C17_CAUSES = ("telecom_maintenance", "policy_change", "force_majeure", "customer_misoperation_loss")


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
    phone_support_24h: bool = False  # rule C16
    service_hours: tuple[str, str] | None = None  # rule C20, e.g. ("09:00", "18:00"), office's local time
    calendar: Literal["clock", "working"] = "clock"  # rule D2

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
                raise ValueError(f"a {self.kind} SLA needs {name} > 0")


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
