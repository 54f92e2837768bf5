"""What day planning takes and gives: technicians, open visits, and the plan.

Times are whole minutes from the start of the planning day (00:00 local time of the
servicing office), so 9:00-18:00 service hours (rule C20) are 540-1080. A visit's `latest`
is its response deadline (rules D1, D2): the technician must be on site by then."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from weibao.dispatch.planning.travel import LatLon
from weibao.shared.errors import Rejected, require


@dataclass(frozen=True)
class Technician:
    id: str
    start: LatLon  # where the day starts; for a re-plan, where the technician is now
    shift_start: int
    shift_end: int  # back at `home` by then
    skills: frozenset[str]
    end: LatLon | None = None  # where the shift ends; None: back at `start`

    def __post_init__(self) -> None:
        require(self.shift_start <= self.shift_end, "invalid", "shift_end", "a shift ends after it starts")
        _require_location(self.start, "start")
        if self.end is not None:
            _require_location(self.end, "end")

    @property
    def home(self) -> LatLon:
        return self.start if self.end is None else self.end


@dataclass(frozen=True)
class Visit:
    id: str
    location: LatLon
    earliest: int
    latest: int  # the deadline for arriving on site
    duration: int
    skill: str
    # A visit under way stays with this technician, first in the route (rule D5: checked in).
    locked_to: str | None = None
    # Weight of the visit against travel and other visits; an urgent request gets more.
    priority: int = 1

    def __post_init__(self) -> None:
        require(self.earliest <= self.latest, "invalid", "latest", "the deadline is not before the earliest start")
        require(self.duration >= 0, "out_of_range", "duration", "a visit lasts zero or more minutes")
        require(self.priority >= 1, "out_of_range", "priority", "priority is a positive whole number")
        _require_location(self.location, "location")


@dataclass(frozen=True)
class Stop:
    visit_id: str
    arrival: int  # on site (the check-in that stops the response clock, rule D5)
    start: int  # service starts: the arrival, or the visit's earliest when the technician is early
    end: int
    late: bool  # arrived after the deadline: flagged at risk (rule D4)


@dataclass(frozen=True)
class Plan:
    routes: dict[str, list[Stop]]  # technician id -> stops in order; every technician has an entry
    unassigned: list[str]  # visits no technician can serve today
    total_travel_minutes: int  # from each route's start to its return home
    late_visits: list[str]  # served, but after the deadline (rule D4: at risk)

    def technician_of(self, visit_id: str) -> str | None:
        for technician, stops in self.routes.items():
            if any(stop.visit_id == visit_id for stop in stops):
                return technician
        return None

    def stop_of(self, visit_id: str) -> Stop | None:
        for stops in self.routes.values():
            for stop in stops:
                if stop.visit_id == visit_id:
                    return stop
        return None

    @property
    def assigned(self) -> int:
        return sum(len(stops) for stops in self.routes.values())


def _require_location(point: LatLon, field: str) -> None:
    lat, lon = point
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise Rejected("out_of_range", field, "latitude and longitude are WGS-84 degrees")


@dataclass(frozen=True)
class NotPlanned:
    """A technician the plan leaves out, with the visits under way with them, and why."""

    technician_id: str
    reason: str
    visits: tuple[str, ...] = ()


def plannable(technicians: Sequence[Technician], visits: Sequence[Visit], *,
              absent: Mapping[str, str] | None = None) -> tuple[list[Technician], list[Visit], list[NotPlanned]]:
    """What the solver can plan, and who it cannot, instead of refusing the whole day.

    The solver puts a visit under way first in its technician's route; it cannot when the
    technician is not planned (retired, or a record the technician rule refuses: `absent`
    maps them to the reason), nor when one technician has two visits under way at once
    (checked in twice without checking out: the API allows it, the order is unknown).
    Those technicians and their visits under way are left out and named; everyone and
    everything else is planned."""
    absent = dict(absent or {})
    under_way: dict[str, list[str]] = {}
    for visit in visits:
        if visit.locked_to is not None:
            under_way.setdefault(visit.locked_to, []).append(visit.id)
    known = {t.id for t in technicians}
    left_out: dict[str, NotPlanned] = {}
    for technician_id, reason in absent.items():
        left_out[technician_id] = NotPlanned(technician_id, reason, tuple(sorted(under_way.get(technician_id, ()))))
    for technician_id, ids in under_way.items():
        if technician_id in left_out:
            continue
        if technician_id not in known:
            left_out[technician_id] = NotPlanned(technician_id, "not among the technicians planned; the visits "
                                                 "under way with them stay with them", tuple(sorted(ids)))
        elif len(ids) > 1:
            left_out[technician_id] = NotPlanned(
                technician_id, f"{len(ids)} visits under way at once ({', '.join(sorted(ids))}): which one ends "
                "first is not known, so their day cannot be routed; a dispatcher decides", tuple(sorted(ids)))
    kept = [t for t in technicians if t.id not in left_out]
    open_visits = [v for v in visits if v.locked_to is None or v.locked_to not in left_out]
    return kept, open_visits, sorted(left_out.values(), key=lambda n: n.technician_id)
