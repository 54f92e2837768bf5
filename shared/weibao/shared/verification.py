"""Verification of the whole path, not only the log: the log's chain and signatures, and
its stream on the broker held against it (every position present, each the same event,
nothing foreign). What `weibao verify SERVICE` prints and the audit page shows."""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, field
from typing import Any

from nats.aio.client import Client as NATS
from nats.js.api import DeliverPolicy

from weibao.shared.events import RecordedEvent
from weibao.shared.eventstore import EventStore
from weibao.shared.keys import Trust
from weibao.shared.proof import against_log
from weibao.shared.streams import stream_name

# At most this many examples of each kind of finding are listed (all are counted).
EXAMPLES = 20


@dataclass
class StreamReport:
    """The stream held against the log."""

    checked: int = 0
    log_position: int = 0
    stream_messages: int = 0
    # Positions of the log the stream lacks, below the last one it holds (above it: not
    # relayed yet, `pending`).
    missing: int = 0
    missing_examples: list[int] = field(default_factory=list)
    pending: int = 0
    # Messages that are not our event at the position they claim: stream seq and why.
    foreign: int = 0
    foreign_examples: list[dict[str, Any]] = field(default_factory=list)
    duplicates: int = 0

    @property
    def ok(self) -> bool:
        return not (self.missing or self.foreign or self.duplicates)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, **asdict(self)}


async def verify_stream(store: EventStore, nc: NATS, service: str, *, idle_timeout: float = 5.0) -> StreamReport:
    js = nc.jetstream()
    stream = stream_name(service)
    report = StreamReport(log_position=await store.last_position())
    last_seq = (await js.stream_info(stream)).state.last_seq
    seen: set[int] = set()
    cache: dict[int, RecordedEvent] = {}

    async def event_at(position: int) -> RecordedEvent | None:
        if position not in cache:
            cache.clear()
            for event in await store.read_from(position - 1, 1000):
                cache[event.position] = event
        return cache.get(position)

    def foreign(seq: int, subject: str, reason: str) -> None:
        report.foreign += 1
        if len(report.foreign_examples) < EXAMPLES:
            report.foreign_examples.append({"stream_seq": seq, "subject": subject, "reason": reason})

    if last_seq:
        sub = await js.subscribe(f"{service}.>", stream=stream, ordered_consumer=True,
                                 deliver_policy=DeliverPolicy.ALL)
        try:
            while True:
                msg = await asyncio.wait_for(sub.next_msg(timeout=None), idle_timeout)
                seq = msg.metadata.sequence.stream
                report.stream_messages += 1
                found = await against_log(msg.subject, msg.data, msg.headers, event_at)
                if isinstance(found, str):
                    foreign(seq, msg.subject, found)
                elif found in seen:
                    report.duplicates += 1
                else:
                    seen.add(found)
                    report.checked += 1
                if seq >= last_seq:
                    break
        finally:
            await sub.unsubscribe()
    top = max(seen, default=0)
    for position in range(1, top + 1):
        if position not in seen:
            report.missing += 1
            if len(report.missing_examples) < EXAMPLES:
                report.missing_examples.append(position)
    report.pending = max(report.log_position - top, 0)
    return report


async def verify_service(store: EventStore, service: str, trust: Trust | None, nc: NATS | None) -> dict[str, Any]:
    """The log's chain and signatures, and (with a broker) its stream."""
    chain = await store.verify(trust, service)
    result: dict[str, Any] = {
        "ok": chain.ok, "checked": chain.checked, "first_broken": chain.first_broken, "reason": chain.reason,
        "signatures": "checked" if trust is not None else "not checked (no keys)",
        "signed": chain.signed, "unsigned": chain.unsigned,
    }
    if nc is not None:
        stream = await verify_stream(store, nc, service)
        result["stream"] = stream.as_dict()
        result["ok"] = result["ok"] and stream.ok
    return result
