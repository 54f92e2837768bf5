"""The quota ledger, given/when/then on `decide` (rules C7, C10, B5)."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest

from tests.decider import Decider, Given, When
from weibao.contracts.domain.quota import (
    B5_BEYOND_QUOTA,
    C7_BASIC_NEVER_FREE,
    C7_DISCOUNT_FEE_PAID,
    C7_FREE,
    C10_FREE,
    C10_REINSTALL_CHARGED,
    C10_REINSTALL_FREE,
    C10_REINSTALL_OS_NOT_SOUND,
    Balance,
    Consume,
    Expire,
    OpenQuota,
    QuotaCommand,
    QuotaConsumed,
    QuotaEvent,
    QuotaExpired,
    QuotaKind,
    QuotaLedger,
    QuotaOpened,
    QuotaReleased,
    QuotaRenewed,
    QuotaReserved,
    ReinstallPolicy,
    Release,
    Renew,
    Reserve,
    balance,
    decide,
    evolve,
)
from weibao.shared.errors import Rejected

START = date(2024, 1, 1)
END = date(2024, 12, 31)
DAY = date(2024, 3, 1)


def opened(
    kind: QuotaKind = "training_seat",
    free: int = 3,
    period_end: date | None = END,
    reinstall_policy: ReinstallPolicy | None = None,
) -> QuotaOpened:
    return QuotaOpened(
        agreement_id="agr-1",
        kind=kind,
        free=free,
        period_start=START,
        period_end=period_end,
        reinstall_policy=reinstall_policy,
    )


def installations(free: int = 3, policy: ReinstallPolicy = "free_if_os_sound") -> QuotaOpened:
    return opened(kind="installation", free=free, period_end=None, reinstall_policy=policy)


QUOTA: Decider[QuotaCommand, QuotaEvent, QuotaLedger | None] = Decider(decide=decide, evolve=evolve, initial=None)
History = Given[QuotaCommand, QuotaEvent, QuotaLedger | None]


def ledger(outcome: History | When[QuotaCommand, QuotaEvent, QuotaLedger | None]) -> QuotaLedger:
    """The ledger a history or a decision leaves: open, since the test decided on one."""
    state = outcome.state
    assert state is not None
    return state


def consumed(history: History, command: Consume) -> QuotaConsumed:
    [event] = history.when(command).events
    assert isinstance(event, QuotaConsumed)
    return event


# --- opening ----------------------------------------------------------------------------


def test_open_starts_a_full_balance() -> None:
    history = QUOTA.given().when(
        OpenQuota(agreement_id="agr-1", kind="training_seat", free=3, period_start=START, period_end=END)
    ).then(opened())
    assert balance(ledger(history)) == Balance(free_total=3, reserved=0, consumed_free=0, lapsed=0, available=3)


@pytest.mark.parametrize(
    ("command", "field"),
    [
        (OpenQuota(agreement_id="agr-1", kind="training_seat", free=-1, period_start=START, period_end=END), "free"),
        (OpenQuota(agreement_id=" ", kind="training_seat", free=3, period_start=START, period_end=END), "agreement_id"),
        (
            OpenQuota(agreement_id="agr-1", kind="training_seat", free=3, period_start=END, period_end=START),
            "period_end",
        ),
        (
            OpenQuota(agreement_id="agr-1", kind="installation", free=3, period_start=START, period_end=None),
            "reinstall_policy",
        ),
        (
            OpenQuota(
                agreement_id="agr-1",
                kind="training_seat",
                free=3,
                period_start=START,
                period_end=END,
                reinstall_policy="charged",
            ),
            "reinstall_policy",
        ),
    ],
)
def test_open_rejects_a_bad_quota_naming_the_field(command: OpenQuota, field: str) -> None:
    QUOTA.given().when(command).then_rejected(field=field)


def test_open_twice_is_rejected_at_agreement_id() -> None:
    command = OpenQuota(agreement_id="agr-1", kind="training_seat", free=3, period_start=START, period_end=END)
    QUOTA.given(opened()).when(command).then_rejected(field="agreement_id")


def test_commands_before_open_are_rejected_at_agreement_id() -> None:
    QUOTA.given().when(Reserve(ref="r1", units=1, on=DAY)).then_rejected("quota_not_open", "agreement_id")


# --- rule C7: training ------------------------------------------------------------------


def test_C7_three_free_people_per_enterprise_and_B5_the_fourth_is_billable() -> None:
    """rule C7 [2]: three people free; rule B5: the seats beyond are billed, the balance stops at 0."""
    history = QUOTA.given(
        opened(free=3),
        QuotaConsumed(ref="c1", on=DAY, free_units=2, waived_units=0, billable_units=0, clauses=(C7_FREE,)),
    )
    event = consumed(history, Consume(ref="c2", units=2, on=DAY))
    assert (event.free_units, event.waived_units, event.billable_units) == (1, 0, 1)
    assert event.clauses == (C7_FREE, B5_BEYOND_QUOTA)
    assert balance(ledger(history.when(Consume(ref="c2", units=2, on=DAY)))).available == 0


def test_C7_one_free_person_per_system() -> None:
    """rule C7 [4]: one person free."""
    event = consumed(QUOTA.given(opened(free=1)), Consume(ref="c1", units=2, on=DAY))
    assert (event.free_units, event.billable_units) == (1, 1)


def test_C7_one_free_onsite_session_the_second_is_B5_billable() -> None:
    """rule C7 [3]: one on-site training session free."""
    history = QUOTA.given(opened(kind="onsite_training_session", free=1))
    first = consumed(history, Consume(ref="s1", units=1, on=DAY))
    second = consumed(history.after(Consume(ref="s1", units=1, on=DAY)), Consume(ref="s2", units=1, on=DAY))
    assert (first.free_units, first.billable_units, second.free_units, second.billable_units) == (1, 0, 0, 1)
    assert second.clauses == (B5_BEYOND_QUOTA,)


def test_C7_basic_computer_training_is_never_free_even_with_seats_left() -> None:
    """rule C7 [2]: basic computer training (e.g. Windows) is outside the free training."""
    after = QUOTA.given(opened(free=3)).when(Consume(ref="c1", units=2, on=DAY, basic_computer_training=True)).then(
        QuotaConsumed(ref="c1", on=DAY, free_units=0, waived_units=0, billable_units=2, clauses=(C7_BASIC_NEVER_FREE,))
    )
    assert balance(ledger(after)).available == 3


def test_C7_billable_training_is_tagged_for_the_discount_when_the_annual_fee_is_paid() -> None:
    """rule C7 [1]: customers who paid the year's fee get a discount on training beyond the quota."""
    history = QUOTA.given(opened(free=1))
    paid = consumed(history, Consume(ref="c1", units=2, on=DAY, annual_fee_paid=True))
    unpaid = consumed(history, Consume(ref="c1", units=2, on=DAY))
    free_only = consumed(history, Consume(ref="c1", units=1, on=DAY, annual_fee_paid=True))
    assert paid.clauses == (C7_FREE, B5_BEYOND_QUOTA, C7_DISCOUNT_FEE_PAID)
    assert C7_DISCOUNT_FEE_PAID not in unpaid.clauses
    assert C7_DISCOUNT_FEE_PAID not in free_only.clauses


