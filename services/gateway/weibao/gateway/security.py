"""What the gateway adds to every request and response, whatever the route: a bound on
the request body, the browser security headers, the session cookie's attributes, and,
behind a trusted proxy (WEIBAO_TRUST_PROXY), the client's own address and scheme.

Behind a proxy (issue 12, item 4), the rule is the "trusted proxy count" rule of MDN's
X-Forwarded-For reference with a count of one: WEIBAO_TRUST_PROXY says exactly one HTTP
proxy of ours stands in front of the gateway (the ingress controller, or the proxy of
the compose file). That proxy appends the address it accepted the connection from to
X-Forwarded-For, so the client is the right-most address; everything left of it the
client may have written itself and proves nothing. Likewise the scheme is the right-most
X-Forwarded-Proto entry (the one our proxy set). Unset, the forwarded headers are never
read: a client that reaches the gateway directly could write anything in them. More
than one proxy in a row: have the outer ones resolved by the one in front of the
gateway (ingress-nginx: `use-forwarded-headers` with `proxy-real-ip-cidr`), so that it
forwards a single address (deploy/README.md, "Behind a proxy").

Pure ASGI middleware (not Starlette's BaseHTTPMiddleware), so streamed responses (exports,
server-sent events) pass through untouched and only their first message is amended."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from weibao.gateway.errors import ApiError
from weibao.shared.clock import utc_now
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
# Rule D5: the server's clock in milliseconds since the epoch on every answer, stamped
# as the answer leaves. The phone counts a tap's device time from it; the Date header
# is to the second, cut down, so a tap within a second of an assignment would count
# as before it. From utc_now(), the clock the services judge by (pinned in tests).
SERVER_TIME = "weibao-server-time"

HEADERS = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
}


def _header(scope: Scope, name: bytes) -> list[str]:
    """A header's entries, every field of that name joined in order (RFC 9110 5.3)."""
    joined = b",".join(value for key, value in scope.get("headers", []) if key.lower() == name)
    return [entry.strip() for entry in joined.decode("latin-1").split(",")] if joined else []


def _address(entry: str) -> str | None:
    """An X-Forwarded-For entry's IP address (`1.2.3.4`, `1.2.3.4:5678`, `[::1]:80`, `::1`),
    normalised; None for anything else (`unknown`, an obfuscated name, garbage)."""
    host = entry
    if entry.startswith("[") and "]" in entry:
        host = entry[1:entry.index("]")]
    elif entry.count(":") == 1:
        host = entry.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def forwarded_client(scope: Scope) -> str | None:
    """The client's address as our one trusted proxy saw it: the right-most X-Forwarded-For
    entry; None (keep the connection's peer) when there is none or it is not an address."""
    entries = _header(scope, b"x-forwarded-for")
    return _address(entries[-1]) if entries else None


def forwarded_proto(scope: Scope) -> str | None:
    """The scheme our proxy was reached over: the right-most X-Forwarded-Proto entry."""
    entries = _header(scope, b"x-forwarded-proto")
    proto = entries[-1].lower() if entries else ""
    return proto if proto in ("http", "https") else None


def from_trusted_proxy(scope: Scope, trusted: bool) -> None:
    """With WEIBAO_TRUST_PROXY (`trusted`), the request's client and scheme become what the
    proxy says, so everything inside (the sign-in throttle's per-address count, the
    cookie's Secure, the URLs FastAPI builds) sees the browser, not the proxy. Without it,
    nothing: a spoofed header changes nothing."""
    if not trusted:
        return
    if (client := forwarded_client(scope)) is not None:
        peer = scope.get("client")
        scope["client"] = (client, peer[1] if peer else 0)
    if (proto := forwarded_proto(scope)) is not None:
        scope["scheme"] = proto


class SecurityHeaders:
    """Adds the security headers to every HTTP response that does not set its own. The
    outermost middleware, so it is also where a trusted proxy's client and scheme are
    taken (`from_trusted_proxy`) before anything inside reads them."""

    def __init__(self, app: ASGIApp, trust_proxy: bool | None = None) -> None:
        # Read once, with the app (issue 15: reading the environment costs about a
        # millisecond, which every request paid when it was read here per request).
        self.app = app
        self.trust_proxy = environment().trust_proxy if trust_proxy is None else trust_proxy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from_trusted_proxy(scope, self.trust_proxy)
        path = str(scope.get("path", ""))
        policy = DOCS_CSP if path.startswith(DOCS) else CSP

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[tuple[bytes, bytes]] = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                wanted = {"content-security-policy": policy, **HEADERS,
                          SERVER_TIME: str(int(utc_now().timestamp() * 1000))}
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
    """Did the browser reach us over HTTPS? Directly (the scheme), or through our proxy
    that says so in X-Forwarded-Proto (its right-most entry, the one the proxy set),
    believed only when WEIBAO_TRUST_PROXY is set (a client that reaches the gateway
    directly could claim anything). Read here too, not only as the scheme
    `from_trusted_proxy` sets, so a route served without that middleware agrees."""
    if request.url.scheme == "https":
        return True
    return environment().trust_proxy and forwarded_proto(request.scope) == "https"


def set_session_cookie(response: Response, request: Request, name: str, token: str, max_age: int,
                       **attributes: Any) -> None:
    """The session cookie: HttpOnly and SameSite=Strict as ever, only under /api/, and
    Secure whenever the sign-in came over TLS (so the browser never sends it in clear)."""
    options: dict[str, Any] = {"httponly": True, "samesite": "strict", "path": "/api/", **attributes}
    response.set_cookie(name, token, max_age=max_age, secure=over_tls(request), **options)
