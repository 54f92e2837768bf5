"""The services as the gateway reaches them: the kit's one client (weibao.shared.client),
signed with the gateway's key so a service believes the actor the gateway names, and
its refusals turned into the gateway's ApiError with the same code and field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nats.aio.client import Client as NATS

from weibao.gateway.errors import ApiError
from weibao.shared.client import Client, ServiceError


class Services:
    def __init__(self, client: Client) -> None:
        self.client = client

    @classmethod
    def connect(cls, nc: NATS, timeout: float = 10.0) -> Services:
        """Over `nc`, signed by the `gateway` key from WEIBAO_KEYS."""
        return cls(Client.from_env(nc, "gateway", timeout=timeout))

    async def ask(self, service: str, name: str, body: Mapping[str, Any], *, actor: str,
                  correlation_id: str | None = None, timeout: float | None = None) -> Any:
        """The result of `weibao.<service>.<name>`, or ApiError with the service's code and field."""
        try:
            return await self.client.ask(service, name, body, actor=actor, correlation_id=correlation_id,
                                         timeout=timeout)
        except ServiceError as error:
            # A service that does not believe the gateway's signature is the gateway's
            # misconfiguration, not the user's: not a 401 that would send them to log in again.
            status = 502 if error.code == "unauthenticated" else None
            raise ApiError.of(error, status) from error
