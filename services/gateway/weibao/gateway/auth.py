"""Who is asking: password sign-in, signed tokens, and the role each route needs.

Tokens are JWTs signed with HS256 and only HS256 (a token naming another algorithm,
`none` included, is refused), with expiry, audience and issuer checked on every request.
The browser pages keep the token and send it as a Bearer header; the same token in an
HttpOnly cookie is accepted for GET only (server-sent events and download links, which
cannot set headers), so a forged cross-site form can change nothing."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from weibao.gateway.errors import ApiError
from weibao.shared.users import User, load_users, password_matches

ALGORITHM = "HS256"
AUDIENCE = "weibao"
ISSUER = "weibao-gateway"
COOKIE = "weibao_token"


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


def secret_from(path: Path) -> str:
    """WEIBAO_JWT_SECRET, else a secret kept in a file beside the data (made once, 0600),
    so every gateway process of one installation signs alike and restarts keep sessions."""
    if os.environ.get("WEIBAO_JWT_SECRET"):
        return os.environ["WEIBAO_JWT_SECRET"]
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


class UserBook:
    """The users file, read again when it changes (an admin added someone)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: float | None = None
        self._users: dict[str, User] = {}

    def get(self, username: str) -> User | None:
        stamp = self.path.stat().st_mtime if self.path.exists() else None
        if stamp != self._stamp:
            self._users, self._stamp = load_users(self.path), stamp
        return self._users.get(username)


class Tokens:
    def __init__(self, secret: str, users: UserBook, ttl_seconds: int = 8 * 3600) -> None:
        self.secret, self.users, self.ttl = secret, users, ttl_seconds

    def sign_in(self, username: str, password: str) -> tuple[str, Principal]:
        user = self.users.get(username)
        # The same answer for an unknown name and a wrong password: names are not disclosed.
        if user is None or not password_matches(user, password):
            raise ApiError("unauthenticated", "password", "wrong user name or password")
        now = int(time.time())
        claims = {"sub": user.username, "role": user.role, "aud": AUDIENCE, "iss": ISSUER, "iat": now,
                  "exp": now + self.ttl}
        return jwt.encode(claims, self.secret, algorithm=ALGORITHM), _principal(user)

    def check(self, token: str) -> Principal:
        try:
            claims = jwt.decode(token, self.secret, algorithms=[ALGORITHM], audience=AUDIENCE, issuer=ISSUER,
                                options={"require": ["exp", "iat", "sub", "aud", "iss"]})
        except jwt.ExpiredSignatureError as error:
            raise ApiError("unauthenticated", "token", "the session expired; sign in again") from error
        except jwt.InvalidTokenError as error:
            raise ApiError("unauthenticated", "token", f"invalid token: {error}") from error
        user = self.users.get(str(claims["sub"]))
        # A user removed, or given another role, loses what the old token said.
        if user is None or user.role != claims.get("role"):
            raise ApiError("unauthenticated", "token", "this user can no longer sign in")
        return _principal(user)


def _principal(user: User) -> Principal:
    return Principal(user.username, user.role, user.display_name or user.username, user.technician_id)


def bearer(authorization: str | None, cookie: str | None, method: str) -> str:
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ApiError("unauthenticated", "authorization", "use: Authorization: Bearer <token>")
        return token.strip()
    if cookie and method in ("GET", "HEAD"):
        return cookie
    raise ApiError("unauthenticated", "authorization", "sign in first")


Check = Callable[..., Awaitable[Principal]]
