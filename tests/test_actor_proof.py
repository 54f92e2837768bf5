"""The actor of a command is proven, never taken from a header on trust (DESIGN.md,
Trust): the gateway or the CLI signs subject, actor, correlation id, issued-at and the
body's hash; a service refuses, stores nothing and logs what it cannot believe.

On a real nats-server with dispatch running in-process and the run's keys
(tests/conftest.py sets WEIBAO_KEYS), as in production."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from nats.aio.client import Client as NATS
from structlog.testing import capture_logs

from tests.dispatch.conftest import running, set_up_customer_and_crew
from tests.helpers import cli_signer, request, services_answer
from weibao.dispatch.service import spec as dispatch_spec
from weibao.runtime.natsd import NatsServer
from weibao.shared import keys, rpc
from weibao.shared.client import (
    ACTOR,
    CORRELATION,
    ISSUED_AT,
    SIGNATURE,
    Proof,
    Replays,
    headers_for,
    prove,
    signed_message,
    wall_clock,
)
from weibao.shared.errors import Rejected
from weibao.shared.keys import Keyring, Signer
from weibao.shared.service import Settings, serve

REGISTER = "weibao.dispatch.technician.register"
ADMIN = "admin:admin"
# As tests/dispatch/conftest.py's `clock`: WEIBAO_NOW pins the business day, not the
# wall clock a signature's freshness is checked against.
CLOCK = {"WEIBAO_ASSESS_INTERVAL": "3600", "WEIBAO_TODAY": "2026-06-01", "WEIBAO_NOW": "2026-06-01T01:00:00+00:00",
         "WEIBAO_TICK_INTERVAL": "0.2"}


def technician(technician_id: str, command_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"technician_id": technician_id, "name": "张工", "skills": ["hardware"],
                            "home": {"latitude": 31.83, "longitude": 117.24}}
    return body | ({"command_id": command_id} if command_id else {})


@contextlib.asynccontextmanager
async def dispatch_running(nats_server: NatsServer, nc: NATS, tmp_path: Path) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(serve(dispatch_spec, Settings(nats_server.url, f"sqlite:///{tmp_path / 'd.db'}"),
                                     stop))
    try:
        await services_answer(nc, "dispatch")
        yield
    finally:
        stop.set()
        await task


@pytest.fixture
async def dispatch(nats_server: NatsServer, nc: NATS, tmp_path: Path) -> AsyncIterator[None]:
    async with dispatch_running(nats_server, nc, tmp_path):
        yield


@pytest.fixture
def refusals(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sequence[Mapping[str, Any]]]:
    """The log lines of the services' request endpoints while the test runs."""
    with capture_logs() as lines:
        # A fresh proxy: the module's own was cached with the run's processors on first use.
        monkeypatch.setattr(rpc, "log", structlog.get_logger("weibao.rpc"))
        yield lines


async def log_position(nc: NATS) -> int:
    return int(json.loads((await nc.request("weibao.dispatch.health", b"", timeout=5)).data)["log_position"])


async def send(nc: NATS, payload: bytes, headers: dict[str, str], subject: str = REGISTER) -> dict[str, Any]:
    """A request exactly as given: what an attacker (or a replay) puts on the wire."""
    answer: dict[str, Any] = json.loads((await nc.request(subject, payload, timeout=10, headers=headers)).data)
    return answer


def signed(subject: str, body: Mapping[str, Any], actor: str, signer: Signer | None = None,
           **extra: Any) -> tuple[bytes, dict[str, str]]:
    payload = json.dumps(body).encode()
    headers = headers_for(signer or cli_signer(), subject, payload, actor=actor, correlation_id=uuid.uuid4().hex,
                          **extra)
    return payload, headers


def refused_because(answer: Mapping[str, Any], lines: Sequence[Mapping[str, Any]], words: str) -> None:
    assert answer["ok"] is False
    assert answer["error"]["code"] == "unauthenticated" and answer["error"]["field"] == "(actor)"
    assert words in answer["error"]["message"]
    logged = [line for line in lines if line["event"] == "command.unauthenticated"]
    assert logged and logged[-1]["subject"] == REGISTER and words in logged[-1]["reason"]


async def test_a_forged_actor_header_without_a_signature_is_refused_and_nothing_stored(
        dispatch: None, nc: NATS, refusals: Sequence[Mapping[str, Any]]) -> None:
    before = await log_position(nc)
    answer = await send(nc, json.dumps(technician("mallory", "forged-1")).encode(), {ACTOR: ADMIN})
    refused_because(answer, refusals, "unsigned")
    assert await log_position(nc) == before
    board = await request(nc, "weibao.dispatch.technician", {"technician_id": "mallory"})
    assert board["ok"] is False  # the technician was never registered


