"""Live updates for the board and the phone: server-sent events, straight off NATS.

The gateway stores nothing: each open page has a core NATS subscription for as long as
it is open. Only the envelope travels (service, aggregate, event type, position, time),
never the event's data: a page learns that something changed and asks the API, with
its own token, for what it may see."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, ValidationError
from sse_starlette import EventSourceResponse

from weibao.gateway.auth import Principal
from weibao.gateway.deps import OFFICE, allow
from weibao.gateway.schemas import EVENTS
from weibao.shared.public import dispatch

router = APIRouter(tags=["live"])
SUBJECTS = ("dispatch.>", "billing.>", "contracts.>")
BACKLOG = 1000  # a page this far behind is told to reload instead of being fed a backlog


class Visit(Protocol):
    """What the live feed reads of an event's data: whose visit it is."""

    @property
    def technician_id(self) -> str | None: ...


# The public messages a technician hears of, typed as what this feed reads: renaming their
# `technician_id` fails mypy here rather than silencing every technician's page. Private
# events on the same streams name the technician by the same field, read alike (_Data).
ABOUT_A_VISIT: tuple[type[Visit], ...] = (dispatch.VisitAssigned, dispatch.VisitCheckedIn, dispatch.VisitCompleted,
                                          dispatch.WorkLogged, dispatch.ExpenseRecorded)


class _Data(BaseModel):
    """An event's data, read only for whose visit it is; other fields are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    technician_id: str | None = None


class Change(BaseModel):
    """What a page is told of each event: the envelope only, never the data."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    service: str | None = None
    stream_id: str
    type: str | None = None
    position: int | None = None
    recorded_at: str | None = None


class Envelope(Change):
    """The envelope as the relay publishes it (weibao.shared.messages.encode), as far as
    this feed reads it: decoded in one pass, typed, so a field read here that the relay
    no longer writes is a type error, not a key looked up in a dictionary."""

    data: _Data | None = None  # not an object: whose it is cannot be told


def _envelope(raw: bytes) -> Envelope | None:
    try:
        return Envelope.model_validate_json(raw)
    except ValidationError:  # not JSON, not an envelope: nothing a page can be told
        return None


def visible(principal: Principal, body: Envelope) -> bool:
    """A technician hears only of visits that are theirs (assigned, checked in, ...)."""
    if principal.role != "technician":
        return True
    visit: Visit | None = body.data
    return visit is not None and visit.technician_id is not None and visit.technician_id == principal.technician_id


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
        change = body.model_dump(include=set(Change.model_fields))
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
