"""What every route needs: the caller (checked against the roles the route allows) and
a way to ask a service in the caller's name."""

# No `from __future__ import annotations` here: FastAPI reads these closures' annotations
# at run time, and a local name in a string cannot be resolved.


from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any

from fastapi import Depends, Header, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from weibao.gateway.auth import COOKIE, Principal, Tokens, bearer
from weibao.gateway.errors import ApiError
from weibao.gateway.services import Services

_scheme = HTTPBearer(auto_error=False, description="the token from POST /api/v1/session")

DISPATCH = ("dispatcher",)
BILLING = ("billing",)
AUDIT = ("auditor",)
OFFICE = ("dispatcher", "billing", "auditor")  # everyone who works at the desk, not in the field
EVERYONE = ("dispatcher", "billing", "auditor", "technician")

MAX_PAGE = 200


def allow(*roles: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that admits the given roles (and admin, who may do everything)."""

    async def caller(request: Request,
                     credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_scheme)]) -> Principal:
        tokens: Tokens = request.app.state.tokens
        authorization = f"{credentials.scheme} {credentials.credentials}" if credentials else \
            request.headers.get("authorization")
        principal = tokens.check(bearer(authorization, request.cookies.get(COOKIE), request.method))
        if principal.role != "admin" and principal.role not in roles:
            raise ApiError("forbidden", "(role)", f"the {principal.role} role may not do this")
        request.state.principal = principal
        return principal

    caller.__name__ = f"allow_{'_'.join(roles) or 'admin'}"
    return caller


class Caller:
    """The services, asked in one principal's name, with the request's correlation id."""

    def __init__(self, services: Services, principal: Principal, correlation_id: str | None) -> None:
        self.services, self.principal, self.correlation_id = services, principal, correlation_id

    async def ask(self, service: str, name: str, body: Mapping[str, Any] | BaseModel | None = None, *,
                  timeout: float | None = None, **extra: Any) -> Any:
        data = body.model_dump(mode="json", exclude_none=True) if isinstance(body, BaseModel) else dict(body or {})
        return await self.services.ask(service, name, {**data, **{k: v for k, v in extra.items() if v is not None}},
                                       actor=self.principal.actor, correlation_id=self.correlation_id,
                                       timeout=timeout)


def caller(*roles: str) -> Any:
    """`Depends` giving a Caller for the given roles."""
    check = allow(*roles)

    async def make(request: Request, principal: Annotated[Principal, Depends(check)],
                   correlation: Annotated[str | None, Header(alias="X-Correlation-Id", max_length=100)] = None
                   ) -> Caller:
        return Caller(request.app.state.services, principal, correlation)

    return Depends(make)


IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", min_length=8, max_length=100,
                                                description="retrying with the same key has exactly one effect")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"page size, at most {MAX_PAGE}")]
Offset = Annotated[int, Query(ge=0)]