async def test_a_signature_by_an_untrusted_key_is_refused(dispatch: None, nc: NATS,
                                                          refusals: Sequence[Mapping[str, Any]]) -> None:
    before = await log_position(nc)
    stranger = Signer.generate("gateway")  # calls itself the gateway; no service trusts its key
    answer = await send(nc, *signed(REGISTER, technician("mallory", "stranger-1"), ADMIN, stranger))
    refused_because(answer, refusals, "a key trusted for none of gateway, cli")
    assert await log_position(nc) == before


async def test_an_actor_altered_after_signing_is_refused(dispatch: None, nc: NATS,
                                                         refusals: Sequence[Mapping[str, Any]]) -> None:
    before = await log_position(nc)
    payload, headers = signed(REGISTER, technician("mallory", "altered-1"), "dispatcher:li")
    answer = await send(nc, payload, headers | {ACTOR: ADMIN})
    refused_because(answer, refusals, "the signature does not match")
    # The body changed after signing (another command id, say) is caught the same way.
    other = json.dumps(technician("mallory", "altered-2")).encode()
    refused_because(await send(nc, other, headers), refusals, "the signature does not match")
    assert await log_position(nc) == before


async def test_a_stale_request_is_refused(dispatch: None, nc: NATS, refusals: Sequence[Mapping[str, Any]]) -> None:
    before = await log_position(nc)
    payload, headers = signed(REGISTER, technician("late", "stale-1"), "dispatcher:li",
                              issued_at=wall_clock() - timedelta(minutes=10))
    refused_because(await send(nc, payload, headers), refusals, "more than 5 minutes")
    payload, headers = signed(REGISTER, technician("early", "early-1"), "dispatcher:li",
                              issued_at=wall_clock() + timedelta(minutes=10))
    refused_because(await send(nc, payload, headers), refusals, "more than 5 minutes")
    assert await log_position(nc) == before


async def test_queries_are_proven_too(dispatch: None, nc: NATS, refusals: Sequence[Mapping[str, Any]]) -> None:
    answer = await send(nc, b"{}", {ACTOR: ADMIN}, subject="weibao.dispatch.technicians")
    assert answer["error"]["code"] == "unauthenticated"
    assert (await request(nc, "weibao.dispatch.technicians", {}))["ok"] is True


async def test_a_signed_command_records_the_signed_actor_a_replay_is_refused_a_retry_stores_nothing_twice(
        dispatch: None, nc: NATS) -> None:
    before = await log_position(nc)
    payload, headers = signed(REGISTER, technician("wang", "register-wang"), "dispatcher:li")
    first = await send(nc, payload, headers)
    assert first["ok"] is True and len(first["result"]["events"]) == 1
    after = await log_position(nc)
    assert after == before + 1

    replayed = await send(nc, payload, headers)  # the same bytes, captured and sent again
    assert replayed["ok"] is False and "replayed" in replayed["error"]["message"]
    # Signed anew (a client's retry), the same command id answers what it stored then.
    retried = await send(nc, *signed(REGISTER, technician("wang", "register-wang"), "dispatcher:li"))
    assert [e["position"] for e in retried["result"]["events"]] == [e["position"] for e in first["result"]["events"]]
    assert await log_position(nc) == after

    # The auditor's history of the aggregate names who did it, and who vouched for them.
    history = await request(nc, "weibao.dispatch.audit.stream", {"stream_id": "technician-wang"}, actor="auditor:zhou")
    assert history["ok"] is True
    [event] = history["result"]["events"]
    assert event["meta"]["actor"] == "dispatcher:li"
    assert event["meta"]["signed_by"] == "cli"
    assert event["meta"]["command_id"] == "register-wang"


