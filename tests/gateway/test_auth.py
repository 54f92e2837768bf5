"""Tokens: one pinned algorithm, expiry, audience and issuer checked; roles on every
route; sign-in refuses without saying whether the name exists."""

from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest

from tests.gateway.conftest import PASSWORD, SECRET, Gateway, write_users
from weibao.gateway.auth import AUDIENCE, ISSUER, Tokens, UserBook, bearer
from weibao.gateway.errors import ApiError


@pytest.fixture
def tokens(tmp_path: Path) -> Tokens:
    write_users(tmp_path / "users.json")
    return Tokens(SECRET, UserBook(tmp_path / "users.json"), ttl_seconds=60)


def claims(**override: object) -> dict[str, object]:
    now = int(time.time())
    return {"sub": "li", "role": "dispatcher", "aud": AUDIENCE, "iss": ISSUER, "iat": now, "exp": now + 60,
            **override}


def test_a_signed_in_token_names_the_user_and_role(tokens: Tokens) -> None:
    token, principal = tokens.sign_in("li", PASSWORD)
    assert principal.role == "dispatcher"
    assert tokens.check(token).actor == "dispatcher:li"


@pytest.mark.parametrize(("username", "password"), [("li", "wrong"), ("nobody", PASSWORD)])
def test_a_wrong_password_and_an_unknown_name_are_refused_alike(tokens: Tokens, username: str,
                                                                password: str) -> None:
    with pytest.raises(ApiError) as refused:
        tokens.sign_in(username, password)
    assert (refused.value.status, refused.value.field, refused.value.message) == (
        401, "password", "wrong user name or password")


@pytest.mark.parametrize(("token", "reason"), [
    (jwt.encode(claims(exp=int(time.time()) - 5), SECRET, algorithm="HS256"), "expired"),
    (jwt.encode(claims(aud="someone-else"), SECRET, algorithm="HS256"), "audience"),
    (jwt.encode(claims(iss="evil"), SECRET, algorithm="HS256"), "issuer"),
    (jwt.encode(claims(), "another-secret-" + "y" * 60, algorithm="HS256"), "signature"),
    (jwt.encode(claims(), SECRET, algorithm="HS512"), "algorithm"),
    (jwt.encode(claims(), None, algorithm="none"), "alg none"),
    (jwt.encode(claims(role="admin"), SECRET, algorithm="HS256"), "role the user does not have"),
    (jwt.encode({k: v for k, v in claims().items() if k != "exp"}, SECRET, algorithm="HS256"), "no expiry"),
])
def test_tokens_that_must_not_pass(tokens: Tokens, token: str, reason: str) -> None:
    with pytest.raises(ApiError) as refused:
        tokens.check(token)
    assert refused.value.status == 401, reason


def test_the_cookie_serves_only_reads() -> None:
    assert bearer(None, "t", "GET") == "t"
    with pytest.raises(ApiError):
        bearer(None, "t", "POST")  # a cross-site form cannot ride the cookie
    with pytest.raises(ApiError):
        bearer("Basic abc", None, "GET")


async def test_sign_in_over_http_and_who_am_i(gateway: Gateway) -> None:
    refused = await gateway.http.post("/api/v1/session", json={"username": "li", "password": "nope"})
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthenticated"
    async with await gateway.as_user("near") as near:
        me = (await near.get("/api/v1/me")).json()
    assert me == {"username": "near", "role": "technician", "display_name": "Near", "technician_id": "near"}
    anonymous = await gateway.http.get("/api/v1/tickets")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(("username", "method", "path", "allowed"), [
    ("near", "GET", "/api/v1/invoices", False),  # a technician is not a billing clerk
    ("near", "GET", "/api/v1/technicians", False),
    ("near", "GET", "/api/v1/audit/status", False),
    ("li", "GET", "/api/v1/audit/status", False),  # nor is a dispatcher an auditor
    ("li", "GET", "/api/v1/invoices", False),
    ("qian", "POST", "/api/v1/tickets", False),  # a clerk opens no requests
    ("shen", "POST", "/api/v1/tickets", False),  # an auditor changes nothing
    ("shen", "GET", "/api/v1/audit/status", True),
    ("qian", "GET", "/api/v1/invoices", True),
    ("root", "GET", "/api/v1/audit/status", True),  # admin may do everything
])
async def test_every_route_checks_the_role(gateway: Gateway, username: str, method: str, path: str,
                                           allowed: bool) -> None:
    async with await gateway.as_user(username) as client:
        response = await client.request(method, path, json={"ticket_id": "x", "site_id": "s-1", "summary": "?"}
                                        if method == "POST" else None)
    if allowed:
        assert response.status_code == 200, response.text
    else:
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "forbidden"
