"""The ticket board: one row per ticket for the dispatcher's lists (what is open, whose,
how urgent), built from dispatch's own stream.

Only private events count: the public messages on a ticket's stream repeat them for
other services. Times are ISO text in UTC, so text order is time order on every backend
and the list sorts in SQL. `at_risk` lists the clocks announced at risk and not since
breached or met, `breached` those announced breached and not since corrected by a late
check-in (D5: the later fact corrects), `stopped` those a valid check-in or the
completion stopped; `next_due` is the earliest due time still running (D1), the
urgency an open list sorts by."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    ColumnElement,
    Float,
    MetaData,
    String,
    Table,
    Text,
    case,
    func,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from weibao.shared.errors import require
from weibao.shared.messages import Message
from weibao.shared.paging import Page
from weibao.shared.readmodels import upsert

PREFIX = "private."
STREAM = "ticket-"
KINDS = ("respond", "arrive", "resolve")
DUE_COLUMNS = {"respond": "respond_by", "arrive": "arrive_by", "resolve": "resolve_by"}
CLOSED_STATUSES = ("resolved", "completed")
LISTS = ("at_risk", "breached", "stopped")


@dataclass
class TicketBoard:
    suffix: str = ""

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
            Column("completed_at", String(40)),
            Column("updated_at", String(40), nullable=False),
            Column("last_event", String(60), nullable=False),
        )

    def tables(self) -> list[Table]:
        return [self.table]

    def fresh(self, suffix: str) -> TicketBoard:
        return TicketBoard(suffix)

    async def __call__(self, conn: AsyncConnection, message: Message) -> None:
        if not (message.type.startswith(PREFIX) and message.stream_id.startswith(STREAM)):
            return  # public messages, technicians' streams
        kind = message.type.removeprefix(PREFIX)
        ticket_id = message.stream_id.removeprefix(STREAM)
        stamp = {"updated_at": utc(message.recorded_at), "last_event": kind}
        t = self.table
        if kind == "TicketOpened":
            await upsert(conn, t, "ticket_id", ticket_id, {**opened(message.data), **stamp})
            return
        row = (await conn.execute(select(t).where(t.c.ticket_id == ticket_id))).first()
        if row is None:
            return  # decide never writes an event before TicketOpened; nothing to describe
        await conn.execute(t.update().where(t.c.ticket_id == ticket_id)
                           .values({**changes(kind, message.data, row._mapping), **stamp}))


def utc(value: str | datetime) -> str:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(UTC).isoformat()


def _dues(data: Mapping[str, Any]) -> dict[str, str]:
    clocks = (data.get("deadlines") or {}).get("clocks") or ()
    return {clock["kind"]: utc(clock["due"]) for clock in clocks}


def opened(data: Mapping[str, Any]) -> dict[str, Any]:
    """rule D1: the due times were fixed when the request came in; the board copies them."""
    dues = _dues(data)
    cover = data["coverage"]
    return {
        "customer_id": data["customer_id"], "site_id": data["site_id"], "summary": data["summary"],
        "channel": data["channel"], "skill": data["skill"], "status": "triage", "opened_at": utc(data["opened_at"]),
        "latitude": data["site"]["latitude"], "longitude": data["site"]["longitude"],
        "agreement_id": cover["agreement_id"], "verdict": cover["verdict"], "local": bool(cover["local"]),
        "technician_id": None, **{DUE_COLUMNS[kind]: dues.get(kind) for kind in KINDS},
        "next_due": min(dues.values(), default=None), "at_risk": "[]", "breached": "[]", "stopped": "[]",
        "paused": False, "checked_in_at": None, "completed_at": None,
    }


def changes(kind: str, data: Mapping[str, Any], row: Mapping[Any, Any]) -> dict[str, Any]:
    """What one private ticket event changes on the ticket's row (as `ticket.evolve` does)."""
    match kind:
        case "CoverageFound":  # rules D1, C1: found after the request was opened
            cover, dues = data["coverage"], _dues(data)
            after = {**row, **{DUE_COLUMNS[k]: dues.get(k) for k in KINDS}}
            return {"agreement_id": cover["agreement_id"], "verdict": cover["verdict"], "local": bool(cover["local"]),
                    **{DUE_COLUMNS[k]: dues.get(k) for k in KINDS},
                    "next_due": _next_due(after, set(_list(row["stopped"])), row["status"])}
        case "ResolvedRemotely":
            return {"status": "resolved", "next_due": None}
        case "VisitRequested":
            return {"status": "awaiting_assignment"}
        case "VisitAssigned":
            return {"status": "assigned", "technician_id": data["technician_id"]}
        case "VisitAccepted":
            return {"status": "accepted"}
        case "VisitDeclined":
            return {"status": "awaiting_assignment", "technician_id": None}
        case "CheckedIn" if data["within_geofence"]:
            # rule D5: the earliest valid check-in counts, however late its phone uploads it
            at = utc(data["server_time"])
            first = at if row["checked_in_at"] is None else min(at, row["checked_in_at"])
            status = "on_site" if row["status"] in ("assigned", "accepted") else row["status"]
            return {"checked_in_at": first, "status": status, **_stop(row, ("respond", "arrive"), status)}
        case "CheckedOut":
            return {"status": "checked_out"} if row["status"] == "on_site" else {}
        case "VisitCompleted":
            return {"status": "completed", "completed_at": utc(data["at"]), **_stop(row, KINDS, "completed")}
        case "ClocksPaused":
            # rule D1: waiting on the customer stops clocks; a ticket without any has none to stop
            return {"paused": any(row[DUE_COLUMNS[k]] for k in KINDS)}
        case "ClocksResumed":
            dues = {DUE_COLUMNS[c["kind"]]: utc(c["due"]) for c in data["clocks"]}
            after = {**row, **dues}
            return {**dues, "paused": False,
                    "next_due": _next_due(after, set(_list(row["stopped"])), row["status"])}
        case "DeadlineAtRisk":
            return {"at_risk": _with(row["at_risk"], data["kind"])}
        case "DeadlineBreached":
            return {"breached": _with(row["breached"], data["kind"]),
                    "at_risk": _without(row["at_risk"], data["kind"])}
        case "DeadlineMet":
            return {"at_risk": _without(row["at_risk"], data["kind"]),
                    "breached": _without(row["breached"], data["kind"]),
                    **_stop(row, (data["kind"],), row["status"])}
    return {}  # work, expenses, flagged check-ins: only the stamp changes


