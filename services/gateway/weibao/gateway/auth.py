"""Who is asking: password sign-in, signed tokens, and the role each route needs.

Tokens are JWTs signed with HS256 and only HS256 (a token naming another algorithm,
`none` included, is refused), with expiry, audience and issuer checked on every request.
The browser pages keep the token and send it as a Bearer header; the same token in an
HttpOnly cookie is accepted for GET only (server-sent events and download links, which
cannot set headers), so a forged cross-site form can change nothing.

Every replica of the gateway signs and checks alike: one secret (WEIBAO_JWT_SECRET, and
WEIBAO_JWT_SECRET_PREVIOUS still accepted during a rotation), and one shared sign-in
state in JetStream key-value buckets (weibao.shared.streams): the users, the token ids
signed out, the failed sign-ins. Each replica mirrors the users and the revocations in
memory through a watch on their buckets, so checking a token on every request costs no
round trip, and a change made on any replica reaches the others within milliseconds
(the replica that makes it applies it to its own mirror at once)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import os
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import structlog
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from weibao.gateway.errors import ApiError
from weibao.shared.settings import environment
from weibao.shared.streams import REVOKED_BUCKET, THROTTLE_BUCKET, THROTTLE_WINDOW_SECONDS
from weibao.shared.users import User, UserStore, decode_user, dummy_hash, load_users, verify_password, watch_bucket

ALGORITHM = "HS256"
AUDIENCE = "weibao"
ISSUER = "weibao-gateway"
COOKIE = "weibao_token"
MIN_SECRET_LENGTH = 32

log = structlog.get_logger("weibao.gateway.auth")


@dataclass(frozen=True)
class Principal:
    username: str
    role: str
    display_name: str
    technician_id: str | None

    @property
    def actor(self) -> str:
        """How the audit trail names them: `role:username`."""
        return f"{self.role}:{self.username}"

    def public(self) -> dict[str, Any]:
        return {"username": self.username, "role": self.role, "display_name": self.display_name,
                "technician_id": self.technician_id}


def configured_secret(name: str = "jwt_secret") -> str | None:
    """WEIBAO_JWT_SECRET (`name`: or the previous one), else the file WEIBAO_JWT_SECRET_FILE
    names (a compose or k8s secret), else none."""
    return environment().secret(name)


def secret_from(path: Path) -> str:
    """The configured secret, else one kept in a file beside the data (made once, 0600):
    a development convenience for an app built in-process. `python -m weibao.gateway`
    refuses to start without a configured one (__main__), since a secret of its own per
    replica would sign everyone out of every other replica."""
    if configured := configured_secret():
        return configured
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


class Unavailable(ApiError):
    def __init__(self) -> None:
        super().__init__("unavailable", "(users)", "the user store is not reachable yet; try again in a moment")


class UserBook:
    """The users, mirrored from the users bucket once `attach`ed. Before that (an app
    built for a unit test, with no broker) it reads the users file as it always did; an
    app whose attach has begun but not finished refuses (503) rather than guess."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.store: UserStore | None = None
        self.attaching = False
        self._stamp: float | None = None
        self._users: dict[str, User] = {}

    def get(self, username: str) -> User | None:
        if self.store is None:
            if self.attaching:
                raise Unavailable()
            stamp = self.path.stat().st_mtime if self.path.exists() else None
            if stamp != self._stamp:
                self._users, self._stamp = load_users(self.path), stamp
        return self._users.get(username)

    def store_or_refuse(self) -> UserStore:
        if self.store is None:
            raise Unavailable()
        return self.store

    def learn(self, user: User) -> None:
        """A change this replica made: in its mirror now, not only when the watch brings it."""
        self._users[user.username] = user

    async def attach(self, js: JetStreamContext) -> Mirror:
        store = await UserStore.open(js)
        imported = await store.import_file(self.path) if self.path.exists() else []
        if imported:
            log.info("users imported", file=str(self.path), users=len(imported))
        self._users = {}

        def apply(key: str, value: bytes | None) -> None:
            if value is None:
                return  # users are disabled, never deleted; a deleted key is an operator's purge
            user = decode_user(value)
            self._users[user.username] = user

        mirror = await Mirror.start(store.kv, apply)
        self.store = store
        return mirror


