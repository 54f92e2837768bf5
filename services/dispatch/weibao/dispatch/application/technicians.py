"""The technicians' commands: register, change, retire, time off (load, decide, append).

Each comes decoded (weibao.shared.commands.dispatch checks its shape); whether the
record is usable (known skills, a shift that ends after it starts) is the domain's one
rule, `technician.problems`, checked by `decide`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

from weibao.dispatch.domain import technician as domain
from weibao.dispatch.domain.ticket import Position
from weibao.shared.aggregates import Repository
from weibao.shared.commands import Point
from weibao.shared.commands.dispatch import (
    NewTechnician,
    Shift,
    TechnicianPatch,
    TechnicianRetirement,
    TechnicianTimeOff,
)
from weibao.shared.events import RecordedEvent
from weibao.shared.eventstore import EventStore

CREW = domain.EVENTS


def technician_stream(technician_id: str) -> str:
    return f"technician-{technician_id}"


@dataclass
class Technicians:
    store: EventStore
    now: Callable[[], datetime]

    @cached_property  # one per application, so its folded states are kept (issue 15)
    def crew(self) -> Repository[domain.Technician, domain.Event]:
        return Repository(self.store, CREW, domain.evolve, domain.Technician())

    async def execute(self, technician_id: str, command: domain.Command, **kw: Any) -> list[RecordedEvent]:
        return await self.crew.execute(technician_stream(technician_id), lambda state: domain.decide(command, state),
                                       **kw)

    async def register(self, body: NewTechnician, **kw: Any) -> list[RecordedEvent]:
        command = domain.RegisterTechnician(
            body.technician_id, body.name, tuple(body.skills), _position(body.home), body.office_city_code,
            _shift(body.shift) if body.shift is not None else domain.Shift(), body.capacity_per_day)
        return await self.execute(body.technician_id, command, **kw)

    async def change(self, body: TechnicianPatch, **kw: Any) -> list[RecordedEvent]:
        """Edit skills, shift, capacity, home or name; the whole record is checked again."""
        command = domain.ChangeTechnician(
            name=body.name, skills=tuple(body.skills) if body.skills is not None else None,
            home=_position(body.home) if body.home is not None else None,
            shift=_shift(body.shift) if body.shift is not None else None, capacity_per_day=body.capacity_per_day)
        return await self.execute(body.technician_id, command, **kw)

    async def retire(self, body: TechnicianRetirement, **kw: Any) -> list[RecordedEvent]:
        """No new assignments from now on; visits already assigned stay until reassigned."""
        return await self.execute(body.technician_id, domain.RetireTechnician(self.now(), body.reason), **kw)

    async def time_off(self, body: TechnicianTimeOff, **kw: Any) -> list[RecordedEvent]:
        command = domain.TakeTimeOff(body.first_day, body.last_day, body.reason)
        return await self.execute(body.technician_id, command, **kw)


def _position(point: Point) -> Position:
    return Position(point.latitude, point.longitude)


def _shift(shift: Shift) -> domain.Shift:
    return domain.Shift(shift.starts, shift.ends)
