"""A PostgreSQL restart under load loses nothing and applies nothing twice (production
readiness: "prove every acknowledged command's events are in the logs, the streams and
every read model exactly once").

The test starts a PostgreSQL cluster of its own on a free port (the rest of the suite
keeps using the machine's, undisturbed), runs contracts, dispatch and billing in-process
on it, one schema each, and sends commands from a background load while it restarts the
cluster twice: once cleanly (`pg_ctl restart -m fast`) and once as a crash (`pg_ctl stop
-m immediate`, then start). A command that is refused or unanswered is sent again later
with the same command id and body, as a careful client does, until it is acknowledged.
Then the logs, the streams and the read models are read back and held against what was
acknowledged: each command's events once in its service's log, each log position once on
its stream, each event applied once by every read model that consumes it."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client as NATS
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import eventually, request, services_answer, stream_messages
from weibao.billing.adapters.terms import TermsBook
from weibao.billing.service import spec as billing_spec
from weibao.contracts.service import spec as contracts_spec
from weibao.dispatch.adapters.coverage import CoverageBook
from weibao.dispatch.adapters.technician_board import TechnicianBoard
from weibao.dispatch.service import spec as dispatch_spec
from weibao.runtime.natsd import NatsServer, free_port
from weibao.shared.client import ServiceError, Unanswered
from weibao.shared.consumer import parked_table, tracking_table
from weibao.shared.db import make_engine, unavailable
from weibao.shared.events import RecordedEvent
from weibao.shared.eventstore import EventStore
from weibao.shared.keys import Keyring
from weibao.shared.readmodels import StreamIndex
from weibao.shared.service import ServiceSpec, Settings, serve
from weibao.shared.verification import verify_service

pytestmark = pytest.mark.faults

SPECS: dict[str, ServiceSpec] = {"contracts": contracts_spec, "dispatch": dispatch_spec, "billing": billing_spec}
# Whose log each stream is, and who consumes it (the durable consumers of
# weibao.shared.identities.CONSUMERS): every one of them must stand at the log's end.
CONSUMED_BY = {"contracts": ("contracts", "dispatch", "billing"), "dispatch": ("dispatch", "billing")}
# Commands sent at once: enough that some are always in flight when the database goes.
WORKERS = 8
# How long a command may go unanswered before the load counts it unanswered and sends
# it again later: the services answer an outage at once, so this is only a backstop.
REQUEST_TIMEOUT = 5.0
# A command refused or unanswered is sent again after this pause, not in a spin.
RETRY_AFTER = 0.2
# Commands acknowledged after an outage before the next step: the system is back.
BACK = 100
# What a command may answer during an outage: the service's structured refusal, or no
# answer in time. Anything else (invalid, internal...) fails the test.
OUTAGE_CODES = {"unavailable", "no answer: timeout"}


# -- a private PostgreSQL ---------------------------------------------------------------


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's programs (Debian's layout), if any."""
    found = [path for path in Path("/usr/lib/postgresql").glob("*/bin")
             if (path / "initdb").exists() and (path / "pg_ctl").exists()]
    return max(found, key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0, default=None)


