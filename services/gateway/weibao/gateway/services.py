"""The services as the gateway reaches them: NATS request/reply, one call per command
or query, with the acting user and a correlation id for the audit trail."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from nats.aio.client import Client as NATS
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from weibao.gateway.errors import ApiError

ACTOR = "Weibao-Actor"
CORRELATION = "Weibao-Correlation-Id"


class Services:
    def __init__(self, nc: NATS, timeout: float = 10.0) -> None:
        self.nc = nc
        self.timeout = timeout

    async def ask(self, service: str, name: str, body: Mapping[str, Any], *, actor: str,
                  correlation_id: str | None = None, timeout: float | None = None) -> Any:
        """The result of `weibao.<service>.<name>`, or ApiError with the service's code and field."""
        headers = {ACTOR: actor, CORRELATION: correlation_id or uuid.uuid4().hex}
        payload = json.dumps(body, ensure_ascii=False, default=str).encode()
        try:
            reply = await self.nc.request(f"weibao.{service}.{name}", payload, timeout=timeout or self.timeout,
                                          headers=headers)
        except NoRespondersError as error:
            raise ApiError("unavailable", "(service)", f"{service} is not running") from error
        except NatsTimeout as error:
            raise ApiError("timeout", "(service)", f"{service} did not answer in time") from error
        answer = json.loads(reply.data)
        if not answer.get("ok"):
            problem = answer.get("error") or {}
            raise ApiError(str(problem.get("code", "internal")), str(problem.get("field", "(server)")),
                           str(problem.get("message", "the service refused")))
        return answer.get("result")
