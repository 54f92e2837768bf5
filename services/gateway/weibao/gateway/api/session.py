"""Signing in and out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response

from weibao.gateway.api import users
from weibao.gateway.auth import COOKIE, Principal, Tokens
from weibao.gateway.deps import EVERYONE, allow
from weibao.gateway.models import Login
from weibao.gateway.schemas import Session, SignedOut, User
from weibao.gateway.security import set_session_cookie


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Runs inside the app's own lifespan (FastAPI nests an included router's), once the
    broker connection is up: attach to the shared sign-in state."""
    tokens: Tokens = app.state.tokens
    await tokens.start(app.state.nc)
    try:
        yield
    finally:
        await tokens.stop()


router = APIRouter(tags=["session"], lifespan=lifespan)


def client_address(request: Request) -> str:
    # With WEIBAO_TRUST_PROXY, security.SecurityHeaders has already set the forwarded client.
    return request.client.host if request.client else "unknown"


@router.post("/session", response_model=Session,
             summary="Sign in with a user name and password; answers a bearer token",
             responses={429: {"description": "too many failed sign-ins for this user name or address "
                                             "(`too_many_attempts`); the message says when to retry, the "
                                             "`Retry-After` header in how many seconds",
                              "headers": {"Retry-After": {"description": "seconds until a sign-in is taken again",
                                                          "schema": {"type": "integer"}}}}})
async def sign_in(login: Login, request: Request, response: Response) -> dict[str, Any]:
    tokens: Tokens = request.app.state.tokens
    address = client_address(request)
    await tokens.throttle.refuse_if_locked(login.username, address)
    try:
        # argon2 is slow on purpose (~0.2 s of CPU): off the event loop, so sign-ins do not stall every other request.
        token, principal = await asyncio.to_thread(tokens.sign_in, login.username, login.password)
    except Exception as error:
        if getattr(error, "code", None) == "unauthenticated":
            await tokens.throttle.failed(login.username, address)
        raise
    await tokens.throttle.succeeded(login.username)
    # The cookie serves only GET (live updates, downloads); see weibao.gateway.auth.
    set_session_cookie(response, request, COOKIE, token, tokens.ttl)  # Secure when it came over TLS
    return {"access_token": token, "token_type": "bearer", "expires_in": tokens.ttl, "user": principal.public()}


@router.delete("/session", response_model=SignedOut,
               summary="Sign out: the token (bearer header and cookie) is revoked on every gateway")
async def sign_out(request: Request, response: Response) -> dict[str, Any]:
    tokens: Tokens = request.app.state.tokens
    presented = {request.cookies.get(COOKIE)}
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        presented.add(token.strip())
    # Whatever is presented is revoked if it is a good token of ours (the cookie too: it
    # is strict same-site, and revoking can only end a session, never open one).
    revoked = [await tokens.sign_out(t) for t in presented if t]
    response.delete_cookie(COOKIE, path="/api/")
    return {"ok": True, "revoked": sum(revoked)}


@router.get("/me", response_model=User, summary="Who the token belongs to")
async def me(principal: Annotated[Principal, Depends(allow(*EVERYONE))]) -> dict[str, Any]:
    return principal.public()


# app.py includes each api module's router; the admin's user routes come in with the
# session's until app.py lists `users` itself.
router.include_router(users.router)
