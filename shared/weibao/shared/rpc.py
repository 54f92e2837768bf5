"""Commands and queries over NATS request/reply, answered the same way by every service.

A request is a JSON object; the reply is `{"ok": true, "result": ...}` or
`{"ok": false, "error": {"code", "field", "message"}}`. A refused command stored
nothing (the event store's append is all or nothing). Ids for audit come with the
request: `command_id` (idempotency) in the body, the acting user and correlation id in
the `Weibao-Actor` and `Weibao-Correlation-Id` headers, believed only when the gateway's
or the CLI's signature over them holds (weibao.shared.client, the one client that sends
them, signs; `expose` checks)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import structlog
from faststream.nats import NatsBroker
from faststream.nats.annotations import NatsMessage
from pydantic import BaseModel

from weibao.shared import codec, text
from weibao.shared.client import CORRELATION, KEY, SIGNATURE, Replays, prove
from weibao.shared.db import unavailable
from weibao.shared.errors import Rejected
from weibao.shared.events import RecordedEvent
from weibao.shared.eventstore import FINGERPRINT, ConcurrencyError
from weibao.shared.keys import Keyring
from weibao.shared.settings import environment

log = structlog.get_logger("weibao.rpc")

Handler = Callable[[Mapping[str, Any], Mapping[str, Any]], Awaitable[Any]]

# Requests to one subject handled at once. FastStream's NATS subscriber otherwise takes
# one message of a subject at a time: eight phones checking in would queue behind one
# another's database round trips, and the event store could never commit them together.
# Commands on one aggregate stay safe: optimistic concurrency decides, and loses retry.


# What a request answers while the service's database cannot be reached.
UNAVAILABLE = Rejected("unavailable", "(database)",
                       "the service cannot reach its database just now; whether a command was stored is not "
                       "known: send it again later with the same command_id (it is stored once)")


# Signed requests this process answered: a captured one sent again is refused.
REPLAYS = Replays()


def subject(service: str, name: str) -> str:
    return f"weibao.{service}.{name}"


def reply_error(error: Rejected) -> dict[str, Any]:
    return {"ok": False, "error": error.as_dict()}


def events_reply(events: Sequence[RecordedEvent]) -> dict[str, Any]:
    """What a command answers: the events it stored (none for a no-op or a retry's twin)."""
    return {"events": [{"position": e.position, "version": e.version, "type": e.type, "data": e.data}
                       for e in events]}


def history_reply(events: Sequence[RecordedEvent]) -> list[dict[str, Any]]:
    """An aggregate's history for the auditor: every event with its meta and time."""
    return [{"position": e.position, "version": e.version, "type": e.type, "data": e.data, "meta": e.meta,
             "recorded_at": e.recorded_at.isoformat()} for e in events]


def command(method: Callable[..., Awaitable[Sequence[RecordedEvent]]],
            schema: type[BaseModel] | None = None) -> Handler:
    """A command endpoint: run `method(body, command_id=..., meta=...)`, answer its events.

    With a `schema` (weibao.shared.commands, the gateway's schema too) the method gets
    the body decoded into it, or the caller a refusal naming the first bad field: the
    CLI's and the demo's commands pass the same checks as the HTTP API's.

    The body's `command_fingerprint` (a hash of the request's body, sent beside the
    command id) goes into the meta stored with every event, never to the method: a
    command id seen before with another fingerprint is a reused key, refused."""

    async def handle(body: Mapping[str, Any], meta: Mapping[str, Any]) -> Any:
        command_id = body.get("command_id")
        fingerprint = body.get(FINGERPRINT)
        if fingerprint is not None:
            if not isinstance(fingerprint, str) or not 1 <= len(fingerprint) <= 100:
                raise Rejected("invalid", FINGERPRINT, "a hash of the request's body, at most 100 characters")
            body = {k: v for k, v in body.items() if k != FINGERPRINT}
            meta = {**meta, FINGERPRINT: fingerprint}
        if schema is None:
            return events_reply(await method(body, command_id=command_id, meta=meta))
        decoded = codec.parse(schema, {k: v for k, v in body.items() if k != "command_id"})
        return events_reply(await method(decoded, command_id=command_id, meta=meta))

    return handle


Q = TypeVar("Q", bound=BaseModel)


def query(method: Callable[[Q], Awaitable[Any]], schema: type[Q]) -> Handler:
    """A query endpoint: `method` gets the body decoded into `schema`, or the caller a
    refusal naming the first bad field."""

    async def handle(body: Mapping[str, Any], _meta: Mapping[str, Any]) -> Any:
        return await method(codec.parse(schema, body))

    return handle


def queue_group(service: str) -> str:
    """The replicas of one service share its requests: each request goes to one of them
    (a command decided once, not once per replica racing to answer first)."""
    return f"weibao-{service}"


def expose(broker: NatsBroker, service: str, name: str, handler: Handler, *, keys: Keyring | None) -> None:
    """Answer `weibao.<service>.<name>` with `handler(body, meta)`, for requests whose
    actor `keys` proves (the service's Runtime.keys; every request when None, kit tests).
    `keys` has no default: an endpoint that forgot it would believe any actor header."""
    endpoint_subject = subject(service, name)

    @broker.subscriber(endpoint_subject, queue=queue_group(service), max_workers=environment().rpc_workers)
    async def endpoint(message: NatsMessage) -> dict[str, Any]:
        headers = message.headers or {}
        try:
            # Before the body is read: an unproven request is answered nothing else, and
            # the handler never runs, so nothing is stored.
            proof = prove(keys, endpoint_subject, headers, message.body or b"")
            if proof.signed_by is not None and not REPLAYS.first_time(headers[SIGNATURE]):
                raise Rejected("unauthenticated", "(actor)", "replayed: this signed request was answered before")
        except Rejected as refused:
            log.warning("command.unauthenticated", subject=endpoint_subject, reason=refused.message,
                        key=headers.get(KEY), correlation_id=headers.get(CORRELATION))
            return reply_error(refused)
        meta: dict[str, Any] = {
            "actor": proof.actor,
            "correlation_id": headers.get(CORRELATION) or message.correlation_id,
        }
        if proof.signed_by is not None:
            meta["signed_by"] = proof.signed_by
        bound = log.bind(endpoint=endpoint_subject, **meta)
        try:
            body = json.loads(message.body or b"{}")
            if not isinstance(body, dict):
                raise Rejected("invalid", "(body)", "a JSON object is required")
            # Every request, from the gateway, the CLI or the demo loader: text no backend
            # could store (a NUL on PostgreSQL) is refused before anything is decided.
            text.check(body)
            result = await handler(body, meta)
            # Encoded inside the try: a result that cannot be encoded is a failure the
            # caller hears about, not a reply that never comes.
            encoded = codec.dump(result) if result is not None else None
        except json.JSONDecodeError as error:
            return reply_error(Rejected("invalid", "(body)", f"not JSON: {error.msg}"))
        except UnicodeDecodeError as error:  # bytes that are not UTF-8 (json.loads decodes them first)
            return reply_error(Rejected("invalid", "(body)", f"not UTF-8 text: {error.reason}"))
        except Rejected as error:
            bound.info("command.rejected", **error.as_dict())
            return reply_error(error)
        except ConcurrencyError:
            # Another writer (the deadline clock, a second phone) changed the aggregate
            # between our read and our append: nothing was stored; the caller retries.
            bound.info("command.conflict")
            return reply_error(Rejected("concurrency", "(aggregate)", "changed meanwhile; nothing was stored, retry"))
        except Exception as error:
            if unavailable(error):
                # The database is restarting or out of reach: an answer the caller can act
                # on (retry later, same command id), not a failure of the service. A cut
                # commit may have been stored; the command id makes the retry store once.
                bound.warning("command.unavailable", error=repr(error))
                return reply_error(UNAVAILABLE)
            # Never leave a caller waiting for a reply that will not come.
            bound.exception("command.failed")
            return reply_error(Rejected("internal", "(server)", "the service failed; see its log"))
        bound.info("command.done")
        return {"ok": True, "result": encoded}
