"""The broker admits only the NATS identities, each with least privilege (DESIGN.md,
"Trust"): against a real nats-server, whose log names every refusal."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import NoServersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import StreamConfig
from nats.js.errors import APIError

from tests.conftest import SecureNats
from tests.helpers import eventually, request, services_answer
from weibao.billing.service import spec as billing_spec
from weibao.contracts.service import spec as contracts_spec
from weibao.dispatch.service import spec as dispatch_spec
from weibao.shared import identities
from weibao.shared.db import make_engine
from weibao.shared.eventstore import EventStore
from weibao.shared.service import ServiceSpec, Settings, connect, serve
from weibao.shared.streams import SERVICES, setup_streams

SPECS = {"contracts": contracts_spec, "dispatch": dispatch_spec, "billing": billing_spec}


@contextlib.asynccontextmanager
async def connected(broker: SecureNats, role: str) -> AsyncIterator[NATS]:
    nc = await connect(broker.url, f"test-{role}", seed=broker.seed(role))
    try:
        yield nc
    finally:
        await nc.close()


async def set_up_streams(broker: SecureNats) -> None:
    async with connected(broker, "setup") as nc:
        await setup_streams(nc.jetstream())


async def logged(broker: SecureNats, needle: str, count: int = 1) -> None:
    """Until the broker's log names `needle` in `count` refusals (it writes them a moment
    after refusing)."""

    async def found() -> bool:
        return "\n".join(broker.violations()).count(needle) >= count

    await eventually(found, timeout=5)


async def last_seq(nc: NATS, service: str) -> int:
    return int((await nc.jetstream().stream_info(service.upper())).state.last_seq)


def test_the_consumer_table_matches_the_services() -> None:
    engine = make_engine("sqlite://")
    for name, spec in SPECS.items():
        declared: dict[str, list[str]] = {}
        for upstream, model in spec.read_models(EventStore(engine)):
            declared.setdefault(upstream, []).append(spec.consumer_name(model))
        assert {u: tuple(d) for u, d in declared.items()} == identities.CONSUMERS[name]


def test_seeds_are_made_once_and_kept_private(tmp_path: Path) -> None:
    keys = tmp_path / "keys" / "nats"
    first = identities.ensure(keys)
    seeds = {role: path.read_text() for role, path in first.items()}
    identities.ensure(keys)
    assert {role: path.read_text() for role, path in first.items()} == seeds  # never regenerated
    assert set(first) == set(identities.ROLES)
    assert keys.stat().st_mode & 0o777 == 0o700
    assert all(path.stat().st_mode & 0o777 == 0o600 for path in first.values())
    assert all(identities.public_key(path).startswith("U") for path in first.values())


async def test_without_credentials_the_broker_refuses(secure_nats: SecureNats) -> None:
    with pytest.raises((NoServersError, nats.errors.Error, OSError)):
        await nats.connect(secure_nats.url, connect_timeout=2, max_reconnect_attempts=0, allow_reconnect=False)


async def test_a_stranger_key_is_refused(secure_nats: SecureNats, tmp_path: Path) -> None:
    stranger = identities.ensure(tmp_path / "other")["dispatch"]  # a well-formed key the server never heard of
    with pytest.raises((NoServersError, nats.errors.Error, OSError)):
        await nats.connect(secure_nats.url, nkeys_seed=str(stranger), connect_timeout=2, max_reconnect_attempts=0,
                           allow_reconnect=False)


async def test_only_setup_manages_streams(secure_nats: SecureNats) -> None:
    async with connected(secure_nats, "dispatch") as nc:
        with pytest.raises(NatsTimeout):  # the broker drops a refused request: no answer
            await nc.jetstream(timeout=0.3).add_stream(StreamConfig(name="DISPATCH", subjects=["dispatch.>"]))
    await set_up_streams(secure_nats)
    for role in ("contracts", "dispatch", "billing", "gateway", "cli", "setup"):
        async with connected(secure_nats, role) as nc:
            js = nc.jetstream(timeout=0.3)
            with pytest.raises((NatsTimeout, APIError)):
                await js.delete_stream("BILLING")
            with pytest.raises((NatsTimeout, APIError)):
                await js.purge_stream("BILLING")
    async with connected(secure_nats, "setup") as nc:
        for name in ("CONTRACTS", "DISPATCH", "BILLING"):
            assert (await nc.jetstream().stream_info(name)).config.name == name  # still there
    await logged(secure_nats, 'Publish Violation - Subject "$JS.API.STREAM.DELETE.BILLING"', 6)
    await logged(secure_nats, 'Publish Violation - Subject "$JS.API.STREAM.CREATE.DISPATCH"')


async def test_a_service_cannot_publish_on_another_s_stream(secure_nats: SecureNats) -> None:
    await set_up_streams(secure_nats)
    async with connected(secure_nats, "cli") as cli, connected(secure_nats, "dispatch") as nc:
        js = nc.jetstream(timeout=0.5)
        before = await last_seq(cli, "billing")
        with pytest.raises(NatsTimeout):  # refused: no ack
            await js.publish("billing.invoice.issued", b"{}")
        with pytest.raises(NatsTimeout):  # nor may it look into a stream it does not read
            await js.stream_info("BILLING")
        assert await last_seq(cli, "billing") == before
        assert (await js.publish("dispatch.probe", b"{}")).stream == "DISPATCH"  # its own: stored
    await logged(secure_nats, 'Publish Violation - Subject "billing.invoice.issued"')


async def test_only_the_gateway_and_the_cli_send_commands(secure_nats: SecureNats) -> None:
    body = json.dumps({"technician_id": "t-1", "name": "x"}).encode()
    answered: list[bytes] = []
    async with connected(secure_nats, "dispatch") as responder:
        # dispatch itself answers its subject, as the service would
        async def answer(msg: Msg) -> None:
            answered.append(msg.data)
            await msg.respond(b'{"ok": true}')

        await responder.subscribe("weibao.dispatch.technician.register", cb=answer)
        await responder.flush()
        for role in ("contracts", "billing", "setup"):
            async with connected(secure_nats, role) as nc:
                with pytest.raises(NatsTimeout):
                    await nc.request("weibao.dispatch.technician.register", body, timeout=0.3)
        for role in ("gateway", "cli"):
            async with connected(secure_nats, role) as nc:
                assert json.loads((await nc.request("weibao.dispatch.technician.register", body, timeout=5)).data)
    assert len(answered) == 2
    await logged(secure_nats, 'Publish Violation - Subject "weibao.dispatch.technician.register"', 3)


async def test_nobody_reads_another_identity_s_replies(secure_nats: SecureNats) -> None:
    async with connected(secure_nats, "dispatch") as nc:
        await nc.subscribe("_INBOX.>")  # everyone's replies
        other = identities.inbox_prefix(identities.public_key(secure_nats.seed("gateway")))
        await nc.subscribe(f"{other}.>")  # the gateway's: invoices, say
        await nc.flush()
    await logged(secure_nats, 'Subscription Violation - Subject "_INBOX.>"')
    await logged(secure_nats, f'Subscription Violation - Subject "{other}.>"')


@contextlib.asynccontextmanager
async def system(broker: SecureNats, tmp_path: Path, *specs: ServiceSpec) -> AsyncIterator[None]:
    """The services in-process, each connected as its own identity."""
    stop = asyncio.Event()
    tasks = [asyncio.create_task(serve(spec, Settings(broker.url, f"sqlite:///{tmp_path / spec.name}.db",
                                                      nats_seed=broker.seed(spec.name)), stop))
             for spec in specs]
    try:
        async with connected(broker, "gateway") as nc:
            await services_answer(nc, *(spec.name for spec in specs))
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def ask(nc: NATS, subject: str, body: dict[str, object]) -> dict[str, Any]:
    answer = await request(nc, f"weibao.{subject}", body)
    assert answer["ok"], (subject, answer)
    return answer


async def test_the_system_runs_under_its_identities(secure_nats: SecureNats, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEIBAO_ASSESS_INTERVAL", "3600")
    await set_up_streams(secure_nats)
    async with system(secure_nats, tmp_path, contracts_spec, dispatch_spec, billing_spec), \
            connected(secure_nats, "gateway") as nc:
        await ask(nc, "contracts.customer.register", {
            "customer_id": "c-1", "name": "天宇贸易",
            "sites": [{"site_id": "s-1", "name": "总部", "address": "安徽省合肥市庐阳区",
                       "latitude": 31.865, "longitude": 117.283}]})
        await ask(nc, "dispatch.technician.register", {
            "technician_id": "near", "name": "near", "skills": ["software:general"],
            "home": {"latitude": 31.83, "longitude": 117.24}})

        async def consumed() -> bool:
            board = await ask(nc, "dispatch.technicians", {})  # dispatch's own read model
            health = {s: json.loads((await nc.request(f"weibao.{s}.health", b"", timeout=2)).data) for s in SERVICES}
            # billing's policy read contracts' and dispatch's streams; contracts its own
            return (len(board["result"]) == 1
                    and health["billing"]["consumers"]["billing-policy_dispatch"] >= 1
                    and health["billing"]["consumers"]["billing-policy_contracts"] >= 1
                    and health["dispatch"]["consumers"]["dispatch-coverage_book"] >= 1
                    and health["contracts"]["consumers"]["contracts-customer_directory"] >= 1)

        await eventually(consumed)
        async with connected(secure_nats, "cli") as cli:
            assert await last_seq(cli, "dispatch") >= 1
            # the audit view reads stream state through the service's identity
            assert (await ask(cli, "dispatch.status", {}))["ok"]
    assert secure_nats.violations() == []


async def test_replay_runs_as_the_service(secure_nats: SecureNats, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from weibao.shared.service import replay_command

    monkeypatch.setenv("WEIBAO_ASSESS_INTERVAL", "3600")
    await set_up_streams(secure_nats)
    settings = Settings(secure_nats.url, f"sqlite:///{tmp_path / 'dispatch'}.db",
                        nats_seed=secure_nats.seed("dispatch"))
    async with system(secure_nats, tmp_path, contracts_spec, dispatch_spec), connected(secure_nats, "gateway") as nc:
        await ask(nc, "dispatch.technician.register", {
            "technician_id": "near", "name": "near", "skills": ["software:general"],
            "home": {"latitude": 31.83, "longitude": 117.24}})

        async def applied() -> bool:
            return len((await ask(nc, "dispatch.technicians", {}))["result"]) == 1

        await eventually(applied)
    assert await replay_command(dispatch_spec, settings, "technician_board", show_progress=False) == 0
    assert secure_nats.violations() == []
