"""The demo data a first `weibao up` loads: a living board for a first-time user.

Seven customers in six Chinese cities, with their sites at real coordinates; the five
seed agreements signed from their templates (each template's `[example]` signature), one
of them paid up after its free year (C1, C2), plus a second CRM customer in its free
year and a third whose free year ended unpaid (its visits are billable, B3); eleven
technicians with skills and home bases in those cities, one on leave; and a week of
requests in every state: in triage, resolved by phone, waiting on the customer,
escalated and waiting for a technician, assigned, accepted, on site, checked out and
completed with work time and expenses (so billing has draft invoice lines), some of them
close to their deadline.

Everything goes through the services' NATS request/reply subjects, as the console's
commands do (the runtime imports no service). Every command carries a fixed
`command_id` and every phone report a fixed key, so loading again stores nothing new: a
service answers a command id it has seen with what it stored then. Requests are opened
with `received_at` in the past week, so deadlines count from when the customer called.

The demo users (one per role, and one per technician) are written to the gateway's
users file with argon2 hashes; their passwords are printed at start.

The world itself is data: demo_data/*.toml beside this module (offices, customers and
their sites, agreements, technicians, requests, users, and the pulse's calls), read once
on import. This module
is what turns it into commands: dates relative to the day of loading, the fee paid, the
order of the load, a request taken as far as its stage, the phone's story."""

from __future__ import annotations

import asyncio
import json
import time
import tomllib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args

from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from weibao.shared import identities
from weibao.shared.client import Client as ServicesClient
from weibao.shared.client import Unanswered
from weibao.shared.clock import CHINA
from weibao.shared.dates import add_months
from weibao.shared.errors import Rejected
from weibao.shared.geo import distance_km
from weibao.shared.service import connect
from weibao.shared.settings import environment
from weibao.shared.streams import SERVICES, stream_name
from weibao.shared.users import Role, User, hash_password, load_users, save_users

MARKER = "demo.loaded"  # in the data folder: the demo was loaded once, never again on its own
USERS_NOTE = "demo-users.txt"  # in the data folder: the demo users and passwords, as first written


class DemoError(RuntimeError):
    """The demo could not be loaded (a service silent, or a refusal the demo cannot skip)."""


# -- the demo's shapes ------------------------------------------------------------------


@dataclass(frozen=True)
class DemoUser:
    username: str
    password: str
    role: Role
    display_name: str
    technician_id: str | None = None

    @property
    def actor(self) -> str:
        """How the gateway names this user in the audit trail (`role:username`)."""
        return f"{self.role}:{self.username}"


@dataclass(frozen=True)
class Office:
    name: str
    city_code: str
    latitude: float
    longitude: float

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "city_code": self.city_code, "latitude": self.latitude,
                "longitude": self.longitude}


@dataclass(frozen=True)
class Site:
    site_id: str
    name: str
    address: str
    latitude: float
    longitude: float

    def as_dict(self) -> dict[str, Any]:
        return {"site_id": self.site_id, "name": self.name, "address": self.address, "latitude": self.latitude,
                "longitude": self.longitude}


@dataclass(frozen=True)
class Customer:
    customer_id: str
    name: str
    contact: tuple[str, str]
    sites: tuple[Site, ...]


@dataclass(frozen=True)
class Agreement:
    agreement_id: str
    customer_id: str
    template_id: str
    parameters: Mapping[str, Any]
    go_live_months_ago: int  # relative to the day of loading: some free (C1), some paid (C2), one lapsed
    office: Office
    site_ids: tuple[str, ...]
    paid_years: int = 0  # years of maintenance paid after the free first year (C2)
    days_earlier: int = 0  # and this many days before that


@dataclass(frozen=True)
class Technician:
    technician_id: str
    username: str
    name: str
    skills: tuple[str, ...]
    home: tuple[float, float]
    office: Office
    shift: tuple[str, str] = ("09:00", "18:00")
    capacity: int = 5
    leave_days: int = 0  # on leave from the day of loading, for this many days


Stage = Literal["triage", "remote", "waiting", "escalated", "assigned", "accepted", "on_site", "checked_out",
                "completed"]
