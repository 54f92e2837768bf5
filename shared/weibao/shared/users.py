"""The people who sign in to the gateway: a file of users with argon2 password hashes.

The gateway keeps no state, so its users live in a file it reads (`WEIBAO_USERS`,
default `var/users.json`), written by the demo loader or `weibao users add`. A
technician's user names the technician id whose visits it may see and report on."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, get_args

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

Role = Literal["dispatcher", "technician", "billing", "auditor", "admin"]
ROLES: tuple[str, ...] = get_args(Role)

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters


@dataclass(frozen=True)
class User:
    username: str
    role: Role
    password_hash: str
    display_name: str = ""
    technician_id: str | None = None  # set for (and only for) the technician role

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"{self.username}: unknown role {self.role!r}")
        if (self.role == "technician") != (self.technician_id is not None):
            raise ValueError(f"{self.username}: a technician, and only a technician, names a technician_id")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(user: User, password: str) -> bool:
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def default_path() -> Path:
    return Path(os.environ.get("WEIBAO_USERS", "var/users.json"))


def load_users(path: Path) -> dict[str, User]:
    """Users by name; an absent file means nobody can sign in yet."""
    if not path.exists():
        return {}
    return {u["username"]: User(**u) for u in json.loads(path.read_text("utf-8"))}


def save_users(path: Path, users: dict[str, User]) -> None:
    """Write atomically: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps([asdict(u) for u in users.values()], ensure_ascii=False, indent=2), "utf-8")
    os.replace(partial, path)
