"""The shapes of events, before and after they are stored, and the hash that chains them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

S = TypeVar("S")

GENESIS_HASH = "0" * 64


def canonical_json(value: Any) -> str:
    """One text for one value, so a hash over it is stable across backends and restarts."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class NewEvent:
    """What `decide` returns: a fact not yet stored."""

    type: str
    data: Mapping[str, Any]
    schema_version: int = 1


@dataclass(frozen=True)
class RecordedEvent:
    """A fact as the log holds it."""

    position: int
    stream_id: str
    version: int
    type: str
    schema_version: int
    data: Mapping[str, Any]
    meta: Mapping[str, Any]
    recorded_at: datetime
    prev_hash: str
    hash: str = field(repr=False)
    # Who signed `hash` (a public key id, weibao.shared.keys) and the signature; None on
    # events stored before the service signed (they precede its `SigningStarted`).
    signed_by: str | None = field(default=None, repr=False)
    signature: str | None = field(default=None, repr=False)

    @property
    def command_id(self) -> str | None:
        value = self.meta.get("command_id")
        return str(value) if value is not None else None


def timestamp_text(moment: datetime) -> str:
    """UTC, microseconds, no offset: the form the hash covers and SQLite sorts."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds")


def event_hash(
    prev_hash: str,
    *,
    position: int,
    stream_id: str,
    version: int,
    type: str,
    schema_version: int,
    data_json: str,
    meta_json: str,
    recorded_at: datetime,
) -> str:
    body = canonical_json(
        [prev_hash, position, stream_id, version, type, schema_version, data_json, meta_json,
         timestamp_text(recorded_at)]
    )
    return hashlib.sha256(body.encode()).hexdigest()


class Hashed(Protocol):
    """What the hash covers: a stored event, or one as a message carries it."""

    @property
    def position(self) -> int: ...
    @property
    def stream_id(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def type(self) -> str: ...
    @property
    def schema_version(self) -> int: ...
    @property
    def data(self) -> Mapping[str, Any]: ...
    @property
    def meta(self) -> Mapping[str, Any]: ...
    @property
    def recorded_at(self) -> datetime: ...


def hash_of(event: Hashed, prev_hash: str) -> str:
    """The hash `event` has if it follows `prev_hash`: what the log stored, recomputed
    from the content (by `verify`, by a reader checking a message, by the relay)."""
    return event_hash(
        prev_hash,
        position=event.position,
        stream_id=event.stream_id,
        version=event.version,
        type=event.type,
        schema_version=event.schema_version,
        data_json=canonical_json(dict(event.data)),
        meta_json=canonical_json(dict(event.meta)),
        recorded_at=event.recorded_at,
    )


def fold(evolve: Callable[[S, RecordedEvent], S], initial: S, events: Iterable[RecordedEvent]) -> S:
    state = initial
    for event in events:
        state = evolve(state, event)
    return state