@dataclass
class Postgres:
    """One PostgreSQL cluster in a folder of its own, run as `postgres` when we are root
    (PostgreSQL refuses to run as root; CI runs as root)."""

    bin: Path
    root: Path
    port: int

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def argv(self, tool: str, *args: str) -> list[str]:
        command = [str(self.bin / tool), *args]
        return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command

    def run(self, tool: str, *args: str) -> None:
        """Before the services run (and after): a plain blocking call."""
        done = subprocess.run(self.argv(tool, *args), cwd=self.root, capture_output=True, text=True, timeout=120,
                              check=False)
        assert done.returncode == 0, (tool, args, done.stdout, done.stderr, self.log_tail())

    async def ctl(self, *args: str) -> None:
        """pg_ctl while the services run: never blocking the event loop they share with us."""
        process = await asyncio.create_subprocess_exec(*self.argv("pg_ctl", *args), cwd=self.root,
                                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = await asyncio.wait_for(process.communicate(), 120)
        assert process.returncode == 0, (args, out.decode(), err.decode(), self.log_tail())

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


@pytest.fixture
def postgres() -> Iterator[Postgres]:
    binaries = postgres_bin()
    if binaries is None:
        pytest.skip("no PostgreSQL programs under /usr/lib/postgresql/*/bin (initdb, pg_ctl)")
    root = Path(tempfile.mkdtemp(prefix="weibao-pg-"))
    server = Postgres(binaries, root, free_port())
    try:
        if os.geteuid() == 0:
            shutil.chown(root, "postgres", "postgres")
        server.run("initdb", "-D", str(server.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-locale",
                   "--no-sync")
        # In the cluster's own configuration, so that `pg_ctl restart` and a start after a
        # crash come back on the same port and socket without being told again.
        with (server.data / "postgresql.conf").open("a") as conf:
            conf.write(f"\nport = {server.port}\nlisten_addresses = '127.0.0.1'\n"
                       f"unix_socket_directories = '{root}'\nmax_connections = 200\n")
        server.run("pg_ctl", "start", "-w", "-t", "60", "-D", str(server.data), "-l", str(server.log))
        yield server
    finally:
        if (server.data / "postmaster.pid").exists():
            subprocess.run(server.argv("pg_ctl", "stop", "-m", "immediate", "-D", str(server.data)), cwd=root,
                           capture_output=True, timeout=60, check=False)
        shutil.rmtree(root, ignore_errors=True)


# -- the load -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    subject: str
    body: dict[str, Any]
    kind: str  # "technician" or "customer"
    key: str  # the technician's or the customer's id

    @property
    def command_id(self) -> str:
        return str(self.body["command_id"])


@dataclass(frozen=True)
class Attempt:
    command_id: str
    sent: float
    answered: float
    code: str  # "ok", the refusal's code, or "no answer: <why>"

    @property
    def ok(self) -> bool:
        return self.code == "ok"


def new_command(n: int) -> Command:
    """Three technicians to a customer (with a site, which dispatch and billing read)."""
    if n % 4:
        key = f"t-{n}"
        return Command("weibao.dispatch.technician.register", {
            "command_id": f"cmd-{n}", "technician_id": key, "name": f"工程师{n}", "skills": ["software:general"],
            "home": {"latitude": 31.83 + n * 1e-5, "longitude": 117.24}}, "technician", key)
    key = f"c-{n}"
    return Command("weibao.contracts.customer.register", {
        "command_id": f"cmd-{n}", "customer_id": key, "name": f"客户{n}",
        "sites": [{"site_id": f"s-{n}", "name": "总部", "address": "安徽省合肥市庐阳区",
                   "latitude": 31.865, "longitude": 117.283}]}, "customer", key)


@dataclass
class Load:
    """Commands from a few concurrent senders, as careful clients send them: each sends
    one command until it is acknowledged (the same command id and body every time, after
    a pause when refused or unanswered), then the next."""

    nc: NATS
    issuing: bool = True
    issued: list[Command] = field(default_factory=list)
    acked: dict[str, Command] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)
    counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    async def send(self) -> None:
        """One sender, until the load stops; what it holds then it still sees acknowledged."""
        while self.issuing:
            command = new_command(next(self.counter))
            self.issued.append(command)
            while not await self.attempt(command):
                await asyncio.sleep(RETRY_AFTER)
            self.acked[command.command_id] = command

    async def attempt(self, command: Command) -> bool:
        sent = time.monotonic()
        try:
            answer = await request(self.nc, command.subject, command.body, timeout=REQUEST_TIMEOUT)
            code = "ok" if answer.get("ok") else str(answer["error"]["code"])
        except Unanswered as error:
            code = f"no answer: {error.code}"
        except ServiceError as error:
            code = error.code
        self.attempts.append(Attempt(command.command_id, sent, time.monotonic(), code))
        return code == "ok"

    def acked_since(self, moment: float, count: int) -> Callable[[], Awaitable[bool]]:
        """A condition: `count` commands sent after `moment` are acknowledged."""

        async def check() -> bool:
            return sum(1 for a in self.attempts if a.ok and a.sent >= moment) >= count

        return check

    def failed_since(self, moment: float, count: int) -> Callable[[], Awaitable[bool]]:
        """A condition: `count` attempts answered after `moment` were refused or unanswered."""

        async def check() -> bool:
            return sum(1 for a in self.attempts if not a.ok and a.answered >= moment) >= count

        return check


@dataclass
class Outage:
    name: str
    stopped: float  # when we stopped the database
    up: float = 0.0  # when pg_ctl said it runs again
    until: float = float("inf")  # when the next outage began (or the load stopped)

    def figures(self, load: Load) -> dict[str, Any]:
        # An attempt belongs to the outage it was answered in: one sent just before the
        # stop and refused just after it is a refusal of this outage.
        mine = [a for a in load.attempts if self.stopped <= a.answered < self.until]
        failed = [a for a in mine if not a.ok]
        # Recovered: the first acknowledgment after the outage's last refusal.
        last_failure = max((a.answered for a in failed), default=None)
        first_ack = None if last_failure is None else min(
            (a.answered for a in mine if a.ok and a.answered > last_failure), default=None)
        return {
            "outage": self.name,
            "pg_ctl_s": round(self.up - self.stopped, 2),
            "refused": sum(1 for a in failed if not a.code.startswith("no answer")),
            "unanswered": sum(1 for a in failed if a.code.startswith("no answer")),
            "commands_affected": len({a.command_id for a in failed}),
            "recovered_s": None if first_ack is None else round(first_ack - self.stopped, 2),
        }


# -- the system ---------------------------------------------------------------------------


@pytest.fixture
async def system(postgres: Postgres, nats_server: NatsServer, nc: NATS,
                 monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[dict[str, Settings]]:
    # The clocks (dispatch's deadlines, contracts' daily assessment) add no events of their own.
    monkeypatch.setenv("WEIBAO_TICK_INTERVAL", "3600")
    monkeypatch.setenv("WEIBAO_ASSESS_INTERVAL", "3600")
    settings = {name: Settings(nats_server.url, postgres.url, f"svc_{name}") for name in SPECS}
    stop = asyncio.Event()
    tasks = [asyncio.create_task(serve(SPECS[name], settings[name], stop)) for name in SPECS]
    try:
        await services_answer(nc, *SPECS)
        yield settings
    finally:
        stop.set()
        await asyncio.gather(*tasks)


@contextlib.asynccontextmanager
async def engines(settings: dict[str, Settings]) -> AsyncIterator[dict[str, AsyncEngine]]:
    found = {name: make_engine(s.database_url, schema=s.db_schema) for name, s in settings.items()}
    try:
        yield found
    finally:
        for engine in found.values():
            await engine.dispose()


async def log_of(engine: AsyncEngine) -> list[RecordedEvent]:
    return await EventStore(engine).read_from(0, 1_000_000)


async def rows(engine: AsyncEngine, query: Any) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(query)).all())


