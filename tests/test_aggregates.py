"""The one way command handlers touch the log: load, decide, append (shared/aggregates.py)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from weibao.shared.aggregates import Repository
from weibao.shared.codec import Codec
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
