"""Technicians: skills, home base, shifts, time off and daily capacity (rule D4's inputs).

Where a technician is now comes from their last check-in (D5), kept by the board read
model; this aggregate holds what the dispatcher manages.

`problems` is the one rule for what a usable technician record is. The commands check
it before anything is stored, and whoever reads the board (the assignment, the plan)
checks it again: a record can be bad without passing here (written before the rule was
this strict, or appended by other means), and such a record must cost only itself,
never every assignment (D4)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time

from weibao.dispatch.domain.skills import WHAT_A_SKILL_IS, known
from weibao.dispatch.domain.ticket import Position
from weibao.shared.codec import Codec
from weibao.shared.errors import Rejected, require

# The board's columns are this wide (adapters/technician_board.py): a longer value would not store.
MAX_ID = 100
MAX_NAME = 200


@dataclass(frozen=True)
class Shift:
    starts: time = time(9, 0)  # rule C20: 9:00-18:00 by default
    ends: time = time(18, 0)


@dataclass(frozen=True)
class Profile:
    """What a dispatcher manages about a technician, as the validator sees it."""

    technician_id: str
    name: str
    skills: Sequence[object]  # object, not str: a stored record may hold anything
    home: Position
    shift: Shift
    capacity_per_day: int


@dataclass(frozen=True)
class Problem:
    code: str
    field: str
    message: str

    def rejected(self) -> Rejected:
        return Rejected(self.code, self.field, self.message)

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def problems(profile: Profile) -> tuple[Problem, ...]:
    """Everything wrong with a technician record, in field order; empty when usable."""
    found: list[Problem] = []
    if not profile.technician_id or len(profile.technician_id) > MAX_ID:
        found.append(Problem("invalid", "technician_id", f"an id of 1 to {MAX_ID} characters"))
    if not isinstance(profile.name, str) or not profile.name.strip():
        found.append(Problem("missing", "name", "a technician needs a name"))
    elif len(profile.name) > MAX_NAME:
        found.append(Problem("invalid", "name", f"at most {MAX_NAME} characters"))
    if isinstance(profile.skills, str) or not profile.skills:
        found.append(Problem("missing", "skills", "at least one skill"))
    else:
        unknown = [skill for skill in profile.skills if not known(skill)]
        if unknown:
            found.append(Problem("invalid", "skills", f"unknown {', '.join(map(repr, unknown))}: {WHAT_A_SKILL_IS}"))
        elif len(set(profile.skills)) != len(profile.skills):
            found.append(Problem("duplicate", "skills", "each skill once"))
    for part, low, high in (("latitude", -90, 90), ("longitude", -180, 180)):
        value = getattr(profile.home, part)
        if not isinstance(value, int | float) or not math.isfinite(value) or not low <= value <= high:
            found.append(Problem("invalid", f"home.{part}", f"between {low} and {high}"))
    if not isinstance(profile.shift.starts, time) or not isinstance(profile.shift.ends, time) \
            or profile.shift.ends <= profile.shift.starts:
        found.append(Problem("invalid", "shift.ends", "a shift ends after it starts, the same day"))
    if not isinstance(profile.capacity_per_day, int) or profile.capacity_per_day <= 0:
        found.append(Problem("invalid", "capacity_per_day", "at least one visit a day"))
    return tuple(found)


def check(profile: Profile) -> None:
    """The first problem as the command's answer (a 422 naming the field)."""
    if found := problems(profile):
        raise found[0].rejected()


def in_words(found: Sequence[Problem]) -> str:
    return "; ".join(map(str, found))


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
class ChangeTechnician:
    """Edit what a dispatcher manages; a field left None stays as it is."""

    name: str | None = None
    skills: tuple[str, ...] | None = None
    home: Position | None = None
    shift: Shift | None = None
    capacity_per_day: int | None = None


@dataclass(frozen=True)
class RetireTechnician:
    at: datetime
    reason: str


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


Command = RegisterTechnician | ChangeTechnician | RetireTechnician | ChangeSkills | TakeTimeOff | ChangeShift


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
class TechnicianChanged:
    """The whole profile after the change: a reader needs no earlier event to apply it."""

    name: str
    skills: tuple[str, ...]
    home: Position
    shift: Shift
    capacity_per_day: int


