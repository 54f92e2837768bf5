"""python -m bench.planning [--quick] [--seconds S] [--day-seconds S] [--replan-seconds S]: day planning.

a) Solomon VRPTW instances solved by the engine day planning uses (PyVRP), a fixed time per
   instance; the gap to the best-known solution (DIMACS distances), every route checked by an
   independent checker (bench/solomon.py).
b) A synthetic day (1,000 visits, 200 technicians, seven Chinese cities): plan_day for a fixed
   time beside the nearest-available greedy of rule D4, both checked by the same independent
   walk over the routes (geopy travel per leg, skills, shifts, each visit once).
c) The same day re-planned at 11:00 for an urgent request, visits under way kept.
Prints figures; asserts nothing about time."""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from importlib.metadata import version
from pathlib import Path

import numpy as np

from bench.solomon import Outcome, solve_instance
from weibao.dispatch.planning.model import Plan, Stop, Technician, Visit
from weibao.dispatch.planning.solver import plan_day, replan
from weibao.dispatch.planning.travel import (
    LatLon,
    Mode,
    TravelModel,
    geodesic_km,
    matrix,
    minutes_for_km,
    travel_minutes,
)

DATA = Path(os.environ.get("WEIBAO_VRPTW_DATA", Path(__file__).resolve().parents[2] / "shared/data/vrptw"))
QUICK_INSTANCES = ("C101", "R101", "RC105", "R211")
TARGET_GAP = 0.01

