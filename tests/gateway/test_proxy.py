"""The gateway behind a proxy (issue 12, item 4): with WEIBAO_TRUST_PROXY the sign-in
throttle counts per client address as our one proxy reports it (the right-most
X-Forwarded-For entry) and the session cookie is Secure when the proxy was reached over
https; without it the forwarded headers are never read, so spoofing them changes nothing.

In process, over ASGI, with the connection's peer set by the test (a proxy's address,
or a client's that reaches the gateway directly): no broker is needed, the throttle
counts in memory as it does in the bucket, by the same keys (weibao.gateway.auth)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import httpx
import pytest

from tests.gateway.conftest import PASSWORD, SECRET, write_users
from weibao.gateway.app import create_app
from weibao.gateway.security import forwarded_client

PROXY = "10.0.0.2"  # the ingress controller's address, as the gateway's socket sees it
LIMIT = 3  # failed sign-ins per address before the next is refused

Connect = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def connect(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Connect:
    """An ASGI client to a new gateway app whose every request comes from `peer`."""
    monkeypatch.setenv("WEIBAO_LOGIN_MAX_PER_ADDRESS", str(LIMIT))
    monkeypatch.setenv("WEIBAO_LOGIN_MAX_PER_USER", "1000")  # only the address's count is under test
    users = tmp_path / "users.json"
    write_users(users)

    @asynccontextmanager
    async def client(peer: str, base: str = "http://gw") -> AsyncIterator[httpx.AsyncClient]:
        # Never connects: no lifespan runs, so sign-in reads the users file and the
        # throttle counts in memory (weibao.gateway.auth.UserBook, Throttle).
        app = create_app("nats://127.0.0.1:9", users_path=users, secret=SECRET)
        transport = httpx.ASGITransport(app=app, client=(peer, 40000))
        async with httpx.AsyncClient(transport=transport, base_url=base, timeout=30) as http:
            yield http

    return client


async def fail(http: httpx.AsyncClient, forwarded_for: str | None, n: int) -> int:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for is not None else {}
    response = await http.post("/api/v1/session", headers=headers,
                               json={"username": f"guess-{n}", "password": "not the password"})
    return response.status_code


async def test_trusted_the_throttle_counts_per_forwarded_address(connect: Connect,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEIBAO_TRUST_PROXY", "1")
    async with connect(PROXY) as http:
        assert [await fail(http, "198.51.100.7", n) for n in range(LIMIT)] == [401] * LIMIT
        # The same browser again, whatever it writes left of what our proxy appended.
        assert await fail(http, "198.51.100.7", 10) == 429
        assert await fail(http, "192.0.2.1, 198.51.100.7", 11) == 429
        # Another browser behind the same proxy is counted on its own, not locked out.
        assert await fail(http, "198.51.100.8", 12) == 401
        ok = await http.post("/api/v1/session", headers={"X-Forwarded-For": "198.51.100.9"},
                             json={"username": "li", "password": PASSWORD})
        assert ok.status_code == 200, ok.text


async def test_untrusted_a_spoofed_forwarded_for_is_ignored(connect: Connect,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEIBAO_TRUST_PROXY", raising=False)
    async with connect("203.0.113.5") as http:
        # A new "address" each time: all of them counted against the one connection's peer.
        statuses = [await fail(http, f"198.51.100.{n}", n) for n in range(LIMIT + 1)]
        assert statuses == [401] * LIMIT + [429]
        assert await fail(http, None, 99) == 429
    async with connect("203.0.113.6") as http:
        # And it cannot lock out someone else by naming them.
        assert [await fail(http, "203.0.113.5", n) for n in range(LIMIT)] == [401] * LIMIT


@pytest.mark.parametrize(("trust", "proto", "secure"), [
    ("1", "https", True),
    ("1", "http, https", True),  # the right-most entry: the one our proxy set
    ("1", "https, http", False),  # a client's own "https" left of the proxy's "http"
    ("1", None, False),
    ("", "https", False),  # not trusted: anyone can send the header
])
async def test_the_cookie_is_secure_when_the_proxy_was_reached_over_https(
        connect: Connect, monkeypatch: pytest.MonkeyPatch, trust: str, proto: str | None,
        secure: bool) -> None:
    monkeypatch.setenv("WEIBAO_TRUST_PROXY", trust)
    headers = {"X-Forwarded-For": "198.51.100.7", **({"X-Forwarded-Proto": proto} if proto else {})}
    async with connect(PROXY) as http:
        response = await http.post("/api/v1/session", headers=headers, json={"username": "li", "password": PASSWORD})
    assert response.status_code == 200, response.text
    cookie = response.headers["set-cookie"].lower()
    assert ("; secure" in cookie) is secure, cookie


@pytest.mark.parametrize(("header", "client"), [
    ([b"198.51.100.7"], "198.51.100.7"),
    ([b"192.0.2.1, 198.51.100.7:51234"], "198.51.100.7"),
    ([b"192.0.2.1", b"198.51.100.7"], "198.51.100.7"),  # two fields: joined in order
    ([b"[2001:db8::1]:443"], "2001:db8::1"),
    ([b"2001:db8::1"], "2001:db8::1"),
    ([b"198.51.100.7, unknown"], None),  # not an address: the peer stays
    ([b""], None),
    ([], None),
])
def test_the_forwarded_client_is_the_right_most_address(header: list[bytes], client: str | None) -> None:
    scope = {"type": "http", "headers": [(b"x-forwarded-for", value) for value in header]}
    assert forwarded_client(scope) == client
