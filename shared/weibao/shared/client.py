"""The one client of the services' request/reply protocol, and the proof it carries.

A request to `weibao.<service>.<name>` is a JSON object; the reply is
`{"ok": true, "result": ...}` or `{"ok": false, "error": {"code", "field", "message"}}`.
The gateway, the CLI (demo loader, pulse, operator commands), the benchmarks and the
tests all ask through `Client`, so there is one place that encodes, signs and reads.

Who acts is proven, never taken on trust (DESIGN.md, Trust): the caller signs, with its
`gateway` or `cli` key, the canonical JSON of [subject, actor, correlation id, issued-at,
sha256 of the exact payload bytes]. The actor, the body (and with it the command id) and
the time are all covered, so neither the actor header nor the body can be changed after
signing, and a captured request is only good for a few minutes (a command within them
is still stored once: its command id is inside the signed body). `prove` is the check a
service makes (rpc.expose), kept beside the signing so the two cannot drift apart."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from nats.aio.client import Client as NATS
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from weibao.shared import keys
from weibao.shared.errors import Rejected
from weibao.shared.events import canonical_json

ACTOR = "Weibao-Actor"
CORRELATION = "Weibao-Correlation-Id"
ISSUED_AT = "Weibao-Issued-At"
KEY = "Weibao-Key"
SIGNATURE = "Weibao-Signature"

# Who may send commands in someone's name (keys.SIGNERS); the services only sign events.
CALLERS = ("gateway", "cli")
# How far a request's issued-at may be from the service's clock, either way.
FRESHNESS = timedelta(minutes=5)


class ServiceError(Rejected):
    """The service refused (its code, field and message), or did not answer."""


class Unanswered(ServiceError):
    """Nobody answered (`unavailable`) or not in time (`timeout`): nothing is known to be stored."""


def wall_clock() -> datetime:
    # The real time, not `clock.utc_now`: WEIBAO_NOW pins the business day of a test or a
    # demo, while a signature's freshness is about when the request really left.
    return datetime.now(UTC)


def signed_message(subject: str, actor: str, correlation_id: str, issued_at: str, payload: bytes) -> bytes:
    """What the caller signs and the service checks."""
    return canonical_json([subject, actor, correlation_id, issued_at, hashlib.sha256(payload).hexdigest()]).encode()


def headers_for(signer: keys.Signer | None, subject: str, payload: bytes, *, actor: str, correlation_id: str,
                issued_at: datetime | None = None) -> dict[str, str]:
    """The headers of one request; signed when there is a signer (none only without keys)."""
    headers = {ACTOR: actor, CORRELATION: correlation_id}
    if signer is not None:
        when = (issued_at or wall_clock()).astimezone(UTC).isoformat()
        message = signed_message(subject, actor, correlation_id, when, payload)
        headers |= {ISSUED_AT: when, KEY: signer.key_id, SIGNATURE: signer.sign(keys.COMMAND, message)}
    return headers


@dataclass(frozen=True)
class Proof:
    """Who a request proves it acts for, and which caller vouched for it (None: no keys)."""

    actor: str
    signed_by: str | None


def unauthenticated(reason: str) -> Rejected:
    return Rejected("unauthenticated", "(actor)", reason)


def prove(keyring: keys.Keyring | None, subject: str, headers: Mapping[str, str], payload: bytes,
          now: datetime | None = None) -> Proof:
    """The actor a request may be believed to act for; Rejected("unauthenticated") when
    keys are configured and the request is not signed, signed by a key no caller is
    trusted with, altered after signing, or not issued within FRESHNESS of `now`.
    Without keys (kit unit tests only) the actor header is taken as it is."""
    actor = headers.get(ACTOR)
    if keyring is None:
        return Proof(actor or "system", None)
    key_id, signature = headers.get(KEY), headers.get(SIGNATURE)
    if not key_id or not signature:
        raise unauthenticated("unsigned: the request carries no signature")
    if not actor:
        raise unauthenticated("no actor named")
    caller = next((c for c in CALLERS if key_id in keyring.trust.keys.get(c, ())), None)
    if caller is None:
        raise unauthenticated(f"signed by {key_id}, a key trusted for none of {', '.join(CALLERS)}")
    issued_text = headers.get(ISSUED_AT, "")
    message = signed_message(subject, actor, headers.get(CORRELATION, ""), issued_text, payload)
    if (reason := keyring.trust.check(caller, keys.COMMAND, message, key_id, signature)) is not None:
        raise unauthenticated(reason)
    try:
        issued = datetime.fromisoformat(issued_text)
    except ValueError:
        raise unauthenticated(f"issued at {issued_text!r}, not a time") from None
    if issued.tzinfo is None:
        raise unauthenticated(f"issued at {issued_text!r}, a time without its zone")
    now = now or wall_clock()
    if abs(now - issued) > FRESHNESS:
        raise unauthenticated(f"issued at {issued.isoformat()}, more than {FRESHNESS.seconds // 60} minutes "
                       f"from the service's clock ({now.astimezone(UTC).isoformat()})")
    return Proof(actor, caller)


class Replays:
    """Signatures this process has already answered, kept as long as they are fresh: the
    same signed bytes sent again (captured and replayed) are refused, whatever they ask.
    A caller never sends one signature twice: each attempt is signed anew. Per process
    (a replica sees only its own share), bounded; a command's own id still guards what
    it stores across replicas and restarts."""

    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        self._seen: dict[str, datetime] = {}

    def first_time(self, signature: str, now: datetime | None = None) -> bool:
        now = now or wall_clock()
        if len(self._seen) >= self.limit:
            self._seen = {s: t for s, t in self._seen.items() if now - t <= 2 * FRESHNESS}
            if len(self._seen) >= self.limit:  # a flood of fresh ones: the oldest half goes
                self._seen = dict(list(self._seen.items())[self.limit // 2:])
        if signature in self._seen and now - self._seen[signature] <= 2 * FRESHNESS:
            return False
        self._seen[signature] = now
        return True


class Client:
    """Requests to the services over `nc`, each signed by `signer` (the process's own key)."""

    def __init__(self, nc: NATS, signer: keys.Signer | None, *, timeout: float = 10.0) -> None:
        self.nc, self.signer, self.timeout = nc, signer, timeout

    @classmethod
    def from_env(cls, nc: NATS, caller: str, *, timeout: float = 10.0) -> Client:
        """Signed by `caller`'s key from WEIBAO_KEYS; unsigned only when no keys are
        configured at all. A keys folder without that key is a mistake worth stopping on:
        every request would be refused."""
        keyring = keys.Keyring.from_env()
        return cls(nc, signer_of(keyring, caller), timeout=timeout)

    async def answer(self, subject: str, body: Mapping[str, Any], *, actor: str, correlation_id: str | None = None,
                     timeout: float | None = None) -> dict[str, Any]:
        """The whole reply to `subject` (`weibao.<service>.<name>`): ok or the refusal.
        Unanswered when nobody answers or not in time."""
        payload = json.dumps(body, ensure_ascii=False, default=str).encode()
        headers = headers_for(self.signer, subject, payload, actor=actor,
                              correlation_id=correlation_id or uuid.uuid4().hex)
        service = subject.split(".")[1] if subject.count(".") >= 2 else subject
        try:
            reply = await self.nc.request(subject, payload, timeout=timeout or self.timeout, headers=headers)
        except NoRespondersError as error:
            raise Unanswered("unavailable", "(service)", f"{service} is not running") from error
        except NatsTimeout as error:
            raise Unanswered("timeout", "(service)", f"{service} did not answer in time") from error
        answer: dict[str, Any] = json.loads(reply.data)
        return answer

    async def ask(self, service: str, name: str, body: Mapping[str, Any] | None = None, *, actor: str,
                  correlation_id: str | None = None, timeout: float | None = None) -> Any:
        """The result of `weibao.<service>.<name>`, or ServiceError with the service's code and field."""
        answer = await self.answer(f"weibao.{service}.{name}", body or {}, actor=actor, correlation_id=correlation_id,
                                   timeout=timeout)
        return result_of(answer)


def result_of(answer: Mapping[str, Any]) -> Any:
    """The result of a reply, or its refusal raised as ServiceError."""
    if not answer.get("ok"):
        problem = answer.get("error") or {}
        reason, values = problem.get("reason"), problem.get("values")
        raise ServiceError(str(problem.get("code", "internal")), str(problem.get("field", "(server)")),
                           str(problem.get("message", "the service refused")),
                           reason=str(reason) if reason else None, values=values if isinstance(values, dict) else None)
    return answer.get("result")


def signer_of(keyring: keys.Keyring | None, caller: str) -> keys.Signer | None:
    if keyring is None:
        return None
    signer = keyring.signer(caller)
    if signer is None:
        raise keys.KeysUnreadable(f"WEIBAO_KEYS holds no signing key of {caller!r}: its requests would be refused")
    return signer
