"""python -m bench.gateway [--visits N] [--concurrency C] [--sample K] [--database-url URL]: check-ins
through the gateway, end to end, beside a bare FastAPI endpoint measured in the same run.

A real system in subprocesses, started as `weibao up` starts it: the embedded nats-server (file storage,
sync_interval always), the streams set up, `python -m weibao.<service> serve` for contracts, dispatch and
billing (a SQLite file each, or PostgreSQL with --database-url, a schema each), and the gateway,
`python -m weibao.gateway` under uvicorn. Set up over the HTTP API as an admin: a customer with four
Hefei sites, its agreement (yizhuo-crm-maintenance, live since a year ago), C + 1 technicians, and every
ticket opened, escalated and assigned to a named technician. The real clock throughout.

(1) throughput: C clients (an httpx.AsyncClient each, signed in as its own technician) post N check-ins,
    each to its own ticket, closed loop: rate and p50/p99 of the HTTP latency (an answer means the
    CheckedIn event is in dispatch's log); then, polling only after the last answer so as not to load
    the run, when the ticket board (relay -> JetStream -> tracking consumer -> read model) shows all N:
    the end-to-end rate.
(2) visibility: K more check-ins one at a time on an otherwise idle system, each followed by polling the
    technician's GET /api/v1/me/visits until its row shows checked_in_at: p50/p99 from the send and from
    the answer (resolution: one poll, whose own round trip is printed too).
Baseline: a bare FastAPI app (a subprocess under uvicorn, the gateway's settings) with one route taking the
same `Presence` body and the same token check (deps.allow -> Tokens.check) answering fixed JSON; the same
clients and tokens post the same N requests at the same concurrency, before and after (1); the table uses
the faster of the two, so the ratio errs low. Every phase starts after a warm-up of 2 x C requests.
Afterwards every ticket's history (the auditor's API) must hold exactly one CheckedIn.
Prints figures; asserts nothing about time."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import platform
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Annotated, Any

import httpx
import uvicorn
from fastapi import Depends, FastAPI
from sqlalchemy import text

from bench.report import Result, table
from weibao.gateway import errors
from weibao.gateway.auth import Principal, Tokens, UserBook, secret_from
from weibao.gateway.deps import DISPATCH, IdempotencyKey, allow
from weibao.runtime.natsd import NatsServer, free_port, server_binary
from weibao.runtime.supervisor import streams_setup
from weibao.shared import keys
from weibao.shared.clock import CHINA
from weibao.shared.commands.dispatch import Presence
from weibao.shared.db import make_engine
from weibao.shared.logs import configure
from weibao.shared.streams import SERVICES
from weibao.shared.users import User, default_path, hash_password, save_users

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
PASSWORD = "bench-password-" + "x" * 16
ADMIN = "bench-admin"
PROBE = "bt-probe"  # the technician of phase (2): their list holds only the sample's tickets
HEFEI_OFFICE = {"name": "合肥办事处", "city_code": "3401", "latitude": 31.8206, "longitude": 117.2272}
PARAMETERS = {"fee.percent": "10", "fee.licence_price": "120000", "onsite.local_hours": 4,
              "onsite.out_of_town_days": 2, "hardware.day_rate": "800"}
# Environment a child must not inherit: the bench chooses its database, clock, users and ports.
CLEARED = ("DATABASE_URL", "WEIBAO_DB_SCHEMA", "WEIBAO_NOW", "WEIBAO_TODAY", "WEIBAO_USERS", "WEIBAO_JWT_SECRET",
           "WEIBAO_HTTP_HOST", "WEIBAO_HTTP_PORT")
RETRIED = (502, 503, 504)  # the phone retries with the same key; its latency includes the retries
ATTEMPTS = 3
BARE_ANSWER = {"ok": True, "stored": False}
POLL_PAUSE = 0.005  # between two polls of the board in phase (2)
MAX_SAMPLE = 200  # one page of /me/visits
BASELINE = "bare FastAPI check-in"


class BenchError(RuntimeError):
    """The system did not do what the benchmark asked: its figures would mean nothing."""


# -- what is set up ----------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    site_id: str
    name: str
    address: str
    latitude: float
    longitude: float

    def body(self) -> dict[str, Any]:
        return {"site_id": self.site_id, "name": self.name, "address": self.address,
                "latitude": self.latitude, "longitude": self.longitude}


SITES = (
    Site("s-1", "总部", "安徽省合肥市庐阳区", 31.8650, 117.2830),
    Site("s-2", "仓库", "安徽省合肥市包河区", 31.7930, 117.3090),
    Site("s-3", "门店", "安徽省合肥市蜀山区", 31.8510, 117.2600),
    Site("s-4", "分公司", "安徽省合肥市瑶海区", 31.8800, 117.3300),
)


@dataclass(frozen=True)
class Visit:
    ticket_id: str
    site: Site
    technician_id: str

    @property
    def path(self) -> str:
        return f"/api/v1/tickets/{self.ticket_id}/check-in"

    def presence(self) -> dict[str, Any]:
        """What the phone posts on arrival: at the site, its clock a second behind the server's."""
        device_time = datetime.now(CHINA) - timedelta(seconds=1)
        return {"key": f"bench-check-in-{self.ticket_id}", "device_time": device_time.isoformat(),
                "position": {"latitude": self.site.latitude, "longitude": self.site.longitude}, "accuracy_m": 8}