STAGES: tuple[Stage, ...] = ("triage", "remote", "waiting", "escalated", "assigned", "accepted", "on_site",
                             "checked_out", "completed")
WorkKind = Literal["hardware", "network", "software"]
ExpenseKind = Literal["transport", "lodging", "meals", "travel"]


@dataclass(frozen=True)
class Work:
    kind: WorkKind
    hours: float


@dataclass(frozen=True)
class Expense:
    kind: ExpenseKind
    amount: str
    nights: int | None = None
    note: str = ""


@dataclass(frozen=True)
class Request:
    """A customer's request and how far it has come."""

    ticket_id: str
    site_id: str
    hours_ago: float  # when the customer called, before the load (at most a week)
    channel: str
    summary: str
    stage: Stage
    skill: str = "software:general"
    note: str = ""  # what triage said
    travel_hours: float = 1.0  # from the call to the check-in, in the story the phone tells
    work: tuple[Work, ...] = ()
    expenses: tuple[Expense, ...] = ()
    resolution: str = ""
    cause: str = "software_fault"  # issue 13: what the coverage is judged for (C3, C12, C17)
    priority: str = "normal"  # orders the board


# -- the demo's world: demo_data/*.toml, read once on import -------------------------------

# Package data beside this module: the wheel carries every file under shared/weibao
# (pyproject.toml's hatch `packages`), so an installed weibao reads the same files as a
# checkout does.
DATA = Path(__file__).resolve().parent / "demo_data"

_T = TypeVar("_T")


def load_data(name: str, build: Callable[[dict[str, Any]], _T]) -> _T:
    """Read demo_data/<name>.toml and build the demo's objects from it. Rows are passed to
    the dataclasses as keywords, so an unknown or missing key fails here, naming the file,
    not later as a command the services refuse."""
    path = DATA / f"{name}.toml"
    try:
        with path.open("rb") as file:
            return build(tomllib.load(file))
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as error:
        raise DemoError(f"demo data {path}: {error!r}") from error


def _exactly(table: Mapping[str, Any], *keys: str) -> tuple[Any, ...]:
    """The values of a table that must hold these keys and no others, in this order."""
    if set(table) != set(keys):
        raise ValueError(f"expected the keys {', '.join(keys)}; found {', '.join(table)}")
    return tuple(table[key] for key in keys)


def one_of(value: Any, choices: Any) -> Any:
    """`value`, when the Literal type `choices` allows it (TOML gives plain strings)."""
    if value not in (allowed := get_args(choices)):
        raise ValueError(f"{value!r} is not one of {', '.join(allowed)}")
    return value


def _customers_from(data: dict[str, Any]) -> tuple[tuple[Customer, ...], tuple[str, Site]]:
    rows, last = _exactly(data, "customers", "last_site")
    customers = tuple(Customer(**{**row, "contact": _exactly(row["contact"], "name", "phone"),
                                  "sites": tuple(Site(**site) for site in row["sites"])}) for row in rows)
    customer_id, site = _exactly(last, "customer_id", "site")
    return customers, (customer_id, Site(**site))


def _agreements_from(data: dict[str, Any]) -> tuple[Agreement, ...]:
    examples, rows = _exactly(data, "examples", "agreements")

    def agreement(row: dict[str, Any]) -> Agreement:
        # Signed with its template's example (when the data holds one), its own parameters over it.
        parameters = {**examples.get(row["template_id"], {}), **row.get("parameters", {})}
        return Agreement(**{**row, "parameters": parameters, "office": OFFICES[row["office"]],
                            "site_ids": tuple(row["site_ids"])})

    return tuple(agreement(row) for row in rows)


def _technicians_from(data: dict[str, Any]) -> tuple[Technician, ...]:
    def technician(row: dict[str, Any]) -> Technician:
        shift = {"shift": _exactly(row["shift"], "starts", "ends")} if "shift" in row else {}
        return Technician(**{**row, "skills": tuple(row["skills"]), "office": OFFICES[row["office"]],
                             "home": _exactly(row["home"], "latitude", "longitude"), **shift})

    (rows,) = _exactly(data, "technicians")
    return tuple(technician(row) for row in rows)


