"""Who may say what on the broker: one NATS nkey user per process role, and the
least-privilege permissions each is given.

Roles: each service (`contracts`, `dispatch`, `billing`) publishes only its own stream's
subjects and reads the streams it consumes; the `gateway` and the `cli` (the demo
loader, the pulse, operator commands) send commands and queries; `setup` alone creates
and updates streams. Nobody may delete or purge a stream, nor delete a consumer.

A seed file is `<dir>/<role>.nk` (or `<role>.<anything>.nk`, a rotation's second key);
the server learns only the public keys, in the `authorization` block rendered here.

Every identity has its own reply inbox, `_INBOX_<public key>`, and may subscribe to no
other: with the shared `_INBOX.>` any identity could read every reply to anyone (an
invoice answered to the gateway, say). connect() in weibao.shared.service sets it."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import nkeys  # type: ignore[import-untyped]  # no type information shipped
from nacl.signing import SigningKey

from weibao.shared.settings import environment
from weibao.shared.streams import BUCKETS, SERVICES, USERS_BUCKET, stream_name

SEED_ENV = "WEIBAO_NATS_SEED"  # the path of this process's seed file
CA_ENV = "WEIBAO_NATS_CA"  # the CA that signed the broker's certificate (tls://)

ROLES = (*SERVICES, "gateway", "cli", "setup")

# Each service's durable consumers, by the stream they read: the names are
# `<service>-<read model>` (ServiceSpec.consumer_name). Listed here, not taken from the
# specs, because the kit imports no service; tests/test_broker_auth.py checks that they
# match. A service given a new read model needs its consumer here, or the broker
# refuses its pulls (the log says which subject).
CONSUMERS: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "contracts": {"contracts": ("contracts-stream_index_contracts", "contracts-customer_directory",
                                "contracts-agreement_register")},
    "dispatch": {"contracts": ("dispatch-coverage_book",),
                 "dispatch": ("dispatch-technician_board", "dispatch-ticket_board",
                              "dispatch-stream_index_dispatch")},
    "billing": {"contracts": ("billing-policy_contracts",), "dispatch": ("billing-policy_dispatch",),
                "billing": ("billing-stream_index_billing", "billing-invoice_book")},
}

# Command subjects a service sends to another one: none today (grep `nc.request(` under
# services/); a service that starts asking another must be listed here.
SERVICE_REQUESTS: Mapping[str, tuple[str, ...]] = {}

API = "$JS.API"


def new_seed() -> str:
    """A fresh user seed (`SU...`): nkeys 0.2 can read seeds but not make them."""
    raw = bytes(SigningKey.generate())
    return str(nkeys.encode_seed(raw, nkeys.PREFIX_BYTE_USER).decode())


def public_key(seed_file: str | Path) -> str:
    """The `U...` public key of the seed in that file."""
    pair = nkeys.from_seed(bytearray(Path(seed_file).read_bytes().strip()))
    try:
        return str(pair.public_key.decode())
    finally:
        pair.wipe()


def inbox_prefix(public: str) -> str:
    """The only inbox that identity may subscribe to (a NATS subject token, no dots)."""
    return f"_INBOX_{public}"


def seed_path(directory: Path, role: str) -> Path:
    return directory / f"{role}.nk"


def ensure(directory: Path, roles: Iterable[str] = ROLES) -> dict[str, Path]:
    """Write a seed for every role that has none yet; never replace one (a new key is a
    rotation: deploy/README.md). The folder is 0700 and each file 0600."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    paths = {}
    for role in roles:
        if role not in ROLES:
            raise ValueError(f"no NATS identity {role!r}; there are: {', '.join(ROLES)}")
        path = seed_path(directory, role)
        if not seed_files(directory).get(role):
            # O_EXCL: two first starts racing each other cannot both write, nor replace.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(new_seed() + "\n")
        paths[role] = path
    return paths


def add_key(directory: Path, role: str, label: str) -> Path:
    """A second seed for `role` (`<role>.<label>.nk`): the first step of a rotation."""
    if role not in ROLES or not label or "." in label or "/" in label:
        raise ValueError(f"bad role {role!r} or label {label!r}")
    path = directory / f"{role}.{label}.nk"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(new_seed() + "\n")
    return path


def seed_files(directory: Path) -> dict[str, list[Path]]:
    """Every seed in `directory`, by role: `<role>.nk` and `<role>.<label>.nk`."""
    found: dict[str, list[Path]] = {}
    for path in sorted(directory.glob("*.nk")):
        role = path.name.split(".", 1)[0]
        if role in ROLES:
            found.setdefault(role, []).append(path)
    return found


def seed_for(role: str, directory: Path | None = None) -> str | None:
    """The seed a process connects with as `role`: WEIBAO_NATS_SEED when set (in
    production each process is given its own), else the role's file in `directory`
    (default `<WEIBAO_KEYS>/nats`: one machine holding every key, as `weibao up` and the
    tests do) when there is one, else none (an open broker, which then refuses nothing)."""
    env = environment()
    if explicit := env.nats_seed:
        return explicit
    if directory is None:
        directory = Path(env.keys) / "nats" if env.keys else None
    path = seed_path(directory, role) if directory is not None else None
    return str(path) if path is not None and path.exists() else None


