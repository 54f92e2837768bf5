"""A 3-node JetStream cluster loses nothing when nodes die (issue 12).

Three nats-server processes from the pinned wheel, configured by the shipped
deploy/nats/nats-cluster.conf (TLS, nkeys), streams at R3, the three services connected
to all three nodes, and a steady load of commands. Then: kill the DISPATCH stream's
leader, wait for a new leader and for events to flow again, restart it; the same for a
second node; then kill two nodes at once (no quorum: the logs go on taking commands, the
relays wait) and restart them. After each step every acknowledged command's events must
be in the service's log once, in its stream once, and applied once by every read model.

A command is acknowledged when its service answers ok: its events are then in the SQL
log (the truth); the stream is the log's copy. A command without an answer (a timeout
while a node died under it) is sent again with its command id until it is answered, as
the gateway's callers do: the retry must store nothing new.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client as NATS
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.cluster import OPENSSL, Cluster
from tests.conftest import authenticated
from tests.helpers import client, eventually, harness_seed, stream_messages
from weibao.billing.service import spec as billing_spec
from weibao.contracts.service import spec as contracts_spec
from weibao.dispatch.service import spec as dispatch_spec
from weibao.shared.client import Unanswered
from weibao.shared.db import make_engine
from weibao.shared.events import RecordedEvent
from weibao.shared.eventstore import EventStore
from weibao.shared.service import Settings, connect, serve
from weibao.shared.streams import setup_streams, stream_name

pytestmark = [pytest.mark.faults,
              pytest.mark.skipif(OPENSSL is None, reason="needs the openssl CLI to make a test CA")]

SPECS = {"contracts": contracts_spec, "dispatch": dispatch_spec, "billing": billing_spec}
# How long a step may take to settle on a busy 2-core machine: elections, catch-up of a
# restarted node, the relays' back-off. Generous: the test waits for what it means.
SETTLE = 120.0
STREAMS = {"dispatch": "technician", "contracts": "customer"}  # the aggregates the load makes


@dataclass
class Command:
    service: str
    name: str
    body: dict[str, Any]

    @property
    def key(self) -> str:
        return str(self.body["command_id"])


def technician(i: int) -> Command:
    return Command("dispatch", "technician.register", {
        "command_id": f"cmd-t-{i}", "technician_id": f"tech-{i:05d}", "name": f"技术员{i}",
        "skills": ["software:general"], "home": {"latitude": 31.83 + i % 50 / 1000, "longitude": 117.24}})


def customer(i: int) -> Command:
    return Command("contracts", "customer.register", {
        "command_id": f"cmd-c-{i}", "customer_id": f"cust-{i:05d}", "name": f"客户{i}",
        "sites": [{"site_id": f"site-{i:05d}", "name": "总部", "address": "安徽省合肥市庐阳区",
                   "latitude": 31.865, "longitude": 117.283}]})


@dataclass
class Load:
    """One loop per service, each sending its next command (or retrying an unanswered
    one with the same id) as soon as the last is answered."""

    nc: NATS
    acked: dict[str, tuple[Command, float]] = field(default_factory=dict)
    unanswered: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)

    async def run(self, make: Callable[[int], Command], stop: asyncio.Event) -> None:
        asker = client(self.nc, timeout=4.0)
        retry: Command | None = None
        for i in itertools.count():
            if stop.is_set():
                return
            command = retry or make(i)
            retry = None
            try:
                answer = await asker.answer(f"weibao.{command.service}.{command.name}", command.body,
                                            actor="admin:ops")
            except Unanswered as error:
                self.unanswered[error.code] += 1
                retry = command
                await asyncio.sleep(0.2)
                continue
            if answer.get("ok"):
                self.acked[command.key] = (command, time.monotonic())
            else:
                self.refused[str(answer.get("error", {}).get("code"))] += 1
                retry = command
                await asyncio.sleep(0.2)

    def acked_after(self, moment: float) -> int:
        return sum(1 for _, at in self.acked.values() if at > moment)


@dataclass
class System:
    cluster: Cluster
    nc: NATS
    engines: dict[str, AsyncEngine]
    load: Load

    async def log(self, service: str) -> list[RecordedEvent]:
        store, found = EventStore(self.engines[service]), []
        while batch := await store.read_from(found[-1].position if found else 0, 1000):
            found.extend(batch)
        return found

    async def rows(self, service: str, sql: str) -> list[Any]:
        async with self.engines[service].connect() as conn:
            return list(await conn.execute(text(sql)))

    async def stream_info(self, service: str) -> Any:
        return await self.nc.jetstream(timeout=2).stream_info(stream_name(service))

    async def problems(self, acked: dict[str, tuple[Command, float]], *, final: bool = False) -> list[str]:
        """What is missing or doubled for the commands `acked`: in the logs, the streams
        and the read models (all of it, and exact equality, when `final`: the load has
        stopped, so every log's end must be everywhere)."""
        found: list[str] = []
        logs = {service: await self.log(service) for service in SPECS}
        registered = {"dispatch": Counter(e.stream_id.removeprefix(f"{STREAMS['dispatch']}-") for e in logs["dispatch"]
                                          if e.type == "private.TechnicianRegistered"),
                      "contracts": Counter(e.data["customer_id"] for e in logs["contracts"]
                                           if e.type == "private.CustomerRegistered")}
        ids = {"dispatch": "technician_id", "contracts": "customer_id"}
        for service, counts in registered.items():
            found += [f"{service}: {key} stored {n} times" for key, n in counts.items() if n > 1]
        # Per service, the last position the acknowledged commands' events reach (the load
        # goes on meanwhile: later events need not be anywhere yet).
        last = {service: {e.stream_id: e.position for e in events} for service, events in logs.items()}
        wanted = dict.fromkeys(SPECS, 0)
        for command, _ in acked.values():
            key = command.body[ids[command.service]]
            if not registered[command.service][key]:
                found.append(f"{command.service}: acknowledged {key} is not in the log")
                continue
            stream = f"{STREAMS[command.service]}-{key}"
            wanted[command.service] = max(wanted[command.service], last[command.service][stream])
        if final:
            wanted = {service: events[-1].position if events else 0 for service, events in logs.items()}
        if found:
            return found
        # The streams: each holds at least the acknowledged commands' events.
        for service in SPECS:
            try:
                state = (await self.stream_info(service)).state
            except Exception as error:  # a stream without a leader yet
                return [f"{service}: stream unavailable ({type(error).__name__})"]
            if state.last_seq < wanted[service]:
                found.append(f"{service}: stream at {state.last_seq}, log at {wanted[service]}")
        # The read models: every consumer's checkpoint past what the log held.
        for service in SPECS:
            for consumer, upstream, position in await self.rows(service,
                                                                "SELECT consumer, upstream, position FROM tracking"):
                if position < wanted[upstream]:
                    found.append(f"{service}/{consumer}: applied {position} of {upstream}'s {wanted[upstream]}")
            parked = await self.rows(service, "SELECT consumer, stream_seq, reason FROM parked")
            found += [f"{service}: parked {row}" for row in parked]
        if found or not final:
            return found
        return await self.exactly(logs, registered)

    async def exactly(self, logs: dict[str, list[RecordedEvent]], registered: dict[str, Counter[str]]) -> list[str]:
        """With the load stopped and everything applied: each stream is its log, message
        for message; each service's index counted each of its events once; the boards
        hold exactly what the logs registered."""
        found: list[str] = []
        for service, events in logs.items():
            messages = await stream_messages(self.nc, service)
            positions = [int(h.get("Weibao-Position", 0)) for _, h, _ in messages]
            if positions != [e.position for e in events]:
                found.append(f"{service}: stream positions {len(positions)} != log {len(events)} "
                             f"(doubled: {[p for p, n in Counter(positions).items() if n > 1][:5]})")
            hashes = [body.get("hash") if isinstance(body, dict) else None for _, _, body in messages]
            if hashes != [e.hash for e in events]:
                found.append(f"{service}: the stream's events are not the log's")
            index = dict(await self.rows(service, f"SELECT stream_id, events FROM stream_index_{service}"))
            if index != dict(Counter(e.stream_id for e in events)):
                found.append(f"{service}: its stream index counted events other than once")
        board = {row[0] for row in await self.rows("dispatch", "SELECT technician_id FROM technician_board")}
        if board != set(registered["dispatch"]):
            found.append(f"dispatch board: {len(board)} technicians, log {len(registered['dispatch'])}")
        for service, table in (("contracts", "customer_directory"), ("billing", "billing_customers")):
            rows = {row[0] for row in await self.rows(service, f"SELECT customer_id FROM {table}")}
            if rows != set(registered["contracts"]):
                found.append(f"{service} {table}: {len(rows)} customers, log {len(registered['contracts'])}")
        sites = {row[0] for row in await self.rows("dispatch", "SELECT site_id FROM coverage_sites")}
        if sites != {f"site-{key.removeprefix('cust-')}" for key in registered["contracts"]}:
            found.append(f"dispatch coverage: {len(sites)} sites, {len(registered['contracts'])} customers")
        return found

    async def settled(self, acked: dict[str, tuple[Command, float]], *, final: bool = False) -> None:
        last: list[str] = []

        async def clean() -> bool:
            nonlocal last
            last = await self.problems(acked, final=final)
            return not last

        try:
            await eventually(clean, timeout=SETTLE, every=0.5)
        except TimeoutError:
            pytest.fail(f"not settled after {SETTLE:.0f} s: {last[:10]}; unanswered {dict(self.load.unanswered)}, "
                        f"refused {dict(self.load.refused)}")

    async def leader(self, service: str = "dispatch") -> str | None:
        try:
            cluster = (await self.stream_info(service)).cluster
        except Exception:
            return None
        return cluster.leader if cluster is not None else None

    async def replicas_current(self) -> bool:
        """Every stream has a leader and two current followers: the cluster is whole."""
        for service in SPECS:
            try:
                cluster = (await self.stream_info(service)).cluster
            except Exception:
                return False
            replicas = cluster.replicas or [] if cluster else []
            if cluster is None or cluster.leader is None or len(replicas) != 2 or \
                    not all(r.current and not r.offline for r in replicas):
                return False
        return True


async def until(check: Callable[[], Awaitable[bool]], what: str) -> float:
    """Wait for `check`; how long it took."""
    started = time.monotonic()
    try:
        await eventually(check, timeout=SETTLE, every=0.2)
    except TimeoutError:
        pytest.fail(f"{what}: not within {SETTLE:.0f} s")
    return time.monotonic() - started


@pytest.fixture
async def system(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[System]:
    # Only the commands' events: the clocks stay quiet so the counts are the load's.
    monkeypatch.setenv("WEIBAO_TICK_INTERVAL", "3600")
    monkeypatch.setenv("WEIBAO_ASSESS_INTERVAL", "3600")
    cluster = Cluster(tmp_path, "# the identities and the tests' harness\n" + authenticated())
    monkeypatch.setenv("WEIBAO_NATS_CA", str(cluster.tls / "ca.crt"))
    cluster.start()
    stop, tasks, engines = asyncio.Event(), [], {}
    nc: NATS | None = None
    try:
        await until(lambda: _formed(cluster), "the cluster forms")
        nc = await connect(cluster.urls(), "harness", seed=str(harness_seed()))

        async def streams_made() -> bool:  # the meta leader may still be settling its peers
            try:
                await setup_streams(nc.jetstream(timeout=3), replicas=3)
            except Exception:
                return False
            return True

        await until(streams_made, "the streams at R3")
        for name, spec in SPECS.items():
            url = f"sqlite:///{tmp_path / name}.db"
            engines[name] = make_engine(url)
            tasks.append(asyncio.create_task(serve(spec, Settings(cluster.urls(), url), stop)))
        yield System(cluster, nc, engines, Load(nc))
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 60)
        for engine in engines.values():
            await engine.dispose()
        if nc is not None:
            await nc.close()
        cluster.kill()


async def _formed(cluster: Cluster) -> bool:
    return len(cluster.running()) == cluster.SIZE and cluster.meta_leader()


async def test_acknowledged_commands_survive_losing_nodes(system: System) -> None:
    load, figures = system.load, []
    stop = asyncio.Event()
    loops = [asyncio.create_task(load.run(technician, stop)), asyncio.create_task(load.run(customer, stop))]
    try:
        await until(lambda: _acked(load, 20), "the first commands")
        await system.settled(dict(load.acked))

        async def kill(*nodes: int) -> None:
            killed = [system.cluster.name(n) for n in nodes]
            acked, moment = len(load.acked), time.monotonic()
            logged = (await system.log("dispatch"))[-1].position
            missed = sum(load.unanswered.values()) + sum(load.refused.values())
            system.cluster.kill(*nodes)
            step: dict[str, Any] = {"killed": killed}
            if len(nodes) == 1:  # a majority is left: a new leader, and events flow again
                async def new_leader() -> bool:
                    return (await system.leader()) not in (None, *killed)

                await until(new_leader, "a new DISPATCH leader")
                step["new leader s"] = round(time.monotonic() - moment, 1)

                async def flowing() -> bool:  # an event stored after the kill is in the stream
                    try:
                        return bool((await system.stream_info("dispatch")).state.last_seq > logged)
                    except Exception:
                        return False

                await until(flowing, "events flowing again")
                step["events flowing s"] = round(time.monotonic() - moment, 1)  # since the kill
            else:  # no quorum: the logs go on, the streams wait; nothing acknowledged is lost
                await until(lambda: _acked_since(load, moment, 20), "commands during the outage")
            step["acked while down"] = load.acked_after(moment)
            system.cluster.start(*nodes)
            step["cluster whole s"] = round(await until(system.replicas_current, "the cluster whole again"), 1)
            step["acked in step"] = len(load.acked) - acked
            step["unanswered or refused"] = sum(load.unanswered.values()) + sum(load.refused.values()) - missed
            await system.settled(dict(load.acked))
            figures.append(step)

        first = system.cluster.index(str(await system.leader()))
        await kill(first)
        second = system.cluster.index(str(await system.leader()))
        if second == first:  # the old leader took it back: kill another node all the same
            second = (first + 1) % Cluster.SIZE
        await kill(second)
        await kill(*[n for n in range(Cluster.SIZE) if n != second][:2])
    finally:
        stop.set()
        await asyncio.gather(*loops)
    await system.settled(dict(load.acked), final=True)
    print(f"\ncluster faults: {len(load.acked)} commands acknowledged, all found once in logs, streams and "
          f"read models; unanswered {dict(load.unanswered)}, refused {dict(load.refused)}")
    for step in figures:
        print("  ", step)
    assert len(load.acked) > 0 and all(step["acked in step"] > 0 for step in figures)


async def _acked(load: Load, at_least: int) -> bool:
    return len(load.acked) >= at_least


async def _acked_since(load: Load, moment: float, at_least: int) -> bool:
    return load.acked_after(moment) >= at_least