def _requests_from(data: dict[str, Any]) -> tuple[Request, ...]:
    (rows,) = _exactly(data, "requests")
    return tuple(Request(**{
        **row, "stage": one_of(row["stage"], Stage),
        "work": tuple(Work(**{**w, "kind": one_of(w["kind"], WorkKind)}) for w in row.get("work", ())),
        "expenses": tuple(Expense(**{**e, "kind": one_of(e["kind"], ExpenseKind)}) for e in row.get("expenses", ())),
    }) for row in rows)


def _staff_from(data: dict[str, Any]) -> tuple[DemoUser, ...]:
    (rows,) = _exactly(data, "staff")
    return tuple(DemoUser(**{**row, "role": one_of(row["role"], Role)}) for row in rows)


OFFICES: dict[str, Office] = load_data("offices", lambda data: {key: Office(**row) for key, row in data.items()})
# LAST_SITE is added after every agreement is signed: when dispatch knows this site, it has
# read every coverage message before it (a consumer applies contracts' stream in order).
CUSTOMERS, LAST_SITE = load_data("customers", _customers_from)
AGREEMENTS: tuple[Agreement, ...] = load_data("agreements", _agreements_from)
TECHNICIANS: tuple[Technician, ...] = load_data("technicians", _technicians_from)
REQUESTS: tuple[Request, ...] = load_data("requests", _requests_from)
STAFF: tuple[DemoUser, ...] = load_data("users", _staff_from)
# Every technician signs in as themselves: their phone's reports carry their name.
DEMO_USERS: tuple[DemoUser, ...] = (
    *STAFF,
    *(DemoUser(t.username, f"{t.username}123", "technician", f"工程师 {t.name}", t.technician_id)
      for t in TECHNICIANS),
)


def _staff_actor(role: Role) -> str:
    return next(u.actor for u in STAFF if u.role == role)


_DISPATCHER = _staff_actor("dispatcher")
_BILLING = _staff_actor("billing")
_ADMIN = _staff_actor("admin")
_TECH_ACTOR = {u.technician_id: u.actor for u in DEMO_USERS if u.technician_id}


def write_demo_users(path: Path) -> list[DemoUser]:
    """Add the demo users to the users file (argon2 hashes), keeping anyone already in it;
    returns the demo users written (a name already taken is left alone)."""
    users = load_users(path)
    written = [u for u in DEMO_USERS if u.username not in users]
    for u in written:
        users[u.username] = User(u.username, u.role, hash_password(u.password), u.display_name, u.technician_id)
    save_users(path, users)
    return written


def users_table(users: Iterable[DemoUser]) -> list[str]:
    return [f"  {u.username:<10} {u.password:<13} {u.role:<11} {u.display_name}" for u in users]


def users_table_header() -> list[str]:
    return [f"  {'user':<10} {'password':<13} {'role':<11} name"]


# -- the load ---------------------------------------------------------------------------


@dataclass
class DemoReport:
    customers: int = 0
    sites: int = 0
    agreements: int = 0
    payments: int = 0
    technicians: int = 0
    tickets: dict[str, str] = field(default_factory=dict)  # ticket id -> status, as dispatch has it
    at_risk: list[str] = field(default_factory=list)  # assigned knowing the deadline cannot be met (D4)
    skipped: list[str] = field(default_factory=list)  # requests a refusal stopped, with the reason
    received_at: str = "not used"  # "honoured", "ignored" or "refused" by dispatch
    new_events: dict[str, int] = field(default_factory=dict)  # events this load stored, per service
    invoices: dict[str, int] = field(default_factory=dict)  # draft invoice id -> lines
    commands: int = 0
    seconds: float = 0.0

    @property
    def by_status(self) -> dict[str, int]:
        return dict(Counter(self.tickets.values()))

    @property
    def invoice_lines(self) -> int:
        return sum(self.invoices.values())

    def lines(self) -> list[str]:
        states = ", ".join(f"{n} {status}" for status, n in sorted(self.by_status.items()))
        stored = ", ".join(f"{service} {n}" for service, n in self.new_events.items())
        text = [
            f"Demo data: {self.customers} customers with {self.sites} sites, {self.agreements} agreements "
            f"({self.payments} paid up), {self.technicians} technicians",
            f"  {len(self.tickets)} requests over the past week: {states}",
            f"  {len(self.at_risk)} assigned at risk; {self.invoice_lines} draft invoice lines "
            f"on {len(self.invoices)} invoices",
            f"  {self.commands} commands in {self.seconds:.1f}s; new events: {stored or 'none'}"
            f"; received_at {self.received_at}",
        ]
        if self.skipped:
            text.append(f"  skipped {len(self.skipped)}: " + "; ".join(self.skipped))
        return text


