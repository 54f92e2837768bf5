"""Live updates for the board and the phone: server-sent events, straight off NATS.

The gateway stores nothing: each open page has a core NATS subscription for as long as
it is open. Only the envelope travels (service, aggregate, event type, position, time),
never the event's data: a page learns that something changed and asks the API, with
its own token, for what it may see."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from sse_starlette import EventSourceResponse

from weibao.gateway.auth import Principal
from weibao.gateway.deps import OFFICE, allow
from weibao.gateway.schemas import EVENTS

router = APIRouter(tags=["live"])
SUBJECTS = ("dispatch.>", "billing.>", "contracts.>")
BACKLOG = 1000  # a page this far behind is told to reload instead of being fed a backlog


def _envelope(raw: bytes) -> dict[str, Any] | None:
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(body, dict) or "stream_id" not in body:
        return None
    return body


def visible(principal: Principal, body: dict[str, Any]) -> bool:
    """A technician hears only of visits that are theirs (assigned, checked in, ...)."""
    if principal.role != "technician":
        return True
    data = body.get("data")
    return isinstance(data, dict) and data.get("technician_id") == principal.technician_id


@router.get("/live", responses=EVENTS, response_class=EventSourceResponse,
            summary="Server-sent events: `change` for every event any service records")
async def live(request: Request, principal: Annotated[Principal, Depends(allow(*OFFICE, "technician"))]
               ) -> EventSourceResponse:
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(BACKLOG)
    nc = request.app.state.nc

    async def on_message(msg: Any) -> None:
        body = _envelope(msg.data)
        if body is None or not visible(principal, body):
            return
        change = {k: body.get(k) for k in ("service", "stream_id", "type", "position", "recorded_at")}
        try:
            queue.put_nowait(change)
        except asyncio.QueueFull:  # a stalled page: drop the backlog, ask it to reload once
            while not queue.empty():
                queue.get_nowait()
            queue.put_nowait(None)

    subscriptions = [await nc.subscribe(subject, cb=on_message) for subject in SUBJECTS]

    async def events() -> AsyncIterator[dict[str, str]]:
        try:
            yield {"event": "hello", "data": json.dumps(principal.public(), ensure_ascii=False)}
            while True:
                change = await queue.get()
                if change is None:
                    yield {"event": "resync", "data": "{}"}
                    continue
                yield {"event": "change", "data": json.dumps(change, ensure_ascii=False)}
        finally:
            for subscription in subscriptions:
                await subscription.unsubscribe()

    return EventSourceResponse(events(), ping=15)