async def test_the_ticket_history_shows_the_signed_actor(nats_server: NatsServer, nc: NATS, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in CLOCK.items():  # the business day the dispatch tests' agreement covers
        monkeypatch.setenv(name, value)
    async with running(nats_server, nc, tmp_path):
        await set_up_customer_and_crew(nc)  # itself entirely through the signed helper
        opened = await request(nc, "weibao.dispatch.ticket.open",
                               {"ticket_id": "t-proof", "site_id": "s-1", "summary": "打印机不出纸",
                                "command_id": "open-1"}, actor="dispatcher:li")
        assert opened["ok"] is True, opened
        history = await request(nc, "weibao.dispatch.history", {"ticket_id": "t-proof"}, actor="auditor:zhou")
    assert history["ok"] is True
    assert history["result"][0]["meta"]["actor"] == "dispatcher:li"
    assert history["result"][0]["meta"]["signed_by"] == "cli"


# -- the check itself, without a broker ----------------------------------------------------


def test_prove_names_the_caller_that_vouched() -> None:
    keyring = Keyring.from_env()
    assert keyring is not None
    gateway = keyring.signer("gateway")
    assert gateway is not None
    payload, headers = signed("weibao.x.y", {"a": 1}, "technician:wang", gateway)
    assert prove(keyring, "weibao.x.y", headers, payload) == Proof("technician:wang", "gateway")
    with pytest.raises(Rejected, match="signature does not match"):  # signed for another subject
        prove(keyring, "weibao.x.z", headers, payload)
    with pytest.raises(Rejected, match="signature does not match"):  # the time changed after signing
        prove(keyring, "weibao.x.y", headers | {ISSUED_AT: wall_clock().isoformat()}, payload)
    # A signer that writes no time the service can read is refused, signature or not.
    message = signed_message("weibao.x.y", "technician:wang", headers[CORRELATION], "yesterday", payload)
    undated = headers | {ISSUED_AT: "yesterday", SIGNATURE: gateway.sign(keys.COMMAND, message)}
    with pytest.raises(Rejected, match="not a time"):
        prove(keyring, "weibao.x.y", undated, payload)
    # A service's own event key does not vouch for an actor: only the gateway and the CLI do.
    service = keyring.signer("dispatch")
    assert service is not None
    payload, headers = signed("weibao.x.y", {"a": 1}, ADMIN, service)
    with pytest.raises(Rejected, match="trusted for none"):
        prove(keyring, "weibao.x.y", headers, payload)


def test_without_keys_the_header_is_taken_as_it_is() -> None:
    """Kit unit tests only (no WEIBAO_KEYS): today's behaviour."""
    assert prove(None, "weibao.x.y", {ACTOR: "dispatcher:li"}, b"{}") == Proof("dispatcher:li", None)
    assert prove(None, "weibao.x.y", {}, b"{}") == Proof("system", None)


def test_replays_remember_fresh_signatures_only_and_stay_bounded() -> None:
    seen = Replays(limit=4)
    start = datetime(2026, 6, 1, tzinfo=UTC)
    assert seen.first_time("a", start) and not seen.first_time("a", start + timedelta(minutes=9))
    assert seen.first_time("a", start + timedelta(minutes=11))  # stale: prove() refuses it anyway
    for n in range(10):  # a flood never grows the memory past its limit
        assert seen.first_time(f"s{n}", start + timedelta(minutes=12))
    assert len(seen._seen) <= 4


def test_a_good_signature_is_verified_once_per_process_and_a_bad_one_every_time(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 15: the readers of one stream share the process's Trust, so an event's
    signature found good is not verified again; what was verified is the whole key."""
    keyring = Keyring.from_env()
    assert keyring is not None
    dispatch = keyring.signer("dispatch")
    assert dispatch is not None
    trust = keyring.trust
    good = dispatch.sign(keys.EVENT, b"hash-1")
    assert trust.check("dispatch", keys.EVENT, b"hash-1", dispatch.key_id, good) is None
    monkeypatch.setattr(keys, "VERIFIED_KEPT", 2)
    verified = len(trust._verified)
    assert trust.check("dispatch", keys.EVENT, b"hash-1", dispatch.key_id, good) is None  # a lookup
    assert len(trust._verified) == verified
    # the same signature over other bytes, or for another purpose, is verified (and refused)
    assert "does not match" in str(trust.check("dispatch", keys.EVENT, b"hash-2", dispatch.key_id, good))
    assert "does not match" in str(trust.check("dispatch", keys.COMMAND, b"hash-1", dispatch.key_id, good))
    # a key not trusted for the signer is refused before any lookup
    assert "not trusted" in str(trust.check("billing", keys.EVENT, b"hash-1", dispatch.key_id, good))
    for n in range(5):  # bounded
        trust.check("dispatch", keys.EVENT, b"h%d" % n, dispatch.key_id, dispatch.sign(keys.EVENT, b"h%d" % n))
    assert len(trust._verified) <= 2
