"""python -m bench.scale [--quick] [--sizes 1000,10000,100000] [--seconds S] [--samples K]: how dispatch's
figures grow with the history in its log.

For each size N, a fresh system: the embedded nats-server (file storage, sync_interval always, the NATS
identities' authorization), the streams, and `python -m weibao.<service> serve` for contracts, dispatch
and billing in subprocesses (a SQLite file each, signing keys made for the run), as `weibao up` starts
them. Contracts is given one customer with four Hefei sites and its agreement over its own commands;
dispatch reads the coverage, and is stopped.

The history is then written into dispatch's log directly, as valid signed events: N requests over the
past year, each decided by dispatch's own domain (`ticket.decide`/`evolve`, coverage and SLA as dispatch
read them from contracts), its events and public messages encoded as the service encodes them (the
`Repository`'s way: private event, then what `translate` makes public) and appended through
`EventStore(signer=dispatch's key)` with the time of each command as `recorded_at`; the crew (20
technicians) registered first. 90 % are opened, escalated, assigned (rule D4's explanation, a round-robin
override), checked into and completed; 10 % stay open: in triage, awaiting assignment, assigned or on
site. The deadline clock is played as the service plays it: each request ticked when its next deadline
news is due, so every at-risk, breach and met fact up to now is in the log, as a running system would
have it. `python -m weibao.dispatch verify` (log and stream) is run on it at the end, its verdict printed.

Then, per size: dispatch and billing started over that log (dispatch's relay publishes it, its read
models and billing's are built: "first start"); dispatch restarted (health answers; caught up); idle CPU
of each process over a window with no traffic; then one request at a time, signed as the gateway signs
them, over NATS request/reply: opening a request, a check-in (on a visit just opened, escalated and
assigned), the board's first page, a technician's open visits (the phone's list) and the audit history of
one request, p50/p99; dispatch's memory. The raw layers below are measured in the same run: a bare NATS
request/reply between two connections, a bare SQLite read of one event by position, and the event
store's load of one request's stream.

Prints one table: a row per figure, a column per size, each figure beside its ratio to the same figure at
the smallest size. Figures only; nothing asserts on time."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import hashlib
import heapq
import json
import math
import os
import platform
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

import nats
import nats.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bench.gateway import HEFEI_OFFICE, PARAMETERS, SITES, Child, Site, cpu_seconds, percentile, spawn, stop_child
from weibao.dispatch.adapters.coverage import CoverageBook, coverage_on, site
from weibao.dispatch.application.technicians import CREW, technician_stream
from weibao.dispatch.application.tickets import PUBLIC, TICKET, ticket_stream, translate
from weibao.dispatch.domain import assignment as d4
from weibao.dispatch.domain import deadlines as dl
from weibao.dispatch.domain import technician as crew
from weibao.dispatch.domain import ticket as domain
from weibao.dispatch.domain.travel import TravelModel
from weibao.runtime.natsd import NatsServer, server_binary
from weibao.runtime.supervisor import streams_setup
from weibao.shared import codec, identities, keys
from weibao.shared.client import Client, result_of
from weibao.shared.clock import CHINA
from weibao.shared.db import make_engine
from weibao.shared.events import NewEvent
from weibao.shared.eventstore import FINGERPRINT, EventStore, events_table
from weibao.shared.logs import configure
from weibao.shared.service import connect

SIZES = (1_000, 10_000, 100_000)
QUICK_SIZES = (100, 1_000)
OPEN_SHARE = 10  # one request in OPEN_SHARE stays open
CREW_SIZE = 20
HISTORY = timedelta(days=365)
RECENT = timedelta(days=2)  # half the open requests came in within this
SERVICES = ("contracts", "dispatch", "billing")
CUSTOMER = "c-scale"
AGREEMENT = "a-scale"
DISPATCHER = "dispatcher:bench"
AUDITOR = "auditor:bench"
APPENDS_PER_COMMIT = 1_000
TICK_INTERVAL = 30.0  # the service's default WEIBAO_TICK_INTERVAL: a tick lands within it of its due time
# Environment a child must not inherit: the bench chooses its database, keys, broker, clock and schedule.
CLEARED = ("DATABASE_URL", "WEIBAO_DB_SCHEMA", "WEIBAO_NOW", "WEIBAO_TODAY", "WEIBAO_KEYS", "WEIBAO_NATS_SEED",
           "WEIBAO_NATS_CA", "NATS_URL", "WEIBAO_TICK_INTERVAL", "WEIBAO_ASSESS_INTERVAL", "WEIBAO_USERS")
OPEN_STAGES: tuple[tuple[domain.Status, float], ...] = (
    ("triage", 0.2), ("awaiting_assignment", 0.2), ("assigned", 0.35), ("on_site", 0.25))
STEPS = ("open", "escalate", "assign", "check_in", "complete")
LAST_STEP: Mapping[str, str] = {"triage": "open", "awaiting_assignment": "escalate", "assigned": "assign",
                                "on_site": "check_in", "completed": "complete"}
OPERATIONS = ("open", "check_in", "board", "visits", "history")
OPERATION_LABELS = {"open": "opening a request", "check_in": "a check-in", "board": "the board's first page",
                    "visits": "a technician's open visits", "history": "the audit history of one request"}
BASELINES = ("nats", "sqlite", "load")
BASELINE_LABELS = {"nats": "(below) bare NATS request/reply", "sqlite": "(below) bare SQLite read by position",
                   "load": "(below) event store: load one request"}
IDLE = ("contracts", "dispatch", "billing", "nats-server")


class BenchError(RuntimeError):
    """The system did not do what the benchmark asked: its figures would mean nothing."""


@dataclass(frozen=True)
class Options:
    sizes: tuple[int, ...] = SIZES
    seconds: float = 60.0  # the idle window
    samples: int = 200  # requests per latency figure
    warmup: int = 5
    log_level: str = "WARNING"
    seed: int = 15


def quick_options() -> Options:
    return Options(sizes=QUICK_SIZES, seconds=5.0, samples=20, warmup=3)


# -- what the history is ------------------------------------------------------------------


@dataclass(frozen=True)
class Technician:
    technician_id: str
    latitude: float
    longitude: float


def make_crew() -> tuple[Technician, ...]:
    """Twenty technicians based around Hefei: the crew does not grow with the history."""
    spread = random.Random(7)
    return tuple(Technician(f"tech-{i:02d}", round(31.82 + spread.uniform(-0.08, 0.08), 4),
                            round(117.25 + spread.uniform(-0.08, 0.08), 4)) for i in range(CREW_SIZE))


@dataclass
class Request:
    ticket_id: str
    site: Site
    opened_at: datetime
    final: domain.Status  # where its history ends: completed, or the open stage it is left in
    technician: Technician
    skill: str
    state: domain.Ticket = field(default_factory=domain.Ticket)
    version: int = 0
    tick_at: datetime | None = None  # the one tick scheduled for it


@dataclass
class History:
    requests: list[Request]
    events: int
    appends: int
    seconds: float
    end: datetime

    @property
    def open(self) -> int:
        return sum(1 for r in self.requests if r.final != "completed")

    def statuses(self) -> Counter[str]:
        return Counter(r.state.status for r in self.requests)


def plan_requests(size: int, crew_: Sequence[Technician], end: datetime, rng: random.Random) -> list[Request]:
    """N requests over the past year; one in ten left open, half of those recent."""
    open_ids = set(rng.sample(range(size), size // OPEN_SHARE))
    start = end - HISTORY
    closed_until = end - timedelta(days=3)  # time enough for its whole visit before `end`
    stages = [stage for stage, _ in OPEN_STAGES]
    weights = [weight for _, weight in OPEN_STAGES]
    found = []
    for i in range(size):
        if i in open_ids:
            final: domain.Status = rng.choices(stages, weights)[0]
            recent = rng.random() < 0.5
            low, high = (end - RECENT, end - timedelta(hours=1)) if recent else (start, closed_until)
        else:
            final, low, high = "completed", start, closed_until
        opened = low + (high - low) * rng.random()
        found.append(Request(f"r{i:06d}", SITES[i % len(SITES)], opened.replace(microsecond=0), final,
                             crew_[i % len(crew_)], "hardware" if i % 5 == 0 else "software:general"))
    return found


class Clock:
    """The event store's clock during generation: each command's own time."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def command_meta(actor: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """What a command through the gateway stores beside its events (weibao.shared.rpc.expose)."""
    return {"actor": actor, "correlation_id": uuid.uuid4().hex, "signed_by": "gateway",
            FINGERPRINT: hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()}


def command_id(ticket_id: str, step: str) -> str:
    return "key:" + hashlib.sha256(f"{ticket_id}/{step}".encode()).hexdigest()


class Generator:
    """Plays N requests' lives through dispatch's domain, in time order, into its log."""

    def __init__(self, store: EventStore, clock: Clock, coverage: Mapping[tuple[str, date], domain.Coverage],
                 crew_: Sequence[Technician], rng: random.Random) -> None:
        self.store, self.clock, self.coverage, self.crew, self.rng = store, clock, coverage, crew_, rng
        self.travel = TravelModel()
        self.events = self.appends = 0
        self.queue: list[tuple[datetime, int, int, str]] = []
        self.counter = 0

    async def append(self, conn: AsyncConnection, stream_id: str, stored: Sequence[NewEvent], *, version: int,
                     at: datetime, meta: Mapping[str, Any] | None, command: str | None) -> None:
        self.clock.now = at.astimezone(UTC)  # the log keeps UTC: SQLite stores the digits as given
        await self.store.append(stream_id, stored, expected_version=version, command_id=command, meta=meta,
                                conn=conn)
        self.events += len(stored)
        self.appends += 1

    async def register_crew(self, conn: AsyncConnection, at: datetime) -> None:
        for t in self.crew:
            body = {"technician_id": t.technician_id, "name": t.technician_id,
                    "skills": ["software:general", "hardware"], "home": {"latitude": t.latitude,
                                                                        "longitude": t.longitude},
                    "capacity_per_day": 6}
            command = codec.parse(crew.RegisterTechnician, body)
            decided = crew.decide(command, crew.Technician())
            await self.append(conn, technician_stream(t.technician_id), [CREW.encode(e) for e in decided],
                              version=0, at=at, meta=command_meta("admin:bench", body),
                              command=command_id(t.technician_id, "register"))

    def schedule(self, at: datetime, index: int, step: str) -> None:
        self.counter += 1
        heapq.heappush(self.queue, (at, self.counter, index, step))

    def next_step(self, request: Request, done: str, at: datetime, index: int) -> None:
        """Schedule what comes after `done` in this request's life, unless its history ends there."""
        if LAST_STEP[request.final] == done:
            return
        following = STEPS[STEPS.index(done) + 1]
        minutes = {"escalate": (5, 45), "assign": (5, 40), "check_in": (30, 300), "complete": (20, 240)}[following]
        self.schedule(at + timedelta(minutes=self.rng.uniform(*minutes)), index, following)

    def schedule_tick(self, request: Request, index: int, end: datetime) -> None:
        """As the deadline clock does: the request is ticked once its next deadline news is due."""
        deadlines = request.state.deadlines
        due = dl.next_evaluation(deadlines) if deadlines is not None else None
        if due is None:
            request.tick_at = None
            return
        at = max(due, self.clock.now) + timedelta(seconds=self.rng.uniform(0, TICK_INTERVAL))
        if at <= end and at != request.tick_at:
            request.tick_at = at
            self.schedule(at, index, "tick")

    def command(self, request: Request, step: str, at: datetime) -> tuple[domain.Command, str, dict[str, Any]]:
        """The domain command of a step, who sends it, and the body the gateway would have sent."""
        r, t = request, request.technician
        match step:
            case "open":
                coverage = self.coverage[(r.site.site_id, at.astimezone(CHINA).date())]
                body: dict[str, Any] = {"ticket_id": r.ticket_id, "site_id": r.site.site_id,
                                        "summary": "CRM 服务器无法登录", "channel": "phone", "skill": r.skill}
                return (domain.OpenTicket(r.ticket_id, CUSTOMER, r.site.site_id,
                                          domain.Position(r.site.latitude, r.site.longitude), "phone",
                                          body["summary"], at, coverage, r.skill), DISPATCHER, body)
            case "escalate":
                body = {"ticket_id": r.ticket_id, "outcome": "escalate", "note": "需要上门"}
                return domain.Escalate(at, "需要上门"), DISPATCHER, body
            case "assign":
                reason = "benchmark: round robin"
                body = {"ticket_id": r.ticket_id, "technician_id": t.technician_id, "reason": reason}
                return self.assignment(r, at, reason), DISPATCHER, body
            case "check_in":
                device = at - timedelta(seconds=self.rng.uniform(1, 20))
                body = {"ticket_id": r.ticket_id, "technician_id": t.technician_id,
                        "key": f"check-in-{r.ticket_id}", "device_time": device.isoformat(),
                        "position": {"latitude": r.site.latitude, "longitude": r.site.longitude}, "accuracy_m": 8}
                return (domain.CheckIn(technician_id=t.technician_id, key=body["key"], server_time=at,
                                       device_time=device, position=domain.Position(r.site.latitude,
                                                                                    r.site.longitude),
                                       accuracy_m=8), f"technician:{t.technician_id}", body)
            case "complete":
                body = {"ticket_id": r.ticket_id, "technician_id": t.technician_id, "resolution": "已修复"}
                return domain.Complete(t.technician_id, at, "已修复"), f"technician:{t.technician_id}", body
        raise AssertionError(step)

    def assignment(self, request: Request, at: datetime, reason: str) -> domain.RecordAssignment:
        """Rule D4 over the crew (each at home, on shift), overridden to the request's technician
        as a dispatcher would: the explanation the service stores, with its override."""
        ticket = request.state
        assert ticket.opened is not None
        views = [d4.TechnicianView(t.technician_id, frozenset({"software:general", "hardware"}),
                                   (t.latitude, t.longitude), at, at + timedelta(hours=8), 4) for t in self.crew]
        arrive_by = ticket.deadlines.arrive_by if ticket.deadlines else None
        need = d4.Need(request.ticket_id, (ticket.opened.site.latitude, ticket.opened.site.longitude),
                       ticket.opened.skill, arrive_by)
        decision = d4.assign(need, views, now=at, travel=self.travel)
        chosen = request.technician.technician_id
        override_reason = None
        if chosen != decision.technician_id:
            override_reason = reason
            decision = d4.override(decision, chosen, reason, DISPATCHER)
        explanation = {**codec.dump(decision.explanation), "overrides": codec.dump(decision.overrides)}
        return domain.RecordAssignment(chosen, at, explanation, decision.at_risk, DISPATCHER, override_reason)

    async def play(self, conn: AsyncConnection, request: Request, step: str, *, at: datetime, index: int,
                   end: datetime) -> None:
        """One step of a request's life, as Repository.execute would store it."""
        if step == "tick":
            if request.tick_at != at:
                return  # superseded by a later schedule
            decided: list[domain.Event] = domain.decide(domain.Tick(at), request.state)
            actor, body, command = None, None, None
        else:
            cmd, actor, body = self.command(request, step, at)
            decided = domain.decide(cmd, request.state)
            command = command_id(request.ticket_id, step)
        state = request.state
        stored: list[NewEvent] = []
        for event in decided:
            state = domain.evolve(state, event)
            stored.append(TICKET.encode(event))
            stored.extend(PUBLIC.encode(message) for message in translate(event, state))
        if stored:
            meta = command_meta(actor, body) if actor is not None and body is not None else None
            await self.append(conn, ticket_stream(request.ticket_id), stored, version=request.version, at=at,
                              meta=meta, command=command)
            request.version += len(stored)
        request.state = state
        if step != "tick":
            self.next_step(request, step, at, index)
        self.schedule_tick(request, index, end)

    async def run(self, requests: Sequence[Request], end: datetime, progress: Callable[[int], None]) -> None:
        for index, request in enumerate(requests):
            self.schedule(request.opened_at, index, "open")
        done = 0
        while self.queue:
            async with self.store.begin_write() as conn:
                for _ in range(APPENDS_PER_COMMIT):
                    if not self.queue:
                        break
                    at, _, index, step = heapq.heappop(self.queue)
                    await self.play(conn, requests[index], step, at=at, index=index, end=end)
                    done += 1
            progress(done)