@dataclass(frozen=True)
class Plan:
    crew: tuple[str, ...]  # one technician per client
    warmup: tuple[Visit, ...]
    visits: tuple[Visit, ...]
    samples: tuple[Visit, ...]

    @property
    def technicians(self) -> tuple[str, ...]:
        return (*self.crew, PROBE)

    @property
    def tickets(self) -> tuple[Visit, ...]:
        return (*self.warmup, *self.visits, *self.samples)

    def lanes(self, visits: Sequence[Visit]) -> list[list[Visit]]:
        """Each client's share: the visits of its technician, in order."""
        return [[v for v in visits if v.technician_id == t] for t in self.crew]


@dataclass(frozen=True)
class Options:
    visits: int = 300
    concurrency: int = 8
    sample: int = 100
    warmup: int | None = None  # default 2 x concurrency
    database_url: str | None = None
    log_level: str = "WARNING"
    # Processes of dispatch sharing its database and its requests (a NATS queue group).
    dispatch_replicas: int = 1


def make_plan(options: Options) -> Plan:
    crew = tuple(f"bt-{i:02d}" for i in range(options.concurrency))

    def visits(prefix: str, count: int, technician: Callable[[int], str]) -> tuple[Visit, ...]:
        return tuple(Visit(f"{prefix}-{i:05d}", SITES[i % len(SITES)], technician(i)) for i in range(count))

    warmup = options.warmup if options.warmup is not None else 2 * options.concurrency
    return Plan(crew, visits("warm", warmup, lambda i: crew[i % len(crew)]),
                visits("bench", options.visits, lambda i: crew[i % len(crew)]),
                visits("probe", options.sample, lambda _i: PROBE))


def write_users(path: Path, technicians: Sequence[str]) -> None:
    hashed = hash_password(PASSWORD)  # one hash for all: argon2 is slow on purpose
    users = {ADMIN: User(ADMIN, "admin", hashed, "Bench admin")}
    users.update({t: User(t, "technician", hashed, t, t) for t in technicians})
    save_users(path, users)


# -- processes ----------------------------------------------------------------------------


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""


def spawn(name: str, argv: list[str], env: Mapping[str, str], logs: Path) -> Child:
    log = logs / f"{name}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(argv, env=dict(env), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    return Child(name, process, log)


def stop_child(child: Child, timeout: float = 15.0) -> None:
    if child.process.poll() is not None:
        return
    child.process.terminate()
    try:
        child.process.wait(timeout)
    except subprocess.TimeoutExpired:
        child.process.kill()
        child.process.wait()


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc); 0 when unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime: fields 14 and 15


