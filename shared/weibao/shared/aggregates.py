"""Load, decide, append: the one way every service's command handlers touch the log.

A command's private events and the public messages they make true (`translate`) are
appended together, so the relay publishes nothing that was not committed. A command id
seen before answers what it stored then: a retry never stores twice. A command id seen
before with another body (another fingerprint) is a key reused for a different request:
the event store refuses it (`CommandReused`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from weibao.shared.codec import Codec
from weibao.shared.errors import Rejected
from weibao.shared.events import NewEvent, RecordedEvent
from weibao.shared.eventstore import ConcurrencyError, EventStore

# How many times a command decides again after losing a race, before the caller hears it.
CONFLICT_ATTEMPTS = 3

S = TypeVar("S")
E = TypeVar("E")


def _nothing(_event: Any, _state: Any) -> list[Any]:
    return []


@dataclass
class Repository(Generic[S, E]):
    store: EventStore
    private: Codec
    evolve: Callable[[S, E], S]
    initial: S
    public: Codec = field(default_factory=lambda: Codec([]))
    translate: Callable[[E, S], list[Any]] = _nothing

    async def load(self, stream_id: str, *, as_of: datetime | None = None,
                   conn: AsyncConnection | None = None) -> tuple[S, int]:
        """The state folded from the stream's private events, and the stream's version."""
        events = await self.store.load(stream_id, as_of=as_of, conn=conn)
        state = self.initial
        for recorded in events:
            if self.private.knows(recorded.type):
                state = self.evolve(state, self.private.decode(recorded))
        return state, (events[-1].version if events else 0)

    async def execute(
        self,
        stream_id: str,
        decide: Callable[[S], list[E]],
        *,
        command_id: str | None = None,
        meta: Mapping[str, Any] | None = None,
        conn: AsyncConnection | None = None,
    ) -> list[RecordedEvent]:
        """With `conn`, inside the caller's transaction (a consumer's, with its checkpoint);
        the caller commits, then calls `store.notify()`.

        A command that lost a race to another writer (the deadline clock, a second phone)
        decides again on the new state, a few times, before the caller hears of it: the
        decision is pure, so deciding again is safe, and the append checks the command id
        under the log's lock, so a retry never stores twice."""
        if conn is not None:
            return await self._execute_once(stream_id, decide, command_id=command_id, meta=meta, conn=conn)
        async with self.store.stream_lock(stream_id):
            for attempt in range(1, CONFLICT_ATTEMPTS + 1):
                try:
                    return await self._execute_once(stream_id, decide, command_id=command_id, meta=meta, conn=None)
                except ConcurrencyError:
                    if attempt == CONFLICT_ATTEMPTS:
                        raise
        raise AssertionError("unreachable")

    async def _execute_once(self, stream_id: str, decide: Callable[[S], list[E]], *, command_id: str | None,
                            meta: Mapping[str, Any] | None, conn: AsyncConnection | None) -> list[RecordedEvent]:
        state, version = await self.load(stream_id, conn=conn)
        try:
            decided = decide(state)
        except Rejected:
            # A retry of a command already stored decides against the state its first run
            # made, and may be refused: it answers what it stored then. Looked up only here,
            # so a first run costs no extra read (the append checks the id under its lock).
            if command_id is not None and (done := await self.store.command_result(command_id, meta)) is not None:
                return list(done.events)
            raise
        stored: list[NewEvent] = []
        for event in decided:
            state = self.evolve(state, event)
            stored.append(self.private.encode(event))
            stored.extend(self.public.encode(message) for message in self.translate(event, state))
        result = await self.store.append(stream_id, stored, expected_version=version, command_id=command_id,
                                         meta=meta, conn=conn)
        return list(result.events)