class Revocations:
    """Signed-out token ids, each with its token's expiry: kept until the token would have
    expired anyway (the bucket's TTL is the token lifetime; the mirror prunes by expiry)."""

    def __init__(self) -> None:
        self.kv: KeyValue | None = None
        self._expiry: dict[str, float] = {}

    def revoked(self, jti: str) -> bool:
        expiry = self._expiry.get(jti)
        if expiry is not None and expiry < time.time():
            del self._expiry[jti]
            return False
        return expiry is not None

    async def revoke(self, jti: str, expiry: float) -> None:
        self._expiry[jti] = expiry
        if self.kv is not None:
            await self.kv.put(jti, str(expiry).encode())

    async def attach(self, js: JetStreamContext, token_ttl: int) -> Mirror:
        kv = await js.key_value(REVOKED_BUCKET)
        status = await kv.status()
        if status.ttl is not None and 0 < status.ttl < token_ttl:
            # A revocation forgotten before its token expires would let a signed-out token back in.
            raise RuntimeError(f"the {REVOKED_BUCKET} bucket keeps entries {status.ttl:g}s, less than the token "
                               f"lifetime {token_ttl}s: run `weibao streams setup` with this WEIBAO_TOKEN_TTL")

        def apply(key: str, value: bytes | None) -> None:
            if value is not None:
                self._expiry[key] = float(value)

        mirror = await Mirror.start(kv, apply)
        self.kv = kv
        return mirror


class Mirror:
    """A bucket's content kept in memory through a watch; `start` returns once the current
    content is in."""

    def __init__(self, task: asyncio.Task[None]) -> None:
        self.task = task

    @classmethod
    async def start(cls, kv: KeyValue, apply: Callable[[str, bytes | None], None]) -> Mirror:
        task, loaded = await watch_bucket(kv, apply)
        await loaded
        return cls(task)

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


