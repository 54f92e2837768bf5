"""Day planning on PyVRP: a day's open visits across technicians, as routes with time windows.

The model, in PyVRP's terms (0.14):
- one vehicle type per technician (`num_available=1`): a depot where the route starts (the
  technician's position, or the site of a visit under way) and one where it ends (`home`),
  its time window the shift (service hours, rule C20), so every route is home by its end;
- one client per visit: the visit's duration as service duration, [earliest, deadline] as
  time window (arrival by the deadline, rules D1/D4);
- skills (rule D4) as routing profiles, PyVRP's mechanism for "vehicle may serve only these
  clients" (`pyvrp.read` builds the same for VRPLIB's VEHICLES_ALLOWED_CLIENTS): a profile per
  distinct skill set, where edges to and from visits outside the set are barred;
- every visit optional, with a prize, so a visit nobody can serve today is left unassigned
  instead of failing the solve. A deadline that cannot be met must not drop the visit (rule
  D4: the earliest arrival, flagged at risk): a visit with a deadline inside the day gets a
  second, "late" client at the same place whose window runs to the end of the shifts, and
  the two form a mutually exclusive group. Serving on time earns `Prizes.on_time` more than
  serving late; serving at all earns `Prizes.serve`; both are minutes of travel, times the
  visit's priority. The objective is travel minutes minus prizes collected.
- a visit under way (`Visit.locked_to`) is not in the model at all: its technician's route
  starts at that site when the visit ends, and the plan puts the visit first. Nothing the
  search does can move it.
- travel minutes are both the distance (the cost) and the duration of every edge.

Arrival times in the plan are recomputed from the routes with the earliest departures, so
the plan never depends on how PyVRP reports its schedule."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from pyvrp import Client, ClientGroup, Depot, Location, ProblemData, Result, Route, Solution, VehicleType, solve
from pyvrp.stop import MaxRuntime

from weibao.dispatch.planning.model import Plan, Stop, Technician, Visit
from weibao.dispatch.planning.travel import LatLon, TravelModel, matrix
from weibao.shared.errors import Rejected, require


@dataclass(frozen=True)
class Prizes:
    """What a visit of priority 1 is worth, in minutes of travel (times its priority)."""

    serve: int = 1_440  # serving it at all: a day of travel
    on_time: int = 720  # on top, serving it by its deadline

    def __post_init__(self) -> None:
        require(self.serve > 0 and self.on_time >= 0, "out_of_range", "prizes", "prizes are positive minutes")


def solve_data(data: ProblemData, *, seconds: float, seed: int = 0, initial: Solution | None = None) -> Result:
    """PyVRP's iterated local search for `seconds` (after its initial local search).

    When no visit is required (day planning), the empty solution is feasible; should the
    search find nothing feasible in time, it searches once more (another `seconds`) from that
    empty solution, so what comes back is feasible, never an infeasible plan."""
    result = solve(data, MaxRuntime(seconds), seed=seed, collect_stats=False, display=False,
                   initial_solution=initial)
    if result.best.is_feasible():
        return result
    empty = Solution(data, [])
    if not empty.is_feasible():
        return result  # required clients (a benchmark instance): the caller checks feasibility
    # Starting from a feasible solution, the best found stays feasible.
    return solve(data, MaxRuntime(seconds), seed=seed, collect_stats=False, display=False,
                 initial_solution=empty)


def plan_day(technicians: Sequence[Technician], visits: Sequence[Visit], travel: TravelModel, *,
             seconds: float, seed: int = 0, prizes: Prizes = Prizes()) -> Plan:
    """Plan a day's open visits across technicians. A visit locked to a technician (under
    way) is served first, from the shift's start (or its earliest) at its site."""
    return _Planner(technicians, visits, travel, prizes, now=None, previous=None).solve(seconds, seed)


def replan(previous: Plan, technicians: Sequence[Technician], visits: Sequence[Visit], urgent: Visit,
           travel: TravelModel, *, now: int, seconds: float, seed: int = 0, prizes: Prizes = Prizes()) -> Plan:
    """Plan again at minute `now` when an urgent request arrives.

    `visits` are the visits still open, those under way marked `locked_to` (the caller knows
    from check-ins, rule D5); `technicians` start where they are now. A visit under way stays
    first with its technician, with its arrival from `previous`; nobody starts before `now`.
    The previous routes are the search's starting point, not a constraint: any visit not
    under way may move to another technician (the benchmark counts how many do)."""
    require(all(v.id != urgent.id for v in visits), "duplicate", "urgent", "the urgent visit is already open")
    planner = _Planner(technicians, [*visits, urgent], travel, prizes, now=now, previous=previous)
    return planner.solve(seconds, seed)


@dataclass(frozen=True)
class _Locked:
    visit: Visit
    arrival: int
    start: int

    @property
    def end(self) -> int:
        return self.start + self.visit.duration


