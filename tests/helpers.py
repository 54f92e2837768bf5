"""What several integration tests need: read a stream whole, wait for a condition, and
ask the services as the CLI does (signed, so the services believe the actor)."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import urllib.error
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client as NATS
from nats.js.errors import NotFoundError

from weibao.shared.client import Client, headers_for, signer_of
from weibao.shared.events import GENESIS_HASH, RecordedEvent, canonical_json, event_hash
from weibao.shared.keys import EVENT, Keyring, Signer
from weibao.shared.streams import stream_name


def health(port: int) -> tuple[int, dict[str, Any]]:
    """A gateway's /healthz on this machine: (status, body); (0, {}) while nobody answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=3) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
    except OSError:
        return 0, {}


def harness_seed() -> Path:
    """The tests' own NATS identity (tests/conftest.py admits it with no limits)."""
    return Path(os.environ["WEIBAO_KEYS"]) / "harness.nk"


async def connect_harness(url: str) -> NATS:
    """A connection as the tests' harness, to a broker a test started."""
    return await nats.connect(url, nkeys_seed=str(harness_seed()), max_reconnect_attempts=-1,
                              reconnect_time_wait=0.2)


async def stream_messages(nc: NATS, service: str) -> list[tuple[int, dict[str, str], dict[str, Any] | bytes]]:
    """Every message of a service's stream: (sequence, headers, body as JSON or raw)."""
    js = nc.jetstream()
    last = (await js.stream_info(stream_name(service))).state.last_seq
    found = []
    for seq in range(1, last + 1):
        try:
            raw = await js.get_msg(stream_name(service), seq)
        except NotFoundError:
            continue
        data = raw.data or b""
        try:
            body: dict[str, Any] | bytes = json.loads(data)
        except ValueError:
            body = data
        found.append((seq, dict(raw.headers or {}), body))
    return found


async def relayed_positions(nc: NATS, service: str) -> list[int]:
    return [int(h["Weibao-Position"]) for _, h, _ in await stream_messages(nc, service) if "Weibao-Position" in h]


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 20.0, every: float = 0.05) -> None:
    """Wait until `check` holds; fail with a timeout otherwise (tests never assert a time)."""
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(every)


async def services_answer(nc: NATS, *services: str) -> None:
    """Wait until every named service answers its health request."""

    async def answering() -> bool:
        try:
            for service in services:
                await nc.request(f"weibao.{service}.health", b"", timeout=0.5)
        except Exception:
            return False
        return True

    await eventually(answering)


@functools.cache
def _signer(folder: str | None, caller: str) -> Signer | None:
    # Read once per keys folder: tests/conftest.py sets one for the whole run.
    return signer_of(Keyring.from_env() if folder else None, caller)


def cli_signer(caller: str = "cli") -> Signer | None:
    """The key the tests sign with: the CLI's from WEIBAO_KEYS, as an operator's command."""
    return _signer(os.environ.get("WEIBAO_KEYS"), caller)


def client(nc: NATS, timeout: float = 10.0) -> Client:
    """The kit's client over `nc`, signed as the CLI."""
    return Client(nc, cli_signer(), timeout=timeout)


async def request(nc: NATS, subject: str, body: Mapping[str, Any], actor: str = "dispatcher:li",
                  timeout: float = 10.0) -> dict[str, Any]:
    """The whole reply to `subject` (`weibao.<service>.<name>`), asked in `actor`'s name."""
    return await client(nc, timeout).answer(subject, body, actor=actor)


async def request_raw(nc: NATS, subject: str, payload: bytes, actor: str = "dispatcher:li",
                      timeout: float = 10.0) -> dict[str, Any]:
    """The reply to a payload sent as it is (not JSON, say), signed all the same: what a
    service answers a well-vouched caller that sends garbage."""
    headers = headers_for(cli_signer(), subject, payload, actor=actor, correlation_id=uuid.uuid4().hex)
    answer: dict[str, Any] = json.loads((await nc.request(subject, payload, timeout=timeout, headers=headers)).data)
    return answer


def upstream_events(service: str, items: Sequence[tuple[str, str, int, Mapping[str, Any]]],
                    recorded_at: datetime) -> list[RecordedEvent]:
    """Events as `service`'s log would hold them: (stream id, type, schema version, data)
    at positions 1, 2, ..., each linked to the one before and signed with the service's
    key from WEIBAO_KEYS (what a consumer started in a test checks); for tests that play
    an upstream service's relay by hand."""
    ring = Keyring.from_env()
    signer = ring.signer(service) if ring is not None else None
    events, prev = [], GENESIS_HASH
    for position, (stream_id, kind, schema, data) in enumerate(items, start=1):
        plain = json.loads(json.dumps(data))
        digest = event_hash(prev, position=position, stream_id=stream_id, version=1, type=kind,
                            schema_version=schema, data_json=canonical_json(plain), meta_json=canonical_json({}),
                            recorded_at=recorded_at)
        events.append(RecordedEvent(position, stream_id, 1, kind, schema, plain, {}, recorded_at, prev, digest,
                                    signer.key_id if signer else None,
                                    signer.sign(EVENT, digest.encode()) if signer else None))
        prev = digest
    return events
