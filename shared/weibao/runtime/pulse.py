"""The demo pulse: after the demo is in, the board keeps moving on its own.

`weibao up` runs it (when the data folder holds the demo and WEIBAO_DEMO_PULSE is not
"0"; its value is the seconds between steps, default 20). Every pulse takes ONE step of a
small scripted life, through the services' own NATS commands as the demo load does, so
the console's live board hears of each one: a customer calls about a demo site (phone,
C13) -> triage escalates it (D3), or every third call is resolved remotely -> D4 assigns
a technician (the nearest when the rule finds nobody) -> the technician accepts ->
checks in a few metres from the site (D5) -> logs work (D6) -> records an expense (D6) ->
checks out -> completes. At most three pulse tickets are in flight.

The planning is pure (`next_kind`, `plan`: which command comes next, from the tickets'
states as dispatch holds them); `Pulse` reads those states and sends the command. Ticket
ids are `SR-L<yyyymmddHHMM><n>`, Beijing time, checked unused; command ids are
`pulse:<ticket id>:<step>` and phone reports carry the key `<ticket id>-<step>-1`, so a
step retried (after a silence) stores once. A refusal is logged; the ticket is retried
next pulse (a concurrent change) or, refused three times, left as it is. The calls are
data: demo_data/calls.toml, read with the demo's loader."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections import Counter
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import structlog
from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError

from weibao.runtime import demo
from weibao.shared import identities
from weibao.shared.clock import CHINA, utc_now
from weibao.shared.errors import Rejected
from weibao.shared.service import connect

log = structlog.get_logger("weibao.pulse")

DEFAULT_INTERVAL = 20.0  # seconds between steps
MAX_IN_FLIGHT = 3
PREFIX = "SR-L"  # a pulse ticket: "L" for live
MAX_REFUSALS = 3  # refused this often (a concurrent change aside), a ticket is left as it is
MAX_STEPS = 30  # a ticket that has not finished after this many steps is left as it is (nine suffice)

Kind = Literal["open", "escalate", "remote", "assign", "accept", "check_in", "work", "expense", "check_out",
               "complete"]
WorkKind = Literal["hardware", "network", "software"]


@dataclass(frozen=True)
class Call:
    """A customer's call and the life the pulse gives it."""

    site_id: str
    summary: str
    skill: str
    note: str  # what triage says (D3)
    remote: bool = False  # resolved by phone or remotely, no visit (C13)
    work: WorkKind = "software"
    expense: tuple[str, str, str] = ("transport", "36.00", "出租车")  # kind, yuan, note (D6)
    resolution: str = ""


def _calls(table: Mapping[str, Any]) -> tuple[Call, ...]:
    """demo_data/calls.toml: the scripted calls (every third resolved remotely, D3)."""
    return tuple(Call(**{**row, "work": demo.one_of(row.get("work", "software"), WorkKind),
                         "expense": tuple(row.get("expense", Call.expense))})
                 for row in table["calls"])


CALLS: tuple[Call, ...] = demo.load_data("calls", _calls)


def call_for(summary: str) -> Call:
    """The script of a pulse ticket found on the board (after a restart), by its summary."""
    return next((c for c in CALLS if c.summary == summary), CALLS[0])


@dataclass(frozen=True)
class Tracked:
    """A pulse ticket as dispatch holds it."""

    ticket_id: str
    call: Call
    status: str = "none"  # dispatch's status; "none" until the open is stored
    technician_id: str | None = None
    worked: bool = False  # work logged (D6)
    spent: bool = False  # an expense recorded (D6)
    arrived: datetime | None = None  # the first check-in's device time (D5)


@dataclass(frozen=True)
class Step:
    kind: Kind
    ticket_id: str | None  # None: a new call (the edge picks its id)