@contextlib.contextmanager
def same_distances() -> Iterator[None]:
    """Rule D4 weighs every technician's geodesic distance to the site: between the crew's homes
    and the four sites that is the same 80 figures every time, so each is computed once while the
    history is written (the pure function, remembered; nothing else of D4 changes)."""
    names = vars(d4)
    original = names["distance_km"]
    names["distance_km"] = functools.cache(original)
    try:
        yield
    finally:
        names["distance_km"] = original


async def read_coverage(engine: AsyncEngine, requests: Sequence[Request]) -> dict[tuple[str, date], domain.Coverage]:
    """What dispatch's coverage book says for each site on each day a request came in, as
    `Tickets._coverage` reads it when a request is opened."""
    book = CoverageBook()
    found: dict[tuple[str, date], domain.Coverage] = {}
    for site_id in sorted({r.site.site_id for r in requests}):
        where = await site(engine, book, site_id)
        if where is None:
            raise BenchError(f"dispatch has not read site {site_id} from contracts")
        for day in sorted({r.opened_at.astimezone(CHINA).date() for r in requests if r.site.site_id == site_id}):
            cover = await coverage_on(engine, book, where, day)
            found[(site_id, day)] = domain.Coverage(cover.agreement_id, cover.verdict,  # type: ignore[arg-type]
                                                    cover.clauses, cover.local, cover.onsite)
    return found