@dataclass(frozen=True)
class TechnicianRetired:
    """No new assignments from here on; visits already assigned stay until reassigned."""

    at: datetime
    reason: str


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


Event = TechnicianRegistered | TechnicianChanged | TechnicianRetired | SkillsChanged | TimeOffTaken | ShiftChanged
# The events as stored: `private.<Name>` (the commands append them, the board reads them back).
EVENTS = Codec([TechnicianRegistered, TechnicianChanged, TechnicianRetired, SkillsChanged, TimeOffTaken, ShiftChanged],
               prefix="private.")


@dataclass(frozen=True)
class Technician:
    registered: TechnicianRegistered | None = None
    skills: tuple[str, ...] = ()
    shift: Shift = Shift()
    capacity_per_day: int = 0
    time_off: tuple[tuple[date, date], ...] = ()
    name: str = ""
    home: Position | None = None  # None until registered
    retired: TechnicianRetired | None = None

    def off_on(self, day: date) -> bool:
        return any(first <= day <= last for first, last in self.time_off)

    def profile(self) -> Profile:
        # decide asks only once registered, and registering sets the home
        assert self.registered is not None
        assert self.home is not None
        return Profile(self.registered.technician_id, self.name, self.skills, self.home, self.shift,
                       self.capacity_per_day)


def decide(command: Command, state: Technician) -> list[Event]:
    match command:
        case RegisterTechnician():
            require(state.registered is None, "conflict", "technician_id", "already registered")
            check(Profile(command.technician_id, command.name, command.skills, command.home, command.shift,
                          command.capacity_per_day))
            return [TechnicianRegistered(command.technician_id, command.name.strip(), command.skills, command.home,
                                         command.office_city_code, command.shift, command.capacity_per_day)]
    require(state.registered is not None, "not_found", "technician_id", "no such technician",
            reason="technician.not_found")
    if state.retired is not None:
        raise Rejected("retired", "technician_id", f"retired on {state.retired.at.date().isoformat()}")
    match command:
        case ChangeTechnician():
            now = state.profile()
            after = replace(now, name=now.name if command.name is None else command.name.strip(),
                            skills=now.skills if command.skills is None else command.skills,
                            home=command.home or now.home, shift=command.shift or now.shift,
                            capacity_per_day=(now.capacity_per_day if command.capacity_per_day is None
                                              else command.capacity_per_day))
            check(after)
            if after == now:
                return []  # nothing to change: a repeated edit stores nothing
            return [TechnicianChanged(after.name, tuple(map(str, after.skills)), after.home, after.shift,
                                      after.capacity_per_day)]
        case RetireTechnician():
            require(bool(command.reason.strip()), "missing", "reason", "say why the technician leaves")
            return [TechnicianRetired(command.at, command.reason.strip())]
        case ChangeSkills():
            check(replace(state.profile(), skills=command.skills))
            return [SkillsChanged(command.skills)]
        case TakeTimeOff():
            require(command.last_day >= command.first_day, "invalid", "last_day", "before first_day")
            return [TimeOffTaken(command.first_day, command.last_day, command.reason)]
        case ChangeShift():
            check(replace(state.profile(), shift=command.shift, capacity_per_day=command.capacity_per_day))
            return [ShiftChanged(command.shift, command.capacity_per_day)]
    raise AssertionError(command)


def evolve(state: Technician, event: Event) -> Technician:
    match event:
        case TechnicianRegistered():
            return Technician(event, event.skills, event.shift, event.capacity_per_day, name=event.name,
                              home=event.home)
        case TechnicianChanged():
            return replace(state, name=event.name, skills=event.skills, home=event.home, shift=event.shift,
                           capacity_per_day=event.capacity_per_day)
        case TechnicianRetired():
            return replace(state, retired=event)
        case SkillsChanged():
            return replace(state, skills=event.skills)
        case TimeOffTaken():
            return replace(state, time_off=(*state.time_off, (event.first_day, event.last_day)))
        case ShiftChanged():
            return replace(state, shift=event.shift, capacity_per_day=event.capacity_per_day)
    raise AssertionError(event)
