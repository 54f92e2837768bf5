"""Tracking consumers: exactly-once effects over JetStream's at-least-once delivery.

A consumer applies messages and advances its `tracking` row in one SQL transaction and
acks only after the commit. It checkpoints on the producer's position header: a message
at or below the checkpoint is a redelivery and only acked.

Order matters as much as de-duplication: after a crash JetStream can hand us position
N+2 while N+1 still waits for its ack timer. Applying N+2 would move the checkpoint past
N+1 and lose it, so on such a gap the consumer fetches the missing messages from the
stream itself and applies them first.

A handler that keeps failing is retried with back-off and, after `max_deliveries`,
parked in `parked` with the reason, and the consumer goes on; garbage (not JSON, wrong
envelope, unknown schema) is parked at once. An operator lists and retries parked
messages (`weibao parked`).

With a trust list, a message is applied only if it proves itself an event of its
producer (weibao.shared.proof: hash, signature, link to the last one applied). One that
does not is parked with the reason and never moves the checkpoint, so the real event at
that position is still applied when it comes."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import nats.errors
import nats.js.errors
import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    delete,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from weibao.shared.db import appended, begin_ddl, begin_write, unavailable
from weibao.shared.keys import Trust
from weibao.shared.messages import MSG_ID, BadMessage, Message, decode, position_header
from weibao.shared.proof import Proof, signature_problem
from weibao.shared.schema import migrate
from weibao.shared.streams import stream_name

log = structlog.get_logger("weibao.consumer")

metadata = MetaData()

tracking_table = Table(
    "tracking",
    metadata,
    Column("consumer", String(200), primary_key=True),
    Column("upstream", String(100), primary_key=True),
    # The producer's position: the checkpoint.
    Column("position", BigInteger, nullable=False),
    # The stream sequence of the last message seen: where a gap fill starts reading.
    Column("stream_seq", BigInteger, nullable=False),
    # The hash of the last event applied: the next must name it as its prev_hash.
    Column("hash", String(64), nullable=True),
)

parked_table = Table(
    "parked",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("consumer", String(200), nullable=False),
    Column("upstream", String(100), nullable=False),
    Column("stream_seq", BigInteger, nullable=False),
    Column("position", BigInteger, nullable=True),
    Column("subject", String(400), nullable=False),
    Column("headers", Text, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("reason", Text, nullable=False),
    Column("deliveries", Integer, nullable=False),
    Column("parked_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("consumer", "upstream", "stream_seq", name="parked_once"),
)


# A consumer's checkpoint, read and written in every transaction: built once (issue 15),
# so each batch only binds the consumer's name and upstream.
# (An update's bind names may not be its columns' names.)
_THIS = (tracking_table.c.consumer == bindparam("b_consumer"), tracking_table.c.upstream == bindparam("b_upstream"))
_CHECKPOINT = select(tracking_table.c.position, tracking_table.c.stream_seq, tracking_table.c.hash).where(*_THIS)
_CHECKPOINT_LOCKED = _CHECKPOINT.with_for_update()
_SAVE = update(tracking_table).where(*_THIS).values(
    position=bindparam("to_position"), stream_seq=bindparam("to_stream_seq"), hash=bindparam("to_hash"))


class Handler(Protocol):
    """What a consumer applies: a read model or a policy. It writes through `conn`
    only, so its effects commit or roll back with the checkpoint. Raise BadMessage for
    a message it can never handle (an unknown schema version): it is parked at once."""

    async def __call__(self, conn: AsyncConnection, message: Message) -> None: ...


class NotYet(Exception):
    """A handler cannot apply this message yet: it needs what another upstream has not
    delivered yet (billing's terms of an agreement, say). Retried with back-off for
    `patience`, not parked after `max_deliveries`: a lagging consumer is not a bad message."""


async def _first(work: asyncio.Future[Any], stop: asyncio.Event) -> bool:
    """Wait for `work` or `stop`, whichever comes first; True if `work` is done."""
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({work, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    return work.done()


def _unawaited(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


async def apply_all(handler: Handler, conn: AsyncConnection, messages: Sequence[Message]) -> None:
    """Hand a batch to a handler that can take one at once (`apply_batch`: one
    statement for many rows), else one message at a time."""
    apply_batch = getattr(handler, "apply_batch", None)
    if apply_batch is not None:
        await apply_batch(conn, messages)
        return
    for message in messages:
        await handler(conn, message)


@dataclass
class Incoming:
    """A message from the stream; `msg` is None when we fetched it ourselves (gap fill)."""

    stream_seq: int
    subject: str
    payload: bytes
    headers: Mapping[str, str]
    deliveries: int = 1
    msg: Msg | None = None

    @classmethod
    def from_msg(cls, msg: Msg) -> Incoming:
        meta = msg.metadata
        return cls(meta.sequence.stream, msg.subject, msg.data, dict(msg.headers or {}), meta.num_delivered, msg)

    @property
    def position(self) -> int | None:
        return position_header(self.headers)


@dataclass
class Checkpoint:
    position: int = 0
    stream_seq: int = 0
    hash: str | None = None
    # Redeliveries this transaction skipped; added to the totals once it commits.
    duplicates: int = 0


class _Gap(Exception):
    def __init__(self, before: Incoming) -> None:
        self.before = before


@dataclass
class TrackingConsumer:
    engine: AsyncEngine
    nc: NATS
    upstream: str
    name: str
    handler: Handler
    batch: int = 500
    max_deliveries: int = 5
    # How long a message that waits for another upstream (NotYet) is retried before it is
    # parked: long enough for that upstream's consumer to catch up after a restart.
    patience: timedelta = timedelta(minutes=5)
    backoff: Callable[[int], float] = field(default=lambda attempt: min(0.2 * 2**attempt, 5.0))
    ack_wait: float = 30.0
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    applied: int = 0
    # Redeliveries of what was already applied, seen and only acked: a health figure.
    duplicates: int = 0
    # Called after each commit: a policy that appends events wakes its service's relay.
    on_commit: Callable[[], None] = field(default=lambda: None)
    # The keys the upstream's events must be signed with; None only in the kit's own
    # tests, where nothing is signed and nothing is checked.
    trust: Trust | None = None
    # Messages refused for want of proof (parked): a health figure, never zero quietly.
    refused: int = 0
    _proof: Proof | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.trust is not None:
            self._proof = Proof(self.trust, self.upstream)

    @property
    def stream(self) -> str:
        return stream_name(self.upstream)

    async def create_tables(self) -> None:
        await migrate(self.engine)  # the kit's tables, at its current revision (weibao.shared.schema)
        # The tracking row exists before any message, so there is always a row to lock
        # (made under the DDL lock: replicas starting together make it once).
        async with begin_ddl(self.engine) as conn:
            if (await conn.execute(select(tracking_table.c.position).where(*self._key()))).first() is None:
                await conn.execute(
                    tracking_table.insert().values(consumer=self.name, upstream=self.upstream, position=0,
                                                   stream_seq=0)
                )

    def _this(self) -> dict[str, str]:
        return {"b_consumer": self.name, "b_upstream": self.upstream}

    def _key(self) -> tuple[Any, Any]:
        return (tracking_table.c.consumer == self.name, tracking_table.c.upstream == self.upstream)

    async def subscribe(self) -> Any:
        js = self.nc.jetstream()
        config = ConsumerConfig(
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.ack_wait,
            # We park ourselves; the broker must never stop delivering on its own.
            max_deliver=-1,
            max_ack_pending=max(self.batch * 4, 1000),
        )
        return await js.pull_subscribe(f"{self.upstream}.>", durable=self.name, stream=self.stream, config=config)

    async def run(self, stop: asyncio.Event) -> None:
        backoff = 0.1
        ready = False
        sub: Any = None
        # The next batch is fetched while this one commits: the database's fsync and
        # the broker's round trip overlap instead of taking turns.
        ahead: asyncio.Future[list[Msg]] | None = None
        try:
            while not stop.is_set():
                try:
                    if not ready:
                        await self.create_tables()
                        ready = True
                    if sub is None:
                        sub = await self.subscribe()
                    if ahead is None:
                        ahead = asyncio.ensure_future(sub.fetch(self.batch, timeout=1.0))
                    if not await _first(ahead, stop):
                        break  # stopping: what is fetched meanwhile is redelivered later
                    fetched, ahead = ahead, None
                    try:
                        msgs = fetched.result()
                    except (nats.errors.TimeoutError, TimeoutError):
                        continue
                    ahead = asyncio.ensure_future(sub.fetch(self.batch, timeout=1.0))
                    await self.handle([Incoming.from_msg(m) for m in msgs])
                    backoff = 0.1
                except asyncio.CancelledError:
                    raise
                except Exception as error:  # a broker outage must never end the consumer
                    log.warning("consumer.retry", consumer=self.name, error=repr(error), backoff=backoff)
                    sub = None
                    if ahead is not None:
                        ahead.cancel()
                        ahead = None
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
        finally:
            # Fetched, not handled: the broker redelivers them after ack_wait.
            if ahead is not None:
                ahead.cancel()
                # Whatever the fetch ends with (a timeout, or nats-py turning the cancel into
                # ConnectionClosedError when the connection closes first) nobody waits for it:
                # retrieved, so asyncio does not log "Task exception was never retrieved".
                ahead.add_done_callback(_unawaited)

    # -- the exactly-once core ------------------------------------------------------

    async def handle(self, batch: Sequence[Incoming]) -> None:
        """Apply a fetched batch: all in one transaction when all goes well, else one by
        one with retries, so one bad message cannot hold back or roll back the others."""
        work = deque(batch)
        while work:
            try:
                async with begin_write(self.engine) as conn:
                    checkpoint = await self._checkpoint(conn)
                    messages = [m for item in work if (m := await self._admit(conn, item, checkpoint)) is not None]
                    if messages:
                        await apply_all(self.handler, conn, messages)
                    await self._save(conn, checkpoint)
                    wrote = appended(conn)
                self._committed(checkpoint, messages, wrote)
            except _Gap as gap:
                await self._fill_gap(work, gap.before)
                continue
            except Exception as error:
                if unavailable(error):
                    # The database is away (a restart): no message is at fault. `run` backs
                    # off and the broker redelivers the batch; nothing counts toward parking.
                    raise
                await self._one_by_one(work)
                return
            await self._ack(work)
            return

    async def _one_by_one(self, work: deque[Incoming]) -> None:
        while work:
            item = work[0]
            attempt = 0
            since = self.clock()
            while True:
                try:
                    async with begin_write(self.engine) as conn:
                        checkpoint = await self._checkpoint(conn)
                        message = await self._admit(conn, item, checkpoint)
                        applied = []
                        if message is not None:
                            try:
                                await self.handler(conn, message)
                                applied.append(message)
                            except BadMessage as error:  # refused before writing: never retried
                                await self._park(conn, item, f"handler refused: {error}", item.deliveries)
                        await self._save(conn, checkpoint)
                        wrote = appended(conn)
                    self._committed(checkpoint, applied, wrote)
                    break
                except _Gap as gap:
                    await self._fill_gap(work, gap.before)
                    if not work:
                        return
                    item, attempt = work[0], 0
                    continue
                except Exception as error:
                    if unavailable(error):
                        raise  # as in `handle`: an outage is not this message's failure
                    deliveries = item.deliveries + attempt
                    waiting = isinstance(error, NotYet) and self.clock() - since < self.patience
                    if deliveries >= self.max_deliveries and not waiting:
                        await self._park_and_advance(item, f"handler failed {deliveries} times: {error!r}", deliveries)
                        break
                    attempt += 1
                    log.warning(
                        "consumer.handler_failed",
                        consumer=self.name,
                        upstream=self.upstream,
                        position=item.position,
                        attempt=deliveries,
                        error=repr(error),
                    )
                    if item.msg is not None:
                        await item.msg.in_progress()  # keep the broker from redelivering meanwhile
                    await asyncio.sleep(self.backoff(attempt))
            await self._ack([item])
            work.popleft()

    def _committed(self, checkpoint: Checkpoint, applied: Sequence[Message], wrote: bool) -> None:
        """Count and log what a transaction did, once it is committed: one line each.
        `wrote`: the handler appended events (a policy), so the relay has work."""
        if wrote:
            self.on_commit()
        self.applied += len(applied)
        self.duplicates += checkpoint.duplicates
        for message in applied:
            log.info(
                "message.handled",
                consumer=self.name,
                upstream=self.upstream,
                position=message.position,
                type=message.type,
                stream_id=message.stream_id,
                correlation_id=message.meta.get("correlation_id"),
                causation_id=message.meta.get("causation_id"),
            )

    async def _admit(self, conn: AsyncConnection, item: Incoming, checkpoint: Checkpoint) -> Message | None:
        """Decide what `item` is: a redelivery (None), garbage (parked, None), a gap
        (raises _Gap) or the next message, which moves the checkpoint and is returned."""
        position = item.position
        checkpoint.stream_seq = max(checkpoint.stream_seq, item.stream_seq)
        if position is not None and position <= checkpoint.position:
            checkpoint.duplicates += 1
            return None  # a redelivery of what we already applied: ack it, do nothing
        try:
            message = decode(item.subject, item.payload, item.headers)
        except BadMessage as error:
            await self._park(conn, item, str(error), item.deliveries)
            # Without proofs, parked counts as consumed if our relay's message id says so.
            # With them, never: anyone can write an id, and the real event at that
            # position must still be applied when it comes.
            if (self._proof is None and position == checkpoint.position + 1
                    and _relay_id(item.headers.get(MSG_ID), self.upstream, position)):
                checkpoint.position = position
            return None
        if self._proof is not None:
            problem = await self._proof.problem(message, checkpoint.position, checkpoint.hash, self.nc)
            if problem is not None:
                self.refused += 1
                await self._park(conn, item, f"not applied, no proof: {problem}", item.deliveries)
                return None
        if message.position != checkpoint.position + 1:
            raise _Gap(item)
        checkpoint.position = message.position
        checkpoint.hash = message.hash
        return message

    async def _fill_gap(self, work: deque[Incoming], before: Incoming) -> None:
        """Fetch from the stream what lies between our checkpoint and `before`."""
        async with self.engine.connect() as conn:
            checkpoint = await self._checkpoint(conn, lock=False)
        if before.position is not None and before.position <= checkpoint.position + 1:
            # A replica sharing this durable consumer closed the gap meanwhile: `before` is
            # now the next message (or already applied); take the batch again as it is.
            return
        js = self.nc.jetstream()
        missing = []
        have = {item.stream_seq for item in work}
        for seq in range(checkpoint.stream_seq + 1, before.stream_seq):
            if seq in have:
                continue
            try:
                raw = await js.get_msg(self.stream, seq)
            except nats.js.errors.NotFoundError:
                continue
            missing.append(Incoming(seq, raw.subject or "", raw.data or b"", dict(raw.headers or {})))
        log.info("consumer.gap_filled", consumer=self.name, fetched=len(missing), before=before.position)
        if not missing:
            # Nothing lies between: the producer's positions themselves have a hole.
            # That cannot come from our relay; park rather than wait forever.
            await self._park_and_advance(before, "gap in producer positions", before.deliveries, force=True)
            await self._ack([before])
            work.remove(before)
            return
        index = work.index(before)
        for offset, item in enumerate(missing):
            work.insert(index + offset, item)

    # -- storage -------------------------------------------------------------------

    async def _checkpoint(self, conn: AsyncConnection, *, lock: bool = True) -> Checkpoint:
        # Replicas sharing one durable consumer queue here, each then reading the
        # other's committed checkpoint (PostgreSQL; SQLite's single writer already does).
        row = (await conn.execute(_CHECKPOINT_LOCKED if lock else _CHECKPOINT, self._this())).first()
        return Checkpoint(row.position, row.stream_seq, row.hash) if row else Checkpoint()

    async def _save(self, conn: AsyncConnection, checkpoint: Checkpoint) -> None:
        await conn.execute(_SAVE, {**self._this(), "to_position": checkpoint.position,
                                   "to_stream_seq": checkpoint.stream_seq, "to_hash": checkpoint.hash})

    async def _park(self, conn: AsyncConnection, item: Incoming, reason: str, deliveries: int) -> None:
        exists = await conn.scalar(
            select(parked_table.c.id).where(
                parked_table.c.consumer == self.name,
                parked_table.c.upstream == self.upstream,
                parked_table.c.stream_seq == item.stream_seq,
            )
        )
        if exists is None:
            await conn.execute(
                parked_table.insert().values(
                    consumer=self.name,
                    upstream=self.upstream,
                    stream_seq=item.stream_seq,
                    position=item.position,
                    subject=item.subject,
                    headers=json.dumps(dict(item.headers)),
                    payload=item.payload,
                    reason=reason,
                    deliveries=deliveries,
                    parked_at=self.clock(),
                )
            )
        log.warning("message.parked", consumer=self.name, upstream=self.upstream, stream_seq=item.stream_seq,
                    position=item.position, reason=reason)

    async def _park_and_advance(self, item: Incoming, reason: str, deliveries: int, *, force: bool = False) -> None:
        """Park `item` and move the checkpoint past it, so the messages behind it flow."""
        async with begin_write(self.engine) as conn:
            checkpoint = await self._checkpoint(conn)
            await self._park(conn, item, reason, deliveries)
            position = item.position
            if position is not None and (position == checkpoint.position + 1 or force):
                checkpoint.position = max(checkpoint.position, position)
                # What follows cannot be linked to an event not applied.
                checkpoint.hash = None
            checkpoint.stream_seq = max(checkpoint.stream_seq, item.stream_seq)
            await self._save(conn, checkpoint)

    async def _ack(self, items: Sequence[Incoming]) -> None:
        for item in items:
            if item.msg is not None:
                await item.msg.ack()


# -- the operator's side ----------------------------------------------------------


@dataclass(frozen=True)
class Parked:
    id: int
    consumer: str
    upstream: str
    stream_seq: int
    position: int | None
    subject: str
    reason: str
    deliveries: int
    parked_at: datetime


async def list_parked(engine: AsyncEngine, consumer: str | None = None) -> list[Parked]:
    query = select(parked_table).order_by(parked_table.c.id)
    if consumer is not None:
        query = query.where(parked_table.c.consumer == consumer)
    async with engine.connect() as conn:
        rows = await conn.execute(query)
        return [
            Parked(r.id, r.consumer, r.upstream, r.stream_seq, r.position, r.subject, r.reason, r.deliveries,
                   r.parked_at)
            for r in rows
        ]


async def retry_parked(engine: AsyncEngine, parked_id: int, handler: Handler, trust: Trust | None = None) -> bool:
    """Apply a parked message again (out of order: an operator's decision). On success
    it leaves `parked` in the same transaction as its effects; on failure it stays,
    with the new reason. Returns whether it was applied. With `trust`, a message that
    is not a signed event of its producer is never applied, whoever asks."""
    async with engine.connect() as conn:
        row = (await conn.execute(select(parked_table).where(parked_table.c.id == parked_id))).first()
    if row is None:
        raise KeyError(f"no parked message {parked_id}")
    try:
        async with begin_write(engine) as conn:
            message = decode(row.subject, row.payload, json.loads(row.headers))
            problem = signature_problem(trust, row.upstream, message) if trust is not None else None
            if problem is not None:
                raise BadMessage(f"no proof: {problem}")
            await handler(conn, message)
            await conn.execute(delete(parked_table).where(parked_table.c.id == parked_id))
    except Exception as error:
        async with begin_write(engine) as conn:
            await conn.execute(
                update(parked_table)
                .where(parked_table.c.id == parked_id)
                .values(reason=f"retry failed: {error!r}", deliveries=row.deliveries + 1)
            )
        return False
    return True


def _relay_id(value: str | None, upstream: str, position: int) -> bool:
    """Our relay's message id for `position`, in today's form or the one before hashes."""
    return value is not None and (value == f"{upstream}:{position}" or value.startswith(f"{upstream}:{position}:"))