async def write_history(database: Path, signer: keys.Signer, size: int, seed: int) -> History:
    """N requests' lives in dispatch's log (dispatch stopped), signed with its key."""
    rng = random.Random(seed + size)
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    crew_ = make_crew()
    requests = sorted(plan_requests(size, crew_, end, rng), key=lambda r: r.opened_at)
    clock = Clock(end - HISTORY - timedelta(days=1))
    engine = make_engine(f"sqlite:///{database}")
    store = EventStore(engine, clock=clock, signer=signer)
    started = time.perf_counter()
    try:
        coverage = await read_coverage(engine, requests)
        generator = Generator(store, clock, coverage, crew_, rng)
        async with store.begin_write() as conn:
            await generator.register_crew(conn, clock.now)
        shown = [0]

        def progress(done: int) -> None:  # about five lines: a request's life is five or six steps
            if done // size > shown[0]:
                shown[0] = done // size
                print(f"    ... {done:,} steps, {generator.events:,} events, "
                      f"{time.perf_counter() - started:.0f} s", flush=True)

        with same_distances():
            await generator.run(requests, end, progress)
        history = History(requests, generator.events, generator.appends, time.perf_counter() - started, end)
    finally:
        await engine.dispose()
    wrong = [r.ticket_id for r in requests if r.state.status != r.final]
    if wrong:
        raise BenchError(f"{len(wrong)} requests did not end as planned, e.g. {wrong[:3]}")
    return history