@dataclass
class System:
    broker: NatsServer
    children: dict[str, Child]
    gateway_url: str
    bare_url: str
    schemas: list[str] = field(default_factory=list)

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far of each process, this one (the clients) included."""
        found = {name: cpu_seconds(child.process.pid) for name, child in self.children.items()}
        if self.broker.process is not None:
            found["nats-server"] = cpu_seconds(self.broker.process.pid)
        found["clients"] = time.process_time()
        return found


def child_env(options: Options, nats_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env.update(NATS_URL=nats_url, WEIBAO_LOG_LEVEL=options.log_level, WEIBAO_LOG_FORMAT="json", **extra)
    return env


def signing_keys(folder: Path) -> Path:
    keys.generate(folder)
    return folder.resolve()


async def start_system(tmp: Path, options: Options, plan: Plan) -> System:
    """nats-server, streams, the three services, the gateway and the bare app; healthy."""
    broker = NatsServer(data_dir=tmp / "nats")
    await broker.astart()
    system = System(broker, {}, f"http://{HOST}:{free_port()}", f"http://{HOST}:{free_port()}")
    try:
        await streams_setup(broker.url)
        users = tmp / "users.json"
        write_users(users, plan.technicians)
        logs = tmp / "logs"
        logs.mkdir(exist_ok=True)
        suffix = secrets.token_hex(4)
        # The services believe only signed actors and the gateway signs with its key: one
        # keys folder for the whole system, as `weibao up` makes, unless one is given.
        signing = {} if os.environ.get("WEIBAO_KEYS") else {"WEIBAO_KEYS": str(signing_keys(tmp / "keys"))}
        for service in SERVICES:  # as weibao.runtime.supervisor.service_env, with the bench's own database
            if options.database_url:
                schema = f"bench_gw_{suffix}_{service}"
                system.schemas.append(schema)
                env = child_env(options, broker.url, DATABASE_URL=options.database_url, WEIBAO_DB_SCHEMA=schema,
                                **signing)
            else:
                env = child_env(options, broker.url, DATABASE_URL=f"sqlite:///{(tmp / f'{service}.db').resolve()}",
                                **signing)
            replicas = options.dispatch_replicas if service == "dispatch" else 1
            for replica in range(1, replicas + 1):
                name = service if replica == 1 else f"{service}-{replica}"
                system.children[name] = spawn(name, [sys.executable, "-m", f"weibao.{service}", "serve"], env, logs)
        web = {"WEIBAO_HTTP_HOST": HOST, "WEIBAO_USERS": str(users.resolve()),
               "WEIBAO_JWT_SECRET": secrets.token_urlsafe(48)}
        for name, argv, url in (("gateway", ["-m", "weibao.gateway"], system.gateway_url),
                                ("bare", ["-m", "bench.gateway", "--serve-bare"], system.bare_url)):
            env = child_env(options, broker.url, WEIBAO_HTTP_PORT=url.rsplit(":", 1)[1], **web, **signing)
            system.children[name] = spawn(name, [sys.executable, *argv], env, logs)
        await asyncio.gather(healthy(system, system.gateway_url, "gateway"),
                             healthy(system, system.bare_url, "bare"))
    except BaseException:
        await stop_system(system, options)
        raise
    return system


async def healthy(system: System, url: str, name: str, timeout: float = 120.0) -> None:
    """Wait for GET /healthz to answer 200 (the gateway's: once every service answers)."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=url, timeout=2) as http:
        while time.monotonic() < deadline:
            for child in system.children.values():
                if child.process.poll() is not None:
                    raise BenchError(f"{child.name} exited ({child.process.returncode}):\n{child.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get("/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise BenchError(f"{name} at {url} was not healthy after {timeout:g} s:\n{system.children[name].tail()}")


async def stop_system(system: System, options: Options) -> None:
    for child in reversed(system.children.values()):  # the web processes, then the services
        await asyncio.to_thread(stop_child, child)
    await system.broker.astop()
    if options.database_url and system.schemas:
        engine = make_engine(options.database_url)
        try:
            async with engine.begin() as conn:
                for schema in system.schemas:
                    await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        finally:
            await engine.dispose()


# -- the HTTP API -----------------------------------------------------------------------


async def post(http: httpx.AsyncClient, path: str, body: Mapping[str, Any], status: int = 200) -> Any:
    response = await http.post(f"/api/v1{path}", json=body)
    if response.status_code != status:
        raise BenchError(f"POST {path}: {response.status_code} {response.text}")
    return response.json()


async def sign_in(url: str, username: str) -> str:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        answer = await post(http, "/session", {"username": username, "password": PASSWORD})
    return str(answer["access_token"])


def client(url: str, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, timeout=60, headers={"Authorization": f"Bearer {token}"})


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise BenchError(f"{what} did not happen within {timeout:g} s")
        await asyncio.sleep(0.05)


async def bounded(concurrency: int, jobs: Sequence[Callable[[], Awaitable[None]]]) -> None:
    semaphore = asyncio.Semaphore(concurrency)

    async def one(job: Callable[[], Awaitable[None]]) -> None:
        async with semaphore:
            await job()

    await asyncio.gather(*(one(job) for job in jobs))


async def board(http: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    """Every row of the ticket board (the read model), by ticket id."""
    rows: dict[str, dict[str, Any]] = {}
    offset: int | None = 0
    while offset is not None:
        response = await http.get("/api/v1/tickets", params={"status": "all", "limit": 200, "offset": offset})
        if response.status_code != 200:
            raise BenchError(f"GET /tickets: {response.status_code} {response.text}")
        page = response.json()
        rows.update({row["ticket_id"]: row for row in page["items"]})
        offset = page["next_offset"]
    return rows


async def set_up(admin: httpx.AsyncClient, plan: Plan, concurrency: int) -> None:
    """The customer, its agreement and the crew; every ticket opened, escalated and assigned;
    then wait until the board shows them all, so that (1) starts on a quiet system."""
    await post(admin, "/customers", {"customer_id": "c-bench", "name": "天宇贸易",
                                     "sites": [site.body() for site in SITES]}, 201)
    go_live = datetime.now(CHINA).date() - timedelta(days=365)
    await post(admin, "/agreements", {
        "agreement_id": "a-bench", "customer_id": "c-bench", "template_id": "yizhuo-crm-maintenance",
        "parameters": PARAMETERS, "go_live": go_live.isoformat(), "office": HEFEI_OFFICE,
        "site_ids": [site.site_id for site in SITES]}, 201)
    for technician in plan.technicians:
        await post(admin, "/technicians", {"technician_id": technician, "name": technician,
                                           "skills": ["software:general", "hardware"],
                                           "home": {"latitude": 31.83, "longitude": 117.24},
                                           "capacity_per_day": 50}, 201)

    async def crew_on_the_board() -> bool:  # rule D4 weighs only the technicians the board knows
        found = (await admin.get("/api/v1/technicians")).json()
        return {t["technician_id"] for t in found} >= set(plan.technicians)

    await eventually(crew_on_the_board, "the technician board showing the crew")

    async def coverage_known() -> bool:
        # Sites and coverage reach dispatch as contracts' messages, one site at a time and
        # the agreement after them: wait until dispatch has applied all contracts stored.
        response = await admin.get("/api/v1/audit/status")
        if response.status_code != 200:
            raise BenchError(f"GET /audit/status: {response.status_code} {response.text}")
        services = {s["service"]: s for s in response.json()["services"]}
        book = next(m for m in services["dispatch"]["read_models"] if m["consumer"].endswith("coverage_book"))
        return bool(book["applied_seq"] >= services["contracts"]["log_position"])

    await eventually(coverage_known, "dispatch reading every site and the agreement")

    def prepare(visit: Visit) -> Callable[[], Awaitable[None]]:
        async def job() -> None:
            await post(admin, "/tickets", opening(visit), 201)
            await escalate_and_assign(admin, visit)

        return job

    await bounded(concurrency, [prepare(visit) for visit in plan.tickets])

    async def all_assigned() -> bool:
        rows = await board(admin)
        return all(rows.get(v.ticket_id, {}).get("technician_id") == v.technician_id for v in plan.tickets)

    await eventually(all_assigned, "the ticket board showing every assignment", timeout=300)


def opening(visit: Visit) -> dict[str, Any]:
    return {"ticket_id": visit.ticket_id, "site_id": visit.site.site_id, "summary": "CRM 服务器无法登录",
            "channel": "phone", "skill": "software:general"}


async def escalate_and_assign(admin: httpx.AsyncClient, visit: Visit) -> None:
    await post(admin, f"/tickets/{visit.ticket_id}/triage", {"outcome": "escalate", "note": "需要上门"})
    await post(admin, f"/tickets/{visit.ticket_id}/assignment",
               {"technician_id": visit.technician_id, "reason": "benchmark: each client has its own technician"})


# -- measuring ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Shot:
    ticket_id: str
    sent: float
    answered: float
    attempts: int

    @property
    def latency(self) -> float:
        return self.answered - self.sent


@dataclass
class Phase:
    label: str
    started: float
    shots: list[Shot]
    cpu: dict[str, float]  # CPU seconds each process spent during the phase

    @property
    def count(self) -> int:
        return len(self.shots)

    @property
    def finished(self) -> float:
        return max((s.answered for s in self.shots), default=self.started)

    @property
    def rate(self) -> float:
        return self.count / max(self.finished - self.started, 1e-9)

    @property
    def latencies(self) -> list[float]:
        return [s.latency for s in self.shots]

    @property
    def retries(self) -> int:
        return sum(s.attempts - 1 for s in self.shots)


Check = Callable[[Visit, httpx.Response], None]


def stored(visit: Visit, response: httpx.Response) -> None:
    """The gateway's answer: the CheckedIn event dispatch stored, within the geofence."""
    checked = [e for e in response.json()["events"] if e["type"] == "private.CheckedIn"]
    if len(checked) != 1 or not checked[0]["data"]["within_geofence"]:
        raise BenchError(f"{visit.ticket_id}: the answer holds no valid CheckedIn: {response.text}")


def fixed(visit: Visit, response: httpx.Response) -> None:
    if response.json() != BARE_ANSWER:
        raise BenchError(f"{visit.ticket_id}: the bare app answered {response.text}")


async def check_in(http: httpx.AsyncClient, visit: Visit, check: Check) -> Shot:
    body = visit.presence()
    sent = time.perf_counter()
    attempt = 1
    response = await http.post(visit.path, json=body)
    while response.status_code in RETRIED and attempt < ATTEMPTS:  # the same key: one effect
        attempt += 1
        print(f"  note: {visit.ticket_id} answered {response.status_code} {response.text}; retried", flush=True)
        response = await http.post(visit.path, json=body)
    answered = time.perf_counter()
    if response.status_code != 200:
        raise BenchError(f"{visit.ticket_id}: {response.status_code} {response.text}")
    check(visit, response)
    return Shot(visit.ticket_id, sent, answered, attempt)


async def drive(system: System, label: str, clients: Sequence[httpx.AsyncClient],
                lanes: Sequence[Sequence[Visit]], check: Check) -> Phase:
    """Each client posts its lane's check-ins one after the other; all clients at once."""

    async def lane(http: httpx.AsyncClient, visits: Sequence[Visit]) -> list[Shot]:
        return [await check_in(http, visit, check) for visit in visits]

    before = system.cpu()
    started = time.perf_counter()
    shots = await asyncio.gather(*(lane(http, visits) for http, visits in zip(clients, lanes, strict=True)))
    after = system.cpu()
    return Phase(label, started, [s for found in shots for s in found],
                 {name: after[name] - before.get(name, 0.0) for name in after})


@contextlib.asynccontextmanager
async def clients(url: str, tokens: Sequence[str]) -> AsyncIterator[list[httpx.AsyncClient]]:
    async with contextlib.AsyncExitStack() as stack:
        yield [await stack.enter_async_context(client(url, token)) for token in tokens]


async def bare_phase(system: System, plan: Plan, tokens: Sequence[str], label: str) -> Phase:
    async with clients(system.bare_url, tokens) as http:
        await drive(system, "warm-up", http, plan.lanes(plan.warmup), fixed)
        return await drive(system, label, http, plan.lanes(plan.visits), fixed)


async def until_visible(admin: httpx.AsyncClient, visits: Sequence[Visit], timeout: float = 300.0) -> float:
    """When the board first showed every one of `visits` checked in (polled back to back)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = await board(admin)
        if all(rows.get(v.ticket_id, {}).get("checked_in_at") for v in visits):
            return time.perf_counter()
        if time.monotonic() > deadline:
            missing = [v.ticket_id for v in visits if not rows.get(v.ticket_id, {}).get("checked_in_at")]
            raise BenchError(f"{len(missing)} check-ins not on the board after {timeout:g} s: {missing[:5]}")
        await asyncio.sleep(0.01)


@dataclass(frozen=True)
class Sighting:
    shot: Shot
    seen: float  # when a poll first showed the check-in
    polls: tuple[float, ...]  # each poll's round trip

    @property
    def from_send(self) -> float:
        return self.seen - self.shot.sent

    @property
    def from_answer(self) -> float:
        return self.seen - self.shot.answered


async def sightings(probe: httpx.AsyncClient, samples: Sequence[Visit], timeout: float = 60.0) -> list[Sighting]:
    """Phase (2): one check-in at a time, then the phone's own list polled until it shows it. Each visit
    is then completed and waited off the list, so the list holds one row and the next starts idle."""
    found = []
    for visit in samples:
        shot = await check_in(probe, visit, stored)
        polls: list[float] = []
        deadline = time.monotonic() + timeout
        while True:
            asked = time.perf_counter()
            rows = await my_visits(probe)
            seen = time.perf_counter()
            polls.append(seen - asked)
            if (rows.get(visit.ticket_id) or {}).get("checked_in_at"):
                break
            if time.monotonic() > deadline:
                raise BenchError(f"{visit.ticket_id} not on the board after {timeout:g} s")
            await asyncio.sleep(POLL_PAUSE)
        found.append(Sighting(shot, seen, tuple(polls)))
        await post(probe, f"/tickets/{visit.ticket_id}/completion", {"resolution": "benchmark: checked in"})

        async def off_the_list(ticket_id: str = visit.ticket_id) -> bool:
            return ticket_id not in await my_visits(probe)

        await eventually(off_the_list, f"{visit.ticket_id} leaving the open list")
    return found


async def my_visits(probe: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    response = await probe.get("/api/v1/me/visits", params={"limit": MAX_SAMPLE})
    if response.status_code != 200:
        raise BenchError(f"GET /me/visits: {response.status_code} {response.text}")
    return {row["ticket_id"]: row for row in response.json()["items"]}


async def histories(admin: httpx.AsyncClient, visits: Sequence[Visit], concurrency: int) -> dict[str, int]:
    """How many CheckedIn events each ticket's history (dispatch's log, via the auditor's API) holds."""
    counts: dict[str, int] = {}

    def count(visit: Visit) -> Callable[[], Awaitable[None]]:
        async def job() -> None:
            response = await admin.get(f"/api/v1/audit/dispatch/streams/ticket-{visit.ticket_id}")
            if response.status_code != 200:
                raise BenchError(f"history of {visit.ticket_id}: {response.status_code} {response.text}")
            counts[visit.ticket_id] = [e["type"] for e in response.json()["events"]].count("private.CheckedIn")

        return job

    await bounded(concurrency, [count(visit) for visit in visits])
    return counts


@dataclass
class Report:
    plan: Plan
    bare: list[Phase]
    gateway: Phase
    visible_at: float  # when the board first showed all of (1)'s check-ins
    sightings: list[Sighting]
    check_ins: dict[str, int]  # CheckedIn events in each ticket's history
    setup_seconds: float

    @property
    def best_bare(self) -> Phase:
        return max(self.bare, key=lambda phase: phase.rate)

    @property
    def end_to_end_rate(self) -> float:
        return self.gateway.count / max(self.visible_at - self.gateway.started, 1e-9)


async def measure(system: System, plan: Plan, options: Options) -> Report:
    started = time.perf_counter()
    tokens = {ADMIN: await sign_in(system.gateway_url, ADMIN)}
    for technician in plan.technicians:  # one at a time: the gateway verifies passwords on its loop
        tokens[technician] = await sign_in(system.gateway_url, technician)
    crew = [tokens[t] for t in plan.crew]
    async with client(system.gateway_url, tokens[ADMIN]) as admin:
        await set_up(admin, plan, options.concurrency)
        setup_seconds = time.perf_counter() - started
        print(f"set up over HTTP in {setup_seconds:.1f} s: {len(plan.tickets)} tickets opened, escalated and "
              f"assigned, {len(plan.technicians)} technicians, all on the board", flush=True)
        print("\n(1) throughput, C clients, closed loop", flush=True)
        bare = [await bare_phase(system, plan, crew, "bare, before")]
        report_phase(bare[0])
        async with clients(system.gateway_url, crew) as http:
            await drive(system, "warm-up", http, plan.lanes(plan.warmup), stored)
            gateway = await drive(system, "gateway", http, plan.lanes(plan.visits), stored)
        report_phase(gateway)
        visible_at = await until_visible(admin, plan.visits)
        print(f"  the board showed all {gateway.count} check-ins {ms(visible_at - gateway.finished)} ms after the "
              f"last answer ({ms(visible_at - gateway.started)} ms after the first send; polled back to back, "
              "one poll pages the whole board)", flush=True)
        bare.append(await bare_phase(system, plan, crew, "bare, after"))
        report_phase(bare[1])
        print(f"\n(2) visibility: {len(plan.samples)} check-ins one at a time, the phone's list polled every "
              f"{POLL_PAUSE * 1000:g} ms + a round trip; each visit completed before the next", flush=True)
        async with client(system.gateway_url, tokens[PROBE]) as probe:
            seen = await sightings(probe, plan.samples)
        check_ins = await histories(admin, plan.tickets, options.concurrency)
    return Report(plan, bare, gateway, visible_at, seen, check_ins, setup_seconds)


# -- printing ------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f}"


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest rank: the smallest value with at least q of the values at or below it."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(max(math.ceil(q * len(ordered)) - 1, 0), len(ordered) - 1)]


def report_phase(phase: Phase) -> None:
    lat = phase.latencies
    print(f"  {phase.label}: {phase.count} in {phase.finished - phase.started:.2f} s = {phase.rate:,.0f}/s, "
          f"p50 {ms(percentile(lat, 0.5))} ms, p99 {ms(percentile(lat, 0.99))} ms"
          + (f", {phase.retries} retried" if phase.retries else ""), flush=True)


def cpu_line(phase: Phase) -> str:
    wall = max(phase.finished - phase.started, 1e-9)
    parts = [f"{name} {seconds:.2f} s ({seconds / max(phase.count, 1) * 1000:.2f} ms/req)"
             for name, seconds in sorted(phase.cpu.items(), key=lambda item: -item[1]) if seconds >= 0.005]
    total = sum(phase.cpu.values())
    return (f"  {phase.label}: {', '.join(parts)}; total {total:.2f} CPU-s in {wall:.2f} s wall "
            f"= {total / wall:.2f} of {os.cpu_count()} CPUs")


def latency_table(report: Report) -> str:
    rows = [(f"{phase.label}: HTTP answer", phase.latencies) for phase in report.bare]
    rows.append(("gateway check-in: HTTP answer (stored in the log)", report.gateway.latencies))
    rows.append(("(2) one at a time: HTTP answer", [s.shot.latency for s in report.sightings]))
    rows.append(("(2) on the board, from the send", [s.from_send for s in report.sightings]))
    rows.append(("(2) on the board, from the answer", [s.from_answer for s in report.sightings]))
    rows.append(("(2) one poll of GET /me/visits", [p for s in report.sightings for p in s.polls]))
    header = ("latency (ms)", "n", "p50", "p99", "max")
    cells = [header, *((label, str(len(v)), ms(percentile(v, 0.5)), ms(percentile(v, 0.99)),
                        ms(max(v, default=math.nan))) for label, v in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
             for row in cells]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


NOTES = """
rows:
  answered: N / (last answer - first send) in (1); an answer means dispatch appended CheckedIn to its log.
  end to end: N / (board showed all N - first send); the board is dispatch's ticket_board read model, fed
    by the relay (log -> JetStream) and a tracking consumer; polled only after the last answer.
  baseline: the bare app's rate over the same N requests, same clients and concurrency; the faster of its
    two runs (before and after (1)), so the ratio errs low.
  (2) latencies: one check-in at a time on an idle system (each visit then completed and gone from the
    list before the next); "on the board" is the end of the first poll of GET /api/v1/me/visits that
    shows checked_in_at: late by at most the poll in flight, the pause and one more poll.
  CPU: user + system time of each process during the phase (/proc); "clients" is this process."""


def summary(report: Report) -> None:
    bare = report.best_bare
    baseline = f"{BASELINE} ({bare.label})"
    results = [
        Result("check-in answered by the gateway (stored in the log)", report.gateway.rate, baseline, bare.rate),
        Result("check-in visible on the board (end to end)", report.end_to_end_rate, baseline, bare.rate),
    ]
    print()
    print(table(results))
    print()
    print(latency_table(report))
    print("\nCPU during each phase (per process, per request):")
    for phase in (*report.bare, report.gateway):
        print(cpu_line(phase))
    once = sum(1 for count in report.check_ins.values() if count == 1)
    wrong = {t: c for t, c in report.check_ins.items() if c != 1}
    print(f"\nconsistency: {once} of {len(report.plan.tickets)} tickets hold exactly one CheckedIn in dispatch's log"
          + (f"; NOT: {wrong}" if wrong else ""))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average at the end: {load} on {os.cpu_count()} CPUs shared with other work")
    print(NOTES)


def header(options: Options, plan: Plan) -> None:
    nats_server = subprocess.run([str(server_binary()), "--version"], check=False, capture_output=True, text=True)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"Weibao gateway benchmark: {os.cpu_count()} CPUs (load average {load}; shared with other work, and the "
          f"clients run on them too), Python {platform.python_version()}, FastAPI {version('fastapi')}, "
          f"uvicorn {version('uvicorn')} (h11, asyncio loop), httpx {version('httpx')}, "
          f"pydantic {version('pydantic')}, {nats_server.stdout.strip()}, "
          + (f"PostgreSQL at {options.database_url} (its server's CPU is not in the CPU lines)"
             if options.database_url else f"SQLite {sqlite3.sqlite_version}"))
    print(f"check-ins: {len(plan.visits)} measured (each its own ticket), {len(plan.warmup)} warm-up, "
          f"{len(plan.samples)} in the visibility sample; clients: {len(plan.crew)}, each its own technician's token; "
          f"dispatch processes: {options.dispatch_replicas}")
    print(f"logging: WEIBAO_LOG_LEVEL={options.log_level} in every process (uvicorn's access log off below INFO)")
    print("figures only, nothing asserts on time; target: the gateway >= 50% of the bare endpoint\n", flush=True)


async def run(options: Options, tmp: Path) -> Report:
    """Start the system in `tmp`, set up, measure, verify, print; stop everything."""
    plan = make_plan(options)
    header(options, plan)
    system = await start_system(tmp, options, plan)
    try:
        report = await measure(system, plan, options)
    finally:
        await stop_system(system, options)
    summary(report)
    return report


# -- the bare app (a subprocess: python -m bench.gateway --serve-bare) ----------------------

BARE_CHECK = allow(*DISPATCH, "technician")  # whom the gateway's check-in route admits


async def bare_check_in(ticket_id: str, body: Presence, principal: Annotated[Principal, Depends(BARE_CHECK)],
                        key: IdempotencyKey = None) -> dict[str, Any]:
    return BARE_ANSWER


async def bare_health() -> dict[str, str]:
    return {"status": "ok"}


def bare_app(users: Path, secret: str) -> FastAPI:
    """The gateway's check-in route without the gateway: same body model, same token check."""
    app = FastAPI(title="bare check-in")
    app.state.tokens = Tokens(secret, UserBook(users))
    errors.install(app)
    app.add_api_route("/api/v1/tickets/{ticket_id}/check-in", bare_check_in, methods=["POST"])
    app.add_api_route("/healthz", bare_health, methods=["GET"])
    return app


def serve_bare() -> None:
    """As weibao.gateway.__main__ serves the gateway: same uvicorn settings."""
    configure()
    users = default_path()
    uvicorn.run(
        bare_app(users, secret_from(users.parent / "jwt-secret")),
        host=os.environ.get("WEIBAO_HTTP_HOST", "127.0.0.1"),
        port=int(os.environ.get("WEIBAO_HTTP_PORT", "8001")),
        log_level=os.environ.get("WEIBAO_LOG_LEVEL", "info").lower(),
        proxy_headers=True,
    )


# -- the command ------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.gateway", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--visits", type=int, default=300, help="check-ins measured in (1) (default 300)")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--sample", type=int, default=100,
                        help=f"check-ins of the visibility phase (2) (default 100, at most {MAX_SAMPLE})")
    parser.add_argument("--warmup", type=int, help="warm-up requests before each phase (default 2 x concurrency)")
    parser.add_argument("--database-url", help="PostgreSQL for the services (a schema each, dropped at the end); "
                                               "default: a SQLite file each")
    parser.add_argument("--log-level", default="WARNING", help="WEIBAO_LOG_LEVEL of every process (default WARNING)")
    parser.add_argument("--dispatch-replicas", type=int, default=1,
                        help="dispatch processes sharing its database and requests (default 1)")
    parser.add_argument("--serve-bare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not (1 <= args.sample <= MAX_SAMPLE) or args.visits < 1 or args.concurrency < 1:
        parser.error(f"--visits and --concurrency at least 1, --sample from 1 to {MAX_SAMPLE}")
    return args


def main() -> None:
    args = parse_args()
    if args.serve_bare:
        serve_bare()
        return
    os.environ["WEIBAO_LOG_LEVEL"] = args.log_level
    configure(level=args.log_level)
    options = Options(args.visits, args.concurrency, args.sample, args.warmup, args.database_url, args.log_level,
                      args.dispatch_replicas)
    with tempfile.TemporaryDirectory(prefix="weibao-bench-gateway-") as name:
        asyncio.run(run(options, Path(name)))


if __name__ == "__main__":
    main()
