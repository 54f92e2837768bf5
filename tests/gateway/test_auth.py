"""Tokens: one pinned algorithm, expiry, audience and issuer checked; roles on every
route; sign-in refuses without saying whether the name exists."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

import jwt
import pytest

from tests.gateway.conftest import PASSWORD, SECRET, Gateway, write_users
from weibao.gateway.auth import AUDIENCE, ISSUER, Tokens, UserBook, bearer
from weibao.gateway.errors import ApiError
from weibao.shared.users import load_users, save_users


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


def test_a_token_names_its_id_and_the_users_epoch(tokens: Tokens) -> None:
    token, _ = tokens.sign_in("li", PASSWORD)
    claims = tokens.claims(token)
    assert len(str(claims["jti"])) == 32 and claims["epoch"] == 0


def test_during_a_rotation_the_previous_secret_still_verifies_but_never_signs(tmp_path: Path) -> None:
    write_users(tmp_path / "users.json")
    before = Tokens(SECRET, UserBook(tmp_path / "users.json"), ttl_seconds=60)
    old, _ = before.sign_in("li", PASSWORD)
    rotated = Tokens("the-next-secret-" + "z" * 60, UserBook(tmp_path / "users.json"), ttl_seconds=60,
                     previous=SECRET)
    assert rotated.check(old).username == "li"
    new, _ = rotated.sign_in("li", PASSWORD)
    assert jwt.decode(new, "the-next-secret-" + "z" * 60, algorithms=["HS256"], audience=AUDIENCE)["sub"] == "li"
    after = Tokens("the-next-secret-" + "z" * 60, UserBook(tmp_path / "users.json"), ttl_seconds=60, previous="")
    with pytest.raises(ApiError):
        after.check(old)  # the window closed: WEIBAO_JWT_SECRET_PREVIOUS removed


async def test_a_signed_out_token_is_refused(tokens: Tokens) -> None:
    token, _ = tokens.sign_in("li", PASSWORD)
    assert await tokens.sign_out(token)
    with pytest.raises(ApiError) as refused:
        tokens.check(token)
    assert refused.value.message == "this session was signed out; sign in again"
    assert not await tokens.sign_out("not a token")


def test_a_token_from_before_a_new_epoch_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    write_users(path)
    tokens = Tokens(SECRET, UserBook(path), ttl_seconds=60)
    token, _ = tokens.sign_in("li", PASSWORD)
    users = load_users(path)
    users["li"] = replace(users["li"], epoch=users["li"].epoch + 1)  # a password reset, or disabled and enabled
    save_users(path, users)
    os.utime(path, (time.time() + 5, time.time() + 5))  # read again, however coarse the file system's clock
    with pytest.raises(ApiError) as refused:
        tokens.check(token)
    assert refused.value.message == "this user can no longer sign in with this session"
