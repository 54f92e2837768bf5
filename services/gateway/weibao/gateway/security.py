"""What the gateway adds to every request and response, whatever the route: a bound on
the request body, the browser security headers, and the session cookie's attributes.

Pure ASGI middleware (not Starlette's BaseHTTPMiddleware), so streamed responses (exports,
server-sent events) pass through untouched and only their first message is amended."""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from weibao.gateway.errors import ApiError
from weibao.shared.settings import environment

# A request body larger than this is refused with 413 before it reaches a service: the
# largest legitimate body (a customer with 500 sites) is well under it, and NATS refuses
# messages over its max_payload (8 MB), which the client would see as a 502.

# The pages are static files from /static (module scripts, one stylesheet, no inline
# script or style, no CDN); the API answers JSON. One policy serves both: only this
# origin, never framed, no plugins, no <base> rewriting, forms only to this origin.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "worker-src 'self'; manifest-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
# FastAPI's /docs and /redoc load Swagger UI / ReDoc from a CDN with an inline bootstrap script.
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
            "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
            "font-src 'self' https://fonts.gstatic.com; img-src 'self' data: https://fastapi.tiangolo.com; "
            "worker-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
# An invoice's printable page is billing's HTML with its own inline <style>, and shows
# customer text: styles only, never a script, nothing loaded from elsewhere.
PRINT_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; "
             "form-action 'none'; frame-ancestors 'none'")
DOCS = ("/docs", "/redoc")
HEADERS = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
}


class SecurityHeaders:
    """Adds the security headers to every HTTP response that does not set its own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        policy = DOCS_CSP if path.startswith(DOCS) else CSP

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[tuple[bytes, bytes]] = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                wanted = {"content-security-policy": policy, **HEADERS}
                headers += [(name.encode(), value.encode()) for name, value in wanted.items()
                            if name.encode() not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimit:
    """413 for a request body over `limit` bytes: at once by its Content-Length, else
    (a chunked body) as soon as the bytes read pass it."""

    def __init__(self, app: ASGIApp, limit: int | None = None) -> None:
        self.app, self.limit = app, limit if limit is not None else environment().max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await too_large(self.limit)(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    # An HTTPException: FastAPI passes it on from reading the body (any
                    # other exception there becomes a 400), and errors.py shapes it.
                    raise HTTPException(413, f"the request body is larger than {self.limit} bytes")
            return message

        await self.app(scope, counted, send)


def too_large(limit: int) -> Response:
    refused = ApiError("too_large", "(body)", f"the request body is larger than {limit} bytes", 413)
    return Response(json.dumps(refused.body()), status_code=refused.status, media_type="application/json",
                    headers={"Connection": "close"})


def over_tls(request: Request) -> bool:
    """Did the browser reach us over HTTPS? Directly (the scheme), or through a proxy that
    says so in X-Forwarded-Proto, believed only when WEIBAO_TRUST_PROXY is set (a client
    that reaches the gateway directly could claim anything). uvicorn's --proxy-headers
    (trusted --forwarded-allow-ips) already rewrites the scheme, which counts too."""
    if request.url.scheme == "https":
        return True
    if not environment().trust_proxy:
        return False
    forwarded = request.headers.get("x-forwarded-proto", "")
    return forwarded.split(",")[0].strip().lower() == "https"


def set_session_cookie(response: Response, request: Request, name: str, token: str, max_age: int,
                       **attributes: Any) -> None:
    """The session cookie: HttpOnly and SameSite=Strict as ever, only under /api/, and
    Secure whenever the sign-in came over TLS (so the browser never sends it in clear)."""
    options: dict[str, Any] = {"httponly": True, "samesite": "strict", "path": "/api/", **attributes}
    response.set_cookie(name, token, max_age=max_age, secure=over_tls(request), **options)
