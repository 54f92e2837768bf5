"""The gateway: stateless HTTP in front of the services, which it reaches over NATS.

`/api/v1` is the API (OpenAPI at `/openapi.json`, docs at `/docs`); `/` is the
dispatcher console, `/m/` the technicians' phone page, `/audit/` the auditor's page,
all static files that talk to the API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from weibao.gateway import errors
from weibao.gateway.api import audit, billing, calendar, contracts, dispatch, exports, live, names, session, vocabulary
from weibao.gateway.auth import Tokens, UserBook, secret_from
from weibao.gateway.schemas import ERRORS
from weibao.gateway.security import BodyLimit, SecurityHeaders
from weibao.gateway.services import Services
from weibao.shared import identities
from weibao.shared.service import connect
from weibao.shared.settings import environment
from weibao.shared.users import default_path

SERVICES = ("contracts", "dispatch", "billing")
STATIC = Path(__file__).parent / "static"
PAGES = {"/": "console.html", "/m/": "mobile.html", "/audit/": "audit.html"}


def create_app(nats_url: str, *, services: Sequence[str] = SERVICES, timeout: float = 2.0,
               users_path: Path | None = None, secret: str | None = None,
               token_ttl: int | None = None) -> FastAPI:
    """An app bound to `nats_url`; nothing connects until the app starts. What is not
    given comes from the environment (weibao.shared.settings), read here once."""
    env = environment()
    token_ttl = token_ttl if token_ttl is not None else env.token_ttl
    users = UserBook(users_path or default_path())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.nc = await connect(nats_url, "gateway", seed=identities.seed_for("gateway"))
        app.state.services = Services.connect(app.state.nc, env.gateway_timeout)
        try:
            yield
        finally:
            await app.state.nc.close()

    app = FastAPI(title="Weibao gateway", version="1", lifespan=lifespan,
                  description="Field-service dispatch for after-sales service agreements. Every error answers "
                              "`{\"error\": {\"code\", \"field\", \"message\"}}`.")
    app.state.tokens = Tokens(secret or secret_from(users.path.parent / "jwt-secret"), users, token_ttl)
    errors.install(app)
    # The last added is the outermost: the security headers go on every answer, 413 included.
    app.add_middleware(BodyLimit, limit=env.max_body)
    app.add_middleware(SecurityHeaders, trust_proxy=env.trust_proxy)

    # Every route may answer these statuses with the error shape (schemas.ERRORS).
    api = APIRouter(prefix="/api/v1", responses=ERRORS)
    for module in (session, contracts, dispatch, calendar, billing, exports, audit, live, vocabulary, names):
        api.include_router(module.router)
    app.include_router(api)

    async def ask(service: str) -> tuple[str, dict[str, Any]]:
        try:
            reply = await app.state.nc.request(f"weibao.{service}.health", b"", timeout=timeout)
            return service, json.loads(reply.data)
        except Exception as error:  # any failure to answer makes the service unhealthy
            return service, {"service": service, "status": "down", "error": type(error).__name__}

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        """200 only when the broker is reachable and every service answers; otherwise 503
        with each part's state and, for what is down, why in words (an operator reads
        this, not a stack trace)."""
        nc = app.state.nc
        if not nc.is_connected:
            # Asking the services would only wait out the timeout: nothing gets through.
            why = "broker unreachable: the gateway is reconnecting to it" if nc.is_reconnecting else \
                "broker unreachable: the gateway has no connection to it"
            broker: dict[str, Any] = {"status": "down", "why": why}
            answers = {s: {"service": s, "status": "unknown", "why": "cannot be asked while the broker is unreachable"}
                       for s in services}
        else:
            broker = {"status": "ok", "url": str(nc.connected_url.netloc) if nc.connected_url else None}
            answers = dict(await asyncio.gather(*(ask(s) for s in services)))
            for answer in answers.values():
                if answer.get("status") == "down":
                    answer["why"] = _why_silent(str(answer.get("error")), timeout)
                elif answer.get("status") == "alarm":
                    answer["why"] = "alarm: foreign messages on its stream or messages refused without proof"
        healthy = broker["status"] == "ok" and all(a.get("status") == "ok" for a in answers.values())
        down = [name for name, a in (("broker", broker), *answers.items()) if a.get("status") != "ok"]
        return JSONResponse({"status": "ok" if healthy else "degraded", "down": down, "broker": broker,
                             "services": answers}, status_code=200 if healthy else 503)

    def _why_silent(error: str, seconds: float) -> str:
        if error == "NoRespondersError":
            return "service not answering: no process of it is connected to the broker"
        if error in ("TimeoutError", "Timeout"):
            return f"service not answering: no reply within {seconds:g}s"
        return f"service not answering ({error})"

    if STATIC.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC), name="static")
        for route, page in PAGES.items():
            _page(app, route, STATIC / page)
            if route != "/":
                app.add_api_route(route.rstrip("/"), _redirect(route), include_in_schema=False)
        # The phone page's service worker, served under /m/ so that its scope covers the page.
        app.add_api_route("/m/sw.js", _worker(STATIC / "sw.js"), include_in_schema=False)
    return app


def _page(app: FastAPI, route: str, file: Path) -> None:
    async def serve() -> FileResponse:
        # no-cache: a new release's page is picked up at once; the phone's offline copy
        # comes from its service worker, not the HTTP cache.
        return FileResponse(file, headers={"Cache-Control": "no-cache"})

    app.add_api_route(route, serve, include_in_schema=False)


def _worker(file: Path) -> Any:
    async def worker() -> FileResponse:
        return FileResponse(file, media_type="text/javascript", headers={"Cache-Control": "no-cache"})

    return worker


def _redirect(route: str) -> Any:
    async def redirect() -> RedirectResponse:
        return RedirectResponse(route)

    return redirect