def test_C7_basic_computer_training_on_an_installation_ledger_is_rejected() -> None:
    QUOTA.given(installations()).when(
        Consume(ref="c1", units=1, on=DAY, basic_computer_training=True)
    ).then_rejected(field="basic_computer_training")


# --- rule C10: installation -------------------------------------------------------------


def test_C10_three_free_installations_then_B5_billable() -> None:
    """rule C10 [2]: three installations free; rule B5: the fourth is billed."""
    event = consumed(QUOTA.given(installations(free=3)), Consume(ref="i1", units=4, on=DAY))
    assert (event.free_units, event.billable_units) == (3, 1)
    assert event.clauses == (C10_FREE, B5_BEYOND_QUOTA)


def test_C10_one_free_installation() -> None:
    """rule C10 [4]: one installation free."""
    event = consumed(QUOTA.given(installations(free=1, policy="charged")), Consume(ref="i1", units=2, on=DAY))
    assert (event.free_units, event.billable_units) == (1, 1)


def test_C10_reinstall_after_a_fault_is_free_when_the_os_is_sound_and_leaves_the_quota() -> None:
    """rule C10 [2]: re-installation after a hardware or network fault, OS sound: free on site."""
    after = QUOTA.given(installations(free=3)).when(
        Consume(ref="i1", units=1, on=DAY, reinstall_after_fault=True, os_sound=True)
    ).then(
        QuotaConsumed(ref="i1", on=DAY, free_units=0, waived_units=1, billable_units=0, clauses=(C10_REINSTALL_FREE,))
    )
    assert balance(ledger(after)).available == 3


