"""The technicians' commands: register, change, retire, time off (load, decide, append)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from weibao.dispatch.domain import technician as crew
from weibao.shared import codec
from weibao.shared.aggregates import Repository
from weibao.shared.errors import require
from weibao.shared.events import RecordedEvent
from weibao.shared.eventstore import EventStore

CREW = codec.Codec([crew.TechnicianRegistered, crew.TechnicianChanged, crew.TechnicianRetired, crew.SkillsChanged,
                    crew.TimeOffTaken, crew.ShiftChanged], prefix="private.")


def technician_stream(technician_id: str) -> str:
    return f"technician-{technician_id}"


@dataclass
class Technicians:
    store: EventStore
    now: Callable[[], datetime]

    @property
    def crew(self) -> Repository[crew.Technician, crew.Event]:
        return Repository(self.store, CREW, crew.evolve, crew.Technician())

    async def register(self, data: Mapping[str, Any], **kw: Any) -> list[RecordedEvent]:
        command = codec.parse(crew.RegisterTechnician, {k: v for k, v in data.items() if k != "command_id"})
        return await self.crew.execute(technician_stream(command.technician_id),
                                       lambda state: crew.decide(command, state), **kw)

    async def change(self, data: Mapping[str, Any], **kw: Any) -> list[RecordedEvent]:
        """Edit skills, shift, capacity, home or name; the whole record is checked again."""
        command = codec.parse(crew.ChangeTechnician, {k: v for k, v in data.items()
                                                      if k not in ("technician_id", "command_id")})
        return await self.crew.execute(technician_stream(_technician(data)),
                                       lambda state: crew.decide(command, state), **kw)

    async def retire(self, data: Mapping[str, Any], **kw: Any) -> list[RecordedEvent]:
        """No new assignments from now on; visits already assigned stay until reassigned."""
        command = crew.RetireTechnician(self.now(), str(data.get("reason", "")))
        return await self.crew.execute(technician_stream(_technician(data)),
                                       lambda state: crew.decide(command, state), **kw)

    async def time_off(self, data: Mapping[str, Any], **kw: Any) -> list[RecordedEvent]:
        command = codec.parse(crew.TakeTimeOff, {k: v for k, v in data.items()
                                                 if k not in ("technician_id", "command_id")})
        return await self.crew.execute(technician_stream(str(data.get("technician_id", ""))),
                                       lambda state: crew.decide(command, state), **kw)


def _technician(data: Mapping[str, Any]) -> str:
    value = data.get("technician_id")
    require(isinstance(value, str) and bool(value), "missing", "technician_id", "which technician")
    return str(value)
