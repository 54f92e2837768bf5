"""Load, decide, append: the one way every service's command handlers touch the log.

A command's private events and the public messages they make true (`translate`) are
appended together, so the relay publishes nothing that was not committed. A command id
seen before answers what it stored then: a retry never stores twice. A command id seen
before with another body (another fingerprint) is a key reused for a different request:
the event store refuses it (`CommandReused`)."""

from __future__ import annotations

from collections import OrderedDict
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
# Streams whose folded state a repository keeps (the busiest requests of the moment).
CACHED_STATES = 2048

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
    # Committed states by stream, with the version they were folded to (issue 15: loading
    # costs what happened since, not the whole history). Never trusted on its own: a
    # load reads the log's events after the cached version, so another writer's (a
    # replica's, the clock's) are folded in, and the append still checks the version. Only
    # what is committed goes in: a state folded inside a caller's transaction (which may
    # roll back) is not kept. States are immutable (evolve returns new ones).
    _states: OrderedDict[str, tuple[int, S]] = field(default_factory=OrderedDict, repr=False)

    async def load(self, stream_id: str, *, as_of: datetime | None = None,
                   conn: AsyncConnection | None = None) -> tuple[S, int]:
        """The state folded from the stream's private events, and the stream's version."""
        cached = self._states.get(stream_id) if as_of is None else None
        version, state = cached if cached is not None else (0, self.initial)
        events = await self.store.load(stream_id, as_of=as_of, conn=conn, after_version=version)
        for recorded in events:
            if self.private.knows(recorded.type):
                state = self.evolve(state, self.private.decode(recorded))
        version = events[-1].version if events else version
        if as_of is None and conn is None:
            self._keep(stream_id, version, state)
        return state, version

    def _keep(self, stream_id: str, version: int, state: S) -> None:
        if version == 0:
            return  # nothing stored yet: the initial state, no lookup to save
        self._states[stream_id] = (version, state)
        self._states.move_to_end(stream_id)
        while len(self._states) > CACHED_STATES:
            self._states.popitem(last=False)

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
                    # The first attempt may decide on the kept state; after a lost race, the log.
                    return await self._execute_once(stream_id, decide, command_id=command_id, meta=meta, conn=None,
                                                    kept=attempt == 1)
                except ConcurrencyError:
                    if attempt == CONFLICT_ATTEMPTS:
                        raise
        raise AssertionError("unreachable")

    async def _execute_once(self, stream_id: str, decide: Callable[[S], list[E]], *, command_id: str | None,
                            meta: Mapping[str, Any] | None, conn: AsyncConnection | None,
                            kept: bool = False) -> list[RecordedEvent]:
        # Issue 15: with a committed state kept for this stream, the command decides on it
        # without reading the log. That is never a stale decision: what it decides is
        # appended only if the stream is still at the kept version (the append's check,
        # empty decisions included), else the race is lost and decided again on the log;
        # and a refusal, which no append checks, is confirmed on the log before it is said.
        cached = self._states.get(stream_id) if kept and conn is None else None
        if cached is not None:
            version, state = cached
            self._states.move_to_end(stream_id)
        else:
            state, version = await self.load(stream_id, conn=conn)
        try:
            decided = decide(state)
        except Rejected:
            if cached is not None:
                return await self._execute_once(stream_id, decide, command_id=command_id, meta=meta, conn=conn)
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
        if conn is None and result.events and result.events[0].version == version + 1:
            # committed, and ours directly after what was folded: the state it makes is
            # known without reading it back (an answer of an earlier run of the same
            # command id is not: the next load reads the log instead)
            self._keep(stream_id, result.events[-1].version, state)
        return list(result.events)