# -- the system ----------------------------------------------------------------------------


def rss_mb(pid: int) -> tuple[float, float]:
    """Resident memory now and at its peak (VmRSS, VmHWM), MB; NaN when unreadable."""
    found = {"VmRSS": math.nan, "VmHWM": math.nan}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in found:
                found[name] = int(value.split()[0]) / 1024
    return found["VmRSS"], found["VmHWM"]


@dataclass
class System:
    """nats-server with the NATS identities, the streams, the services as processes."""

    tmp: Path
    options: Options
    broker: NatsServer
    keys: Path
    harness_seed: Path
    children: dict[str, Child] = field(default_factory=dict)
    nc: NATS | None = None  # as the gateway: the signed requests
    client: Client | None = None

    @property
    def nats_keys(self) -> Path:
        return self.keys / "nats"

    def env(self, service: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in CLEARED}
        env.update(NATS_URL=self.broker.url, DATABASE_URL=f"sqlite:///{self.database(service)}",
                   WEIBAO_KEYS=str(self.keys), WEIBAO_NATS_SEED=str(identities.seed_path(self.nats_keys, service)),
                   WEIBAO_LOG_LEVEL=self.options.log_level, WEIBAO_LOG_FORMAT="json")
        return env

    def database(self, service: str) -> Path:
        return (self.tmp / f"{service}.db").resolve()

    def start(self, service: str) -> Child:
        child = spawn(service, [sys.executable, "-m", f"weibao.{service}", "serve"], self.env(service),
                      self.tmp / "logs")
        self.children[service] = child
        return child

    def stop(self, service: str) -> None:
        child = self.children.pop(service)
        stop_child(child)
        if child.process.returncode not in (0, -15):
            raise BenchError(f"{service} stopped with {child.process.returncode}:\n{child.tail()}")

    def alive(self) -> None:
        for child in self.children.values():
            if child.process.poll() is not None:
                raise BenchError(f"{child.name} exited ({child.process.returncode}):\n{child.tail()}")

    @property
    def gateway(self) -> Client:
        assert self.client is not None
        return self.client

    async def ask(self, service: str, name: str, body: Mapping[str, Any], actor: str = DISPATCHER) -> Any:
        return result_of(await self.gateway.answer(f"weibao.{service}.{name}", body, actor=actor, timeout=60))

    async def answers(self, service: str) -> bool:
        assert self.nc is not None
        try:
            await self.nc.request(f"weibao.{service}.health", b"", timeout=1)
        except Exception:
            return False
        return True

    async def standing(self) -> dict[str, bool]:
        """Whether each running service has relayed its whole log and each of its read models
        applied its upstream's whole log (the audit status each service answers; a stream's
        sequence is its log's position, one message per event)."""
        statuses = {}
        for service in self.children:
            try:
                statuses[service] = await self.ask(service, "status", {}, AUDITOR)
            except Exception:
                return dict.fromkeys(self.children, False)

        def done(status: Mapping[str, Any]) -> bool:
            return status["relayed_position"] == status["log_position"] and all(
                model["behind"] == 0 and model["applied_seq"] >= statuses.get(model["upstream"], {}).get(
                    "log_position", 0) for model in status["read_models"])

        return {service: done(status) for service, status in statuses.items()}

    async def caught_up(self) -> bool:
        return all((await self.standing()).values())

    def cpu(self) -> dict[str, float]:
        found = {name: cpu_seconds(child.process.pid) for name, child in self.children.items()}
        if self.broker.process is not None:
            found["nats-server"] = cpu_seconds(self.broker.process.pid)
        return found


async def until(check: Callable[[], Awaitable[bool]], what: str, system: System, timeout: float,
                pause: float = 0.1) -> float:
    """Seconds until `check` holds (polled every `pause`); BenchError after `timeout`."""
    started = time.perf_counter()
    while not await check():
        system.alive()
        if time.perf_counter() - started > timeout:
            raise BenchError(f"{what} did not happen within {timeout:g} s")
        await asyncio.sleep(pause)
    return time.perf_counter() - started


