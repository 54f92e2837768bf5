"""A service's append-only event log in SQL.

Guarantees (the contract suite in tests/ proves each, on SQLite and PostgreSQL):
- optimistic concurrency per stream: a stale expected version raises ConcurrencyError
  and stores nothing;
- positions are gap-free and in commit order: appends are serialised per log (a table
  lock on PostgreSQL, SQLite's single writer), so a reader never sees N+1 before N;
- idempotent append by command id: the same command stored twice stores once;
- a hash chain over the whole log, checked by `verify`;
- with a signer, every event's hash signed by the service's key, so a reader downstream
  can tell the service's events from anything else on its stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import weakref
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    exists,
    func,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from weibao.shared.db import APPENDED, appended, begin_write, is_sqlite, qualified, schema_of, unavailable
from weibao.shared.errors import Rejected
from weibao.shared.events import GENESIS_HASH, NewEvent, RecordedEvent, canonical_json, event_hash, hash_of
from weibao.shared.keys import EVENT, Signer, Trust
from weibao.shared.schema import migrate

log = structlog.get_logger("weibao.eventstore")

metadata = MetaData()

events_table = Table(
    "events",
    metadata,
    Column("position", BigInteger, primary_key=True, autoincrement=False),
    Column("stream_id", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("type", String(200), nullable=False),
    Column("schema_version", Integer, nullable=False),
    # Text, not JSON: the hash covers exactly the stored characters on every backend.
    Column("data", Text, nullable=False),
    Column("meta", Text, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    # The key id that signed `hash`, and the signature: NULL on events stored before the
    # service signed (added to older logs by `create_tables`; rows are never updated).
    Column("signed_by", String(100), nullable=True),
    Column("signature", String(120), nullable=True),
    UniqueConstraint("stream_id", "version", name="events_stream_version"),
    Index("events_recorded_at", "recorded_at"),
)

commands_table = Table(
    "commands",
    metadata,
    Column("command_id", String(200), primary_key=True),
    Column("stream_id", String(200), nullable=False),
    Column("first_position", BigInteger, nullable=True),
    Column("last_position", BigInteger, nullable=True),
    # A hash of the request the command came with (FINGERPRINT in its meta): the same id
    # with another body is a key reused for another request, refused, even when the first
    # run stored no events to compare with.
    Column("fingerprint", String(100), nullable=True),
)

# The meta field that carries a hash of the request's body beside its command id.
FINGERPRINT = "command_fingerprint"

# The statements of every append and load, built once (issue 15: "no work per command that
# could be done once"). Building a SQLAlchemy statement and its cache key costs more than
# executing it on SQLite; a built statement is immutable and keeps its cache key, so each
# call only binds its parameters.
_COMMAND_DONE = select(commands_table).where(commands_table.c.command_id == bindparam("command_id"))
_TAIL = select(events_table.c.position, events_table.c.hash).order_by(events_table.c.position.desc()).limit(1)
# One round trip for all an append must read under the lock: the stream's version and the
# chain's tail (and, on PostgreSQL, the NOTIFY that goes out at commit).
_STREAM_VERSION = select(func.max(events_table.c.version)).where(events_table.c.stream_id == bindparam("stream_id"))
_APPEND_STATE = select(_STREAM_VERSION.scalar_subquery(),
                       _TAIL.with_only_columns(events_table.c.position).scalar_subquery(),
                       _TAIL.with_only_columns(events_table.c.hash).scalar_subquery())
# With a command id, whether it was stored before, in the same round trip (the retry that
# finds it reads its row afterwards: the rare case).
_SEEN = exists().where(commands_table.c.command_id == bindparam("command_id"))
_NOTIFY = func.pg_notify(bindparam("channel"), "")
_STATES = {(notify, command): _APPEND_STATE.add_columns(*([_SEEN] if command else []), *([_NOTIFY] if notify else []))
           for notify in (False, True) for command in (False, True)}
_RECORD_COMMAND = commands_table.insert()
_AFTER_POSITION = (select(events_table).where(events_table.c.position > bindparam("after"))
                   .order_by(events_table.c.position).limit(bindparam("limit")))
_STREAM = (select(events_table).where(events_table.c.stream_id == bindparam("stream_id"))
           .order_by(events_table.c.version))
_STREAM_AFTER = _STREAM.where(events_table.c.version > bindparam("after_version"))

# ANY: append whatever the stream's version; NO_STREAM: the stream must not exist yet.
ANY: int | None = None
NO_STREAM = 0


class ConcurrencyError(Exception):
    """Another writer got to the stream first; reload, decide again, retry."""

    def __init__(self, stream_id: str, expected: int, actual: int) -> None:
        super().__init__(
            f"stream {stream_id!r} is at version {actual}, the command expected {expected}"
        )
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual

    def _caused_by(self, error: BaseException) -> ConcurrencyError:
        self.__cause__ = error
        return self


class CommandReused(Rejected):
    """A command id stored before, now with another request (another fingerprint): a
    client reused its idempotency key. Nothing is stored; a new request takes a new key."""

    def __init__(self) -> None:
        super().__init__("idempotency_key_reused", "Idempotency-Key",
                         "this key was used before for a request with another body; nothing was stored "
                         "(a new request takes a new key)")


def _same_request(done: Any, meta: Mapping[str, Any] | None) -> None:
    """Refuse a known command id whose stored fingerprint differs from the incoming one.
    Compared only where both carry one: callers that send none (the CLI, the demo loader)
    keep plain command-id idempotency."""
    incoming = (meta or {}).get(FINGERPRINT)
    if incoming and done.fingerprint and done.fingerprint != incoming:
        raise CommandReused


# At most this many appends share one transaction (group commit), so one commit stays short.
GROUP_COMMIT_MAX = 64


@dataclass
class _Pending:
    """An append waiting for the next group commit."""

    stream_id: str
    events: tuple[NewEvent, ...]
    expected_version: int | None
    command_id: str | None
    meta: Mapping[str, Any] | None
    result: asyncio.Future[AppendResult]

    async def into(self, store: EventStore, conn: AsyncConnection) -> AppendResult:
        return await store._append(conn, self.stream_id, self.events, expected_version=self.expected_version,
                                   command_id=self.command_id, meta=self.meta)


@dataclass(frozen=True)
class AppendResult:
    stream_id: str
    version: int
    events: tuple[RecordedEvent, ...]
    # True when the command id had been stored before and nothing new was written
    duplicate: bool = False


# Marks where a log written before signing starts to be signed: its data names the key
# and the last unsigned position. A verifier accepts unsigned events only up to there.
SIGNING_STREAM = "$signing"
SIGNING_STARTED = "private.SigningStarted"


@dataclass(frozen=True)
class VerifyReport:
    checked: int
    first_broken: int | None = None
    reason: str = ""
    # With a trust list: events whose signature was checked, and unsigned events accepted
    # because they precede the log's `SigningStarted`.
    signed: int = 0
    unsigned: int = 0

    @property
    def ok(self) -> bool:
        return self.first_broken is None


def utc_now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; we only ever store UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _row_to_event(row: Any) -> RecordedEvent:
    return RecordedEvent(
        position=row.position,
        stream_id=row.stream_id,
        version=row.version,
        type=row.type,
        schema_version=row.schema_version,
        data=json.loads(row.data),
        meta=json.loads(row.meta),
        recorded_at=_aware(row.recorded_at),
        prev_hash=row.prev_hash,
        hash=row.hash,
        signed_by=row.signed_by,
        signature=row.signature,
    )


class EventStore:
    """The event log of one service, in that service's database."""

    def __init__(self, engine: AsyncEngine, *, clock: Callable[[], datetime] = utc_now,
                 signer: Signer | None = None) -> None:
        self.engine = engine
        self._clock = clock
        self.signer = signer
        self._waiters: set[asyncio.Event] = set()
        self._listener: AsyncConnection | None = None
        self._listening = False  # listen() was asked for: keep a LISTEN session open
        self._driver: Any = None  # the listener's asyncpg connection, which says when it is closed
        self._listen_lock = asyncio.Lock()
        self._pending: list[_Pending] = []
        self._writer: asyncio.Task[None] | None = None
        self._stream_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    @property
    def channel(self) -> str:
        """The PostgreSQL NOTIFY channel of this log (one per schema)."""
        return f"weibao_events_{schema_of(self.engine) or 'public'}"

    async def listen(self) -> bool:
        """On PostgreSQL, wake our waiters on commits made by any process. A no-op on
        SQLite, which has no such channel: waiters there also poll. True when a new
        LISTEN session was opened.

        The LISTEN session dies with a database restart; `wait_for_append` notices and
        listens again. A database out of reach here is not an error either: waiters
        poll meanwhile, and the next wait tries again."""
        if is_sqlite(self.engine):
            return False
        self._listening = True
        # Callers sharing this store (two relays in one process) open one session between
        # them, not one each with all but the last leaked.
        async with self._listen_lock:
            return await self._open_listener()

    async def _open_listener(self) -> bool:
        if self._listener is not None and not self._listener_lost():
            return False
        await self._drop_listener()
        listener: AsyncConnection | None = None
        try:
            listener = await self.engine.connect()
            raw = await listener.get_raw_connection()
            driver = raw.driver_connection  # asyncpg's own connection: it has LISTEN
            assert driver is not None
            await driver.add_listener(self.channel, lambda *_: self.notify())
        except Exception as error:
            if listener is not None:
                with contextlib.suppress(Exception):  # a session half made is thrown away
                    await listener.invalidate()
                    await listener.close()
            if not unavailable(error):
                raise
            log.warning("eventstore.listen_failed", channel=self.channel, error=repr(error))
            return False
        self._listener, self._driver = listener, driver
        return True

    def _listener_lost(self) -> bool:
        return self._driver is None or bool(self._driver.is_closed())

    async def _drop_listener(self) -> None:
        """Let go of the LISTEN session; a dead one (the database restarted) is thrown
        away, never handed back to the pool, and closing it raises nothing."""
        listener, lost = self._listener, self._listener_lost()
        self._listener = self._driver = None
        if listener is None:
            return
        try:
            if lost:
                await listener.invalidate()
            await listener.close()
        except Exception as error:  # closing what the database already closed
            log.info("eventstore.listener_dropped", channel=self.channel, error=repr(error))

    async def close(self) -> None:
        self._listening = False
        await self._drop_listener()

    async def create_tables(self) -> None:
        """The log's tables at the kit's current revision (weibao.shared.schema): made on
        a new database, upgraded on an older one."""
        await migrate(self.engine)

    async def start_signing(self) -> RecordedEvent | None:
        """With a signer, mark a log that holds unsigned events (written before this
        service signed) with a signed `SigningStarted`, once: from there on every event
        is signed, and verifiers accept unsigned ones only before it. A new log needs
        no mark: it never holds an unsigned event."""
        if self.signer is None:
            return None
        async with self.engine.connect() as conn:
            last = (await conn.execute(
                select(events_table.c.position, events_table.c.signature)
                .order_by(events_table.c.position.desc()).limit(1))).first()
        if last is None or last.signature is not None:
            return None
        result = await self.append(
            SIGNING_STREAM,
            [NewEvent(SIGNING_STARTED, {"key": self.signer.key_id, "unsigned_through": int(last.position)})],
            expected_version=ANY, command_id=f"signing-started:{self.signer.key_id}", meta={"actor": "system"})
        return result.events[0] if result.events else None

    # -- writing ---------------------------------------------------------------------

    async def drain(self) -> None:
        """Wait until the appends handed to the group commit are stored (at shutdown)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)

    def stream_lock(self, stream_id: str) -> asyncio.Lock:
        """Commands of this process on one stream take turns here (load, decide, append),
        so a burst on one aggregate queues rather than losing races to itself; other
        processes (replicas) still meet the version check."""
        lock = self._stream_locks.get(stream_id)
        if lock is None:
            lock = self._stream_locks[stream_id] = asyncio.Lock()
        return lock

    def begin_write(self) -> Any:
        """A write transaction on this log's database, for callers that append together
        with other writes (a consumer's effects and its tracking row)."""
        return begin_write(self.engine)

    async def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        *,
        expected_version: int | None,
        command_id: str | None = None,
        meta: Mapping[str, Any] | None = None,
        conn: AsyncConnection | None = None,
    ) -> AppendResult:
        """Store `events` at the end of `stream_id`, all or nothing.

        With `conn`, the append joins the caller's transaction (opened with
        `begin_write`) and the caller commits, then calls `notify()`."""
        if conn is not None:
            return await self._append(
                conn, stream_id, events, expected_version=expected_version, command_id=command_id, meta=meta
            )
        pending = _Pending(stream_id, tuple(events), expected_version, command_id, meta,
                           asyncio.get_running_loop().create_future())
        self._pending.append(pending)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_pending())
        return await pending.result

    # Group commit: appends that arrive while a commit is in flight wait for it, then go
    # together in the next transaction, one commit (one fsync) for all of them. A lone
    # append waits for nothing. Each keeps its own version check and command id, so the
    # outcome of each is what it would have been alone: stored, duplicate or conflict.
    async def _write_pending(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:GROUP_COMMIT_MAX], self._pending[GROUP_COMMIT_MAX:]
            try:
                outcomes = await self._commit_together(batch)
            except Exception:
                # Something other than a version conflict failed the shared transaction, and
                # it stored nothing: each append again on its own, so one cannot fail another.
                outcomes = [await self._commit_alone(pending) for pending in batch]
            if any(isinstance(o, AppendResult) and o.events and not o.duplicate for o in outcomes):
                self.notify()
            for pending, outcome in zip(batch, outcomes, strict=True):
                if pending.result.done():
                    continue
                if isinstance(outcome, BaseException):
                    pending.result.set_exception(outcome)
                else:
                    pending.result.set_result(outcome)

    async def _commit_together(self, batch: Sequence[_Pending]) -> list[AppendResult | BaseException]:
        outcomes: list[AppendResult | BaseException] = []
        async with self.begin_write() as conn:
            for pending in batch:
                try:
                    outcomes.append(await pending.into(self, conn))
                except (ConcurrencyError, CommandReused) as refused:  # raised before this append wrote anything
                    outcomes.append(refused)
            appended(conn)  # the writer wakes the relay itself
        return outcomes

    async def _commit_alone(self, pending: _Pending) -> AppendResult | BaseException:
        try:
            async with self.begin_write() as conn:
                result = await pending.into(self, conn)
                appended(conn)  # the writer wakes the relay itself
                return result
        except IntegrityError as error:
            # Only reachable if something bypassed the lock; still a conflict, never a crash.
            return ConcurrencyError(pending.stream_id, pending.expected_version or -1, -1)._caused_by(error)
        except Exception as error:  # the caller hears it; the writer goes on with the others
            return error

    async def _append(
        self,
        conn: AsyncConnection,
        stream_id: str,
        events: Sequence[NewEvent],
        *,
        expected_version: int | None,
        command_id: str | None,
        meta: Mapping[str, Any] | None,
    ) -> AppendResult:
        await self.lock(conn)
        notify = bool(events) and not is_sqlite(self.engine)  # PostgreSQL: wake the relays at commit
        state = (await conn.execute(_STATES[notify, command_id is not None],
                                    {"stream_id": stream_id, "command_id": command_id, "channel": self.channel})).one()
        if command_id is not None and state[3]:
            done = (await conn.execute(_COMMAND_DONE, {"command_id": command_id})).one()
            return await self._stored(conn, done, meta)
        version = int(state[0] or 0)
        if expected_version is not None and expected_version != version:
            raise ConcurrencyError(stream_id, expected_version, version)
        position, prev_hash = (int(state[1]), str(state[2])) if state[1] is not None else (0, GENESIS_HASH)
        recorded_at = self._clock()
        meta_json = canonical_json({**(meta or {}), **({"command_id": command_id} if command_id else {})})

        rows: list[dict[str, Any]] = []
        for event in events:
            position += 1
            version += 1
            data_json = canonical_json(dict(event.data))
            digest = event_hash(
                prev_hash,
                position=position,
                stream_id=stream_id,
                version=version,
                type=event.type,
                schema_version=event.schema_version,
                data_json=data_json,
                meta_json=meta_json,
                recorded_at=recorded_at,
            )
            rows.append(
                {
                    "position": position,
                    "stream_id": stream_id,
                    "version": version,
                    "type": event.type,
                    "schema_version": event.schema_version,
                    "data": data_json,
                    "meta": meta_json,
                    "recorded_at": recorded_at,
                    "prev_hash": prev_hash,
                    "hash": digest,
                    "signed_by": self.signer.key_id if self.signer else None,
                    "signature": self.signer.sign(EVENT, digest.encode()) if self.signer else None,
                }
            )
            prev_hash = digest
        if rows:
            await conn.execute(events_table.insert(), rows)
            conn.info[APPENDED] = True  # see `appended`
        if command_id is not None:
            await conn.execute(_RECORD_COMMAND, {
                "command_id": command_id,
                "stream_id": stream_id,
                "first_position": rows[0]["position"] if rows else None,
                "last_position": rows[-1]["position"] if rows else None,
                "fingerprint": (meta or {}).get(FINGERPRINT),
            })
        recorded = tuple(_row_to_event(_Row(r)) for r in rows)
        return AppendResult(stream_id, version, recorded)

    async def command_result(self, command_id: str, meta: Mapping[str, Any] | None = None) -> AppendResult | None:
        """What a command stored, if it was stored: a retry answers the same, without
        deciding again against a state that its own first run already changed. Raises
        CommandReused when `meta` carries another request's fingerprint."""
        async with self.engine.connect() as conn:
            done = (
                await conn.execute(select(commands_table).where(commands_table.c.command_id == command_id))
            ).first()
            return None if done is None else await self._stored(conn, done, meta)

    async def _stored(self, conn: AsyncConnection, done: Any, meta: Mapping[str, Any] | None) -> AppendResult:
        """What a command id seen before stored, for a retry of the same request (another
        request under that id is refused: CommandReused)."""
        _same_request(done, meta)
        stored = await self._events_between(conn, done.first_position, done.last_position)
        version = stored[-1].version if stored else await self._version(conn, done.stream_id)
        return AppendResult(done.stream_id, version, tuple(stored), duplicate=True)

    async def lock(self, conn: AsyncConnection) -> None:
        """Hold this log's append lock for the rest of `conn`'s transaction."""
        # SQLite: the transaction began IMMEDIATE, so it already is the only writer.
        if not is_sqlite(self.engine):
            await conn.execute(text(f"LOCK TABLE {qualified(self.engine, 'events')} IN EXCLUSIVE MODE"))

    async def _version(self, conn: AsyncConnection, stream_id: str) -> int:
        value = await conn.scalar(_STREAM_VERSION, {"stream_id": stream_id})
        return int(value or 0)

    async def _events_between(self, conn: AsyncConnection, first: int | None, last: int | None) -> list[RecordedEvent]:
        if first is None or last is None:
            return []
        rows = await conn.execute(
            select(events_table)
            .where(events_table.c.position.between(first, last))
            .order_by(events_table.c.position)
        )
        return [_row_to_event(row) for row in rows]

    # -- waking the relay ------------------------------------------------------------

    def notify(self) -> None:
        """Tell waiters in this process that new events are committed."""
        for waiter in self._waiters:
            waiter.set()

    async def wait_for_append(self, timeout: float) -> None:
        """Return on the next commit in this process (or, on PostgreSQL, by any process),
        or after `timeout`. A LISTEN session the database took with it (a restart) is
        opened again first; then it returns at once, as commits may have gone unheard."""
        if self._listening and (self._listener is None or self._listener_lost()) and await self.listen():
            return  # commits made while nobody listened woke nobody: the caller looks now
        waiter = asyncio.Event()
        self._waiters.add(waiter)
        try:
            await asyncio.wait_for(waiter.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            self._waiters.discard(waiter)

    # -- reading ---------------------------------------------------------------------

    async def load(self, stream_id: str, *, as_of: datetime | None = None,
                   conn: AsyncConnection | None = None, after_version: int = 0) -> list[RecordedEvent]:
        """A stream's events in version order; with `as_of`, only those recorded by then;
        with `after_version`, only those after it (a state already folded that far).
        With `conn`, inside the caller's transaction (it sees its own uncommitted appends)."""
        query = _STREAM_AFTER if after_version else _STREAM
        parameters: dict[str, Any] = {"stream_id": stream_id}
        if after_version:
            parameters["after_version"] = after_version
        if as_of is not None:
            # In UTC, as stored: SQLite compares the text, so an instant given at +08:00
            # would otherwise reach eight hours too far.
            moment = as_of.astimezone(UTC) if as_of.tzinfo is not None else as_of
            query = query.where(events_table.c.recorded_at <= moment)
        if conn is not None:
            return [_row_to_event(row) for row in await conn.execute(query, parameters)]
        async with self.engine.connect() as own:
            return [_row_to_event(row) for row in await own.execute(query, parameters)]

    async def version(self, stream_id: str) -> int:
        async with self.engine.connect() as conn:
            return await self._version(conn, stream_id)

    async def read_from(self, after: int, limit: int = 1000) -> list[RecordedEvent]:
        """Up to `limit` events with a position above `after`, in position order."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(_AFTER_POSITION, {"after": after, "limit": limit})
            return [_row_to_event(row) for row in rows]

    async def read_all(self, after: int = 0, batch: int = 1000) -> AsyncIterator[RecordedEvent]:
        while True:
            chunk = await self.read_from(after, batch)
            for event in chunk:
                yield event
            if len(chunk) < batch:
                return
            after = chunk[-1].position

    async def last_position(self) -> int:
        async with self.engine.connect() as conn:
            return int(await conn.scalar(select(func.max(events_table.c.position))) or 0)

    async def verify(self, trust: Trust | None = None, service: str = "") -> VerifyReport:
        """Walk the chain from the start; report the first event whose link is broken.

        With `trust`, also every signature: each event must be signed by a key trusted
        for `service`, except events before the log's (signed) `SigningStarted`."""
        expected_prev, expected_position, checked = GENESIS_HASH, 1, 0
        signed = unsigned = 0
        pending_unsigned: list[int] = []  # unsigned so far; fine only if a mark follows
        async for event in self.read_all():
            if event.position != expected_position:
                return VerifyReport(checked, expected_position, f"position {expected_position} is missing")
            if event.prev_hash != expected_prev:
                return VerifyReport(checked, event.position, "prev_hash does not match the previous event")
            if hash_of(event, event.prev_hash) != event.hash:
                return VerifyReport(checked, event.position, "content does not match its hash")
            if trust is not None:
                if event.signature is None:
                    if signed:
                        return VerifyReport(checked, event.position, "unsigned, after signing started")
                    pending_unsigned.append(event.position)
                else:
                    problem = trust.check(service, EVENT, event.hash.encode(), event.signed_by, event.signature)
                    if problem is not None:
                        return VerifyReport(checked, event.position, problem, signed, unsigned)
                    if pending_unsigned:
                        if event.type != SIGNING_STARTED or event.data.get("unsigned_through") != pending_unsigned[-1]:
                            return VerifyReport(checked, pending_unsigned[0],
                                                "unsigned, and no signed SigningStarted vouches for it")
                        unsigned, pending_unsigned = len(pending_unsigned), []
                    signed += 1
            expected_prev, expected_position, checked = event.hash, expected_position + 1, checked + 1
        if pending_unsigned:
            return VerifyReport(checked, pending_unsigned[0], "unsigned, and no signed SigningStarted vouches for it",
                                signed, unsigned)
        return VerifyReport(checked, signed=signed, unsigned=unsigned)

    async def event_at(self, position: int) -> RecordedEvent | None:
        async with self.engine.connect() as conn:
            found = await self._events_between(conn, position, position)
        return found[0] if found else None


class _Row:
    """Lets a freshly inserted dict pass through the same mapping as a fetched row."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.__dict__.update(values)
