"""Technicians: skills, home base, shifts, time off and daily capacity (rule D4's inputs).

Where a technician is now comes from their last check-in (D5), kept by the board read
model; this aggregate holds what the dispatcher manages."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, time

from weibao.dispatch.domain.ticket import Position
from weibao.shared.errors import require


@dataclass(frozen=True)
class Shift:
    starts: time = time(9, 0)  # rule C20: 9:00-18:00 by default
    ends: time = time(18, 0)


@dataclass(frozen=True)
class RegisterTechnician:
    technician_id: str
    name: str
    skills: tuple[str, ...]  # "software:<product>", "hardware", "network"
    home: Position
    office_city_code: str | None = None
    shift: Shift = Shift()
    capacity_per_day: int = 4


@dataclass(frozen=True)
class ChangeSkills:
    skills: tuple[str, ...]


@dataclass(frozen=True)
class TakeTimeOff:
    first_day: date
    last_day: date
    reason: str


@dataclass(frozen=True)
class ChangeShift:
    shift: Shift
    capacity_per_day: int


Command = RegisterTechnician | ChangeSkills | TakeTimeOff | ChangeShift


@dataclass(frozen=True)
class TechnicianRegistered:
    technician_id: str
    name: str
    skills: tuple[str, ...]
    home: Position
    office_city_code: str | None
    shift: Shift
    capacity_per_day: int


@dataclass(frozen=True)
class SkillsChanged:
    skills: tuple[str, ...]


@dataclass(frozen=True)
class TimeOffTaken:
    first_day: date
    last_day: date
    reason: str


@dataclass(frozen=True)
class ShiftChanged:
    shift: Shift
    capacity_per_day: int


Event = TechnicianRegistered | SkillsChanged | TimeOffTaken | ShiftChanged


@dataclass(frozen=True)
class Technician:
    registered: TechnicianRegistered | None = None
    skills: tuple[str, ...] = ()
    shift: Shift = Shift()
    capacity_per_day: int = 0
    time_off: tuple[tuple[date, date], ...] = ()

    def off_on(self, day: date) -> bool:
        return any(first <= day <= last for first, last in self.time_off)


def decide(command: Command, state: Technician) -> list[Event]:
    match command:
        case RegisterTechnician():
            require(state.registered is None, "conflict", "technician_id", "already registered")
            require(bool(command.name.strip()), "missing", "name", "a technician needs a name")
            require(bool(command.skills), "missing", "skills", "at least one skill")
            command.home.check("home.")
            _check_shift(command.shift, command.capacity_per_day)
            return [TechnicianRegistered(command.technician_id, command.name, command.skills, command.home,
                                         command.office_city_code, command.shift, command.capacity_per_day)]
    require(state.registered is not None, "not_found", "technician_id", "no such technician")
    match command:
        case ChangeSkills():
            require(bool(command.skills), "missing", "skills", "at least one skill")
            return [SkillsChanged(command.skills)]
        case TakeTimeOff():
            require(command.last_day >= command.first_day, "invalid", "last_day", "before first_day")
            return [TimeOffTaken(command.first_day, command.last_day, command.reason)]
        case ChangeShift():
            _check_shift(command.shift, command.capacity_per_day)
            return [ShiftChanged(command.shift, command.capacity_per_day)]
    raise AssertionError(command)


def _check_shift(shift: Shift, capacity: int) -> None:
    require(shift.ends > shift.starts, "invalid", "shift.ends", "a shift ends after it starts")
    require(capacity > 0, "invalid", "capacity_per_day", "at least one visit a day")


def evolve(state: Technician, event: Event) -> Technician:
    match event:
        case TechnicianRegistered():
            return Technician(event, event.skills, event.shift, event.capacity_per_day)
        case SkillsChanged():
            return replace(state, skills=event.skills)
        case TimeOffTaken():
            return replace(state, time_off=(*state.time_off, (event.first_day, event.last_day)))
        case ShiftChanged():
            return replace(state, shift=event.shift, capacity_per_day=event.capacity_per_day)
    raise AssertionError(event)
