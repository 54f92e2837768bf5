"""What every route needs: the caller (checked against the roles the route allows) and
a way to ask a service in the caller's name."""

# No `from __future__ import annotations` here: FastAPI reads these closures' annotations
# at run time, and a local name in a string cannot be resolved.


import hashlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Self

from fastapi import Depends, Header, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator, BaseModel

from weibao.gateway.auth import COOKIE, Principal, Tokens, bearer
from weibao.gateway.errors import ApiError
from weibao.gateway.services import Services
from weibao.shared import text
from weibao.shared.commands import FIRST_YEAR, LAST_YEAR, in_years
from weibao.shared.errors import Rejected
from weibao.shared.events import canonical_json
from weibao.shared.eventstore import FINGERPRINT
from weibao.shared.paging import MAX_LIMIT, MAX_OFFSET

_scheme = HTTPBearer(auto_error=False, description="the token from POST /api/v1/session")

DISPATCH = ("dispatcher",)
BILLING = ("billing",)
AUDIT = ("auditor",)
OFFICE = ("dispatcher", "billing", "auditor")  # everyone who works at the desk, not in the field
EVERYONE = ("dispatcher", "billing", "auditor", "technician")

MAX_PAGE = MAX_LIMIT  # the kit's paging convention, checked here before anything is sent


def allow(*roles: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that admits the given roles (and admin, who may do everything)."""

    async def caller(request: Request,
                     credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_scheme)]) -> Principal:
        tokens: Tokens = request.app.state.tokens
        authorization = f"{credentials.scheme} {credentials.credentials}" if credentials else \
            request.headers.get("authorization")
        principal = tokens.check(bearer(authorization, request.cookies.get(COOKIE), request.method))
        if principal.role != "admin" and principal.role not in roles:
            raise ApiError("forbidden", "(role)", f"the {principal.role} role may not do this",
                           reason="auth.role_forbidden", values={"role": principal.role})
        request.state.principal = principal
        return principal

    caller.__name__ = f"allow_{'_'.join(roles) or 'admin'}"
    return caller


@dataclass(frozen=True)
class Target:
    """What an Idempotency-Key is scoped to: who sends it, to which route (method and path
    template) and which object (the path's parameters)."""

    username: str
    method: str
    route: str
    params: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, request: Request, principal: Principal) -> Self:
        route = request.scope.get("route")
        template = getattr(route, "path_format", None) or request.url.path
        return cls(principal.username, request.method, str(template),
                   tuple(sorted((str(k), str(v)) for k, v in request.path_params.items())))

    def command_id(self, key: str) -> str:
        """The command a key names: a hash over the whole scope, so the gateway keeps no
        table of keys (it is stateless) and one caller's key can never answer for another's
        request, another route or another object."""
        scope = [self.username, self.method, self.route, [list(p) for p in self.params], key]
        return "key:" + hashlib.sha256(canonical_json(scope).encode()).hexdigest()


def fingerprint(body: Mapping[str, Any]) -> str:
    """A hash of the validated body, sent beside the command id: the service stores it with
    the command's events and refuses the same command id with another one (a key reused
    for a different request, `idempotency_key_reused`)."""
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


class Caller:
    """The services, asked in one principal's name, with the request's correlation id."""

    def __init__(self, services: Services, principal: Principal, correlation_id: str | None,
                 target: Target | None = None) -> None:
        self.services, self.principal, self.correlation_id = services, principal, correlation_id
        self.target = target

    async def ask(self, service: str, name: str, body: Mapping[str, Any] | BaseModel | None = None, *,
                  timeout: float | None = None, key: str | None = None, **extra: Any) -> Any:
        """`key` is the caller's Idempotency-Key; it goes to the service as the command id
        of this caller, route and object, with the fingerprint of `body` (the request's own
        body: what `extra` adds, the gateway decided)."""
        data = body.model_dump(mode="json", exclude_none=True) if isinstance(body, BaseModel) else dict(body or {})
        if key is not None:
            if self.target is None:
                raise AssertionError("a command with a key needs the request it came with")
            extra = {**extra, "command_id": self.target.command_id(key), FINGERPRINT: fingerprint(data)}
        return await self.services.ask(service, name, {**data, **{k: v for k, v in extra.items() if v is not None}},
                                       actor=self.principal.actor, correlation_id=self.correlation_id,
                                       timeout=timeout)


async def plain_text(request: Request) -> None:
    """Refuse, before anything is sent, text that no backend can store (a NUL, a lone
    surrogate, a control character): the services refuse it too, this names it sooner."""
    try:
        text.check(dict(request.path_params))
        text.check(dict(request.query_params))
        raw = await request.body()
        if raw:
            try:
                data = await request.json()  # cached on the request: FastAPI parses the body once
            except ValueError:  # not JSON, or not UTF-8: FastAPI's own validation says so
                return
            text.check(data)
    except Rejected as error:
        raise ApiError.of(error) from None


def caller(*roles: str) -> Any:
    """`Depends` giving a Caller for the given roles (every route that reaches a service
    takes one, so its text is checked here)."""
    check = allow(*roles)

    async def make(request: Request, principal: Annotated[Principal, Depends(check)],
                   correlation: Annotated[str | None, Header(alias="X-Correlation-Id", max_length=100)] = None
                   ) -> Caller:
        await plain_text(request)
        return Caller(request.app.state.services, principal, correlation, Target.of(request, principal))

    return Depends(make)


IdempotencyKey = Annotated[str | None, Header(
    alias="Idempotency-Key", min_length=8, max_length=100,
    description="retrying with the same key and body has exactly one effect; the key is the caller's own, for "
                "this route and object; the same key with another body is refused (409 idempotency_key_reused)")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"page size, at most {MAX_PAGE}")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description=f"rows to skip, at most {MAX_OFFSET}")]
AsOf = Annotated[datetime | None,
                 Query(description=f"a past moment (ISO 8601); its year from {FIRST_YEAR} to {LAST_YEAR}"),
                 AfterValidator(lambda v: None if v is None else in_years(v))]
