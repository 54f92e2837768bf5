"""The admin's user management: the same as `weibao users ...`, over the API. The users
live in the shared users bucket (weibao.shared.users), so a change made through one
gateway replica holds on every other at once; disabling a user, or giving them a new
password, ends every session they had."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import Field

from weibao.gateway.auth import Principal, Tokens
from weibao.gateway.deps import allow
from weibao.gateway.errors import ApiError
from weibao.gateway.schemas import Account, Accounts
from weibao.shared.commands import Body
from weibao.shared.users import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    PASSWORD_RULE,
    Role,
    User,
    UserError,
    UserStore,
)

router = APIRouter(prefix="/users", tags=["users"])
Admin = Annotated[Principal, Depends(allow())]  # no role named: admin only

Password = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH,
                 description=f"at least {MIN_PASSWORD_LENGTH} characters")


class NewUser(Body):
    username: str = Field(min_length=1, max_length=64)
    role: Role
    password: str = Password
    display_name: str = Field(default="", max_length=200)
    technician_id: str | None = Field(default=None, min_length=1, max_length=100,
                                      description="the technician this user is; set for (and only for) a technician")


class NewPassword(Body):
    password: str = Password


def _store(request: Request) -> tuple[Tokens, UserStore]:
    tokens: Tokens = request.app.state.tokens
    return tokens, tokens.users.store_or_refuse()


async def _refused(change: Awaitable[User]) -> User:
    try:
        return await change
    except UserError as error:
        raise ApiError(error.code, error.field, error.message) from None


@router.get("", response_model=Accounts, summary="Every user (never a password hash), by name")
async def list_users(request: Request, _admin: Admin) -> dict[str, Any]:
    _, store = _store(request)
    return {"items": [u.public() for u in await store.all()]}


@router.post("", status_code=201, response_model=Account, summary=f"Add a user; {PASSWORD_RULE}")
async def add_user(body: NewUser, request: Request, _admin: Admin) -> dict[str, Any]:
    tokens, store = _store(request)
    user = await _refused(store.create(body.username, body.role, body.password, body.display_name,
                                       body.technician_id))
    tokens.users.learn(user)
    return user.public()


@router.post("/{username}/disable", response_model=Account,
             summary="Disable a user: signing in is refused and every token they hold is refused at once, "
             "on every gateway")
async def disable_user(username: str, request: Request, admin: Admin) -> dict[str, Any]:
    if username == admin.username:
        # An admin who disabled themselves could be the last one: nobody could undo it over the API.
        raise ApiError("conflict", "username", "you cannot disable yourself; another admin, or `weibao users "
                                               "disable`, can")
    tokens, store = _store(request)
    user = await _refused(store.disable(username))
    tokens.users.learn(user)
    return user.public()


@router.post("/{username}/enable", response_model=Account,
             summary="Enable a disabled user (they sign in again; old tokens stay refused)")
async def enable_user(username: str, request: Request, _admin: Admin) -> dict[str, Any]:
    tokens, store = _store(request)
    user = await _refused(store.enable(username))
    tokens.users.learn(user)
    return user.public()


@router.post("/{username}/password", response_model=Account,
             summary=f"Give a user a new password (their sessions end); {PASSWORD_RULE}")
async def reset_password(username: str, body: NewPassword, request: Request, _admin: Admin) -> dict[str, Any]:
    tokens, store = _store(request)
    user = await _refused(store.reset_password(username, body.password))
    tokens.users.learn(user)
    return user.public()