@contextlib.asynccontextmanager
async def running_system(tmp: Path, options: Options) -> AsyncIterator[System]:
    """The broker with authorization (the identities plus the bench's own, unlimited, for the bare
    round trip and nothing else), the streams, and a connection as the gateway."""
    folder = tmp / "keys"
    keys.generate(folder)
    identities.ensure(folder / "nats")
    harness = folder / "bench.nk"
    harness.write_text(identities.new_seed() + "\n")
    block = identities.authorization_for(folder / "nats").replace(
        "  users = [\n", f'  users = [\n    # the benchmark\'s own\n    {{nkey: "{identities.public_key(harness)}"}}\n',
        1)
    (tmp / "logs").mkdir(exist_ok=True)
    broker = NatsServer(data_dir=tmp / "nats", authorization=block)
    await broker.astart()
    system = System(tmp, options, broker, folder, harness)
    try:
        await streams_setup(broker.url, seed=str(identities.seed_path(folder / "nats", "setup")))
        system.nc = await connect(broker.url, "bench-scale", seed=str(identities.seed_path(folder / "nats", "gateway")))
        signer = keys.Keyring.load(folder).signer("gateway")
        system.client = Client(system.nc, signer, timeout=60)
        yield system
    finally:
        for name in list(reversed(system.children)):
            with contextlib.suppress(BenchError):
                system.stop(name)
        if system.nc is not None:
            await system.nc.close()
        await broker.astop()


async def set_up_contracts(system: System) -> None:
    """The customer, its four sites and its agreement (live since 400 days ago), over contracts'
    commands; dispatch then runs until its coverage book holds them all, and stops."""
    system.start("contracts")
    system.start("dispatch")
    for service in ("contracts", "dispatch"):
        await until(functools.partial(system.answers, service), f"{service} answering", system, 120)
    await system.ask("contracts", "customer.register", {
        "customer_id": CUSTOMER, "name": "天宇贸易", "sites": [s.body() for s in SITES],
        "command_id": f"register-{CUSTOMER}"}, "admin:bench")
    go_live = (datetime.now(CHINA) - HISTORY - timedelta(days=35)).date()
    await system.ask("contracts", "sign", {
        "agreement_id": AGREEMENT, "customer_id": CUSTOMER, "template_id": "yizhuo-crm-maintenance",
        "parameters": PARAMETERS, "go_live": go_live.isoformat(), "office": HEFEI_OFFICE,
        "site_ids": [s.site_id for s in SITES], "command_id": f"sign-{AGREEMENT}"}, "admin:bench")
    await until(system.caught_up, "dispatch reading contracts' customer and agreement", system, 120, 0.2)
    status = await system.ask("dispatch", "status", {}, AUDITOR)
    if status["log_position"] != 0:
        raise BenchError(f"dispatch's log is not empty before the history: {status['log_position']}")
    system.stop("dispatch")


# -- measuring ------------------------------------------------------------------------------


@dataclass
class Figures:
    """What one size measured."""

    size: int
    open: int
    events: int  # in dispatch's log once the history was written
    generated_seconds: float
    board_open: int = 0
    board_all: int = 0
    consistent: tuple[int, int] = (0, 0)  # sampled requests whose service state matches the plan, of
    # dispatch and billing started over the history: seconds until each had caught up
    first_start: dict[str, float] = field(default_factory=dict)
    restart_answers: float = math.nan
    restart_caught_up: float = math.nan
    rss_idle: float = math.nan
    rss_peak_first_start: float = math.nan
    idle_cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds per minute
    idle_window: float = 0.0
    idle_events: int = -1  # stored by dispatch during the idle window
    latencies: dict[str, list[float]] = field(default_factory=dict)
    baselines: dict[str, list[float]] = field(default_factory=dict)
    visits_items: int = 0  # rows on the technician's first page
    board_items: int = 0
    verified: dict[str, Any] = field(default_factory=dict)

    @property
    def verify_ok(self) -> bool:
        return bool(self.verified.get("ok"))


async def timed(samples: int, warmup: int, one: Callable[[int], Awaitable[object]]) -> list[float]:
    """One request at a time: `warmup` unmeasured, then `samples` measured (seconds each)."""
    for i in range(warmup):
        await one(-1 - i)
    found = []
    for i in range(samples):
        started = time.perf_counter()
        await one(i)
        found.append(time.perf_counter() - started)
    return found


async def first_start(system: System, figures: Figures, size: int) -> None:
    """Dispatch and billing over the history: the relay publishes it, the read models build."""
    system.start("dispatch")
    system.start("billing")
    started = time.perf_counter()
    timeout = 600 + size * 0.1
    seen: dict[str, float] = {}

    async def each() -> bool:
        for service, done in (await system.standing()).items():
            if done and service not in seen:
                seen[service] = time.perf_counter() - started
        return len(seen) == len(system.children)

    await until(each, "dispatch and billing caught up with the history", system, timeout, 0.5)
    figures.first_start = {service: seen[service] for service in ("dispatch", "billing")}
    figures.rss_peak_first_start = rss_mb(system.children["dispatch"].process.pid)[1]


async def restart(system: System, figures: Figures) -> None:
    system.stop("dispatch")
    system.start("dispatch")
    started = time.perf_counter()
    await until(lambda: system.answers("dispatch"), "dispatch answering after a restart", system, 300, 0.02)
    figures.restart_answers = time.perf_counter() - started
    await until(system.caught_up, "dispatch caught up after a restart", system, 300, 0.05)
    figures.restart_caught_up = time.perf_counter() - started