def test_C10_reinstall_free_even_when_the_quota_is_used_up() -> None:
    """rule C10 [2]: the fault clause applies after the three installations too."""
    history = QUOTA.given(installations(free=0))
    event = consumed(history, Consume(ref="i1", units=1, on=DAY, reinstall_after_fault=True, os_sound=True))
    assert (event.waived_units, event.billable_units) == (1, 0)


def test_C10_reinstall_with_an_unsound_os_is_an_ordinary_installation() -> None:
    """rule C10 [2]: without a sound OS the fault clause does not apply; the quota then B5."""
    history = QUOTA.given(installations(free=1))
    event = consumed(history, Consume(ref="i1", units=2, on=DAY, reinstall_after_fault=True, os_sound=False))
    assert (event.free_units, event.waived_units, event.billable_units) == (1, 0, 1)
    assert event.clauses == (C10_REINSTALL_OS_NOT_SOUND, C10_FREE, B5_BEYOND_QUOTA)


def test_C10_reinstall_is_charged_at_a_negotiated_amount_under_the_charged_policy() -> None:
    """rule C10 [4]: re-installation after a fault is charged even with a sound OS; the quota is untouched."""
    after = QUOTA.given(installations(free=1, policy="charged")).when(
        Consume(ref="i1", units=1, on=DAY, reinstall_after_fault=True, os_sound=True)
    ).then(
        QuotaConsumed(
            ref="i1", on=DAY, free_units=0, waived_units=0, billable_units=1, clauses=(C10_REINSTALL_CHARGED,)
        )
    )
    assert balance(ledger(after)).available == 1


def test_C10_reinstall_needs_the_os_finding_when_the_policy_depends_on_it() -> None:
    QUOTA.given(installations()).when(
        Consume(ref="i1", units=1, on=DAY, reinstall_after_fault=True)
    ).then_rejected("required", "os_sound")


def test_C10_reinstall_on_a_training_ledger_is_rejected() -> None:
    QUOTA.given(opened()).when(
        Consume(ref="c1", units=1, on=DAY, reinstall_after_fault=True, os_sound=True)
    ).then_rejected(field="reinstall_after_fault")


# --- reservations -----------------------------------------------------------------------


def test_a_reservation_holds_free_units() -> None:
    after = QUOTA.given(opened(free=3)).when(Reserve(ref="r1", units=2, on=DAY)).then(
        QuotaReserved(ref="r1", on=DAY, units=2, held_free=2)
    )
    assert balance(ledger(after)) == Balance(free_total=3, reserved=2, consumed_free=0, lapsed=0, available=1)


def test_two_bookings_cannot_both_get_the_last_free_seat() -> None:
    """rule C7: the second booking holds nothing; when consumed it is B5 billable."""
    history = QUOTA.given(opened(free=1), QuotaReserved(ref="r1", on=DAY, units=1, held_free=1))
    history = history.when(Reserve(ref="r2", units=1, on=DAY)).then(
        QuotaReserved(ref="r2", on=DAY, units=1, held_free=0)
    )
    second = consumed(history, Consume(ref="r2", on=DAY))
    assert (second.free_units, second.billable_units) == (0, 1)
    first = consumed(history, Consume(ref="r1", on=DAY))
    assert (first.free_units, first.billable_units) == (1, 0)