def _stop(row: Mapping[Any, Any], kinds: Iterable[str], status: str) -> dict[str, Any]:
    stopped = set(_list(row["stopped"])) | {k for k in kinds if row[DUE_COLUMNS[k]] is not None}
    return {"stopped": json.dumps(sorted(stopped)), "next_due": _next_due(row, stopped, status)}


def _next_due(row: Mapping[Any, Any], stopped: set[str], status: str) -> str | None:
    if status in CLOSED_STATUSES:
        return None  # nothing is pending on a closed ticket
    running = [row[DUE_COLUMNS[k]] for k in KINDS if k not in stopped and row[DUE_COLUMNS[k]] is not None]
    return min(running, default=None)


def _list(text: str) -> list[str]:
    found: list[str] = json.loads(text)
    return found


def _with(text: str, kind: str) -> str:
    return json.dumps(sorted({*_list(text), kind}))


def _without(text: str, kind: str) -> str:
    return json.dumps(sorted(set(_list(text)) - {kind}))


# -- queries ---------------------------------------------------------------------------


def as_item(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {**row, **{name: _list(row[name]) for name in LISTS}}


def _urgency(t: Table) -> tuple[ColumnElement[Any], ...]:
    """Open tickets first, the earliest running due time first (none: last), then the
    oldest; closed tickets after them, the latest finished first."""
    closed = t.c.status.in_(CLOSED_STATUSES)
    return (
        case((closed, 1), else_=0),
        case((closed, 0), (t.c.next_due.is_(None), 1), else_=0),
        case((closed, None), else_=t.c.next_due),
        case((closed, None), else_=t.c.opened_at),
        case((closed, func.coalesce(t.c.completed_at, t.c.updated_at)), else_=None).desc(),
        t.c.ticket_id,
    )


async def tickets(engine: AsyncEngine, board: TicketBoard, body: Mapping[str, Any],
                  sites: Table | None = None) -> dict[str, Any]:
    """`weibao.dispatch.tickets`: a page of the board, filtered by status, technician, customer.
    With `sites` (the coverage book's), each row also says whose site it is and where, so a
    technician's phone can tell them where to go without reading the customer records."""
    status = body.get("status", "open")
    require(status in ("open", "closed", "all"), "invalid", "status", "open, closed or all")
    page = Page.of(body)
    t = board.table
    query = select(t).order_by(*_urgency(t))
    if sites is not None:
        query = query.add_columns(sites.c.customer_name, sites.c.name.label("site_name"),
                                  sites.c.address.label("site_address")
                                  ).outerjoin(sites, sites.c.site_id == t.c.site_id)
    if status != "all":
        closed = t.c.status.in_(CLOSED_STATUSES)
        query = query.where(closed if status == "closed" else ~closed)
    for name in ("technician_id", "customer_id"):
        if body.get(name) is not None:
            query = query.where(t.c[name] == str(body[name]))
    async with engine.connect() as conn:
        rows, total = await page.rows(conn, query)
    return page.reply([as_item(row._mapping) for row in rows], total)
