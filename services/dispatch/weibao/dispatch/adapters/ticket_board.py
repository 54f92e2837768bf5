"""The ticket board: one row per ticket for the dispatcher's lists (what is open, whose,
how urgent, what may be done next), built from dispatch's own stream.

The row is a projection of the ticket's state as the domain folds it: each private event
is decoded and applied with `ticket.evolve` (one state machine, not a copy of it), and
`project` writes what the lists show. The state before an event comes from a small cache
when it is the one the row was last written from (`version`), else from the ticket's
events in the log up to that version: another replica may have written the row since,
or a rolled-back batch may have left the cache ahead of it.

Only private events count: the public messages on a ticket's stream repeat them for
other services. Times are ISO text in UTC, so text order is time order on every backend
and the list sorts in SQL. `at_risk` lists the clocks announced at risk and not since
breached or met, `breached` those announced breached and not since corrected by a late
check-in (D5: the later fact corrects), `stopped` those a valid check-in or the
completion stopped; `next_due` is the earliest due time still running (D1), the
urgency an open list sorts by; `next_check` the next instant the deadline clock has
something to announce; `actions` what the domain allows next (the screens offer those)."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    ColumnElement,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    case,
    func,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from weibao.dispatch.domain import deadlines as dl
from weibao.dispatch.domain import ticket as domain
from weibao.shared.commands.dispatch import TicketList
from weibao.shared.eventstore import events_table
from weibao.shared.messages import Message
from weibao.shared.paging import Page
from weibao.shared.public.dispatch import PRIORITIES

STREAM = "ticket-"
KINDS = ("respond", "arrive", "resolve")
DUE_COLUMNS = {"respond": "respond_by", "arrive": "arrive_by", "resolve": "resolve_by"}
LISTS = ("at_risk", "breached", "stopped", "actions")
CACHED = 2000  # tickets whose latest state is kept between events


@dataclass
class TicketBoard:
    suffix: str = ""
    _states: OrderedDict[str, tuple[int, domain.Ticket]] = field(default_factory=OrderedDict, repr=False)

    def __post_init__(self) -> None:
        self.name = "ticket_board"
        self.metadata = MetaData()
        self.table = Table(
            f"ticket_board{self.suffix}", self.metadata,
            Column("ticket_id", String(100), primary_key=True),
            Column("customer_id", String(100), nullable=False, index=True),
            Column("site_id", String(100), nullable=False),
            Column("summary", Text, nullable=False),
            Column("channel", String(20), nullable=False),
            Column("skill", String(100), nullable=False),
            Column("status", String(30), nullable=False, index=True),
            Column("opened_at", String(40), nullable=False),
            Column("latitude", Float, nullable=False),
            Column("longitude", Float, nullable=False),
            Column("agreement_id", String(100)),
            Column("verdict", String(20), nullable=False),
            Column("cause", String(40)),  # issue 13: why the customer called (none: logged before causes)
            Column("priority", String(10), nullable=False),  # orders the open work (urgent first)
            Column("phase", String(20)),  # rule C14
            Column("local", Boolean, nullable=False),
            Column("technician_id", String(100), index=True),
            Column("respond_by", String(40)),
            Column("arrive_by", String(40)),
            Column("resolve_by", String(40)),
            Column("next_due", String(40)),
            Column("at_risk", Text, nullable=False),  # JSON lists of clock kinds
            Column("breached", Text, nullable=False),
            Column("stopped", Text, nullable=False),
            Column("paused", Boolean, nullable=False),
            Column("checked_in_at", String(40)),
            Column("flagged_check_ins", Integer, nullable=False),  # D5: recorded far from the site
            Column("completed_at", String(40)),
            Column("actions", Text, nullable=False),  # JSON list: what may be asked next
            Column("next_check", String(40), index=True),  # when a deadline has news (dl.next_evaluation)
            Column("updated_at", String(40), nullable=False),
            Column("last_event", String(60), nullable=False),
            Column("version", Integer, nullable=False),  # of the ticket's stream, when last written
        )

        # Every event's statements, built once (issue 15): a statement's construction
        # costs more than its execution on SQLite. (Bind names may not be column names.)
        t = self.table
        self._version_of = select(t.c.version).where(t.c.ticket_id == bindparam("b_ticket_id"))
        self._insert = t.insert()
        self._update = t.update().where(t.c.ticket_id == bindparam("b_ticket_id"))

    def tables(self) -> list[Table]:
        return [self.table]

    def fresh(self, suffix: str) -> TicketBoard:
        return TicketBoard(suffix)

    async def __call__(self, conn: AsyncConnection, message: Message) -> None:
        if not (domain.EVENTS.knows(message.type) and message.stream_id.startswith(STREAM)):
            return  # public messages, technicians' streams
        ticket_id = message.stream_id.removeprefix(STREAM)
        row = (await conn.execute(self._version_of, {"b_ticket_id": ticket_id})).first()
        before = domain.Ticket() if row is None else await self._state(conn, message.stream_id, row.version)
        event = domain.EVENTS.decode(message)
        if before.status == "none" and not isinstance(event, domain.TicketOpened):
            return  # decide never writes an event before TicketOpened; nothing to describe
        state = domain.evolve(before, event)
        self._remember(message.stream_id, message.version, state)
        values = {**project(state), "updated_at": utc(message.recorded_at),
                  "last_event": message.type.removeprefix(domain.EVENTS.prefix), "version": message.version}
        # The row's existence is known from the version read above: one write, not
        # upsert's second look (issue 15: a check-in's events each pass through here).
        if row is None:
            await conn.execute(self._insert, {"ticket_id": ticket_id, **values})
        else:
            await conn.execute(self._update, {"b_ticket_id": ticket_id, **values})

    async def _state(self, conn: AsyncConnection, stream_id: str, version: int) -> domain.Ticket:
        """The ticket as the row was last written from: cached, or folded from the log."""
        cached = self._states.get(stream_id)
        if cached is not None and cached[0] == version:
            return cached[1]
        e = events_table
        state = domain.Ticket()
        rows = await conn.execute(select(e.c.type, e.c.data).where(e.c.stream_id == stream_id, e.c.version <= version)
                                  .order_by(e.c.version))
        for type_, data in rows:
            if domain.EVENTS.knows(type_):
                state = domain.evolve(state, domain.EVENTS.decode(_Stored(type_, json.loads(data))))
        return state

    def _remember(self, stream_id: str, version: int, state: domain.Ticket) -> None:
        self._states[stream_id] = (version, state)
        self._states.move_to_end(stream_id)
        while len(self._states) > CACHED:
            self._states.popitem(last=False)


@dataclass(frozen=True)
class _Stored:
    type: str
    data: Mapping[str, Any]


def utc(value: str | datetime) -> str:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(UTC).isoformat()


def _utc_or_none(value: datetime | None) -> str | None:
    return utc(value) if value is not None else None


def project(state: domain.Ticket) -> dict[str, Any]:
    """What the lists show of a ticket's state (rule D1: the due times as fixed when the
    request came in or when its coverage was found, moved on only by waiting)."""
    opened = state.opened
    assert opened is not None
    cover = opened.coverage
    deadlines = state.deadlines
    clocks = {clock.kind: clock for clock in deadlines.clocks} if deadlines is not None else {}
    stopped = sorted(kind for kind, clock in clocks.items() if clock.stopped_at is not None)
    running = [clock.due for kind, clock in clocks.items() if clock.stopped_at is None]
    first = state.first_check_in
    return {
        "customer_id": opened.customer_id, "site_id": opened.site_id, "summary": opened.summary,
        "channel": opened.channel, "skill": opened.skill, "status": state.status,
        "opened_at": utc(opened.opened_at), "latitude": opened.site.latitude, "longitude": opened.site.longitude,
        "agreement_id": cover.agreement_id, "verdict": cover.verdict, "local": bool(cover.local),
        "cause": cover.cause, "priority": opened.priority, "phase": opened.phase,
        "technician_id": state.technician_id,
        **{DUE_COLUMNS[kind]: _utc_or_none(clocks[kind].due if kind in clocks else None) for kind in KINDS},
        # nothing is pending on a closed ticket
        "next_due": None if state.status in domain.CLOSED else _utc_or_none(min(running, default=None)),
        "at_risk": json.dumps(sorted(kind for kind, clock in clocks.items()
                                     if "at_risk" in clock.announced and not {"breached", "met"} & clock.announced)),
        "breached": json.dumps(sorted(kind for kind, clock in clocks.items()
                                      if "breached" in clock.announced and "met" not in clock.announced)),
        "stopped": json.dumps(stopped),
        # rule D1: waiting on the customer stops clocks; a ticket without any has none to stop
        "paused": deadlines is not None and deadlines.paused_at is not None,
        "checked_in_at": _utc_or_none(first.counted_at if first is not None else None),  # D5: the time that counted
        "flagged_check_ins": state.flagged_check_ins,
        "completed_at": _utc_or_none(state.completed_at),
        "actions": json.dumps(sorted(domain.allowed(state))),
        "next_check": _utc_or_none(dl.next_evaluation(deadlines) if deadlines is not None else None),
    }


# -- queries ---------------------------------------------------------------------------


def as_item(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {**row, **{name: json.loads(row[name]) for name in LISTS}}


def _urgency(t: Table) -> tuple[ColumnElement[Any], ...]:
    """Open tickets first, the most urgent priority first (issue 13: priority orders the
    work), then the earliest running due time (none: last), then the oldest; closed
    tickets after them, the latest finished first."""
    closed = t.c.status.in_(sorted(domain.CLOSED))
    rank = case(*((t.c.priority == name, number) for number, name in enumerate(PRIORITIES)), else_=len(PRIORITIES))
    return (
        case((closed, 1), else_=0),
        case((closed, None), else_=rank),
        case((closed, 0), (t.c.next_due.is_(None), 1), else_=0),
        case((closed, None), else_=t.c.next_due),
        case((closed, None), else_=t.c.opened_at),
        case((closed, func.coalesce(t.c.completed_at, t.c.updated_at)), else_=None).desc(),
        t.c.ticket_id,
    )


async def ticket_page(engine: AsyncEngine, board: TicketBoard, asked: TicketList,
                      sites: Table | None = None) -> dict[str, Any]:
    """`weibao.dispatch.tickets`: a page of the board, filtered by status, technician, customer.
    With `sites` (the coverage book's), each row also says whose site it is and where, so a
    technician's phone can tell them where to go without reading the customer records."""
    page = Page.of(asked.model_dump(include={"limit", "offset"}))  # the kit's ranges, its refusals
    t = board.table
    query = select(t).order_by(*_urgency(t))
    if sites is not None:
        query = query.add_columns(sites.c.customer_name, sites.c.name.label("site_name"),
                                  sites.c.address.label("site_address")
                                  ).outerjoin(sites, sites.c.site_id == t.c.site_id)
    if asked.status != "all":
        closed = t.c.status.in_(sorted(domain.CLOSED))
        query = query.where(closed if asked.status == "closed" else ~closed)
    if asked.technician_id is not None:
        query = query.where(t.c.technician_id == asked.technician_id)
    if asked.customer_id is not None:
        query = query.where(t.c.customer_id == asked.customer_id)
    async with engine.connect() as conn:
        rows, total = await page.rows(conn, query)
    return page.reply([as_item(row._mapping) for row in rows], total)
