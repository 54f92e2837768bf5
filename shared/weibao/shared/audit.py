"""What every service answers an auditor, the same way: its aggregates, any one's
history as of a time, and how far its read models have caught up (replay status).

Registered by the kit for every service, so a new aggregate is auditable without code."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from faststream.nats import NatsBroker
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from weibao.shared import consumer as consumers
from weibao.shared.commands.audit import StatusQuery, StreamHistory, StreamList
from weibao.shared.errors import require
from weibao.shared.paging import Page
from weibao.shared.readmodels import StreamIndex
from weibao.shared.rpc import expose, history_reply, query
from weibao.shared.verification import verify_service

if TYPE_CHECKING:
    from weibao.shared.service import Runtime


def _index_of(runtime: Runtime) -> StreamIndex | None:
    for tracker in runtime.consumers:
        if isinstance(tracker.handler, StreamIndex) and tracker.upstream == runtime.spec.name:
            return tracker.handler
    return None


async def _upstream_last(runtime: Runtime, upstream: str) -> int | None:
    try:
        info = await runtime.nc.jetstream().stream_info(upstream.upper())
    except Exception:  # the broker's view is a courtesy here; the service's own figures stand
        return None
    return int(info.state.last_seq)


def _utc(moment: datetime) -> str:
    """A recorded time with its offset on every backend: SQLite hands back naive datetimes
    (the index, like the log, stores UTC), PostgreSQL aware ones."""
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).isoformat()


async def _positions(engine: AsyncEngine) -> dict[tuple[str, str], int]:
    table = consumers.tracking_table
    async with engine.connect() as conn:
        rows = await conn.execute(select(table.c.consumer, table.c.upstream, table.c.stream_seq))
        return {(r.consumer, r.upstream): int(r.stream_seq) for r in rows}


def register(broker: NatsBroker, runtime: Runtime) -> None:
    service = runtime.spec.name
    index = _index_of(runtime)

    # Each body decoded by its schema (weibao.shared.commands.audit, the gateway's too): a
    # bad field is refused naming it before anything is read.
    async def streams(asked: StreamList) -> Any:
        require(index is not None, "not_found", "(service)", f"{service} keeps no index of its aggregates")
        assert index is not None
        page = Page.of(asked.model_dump(include={"limit", "offset"}))  # the kit's ranges, its refusals
        t = index.table
        listed = select(t).order_by(t.c.last_position.desc())
        if asked.prefix:
            listed = listed.where(t.c.stream_id.startswith(asked.prefix, autoescape=True))
        async with runtime.engine.connect() as conn:
            rows, total = await page.rows(conn, listed)
        return page.reply([{"stream_id": r.stream_id, "version": r.version, "events": r.events,
                            "last_type": r.last_type, "last_position": r.last_position,
                            "first_recorded_at": _utc(r.first_recorded_at),
                            "last_recorded_at": _utc(r.last_recorded_at)} for r in rows], total)

    async def stream(asked: StreamHistory) -> Any:
        require(bool(asked.stream_id), "missing", "stream_id", "which aggregate's stream")
        then = asked.as_of
        events = await runtime.store.load(asked.stream_id, as_of=then)
        require(bool(events) or then is not None, "not_found", "stream_id", "no such stream")
        return {"stream_id": asked.stream_id, "as_of": then.isoformat() if then is not None else None,
                "events": history_reply(events)}

    async def status(asked: StatusQuery) -> Any:
        positions = await _positions(runtime.engine)
        parked = await consumers.list_parked(runtime.engine)
        models = []
        for tracker in runtime.consumers:
            applied = positions.get((tracker.name, tracker.upstream), 0)
            last = await _upstream_last(runtime, tracker.upstream)
            models.append({"consumer": tracker.name, "upstream": tracker.upstream, "applied_seq": applied,
                           "upstream_seq": last, "behind": None if last is None else max(last - applied, 0),
                           "parked": sum(1 for p in parked if p.consumer == tracker.name)})
        answer: dict[str, Any] = {"service": service, "log_position": await runtime.store.last_position(),
                                  "relayed_position": runtime.relay.position, "read_models": models,
                                  **runtime.trust_state()}
        if asked.verify:
            # The log's chain and signatures, and its stream on the broker held against it.
            answer["chain"] = await verify_service(runtime.store, service,
                                                   runtime.keys.trust if runtime.keys is not None else None,
                                                   runtime.nc)
        return answer

    expose(broker, service, "audit.streams", query(streams, StreamList), keys=runtime.keys)
    expose(broker, service, "audit.stream", query(stream, StreamHistory), keys=runtime.keys)
    expose(broker, service, "status", query(status, StatusQuery), keys=runtime.keys)
