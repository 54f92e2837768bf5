"""The technician board: who can go where, built from dispatch's own stream.

Position is the last valid check-in (D5) or the home base; load is the visits assigned
and not yet completed. Assignment (D4) reads it; the console shows it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from weibao.shared.messages import Message

PREFIX = "private."


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

    def tables(self) -> list[Table]:
        return [self.table]

    def fresh(self, suffix: str) -> TechnicianBoard:
        return TechnicianBoard(suffix)

    async def __call__(self, conn: AsyncConnection, message: Message) -> None:
        kind = message.type.removeprefix(PREFIX)
        if not message.type.startswith(PREFIX):
            return
        data, t = message.data, self.table
        if kind == "TechnicianRegistered":
            home = data["home"]
            await conn.execute(t.insert().values(
                technician_id=data["technician_id"], name=data["name"], skills=json.dumps(data["skills"]),
                home_latitude=home["latitude"], home_longitude=home["longitude"], latitude=home["latitude"],
                longitude=home["longitude"], last_seen=None, shift=json.dumps(data["shift"]),
                capacity_per_day=data["capacity_per_day"], time_off="[]", open_visits="[]"))
            return
        technician = _technician_of(message)
        if technician is None:
            return
        row = (await conn.execute(select(t).where(t.c.technician_id == technician))).first()
        if row is None:
            return
        changes: dict[str, Any] = {}
        match kind:
            case "SkillsChanged":
                changes["skills"] = json.dumps(data["skills"])
            case "TimeOffTaken":
                changes["time_off"] = json.dumps([*json.loads(row.time_off), [data["first_day"], data["last_day"]]])
            case "ShiftChanged":
                changes.update(shift=json.dumps(data["shift"]), capacity_per_day=data["capacity_per_day"])
            case "CheckedIn" if data["within_geofence"]:
                if row.last_seen is None or data["server_time"] >= row.last_seen:
                    changes.update(latitude=data["position"]["latitude"], longitude=data["position"]["longitude"],
                                   last_seen=data["server_time"])
            case "VisitAssigned":
                changes["open_visits"] = json.dumps(sorted({*json.loads(row.open_visits), _ticket(message)}))
            case "VisitDeclined" | "VisitCompleted":
                changes["open_visits"] = json.dumps(sorted(set(json.loads(row.open_visits)) - {_ticket(message)}))
        if changes:
            await conn.execute(t.update().where(t.c.technician_id == technician).values(changes))


def _ticket(message: Message) -> str:
    return message.stream_id.removeprefix("ticket-")


def _technician_of(message: Message) -> str | None:
    if message.stream_id.startswith("technician-"):
        return message.stream_id.removeprefix("technician-")
    value = message.data.get("technician_id")
    return str(value) if value else None


async def technicians(engine: AsyncEngine, board: TechnicianBoard) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(board.table).order_by(board.table.c.technician_id))).all()
    return [_decoded(row._mapping) for row in rows]


async def technician(engine: AsyncEngine, board: TechnicianBoard, technician_id: str) -> dict[str, Any] | None:
    async with engine.connect() as conn:
        row = (await conn.execute(select(board.table).where(board.table.c.technician_id == technician_id))).first()
    return _decoded(row._mapping) if row is not None else None


def _decoded(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {**row, "skills": json.loads(row["skills"]), "shift": json.loads(row["shift"]),
            "time_off": json.loads(row["time_off"]), "open_visits": json.loads(row["open_visits"])}
