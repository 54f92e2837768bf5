"""The kit's Repository (load, decide, append), remembering the states it folded.

A month's draft gets a line per message: folding all its events again for each would
make a long draft quadratic. So a state folded inside a transaction is kept with the
version and hash of the stream's last event, and used again only while that is still
the stream's head (read in the same transaction): a command, another replica or a
rolled-back batch changes the head, and the stream is folded anew. Never a decision on
stale state."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from weibao.shared.aggregates import Repository
from weibao.shared.events import RecordedEvent
from weibao.shared.eventstore import events_table

S = TypeVar("S")
E = TypeVar("E")


async def head(conn: AsyncConnection, stream_id: str) -> tuple[int, str] | None:
    """The version and hash of a stream's last event: what a folded state is valid for
    (the hash tells apart two events that took the same version, one rolled back)."""
    e = events_table
    row = (await conn.execute(select(e.c.version, e.c.hash).where(e.c.stream_id == stream_id)
                              .order_by(e.c.version.desc()).limit(1))).first()
    return (int(row.version), str(row.hash)) if row is not None else None


@dataclass
class FoldedRepository(Repository[S, E]):
    size: int = 1024  # streams whose folded state is kept, least recently used dropped
    _folded: OrderedDict[str, tuple[int, str, S]] = field(default_factory=OrderedDict, init=False, repr=False)

    async def load(self, stream_id: str, *, as_of: datetime | None = None,
                   conn: AsyncConnection | None = None) -> tuple[S, int]:
        # Only inside a transaction: the head and the events must be read in the same one.
        if conn is None or as_of is not None:
            return await super().load(stream_id, as_of=as_of, conn=conn)
        last = await head(conn, stream_id)
        if last is None:
            return self.initial, 0
        cached = self._folded.get(stream_id)
        if cached is not None and cached[:2] == last:
            self._folded.move_to_end(stream_id)
            return cached[2], last[0]
        state, version = await super().load(stream_id, conn=conn)
        self._remember(stream_id, last, state)
        return state, version

    async def execute(
        self,
        stream_id: str,
        decide: Callable[[S], list[E]],
        *,
        command_id: str | None = None,
        meta: Mapping[str, Any] | None = None,
        conn: AsyncConnection | None = None,
    ) -> list[RecordedEvent]:
        decided: list[tuple[S, list[E]]] = []

        def deciding(state: S) -> list[E]:
            decided.clear()  # a race lost and decided again: the last decision is the one stored
            events = decide(state)
            decided.append((state, events))
            return events

        recorded = await super().execute(stream_id, deciding, command_id=command_id, meta=meta, conn=conn)
        # Without a command id the append stored exactly what was decided, or raised; with
        # one it may answer a first run's events instead, which this decision did not make.
        if command_id is None and recorded and decided:
            state, events = decided[0]
            for event in events:
                state = self.evolve(state, event)
            last = recorded[-1]
            self._remember(stream_id, (last.version, last.hash), state)
        return recorded

    def _remember(self, stream_id: str, last: tuple[int, str], state: S) -> None:
        self._folded[stream_id] = (*last, state)
        self._folded.move_to_end(stream_id)
        while len(self._folded) > self.size:
            self._folded.popitem(last=False)