@dataclass
class _Client:
    nc: NATS
    report: DemoReport
    base: dict[str, int]
    timeout: float = 15.0
    seen: set[tuple[str, int]] = field(default_factory=set)
    # The kit's client, signed with the CLI's key (WEIBAO_KEYS): the services believe the
    # demo's actors only because the CLI vouches for them.
    services: ServicesClient | None = None

    def __post_init__(self) -> None:
        if self.services is None:
            self.services = ServicesClient.from_env(self.nc, "cli", timeout=self.timeout)

    async def ask(self, subject: str, body: Mapping[str, Any], actor: str = _ADMIN,
                  attempts: int = 4) -> Mapping[str, Any]:
        """One request; retried on silence (commands carry their id, so a retry is harmless)."""
        assert self.services is not None
        for attempt in range(attempts):
            try:
                # Signed afresh on each attempt: a retry is issued now, not when the first left.
                return await self.services.answer(f"weibao.{subject}", body, actor=actor,
                                                  correlation_id=f"demo:{body.get('command_id') or subject}")
            except Unanswered as error:
                if attempt == attempts - 1:
                    raise DemoError(f"weibao.{subject} did not answer: {error}") from error
                await asyncio.sleep(0.5 * 2**attempt)
        raise DemoError(f"weibao.{subject}: no attempt made")

    async def do(self, subject: str, command_id: str, body: Mapping[str, Any],
                 actor: str = _ADMIN) -> list[Mapping[str, Any]]:
        """A command: its events, or Rejected with the service's refusal."""
        answer = await self.ask(subject, {**body, "command_id": command_id}, actor)
        self.report.commands += 1
        if not answer.get("ok"):
            error = answer.get("error") or {}
            raise Rejected(str(error.get("code", "")), str(error.get("field", "")), str(error.get("message", "")))
        events: list[Mapping[str, Any]] = list((answer.get("result") or {}).get("events") or [])
        service = subject.split(".", 1)[0]
        for event in events:
            position = int(event.get("position", 0))
            if position > self.base.get(service, 0) and (service, position) not in self.seen:
                self.seen.add((service, position))
                self.report.new_events[service] = self.report.new_events.get(service, 0) + 1
        return events


async def health(nc: NATS, service: str, timeout: float = 2.0) -> dict[str, Any]:
    reply = await nc.request(f"weibao.{service}.health", b"", timeout=timeout)
    found: dict[str, Any] = json.loads(reply.data)
    return found


