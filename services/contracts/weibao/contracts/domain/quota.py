"""The quota ledger: free installations and training, and what goes beyond them.

One ledger per agreement and quota kind. A consumption is split into units drawn from the
free quota, units free under a clause outside the quota, and billable units (rule B5); the
free balance never goes negative. Reservations hold free units, so two bookings cannot both
get the last free seat. Pure: dates and refs come in with the commands."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date
from typing import Literal, assert_never

from weibao.shared.errors import Rejected, require

QuotaKind = Literal["installation", "training_seat", "onsite_training_session"]
ReinstallPolicy = Literal["free_if_os_sound", "charged"]

TRAINING_KINDS: frozenset[str] = frozenset({"training_seat", "onsite_training_session"})

# Clause tags on QuotaConsumed: which rule made which part free or billable, so billing can
# price the billable part and an auditor can trace it back to the agreement.
C7_FREE = "C7:free_quota"
C7_BASIC_NEVER_FREE = "C7:basic_computer_training_never_free"
C7_DISCOUNT_FEE_PAID = "C7:discount_annual_fee_paid"
C10_FREE = "C10:free_quota"
C10_REINSTALL_FREE = "C10:reinstall_free_os_sound"
C10_REINSTALL_OS_NOT_SOUND = "C10:reinstall_os_not_sound"
C10_REINSTALL_CHARGED = "C10:reinstall_charged_negotiated"
B5_BEYOND_QUOTA = "B5:beyond_free_quota"


# --- commands ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class OpenQuota:
    agreement_id: str
    kind: QuotaKind
    free: int
    period_start: date
    # Last day of the period, inclusive; None: the quota never lapses (e.g. "three installations").
    period_end: date | None
    # Installation ledgers only: what a re-installation after a fault costs (rule C10).
    reinstall_policy: ReinstallPolicy | None = None


@dataclass(frozen=True, kw_only=True)
class Reserve:
    ref: str
    units: int
    on: date


@dataclass(frozen=True, kw_only=True)
class Consume:
    ref: str  # a reservation's ref, or a fresh ref for a direct consumption
    on: date
    units: int | None = None  # None: the units the reservation booked
    basic_computer_training: bool = False  # rule C7 [2]: never free
    reinstall_after_fault: bool = False  # rule C10: hardware or network fault
    os_sound: bool | None = None  # the technician's finding; needed when the policy depends on it
    annual_fee_paid: bool = False  # rule C7 [1]: billable training is discounted


@dataclass(frozen=True, kw_only=True)
class Release:
    ref: str
    on: date


@dataclass(frozen=True, kw_only=True)
class Expire:
    on: date


@dataclass(frozen=True, kw_only=True)
class Renew:
    free: int
    period_start: date
    period_end: date | None


QuotaCommand = OpenQuota | Reserve | Consume | Release | Expire | Renew


# --- events -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class QuotaOpened:
    agreement_id: str
    kind: QuotaKind
    free: int
    period_start: date
    period_end: date | None
    reinstall_policy: ReinstallPolicy | None


@dataclass(frozen=True, kw_only=True)
class QuotaReserved:
    ref: str
    on: date
    units: int
    held_free: int  # at most the available balance; the rest of the booking will be billable


@dataclass(frozen=True, kw_only=True)
class QuotaConsumed:
    ref: str
    on: date
    free_units: int  # drawn from the free quota
    waived_units: int  # free under a clause outside the quota (rule C10 re-installation)
    billable_units: int  # rule B5 and the never-free clauses
    clauses: tuple[str, ...]

    @property
    def units(self) -> int:
        return self.free_units + self.waived_units + self.billable_units


@dataclass(frozen=True, kw_only=True)
class QuotaReleased:
    ref: str
    on: date


@dataclass(frozen=True, kw_only=True)
class QuotaExpired:
    on: date
    lapsed_units: int


@dataclass(frozen=True, kw_only=True)
class QuotaRenewed:
    free: int
    period_start: date
    period_end: date | None


QuotaEvent = QuotaOpened | QuotaReserved | QuotaConsumed | QuotaReleased | QuotaExpired | QuotaRenewed


# --- state ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Reservation:
    ref: str
    on: date
    units: int
    held_free: int


@dataclass(frozen=True, kw_only=True)
class QuotaLedger:
    agreement_id: str
    kind: QuotaKind
    reinstall_policy: ReinstallPolicy | None
    period_start: date
    period_end: date | None
    free_total: int
    consumed_free: int = 0
    lapsed: int = 0
    expired: bool = False
    reservations: tuple[Reservation, ...] = ()
    used_refs: frozenset[str] = frozenset()  # refs are single-use for the ledger's life

    def reservation(self, ref: str) -> Reservation | None:
        return next((r for r in self.reservations if r.ref == ref), None)


@dataclass(frozen=True)
class Balance:
    free_total: int
    reserved: int
    consumed_free: int
    lapsed: int
    available: int


def balance(state: QuotaLedger) -> Balance:
    reserved = sum(r.held_free for r in state.reservations)
    available = state.free_total - reserved - state.consumed_free - state.lapsed
    return Balance(state.free_total, reserved, state.consumed_free, state.lapsed, available)


# --- evolve -----------------------------------------------------------------------------


def evolve(state: QuotaLedger | None, event: QuotaEvent) -> QuotaLedger:
    if state is None:
        if not isinstance(event, QuotaOpened):
            raise ValueError(f"{type(event).__name__} before QuotaOpened")
        return QuotaLedger(
            agreement_id=event.agreement_id,
            kind=event.kind,
            reinstall_policy=event.reinstall_policy,
            period_start=event.period_start,
            period_end=event.period_end,
            free_total=event.free,
        )
    match event:
        case QuotaOpened():
            raise ValueError("QuotaOpened on an open ledger")
        case QuotaReserved():
            booked = Reservation(ref=event.ref, on=event.on, units=event.units, held_free=event.held_free)
            return replace(state, reservations=(*state.reservations, booked), used_refs=state.used_refs | {event.ref})
        case QuotaConsumed():
            reservation = state.reservation(event.ref)
            held = reservation.held_free if reservation else 0
            # After expiry the pool is empty, so held units the consumption did not use lapse.
            leftover = held - event.free_units if state.expired else 0
            return replace(
                state,
                consumed_free=state.consumed_free + event.free_units,
                lapsed=state.lapsed + leftover,
                reservations=_without(state.reservations, event.ref),
                used_refs=state.used_refs | {event.ref},
            )
        case QuotaReleased():
            reservation = state.reservation(event.ref)
            held = reservation.held_free if reservation else 0
            return replace(
                state,
                lapsed=state.lapsed + (held if state.expired else 0),
                reservations=_without(state.reservations, event.ref),
            )
        case QuotaExpired():
            return replace(state, expired=True, lapsed=state.lapsed + event.lapsed_units)
        case QuotaRenewed():
            return replace(
                state,
                period_start=event.period_start,
                period_end=event.period_end,
                free_total=event.free,
                consumed_free=0,
                lapsed=0,
                expired=False,
            )
        case _:
            assert_never(event)


def replay(events: Iterable[QuotaEvent]) -> QuotaLedger | None:
    state: QuotaLedger | None = None
    for event in events:
        state = evolve(state, event)
    return state


def _without(reservations: tuple[Reservation, ...], ref: str) -> tuple[Reservation, ...]:
    return tuple(r for r in reservations if r.ref != ref)


# --- decide -----------------------------------------------------------------------------


def decide(command: QuotaCommand, state: QuotaLedger | None) -> list[QuotaEvent]:
    match command:
        case OpenQuota():
            return [_open(command, state)]
        case Reserve():
            return [_reserve(command, _opened(state))]
        case Consume():
            return [_consume(command, _opened(state))]
        case Release():
            return [_release(command, _opened(state))]
        case Expire():
            return [_expire(command, _opened(state))]
        case Renew():
            return [_renew(command, _opened(state))]
        case _:
            assert_never(command)


def _opened(state: QuotaLedger | None) -> QuotaLedger:
    if state is None:
        raise Rejected("quota_not_open", "agreement_id", "no quota of this kind is open for this agreement")
    return state


def _open(command: OpenQuota, state: QuotaLedger | None) -> QuotaOpened:
    require(state is None, "already_open", "agreement_id", "this agreement already has a quota of this kind")
    require(bool(command.agreement_id.strip()), "required", "agreement_id", "an agreement id is required")
    _require_quota(command.free, command.period_start, command.period_end)
    if command.kind == "installation":
        require(
            command.reinstall_policy is not None,
            "required",
            "reinstall_policy",
            "an installation quota states what a re-installation after a fault costs (rule C10)",
        )
    else:
        require(
            command.reinstall_policy is None,
            "not_applicable",
            "reinstall_policy",
            "only installation quotas have a re-installation policy (rule C10)",
        )
    return QuotaOpened(
        agreement_id=command.agreement_id,
        kind=command.kind,
        free=command.free,
        period_start=command.period_start,
        period_end=command.period_end,
        reinstall_policy=command.reinstall_policy,
    )


def _reserve(command: Reserve, ledger: QuotaLedger) -> QuotaReserved:
    _require_fresh_ref(command.ref, ledger)
    _require_positive(command.units)
    _require_in_period(command.on, ledger)
    # A booking larger than the balance is accepted: it holds what is left, the rest will be billable.
    held = min(command.units, balance(ledger).available)
    return QuotaReserved(ref=command.ref, on=command.on, units=command.units, held_free=held)


def _consume(command: Consume, ledger: QuotaLedger) -> QuotaConsumed:
    if command.units is not None:
        _require_positive(command.units)
    _require_flags_fit(command, ledger)
    reservation = ledger.reservation(command.ref)
    if reservation is None:
        _require_fresh_ref(command.ref, ledger)
        if command.units is None:
            raise Rejected("required", "units", "a consumption without a reservation states its units")
        _require_in_period(command.on, ledger)
        units, held = command.units, 0
    else:
        # A reservation booked in the period is honoured even after the period expired.
        require(
            command.on >= reservation.on,
            "before_reservation",
            "on",
            f"consumed before it was reserved on {reservation.on.isoformat()}",
        )
        units = reservation.units if command.units is None else command.units
        held = reservation.held_free
    # The reservation's held units return to the pool first, so it can always use them.
    pool = balance(ledger).available + held
    free, waived, billable, clauses = _split(command, ledger, units, pool)
    return QuotaConsumed(
        ref=command.ref,
        on=command.on,
        free_units=free,
        waived_units=waived,
        billable_units=billable,
        clauses=clauses,
    )


def _split(command: Consume, ledger: QuotaLedger, units: int, pool: int) -> tuple[int, int, int, tuple[str, ...]]:
    """(free from the quota, waived by a clause, billable, clauses)."""
    clauses: tuple[str, ...] = ()
    if command.reinstall_after_fault:
        if ledger.reinstall_policy == "charged":
            # rule C10 [4]: charged at a negotiated amount, whatever the OS; the quota is for installing
            return 0, 0, units, (C10_REINSTALL_CHARGED,)
        if command.os_sound:
            # rule C10 [2]: free on site when the OS is sound, beyond (not out of) the installation quota
            return 0, units, 0, (C10_REINSTALL_FREE,)
        # rule C10 [2]: the free re-installation needs a sound OS; otherwise it is an ordinary installation
        clauses = (C10_REINSTALL_OS_NOT_SOUND,)
    if command.basic_computer_training:
        # rule C7 [2]: basic computer training is outside the free training, even with seats left
        free, clauses = 0, (C7_BASIC_NEVER_FREE,)
    else:
        free = min(units, pool)
    billable = units - free
    training = ledger.kind in TRAINING_KINDS
    if free:
        clauses += (C7_FREE if training else C10_FREE,)
    if billable and not command.basic_computer_training:
        clauses += (B5_BEYOND_QUOTA,)  # rule B5
    if billable and training and command.annual_fee_paid:
        clauses += (C7_DISCOUNT_FEE_PAID,)  # rule C7 [1]
    return free, 0, billable, clauses


def _release(command: Release, ledger: QuotaLedger) -> QuotaReleased:
    reservation = ledger.reservation(command.ref)
    if reservation is None:
        raise Rejected("unknown_reservation", "ref", f"no open reservation {command.ref!r}")
    require(
        command.on >= reservation.on,
        "before_reservation",
        "on",
        f"released before it was reserved on {reservation.on.isoformat()}",
    )
    return QuotaReleased(ref=command.ref, on=command.on)


def _expire(command: Expire, ledger: QuotaLedger) -> QuotaExpired:
    require(not ledger.expired, "already_expired", "on", "this period has already expired")
    if ledger.period_end is None:
        raise Rejected("no_period_end", "on", "this quota has no period end; it never lapses")
    require(
        command.on > ledger.period_end,
        "period_not_over",
        "on",
        f"the period runs to {ledger.period_end.isoformat()} inclusive",
    )
    # Only unheld units lapse: reservations booked in the period keep theirs until used or released.
    return QuotaExpired(on=command.on, lapsed_units=balance(ledger).available)


def _renew(command: Renew, ledger: QuotaLedger) -> QuotaRenewed:
    require(ledger.expired, "not_expired", "period_start", "the current period must expire first")
    require(
        not ledger.reservations,
        "reservations_open",
        "period_start",
        "settle the old period's reservations first: " + ", ".join(r.ref for r in ledger.reservations),
    )
    require(
        ledger.period_end is None or command.period_start > ledger.period_end,
        "overlapping_period",
        "period_start",
        "the new period starts after the old one ends",
    )
    _require_quota(command.free, command.period_start, command.period_end)
    return QuotaRenewed(free=command.free, period_start=command.period_start, period_end=command.period_end)


# --- checks -----------------------------------------------------------------------------


def _require_quota(free: int, start: date, end: date | None) -> None:
    require(free >= 0, "negative", "free", "a free quota is zero or more")
    require(end is None or end >= start, "period_end_before_start", "period_end", "the period ends before it starts")


def _require_positive(units: int) -> None:
    require(units > 0, "not_positive", "units", "units must be at least 1")


def _require_fresh_ref(ref: str, ledger: QuotaLedger) -> None:
    require(bool(ref.strip()), "required", "ref", "a ref is required")
    require(ref not in ledger.used_refs, "duplicate_ref", "ref", f"ref {ref!r} was already used on this ledger")


def _require_in_period(on: date, ledger: QuotaLedger) -> None:
    require(not ledger.expired, "quota_expired", "on", "the period has expired; renew the quota")
    require(
        on >= ledger.period_start, "outside_period", "on", f"the period starts on {ledger.period_start.isoformat()}"
    )
    # Free units lapse at period end even before Expire is processed.
    require(
        ledger.period_end is None or on <= ledger.period_end,
        "outside_period",
        "on",
        "after the period end; renew the quota",
    )


def _require_flags_fit(command: Consume, ledger: QuotaLedger) -> None:
    if command.basic_computer_training:
        require(
            ledger.kind in TRAINING_KINDS,
            "not_applicable",
            "basic_computer_training",
            "only training is classified as basic computer training (rule C7)",
        )
    if command.reinstall_after_fault:
        require(
            ledger.kind == "installation",
            "not_applicable",
            "reinstall_after_fault",
            "only installations are re-installed after a fault (rule C10)",
        )
        require(
            ledger.reinstall_policy != "free_if_os_sound" or command.os_sound is not None,
            "required",
            "os_sound",
            "whether the OS is sound decides if the re-installation is free (rule C10)",
        )
