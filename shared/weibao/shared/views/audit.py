"""What every service answers an auditor (weibao.shared.audit; issue 12, item 4): its
aggregates, one aggregate's history, and how far its read models have caught up.

Times are ISO 8601, always with their UTC offset. An event's `data` and `meta` are
free-form JSON: their shape is the event type's (each service's README lists its events)
and the request's (who, which correlation id, which signing key)."""

from __future__ import annotations

from pydantic import AwareDatetime, Field, JsonValue

from weibao.shared.views import View

__all__ = [
    "ChainCheck",
    "ForeignExample",
    "ForeignMessage",
    "History",
    "HistoryEvent",
    "ReadModelStatus",
    "ServiceStatus",
    "StreamCheck",
    "StreamSummary",
]


class StreamSummary(View):
    """An aggregate (one stream of a service's log) in the list of its service's."""

    stream_id: str = Field(description="the aggregate's stream id: its kind and id (`ticket-T-1001`)")
    version: int = Field(ge=1, description="its version: how many events its stream holds")
    events: int = Field(ge=1, description="how many events it has")
    last_type: str = Field(description="the type of its last event")
    last_position: int = Field(ge=1, description="its last event's position in the service's log")
    first_recorded_at: AwareDatetime = Field(description="when its first event was recorded")
    last_recorded_at: AwareDatetime = Field(description="when its last event was recorded")


class HistoryEvent(View):
    """An event of an aggregate's history, with who caused it and when."""

    position: int = Field(ge=1, description="the event's position in its service's log")
    version: int = Field(ge=1, description="the event's version in its aggregate's stream")
    type: str = Field(description="the event's type: `private.CheckedIn`, `dispatch.VisitAssigned`, ...")
    data: dict[str, JsonValue] = Field(description="the event's fields; their shape is the event type's")
    meta: dict[str, JsonValue] = Field(description=(
        "the request that caused it: `actor` (`role:username`), `correlation_id`, `command_id`, "
        "`signed_by`, ...; a policy's event names the message it followed"))
    recorded_at: AwareDatetime = Field(description="when the event was recorded")


class History(View):
    """An aggregate's history: every event, in order; with `as_of`, what was recorded by then."""

    stream_id: str = Field(description="the aggregate's stream id")
    as_of: AwareDatetime | None = Field(description="the time asked about; null for the whole history")
    events: list[HistoryEvent] = Field(description="its events, oldest first")


class ReadModelStatus(View):
    """A read model (a consumer) of a service against the stream it follows."""

    consumer: str = Field(description="the read model's name")
    upstream: str = Field(description="the service whose stream it follows")
    applied_seq: int = Field(ge=0, description="the last message of that stream it applied")
    upstream_seq: int | None = Field(description="the stream's last message; null when the broker did not say")
    behind: int | None = Field(ge=0, description="how many messages it has still to apply; "
                                                 "null when the broker did not say")
    parked: int = Field(ge=0, description="messages it set aside (parked) for an operator")


class ForeignMessage(View):
    """A message on the service's stream that it did not write: an alarm."""

    stream_seq: int = Field(description="its sequence in the stream (0: messages not accounted for)")
    reason: str = Field(description="why it is not the service's")


class ForeignExample(View):
    stream_seq: int = Field(description="the message's sequence in the stream")
    subject: str = Field(description="its subject")
    reason: str = Field(description="why it is not the log's event at the position it claims")


class StreamCheck(View):
    """The service's stream on the broker held against its log."""

    ok: bool = Field(description="true when nothing is missing, foreign or duplicated")
    checked: int = Field(ge=0, description="messages found to be the log's events")
    log_position: int = Field(ge=0, description="the log's last position")
    stream_messages: int = Field(ge=0, description="messages read from the stream")
    missing: int = Field(ge=0, description="positions of the log the stream lacks")
    missing_examples: list[int] = Field(description="some of them (at most 20)")
    pending: int = Field(ge=0, description="positions not relayed yet")
    foreign: int = Field(ge=0, description="messages that are not the log's event at the position they claim")
    foreign_examples: list[ForeignExample] = Field(description="some of them (at most 20)")
    duplicates: int = Field(ge=0, description="log events found on the stream more than once")


class ChainCheck(View):
    """The log's hash chain and signatures verified (`verify=true`)."""

    ok: bool = Field(description="true when the chain (and the stream, when checked) holds")
    checked: int = Field(ge=0, description="events checked")
    first_broken: int | None = Field(description="the first position where the chain breaks; null if it holds")
    reason: str = Field(description="why it breaks there; empty if it holds")
    signatures: str = Field(description="`checked`, or `not checked (no keys)`")
    signed: int = Field(ge=0, description="events whose signature was checked")
    unsigned: int = Field(ge=0, description="unsigned events accepted: written before the log was signed")
    stream: StreamCheck | None = Field(default=None, description="the broker's stream held against the log; "
                                                                 "null when the service has no broker")


class ServiceStatus(View):
    """A service's replay status: its log, what it relayed, and each read model's position."""

    service: str = Field(description="the service")
    log_position: int = Field(ge=0, description="its log's last position")
    relayed_position: int = Field(ge=0, description="the last position it published to the broker")
    read_models: list[ReadModelStatus] = Field(description="its read models, each against its upstream")
    signing: bool = Field(description="whether it signs its events")
    foreign_messages: list[ForeignMessage] = Field(description="messages on its stream it did not write "
                                                               "(the last 20); any is an alarm")
    refused: dict[str, int] = Field(description="messages each read model refused for want of proof, by "
                                                "read model (those with none are left out); any is an alarm")
    chain: ChainCheck | None = Field(default=None, description="with `verify=true`, its log's hash chain "
                                                               "and signatures; null otherwise")