class Throttle:
    """Failed sign-ins counted per user name and per client address over a window; past
    the limit, sign-in is refused (429) without checking the password, whether or not
    the name exists, until the oldest failure in the window ages out. Counted in the
    throttle bucket (its TTL is the window), so every replica counts together; in memory
    when no broker is attached (a unit test)."""

    def __init__(self, per_user: int = 5, per_address: int = 20, window: float = THROTTLE_WINDOW_SECONDS) -> None:
        self.per_user, self.per_address, self.window = per_user, per_address, window
        self.kv: KeyValue | None = None
        self._local: dict[str, list[float]] = {}

    async def attach(self, js: JetStreamContext) -> None:
        self.kv = await js.key_value(THROTTLE_BUCKET)

    @staticmethod
    def _keys(username: str, address: str) -> tuple[str, str]:
        # Hashed: any name or address fits a KV key, and the bucket shows no one's name.
        def digest(text: str) -> str:
            return hashlib.sha256(text.encode()).hexdigest()[:40]
        return f"user.{digest(username.casefold())}", f"addr.{digest(address)}"

    async def _read(self, key: str) -> tuple[list[float], int | None]:
        now = time.time()
        if self.kv is None:
            return [t for t in self._local.get(key, []) if t > now - self.window], None
        try:
            entry = await self.kv.get(key)
        except KeyNotFoundError:
            return [], None
        if entry.value is None or entry.operation is not None:
            return [], entry.revision
        return [t for t in json.loads(entry.value) if t > now - self.window], entry.revision

    async def refuse_if_locked(self, username: str, address: str) -> None:
        user_key, address_key = self._keys(username, address)
        for key, limit, what in ((user_key, self.per_user, "this user name"),
                                 (address_key, self.per_address, "your address")):
            failures, _ = await self._read(key)
            if len(failures) >= limit:
                retry = failures[-limit] + self.window  # when the oldest counted failure ages out
                minutes = max(1, math.ceil((retry - time.time()) / 60))
                at = datetime.fromtimestamp(retry, UTC).strftime("%H:%M UTC")
                raise ApiError("too_many_attempts", "password",
                               f"too many failed sign-ins for {what}: try again in {minutes} minute"
                               f"{'s' if minutes != 1 else ''} (after {at})", status=429,
                               retry_after=max(1, math.ceil(retry - time.time())),
                               reason="auth.throttled_user" if key == user_key else "auth.throttled_address",
                               values={"minutes": minutes,
                                       "after": datetime.fromtimestamp(retry, UTC).isoformat(timespec="seconds")})

    async def failed(self, username: str, address: str) -> None:
        for key in self._keys(username, address):
            await self._add(key)

    async def succeeded(self, username: str) -> None:
        """The right password clears the name's count; the address's stays (one account an
        attacker owns must not reset the count of the addresses it guesses others' from)."""
        user_key, _ = self._keys(username, "")
        if self.kv is None:
            self._local.pop(user_key, None)
        else:
            with contextlib.suppress(KeyNotFoundError):
                await self.kv.delete(user_key)

    async def _add(self, key: str) -> None:
        for _ in range(10):  # another replica counted meanwhile: read again
            failures, revision = await self._read(key)
            failures = [*failures, time.time()][-max(self.per_user, self.per_address):]
            if self.kv is None:
                self._local[key] = failures
                return
            value = json.dumps(failures).encode()
            try:
                if revision is None:
                    await self.kv.create(key, value)
                else:
                    await self.kv.update(key, value, last=revision)
                return
            except KeyWrongLastSequenceError:
                continue
        log.warning("sign-in failure not counted: too many concurrent writers", key=key)