async def idle(system: System, figures: Figures, seconds: float) -> None:
    """CPU of each process over a window with no requests at all."""
    await asyncio.sleep(min(3.0, seconds))  # the restart's last polls settle
    before_log = (await system.ask("dispatch", "status", {}, AUDITOR))["log_position"]
    before = system.cpu()
    started = time.perf_counter()
    await asyncio.sleep(seconds)
    after = system.cpu()
    figures.idle_window = time.perf_counter() - started
    figures.idle_cpu = {name: (after[name] - before[name]) * 60 / figures.idle_window for name in after}
    figures.idle_events = (await system.ask("dispatch", "status", {}, AUDITOR))["log_position"] - before_log
    figures.rss_idle = rss_mb(system.children["dispatch"].process.pid)[0]


async def latencies(system: System, figures: Figures, history: History, options: Options) -> None:
    rng = random.Random(options.seed)
    crew_ = make_crew()
    count = options.samples + options.warmup
    new = [f"new-{figures.size}-{i:04d}" for i in range(count)]

    def slot(i: int) -> int:
        return i if i >= 0 else options.samples - 1 - i  # warm-up calls take the ids after the samples

    def technician(i: int) -> Technician:
        return crew_[slot(i) % len(crew_)]

    async def open_one(i: int) -> object:
        where = SITES[slot(i) % len(SITES)]
        return await system.ask("dispatch", "ticket.open", {
            "ticket_id": new[slot(i)], "site_id": where.site_id, "summary": "打印机无法连接", "channel": "phone",
            "skill": "software:general", "command_id": uuid.uuid4().hex})

    figures.latencies["open"] = await timed(options.samples, options.warmup, open_one)
    for i, ticket_id in enumerate(new):  # not measured: each new request escalated and assigned
        await system.ask("dispatch", "ticket.triage", {"ticket_id": ticket_id, "outcome": "escalate",
                                                       "note": "需要上门", "command_id": uuid.uuid4().hex})
        await system.ask("dispatch", "ticket.assign", {
            "ticket_id": ticket_id, "technician_id": crew_[i % len(crew_)].technician_id,
            "reason": "benchmark: round robin", "command_id": uuid.uuid4().hex})

    async def check_in(i: int) -> object:
        ticket_id, who = new[slot(i)], technician(slot(i)).technician_id
        where = SITES[slot(i) % len(SITES)]
        answer = await system.ask("dispatch", "ticket.check_in", {
            "ticket_id": ticket_id, "technician_id": who, "key": f"bench-{ticket_id}",
            "device_time": (datetime.now(CHINA) - timedelta(seconds=1)).isoformat(),
            "position": {"latitude": where.latitude, "longitude": where.longitude}, "accuracy_m": 8,
            "command_id": uuid.uuid4().hex}, f"technician:{who}")
        if not any(e["type"] == "private.CheckedIn" for e in answer["events"]):
            raise BenchError(f"{ticket_id}: the check-in stored no CheckedIn: {answer}")
        return answer

    figures.latencies["check_in"] = await timed(options.samples, options.warmup, check_in)

    async def board(_i: int) -> object:
        page = await system.ask("dispatch", "tickets", {})
        figures.board_items = len(page["items"])
        return page

    figures.latencies["board"] = await timed(options.samples, options.warmup, board)

    async def visits(i: int) -> object:
        who = technician(i).technician_id
        page = await system.ask("dispatch", "tickets", {"status": "open", "technician_id": who},
                                f"technician:{who}")
        figures.visits_items = len(page["items"])
        return page

    figures.latencies["visits"] = await timed(options.samples, options.warmup, visits)
    generated = [r.ticket_id for r in history.requests]

    async def audit(_i: int) -> object:
        answer = await system.ask("dispatch", "audit.stream", {"stream_id": ticket_stream(rng.choice(generated))},
                                  AUDITOR)
        if not answer["events"]:
            raise BenchError("an empty history")
        return answer

    figures.latencies["history"] = await timed(options.samples, options.warmup, audit)


async def baselines(system: System, figures: Figures, history: History, options: Options) -> None:
    """The raw layers below, in the same run: a bare NATS request/reply (a responder on one
    connection, the request from another), a bare SQLite read of one event by position through
    the same async engine the services use, and the event store's load of one request's stream."""
    url = system.broker.url
    responder = await nats.connect(url, nkeys_seed=str(system.harness_seed), name="bench-echo")
    requester = await nats.connect(url, nkeys_seed=str(system.harness_seed), name="bench-ask")
    rng = random.Random(options.seed)
    payload = json.dumps({"ticket_id": "r000001", "technician_id": "tech-01", "key": "bench", "device_time":
                          datetime.now(CHINA).isoformat(), "position": {"latitude": 31.86, "longitude": 117.28},
                          "accuracy_m": 8, "command_id": uuid.uuid4().hex}).encode()
    try:
        async def echo(msg: Msg) -> None:
            await msg.respond(msg.data)

        await responder.subscribe("bench.echo", cb=echo)
        await responder.flush()

        async def bare(_i: int) -> object:
            return await requester.request("bench.echo", payload, timeout=10)

        # The echo's interest reaches the server before the flush answers, but a loaded
        # machine has seen "no responders" right after (a reconnect in between): the
        # layer below is measured once it answers, never failed for being late.
        for _attempt in range(100):
            try:
                await bare(0)
                break
            except nats.errors.NoRespondersError:
                await asyncio.sleep(0.1)

        figures.baselines["nats"] = await timed(options.samples, options.warmup, bare)
    finally:
        await requester.close()
        await responder.close()
    engine = make_engine(f"sqlite:///{system.database('dispatch')}")
    store = EventStore(engine)
    try:
        last = await store.last_position()

        async def by_position(_i: int) -> object:
            async with engine.connect() as conn:
                return (await conn.execute(select(events_table).where(
                    events_table.c.position == rng.randint(1, last)))).first()

        figures.baselines["sqlite"] = await timed(options.samples, options.warmup, by_position)
        generated = [r.ticket_id for r in history.requests]

        async def load(_i: int) -> object:
            return await store.load(ticket_stream(rng.choice(generated)))

        figures.baselines["load"] = await timed(options.samples, options.warmup, load)
    finally:
        await engine.dispose()