class _Planner:
    """One planning problem: the PyVRP data and the way back from its solution to a Plan."""

    def __init__(self, technicians: Sequence[Technician], visits: Sequence[Visit], travel: TravelModel,
                 prizes: Prizes, *, now: int | None, previous: Plan | None) -> None:
        _require_unique((t.id for t in technicians), "technicians")
        _require_unique((v.id for v in visits), "visits")
        self.technicians = list(technicians)
        self.visits = list(visits)
        self.now = now
        self.previous = previous
        self.locked = self._locked()
        locked_ids = {lock.visit.id for lock in self.locked.values()}
        skills = {skill for t in self.technicians for skill in t.skills}
        # Visits nobody has the skill for never enter the model.
        self.free = [v for v in self.visits if v.id not in locked_ids and v.skill in skills]

        # Locations: where each technician ends (index = technician), then where a route starts
        # when that is elsewhere (a site under way, or a re-plan's current position), then the
        # free visits; one travel matrix over all of them.
        points: list[LatLon] = [t.home for t in self.technicians]
        self.start_location: list[int] = []
        for ti, technician in enumerate(self.technicians):
            lock = self.locked.get(technician.id)
            start = lock.visit.location if lock is not None else technician.start
            if start == technician.home and lock is None:
                self.start_location.append(ti)
            else:
                self.start_location.append(len(points))
                points.append(start)
        self.first_visit_location = len(points)
        points += [v.location for v in self.free]
        self.points = points
        self.minutes = matrix(travel, points)
        self.prizes = prizes

    def _locked(self) -> dict[str, _Locked]:
        by_id = {t.id: t for t in self.technicians}
        locked: dict[str, _Locked] = {}
        for visit in self.visits:
            if visit.locked_to is None:
                continue
            technician = by_id.get(visit.locked_to)
            if technician is None:
                raise Rejected("unknown_technician", "locked_to", f"visit {visit.id} is under way with "
                               f"{visit.locked_to}, who is not among the technicians")
            if technician.id in locked:
                raise Rejected("invalid", "locked_to", f"{technician.id} has two visits under way")
            before = self._previous_stops().get(visit.id)
            if before is not None and before[0] == technician.id:
                arrival, start = before[1].arrival, before[1].start
            elif self.now is not None:
                arrival = start = self.now
            else:
                arrival = technician.shift_start
                start = max(arrival, visit.earliest)
            locked[technician.id] = _Locked(visit, arrival, start)
        return locked

    def _previous_stops(self) -> dict[str, tuple[str, Stop]]:
        if self.previous is None:
            return {}
        return {stop.visit_id: (technician, stop)
                for technician, stops in self.previous.routes.items() for stop in stops}

    def _ready(self, technician: Technician) -> int:
        """When the technician can set off on the rest of the route."""
        ready = technician.shift_start
        if self.now is not None:
            ready = max(ready, self.now)
        if (lock := self.locked.get(technician.id)) is not None:
            ready = max(ready, lock.end)
        return ready

    def _data(self, points: list[LatLon]) -> tuple[ProblemData, list[int]]:
        prizes = self.prizes
        n_techs = len(self.technicians)
        # Coordinates only label the locations (plots); the matrices carry the travel.
        locations = [Location(x=lon, y=lat) for lat, lon in points]
        depots = [Depot(location=i) for i in range(n_techs)]  # where each technician ends
        start_depot: list[int] = []
        for ti, location in enumerate(self.start_location):
            if location != ti:
                start_depot.append(len(depots))
                depots.append(Depot(location=location))
            else:
                start_depot.append(ti)

        # A profile per distinct set of skills the visits ask for. A barred edge takes longer
        # than any shift, so no feasible route uses it, and costs more than any prize. Not
        # PyVRP's MAX_VALUE: its time warp times the penalty overflows int64 and the search
        # stalls (seen: minutes in the first local search on a 1,000-visit day; an int64
        # overflow of time warp times penalty, most likely).
        asked = {v.skill for v in self.free}
        span = max(t.shift_end for t in self.technicians) - min(self._ready(t) for t in self.technicians)
        top_prize = (prizes.serve + prizes.on_time) * max((v.priority for v in self.free), default=1)
        barrier = 1 + max(span, 0) + 2 * top_prize
        profile_of: dict[frozenset[str], int] = {}
        matrices: list[npt.NDArray[np.int64]] = []
        vehicle_types: list[VehicleType] = []
        for ti, technician in enumerate(self.technicians):
            skills = technician.skills & asked
            if skills not in profile_of:
                profile_of[skills] = len(matrices)
                matrices.append(self._profile(skills, barrier))
            ready = self._ready(technician)
            vehicle_types.append(VehicleType(
                num_available=1,
                start_depot=start_depot[ti],
                end_depot=ti,
                tw_early=ready,
                tw_late=max(ready, technician.shift_end),
                profile=profile_of[skills],
                name=technician.id,
            ))

        clients: list[Client] = []
        groups: list[ClientGroup] = []
        client_visit: list[int] = []
        for vi, visit in enumerate(self.free):
            location = self.first_visit_location + vi
            day_end = max(t.shift_end for t in self.technicians if visit.skill in t.skills)
            on_time = (prizes.serve + prizes.on_time) * visit.priority
            late_possible = visit.latest < day_end
            group = None
            if late_possible:
                group = len(groups)
                groups.append(ClientGroup([len(clients), len(clients) + 1], required=False))
            clients.append(Client(location=location, service_duration=visit.duration, tw_early=visit.earliest,
                                  tw_late=visit.latest, prize=on_time, required=False, group=group,
                                  name=visit.id))
            client_visit.append(vi)
            if late_possible:
                clients.append(Client(location=location, service_duration=visit.duration,
                                      tw_early=visit.earliest, tw_late=day_end,
                                      prize=prizes.serve * visit.priority, required=False, group=group,
                                      name=f"{visit.id} (late)"))
                client_visit.append(vi)

        # PyVRP's stub types a matrix as `np.ndarray[int]`, which numpy's generics read as a shape.
        data = ProblemData(locations, clients, depots, vehicle_types, matrices, matrices,  # type: ignore[arg-type]
                           groups)
        return data, client_visit

    def _profile(self, skills: frozenset[str], barrier: int) -> npt.NDArray[np.int64]:
        matrix = self.minutes.copy()
        barred = [self.first_visit_location + vi for vi, v in enumerate(self.free) if v.skill not in skills]
        if barred:
            matrix[barred, :] = barrier
            matrix[:, barred] = barrier
            matrix[barred, barred] = 0
        return matrix

    def _warm_start(self, data: ProblemData, client_visit: list[int]) -> Solution | None:
        """The previous plan's routes, in this model, as the search's first solution."""
        if self.previous is None:
            return None
        clients_of: dict[str, list[int]] = {}
        for ci, vi in enumerate(client_visit):
            clients_of.setdefault(self.free[vi].id, []).append(ci)  # on time first, then late
        routes: list[Route] = []
        for ti, technician in enumerate(self.technicians):
            stops = self.previous.routes.get(technician.id, [])
            clients = [clients_of[s.visit_id][-1 if s.late else 0] for s in stops if s.visit_id in clients_of]
            if clients:
                routes.append(Route(data, clients, ti))
        return Solution(data, routes) if routes else None

    def solve(self, seconds: float, seed: int) -> Plan:
        if not self.free:
            return self._plan([[] for _ in self.technicians])
        data, client_visit = self._data(self.points)
        result = solve_data(data, seconds=seconds, seed=seed, initial=self._warm_start(data, client_visit))
        best = result.best
        if not best.is_feasible():  # cannot happen: solve_data falls back to the empty solution
            raise RuntimeError("the planner returned an infeasible solution")
        sequences: list[list[int]] = [[] for _ in self.technicians]
        for route in best.routes():
            sequences[route.vehicle_type()] = [client_visit[a.idx] for a in route if a.is_client()]
        return self._plan(sequences)

    def _plan(self, sequences: list[list[int]]) -> Plan:
        """The routes as stops with arrival times, leaving every place as early as possible."""
        served: set[int] = set()
        routes: dict[str, list[Stop]] = {}
        travel = 0
        for ti, technician in enumerate(self.technicians):
            stops: list[Stop] = []
            here, clock = self.start_location[ti], self._ready(technician)
            if (lock := self.locked.get(technician.id)) is not None:
                stops.append(Stop(lock.visit.id, lock.arrival, lock.start, lock.end,
                                  late=lock.arrival > lock.visit.latest))
            for vi in sequences[ti]:
                if vi in served:
                    raise RuntimeError(f"visit {self.free[vi].id} planned twice")
                served.add(vi)
                visit = self.free[vi]
                if visit.skill not in technician.skills:
                    raise RuntimeError(f"visit {visit.id} planned for {technician.id}, who lacks {visit.skill}")
                site = self.first_visit_location + vi
                leg = int(self.minutes[here, site])
                travel += leg
                arrival = clock + leg
                start = max(arrival, visit.earliest)
                stops.append(Stop(visit.id, arrival, start, start + visit.duration, late=arrival > visit.latest))
                here, clock = site, start + visit.duration
            travel += int(self.minutes[here, ti])
            routes[technician.id] = stops
        assigned = {stop.visit_id for stops in routes.values() for stop in stops}
        late = {stop.visit_id for stops in routes.values() for stop in stops if stop.late}
        return Plan(
            routes=routes,
            unassigned=[v.id for v in self.visits if v.id not in assigned],
            total_travel_minutes=travel,
            late_visits=[v.id for v in self.visits if v.id in late],
        )


def _require_unique(ids: Iterable[str], field: str) -> None:
    seen: set[str] = set()
    for id_ in ids:
        if id_ in seen:
            raise Rejected("duplicate", field, f"{id_} appears twice")
        seen.add(id_)

