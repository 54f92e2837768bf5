"""The people who sign in to the gateway: users with argon2 password hashes.

They live in the JetStream key-value bucket `weibao_users` (weibao.shared.streams), which
every gateway replica reads and `weibao users ...` (or an admin over the API) writes:
the gateway keeps no state of its own. A users file (`WEIBAO_USERS`, default
`var/users.json`) is what came before, and what `weibao up` writes its demo users to:
a gateway imports it into the bucket at start, never overwriting a user the bucket
already has. A technician's user names the technician id whose visits it may see and
report on."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any, Literal, get_args

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from weibao.shared.settings import environment
from weibao.shared.streams import USERS_BUCKET

Role = Literal["dispatcher", "technician", "billing", "auditor", "admin"]
ROLES: tuple[str, ...] = get_args(Role)

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 200  # as a sign-in accepts; also bounds the work one request can ask of argon2
PASSWORD_RULE = f"a password needs at least {MIN_PASSWORD_LENGTH} characters"
USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
USERNAME_RULE = "a user name is 1 to 64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit"

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters


@dataclass(frozen=True)
class User:
    username: str
    role: Role
    password_hash: str
    display_name: str = ""
    technician_id: str | None = None  # set for (and only for) the technician role
    disabled: bool = False
    # Raised whenever every token the user holds must die at once (disabled, password
    # reset): a token names the epoch it was signed in, and any other is refused.
    epoch: int = 0

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"{self.username}: unknown role {self.role!r}")
        if (self.role == "technician") != (self.technician_id is not None):
            raise ValueError(f"{self.username}: a technician, and only a technician, names a technician_id")

    def public(self) -> dict[str, Any]:
        """What an admin is shown: never the hash."""
        return {"username": self.username, "role": self.role, "display_name": self.display_name,
                "technician_id": self.technician_id, "disabled": self.disabled}


class UserError(ValueError):
    """A refused change, in words, naming the field."""

    def __init__(self, code: str, field: str, message: str) -> None:
        super().__init__(message)
        self.code, self.field, self.message = code, field, message


def check_username(username: str) -> None:
    if not USERNAME.fullmatch(username):
        raise UserError("invalid", "username", USERNAME_RULE)


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError("invalid", "password", f"too short: {PASSWORD_RULE}")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise UserError("invalid", "password", f"too long: at most {MAX_PASSWORD_LENGTH} characters")
    if password != password.strip():
        # Sign-in trims what it is sent (every body does), so such a password could never be typed.
        raise UserError("invalid", "password", "a password may not begin or end with a space")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def password_matches(user: User, password: str) -> bool:
    return verify_password(user.password_hash, password)


@cache
def dummy_hash() -> str:
    """A hash no password matches (its password is random and forgotten), checked for a
    name nobody has: an unknown name then costs what a known one does, so the time of
    the answer does not tell which names exist."""
    return hash_password(base64.b64encode(os.urandom(24)).decode())


def default_path() -> Path:
    return Path(environment().users)


def load_users(path: Path) -> dict[str, User]:
    """Users by name; an absent file means nobody can sign in yet."""
    if not path.exists():
        return {}
    return {u["username"]: User(**u) for u in json.loads(path.read_text("utf-8"))}


def save_users(path: Path, users: dict[str, User]) -> None:
    """Write atomically: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    # Password hashes: the owner's alone, from the first byte written.
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(json.dumps([asdict(u) for u in users.values()], ensure_ascii=False, indent=2))
    os.replace(partial, path)


# -- the bucket ---------------------------------------------------------------------------

def user_key(username: str) -> str:
    """A bucket key for any name: KV keys allow few characters, base64url fits them all."""
    return "u." + base64.urlsafe_b64encode(username.encode()).decode().rstrip("=")


def encode_user(user: User) -> bytes:
    return json.dumps(asdict(user), ensure_ascii=False, sort_keys=True).encode()


def decode_user(data: bytes | Mapping[str, Any]) -> User:
    raw = dict(json.loads(data)) if isinstance(data, bytes) else dict(data)
    known = set(User.__dataclass_fields__)
    return User(**{k: v for k, v in raw.items() if k in known})  # readers ignore unknown fields


