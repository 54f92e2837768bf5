"""Replay: rebuild a read model from position 0 of its upstream stream into fresh tables.

The stream is read with an ordered consumer (no acks, no durable state), applied in
batches, and the result compared row by row with the live model at the same position."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from nats.aio.client import Client as NATS
from nats.js.api import DeliverPolicy
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from weibao.shared.consumer import apply_all, tracking_table
from weibao.shared.db import begin_write
from weibao.shared.keys import Trust
from weibao.shared.messages import BadMessage, decode, position_header
from weibao.shared.proof import Proof
from weibao.shared.readmodels import ReadModel, create_tables, drop_tables, rows_of
from weibao.shared.streams import stream_name

Progress = Callable[[int, int], None]
# A consumer's checkpoint while its model is being rebuilt in place (never a position).
REBUILDING = -1


@dataclass
class ReplayResult:
    applied: int
    position: int
    skipped: int
    differences: dict[str, Any] = field(default_factory=dict)
    # The last message applied: its stream sequence and hash (a consumer's checkpoint).
    stream_seq: int = 0
    hash: str | None = None

    @property
    def equal(self) -> bool:
        return not self.differences


async def live_position(engine: AsyncEngine, consumer: str, upstream: str) -> int:
    async with engine.connect() as conn:
        value = await conn.scalar(
            select(tracking_table.c.position).where(
                tracking_table.c.consumer == consumer, tracking_table.c.upstream == upstream
            )
        )
        return int(value or 0)


async def rebuild(
    engine: AsyncEngine,
    nc: NATS,
    upstream: str,
    model: ReadModel,
    *,
    until: int | None = None,
    batch: int = 500,
    progress: Progress | None = None,
    idle_timeout: float = 5.0,
    trust: Trust | None = None,
    anew: bool = True,
) -> ReplayResult:
    """Apply positions 1..until (default: all the stream holds now) to `model`'s tables,
    which are dropped and created anew first (unless `anew` is False: tables shared with
    a model rebuilt just before). With `trust`, only what proves itself the producer's
    event (as the live consumer checks): a live model that applied anything else then
    differs from its replay."""
    if anew:
        await drop_tables(engine, model)
        await create_tables(engine, model)
    js = nc.jetstream()
    stream = stream_name(upstream)
    last_seq = (await js.stream_info(stream)).state.last_seq
    result = ReplayResult(applied=0, position=0, skipped=0)
    if last_seq == 0 or until == 0:
        return result
    sub = await js.subscribe(f"{upstream}.>", stream=stream, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL)
    pending: list[Any] = []
    proof = Proof(trust, upstream) if trust is not None else None

    async def flush() -> None:
        try:
            async with begin_write(engine) as conn:
                await apply_all(model, conn, pending)
        except BadMessage:
            # One refused message (the live consumer parked it too): go one by one.
            async with begin_write(engine) as conn:
                for message in pending:
                    try:
                        await model(conn, message)
                    except BadMessage:
                        result.skipped += 1
        pending.clear()

    try:
        while True:
            msg = await asyncio.wait_for(sub.next_msg(timeout=None), idle_timeout)
            seq = msg.metadata.sequence.stream
            position = position_header(msg.headers)
            if position is not None and position == result.position + 1 and (until is None or position <= until):
                try:
                    message = decode(msg.subject, msg.data, msg.headers)
                    if proof is not None and await proof.problem(message, result.position, result.hash, nc) is not None:
                        raise BadMessage("no proof")
                    pending.append(message)
                    result.position, result.stream_seq, result.hash = position, seq, message.hash
                    result.applied += 1
                except BadMessage:
                    result.skipped += 1
            else:
                result.skipped += 1
            if len(pending) >= batch:
                await flush()
            if progress is not None:
                progress(seq, last_seq)
            if seq >= last_seq or (until is not None and result.position >= until):
                break
        await flush()
    finally:
        await sub.unsubscribe()
    return result


async def compare(engine: AsyncEngine, live: ReadModel, fresh: ReadModel) -> dict[str, Any]:
    """Tables whose rows differ, with the first few differing rows of each side."""
    a, b = await _compared_rows(engine, live), await _compared_rows(engine, fresh)
    differences: dict[str, Any] = {}
    for name in sorted(set(a) | set(b)):
        left, right = a.get(name, []), b.get(name, [])
        if left != right:
            only_live = [row for row in left if row not in right][:5]
            only_fresh = [row for row in right if row not in left][:5]
            differences[name] = {"live_only": only_live, "replay_only": only_fresh,
                                 "live_rows": len(left), "replay_rows": len(right)}
    return differences


async def _compared_rows(engine: AsyncEngine, model: ReadModel) -> dict[str, list[tuple[Any, ...]]]:
    """A model's rows, narrowed by its `replay_scope` when it has one: a policy shares
    tables with another policy (billing's two share a terms book and the billed items),
    and its replay can only answer for what its own upstream put there."""
    rows = await rows_of(engine, model)
    scope: Callable[[dict[str, list[tuple[Any, ...]]]], dict[str, list[tuple[Any, ...]]]] | None = getattr(
        model, "replay_scope", None)
    return scope(rows) if scope is not None else rows


async def discard(engine: AsyncEngine, fresh: ReadModel) -> None:
    """Drop a replay's tables: once compared they are only clutter (and a stale copy
    someone might one day read as the model)."""
    await drop_tables(engine, fresh)


async def rebuild_in_place(engine: AsyncEngine, nc: NATS, models: Sequence[tuple[str, ReadModel, str]], *,
                           trust: Trust | None = None) -> list[ReplayResult]:
    """Rebuild live read models whose tables no longer match their code (a release
    changed them; weibao.shared.schema.drift), before their consumers start: each
    (upstream, model, consumer name) in order, from position 0 of its upstream stream,
    into its own tables, through its replay copy (`fresh("")`: a policy's copy reads the
    log and appends nothing, so a rebuild never bills twice); then its consumer's
    checkpoint is set to where the rebuild stopped, and the consumer goes on from there.
    A model may complete its tables after the replay (`rebuilt(conn)`, in the same
    transaction as the checkpoint).
    Models that share tables (billing's two policies) are dropped once and rebuilt in
    the order given."""
    # First the mark: should the process die from here on, the next start finds it and
    # rebuilds again, instead of a consumer going on from an old checkpoint over tables
    # this rebuild had emptied.
    async with begin_write(engine) as conn:
        for upstream, _, consumer in models:
            await _checkpoint(conn, consumer, upstream, ReplayResult(applied=0, position=REBUILDING, skipped=0))
    results, dropped = [], set()
    for upstream, model, consumer in models:
        if id(model.metadata) not in dropped:
            await drop_tables(engine, model)
            await create_tables(engine, model)
            dropped.add(id(model.metadata))
        fresh: ReadModel = model.fresh("")  # type: ignore[attr-defined]
        # Patient: at start the broker may be busy with every consumer catching up at once.
        result = await rebuild(engine, nc, upstream, fresh, trust=trust, anew=False, idle_timeout=30.0)
        async with begin_write(engine) as conn:
            # What a replay cannot restore, the model takes from elsewhere (billing's open
            # drafts, from its log).
            if (finish := getattr(model, "rebuilt", None)) is not None:
                await finish(conn)
            await _checkpoint(conn, consumer, upstream, result)
        results.append(result)
    return results


async def _checkpoint(conn: AsyncConnection, consumer: str, upstream: str, result: ReplayResult) -> None:
    key = (tracking_table.c.consumer == consumer, tracking_table.c.upstream == upstream)
    await conn.execute(delete(tracking_table).where(*key))
    await conn.execute(insert(tracking_table).values(consumer=consumer, upstream=upstream, position=result.position,
                                                     stream_seq=result.stream_seq, hash=result.hash))


async def unfinished(engine: AsyncEngine) -> set[str]:
    """The consumers whose rebuild in place began and did not finish."""
    async with engine.connect() as conn:
        rows = await conn.execute(select(tracking_table.c.consumer).where(tracking_table.c.position == REBUILDING))
        return {str(row.consumer) for row in rows}