def test_a_booking_larger_than_the_balance_holds_what_is_left() -> None:
    QUOTA.given(opened(free=3)).when(Reserve(ref="r1", units=5, on=DAY)).then(
        QuotaReserved(ref="r1", on=DAY, units=5, held_free=3)
    )


def test_release_returns_the_held_units() -> None:
    history = QUOTA.given(opened(free=3), QuotaReserved(ref="r1", on=DAY, units=2, held_free=2))
    after = ledger(history.when(Release(ref="r1", on=DAY)).then(QuotaReleased(ref="r1", on=DAY)))
    assert balance(after).available == 3 and after.reservations == ()


def test_consuming_fewer_than_booked_returns_the_rest() -> None:
    history = QUOTA.given(opened(free=3), QuotaReserved(ref="r1", on=DAY, units=3, held_free=3))
    event = consumed(history, Consume(ref="r1", units=1, on=DAY))
    after = ledger(history.when(Consume(ref="r1", units=1, on=DAY)))
    assert (event.free_units, event.billable_units) == (1, 0)
    assert balance(after) == Balance(free_total=3, reserved=0, consumed_free=1, lapsed=0, available=2)


def test_consuming_more_than_booked_draws_what_is_left_then_B5_bills() -> None:
    history = QUOTA.given(opened(free=3), QuotaReserved(ref="r1", on=DAY, units=1, held_free=1))
    event = consumed(history, Consume(ref="r1", units=5, on=DAY))
    assert (event.free_units, event.billable_units) == (3, 2)


def test_a_reserved_basic_computer_training_gives_back_its_held_units() -> None:
    """rule C7 [2]: classified at consumption as basic training: all billable, the hold returns."""
    history = QUOTA.given(opened(free=3), QuotaReserved(ref="r1", on=DAY, units=2, held_free=2))
    outcome = history.when(Consume(ref="r1", on=DAY, basic_computer_training=True))
    events = outcome.events
    assert isinstance(events[0], QuotaConsumed) and events[0].billable_units == 2
    assert balance(ledger(outcome)).available == 3


@pytest.mark.parametrize(
    "command",
    [
        Reserve(ref="r2", units=0, on=DAY),
        Reserve(ref="r2", units=-1, on=DAY),
        Consume(ref="c1", units=0, on=DAY),
        Consume(ref="r1", units=-2, on=DAY),
    ],
)
def test_units_below_one_are_rejected_at_units(command: QuotaCommand) -> None:
    history = QUOTA.given(opened(), QuotaReserved(ref="r1", on=DAY, units=1, held_free=1))
    history.when(command).then_rejected(field="units")


def test_a_direct_consumption_must_state_its_units() -> None:
    QUOTA.given(opened()).when(Consume(ref="c1", on=DAY)).then_rejected(field="units")


def test_releasing_an_unknown_reservation_is_rejected_at_ref() -> None:
    QUOTA.given(opened()).when(Release(ref="nope", on=DAY)).then_rejected("unknown_reservation", "ref")


@pytest.mark.parametrize(
    "command",
    [
        Reserve(ref="r1", units=1, on=DAY),
        Reserve(ref="c1", units=1, on=DAY),
        Consume(ref="c1", units=1, on=DAY),
        Release(ref="c1", on=DAY),
    ],
)
def test_refs_are_single_use(command: QuotaCommand) -> None:
    history = QUOTA.given(
        opened(),
        QuotaReserved(ref="r1", on=DAY, units=1, held_free=1),
        QuotaConsumed(ref="c1", on=DAY, free_units=1, waived_units=0, billable_units=0, clauses=(C7_FREE,)),
    )
    history.when(command).then_rejected(field="ref")


def test_settling_a_reservation_before_it_was_made_is_rejected_at_on() -> None:
    history = QUOTA.given(opened(), QuotaReserved(ref="r1", on=DAY, units=1, held_free=1))
    history.when(Consume(ref="r1", on=DAY - timedelta(days=1))).then_rejected(field="on")
    history.when(Release(ref="r1", on=DAY - timedelta(days=1))).then_rejected(field="on")


