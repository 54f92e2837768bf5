"""The auditor's questions, asked of any service the same way (see weibao.shared.audit):
which aggregates exist, what happened to one and when, and whether every read model
has caught up with the log (replay status)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from weibao.gateway.deps import AUDIT, AsOf, Caller, Limit, Offset, caller
from weibao.gateway.errors import ApiError
from weibao.gateway.schemas import ReplayStatus
from weibao.shared.commands.audit import PREFIX_MAX, StatusQuery, StreamHistory, StreamList
from weibao.shared.views import Listing
from weibao.shared.views.audit import History, StreamSummary

router = APIRouter(prefix="/audit", tags=["audit"])
Auditor = Annotated[Caller, caller(*AUDIT)]
Service = Literal["contracts", "dispatch", "billing"]
SERVICES: tuple[str, ...] = ("contracts", "dispatch", "billing")
# Each route builds its body as the schema the services decode it with
# (weibao.shared.commands.audit): a field renamed there fails here under mypy, not at run time.


@router.get("/{service}/streams", response_model=Listing[StreamSummary],
            summary="A service's aggregates, most recently changed first")
async def streams(service: Service, call: Auditor, *, limit: Limit = 50, offset: Offset = 0,
                  prefix: Annotated[str | None, Query(max_length=PREFIX_MAX)] = None) -> Any:
    return await call.ask(service, "audit.streams", StreamList(limit=limit, offset=offset, prefix=prefix))


@router.get("/{service}/streams/{stream_id}", response_model=History,
            summary="An aggregate's history, every event with who and when; "
            "with `as_of`, only what was recorded by then")
async def stream(service: Service, stream_id: str, call: Auditor, as_of: AsOf = None) -> Any:
    # Refused here as a 422 naming the field: the schema would refuse it too, as a 500.
    if as_of is not None and as_of.tzinfo is None:
        raise ApiError("invalid", "as_of", "a time with its UTC offset")
    return await call.ask(service, "audit.stream", StreamHistory(stream_id=stream_id, as_of=as_of))


@router.get("/status", response_model=ReplayStatus,
            summary="Replay status: each read model's position against its upstream, parked "
            "messages; `verify=true` also checks each log's hash chain")
async def status(call: Auditor, verify: bool = False) -> Any:
    async def one(service: str) -> Any:
        try:
            return await call.ask(service, "status", StatusQuery(verify=verify))
        except ApiError as error:
            return {"service": service, "error": error.body()["error"]}

    return {"services": list(await asyncio.gather(*(one(s) for s in SERVICES)))}