class UserStore:
    """The users bucket. Every change is a compare-and-set on the record's revision, so two
    admins (or two replicas) changing one user at once cannot lose either change silently."""

    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    @classmethod
    async def open(cls, js: JetStreamContext) -> UserStore:
        """The bucket `weibao streams setup` made (BucketNotFoundError until then)."""
        return cls(await js.key_value(USERS_BUCKET))

    async def get(self, username: str) -> tuple[User, int] | None:
        try:
            entry = await self.kv.get(user_key(username))
        except KeyNotFoundError:
            return None
        if entry.value is None or entry.operation is not None:
            return None
        return decode_user(entry.value), entry.revision or 0

    async def all(self) -> list[User]:
        users = [decode_user(value) for value in (await read_bucket(self.kv)).values()]
        return sorted(users, key=lambda u: u.username)

    async def create(self, username: str, role: Role, password: str, display_name: str = "",
                     technician_id: str | None = None) -> User:
        """A new user from what an admin gave (the CLI or the API alike): the name and
        password rules checked, the password hashed off the event loop, stored once."""
        check_username(username)
        check_password(password)
        hashed = await asyncio.to_thread(hash_password, password)  # slow on purpose
        try:
            user = User(username, role, hashed, display_name, technician_id)
        except ValueError as error:  # the role and technician_id do not go together
            raise UserError("invalid", "technician_id", str(error)) from None
        await self.add(user)
        return user

    async def add(self, user: User) -> None:
        try:
            await self.kv.create(user_key(user.username), encode_user(user))
        except KeyWrongLastSequenceError:
            raise UserError("conflict", "username", f"a user named {user.username!r} exists already") from None

    async def change(self, username: str, edit: Callable[[User], User]) -> User:
        """Apply `edit` to the current record; raises UserError(not_found) if there is none."""
        for _ in range(5):  # lost a race with another writer: read again and edit that
            found = await self.get(username)
            if found is None:
                raise UserError("not_found", "username", f"no user named {username!r}")
            user, revision = found
            changed = edit(user)
            try:
                await self.kv.update(user_key(username), encode_user(changed), last=revision)
            except KeyWrongLastSequenceError:
                continue
            return changed
        raise UserError("concurrency", "username", "the user changed meanwhile; try again")

    async def disable(self, username: str) -> User:
        # A new epoch: every token the user holds is refused from now on, even once enabled again.
        return await self.change(username, lambda u: replace(u, disabled=True, epoch=u.epoch + 1))

    async def enable(self, username: str) -> User:
        return await self.change(username, lambda u: replace(u, disabled=False))

    async def reset_password(self, username: str, password: str) -> User:
        check_password(password)
        hashed = await asyncio.to_thread(hash_password, password)  # slow on purpose: off the event loop
        # A new password ends every session the old one opened.
        return await self.change(username, lambda u: replace(u, password_hash=hashed, epoch=u.epoch + 1))

    async def import_file(self, path: Path) -> list[str]:
        """The users of a users file that the bucket does not have yet; never overwrites
        one (a user disabled, or given a new password, in the bucket stays so)."""
        added = []
        for user in load_users(path).values():
            try:
                await self.kv.create(user_key(user.username), encode_user(user))
            except KeyWrongLastSequenceError:
                continue
            added.append(user.username)
        return added


async def read_bucket(kv: KeyValue) -> dict[str, bytes]:
    """Every live key of a bucket with its current value, bytes as stored: the bucket
    followed (`watch_bucket`) until its current content is in, then left."""
    entries: dict[str, bytes] = {}

    def keep(key: str, value: bytes | None) -> None:
        if value is None:
            entries.pop(key, None)
        else:
            entries[key] = value

    follower, loaded = await watch_bucket(kv, keep)
    try:
        await loaded
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
    return entries


async def watch_bucket(kv: KeyValue, apply: Callable[[str, bytes | None], None],
                       patience: float = 10.0) -> tuple[asyncio.Task[None], asyncio.Future[None]]:
    """Follow a bucket: `apply(key, value)` for each current entry, then for every change
    (value None for a delete or purge). The future is done once the current content has
    been applied. Not nats-py's own "nothing more" marker, which can come before entries
    already on their way: the entry with nothing pending after it, or an empty bucket."""
    empty = (await kv.status()).values == 0
    watcher = await kv.watchall()
    loaded: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def follow() -> None:
        try:
            async for entry in watcher:
                if entry is None:
                    if empty and not loaded.done():
                        loaded.set_result(None)
                    continue
                apply(entry.key, entry.value if entry.operation is None else None)
                if entry.delta == 0 and not loaded.done():
                    loaded.set_result(None)
        finally:
            with contextlib.suppress(Exception):
                await watcher.stop()  # type: ignore[no-untyped-call]  # nats-py leaves it unannotated

    async def give_up() -> None:
        # Entries that expired between the count and the watch never arrive: go on with what did.
        await asyncio.sleep(patience)
        if not loaded.done():
            loaded.set_result(None)

    task = asyncio.create_task(follow())
    timer = asyncio.create_task(give_up())
    loaded.add_done_callback(lambda _: timer.cancel())
    task.add_done_callback(lambda _: timer.cancel())
    return task, loaded
