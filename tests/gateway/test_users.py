"""Signing in to a production install: users, sign-outs and failed sign-ins live in the
shared key-value buckets, so two gateway replicas (two apps on one real, authenticated
nats-server, each as the `gateway` identity) agree on every one of them; the admin
manages users over the API; throttled sign-ins answer 429 `too_many_attempts`; an
unknown name costs the same argon2 check as a known one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from nats.aio.client import Client as NATS

from tests.gateway.conftest import PASSWORD, SECRET, write_users
from tests.helpers import eventually
from weibao.gateway import auth
from weibao.gateway.app import create_app
from weibao.runtime.natsd import NatsServer
from weibao.shared.streams import USERS_BUCKET
from weibao.shared.users import decode_user, dummy_hash, load_users, user_key, verify_password

NEW_PASSWORD = "a much longer one, 2026"


@dataclass
class Replicas:
    apps: list[FastAPI]
    stack: AsyncExitStack

    async def client(self, replica: int, address: str = "10.0.0.1") -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.apps[replica], client=(address, 40000))
        return await self.stack.enter_async_context(httpx.AsyncClient(transport=transport, base_url="http://gw"))


async def token(http: httpx.AsyncClient, username: str, password: str = PASSWORD) -> str:
    response = await http.post("/api/v1/session", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    http.cookies.clear()  # the bearer header only: the cookie is tested on its own
    return str(response.json()["access_token"])


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


@pytest.fixture
async def replicas(nats_server: NatsServer, nc: NATS, tmp_path: Path,
                   monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Replicas]:
    monkeypatch.setenv("WEIBAO_LOGIN_MAX_PER_USER", "3")  # fewer argon2 checks than 5 and 20, same rule
    monkeypatch.setenv("WEIBAO_LOGIN_MAX_PER_ADDRESS", "5")
    users = tmp_path / "users.json"
    write_users(users)  # today's file store: each replica imports it at start, neither overwrites
    apps = [create_app(nats_server.url, services=(), users_path=users, secret=SECRET) for _ in range(2)]
    async with AsyncExitStack() as stack:
        for app in apps:
            await stack.enter_async_context(app.router.lifespan_context(app))
            assert app.state.tokens.users.store is not None  # attached before serving
        yield Replicas(apps, stack)
    # Every KV operation the gateway made was one its NATS identity may make.
    violations = [line for line in (nats_server.data_dir / "nats.log").read_text().splitlines()
                  if " Violation - " in line]
    assert violations == []


async def test_a_sign_in_on_one_replica_holds_on_the_other(replicas: Replicas) -> None:
    one, two = await replicas.client(0), await replicas.client(1)
    me = await two.get("/api/v1/me", headers=bearer(await token(one, "li")))
    assert me.status_code == 200
    assert me.json()["username"] == "li"


async def test_signing_out_revokes_the_token_on_every_replica(replicas: Replicas) -> None:
    one, two = await replicas.client(0), await replicas.client(1)
    li = await token(one, "li")
    other_session = await token(two, "li")
    signed_out = await one.delete("/api/v1/session", headers=bearer(li))
    assert signed_out.json() == {"ok": True, "revoked": 1}
    assert (await one.get("/api/v1/me", headers=bearer(li))).status_code == 401  # at once where it was said

    async def refused_on_the_other() -> bool:
        return (await two.get("/api/v1/me", headers=bearer(li))).status_code == 401

    await eventually(refused_on_the_other, timeout=5)
    refused = await two.get("/api/v1/me", headers=bearer(li))
    assert refused.json()["error"] == {"code": "unauthenticated", "field": "token",
                                       "message": "this session was signed out; sign in again",
                                       "reason": "auth.signed_out"}
    # Only that session: li's other one goes on.
    assert (await one.get("/api/v1/me", headers=bearer(other_session))).status_code == 200


async def test_signing_out_with_the_cookie_revokes_it(replicas: Replicas) -> None:
    one = await replicas.client(0)
    assert (await one.post("/api/v1/session", json={"username": "li", "password": PASSWORD})).status_code == 200
    assert (await one.get("/api/v1/me")).status_code == 200  # the cookie, on a GET
    cookie = one.cookies.get(auth.COOKIE)
    assert cookie is not None
    assert (await one.delete("/api/v1/session")).json()["revoked"] == 1
    assert (await one.get("/api/v1/me", headers=bearer(cookie))).status_code == 401


async def test_disabling_a_user_refuses_their_tokens_at_once_everywhere(replicas: Replicas) -> None:
    one, two = await replicas.client(0), await replicas.client(1)
    root, li = await token(one, "root"), await token(two, "li")
    disabled = await one.post("/api/v1/users/li/disable", headers=bearer(root))
    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["disabled"] is True

    async def refused() -> bool:
        return (await two.get("/api/v1/me", headers=bearer(li))).status_code == 401

    await eventually(refused, timeout=5)
    again = await two.post("/api/v1/session", json={"username": "li", "password": PASSWORD})
    assert again.status_code == 401
    assert again.json()["error"]["message"] == "this user is disabled; ask an administrator"
    # Enabled again: li signs in anew, and the old token stays dead (a new epoch).
    assert (await two.post("/api/v1/users/li/enable", headers=bearer(root))).status_code == 200

    async def enabled_on_one() -> bool:
        # Replica one learns of the enable from its watch of the users bucket, a moment
        # later: its own copy is what its sign-in reads (the users list reads the bucket).
        user = replicas.apps[0].state.tokens.users.get("li")
        return user is not None and not user.disabled

    await eventually(enabled_on_one, timeout=5)
    fresh = await token(one, "li")
    assert (await one.get("/api/v1/me", headers=bearer(fresh))).status_code == 200
    assert (await one.get("/api/v1/me", headers=bearer(li))).status_code == 401


async def test_the_admin_manages_users_over_the_api(replicas: Replicas) -> None:
    one, two = await replicas.client(0), await replicas.client(1)
    root, li = await token(one, "root"), await token(one, "li")
    assert (await one.get("/api/v1/users", headers=bearer(li))).json()["error"]["code"] == "forbidden"
    listed = (await one.get("/api/v1/users", headers=bearer(root))).json()["items"]
    assert {u["username"] for u in listed} == {"li", "near", "far", "qian", "shen", "root"}
    assert all("password_hash" not in u for u in listed)

    short = await one.post("/api/v1/users", headers=bearer(root),
                           json={"username": "wu", "role": "dispatcher", "password": "short1234"})
    assert short.status_code == 422
    assert short.json()["error"]["field"] == "password"
    assert "at least 10 characters" in short.json()["error"]["message"]
    lonely = await one.post("/api/v1/users", headers=bearer(root),
                            json={"username": "wu", "role": "technician", "password": NEW_PASSWORD})
    assert lonely.status_code == 422  # a technician names the technician they are

    added = await one.post("/api/v1/users", headers=bearer(root),
                           json={"username": "wu", "role": "dispatcher", "password": NEW_PASSWORD,
                                 "display_name": "吴"})
    assert added.status_code == 201, added.text
    assert added.json() == {"username": "wu", "role": "dispatcher", "display_name": "吴", "technician_id": None,
                            "disabled": False}
    twice = await one.post("/api/v1/users", headers=bearer(root),
                           json={"username": "wu", "role": "dispatcher", "password": NEW_PASSWORD})
    assert (twice.status_code, twice.json()["error"]["code"]) == (409, "conflict")

    async def known_on_the_other() -> bool:
        return (await two.post("/api/v1/session", json={"username": "wu", "password": NEW_PASSWORD})).status_code \
            == 200

    await eventually(known_on_the_other, timeout=5)
    wu = await token(two, "wu", NEW_PASSWORD)
    reset = await one.post("/api/v1/users/wu/password", headers=bearer(root), json={"password": PASSWORD})
    assert reset.status_code == 200, reset.text
    await eventually(lambda: _refused(two, wu), timeout=5)  # a new password ends the old sessions
    assert (await one.post("/api/v1/session", json={"username": "wu", "password": NEW_PASSWORD})).status_code == 401
    await token(one, "wu", PASSWORD)

    nobody = await one.post("/api/v1/users/nobody/disable", headers=bearer(root))
    assert (nobody.status_code, nobody.json()["error"]["code"]) == (404, "not_found")
    myself = await one.post("/api/v1/users/root/disable", headers=bearer(root))
    assert myself.status_code == 409


async def _refused(http: httpx.AsyncClient, value: str) -> bool:
    return (await http.get("/api/v1/me", headers=bearer(value))).status_code == 401


async def test_failed_sign_ins_for_one_name_are_throttled_on_every_replica(replicas: Replicas) -> None:
    one, two = await replicas.client(0), await replicas.client(1, "10.0.0.2")
    for attempt in range(3):  # the limit (3 here; 5 by default) counted across both replicas
        wrong = await (one, two)[attempt % 2].post("/api/v1/session", json={"username": "li", "password": "nope"})
        assert wrong.status_code == 401
    # Now even the right password waits: the password is not even checked.
    throttled = await two.post("/api/v1/session", json={"username": "li", "password": PASSWORD})
    assert throttled.status_code == 429
    error = throttled.json()["error"]
    assert (error["code"], error["field"]) == ("too_many_attempts", "password")
    assert error["message"].startswith("too many failed sign-ins for this user name: try again in 15 minutes")
    # Retry-After: the seconds until the oldest counted failure ages out (15 minutes here).
    assert 14 * 60 < int(throttled.headers["Retry-After"]) <= 15 * 60
    # Another name from the same address is not held back by li's count.
    await token(one, "qian")


async def test_failed_sign_ins_from_one_address_are_throttled(replicas: Replicas) -> None:
    guesser = await replicas.client(0, "192.0.2.7")
    for name in ("a1", "a2", "a3", "a4", "a5"):  # one guess per name: no name reaches its own limit
        assert (await guesser.post("/api/v1/session", json={"username": name, "password": "x"})).status_code == 401
    throttled = await guesser.post("/api/v1/session", json={"username": "li", "password": PASSWORD})
    assert throttled.status_code == 429
    assert "for your address" in throttled.json()["error"]["message"]
    # Someone else, elsewhere, signs in as li.
    await token(await replicas.client(1, "198.51.100.1"), "li")


async def test_an_unknown_name_and_a_wrong_password_take_the_same_path(
        replicas: Replicas, monkeypatch: pytest.MonkeyPatch) -> None:
    checked: list[str] = []
    real = verify_password

    def verify(password_hash: str, password: str) -> bool:
        checked.append(password_hash)
        return real(password_hash, password)

    monkeypatch.setattr(auth, "verify_password", verify)
    http = await replicas.client(0)
    unknown = await http.post("/api/v1/session", json={"username": "nobody", "password": "guess"})
    known = await http.post("/api/v1/session", json={"username": "li", "password": "guess"})
    assert (unknown.status_code, unknown.json()) == (known.status_code, known.json())
    # One argon2 check each: against a dummy hash for the name nobody has, the user's own for li.
    li = replicas.apps[0].state.tokens.users.get("li")
    assert checked == [dummy_hash(), li.password_hash]


async def test_the_users_file_is_imported_once_and_never_overwrites(replicas: Replicas, nc: NATS,
                                                                    nats_server: NatsServer, tmp_path: Path) -> None:
    root = await token(await replicas.client(0), "root")
    assert (await (await replicas.client(0)).post("/api/v1/users/near/disable", headers=bearer(root))).status_code \
        == 200
    kv = await nc.jetstream().key_value(USERS_BUCKET)
    assert set(load_users(tmp_path / "users.json")) == {
        decode_user(e.value).username for e in [await kv.get(user_key(n)) for n in load_users(tmp_path / "users.json")]
        if e.value}
    # A third replica starts on the same file: near stays disabled.
    app = create_app(nats_server.url, services=(), users_path=tmp_path / "users.json", secret=SECRET)
    async with app.router.lifespan_context(app):
        near = app.state.tokens.users.get("near")
        assert near is not None and near.disabled
