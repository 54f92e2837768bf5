"""The technician board: who can go where, built from dispatch's own stream.

Position is the last valid check-in (D5) or the home base; load is the visits assigned
and not yet completed. Assignment (D4) reads it; the console shows it.

What is stored is what the log says, good or bad; `sort_out` is where a reader learns
which records it can use: the technician rule (domain/technician.py) decides, the same
rule the commands check, and a record that fails it is named, logged and left out, so
it never takes a whole assignment or plan down with it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time
from typing import Any

import structlog
from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from weibao.dispatch.domain import technician as crew
from weibao.dispatch.domain import ticket
from weibao.dispatch.domain.ticket import Position
from weibao.shared import codec
from weibao.shared.messages import Message

log = structlog.get_logger("weibao.dispatch.board")


@dataclass
class TechnicianBoard:
    suffix: str = ""

    def __post_init__(self) -> None:
        self.name = "technician_board"
        self.metadata = MetaData()
        self.table = Table(
            f"technician_board{self.suffix}", self.metadata,
            Column("technician_id", String(100), primary_key=True),
            Column("name", String(200), nullable=False),
            Column("skills", Text, nullable=False),
            Column("home_latitude", Float, nullable=False),
            Column("home_longitude", Float, nullable=False),
            Column("latitude", Float, nullable=False),
            Column("longitude", Float, nullable=False),
            Column("last_seen", String(40)),
            Column("shift", Text, nullable=False),
            Column("capacity_per_day", Integer, nullable=False),
            Column("time_off", Text, nullable=False),
            Column("open_visits", Text, nullable=False),  # JSON list of ticket ids
        )
        # Its own table rather than a column: `create_all` adds a missing table to an
        # existing database, but never a missing column to an existing table.
        self.retired = Table(
            f"technician_retired{self.suffix}", self.metadata,
            Column("technician_id", String(100), primary_key=True),
            Column("retired_at", String(40), nullable=False),
            Column("reason", Text, nullable=False),
        )
        # The statements of every event, built once (issue 15): building one costs more
        # than executing it on SQLite. (Bind names may not be column names.)
        t = self.table
        self._row = select(t).where(t.c.technician_id == bindparam("b_technician_id"))
        self._update = t.update().where(t.c.technician_id == bindparam("b_technician_id"))

    def tables(self) -> list[Table]:
        return [self.table, self.retired]

    def fresh(self, suffix: str) -> TechnicianBoard:
        return TechnicianBoard(suffix)

    async def __call__(self, conn: AsyncConnection, message: Message) -> None:
        event = _event_of(message)
        t = self.table
        if isinstance(event, crew.TechnicianRegistered):
            home = event.home
            await conn.execute(t.insert().values(
                technician_id=event.technician_id, name=event.name, skills=json.dumps(list(event.skills)),
                home_latitude=home.latitude, home_longitude=home.longitude, latitude=home.latitude,
                longitude=home.longitude, last_seen=None, shift=_json(event.shift),
                capacity_per_day=event.capacity_per_day, time_off="[]", open_visits="[]"))
            return
        technician = _technician_of(message, event)
        if event is None or technician is None:
            return
        row = (await conn.execute(self._row, {"b_technician_id": technician})).first()
        if row is None:
            return
        changes: dict[str, Any] = {}
        match event:
            case crew.TechnicianChanged(home=home):
                changes.update(name=event.name, skills=json.dumps(list(event.skills)), shift=_json(event.shift),
                               capacity_per_day=event.capacity_per_day, home_latitude=home.latitude,
                               home_longitude=home.longitude)
                if row.last_seen is None:  # never seen on site: they are where their home is
                    changes.update(latitude=home.latitude, longitude=home.longitude)
            case crew.TechnicianRetired():
                await conn.execute(self.retired.insert().values(technician_id=technician, retired_at=_text(event.at),
                                                                reason=event.reason))
            case crew.SkillsChanged():
                changes["skills"] = json.dumps(list(event.skills))
            case crew.TimeOffTaken():
                days = [_text(event.first_day), _text(event.last_day)]
                changes["time_off"] = json.dumps([*json.loads(row.time_off), days])
            case crew.ShiftChanged():
                changes.update(shift=_json(event.shift), capacity_per_day=event.capacity_per_day)
            case ticket.CheckedIn() if event.within_geofence:
                seen = _text(event.server_time)
                if row.last_seen is None or seen >= row.last_seen:
                    changes.update(latitude=event.position.latitude, longitude=event.position.longitude,
                                   last_seen=seen)
            case ticket.VisitAssigned():
                changes["open_visits"] = json.dumps(sorted({*json.loads(row.open_visits), _ticket(message)}))
                await self._release(conn, _ticket(message), keep=technician)
            case ticket.VisitDeclined() | ticket.VisitCompleted():
                changes["open_visits"] = json.dumps(sorted(set(json.loads(row.open_visits)) - {_ticket(message)}))
        if changes:
            await conn.execute(self._update, {"b_technician_id": technician, **changes})

    async def _release(self, conn: AsyncConnection, ticket: str, *, keep: str) -> None:
        """A reassignment takes the visit off whoever had it (a retired technician's
        visits stay theirs until then)."""
        t = self.table
        holders = await conn.execute(select(t.c.technician_id, t.c.open_visits).where(
            t.c.technician_id != keep, t.c.open_visits.contains(json.dumps(ticket))))
        for holder in holders.all():
            left = sorted(set(json.loads(holder.open_visits)) - {ticket})
            await conn.execute(self._update, {"b_technician_id": holder.technician_id,
                                              "open_visits": json.dumps(left)})


def _event_of(message: Message) -> crew.Event | ticket.Event | None:
    """The technician's or the ticket's private event `message` carries (decoded with the
    domain's own codec, as the commands encoded it); None for anything else."""
    if message.stream_id.startswith("technician-") and crew.EVENTS.knows(message.type):
        found: crew.Event = crew.EVENTS.decode(message)
        return found
    if message.stream_id.startswith("ticket-") and ticket.EVENTS.knows(message.type):
        decoded: ticket.Event = ticket.EVENTS.decode(message)
        return decoded
    return None


def _text(value: object) -> str:
    """A date or time as the log stores it (the codec's JSON text): what the rows held
    when they were read from the events' JSON, so a rebuild matches the live table."""
    return str(codec.dump(value))


def _json(value: object) -> str:
    # Keys sorted, as in the log's canonical JSON the rows were first written from.
    return json.dumps(codec.dump(value), sort_keys=True)


def _ticket(message: Message) -> str:
    return message.stream_id.removeprefix("ticket-")


def _technician_of(message: Message, event: object) -> str | None:
    if message.stream_id.startswith("technician-"):
        return message.stream_id.removeprefix("technician-")
    return getattr(event, "technician_id", None)



def _rows(board: TechnicianBoard) -> Any:
    t, r = board.table, board.retired
    return select(t, r.c.retired_at, r.c.reason.label("retirement_reason")).select_from(
        t.outerjoin(r, r.c.technician_id == t.c.technician_id))


async def technicians(engine: AsyncEngine, board: TechnicianBoard) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(_rows(board).order_by(board.table.c.technician_id))).all()
    return [_decoded(row._mapping) for row in rows]