@pytest.mark.parametrize("on", [START - timedelta(days=1), END + timedelta(days=1)])
def test_booking_outside_the_period_is_rejected_at_on(on: date) -> None:
    history = QUOTA.given(opened())
    history.when(Reserve(ref="r1", units=1, on=on)).then_rejected(field="on")
    history.when(Consume(ref="c1", units=1, on=on)).then_rejected(field="on")


# --- expiry and renewal -----------------------------------------------------------------

AFTER = END + timedelta(days=1)


def test_unused_free_units_lapse_at_period_end() -> None:
    history = QUOTA.given(
        opened(free=3),
        QuotaConsumed(ref="c1", on=DAY, free_units=1, waived_units=0, billable_units=0, clauses=(C7_FREE,)),
    )
    after = history.when(Expire(on=AFTER)).then(QuotaExpired(on=AFTER, lapsed_units=2))
    assert balance(ledger(after)) == Balance(free_total=3, reserved=0, consumed_free=1, lapsed=2, available=0)


def test_expiry_before_the_period_ends_is_rejected_at_on() -> None:
    QUOTA.given(opened()).when(Expire(on=END)).then_rejected("period_not_over")


def test_a_quota_without_period_end_never_expires() -> None:
    QUOTA.given(installations()).when(Expire(on=AFTER)).then_rejected("no_period_end", "on")


def test_after_expiry_new_bookings_are_rejected_at_on() -> None:
    history = QUOTA.given(opened(), QuotaExpired(on=AFTER, lapsed_units=3))
    history.when(Reserve(ref="r1", units=1, on=DAY)).then_rejected("quota_expired")
    history.when(Consume(ref="c1", units=1, on=DAY)).then_rejected(field="on")
    history.when(Expire(on=AFTER)).then_rejected("already_expired")


def test_a_reservation_booked_in_the_period_is_honoured_after_expiry() -> None:
    history = QUOTA.given(
        opened(free=3), QuotaReserved(ref="r1", on=DAY, units=2, held_free=2), QuotaExpired(on=AFTER, lapsed_units=1)
    )
    event = consumed(history, Consume(ref="r1", units=1, on=AFTER))
    after = ledger(history.when(Consume(ref="r1", units=1, on=AFTER)))
    assert (event.free_units, event.billable_units) == (1, 0)
    # the held unit it did not use lapses instead of returning to a period that is over
    assert balance(after) == Balance(free_total=3, reserved=0, consumed_free=1, lapsed=2, available=0)


def test_a_reservation_released_after_expiry_lapses() -> None:
    history = QUOTA.given(
        opened(free=3), QuotaReserved(ref="r1", on=DAY, units=2, held_free=2), QuotaExpired(on=AFTER, lapsed_units=1)
    )
    after = ledger(history.when(Release(ref="r1", on=AFTER)))
    assert balance(after) == Balance(free_total=3, reserved=0, consumed_free=0, lapsed=3, available=0)


def test_renewal_opens_a_fresh_period() -> None:
    history = QUOTA.given(opened(free=3), QuotaExpired(on=AFTER, lapsed_units=3))
    next_end = date(2025, 12, 31)
    renewed = history.when(Renew(free=3, period_start=AFTER, period_end=next_end)).then(
        QuotaRenewed(free=3, period_start=AFTER, period_end=next_end)
    )
    assert balance(ledger(renewed)) == Balance(free_total=3, reserved=0, consumed_free=0, lapsed=0, available=3)
    assert consumed(renewed, Consume(ref="c1", units=1, on=AFTER)).free_units == 1