async def listening(engine: AsyncEngine) -> list[str]:
    """The channel of each of the cluster's LISTEN sessions (one runs nothing else)."""
    query = text("SELECT query FROM pg_stat_activity WHERE query LIKE 'LISTEN %'")
    return sorted(row.query.split(None, 1)[1].strip('"') for row in await rows(engine, query))


async def caught_up(db: dict[str, AsyncEngine], nc: NATS) -> bool:
    """Every stream holds its whole log, and every consumer of it stands at its end."""
    for upstream, readers in CONSUMED_BY.items():
        last = await EventStore(db[upstream]).last_position()
        info = await nc.jetstream().stream_info(upstream.upper())
        if info.state.messages < last:
            return False
        for reader in readers:
            t = tracking_table
            found = await rows(db[reader], select(t.c.position).where(t.c.upstream == upstream))
            if not found or any(row.position != last for row in found):
                return False
    return True


# -- the test -----------------------------------------------------------------------------


async def test_a_postgres_restart_under_load_loses_nothing_and_applies_nothing_twice(
    postgres: Postgres, system: dict[str, Settings], nc: NATS
) -> None:
    started = time.monotonic()
    load = Load(nc)
    senders = [asyncio.create_task(load.send()) for _ in range(WORKERS)]
    outages: list[Outage] = []
    try:
        await eventually(load.acked_since(started, BACK), timeout=60)

        async def back(outage: Outage) -> None:
            await eventually(load.acked_since(outage.up, BACK), timeout=90)

        # A clean restart: PostgreSQL ends every session ("fast") and starts again.
        outages.append(Outage("pg_ctl restart -m fast", time.monotonic()))
        await postgres.ctl("restart", "-w", "-t", "60", "-m", "fast", "-D", str(postgres.data), "-l",
                           str(postgres.log))
        outages[-1].up = time.monotonic()
        await back(outages[-1])

        # A crash: no shutdown checkpoint, every session cut; WAL replay at the start.
        outages[-1].until = time.monotonic()
        outages.append(Outage("pg_ctl stop -m immediate; pg_ctl start", time.monotonic()))
        await postgres.ctl("stop", "-w", "-m", "immediate", "-D", str(postgres.data))
        # Down until the clients have seen it (a condition, not a pause): commands meet
        # a database that is not there, not only one that is coming back.
        await eventually(load.failed_since(outages[-1].stopped, WORKERS), timeout=30)
        await postgres.ctl("start", "-w", "-t", "60", "-D", str(postgres.data), "-l", str(postgres.log))
        outages[-1].up = time.monotonic()
        await back(outages[-1])
    finally:
        load.issuing = False  # no new commands; each sender still sees its last one acknowledged
        drained = await asyncio.wait(senders, timeout=90)
        for task in drained[1]:
            task.cancel()
    for task in senders:
        task.result()  # a sender that failed (or never saw its command acknowledged) fails the test
    assert len(load.acked) == len(load.issued)

    failures = Counter(a.code for a in load.attempts if not a.ok)
    print(f"\ncommands acknowledged: {len(load.acked)} ({len(load.attempts)} attempts); "
          f"refused or unanswered: {dict(failures)}")
    for outage in outages:
        print(outage.figures(load))
    # During an outage a command is answered with the service's structured refusal (or,
    # at worst, not in time); never a crash ("internal") or anything else.
    assert set(failures) <= OUTAGE_CODES, failures

    async with engines(system) as db:
        await eventually(lambda: caught_up(db, nc), timeout=60)
        # Each relay listens again for commits (its LISTEN session died with the server),
        # so appends by other processes wake it rather than wait for its poll: one
        # session each, none leaked.
        channels = sorted(f"weibao_events_{s.db_schema}" for s in system.values())

        async def relays_listen() -> bool:
            return await listening(db["dispatch"]) == channels

        await eventually(relays_listen, timeout=30)
        await check_logs(db, load)
        for service in CONSUMED_BY:
            await check_stream(db[service], nc, service)
        await check_read_models(db, load)
        trust = Keyring.from_env()
        for service in CONSUMED_BY:
            verified = await verify_service(EventStore(db[service]), service, trust.trust if trust else None, nc)
            assert verified["ok"], verified
    print(f"test wall time: {time.monotonic() - started:.1f} s")