async def counts(system: System, figures: Figures, history: History, options: Options) -> None:
    """What the service shows of the history: the board's totals, and a sample of requests whose
    state (as dispatch folds its log) must be the one the history left them in."""
    figures.board_open = (await system.ask("dispatch", "tickets", {"status": "open", "limit": 1}))["total"]
    figures.board_all = (await system.ask("dispatch", "tickets", {"status": "all", "limit": 1}))["total"]
    rng = random.Random(options.seed)
    sample = rng.sample(history.requests, min(20, len(history.requests)))
    same = 0
    for request in sample:
        found = await system.ask("dispatch", "ticket", {"ticket_id": request.ticket_id})
        same += found["status"] == request.final
    figures.consistent = (same, len(sample))


async def verify(system: System, figures: Figures) -> None:
    """`weibao verify dispatch` as an operator runs it: the log's chain and signatures, and the
    stream on the broker held against it."""
    command = [sys.executable, "-m", "weibao.dispatch", "verify"]
    done = await asyncio.to_thread(subprocess.run, command, env=system.env("dispatch"), capture_output=True,
                                   text=True, check=False, timeout=3600)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise BenchError(f"weibao verify dispatch printed nothing ({done.returncode}): {done.stderr[-2000:]}")
    figures.verified = json.loads(lines[-1])
    figures.verified["exit_code"] = done.returncode


async def measure(size: int, tmp: Path, options: Options) -> Figures:
    print(f"\n== {size:,} requests ({size // OPEN_SHARE:,} open) ==", flush=True)
    async with running_system(tmp, options) as system:
        await set_up_contracts(system)
        signer = keys.Keyring.load(system.keys).signer("dispatch")
        assert signer is not None
        history = await write_history(system.database("dispatch"), signer, size, options.seed)
        print(f"  history written: {len(history.requests):,} requests, {history.events:,} events in "
              f"{history.appends:,} appends, {history.seconds:.1f} s ({history.events / history.seconds:,.0f} "
              f"events/s); statuses: {dict(sorted(history.statuses().items()))}", flush=True)
        figures = Figures(size, history.open, history.events, history.seconds)
        await first_start(system, figures, size)
        print(f"  first start over the history: dispatch caught up (relay, read models) in "
              f"{figures.first_start['dispatch']:.1f} s, billing in {figures.first_start['billing']:.1f} s",
              flush=True)
        await counts(system, figures, history, options)
        await restart(system, figures)
        print(f"  restart: answers in {figures.restart_answers:.2f} s, caught up in {figures.restart_caught_up:.2f} s",
              flush=True)
        await idle(system, figures, options.seconds)
        print(f"  idle {figures.idle_window:.0f} s: " + ", ".join(
            f"{name} {cpu * 1000:,.0f} ms/min" for name, cpu in figures.idle_cpu.items())
              + f"; {figures.idle_events} events stored meanwhile", flush=True)
        await latencies(system, figures, history, options)
        await baselines(system, figures, history, options)
        print("  p50/p99 ms: " + ", ".join(
            f"{name} {ms(percentile(v, 0.5))}/{ms(percentile(v, 0.99))}"
            for name, v in (*figures.latencies.items(), *figures.baselines.items())), flush=True)
        await verify(system, figures)
        print(f"  weibao verify dispatch: ok={figures.verify_ok} ({json.dumps(figures.verified)[:300]})", flush=True)
    return figures


# -- the table ------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.2f}"


@dataclass(frozen=True)
class Row:
    label: str
    values: tuple[float, ...]
    digits: int = 1


def rows(report: Sequence[Figures]) -> list[Row]:
    def row(label: str, value: Callable[[Figures], float], digits: int = 1) -> Row:
        return Row(label, tuple(float(value(f)) for f in report), digits)

    found = [
        row("requests in dispatch's log", lambda f: f.size, 0),
        row("  of which open", lambda f: f.open, 0),
        row("events in dispatch's log (generated)", lambda f: f.events, 0),
    ]
    found += [Row(f"idle CPU, {name} (ms per minute)",
                  tuple(f.idle_cpu.get(name, math.nan) * 1000 for f in report)) for name in IDLE]
    found.append(row("events dispatch stored while idle", lambda f: f.idle_events, 0))
    found += [Row(f"{OPERATION_LABELS[name]}, p{q * 100:.0f} (ms)",
                  tuple(percentile(f.latencies.get(name, []), q) * 1000 for f in report), 2)
              for name in OPERATIONS for q in (0.5, 0.99)]
    found += [Row(f"{BASELINE_LABELS[name]}, p{q * 100:.0f} (ms)",
                  tuple(percentile(f.baselines.get(name, []), q) * 1000 for f in report), 2)
              for name in BASELINES for q in (0.5, 0.99)]
    found += [
        row("dispatch restart: health answers (s)", lambda f: f.restart_answers, 2),
        row("dispatch restart: caught up (s)", lambda f: f.restart_caught_up, 2),
        row("dispatch memory after restart, idle (RSS MB)", lambda f: f.rss_idle),
        row("dispatch memory, peak at first start (MB)", lambda f: f.rss_peak_first_start),
        row("first start: dispatch caught up, relay and read models (s)",
            lambda f: f.first_start.get("dispatch", math.nan)),
        row("first start: billing caught up with dispatch's stream (s)",
            lambda f: f.first_start.get("billing", math.nan)),
    ]
    return found


def number(value: float, digits: int) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.{digits}f}"


def ratio(value: float, base: float) -> str:
    if math.isnan(value) or math.isnan(base):
        return "n/a"
    if base == 0:
        return "x1.00" if value == 0 else "x∞"
    return f"x{value / base:.2f}"