# name, latitude, longitude, share of the work
CITIES = (
    ("Shanghai", 31.2304, 121.4737, 0.20),
    ("Beijing", 39.9042, 116.4074, 0.20),
    ("Guangzhou", 23.1291, 113.2644, 0.14),
    ("Shenzhen", 22.5431, 114.0579, 0.14),
    ("Chengdu", 30.5728, 104.0668, 0.11),
    ("Hangzhou", 30.2741, 120.1551, 0.11),
    ("Wuhan", 30.5928, 114.3055, 0.10),
)
SERVICE_HOURS = (540, 1080)  # 9:00-18:00, rule C20


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.planning", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="four instances, a small day")
    parser.add_argument("--seconds", type=float, default=None,
                        help="search time per VRPTW instance (default 10, quick 2)")
    parser.add_argument("--day-seconds", type=float, default=None,
                        help="search time for the synthetic day (default 60, quick 3)")
    parser.add_argument("--replan-seconds", type=float, default=None,
                        help="search time for the re-plan (default 15, quick 2)")
    parser.add_argument("--set", default="solomon", choices=("solomon", "gh200"), help="VRPTW instance set")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                        help="instances solved at once (one process each)")
    parser.add_argument("--visits", type=int, default=None, help="visits in the synthetic day (default 1000)")
    parser.add_argument("--technicians", type=int, default=None, help="technicians (default 200)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


# --- a) VRPTW benchmark instances --------------------------------------------------------------

def bench_vrptw(instance_set: str, seconds: float, workers: int, quick: bool, seed: int) -> None:
    paths = sorted((DATA / instance_set).glob("*.vrp"), key=_natural)
    if quick:
        paths = [p for p in paths if p.stem in QUICK_INSTANCES] or paths[:4]
    print(f"a) {instance_set}: {len(paths)} instances, {seconds:g} s search per instance "
          f"(after PyVRP's initial local search), {workers} at a time, seed {seed}", flush=True)
    print(f"   {'instance':<9} {'BKS':>8} {'ours':>8} {'gap':>7} {'routes':>6} {'infeasible':>10} "
          f"{'iterations':>10} {'wall s':>6}")
    started = time.perf_counter()
    outcomes: list[Outcome] = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for outcome in pool.map(solve_instance, [(p, seconds, seed) for p in paths]):
            outcomes.append(outcome)
            flag = "" if not outcome.problems else "  " + "; ".join(outcome.problems[:3])
            print(f"   {outcome.name:<9} {outcome.bks / 10:>8.1f} {outcome.cost / 10:>8.1f} {outcome.gap:>7.2%} "
                  f"{outcome.routes:>6} {outcome.infeasible_routes:>10} {outcome.iterations:>10} "
                  f"{outcome.seconds:>6.1f}{flag}", flush=True)
    wall = time.perf_counter() - started
    gaps = [o.gap for o in outcomes]
    infeasible = sum(o.infeasible_routes for o in outcomes)
    other = sum(1 for o in outcomes if o.problems and not o.infeasible_routes)
    bks_bad = [o.name for o in outcomes if o.bks_problems or o.bks_cost != o.bks]
    print(f"   mean gap {np.mean(gaps):.3%} (target <= {TARGET_GAP:.0%}), median {np.median(gaps):.3%}, "
          f"max {max(gaps):.3%}; at BKS or better: {sum(g <= 0 for g in gaps)}/{len(gaps)}")
    for prefix in _classes(outcomes):
        cls = [o.gap for o in outcomes if _class(o.name) == prefix]
        print(f"     {prefix:<4} mean gap {np.mean(cls):.3%} over {len(cls)}")
    print(f"   routes found infeasible by the checker: {infeasible} (target 0); "
          f"instances with other problems (customers missed or repeated, too many routes): {other}")
    print(f"   checker self-test on the BKS routes: {len(outcomes) - len(bks_bad)}/{len(outcomes)} feasible "
          f"at exactly the published cost{' (' + ', '.join(bks_bad) + ')' if bks_bad else ''}")
    print(f"   wall time for the set: {wall:.0f} s", flush=True)


def _natural(path: Path) -> tuple[str, int, int]:
    parts = path.stem.replace("_", " ").split()
    head = "".join(c for c in parts[0] if c.isalpha())
    digits = [int("".join(c for c in part if c.isdigit()) or 0) for part in parts]
    return head, digits[0], digits[-1]


def _class(name: str) -> str:
    head = "".join(c for c in name.split("_", maxsplit=1)[0] if c.isalpha())
    digit = next(c for c in name if c.isdigit())
    return head + digit


def _classes(outcomes: list[Outcome]) -> list[str]:
    return list(dict.fromkeys(_class(o.name) for o in outcomes))


# --- b) a synthetic day ------------------------------------------------------------------------

def offset(origin: LatLon, east_km: float, north_km: float) -> LatLon:
    lat, lon = origin
    return (lat + north_km / 110.574, lon + east_km / (111.320 * math.cos(math.radians(lat))))


def synthetic_day(n_visits: int, n_technicians: int, seed: int) -> tuple[list[Technician], list[Visit]]:
    """Technicians live near a city centre; visits are spread over the city (a few out of town,
    150-400 km away, by rail); deadlines from a few hours (C9 local N hours, C14, C15) to the
    end of the day; some appointments start later."""
    rng = random.Random(seed)
    weights = [c[3] for c in CITIES]
    technicians: list[Technician] = []
    for i in range(n_technicians):
        _, lat, lon, _ = CITIES[i % len(CITIES)] if i < len(CITIES) else rng.choices(CITIES, weights)[0]
        skills = {"software"}
        if rng.random() < 0.45:
            skills.add("hardware")
        if rng.random() < 0.35:
            skills.add("network")
        early = rng.random() < 0.2
        technicians.append(Technician(
            id=f"T{i:03d}",
            start=offset((lat, lon), rng.gauss(0, 8), rng.gauss(0, 8)),
            shift_start=480 if early else SERVICE_HOURS[0],
            shift_end=1020 if early else SERVICE_HOURS[1],
            skills=frozenset(skills),
        ))
    visits: list[Visit] = []
    for i in range(n_visits):
        _, lat, lon, _ = rng.choices(CITIES, weights)[0]
        out_of_town = rng.random() < 0.02
        if out_of_town:
            bearing, km = rng.uniform(0, 2 * math.pi), rng.uniform(150, 400)
            location = offset((lat, lon), km * math.cos(bearing), km * math.sin(bearing))
        else:
            east, north = (max(-40.0, min(40.0, rng.gauss(0, 12))) for _ in range(2))
            location = offset((lat, lon), east, north)
        earliest = SERVICE_HOURS[0] if rng.random() < 0.75 else rng.randrange(600, 900, 30)
        if out_of_town or rng.random() < 0.45:
            latest = SERVICE_HOURS[1]  # out of town: M days (C9), so the end of today at the latest
        else:
            latest = min(SERVICE_HOURS[1], earliest + rng.choice((120, 180, 240, 240, 360)))
        skill = rng.choices(("software", "hardware", "network"), (0.6, 0.25, 0.15))[0]
        visits.append(Visit(
            id=f"V{i:04d}", location=location, earliest=earliest, latest=latest,
            duration=rng.choice((45, 60, 60, 90, 120)), skill=skill, priority=2 if rng.random() < 0.1 else 1,
        ))
    return technicians, visits


def greedy(technicians: list[Technician], visits: list[Visit], travel: TravelModel) -> Plan:
    """Nearest available, rule D4 one visit at a time in deadline order: among the technicians
    with the skill who can arrive in time (and be home by the shift's end), the least travel;
    when none can, the earliest arrival (late); when nobody can fit it in, unassigned."""
    n = len(technicians)
    minutes = matrix(travel, [*(t.start for t in technicians), *(v.location for v in visits)])
    home = np.arange(n)
    here = home.copy()
    free_at = np.array([t.shift_start for t in technicians])
    shift_end = np.array([t.shift_end for t in technicians])
    routes: dict[str, list[Stop]] = {t.id: [] for t in technicians}
    unassigned: list[str] = []
    for vi in sorted(range(len(visits)), key=lambda i: (visits[i].latest, visits[i].earliest, i)):
        visit, site = visits[vi], n + vi
        able = np.array([visit.skill in t.skills for t in technicians])
        legs = minutes[here, site]
        arrival = free_at + legs
        start = np.maximum(arrival, visit.earliest)
        end = start + visit.duration
        fits = able & (end + minutes[site, home] <= shift_end)
        if not fits.any():
            unassigned.append(visit.id)
            continue
        in_time = fits & (arrival <= visit.latest)
        if in_time.any():
            chosen = int(np.argmin(np.where(in_time, legs * 10_000 + arrival, np.iinfo(np.int64).max)))
        else:
            chosen = int(np.argmin(np.where(fits, arrival, np.iinfo(np.int64).max)))
        routes[technicians[chosen].id].append(Stop(visit.id, int(arrival[chosen]), int(start[chosen]),
                                                   int(end[chosen]), late=bool(arrival[chosen] > visit.latest)))
        here[chosen], free_at[chosen] = site, end[chosen]
    index = {v.id: n + vi for vi, v in enumerate(visits)}
    travel_total = 0
    for ti, technician in enumerate(technicians):
        spot = ti
        for stop in routes[technician.id]:
            site = index[stop.visit_id]
            travel_total += int(minutes[spot, site])
            spot = site
        travel_total += int(minutes[spot, ti])
    late = {s.visit_id for stops in routes.values() for s in stops if s.late}
    return Plan(routes, unassigned, travel_total, [v.id for v in visits if v.id in late])


@dataclass(frozen=True)
class DayFigures:
    assigned: int
    on_time: int
    late: int
    unassigned: int
    travel_minutes: int
    modes: dict[Mode, int]
    problems: list[str]


def check_day(plan: Plan, technicians: list[Technician], visits: list[Visit], travel: TravelModel, *,
              ready: dict[str, int] | None = None, first: dict[str, Stop] | None = None) -> DayFigures:
    """Walk every route again with geopy travel per leg (not the planner's matrix): skills,
    arrivals as stated, service inside the shift and home by its end, each visit once, and
    the plan's own totals. `first`: a stop a route must start with (a visit under way),
    `ready`: when that technician sets off after it."""
    by_id = {v.id: v for v in visits}
    problems: list[str] = []
    seen: set[str] = set()
    on_time = late = travel_total = 0
    modes: dict[Mode, int] = {"road": 0, "rail": 0, "air": 0}
    for technician in technicians:
        stops = plan.routes.get(technician.id, [])
        here, clock = technician.start, technician.shift_start
        if ready is not None:
            clock = ready.get(technician.id, clock)
        if first is not None and technician.id in first:
            must = first[technician.id]
            if not stops or stops[0] != must:
                problems.append(f"{technician.id}: the visit under way {must.visit_id} is not first")
            else:
                here = by_id[must.visit_id].location
                clock = max(clock, must.end)
                seen.add(must.visit_id)
                on_time += not must.late
                late += must.late
                stops = stops[1:]
        for stop in stops:
            visit = by_id.get(stop.visit_id)
            if visit is None or stop.visit_id in seen:
                problems.append(f"{technician.id}: {stop.visit_id} unknown or planned twice")
                continue
            seen.add(visit.id)
            if visit.skill not in technician.skills:
                problems.append(f"{technician.id} lacks {visit.skill} for {visit.id}")
            km = geodesic_km(here, visit.location)
            leg = minutes_for_km(travel, km)
            modes[travel.mode_for(km)] += 1
            travel_total += leg
            arrival = clock + leg
            start = max(arrival, visit.earliest)
            if (arrival, start, start + visit.duration) != (stop.arrival, stop.start, stop.end):
                problems.append(f"{visit.id}: planned {stop.arrival}/{stop.start}, recomputed {arrival}/{start}")
            if (arrival > visit.latest) != stop.late:
                problems.append(f"{visit.id}: late flag wrong")
            on_time += arrival <= visit.latest
            late += arrival > visit.latest
            here, clock = visit.location, start + visit.duration
        back = travel_minutes(here, technician.home, travel)
        travel_total += back
        if clock + back > technician.shift_end and stops:
            problems.append(f"{technician.id}: home at {clock + back} > shift end {technician.shift_end}")
    missing = set(by_id) - seen - set(plan.unassigned)
    if missing:
        problems.append(f"{len(missing)} visits neither planned nor unassigned")
    if travel_total != plan.total_travel_minutes:
        problems.append(f"travel {plan.total_travel_minutes} stated, {travel_total} recomputed")
    return DayFigures(len(seen), on_time, late, len(plan.unassigned), travel_total, modes, problems)


def _show(label: str, figures: DayFigures, total: int, seconds: float) -> None:
    modes = ", ".join(f"{mode} {count}" for mode, count in figures.modes.items())
    print(f"   {label:<26} {seconds:>7.1f} {figures.on_time / total:>8.1%} {figures.assigned:>8} "
          f"{figures.late:>5} {figures.unassigned:>10} {figures.travel_minutes:>9,} "
          f"{figures.travel_minutes / max(figures.assigned, 1):>8.1f}   {len(figures.problems)}  ({modes} legs)")
    for problem in figures.problems[:5]:
        print(f"      ! {problem}")


def bench_day(n_visits: int, n_technicians: int, seconds: float, replan_seconds: float, seed: int) -> None:
    travel = TravelModel()
    technicians, visits = synthetic_day(n_visits, n_technicians, seed)
    deadlines = sum(v.latest < SERVICE_HOURS[1] for v in visits)
    print(f"\nb) synthetic day: {n_visits} visits, {n_technicians} technicians, {len(CITIES)} cities "
          f"(seed {seed}); {deadlines} visits due before 18:00; {travel}")
    print(f"   plan_day search budget {seconds:g} s; times below are wall clock, model building included")
    print(f"   {'':<26} {'time s':>7} {'SLA':>8} {'assigned':>8} {'late':>5} {'unassigned':>10} "
          f"{'travel min':>9} {'min/visit':>8}   problems")

    started = time.perf_counter()
    baseline = greedy(technicians, visits, travel)
    greedy_seconds = time.perf_counter() - started
    _show("greedy nearest (D4)", check_day(baseline, technicians, visits, travel), n_visits, greedy_seconds)

    started = time.perf_counter()
    plan = plan_day(technicians, visits, travel, seconds=seconds, seed=seed)
    plan_seconds = time.perf_counter() - started
    _show("plan_day (PyVRP)", check_day(plan, technicians, visits, travel), n_visits, plan_seconds)
    print("   SLA: share of all visits on site by their deadline (unassigned count as missed)")

    bench_replan(plan, technicians, visits, travel, seconds=replan_seconds, seed=seed)


def bench_replan(plan: Plan, technicians: list[Technician], visits: list[Visit], travel: TravelModel, *,
                 seconds: float, seed: int) -> None:
    """At 11:00 an urgent request comes in next to a busy technician: finished visits close,
    the ones under way lock, everyone else is where their last visit left them."""
    now = 660
    by_id = {v.id: v for v in visits}
    open_visits: list[Visit] = []
    moved: list[Technician] = []
    first: dict[str, Stop] = {}
    ready: dict[str, int] = {}
    for technician in technicians:
        stops = plan.routes[technician.id]
        done = [s for s in stops if s.end <= now]
        under_way = [s for s in stops if s.start <= now < s.end]
        position = by_id[done[-1].visit_id].location if done else technician.start
        for stop in under_way:
            open_visits.append(replace(by_id[stop.visit_id], locked_to=technician.id))
            first[technician.id] = stop
            ready[technician.id] = max(now, stop.end)
        moved.append(replace(technician, start=position, end=technician.home))
        ready.setdefault(technician.id, max(now, technician.shift_start))
    planned = {s.visit_id for stops in plan.routes.values() for s in stops}
    finished = {s.visit_id for stops in plan.routes.values() for s in stops if s.end <= now}
    locked = {v.id for v in open_visits}
    open_visits += [v for v in visits if v.id not in finished and v.id not in locked]
    busiest = max(technicians, key=lambda t: len(plan.routes[t.id]))
    urgent = Visit("URGENT", offset(busiest.start, 3, 2), now, now + 120, 60, "software", priority=10)

    started = time.perf_counter()
    again = replan(plan, moved, open_visits, urgent, travel, now=now, seconds=seconds, seed=seed)
    elapsed = time.perf_counter() - started
    figures = check_day(again, moved, [*open_visits, urgent], travel, ready=ready, first=first)
    urgent_stop = again.stop_of("URGENT")
    changed = sum(1 for v in open_visits if v.id in planned and again.technician_of(v.id) is not None
                  and again.technician_of(v.id) != plan.technician_of(v.id))
    print(f"\nc) replan at 11:00 with an urgent visit (deadline 13:00, priority 10), budget {seconds:g} s: "
          f"{elapsed:.1f} s wall")
    print(f"   {len(open_visits)} visits open, {len(first)} under way (all kept first: "
          f"{'yes' if not any('under way' in p for p in figures.problems) else 'NO'}); urgent "
          + (f"with {again.technician_of('URGENT')}, arrives {urgent_stop.arrival // 60}:"
             f"{urgent_stop.arrival % 60:02d} ({'LATE' if urgent_stop.late else 'on time'})"
             if urgent_stop else "UNASSIGNED"))
    print(f"   open visits now with another technician than planned: {changed}; on time {figures.on_time}, "
          f"late {figures.late}, unassigned {figures.unassigned}; checker problems {len(figures.problems)}")
    for problem in figures.problems[:5]:
        print(f"      ! {problem}")


def main() -> None:
    args = parse_args()
    seconds = args.seconds if args.seconds is not None else (2.0 if args.quick else 10.0)
    day_seconds = args.day_seconds if args.day_seconds is not None else (3.0 if args.quick else 60.0)
    replan_seconds = args.replan_seconds if args.replan_seconds is not None else (2.0 if args.quick else 15.0)
    n_visits = args.visits or (150 if args.quick else 1000)
    n_technicians = args.technicians or (30 if args.quick else 200)
    print(f"bench.planning: Python {platform.python_version()}, PyVRP {version('pyvrp')}, "
          f"vrplib {version('vrplib')}, {os.cpu_count()} CPUs{' (quick)' if args.quick else ''}")
    bench_vrptw(args.set, seconds, args.workers, args.quick, args.seed)
    bench_day(n_visits, n_technicians, day_seconds, replan_seconds, args.seed)


if __name__ == "__main__":
    main()