async def check_logs(db: dict[str, AsyncEngine], load: Load) -> None:
    """Each acknowledged command stored its registration once, in its service's log; no
    log holds a command nobody sent, nor a gap."""
    for service, kind, registered in (("dispatch", "technician", "private.TechnicianRegistered"),
                                      ("contracts", "customer", "private.CustomerRegistered")):
        log = await log_of(db[service])
        assert [e.position for e in log] == list(range(1, len(log) + 1))
        sent = {c.command_id: c for c in load.acked.values() if c.kind == kind}
        by_command = Counter(e.meta.get("command_id") for e in log if e.stream_id != "$signing")
        assert set(by_command) == set(sent), (set(by_command) ^ set(sent))
        registrations = Counter(e.stream_id for e in log if e.type == registered)
        prefix = "technician-" if kind == "technician" else "customer-"
        assert registrations == Counter(f"{prefix}{c.key}" for c in sent.values()), "a registration missing or twice"
        for command_id in sent:  # the events of one command: in one stream, one transaction
            mine = [e for e in log if e.meta.get("command_id") == command_id]
            assert len({e.stream_id for e in mine}) == 1 and len({e.recorded_at for e in mine}) == 1, mine


async def check_stream(engine: AsyncEngine, nc: NATS, service: str) -> None:
    """The stream holds positions 1..N once each, each the log's event at that position."""
    log = {e.position: e for e in await log_of(engine)}
    messages = await stream_messages(nc, service)
    positions = [int(headers["Weibao-Position"]) for _, headers, _ in messages]
    assert sorted(positions) == list(range(1, len(log) + 1)), Counter(p for p in positions if positions.count(p) > 1)
    for _, headers, body in messages:
        assert isinstance(body, dict)
        event = log[int(headers["Weibao-Position"])]
        assert (body["hash"], body["stream_id"], body["type"]) == (event.hash, event.stream_id, event.type)