def table(report: Sequence[Figures]) -> str:
    header = ("figure", *(f"{f.size:,} requests" for f in report))
    lines: list[tuple[str, ...]] = [header]
    for r in rows(report):
        base = r.values[0]
        cells = [number(base, r.digits)]
        cells += [f"{number(v, r.digits)} ({ratio(v, base)})" for v in r.values[1:]]
        lines.append((r.label, *cells))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]

    def text(line: tuple[str, ...]) -> str:
        return "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                         for i, (cell, w) in enumerate(zip(line, widths, strict=True))).rstrip()

    return "\n".join([text(lines[0]), "  ".join("-" * w for w in widths), *map(text, lines[1:])])


NOTES = """
rows:
  each cell: the figure at that size, and in brackets its ratio to the same figure at the smallest size.
  idle CPU: user + system CPU time of the process (/proc) over the idle window, per minute of it; after a
    restart and its catch-up, no requests at all. The deadline clock turns every WEIBAO_TICK_INTERVAL (30 s)
    and ticks only requests whose next deadline news is due: the history's facts up to now are in the log.
  latencies: one request at a time on an otherwise idle system, over NATS request/reply, signed as the
    gateway signs (so the service checks the signature), measured in this process from send to answer.
    opening: a new request at one of the four sites; check-in: on a request just opened, escalated and
    assigned; board: `tickets` with no filter (open, 50 rows); visits: `tickets` for one technician, open
    (the phone's list); history: `audit.stream` of a request of the history, chosen at random.
  (below): bare NATS: the same kind of payload to a responder that echoes it, two connections to the same
    broker; bare SQLite: one event by position through the services' own async engine (aiosqlite), on
    dispatch's file; event store load: EventStore.load of a random request's stream (what the history
    answer reads, without NATS or the signature check).
  restart: dispatch stopped and started again over its caught-up database; from spawn to its health
    answering, and to every read model and the relay having nothing left to do.
  first start: dispatch and billing started together over the generated log: dispatch's relay publishes
    it and its read models apply it, billing's policies and invoice book apply it; from spawn until each
    service has nothing left to do (polled every 0.5 s); dispatch's peak memory (VmHWM) by then."""


def header(options: Options) -> None:
    nats_server = subprocess.run([str(server_binary()), "--version"], check=False, capture_output=True, text=True)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"Weibao scaling benchmark: {os.cpu_count()} CPUs (load average {load}; shared with other work), Python "
          f"{platform.python_version()}, SQLite {sqlite3.sqlite_version}, {nats_server.stdout.strip()}, "
          f"nats-py {version('nats-py')}, SQLAlchemy {version('SQLAlchemy')}")
    print(f"sizes: {', '.join(f'{s:,}' for s in options.sizes)} requests ({100 // OPEN_SHARE} % open), "
          f"{CREW_SIZE} technicians, over {HISTORY.days} days; idle window {options.seconds:g} s; "
          f"{options.samples} samples per latency (after {options.warmup} unmeasured)")
    print(f"logging: WEIBAO_LOG_LEVEL={options.log_level} in every process")
    print("figures only, nothing asserts on time", flush=True)


async def run(options: Options, tmp: Path) -> list[Figures]:
    """Each size in its own folder under `tmp`, one after the other; print the table."""
    header(options)
    report = []
    for size in options.sizes:
        folder = tmp / f"n{size}"
        folder.mkdir(parents=True, exist_ok=False)
        report.append(await measure(size, folder, options))
        if 1 < len(report) < len(options.sizes):  # a long run: the table so far
            print(f"\nso far:\n{table(report)}", flush=True)
    print()
    print(table(report))
    verified = ", ".join(f"{f.size:,}: {'ok' if f.verify_ok else 'NOT ok'}" for f in report)
    consistent = ", ".join(f"{f.size:,}: {f.consistent[0]} of {f.consistent[1]}" for f in report)
    board = ", ".join(f"{f.size:,}: {f.board_open:,} open of {f.board_all:,}" for f in report)
    print(f"\nweibao verify dispatch (log chain, signatures, stream): {verified}")
    print(f"the board after the first start: {board}")
    print(f"sampled requests whose state in dispatch is the history's: {consistent}")
    print(f"rows on the first page: board {', '.join(str(f.board_items) for f in report)}; "
          f"a technician's visits {', '.join(str(f.visits_items) for f in report)}")
    print(f"load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(NOTES)
    return report


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help=f"sizes {', '.join(map(str, QUICK_SIZES))}, a 5 s idle window, 20 samples")
    parser.add_argument("--sizes", help=f"requests in the log, comma-separated (default {','.join(map(str, SIZES))})")
    parser.add_argument("--seconds", type=float, help="the idle window (default 60)")
    parser.add_argument("--samples", type=int, help="requests per latency figure (default 200)")
    parser.add_argument("--log-level", default="WARNING", help="WEIBAO_LOG_LEVEL of every process (default WARNING)")
    return parser.parse_args()


def options_from(args: argparse.Namespace) -> Options:
    base = quick_options() if args.quick else Options()
    sizes = tuple(int(s.replace("_", "")) for s in args.sizes.split(",")) if args.sizes else base.sizes
    if not sizes or min(sizes) < OPEN_SHARE:
        raise SystemExit(f"--sizes: each at least {OPEN_SHARE}")
    return Options(sizes=sizes, seconds=args.seconds if args.seconds is not None else base.seconds,
                   samples=args.samples if args.samples is not None else base.samples, warmup=base.warmup,
                   log_level=args.log_level)


def main() -> None:
    args = parse_args()
    options = options_from(args)
    os.environ["WEIBAO_LOG_LEVEL"] = options.log_level
    configure(level=options.log_level)
    with tempfile.TemporaryDirectory(prefix="wb-scale-", dir="/tmp") as name:
        asyncio.run(run(options, Path(name)))


if __name__ == "__main__":
    main()
