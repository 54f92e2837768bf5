"""The envelope every service's events travel in on JetStream.

Headers carry what the broker and the trackers need without parsing the body
(message id, producer position); the JSON body carries the event itself. Readers ignore
fields they do not know; a breaking change of the envelope is a new ENVELOPE version."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from weibao.shared.events import RecordedEvent, canonical_json, timestamp_text

ENVELOPE = 1
MSG_ID = "Nats-Msg-Id"
EXPECTED_LAST_SEQUENCE = "Nats-Expected-Last-Sequence"
POSITION = "Weibao-Position"
EVENT_TYPE = "Weibao-Type"


class BadMessage(Exception):
    """A message we cannot read; it is parked with this reason, never retried blindly."""


def message_id(service: str, position: int, digest: str) -> str:
    """`service:position:hash-prefix`. The hash in the id binds it to the event's
    content: nobody can take the id of an event before it is published (the broker
    would drop the real one as a duplicate) without knowing what it will say. Streams
    relayed before kept `service:position`; readers never rely on the id alone."""
    return f"{service}:{position}:{digest[:16]}"


def default_subject(service: str, event: RecordedEvent) -> str:
    return f"{service}.{event.type}"


def encode(service: str, event: RecordedEvent) -> tuple[bytes, dict[str, str]]:
    body = {
        "envelope": ENVELOPE,
        "service": service,
        "position": event.position,
        "stream_id": event.stream_id,
        "version": event.version,
        "type": event.type,
        "schema_version": event.schema_version,
        "recorded_at": timestamp_text(event.recorded_at) + "Z",
        "data": event.data,
        "meta": event.meta,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
        "signed_by": event.signed_by,
        "signature": event.signature,
    }
    headers = {
        MSG_ID: message_id(service, event.position, event.hash),
        POSITION: str(event.position),
        EVENT_TYPE: event.type,
    }
    return canonical_json(body).encode(), headers


@dataclass(frozen=True)
class Message:
    """An upstream event as a consumer sees it."""

    service: str
    position: int
    stream_id: str
    version: int
    type: str
    schema_version: int
    recorded_at: datetime
    data: Mapping[str, Any]
    meta: Mapping[str, Any]
    subject: str = ""
    # The event's link and proof (weibao.shared.proof checks them); None on messages
    # relayed before events carried them.
    prev_hash: str | None = None
    hash: str | None = None
    signed_by: str | None = None
    signature: str | None = None


_FIELDS: dict[str, type | tuple[type, ...]] = {
    "service": str,
    "position": int,
    "stream_id": str,
    "version": int,
    "type": str,
    "schema_version": int,
    "recorded_at": str,
    "data": dict,
    "meta": dict,
}


def position_header(headers: Mapping[str, str] | None) -> int | None:
    value = (headers or {}).get(POSITION)
    if value is None or not value.isdigit():
        return None
    return int(value)


def decode(subject: str, payload: bytes, headers: Mapping[str, str] | None) -> Message:
    """Parse and check an envelope; raise BadMessage naming what is wrong."""
    try:
        body = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadMessage(f"not JSON: {error}") from error
    if not isinstance(body, dict):
        raise BadMessage("not a JSON object")
    envelope = body.get("envelope")
    if envelope != ENVELOPE:
        raise BadMessage(f"unknown envelope version {envelope!r} (we read {ENVELOPE})")
    for name, kind in _FIELDS.items():
        value = body.get(name)
        # bool is an int in Python; a position of `true` is still garbage
        if not isinstance(value, kind) or isinstance(value, bool):
            raise BadMessage(f"field {name!r} is missing or not {getattr(kind, '__name__', kind)}")
    header = position_header(headers)
    if header is None or header != body["position"]:
        raise BadMessage(f"{POSITION} header {header!r} does not match position {body['position']}")
    try:
        recorded_at = datetime.fromisoformat(body["recorded_at"].replace("Z", "+00:00"))
    except ValueError as error:
        raise BadMessage(f"field 'recorded_at' is not a timestamp: {error}") from error
    return Message(
        service=body["service"],
        position=body["position"],
        stream_id=body["stream_id"],
        version=body["version"],
        type=body["type"],
        schema_version=body["schema_version"],
        recorded_at=recorded_at,
        data=body["data"],
        meta=body["meta"],
        subject=subject,
        prev_hash=_text_or_none(body, "prev_hash"),
        hash=_text_or_none(body, "hash"),
        signed_by=_text_or_none(body, "signed_by"),
        signature=_text_or_none(body, "signature"),
    )


def _text_or_none(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise BadMessage(f"field {name!r} is not text")
    return value
