"""Is a message on a producer's stream an event that producer stored? Its proof.

Anyone able to publish on a stream's subjects could write a well-formed envelope with
the next position; headers prove nothing. An event proves itself: its hash covers its
content and the previous event's hash, and the producer's key signed the hash. A reader
applies a message only if the hash matches the content, the signature is by a key it
trusts for that producer, and it follows the last event it applied from that producer.

Events a log stored before its service signed carry no signature; they are accepted only
at positions the log's signed `SigningStarted` vouches for, and, like signed ones, only if
their content matches their hash and they follow the last event applied (the log is one
hash chain, signed or not)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import nats.js.errors
from nats.aio.client import Client as NATS

from weibao.shared.events import GENESIS_HASH, RecordedEvent, hash_of
from weibao.shared.eventstore import SIGNING_STARTED
from weibao.shared.keys import EVENT, UNSIGNED, Trust
from weibao.shared.messages import BadMessage, Message, decode, position_header
from weibao.shared.streams import stream_name

# How often a reader looks again for a producer's SigningStarted while it has none.
LOOK_AGAIN = 5.0


def signature_problem(trust: Trust, upstream: str, message: Message) -> str | None:
    """Why `message` is not a signed event of `upstream` (None: it is one)."""
    if message.hash is None or message.prev_hash is None:
        return "no hash"
    if hash_of(message, message.prev_hash) != message.hash:
        return "content does not match its hash"
    if not trust.knows(upstream):
        return f"no key is trusted for {upstream}"
    return trust.check(upstream, EVENT, message.hash.encode(), message.signed_by, message.signature)


@dataclass
class Proof:
    """What one reader of one upstream checks before it applies a message."""

    trust: Trust
    upstream: str
    # The last position the upstream stored unsigned, from its signed SigningStarted.
    unsigned_through: int | None = None
    _looked_at: float = field(default=-LOOK_AGAIN, repr=False)

    async def problem(self, message: Message, applied: int, last_hash: str | None, nc: NATS) -> str | None:
        """None if `message` may be applied by a reader that applied this producer's
        positions up to `applied`, the last with hash `last_hash` (None: not known, a
        checkpoint from before links were kept); else why not, in words. The consumer and
        the replay ask alike, so a replay refuses what the live model refused."""
        if message.signature is None and message.hash is None:
            problem: str | None = UNSIGNED
        else:
            problem = signature_problem(self.trust, self.upstream, message)
        if problem == UNSIGNED:
            problem = await self._unsigned(message, nc)
            if problem is None and message.hash is not None and message.prev_hash is not None \
                    and hash_of(message, message.prev_hash) != message.hash:
                # The vouched-for position says nothing of the content: the hash still must.
                problem = "content does not match its hash"
        if problem is not None:
            return problem
        # Signed or not, the log is one hash chain (issue 11, item 3): a fork (an old
        # backup restored and written to, signed by the same key) breaks the link.
        problem = link_problem(message, applied, last_hash)
        if problem is not None:
            return problem
        if message.type == SIGNING_STARTED:
            self.unsigned_through = _unsigned_through(message)
        return None

    async def _unsigned(self, message: Message, nc: NATS) -> str | None:
        if self.unsigned_through is None and time.monotonic() - self._looked_at >= LOOK_AGAIN:
            self._looked_at = time.monotonic()
            self.unsigned_through = await signing_started(nc, self.trust, self.upstream)
        if self.unsigned_through is not None and message.position <= self.unsigned_through:
            return None
        return "unsigned, and no signed SigningStarted of its producer vouches for its position"


def link_problem(message: Message, applied: int, last_hash: str | None) -> str | None:
    """Why `message` does not follow the last event applied from its producer (position
    `applied`, hash `last_hash`), or None. Only the event right after is linked: a later
    one waits its turn (a gap). Unknown links (`last_hash` None past position 0: a
    checkpoint from before links were kept, or one moved past a parked event) are not
    checked, so old checkpoints keep applying."""
    if message.position != applied + 1:
        return None
    previous = GENESIS_HASH if applied == 0 else last_hash
    if previous is None:
        return None
    if message.prev_hash is None:
        # Relayed before envelopes carried links: only the start of an old stream. Once
        # the chain was seen, an unlinked message cannot continue it.
        return None if applied == 0 else "carries no prev_hash, yet the event applied before it had a hash"
    if message.prev_hash != previous:
        return "does not follow the last event applied from this producer (prev_hash differs)"
    return None


def _unsigned_through(message: Message) -> int | None:
    value = message.data.get("unsigned_through")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


async def signing_started(nc: NATS, trust: Trust, upstream: str) -> int | None:
    """The last unsigned position of `upstream`'s log, from its SigningStarted on the
    stream if a trusted key signed it (a forged one vouches for nothing)."""
    try:
        raw = await nc.jetstream().get_last_msg(stream_name(upstream), f"{upstream}.{SIGNING_STARTED}")
    except nats.js.errors.NotFoundError:
        return None
    try:
        message = decode(raw.subject or "", raw.data or b"", raw.headers)
    except BadMessage:
        return None
    if message.type != SIGNING_STARTED or signature_problem(trust, upstream, message) is not None:
        return None
    return _unsigned_through(message)


async def against_log(subject: str, data: bytes, headers: Mapping[str, str] | None,
                      event_at: Callable[[int], Awaitable[RecordedEvent | None]]) -> int | str:
    """A message on a producer's own stream held against that producer's log: the
    position when it is exactly the log's event there, else why it is foreign, in words.
    The relay asks it of what it finds on its stream; `weibao verify` of every message."""
    try:
        message = decode(subject, data, headers)
    except BadMessage as error:
        return f"unreadable message claiming position {position_header(headers)}: {error}"
    event = await event_at(message.position)
    if event is None:
        return f"claims position {message.position}, which the log does not hold"
    if hash_of(message, event.prev_hash) != event.hash:
        return f"claims position {message.position}, but its content is not the log's event"
    return message.position