@pytest.mark.parametrize(
    ("history", "command", "field"),
    [
        ((opened(),), Renew(free=3, period_start=AFTER, period_end=None), "period_start"),
        (
            (opened(), QuotaReserved(ref="r1", on=DAY, units=1, held_free=1), QuotaExpired(on=AFTER, lapsed_units=2)),
            Renew(free=3, period_start=AFTER, period_end=None),
            "period_start",
        ),
        (
            (opened(), QuotaExpired(on=AFTER, lapsed_units=3)),
            Renew(free=3, period_start=END, period_end=None),
            "period_start",
        ),
        (
            (opened(), QuotaExpired(on=AFTER, lapsed_units=3)),
            Renew(free=-1, period_start=AFTER, period_end=None),
            "free",
        ),
    ],
)
def test_renewal_rejections_name_the_field(history: tuple[QuotaEvent, ...], command: Renew, field: str) -> None:
    QUOTA.given(*history).when(command).then_rejected(field=field)


def test_evolve_refuses_a_history_that_does_not_start_with_opening() -> None:
    with pytest.raises(ValueError, match="before QuotaOpened"):
        evolve(None, QuotaExpired(on=AFTER, lapsed_units=0))


# --- the invariant ----------------------------------------------------------------------


def random_command(rng: random.Random, state: QuotaLedger, refs: list[str], on: date, step: int) -> QuotaCommand:
    # A reservation's ref, a fresh one, and now and then a used one (which must be refused).
    fresh = f"ref-{step}"
    used = rng.choice(refs) if refs and rng.random() < 0.1 else fresh
    open_refs = [r.ref for r in state.reservations]
    held = rng.choice(open_refs) if open_refs and rng.random() < 0.6 else used
    kind = state.kind
    match rng.randrange(7):
        case 0 | 1:
            return Reserve(ref=used, units=rng.randrange(-1, 5), on=on)
        case 2 | 3:
            return Consume(
                ref=held,
                on=on,
                units=rng.choice([None, rng.randrange(-1, 6)]),
                basic_computer_training=kind != "installation" and rng.random() < 0.2,
                reinstall_after_fault=kind == "installation" and rng.random() < 0.3,
                os_sound=rng.choice([None, True, False]),
                annual_fee_paid=rng.random() < 0.5,
            )
        case 4:
            return Release(ref=held, on=on)
        case 5:
            return Expire(on=on)
        case _:
            start = (state.period_end or on) + timedelta(days=rng.randrange(0, 3))
            return Renew(free=rng.randrange(0, 5), period_start=start, period_end=start + timedelta(days=90))


@pytest.mark.parametrize("seed", range(40))
def test_random_valid_commands_never_make_the_balance_negative(seed: int) -> None:
    """rules C7, C10, B5: whatever valid commands arrive, free units are never overdrawn."""
    rng = random.Random(seed)
    kind: QuotaKind = rng.choice(["installation", "training_seat", "onsite_training_session"])
    first = OpenQuota(
        agreement_id="agr-1",
        kind=kind,
        free=rng.randrange(0, 5),
        period_start=START,
        period_end=rng.choice([None, START + timedelta(days=90)])
        if kind == "installation"
        else START + timedelta(days=90),
        reinstall_policy=rng.choice(["free_if_os_sound", "charged"]) if kind == "installation" else None,
    )
    state = ledger(QUOTA.given().when(first))
    refs: list[str] = []
    accepted = 0
    on = START
    for step in range(200):
        on += timedelta(days=rng.randrange(0, 4))  # a clock that only moves forward, as commands arrive
        command = random_command(rng, state, refs, on, step)
        outcome = QUOTA.given_state(state).when(command)
        try:
            events, state = outcome.events, ledger(outcome)
        except Rejected:
            continue
        accepted += 1
        if isinstance(command, Reserve | Consume):
            refs.append(command.ref)
        for event in events:
            if isinstance(event, QuotaConsumed):
                assert min(event.free_units, event.waived_units, event.billable_units) >= 0
                if isinstance(command, Consume) and command.units is not None:
                    assert event.units == command.units
        now = balance(state)
        assert now.available >= 0
        assert now.reserved == sum(r.held_free for r in state.reservations) >= 0
        assert now.free_total == now.reserved + now.consumed_free + now.lapsed + now.available
        assert not state.expired or now.available == 0
    assert accepted > 30  # the generator must exercise the ledger, not just its refusals
