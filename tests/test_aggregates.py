"""The one way command handlers touch the log: load, decide, append (shared/aggregates.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from weibao.shared.aggregates import Repository
from weibao.shared.codec import Codec
from weibao.shared.db import begin_write
from weibao.shared.errors import Rejected
from weibao.shared.eventstore import EventStore


@dataclass(frozen=True)
class Counted:
    n: int


def evolve(state: int, event: Counted) -> int:
    return event.n


def count(state: int) -> list[Counted]:
    return [Counted(state + 1)]


async def repository(engine: AsyncEngine) -> Repository[int, Counted]:
    store = EventStore(engine)
    await store.create_tables()
    return Repository(store, Codec([Counted], prefix="private."), evolve, 0)


async def test_a_burst_of_commands_on_one_aggregate_all_apply_in_turn(engine: AsyncEngine) -> None:
    """Twelve requests at once on one counter (requests are handled concurrently): each
    decides on the state the one before it left; none is lost to a race with its twins."""
    counter = await repository(engine)
    results = await asyncio.gather(*(counter.execute("counter-1", count) for _ in range(12)))
    assert all(len(events) == 1 for events in results)
    state, version = await counter.load("counter-1")
    assert (state, version) == (12, 12)


async def test_a_retried_command_answers_what_it_stored_even_when_it_would_now_be_refused(
    engine: AsyncEngine,
) -> None:
    """A retry decides against the state its first run made; refused there, it answers
    its stored events instead of the refusal (the phone's retry after a lost reply)."""
    counter = await repository(engine)

    def once(state: int) -> list[Counted]:
        if state >= 1:
            raise Rejected("conflict", "counter", "already counted")
        return [Counted(1)]

    first = await counter.execute("counter-2", once, command_id="cmd-1")
    again = await counter.execute("counter-2", once, command_id="cmd-1")
    assert [e.position for e in again] == [e.position for e in first]
    state, version = await counter.load("counter-2")
    assert (state, version) == (1, 1)


# Issue 15: a repository keeps the committed states it folded, and a load reads only the
# events after the kept version; never a decision on a stale or uncommitted state.


@dataclass(frozen=True)
class Added:
    n: int


def total(state: int, event: Added) -> int:
    return state + event.n


def add(n: int) -> Callable[[int], list[Added]]:
    return lambda _state: [Added(n)]


async def summing(engine: AsyncEngine) -> tuple[EventStore, Repository[int, Added]]:
    store = EventStore(engine)
    await store.create_tables()
    return store, Repository(store, Codec([Added], prefix="private."), total, 0)


async def test_a_kept_state_loads_only_what_came_after_it(engine: AsyncEngine,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    store, counter = await summing(engine)
    asked: list[int] = []
    load = store.load

    async def counting(stream_id: str, **kw: Any) -> Any:
        asked.append(kw.get("after_version", 0))
        return await load(stream_id, **kw)

    monkeypatch.setattr(store, "load", counting)
    for n in (1, 2, 3):
        await counter.execute("sum-1", add(n))
    # the first command folds the stream; the others decide on the state kept after each
    # commit, and the append's version check vouches for it
    assert asked == [0]
    assert await counter.load("sum-1") == (6, 3)
    assert asked == [0, 3]  # a load (a query) reads what came after the kept version


async def test_another_writer_s_events_are_folded_in_before_deciding(engine: AsyncEngine) -> None:
    """A second replica (its own store and repository on the same database) appends
    between two commands of the first: what the first stores was decided on the whole log."""
    _, first = await summing(engine)
    _, second = await summing(engine)
    await first.execute("sum-2", add(1))
    await second.execute("sum-2", add(10))
    seen: list[int] = []

    def record(state: int) -> list[Added]:
        seen.append(state)
        return [Added(100)]

    await first.execute("sum-2", record)
    assert seen == [1, 11]  # decided on the kept state, the append refused it, decided on the log
    assert await first.load("sum-2") == (111, 3) == await second.load("sum-2")


async def test_a_refusal_on_the_kept_state_is_confirmed_on_the_log(engine: AsyncEngine) -> None:
    """Another replica's event makes a command acceptable that the kept state would
    refuse: no append checks a refusal, so it is decided again on the log first."""
    _, first = await summing(engine)
    _, second = await summing(engine)
    await first.execute("sum-4", add(1))
    await second.execute("sum-4", add(10))

    def over_ten(state: int) -> list[Added]:
        if state < 10:
            raise Rejected("conflict", "sum", "not yet")
        return [Added(1)]

    await first.execute("sum-4", over_ten)
    assert await second.load("sum-4") == (12, 3)
    with pytest.raises(Rejected):  # and a refusal that holds on the log is said
        await first.execute("sum-5", over_ten)


async def test_a_state_folded_in_a_transaction_that_rolls_back_is_not_kept(engine: AsyncEngine) -> None:
    _, counter = await summing(engine)
    await counter.execute("sum-3", add(1))
    with pytest.raises(RuntimeError):
        async with begin_write(engine) as conn:
            await counter.execute("sum-3", add(5), conn=conn)  # appended inside, then rolled back
            raise RuntimeError("the caller's batch fails")
    _, other = await summing(engine)
    await other.execute("sum-3", add(7))  # takes version 2, the one the rolled-back event had
    assert await counter.load("sum-3") == (8, 2)