def next_kind(ticket: Tracked) -> Kind | None:
    """The command that comes next for a pulse ticket; None once it is done."""
    match ticket.status:
        case "none":
            return "open"
        case "triage":
            return "remote" if ticket.call.remote else "escalate"
        case "awaiting_assignment":
            return "assign"
        case "assigned":
            return "accept"
        case "accepted":
            return "check_in"
        case "on_site":
            return "check_out" if ticket.worked and ticket.spent else "expense" if ticket.worked else "work"
        case "checked_out":
            return "complete"
    return None  # resolved, completed (or a status the pulse does not drive)


def in_flight(tickets: Sequence[Tracked]) -> list[Tracked]:
    return [t for t in tickets if next_kind(t) is not None]


def plan(tickets: Sequence[Tracked], turn: int, limit: int = MAX_IN_FLIGHT) -> Step | None:
    """The one step of this pulse: round the tickets in flight, a new call among them
    while fewer than `limit` are in flight."""
    candidates = [Step(kind, t.ticket_id) for t in tickets if (kind := next_kind(t)) is not None]
    if len(candidates) < limit:
        candidates.insert(0, Step("open", None))
    return candidates[turn % len(candidates)] if candidates else None


def interval(value: str | None) -> float | None:
    """WEIBAO_DEMO_PULSE: seconds between steps (unset or not a number: 20); "0" stops it."""
    if value is None or not value.strip():
        return DEFAULT_INTERVAL
    try:
        seconds = float(value)
    except ValueError:
        return DEFAULT_INTERVAL
    return seconds if seconds > 0 else None


# -- the edge: read the states, send the command -------------------------------------------


@dataclass(frozen=True)
class Taken:
    """A step taken: what, on which ticket as it stood, and whether the service took it."""

    step: Step
    ticket: Tracked
    refused: Rejected | None = None
    assigned: str | None = None  # the technician an assign step sent (D4)