async def wait_for_services(nc: NATS, services: Sequence[str] = SERVICES, timeout: float = 60.0) -> dict[str, int]:
    """Until every service answers its health request; their log positions."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return {s: int((await health(nc, s))["log_position"]) for s in services}
        except (NatsTimeout, NoRespondersError, KeyError, ValueError) as error:
            if time.monotonic() > deadline:
                raise DemoError(f"the services did not answer within {timeout:.0f}s: {error!r}") from error
            await asyncio.sleep(0.3)


async def settled(nc: NATS, services: Sequence[str] = SERVICES) -> bool:
    """Whether every service has published all it stored and every durable consumer of
    their streams has applied (acked) all of it: read models and policies caught up."""
    js = nc.jetstream()
    for service in services:
        state = await health(nc, service)
        if int(state.get("relayed_position", -1)) < int(state["log_position"]):
            return False
        for consumer in await js.consumers_info(stream_name(service)):
            if consumer.config.durable_name and (consumer.num_pending or consumer.num_ack_pending):
                return False
    return True


async def wait_settled(nc: NATS, services: Sequence[str] = SERVICES, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if await settled(nc, services):
                return True
        except NatsError:  # a service or stream not there yet: wait on
            pass
        await asyncio.sleep(0.2)
    return False


def iso(moment: datetime) -> str:
    """A time as the console and the phone send it: Beijing time, to the second."""
    return moment.astimezone(CHINA).isoformat(timespec="seconds")


def _site_of(site_id: str) -> Site:
    return next(s for s in (*(s for c in CUSTOMERS for s in c.sites), LAST_SITE[1]) if s.site_id == site_id)


def _customer_of(site_id: str) -> str:
    if site_id == LAST_SITE[1].site_id:
        return LAST_SITE[0]
    return next(c.customer_id for c in CUSTOMERS if any(s.site_id == site_id for s in c.sites))


async def load_demo(nc: NATS, *, now: datetime, timeout: float = 60.0) -> DemoReport:
    """Load the demo into the running services over `nc`; `now` is the services' clock
    (tickets are spread over the week before it). Loading again stores nothing new."""
    started = time.monotonic()
    report = DemoReport()
    base = await wait_for_services(nc, timeout=timeout)
    client = _Client(nc, report, base)
    today = now.astimezone(CHINA).date()

    await _contracts(client, today)
    await _technicians(client, today)
    await _wait_for_dispatch(client, timeout)
    for request in sorted(REQUESTS, key=lambda r: -r.hours_ago):
        await _request(client, request, now)

    await wait_settled(nc, timeout=timeout)
    await _collect(client, now)
    report.seconds = time.monotonic() - started
    return report


async def _contracts(client: _Client, today: date) -> None:
    report = client.report
    for customer in CUSTOMERS:
        await client.do("contracts.customer.register", f"demo:customer:{customer.customer_id}", {
            "customer_id": customer.customer_id, "name": customer.name,
            "contacts": [{"name": customer.contact[0], "phone": customer.contact[1]}],
            "sites": [s.as_dict() for s in customer.sites]})
        report.customers += 1
        report.sites += len(customer.sites)
    for agreement in AGREEMENTS:
        go_live = add_months(today, -agreement.go_live_months_ago) - timedelta(days=agreement.days_earlier)
        await client.do("contracts.sign", f"demo:sign:{agreement.agreement_id}", {
            "agreement_id": agreement.agreement_id, "customer_id": agreement.customer_id,
            "template_id": agreement.template_id, "parameters": dict(agreement.parameters),
            "go_live": go_live.isoformat(), "signed_on": (go_live - timedelta(days=21)).isoformat(),
            "office": agreement.office.as_dict(), "site_ids": list(agreement.site_ids)})
        report.agreements += 1
        for year in range(1, agreement.paid_years + 1):
            # rule C2: a year's fee, percent of the licence price, paid before the period starts
            period_from = add_months(go_live, 12 * year)
            fee = Decimal(str(agreement.parameters["fee.percent"])) * Decimal(
                str(agreement.parameters["fee.licence_price"])) / 100
            await client.do("contracts.pay", f"demo:pay:{agreement.agreement_id}:{year}", {
                "agreement_id": agreement.agreement_id, "payment_id": f"{agreement.agreement_id}-fee-{year}",
                "amount": f"{fee:.2f}", "period_from": period_from.isoformat(),
                "period_to": (add_months(period_from, 12) - timedelta(days=1)).isoformat(),
                "paid_on": (period_from - timedelta(days=12)).isoformat()})
            report.payments += 1
        # What the daily assessment would find within the hour, now: fees due (B4), a lapse
        # (C1). The domain raises each once, so a second load's assessment stores nothing.
        await client.do("contracts.assess", f"demo:assess:{agreement.agreement_id}",
                        {"agreement_id": agreement.agreement_id, "today": today.isoformat()})
    customer_id, site = LAST_SITE
    await client.do("contracts.customer.add_site", f"demo:site:{site.site_id}",
                    {"customer_id": customer_id, **site.as_dict()})
    report.sites += 1


async def _technicians(client: _Client, today: date) -> None:
    for t in TECHNICIANS:
        await client.do("dispatch.technician.register", f"demo:technician:{t.technician_id}", {
            "technician_id": t.technician_id, "name": t.name, "skills": list(t.skills),
            "home": {"latitude": t.home[0], "longitude": t.home[1]}, "office_city_code": t.office.city_code,
            "shift": {"starts": t.shift[0], "ends": t.shift[1]}, "capacity_per_day": t.capacity}, _DISPATCHER)
        client.report.technicians += 1
        if t.leave_days:
            # The command id names the loading day's leave, once: a later load adds no second leave.
            await client.do("dispatch.technician.time_off", f"demo:leave:{t.technician_id}", {
                "technician_id": t.technician_id, "first_day": today.isoformat(),
                "last_day": (today + timedelta(days=t.leave_days - 1)).isoformat(), "reason": "年假"},
                _DISPATCHER)


async def _wait_for_dispatch(client: _Client, timeout: float) -> None:
    """Coverage reaches dispatch from contracts' stream, technicians from its own: wait
    until the last site added is known there (so is every agreement before it) and the
    board lists every technician."""
    await wait_settled(client.nc, timeout=timeout)
    # Refused whatever, so it stores nothing: a well-formed request (dispatch decodes the
    # shape first) for the last site, received in the future, which rule D1 refuses only
    # after the site is looked up; while dispatch does not know the site, it names site_id.
    probe = {"ticket_id": "demo-probe", "site_id": LAST_SITE[1].site_id, "summary": "probe",
             "received_at": "2100-01-01T00:00:00+08:00"}
    wanted = {t.technician_id for t in TECHNICIANS}
    deadline = time.monotonic() + timeout
    while True:
        answer = await client.ask("dispatch.ticket.open", probe, _DISPATCHER)
        site_known = not answer.get("ok") and (answer.get("error") or {}).get("field") != "site_id"
        board = await client.ask("dispatch.technicians", {}, _DISPATCHER)
        listed = {row.get("technician_id") for row in board.get("result") or []}
        if site_known and wanted <= listed:
            return
        if time.monotonic() > deadline:
            raise DemoError(f"dispatch has not caught up with contracts within {timeout:.0f}s "
                            f"(site known: {site_known}, technicians: {len(listed & wanted)}/{len(wanted)})")
        await asyncio.sleep(0.2)


@dataclass(frozen=True)
class _Point:
    latitude: float
    longitude: float


def _nearest(request: Request) -> Technician:
    """Who a dispatcher sends when the rule finds nobody on shift: the nearest with the skill."""
    site = _Point(*_coordinates(request.site_id))
    able = [t for t in TECHNICIANS if request.skill in t.skills and not t.leave_days]
    return min(able, key=lambda t: (distance_km(_Point(*t.home), site), t.technician_id))


def _coordinates(site_id: str) -> tuple[float, float]:
    site = _site_of(site_id)
    return site.latitude, site.longitude


async def _request(client: _Client, request: Request, now: datetime) -> None:
    """Open one request and take it as far as its stage; a refusal skips the rest of it."""
    try:
        await _advance(client, request, now)
    except Rejected as error:
        client.report.skipped.append(f"{request.ticket_id}: {error}")


async def _advance(client: _Client, request: Request, now: datetime) -> None:
    tid = request.ticket_id
    stage = STAGES.index(request.stage)
    received = (now - timedelta(hours=request.hours_ago)).replace(second=0, microsecond=0)
    await _open(client, request, received)
    if request.stage == "triage":
        return
    if request.stage == "remote":
        await client.do("dispatch.ticket.triage", f"demo:{tid}:triage",
                        {"ticket_id": tid, "outcome": "remote", "note": request.note}, _DISPATCHER)
        return
    if request.stage == "waiting":
        await client.do("dispatch.ticket.wait", f"demo:{tid}:wait", {"ticket_id": tid, "reason": request.note},
                        _DISPATCHER)
        return
    await client.do("dispatch.ticket.triage", f"demo:{tid}:triage",
                    {"ticket_id": tid, "outcome": "escalate", "note": request.note or "电话无法解决，需上门"},
                    _DISPATCHER)
    if stage <= STAGES.index("escalated"):
        return
    technician, assigned_at = await _assign(client, request)
    if stage <= STAGES.index("assigned"):
        return
    actor = _TECH_ACTOR.get(technician, f"technician:{technician}")
    await client.do("dispatch.ticket.accept", f"demo:{tid}:accept", {"ticket_id": tid, "technician_id": technician},
                    actor)
    if stage <= STAGES.index("accepted"):
        return

    # The phone's story: on site `travel_hours` after the call, working, then uploading.
    # Device times never run ahead of the server's clock, nor before the assignment reached
    # the phone (D5: out of those bounds a time is flagged): the demo assigns at load time,
    # so a story older than that is told from the assignment on.
    latest = now - timedelta(minutes=2)
    arrived = min(received + timedelta(hours=request.travel_hours), latest)
    site = _site_of(request.site_id)
    here = {"latitude": round(site.latitude + 0.0002, 6), "longitude": round(site.longitude - 0.0002, 6)}

    async def report(what: str, n: int, at: datetime, **fields: Any) -> None:
        await client.do(f"dispatch.ticket.{what}", f"demo:{tid}:{what}:{n}", {
            "ticket_id": tid, "technician_id": technician, "key": f"{tid}-{what}-{n}",
            "device_time": iso(max(min(at, latest), assigned_at)), **fields}, actor)

    await report("check_in", 1, arrived, position=here, accuracy_m=12)
    if stage <= STAGES.index("on_site"):
        return
    at = arrived + timedelta(minutes=10)
    for n, work in enumerate(request.work, 1):
        ended = min(at + timedelta(hours=work.hours), latest)
        begun = ended - timedelta(hours=work.hours)
        await report("work", n, ended, kind=work.kind, started=iso(begun), ended=iso(ended))
        at = ended
    for n, expense in enumerate(request.expenses, 1):
        fields: dict[str, Any] = {"kind": expense.kind, "amount": expense.amount,
                                  "receipt_no": f"FP-{tid.replace('-', '')}-{n}",
                                  "receipt_date": arrived.astimezone(CHINA).date().isoformat(), "note": expense.note}
        if expense.nights is not None:
            fields["nights"] = expense.nights
        await report("expense", n, at, **fields)
    await report("check_out", 1, at + timedelta(minutes=5), position=here, accuracy_m=15)
    if stage <= STAGES.index("checked_out"):
        return
    await client.do("dispatch.ticket.complete", f"demo:{tid}:complete",
                    {"ticket_id": tid, "technician_id": technician, "resolution": request.resolution}, actor)


async def _open(client: _Client, request: Request, received: datetime) -> None:
    body = {"ticket_id": request.ticket_id, "site_id": request.site_id, "channel": request.channel,
            "summary": request.summary, "skill": request.skill, "cause": request.cause,
            "priority": request.priority}
    command_id = f"demo:{request.ticket_id}:open"
    try:
        events = await client.do("dispatch.ticket.open", command_id, {**body, "received_at": received.isoformat()},
                                 _DISPATCHER)
    except Rejected as error:
        if error.field != "received_at":
            raise
        # A dispatch without backdating (or a clock that disagrees): opened as of now.
        client.report.received_at = "refused"
        events = await client.do("dispatch.ticket.open", command_id, body, _DISPATCHER)
    else:
        opened = next((e for e in events if str(e.get("type", "")).endswith("TicketOpened")), None)
        when = (opened or {}).get("data", {}).get("opened_at")
        honoured = when is not None and datetime.fromisoformat(when) == received
        if client.report.received_at != "refused":
            client.report.received_at = "honoured" if honoured else "ignored"


async def _assign(client: _Client, request: Request, command_id: str | None = None) -> tuple[str, datetime]:
    """Rule D4 picks; when it finds nobody (everyone's shift is over: a load in the
    evening), the dispatcher sends the nearest technician and says why."""
    tid = request.ticket_id
    command_id = command_id or f"demo:{tid}:assign"
    try:
        events = await client.do("dispatch.ticket.assign", command_id, {"ticket_id": tid}, _DISPATCHER)
    except Rejected as error:
        if error.code != "nobody_available":
            raise
        chosen = _nearest(request)
        events = await client.do("dispatch.ticket.assign", command_id, {
            "ticket_id": tid, "technician_id": chosen.technician_id,
            "reason": "规则无人在班，调度员安排最近的工程师加班处理"}, _DISPATCHER)
    assigned = next(e for e in events if str(e.get("type", "")).endswith("VisitAssigned"))
    data = assigned.get("data") or {}
    if data.get("at_risk") and tid not in client.report.at_risk:
        client.report.at_risk.append(tid)
    return str(data["technician_id"]), datetime.fromisoformat(str(data["at"]))


async def _collect(client: _Client, now: datetime) -> None:
    """What the board and billing now hold, for the report (a silent query is left out:
    the data is in either way)."""
    months: set[str] = set()

    async def query(subject: str, body: Mapping[str, Any], actor: str) -> Mapping[str, Any]:
        try:
            answer = await client.ask(subject, body, actor, attempts=1)
        except DemoError:
            return {}
        return (answer.get("result") or {}) if answer.get("ok") else {}

    for request in REQUESTS:
        ticket = await query("dispatch.ticket", {"ticket_id": request.ticket_id}, _DISPATCHER)
        if ticket:
            client.report.tickets[request.ticket_id] = str(ticket.get("status", ""))
        if request.work or request.expenses:
            received = now - timedelta(hours=request.hours_ago)
            for moment in (received, received + timedelta(hours=request.travel_hours), now):
                months.add(f"{_customer_of(request.site_id)}-{moment.astimezone(CHINA):%Y-%m}")
    for invoice_id in sorted(months):
        if lines := (await query("billing.invoice", {"invoice_id": invoice_id}, _BILLING)).get("lines"):
            client.report.invoices[invoice_id] = len(lines)


# -- shared with the demo pulse (runtime/pulse.py): the same client, actors and places -----

Client = _Client
DISPATCHER = _DISPATCHER


def technician_actor(technician_id: str) -> str:
    """How a technician's own phone reports are signed (`technician:<username>`)."""
    return _TECH_ACTOR.get(technician_id, f"technician:{technician_id}")