async def technician(engine: AsyncEngine, board: TechnicianBoard, technician_id: str) -> dict[str, Any] | None:
    async with engine.connect() as conn:
        row = (await conn.execute(_rows(board).where(board.table.c.technician_id == technician_id))).first()
    return _decoded(row._mapping) if row is not None else None


def _decoded(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {**row, "skills": json.loads(row["skills"]), "shift": json.loads(row["shift"]),
            "time_off": json.loads(row["time_off"]), "open_visits": json.loads(row["open_visits"])}


@dataclass(frozen=True)
class Unusable:
    technician_id: str
    reason: str  # in words, for the dispatcher
    retired: bool = False  # a decision rather than a fault


def profile_of(row: Mapping[str, Any]) -> crew.Profile:
    """A board row as the technician rule sees it; KeyError, TypeError or ValueError
    when the row cannot even be read as one."""
    shift = row["shift"]
    return crew.Profile(row["technician_id"], row["name"], row["skills"],
                        Position(row["home_latitude"], row["home_longitude"]),
                        crew.Shift(time.fromisoformat(shift["starts"]), time.fromisoformat(shift["ends"])),
                        row["capacity_per_day"])


def sort_out(rows: list[dict[str, Any]], *, purpose: str) -> tuple[list[dict[str, Any]], list[Unusable]]:
    """The rows a reader may use, and the others named with the reason. `purpose` goes
    into the log line (which operation went on without them)."""
    usable: list[dict[str, Any]] = []
    unusable: list[Unusable] = []
    for row in rows:
        if row.get("retired_at"):
            why = row.get("retirement_reason") or "no reason given"
            unusable.append(Unusable(row["technician_id"], f"retired on {str(row['retired_at'])[:10]}: {why}",
                                     retired=True))
            continue  # retirement is a decision, not a fault: no log line
        try:
            found = crew.problems(profile_of(row))
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            found = (crew.Problem("unreadable", "record", f"cannot be read ({error!r})"),)
        if not found:
            usable.append(row)
            continue
        reason = f"record fails the technician rule: {crew.in_words(found)}"
        unusable.append(Unusable(str(row.get("technician_id", "")), reason))
        log.warning("technician.unusable", technician_id=row.get("technician_id"), purpose=purpose, reason=reason)
    return usable, unusable
