"""Names of people, not ids (issue 16): the display name of each actor an office screen
shows, such as who made an assignment (`dispatcher:diaodu`). Only the names are
answered, never a role's other data; an actor with no user (the system, a user since
removed) answers nothing, and the screen says so in its own words."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from weibao.gateway.auth import Principal, Tokens
from weibao.gateway.deps import OFFICE, allow

router = APIRouter(tags=["users"])

MAX_ACTORS = 50


@router.get("/names", summary="Display names of actors (`role:username`, or a user name), for the office screens")
async def names(request: Request, _who: Annotated[Principal, Depends(allow(*OFFICE))],
                actor: Annotated[list[str], Query(max_length=MAX_ACTORS)]) -> dict[str, dict[str, str]]:
    tokens: Tokens = request.app.state.tokens
    found: dict[str, str] = {}
    for asked in actor:
        role, _, username = asked.rpartition(":")
        user = tokens.users.get(username)
        if user is None or (role and user.role != role) or not user.display_name:
            continue
        found[asked] = user.display_name
    return {"names": found}