class Pulse:
    """The pulse's memory: the tickets in flight (seeded from the board at the first step),
    the turn, the calls opened, refusals."""

    def __init__(self, nc: NATS, *, limit: int = MAX_IN_FLIGHT, timeout: float = 5.0) -> None:
        self.nc = nc
        self.limit = limit
        self.timeout = timeout
        self.tracked: dict[str, Call] = {}
        self.turn = 0
        self.opened = 0
        self.refusals: Counter[str] = Counter()
        self.steps: Counter[str] = Counter()
        self.seeded = False

    def client(self) -> demo.Client:
        return demo.Client(self.nc, demo.DemoReport(), {}, timeout=self.timeout)

    async def step(self) -> Taken | None:
        """Take one step; None when there is nothing to do."""
        client = self.client()
        if not self.seeded:
            await self._seed(client)
            self.seeded = True
        tickets = [await self._state(client, tid, call) for tid, call in self.tracked.items()]
        for ticket in tickets:
            if next_kind(ticket) is None:
                self._forget(ticket.ticket_id)
        chosen = plan(tickets, self.turn, self.limit)
        self.turn += 1
        if chosen is None:
            return None
        if chosen.ticket_id is None:
            call = CALLS[self.opened % len(CALLS)]
            self.opened += 1
            ticket_id = await self._new_id(client)
            self.tracked[ticket_id] = call
            chosen, ticket = Step("open", ticket_id), Tracked(ticket_id, call)
        else:
            ticket = next(t for t in tickets if t.ticket_id == chosen.ticket_id)
        taken = await self.execute(chosen, ticket)
        self._judge(taken)
        return taken

    async def execute(self, step: Step, ticket: Tracked) -> Taken:
        """Send the step's command (again: it stores nothing new); a refusal is answered, not raised."""
        try:
            assigned = await execute(self.client(), step, ticket, utc_now())
        except Rejected as error:
            return Taken(step, ticket, error)
        return Taken(step, ticket, assigned=assigned)

    def _judge(self, taken: Taken) -> None:
        ticket_id = taken.ticket.ticket_id
        self.steps[ticket_id] += 1
        error = taken.refused
        if error is None:
            log.info("pulse.step", ticket_id=ticket_id, step=taken.step.kind, site_id=taken.ticket.call.site_id,
                     technician_id=taken.assigned or taken.ticket.technician_id)
        elif error.code == "concurrency":
            log.info("pulse.retry", ticket_id=ticket_id, step=taken.step.kind, reason=str(error))
        else:
            self.refusals[ticket_id] += 1
            log.warning("pulse.refused", ticket_id=ticket_id, step=taken.step.kind, reason=str(error),
                        refusals=self.refusals[ticket_id])
            if taken.step.kind == "open" or self.refusals[ticket_id] >= MAX_REFUSALS:
                log.warning("pulse.left", ticket_id=ticket_id, status=taken.ticket.status)
                self._forget(ticket_id)
        if ticket_id in self.tracked and self.steps[ticket_id] >= MAX_STEPS:
            log.warning("pulse.left", ticket_id=ticket_id, status=taken.ticket.status, steps=self.steps[ticket_id])
            self._forget(ticket_id)

    def _forget(self, ticket_id: str) -> None:
        self.tracked.pop(ticket_id, None)
        self.refusals.pop(ticket_id, None)
        self.steps.pop(ticket_id, None)

    async def _seed(self, client: demo.Client) -> None:
        """The pulse tickets a previous run left open, from the board."""
        answer = await client.ask("dispatch.tickets", {"status": "open", "limit": 200}, demo.DISPATCHER)
        if not answer.get("ok"):
            raise demo.DemoError(f"dispatch.tickets: {answer.get('error')}")
        for item in (answer.get("result") or {}).get("items") or []:
            ticket_id = str(item.get("ticket_id", ""))
            if ticket_id.startswith(PREFIX):
                self.tracked.setdefault(ticket_id, call_for(str(item.get("summary", ""))))

    async def _state(self, client: demo.Client, ticket_id: str, call: Call) -> Tracked:
        answer = await client.ask("dispatch.ticket", {"ticket_id": ticket_id}, demo.DISPATCHER)
        if not answer.get("ok"):
            error = answer.get("error") or {}
            if error.get("code") == "not_found":
                return Tracked(ticket_id, call)  # its open has not been stored (yet)
            raise demo.DemoError(f"dispatch.ticket {ticket_id}: {error}")
        return tracked_from_view(ticket_id, call, answer.get("result") or {})

    async def _new_id(self, client: demo.Client) -> str:
        """`SR-L<yyyymmddHHMM><n>`, Beijing time: the first n no ticket has."""
        stamp = f"{PREFIX}{utc_now().astimezone(CHINA):%Y%m%d%H%M}"
        for n in itertools.count(1):
            ticket_id = f"{stamp}{n}"
            if ticket_id in self.tracked:
                continue
            answer = await client.ask("dispatch.ticket", {"ticket_id": ticket_id}, demo.DISPATCHER)
            if not answer.get("ok") and (answer.get("error") or {}).get("code") == "not_found":
                return ticket_id
        raise AssertionError("unreachable")


def tracked_from_view(ticket_id: str, call: Call, view: Mapping[str, Any]) -> Tracked:
    """A ticket as `weibao.dispatch.ticket` answers it."""
    first = view.get("first_check_in") or {}
    arrived = first.get("device_time")
    return Tracked(ticket_id, call, str(view.get("status", "none")), view.get("technician_id"),
                   bool(view.get("work")), bool(view.get("expenses")),
                   datetime.fromisoformat(arrived) if isinstance(arrived, str) else None)


