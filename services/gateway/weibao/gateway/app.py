"""The gateway: stateless HTTP in front of the services, which it reaches over NATS."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from weibao.shared.service import connect

SERVICES = ("contracts", "dispatch", "billing")


def create_app(nats_url: str, *, services: Sequence[str] = SERVICES, timeout: float = 2.0) -> FastAPI:
    """An app bound to `nats_url`; nothing connects until the app starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.nc = await connect(nats_url, "gateway")
        try:
            yield
        finally:
            await app.state.nc.close()

    app = FastAPI(title="Weibao gateway", lifespan=lifespan)

    async def ask(service: str) -> tuple[str, dict[str, Any]]:
        try:
            reply = await app.state.nc.request(f"weibao.{service}.health", b"", timeout=timeout)
            return service, json.loads(reply.data)
        except Exception as error:  # any failure to answer makes the service unhealthy
            return service, {"service": service, "status": "down", "error": type(error).__name__}

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        """200 only when every service answers."""
        answers = dict(await asyncio.gather(*(ask(s) for s in services)))
        healthy = all(a.get("status") == "ok" for a in answers.values())
        return JSONResponse({"status": "ok" if healthy else "degraded", "services": answers},
                            status_code=200 if healthy else 503)

    return app