def site_of(site_id: str) -> Site:
    return _site_of(site_id)


async def assign(client: _Client, request: Request, command_id: str) -> str:
    """D4 picks (or the dispatcher sends the nearest, saying why); the technician assigned."""
    technician, _ = await _assign(client, request, command_id)
    return technician


# -- the runtime's side: users file, marker, one call --------------------------------------


def users_path(data: Path) -> Path:
    """The gateway's users file: WEIBAO_USERS when set, else beside the data."""
    configured = environment().explicit("users")
    return Path(configured) if configured else data / "users.json"


def ensure_demo_users(data: Path) -> list[DemoUser] | None:
    """Write the demo users when there is no users file yet (and note their passwords
    beside the data, readable by the owner only); None when a users file exists."""
    path = users_path(data)
    if path.exists():
        return None
    written = write_demo_users(path)
    note = data / USERS_NOTE
    note.parent.mkdir(parents=True, exist_ok=True)
    note.write_text("\n".join(users_table(written)) + "\n", "utf-8")
    note.chmod(0o600)
    return written


def demo_users_note(data: Path) -> list[str] | None:
    note = data / USERS_NOTE
    return note.read_text("utf-8").splitlines() if note.exists() else None


async def load_and_mark(nats_url: str, data: Path, *, now: datetime, timeout: float = 120.0) -> DemoReport:
    """Connect, load, and leave the marker that says the demo is in."""
    # As the CLI identity (WEIBAO_NATS_SEED); a first connect that fails, fails (no retry forever).
    nc = await connect(nats_url, "weibao-demo", seed=identities.seed_for("cli"), max_reconnect_attempts=60,
                       reconnect_time_wait=2)
    try:
        report = await load_demo(nc, now=now, timeout=timeout)
    finally:
        await nc.drain()
    # Written even when some requests were skipped (the report says which): a later start
    # would only be refused the same way.
    (data / MARKER).write_text("\n".join(report.lines()) + "\n", "utf-8")
    return report