@dataclass(frozen=True)
class Permissions:
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    # Reply to whoever sent a request (the reply subject only, once).
    responses: bool = False


def _streams_read(service: str) -> list[str]:
    return list(dict.fromkeys([service, *CONSUMERS.get(service, {})]))


def _bucket(bucket: str) -> list[str]:
    """Read and write one key-value bucket, and nothing else of JetStream: its stream's
    info (opening it), a key (direct or stream get), a put (the `$KV` subject), and a
    watch (an ordered, ephemeral consumer whose create subject names no durable, with its
    flow control and info), which mirrors the bucket in memory."""
    stream = f"KV_{bucket}"
    return [f"$KV.{bucket}.>", f"{API}.STREAM.INFO.{stream}", f"{API}.STREAM.MSG.GET.{stream}",
            f"{API}.DIRECT.GET.{stream}", f"{API}.DIRECT.GET.{stream}.>", f"{API}.CONSUMER.CREATE.{stream}",
            f"{API}.CONSUMER.CREATE.{stream}.>", f"{API}.CONSUMER.INFO.{stream}.>", f"$JS.FC.{stream}.>"]


def permissions(role: str, public: str) -> Permissions:
    inbox = f"{inbox_prefix(public)}.>"
    commands = tuple(f"weibao.{s}.>" for s in SERVICES)
    if role in SERVICES:
        publish = [f"{role}.>"]  # its relay; never another service's subjects
        for upstream in _streams_read(role):
            stream = stream_name(upstream)
            # the relay's and the audit's view of a stream; a consumer filling a gap
            publish += [f"{API}.STREAM.INFO.{stream}", f"{API}.STREAM.MSG.GET.{stream}"]
            # `replay`: an ordered consumer, ephemeral (the subject names no consumer, so
            # it cannot rewrite anyone's durable one), answering the server's flow control.
            publish += [f"{API}.CONSUMER.CREATE.{stream}", f"$JS.FC.{stream}.>"]
            for durable in CONSUMERS.get(role, {}).get(upstream, ()):
                publish += [f"{API}.CONSUMER.INFO.{stream}.{durable}",
                            f"{API}.CONSUMER.CREATE.{stream}.{durable}.>",
                            f"{API}.CONSUMER.MSG.NEXT.{stream}.{durable}",
                            f"$JS.ACK.{stream}.{durable}.>"]
        publish += list(SERVICE_REQUESTS.get(role, ()))
        return Permissions(tuple(publish), (f"weibao.{role}.>", inbox), responses=True)
    if role == "gateway":
        # /live: the event envelopes, core NATS, read-only.
        # The sign-in state every replica shares: users, revoked tokens, failed sign-ins.
        kv = [subject for bucket in BUCKETS for subject in _bucket(bucket)]
        return Permissions((*commands, *kv), (inbox, *(f"{s}.>" for s in SERVICES)))
    if role == "cli":
        # the demo loader waits until consumers caught up: stream and consumer state only
        state = [f"{API}.{what}.{stream_name(s)}" for s in SERVICES for what in ("STREAM.INFO", "CONSUMER.LIST")]
        # `weibao users ...`: the users bucket only (a disabled user's tokens die by its record)
        return Permissions((*commands, *state, *_bucket(USERS_BUCKET)), (inbox,))
    if role == "setup":
        admin = [f"{API}.STREAM.{what}.{stream}" for stream in (*map(stream_name, SERVICES),
                                                                 *(f"KV_{b}" for b in BUCKETS))
                 for what in ("INFO", "CREATE", "UPDATE")]
        return Permissions((f"{API}.INFO", *admin), (inbox,))
    raise ValueError(f"no NATS identity {role!r}")


def _user(role: str, public: str) -> str:
    rules = permissions(role, public)
    quoted = json.dumps  # JSON strings are NATS config strings; `$JS...` quoted is literal
    body = (f"publish: {{allow: [{', '.join(map(quoted, rules.publish))}]}}, "
            f"subscribe: {{allow: [{', '.join(map(quoted, rules.subscribe))}]}}")
    if rules.responses:
        body += ", allow_responses: true"
    return f"    # {role}\n    {{nkey: {quoted(public)}, permissions: {{{body}}}}}"


def authorization(keys: Iterable[tuple[str, str]]) -> str:
    """The nats-server `authorization` block for these (role, public key) pairs."""
    users = [_user(role, public) for role, public in keys]
    if not users:
        raise ValueError("no NATS identities: an authorization block without users refuses everyone")
    return "authorization {\n  users = [\n" + "\n".join(users) + "\n  ]\n}\n"


def authorization_for(directory: Path) -> str:
    """The block for every seed in `directory` (both keys of a role in rotation)."""
    return authorization((role, public_key(path)) for role, paths in seed_files(directory).items()
                         for path in paths)
