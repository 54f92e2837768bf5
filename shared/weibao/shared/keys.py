"""Signing keys: each service signs the events it stores, the gateway and the CLI sign the
commands they send, and whoever reads checks against the public keys it trusts.

Ed25519 (PyNaCl). A key is known by its public half, written `ed25519:<base64url>`.
What a key signs is prefixed with its purpose (`weibao-event-v1`, `weibao-command-v1`),
so a signature made for one purpose never passes for another.

On disk, a keys folder (`WEIBAO_KEYS`; `weibao up` makes `./var/keys` on first start):
- `signing/<name>.key`: the private seed of `<name>` (a service, `gateway` or `cli`),
  mode 0600. In production each process's folder holds only its own, from a secret.
- `signing/trusted.json`: `{name: [public key, ...]}`, the keys accepted for each
  signer. Several keys per name during a rotation: add the new one everywhere, switch
  the signer, then drop the old one. Public, so it may be a ConfigMap.
These keys are not the NATS identities (`nats/`): a NATS server chooses the nonce its
clients sign, so a NATS key must never sign anything else."""

from __future__ import annotations

import base64
import json
import os
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from weibao.shared.settings import environment

PREFIX = "ed25519:"
EVENT = b"weibao-event-v1\n"
COMMAND = b"weibao-command-v1\n"
# Everyone who signs something in Weibao: the three services sign events; the gateway
# and the CLI sign the actors of the commands they send.
SIGNERS = ("contracts", "dispatch", "billing", "gateway", "cli")
# What `Trust.check` says of something that carries no signature at all: a reader may
# still accept it where a log's SigningStarted vouches for it (weibao.shared.proof).
UNSIGNED = "unsigned"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class KeysUnreadable(ValueError):
    """A key file or a trust list that does not read; the process does not start."""


@dataclass(frozen=True)
class Signer:
    """One private key, and the public key id it signs as."""

    name: str
    key: SigningKey = field(repr=False)

    @property
    def key_id(self) -> str:
        return PREFIX + _b64(bytes(self.key.verify_key))

    def sign(self, purpose: bytes, message: bytes) -> str:
        return _b64(self.key.sign(purpose + message).signature)

    @classmethod
    def generate(cls, name: str) -> Signer:
        return cls(name, SigningKey.generate())

    @classmethod
    def from_seed_text(cls, name: str, text: str) -> Signer:
        try:
            seed = _unb64(text.strip())
            if len(seed) != 32:
                raise ValueError(f"{len(seed)} bytes, not 32")
            return cls(name, SigningKey(seed))
        except ValueError as error:
            raise KeysUnreadable(f"the signing key of {name!r} does not read: {error}") from error

    def seed_text(self) -> str:
        return _b64(bytes(self.key))


def _verify_key(key_id: str) -> VerifyKey:
    if not key_id.startswith(PREFIX):
        raise KeysUnreadable(f"{key_id!r} is not an ed25519 key id")
    raw = _unb64(key_id.removeprefix(PREFIX))
    if len(raw) != 32:
        raise KeysUnreadable(f"{key_id!r} is not 32 bytes")
    return VerifyKey(raw)


VERIFIED_KEPT = 4096  # a few batches of every reader in a process


@dataclass(frozen=True)
class Trust:
    """The public keys accepted for each signer."""

    keys: Mapping[str, frozenset[str]] = field(default_factory=dict)
    _verifiers: dict[str, VerifyKey] = field(default_factory=dict, repr=False, compare=False)
    # Signatures already found good, by exactly what was verified: every reader of one
    # stream in a process (dispatch has three) checks the same event, and Ed25519 is a
    # pure function of key, bytes and signature, so the second reader's check is a lookup
    # (issue 15). Only successes are kept; bounded, oldest out first.
    _verified: OrderedDict[tuple[str, bytes, str], None] = field(default_factory=OrderedDict, repr=False,
                                                                 compare=False)

    def __post_init__(self) -> None:
        for key_ids in self.keys.values():
            for key_id in key_ids:
                self._verifiers[key_id] = _verify_key(key_id)

    def knows(self, signer: str) -> bool:
        return bool(self.keys.get(signer))

    def check(self, signer: str, purpose: bytes, message: bytes, key_id: str | None,
              signature: str | None) -> str | None:
        """None when `signature` is `signer`'s over `message`; else why not, in words."""
        if not key_id or not signature:
            return UNSIGNED
        if key_id not in self.keys.get(signer, ()):
            return f"signed by {key_id}, a key not trusted for {signer}"
        signed = (key_id, purpose + message, signature)
        if signed in self._verified:
            self._verified.move_to_end(signed)
            return None
        try:
            self._verifiers[key_id].verify(signed[1], _unb64(signature))
        except (BadSignatureError, ValueError):
            return f"the signature does not match (key {key_id})"
        self._verified[signed] = None
        if len(self._verified) > VERIFIED_KEPT:
            self._verified.popitem(last=False)
        return None

    def as_json(self) -> dict[str, list[str]]:
        return {name: sorted(ids) for name, ids in sorted(self.keys.items())}


@dataclass(frozen=True)
class Keyring:
    """What one process holds: its own private keys (usually one) and whom it trusts."""

    own: Mapping[str, Signer]
    trust: Trust

    def signer(self, name: str) -> Signer | None:
        return self.own.get(name)

    @classmethod
    def load(cls, folder: Path) -> Keyring:
        signing = folder / "signing"
        own = {path.stem: Signer.from_seed_text(path.stem, path.read_text()) for path in sorted(signing.glob("*.key"))}
        trusted = signing / "trusted.json"
        if not trusted.exists():
            raise KeysUnreadable(f"{trusted} is missing: the keys no signature can be checked against")
        try:
            raw = json.loads(trusted.read_text())
            keys = {str(name): frozenset(str(k) for k in ids) for name, ids in raw.items()}
        except (ValueError, AttributeError, TypeError) as error:
            raise KeysUnreadable(f"{trusted} does not read: {error}") from error
        return cls(own, Trust(keys))

    @classmethod
    def from_env(cls) -> Keyring | None:
        folder = environment().keys
        return cls.load(Path(folder)) if folder else None


def generate(folder: Path, names: Iterable[str] = SIGNERS) -> Keyring:
    """Make the keys that are missing (never replace one) and trust every public key
    found; return the keyring. For `weibao up` and the tests, where one machine runs all."""
    signing = folder / "signing"
    signing.mkdir(parents=True, exist_ok=True)
    os.chmod(signing, 0o700)
    for name in names:
        path = signing / f"{name}.key"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(Signer.generate(name).seed_text() + "\n")
    own = {path.stem: Signer.from_seed_text(path.stem, path.read_text()) for path in sorted(signing.glob("*.key"))}
    trusted = signing / "trusted.json"
    known: dict[str, set[str]] = {}
    if trusted.exists():
        known = {name: set(ids) for name, ids in json.loads(trusted.read_text()).items()}
    for name, signer in own.items():
        known.setdefault(name, set()).add(signer.key_id)
    trusted.write_text(json.dumps({n: sorted(ids) for n, ids in sorted(known.items())}, indent=2) + "\n")
    return Keyring.load(folder)
