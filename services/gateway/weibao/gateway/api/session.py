"""Signing in and out."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from weibao.gateway.auth import COOKIE, Principal, Tokens
from weibao.gateway.deps import EVERYONE, allow
from weibao.gateway.models import Login

router = APIRouter(tags=["session"])


@router.post("/session", summary="Sign in with a user name and password; answers a bearer token")
async def sign_in(login: Login, request: Request, response: Response) -> dict[str, Any]:
    tokens: Tokens = request.app.state.tokens
    # argon2 is slow on purpose (~0.2 s of CPU): off the event loop, so sign-ins do not stall every other request.
    token, principal = await asyncio.to_thread(tokens.sign_in, login.username, login.password)
    # The cookie serves only GET (live updates, downloads); see weibao.gateway.auth.
    response.set_cookie(COOKIE, token, max_age=tokens.ttl, httponly=True, samesite="strict", path="/api/")
    return {"access_token": token, "token_type": "bearer", "expires_in": tokens.ttl, "user": principal.public()}


@router.delete("/session", summary="Sign out (forget the cookie; the client drops its token)")
async def sign_out(response: Response) -> dict[str, Any]:
    response.delete_cookie(COOKIE, path="/api/")
    return {"ok": True}


@router.get("/me", summary="Who the token belongs to")
async def me(principal: Annotated[Principal, Depends(allow(*EVERYONE))]) -> dict[str, Any]:
    return principal.public()