async def check_read_models(db: dict[str, AsyncEngine], load: Load) -> None:
    """Each consumer applied each event once: the stream indexes (each service's, of its
    own stream) count per stream what the log holds, so a second application would count
    twice; every consumer's checkpoint is the log's last event (billing keeps no index of
    dispatch's stream, and its identity may not add a consumer, so its policy's
    checkpoint and the customers it learnt stand for it); nothing is parked; and the
    board and the directories hold exactly what was acknowledged."""
    logs = {service: await log_of(db[service]) for service in CONSUMED_BY}
    for service, readers in CONSUMED_BY.items():
        index = StreamIndex(service).table
        counted = {r.stream_id: r.events for r in await rows(db[service], select(index.c.stream_id, index.c.events))}
        assert counted == dict(Counter(e.stream_id for e in logs[service])), service
        last = logs[service][-1]
        for reader in readers:
            t = tracking_table
            checkpoints = await rows(db[reader], select(t.c.consumer, t.c.position, t.c.hash)
                                     .where(t.c.upstream == service))
            assert checkpoints and all((r.position, r.hash) == (last.position, last.hash) for r in checkpoints), \
                (reader, service, checkpoints)
    for name, engine in db.items():
        assert await rows(engine, select(parked_table.c.consumer, parked_table.c.reason)) == [], name
    technicians = {c.key for c in load.acked.values() if c.kind == "technician"}
    customers = {c.key for c in load.acked.values() if c.kind == "customer"}
    board = TechnicianBoard().table
    assert {r.technician_id for r in await rows(db["dispatch"], select(board.c.technician_id))} == technicians
    sites = CoverageBook().sites
    assert {r.customer_id for r in await rows(db["dispatch"], select(sites.c.customer_id))} == customers
    names = TermsBook().customers
    assert {r.customer_id for r in await rows(db["billing"], select(names.c.customer_id))} == customers


class _Driver(Exception):
    """What asyncpg raises: an exception with its SQLSTATE."""

    def __init__(self, message: str, sqlstate: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def _wrapped(error: Exception) -> DBAPIError:
    """As SQLAlchemy hands a driver's error on: a DBAPIError over it."""
    try:
        raise error
    except Exception as cause:
        return DBAPIError("SELECT 1", None, cause)


@pytest.mark.parametrize(("error", "away"), [
    (ConnectionRefusedError(111, "Connect call failed"), True),
    (_wrapped(_Driver("the database system is starting up", "57P03")), True),
    (_wrapped(_Driver("terminating connection due to administrator command", "57P01")), True),
    (_wrapped(_Driver("connection was closed in the middle of operation", "08003")), True),
    (_wrapped(_Driver('duplicate key value violates unique constraint "commands_pkey"', "23505")), False),
    (_wrapped(sqlite3.OperationalError("no such table: events")), False),
    (ValueError("not a date"), False),
])
def test_what_counts_as_the_database_being_away(error: Exception, away: bool) -> None:
    """`unavailable` decides whether a command answers "unavailable" (send it again
    later) or "internal": only errors that say the server is not there for us now."""
    assert unavailable(error) is away