class Tokens:
    def __init__(self, secret: str, users: UserBook, ttl_seconds: int = 8 * 3600, *,
                 previous: str | None = None) -> None:
        self.secret, self.users, self.ttl = secret, users, ttl_seconds
        # During a rotation the previous secret still verifies (never signs) tokens.
        self.previous = previous if previous is not None else configured_secret("jwt_secret_previous")
        self.revocations = Revocations()
        env = environment()
        self.throttle = Throttle(env.login_max_per_user, env.login_max_per_address)
        self._mirrors: list[Mirror] = []
        self._retry: asyncio.Task[None] | None = None

    # -- the shared state ----------------------------------------------------------------

    async def start(self, nc: NATS) -> None:
        """Attach to the buckets. When they are not there yet (setup has not run), the
        gateway serves anyway and keeps trying; sign-ins answer 503 meanwhile."""
        self.users.attaching = True
        js = nc.jetstream()
        try:
            await self._attach(js)
        except Exception as error:  # missing bucket or broker hiccup: keep trying in the background
            log.error("sign-in state not reachable; retrying", error=f"{type(error).__name__}: {error}")
            self._retry = asyncio.create_task(self._keep_trying(js))

    async def _attach(self, js: JetStreamContext) -> None:
        mirrors = [await self.revocations.attach(js, self.ttl)]
        await self.throttle.attach(js)
        mirrors.append(await self.users.attach(js))
        self._mirrors = mirrors

    async def _keep_trying(self, js: JetStreamContext) -> None:
        while True:
            await asyncio.sleep(2)
            try:
                await self._attach(js)
            except Exception as error:  # still not there: say so, try again
                log.warning("sign-in state still not reachable", error=f"{type(error).__name__}: {error}")
            else:
                log.info("sign-in state attached")
                return

    async def stop(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retry
        for mirror in self._mirrors:
            await mirror.stop()

    # -- signing in, checking, signing out -----------------------------------------------

    def sign_in(self, username: str, password: str) -> tuple[str, Principal]:
        """Blocking (argon2): call it off the event loop."""
        user = self.users.get(username)
        # An unknown name is checked against a dummy hash: the same work, the same answer,
        # so neither the answer nor its time says whether the name exists.
        matched = verify_password(user.password_hash if user is not None else dummy_hash(), password)
        if user is None or not matched:
            raise ApiError("unauthenticated", "password", "wrong user name or password",
                           reason="auth.wrong_password")
        if user.disabled:
            # Only someone who knows the password learns that the account is disabled.
            raise ApiError("unauthenticated", "username", "this user is disabled; ask an administrator",
                           reason="auth.user_disabled")
        now = int(time.time())
        claims = {"sub": user.username, "role": user.role, "aud": AUDIENCE, "iss": ISSUER, "iat": now,
                  "exp": now + self.ttl, "jti": uuid.uuid4().hex, "epoch": user.epoch}
        return jwt.encode(claims, self.secret, algorithm=ALGORITHM), _principal(user)

    def claims(self, token: str) -> dict[str, Any]:
        """The token's claims once its signature (current or previous secret), expiry,
        audience and issuer hold."""
        keys = [self.secret, *([self.previous] if self.previous else [])]
        for key in keys:
            try:
                return self._decode(token, key)
            except jwt.InvalidSignatureError as error:
                if key is keys[-1]:
                    raise ApiError("unauthenticated", "token", f"invalid token: {error}",
                                   reason="auth.token_invalid") from error
            except jwt.ExpiredSignatureError as error:
                raise ApiError("unauthenticated", "token", "the session expired; sign in again",
                               reason="auth.session_expired") from error
            except jwt.InvalidTokenError as error:
                raise ApiError("unauthenticated", "token", f"invalid token: {error}",
                               reason="auth.token_invalid") from error
        raise AssertionError("unreachable: the last key either decodes or raises")

    @staticmethod
    def _decode(token: str, secret: str) -> dict[str, Any]:
        return dict(jwt.decode(token, secret, algorithms=[ALGORITHM], audience=AUDIENCE, issuer=ISSUER,
                               options={"require": ["exp", "iat", "sub", "aud", "iss", "jti"]}))

    def check(self, token: str) -> Principal:
        """Every request: memory only (the mirrors), no round trip."""
        claims = self.claims(token)
        if self.revocations.revoked(str(claims["jti"])):
            raise ApiError("unauthenticated", "token", "this session was signed out; sign in again",
                           reason="auth.signed_out")
        user = self.users.get(str(claims["sub"]))
        # A user removed, disabled, given another role or a new password (a new epoch)
        # loses what the old token said.
        if user is None or user.disabled or user.role != claims.get("role") or user.epoch != claims.get("epoch"):
            raise ApiError("unauthenticated", "token", "this user can no longer sign in with this session",
                           reason="auth.session_superseded")
        return _principal(user)

    async def sign_out(self, token: str) -> bool:
        """Revoke the token (if it is one of ours and still good): refused from now on by
        every replica. False when there was nothing to revoke."""
        try:
            claims = self.claims(token)
        except ApiError:
            return False
        await self.revocations.revoke(str(claims["jti"]), float(claims["exp"]))
        return True


def _principal(user: User) -> Principal:
    return Principal(user.username, user.role, user.display_name or user.username, user.technician_id)


def bearer(authorization: str | None, cookie: str | None, method: str) -> str:
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ApiError("unauthenticated", "authorization", "use: Authorization: Bearer <token>",
                           reason="auth.bad_authorization")
        return token.strip()
    if cookie and method in ("GET", "HEAD"):
        return cookie
    raise ApiError("unauthenticated", "authorization", "sign in first", reason="auth.sign_in_first")


Check = Callable[..., Awaitable[Principal]]