async def execute(client: demo.Client, step: Step, ticket: Tracked, now: datetime) -> str | None:
    """One step's command, as the console (dispatcher) or the technician's phone sends it;
    for an assignment, the technician assigned."""
    tid, call = ticket.ticket_id, ticket.call
    command_id = f"pulse:{tid}:{step.kind}"
    match step.kind:
        case "open":
            await client.do("dispatch.ticket.open", command_id, {
                "ticket_id": tid, "site_id": call.site_id, "channel": "phone", "summary": call.summary,
                "skill": call.skill}, demo.DISPATCHER)
            return None
        case "escalate" | "remote":
            # rule D3: phone or remote triage first; a visit only when it escalates
            await client.do("dispatch.ticket.triage", f"pulse:{tid}:triage", {
                "ticket_id": tid, "outcome": step.kind, "note": call.note}, demo.DISPATCHER)
            return None
        case "assign":
            # rule D4 picks; the nearest with the skill when it finds nobody
            request = demo.Request(tid, call.site_id, 0, "phone", call.summary, "assigned", call.skill, call.note)
            return await demo.assign(client, request, command_id)
    technician = ticket.technician_id
    if technician is None:
        raise Rejected("conflict", "technician_id", "no technician assigned")
    actor = demo.technician_actor(technician)
    if step.kind == "accept":
        await client.do("dispatch.ticket.accept", command_id, {"ticket_id": tid, "technician_id": technician}, actor)
        return None
    if step.kind == "complete":
        await client.do("dispatch.ticket.complete", command_id,
                        {"ticket_id": tid, "technician_id": technician, "resolution": call.resolution}, actor)
        return None
    # The phone's reports (D5, D6): each with its idempotency key, device time = now.
    site = demo.site_of(call.site_id)
    here = {"latitude": round(site.latitude + 0.00004, 6), "longitude": round(site.longitude - 0.00003, 6)}
    fields: dict[str, Any]
    match step.kind:
        case "check_in" | "check_out":
            fields = {"position": here, "accuracy_m": 8}
        case "work":
            # rule D6: from the arrival to now (at least a minute: the pulse runs a compressed day)
            started = min(ticket.arrived or now, now - timedelta(minutes=1))
            fields = {"kind": call.work, "started": demo.iso(started), "ended": demo.iso(now)}
        case "expense":
            kind, amount, note = call.expense
            fields = {"kind": kind, "amount": amount, "receipt_no": f"FP-{tid.replace('-', '')}-1",
                      "receipt_date": now.astimezone(CHINA).date().isoformat(), "note": note}
        case _:
            raise AssertionError(step)
    await client.do(f"dispatch.ticket.{step.kind}", command_id, {
        "ticket_id": tid, "technician_id": technician, "key": f"{tid}-{step.kind}-1", "device_time": demo.iso(now),
        **fields}, actor)
    return None


# -- the loop `weibao up` runs -------------------------------------------------------------


async def run(nats_url: str, seconds: float, stop: threading.Event, *, limit: int = MAX_IN_FLIGHT) -> None:
    """A step every `seconds` until `stop` is set; waits while the system is not up, and
    never stops on a failure (logged; the next pulse tries again)."""
    nc: NATS | None = None
    pulse: Pulse | None = None
    try:
        while not await _sleep(stop, seconds):
            try:
                if nc is None or pulse is None:
                    nc = await connect(nats_url, "weibao-pulse", seed=identities.seed_for("cli"),
                                       reconnect_time_wait=1)
                    pulse = Pulse(nc, limit=limit)
                await _unless_stopped(stop, pulse.step())
            except (demo.DemoError, NatsError, OSError, TimeoutError) as error:
                log.info("pulse.waiting", reason=repr(error))  # the system is not up (yet)
            except Exception:
                log.exception("pulse.failed")
    finally:
        if nc is not None:
            with contextlib.suppress(NatsError):
                await nc.close()


def run_in_thread(nats_url: str, seconds: float, stop: threading.Event) -> None:
    """A thread's body: the pulse on its own event loop."""
    asyncio.run(run(nats_url, seconds, stop))


async def _sleep(stop: threading.Event, seconds: float) -> bool:
    """Wait `seconds` or until stopped; whether stopped."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not stop.is_set():
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            return False
        await asyncio.sleep(min(left, 0.2))
    return True


async def _unless_stopped(stop: threading.Event, work: Coroutine[Any, Any, Any]) -> None:
    """Run `work`, cancelled when `stop` is set meanwhile (a step cut off stores at most once)."""
    task = asyncio.create_task(work)
    while not task.done():
        if stop.is_set():
            task.cancel()
        await asyncio.wait({task}, timeout=0.2)
    if not task.cancelled():
        task.result()

