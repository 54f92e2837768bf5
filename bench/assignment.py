"""python -m bench.assignment [--requests N] [--technicians M] [--rounds R] [--seed S]: rule D4's assignment.

(1) One request among M technicians (default 500): p50 and p99 latency of `assign` over N seeded
    random requests on Chinese coordinates, beside the layer below measured in the same run and on
    the same requests: the M geodesic distances that `assign` computes.
(2) One round (default 50 requests x 80 technicians, 100 seeded instances): `one_round`'s pure-Python
    Hungarian solver against the exact optimum of SciPy's linear_sum_assignment on the same cost
    matrix (target gap 0 %), and how far one-by-one `assign` (greedy) falls short.
Prints figures; asserts nothing about time."""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

import numpy as np
from scipy.optimize import linear_sum_assignment  # type: ignore[import-untyped]

from bench.report import Result, show
from weibao.dispatch.domain.assignment import (
    Need,
    RoundCosts,
    TechnicianView,
    assign,
    hungarian,
    one_round,
    round_costs,
)
from weibao.dispatch.domain.travel import Position, TravelModel, distance_km

CST = timezone(timedelta(hours=8))
NOW = datetime(2026, 6, 1, 9, 0, tzinfo=CST)
# Where Chinese field-service offices are (WGS-84, approximate city centres), with a weight
# for how many technicians and requests each sees.
CITIES: tuple[tuple[str, Position, int], ...] = (
    ("北京", (39.9042, 116.4074), 10), ("上海", (31.2304, 121.4737), 10), ("广州", (23.1291, 113.2644), 8),
    ("深圳", (22.5431, 114.0579), 8), ("杭州", (30.2741, 120.1551), 6), ("南京", (32.0603, 118.7969), 6),
    ("苏州", (31.2989, 120.5853), 5), ("成都", (30.5728, 104.0668), 6), ("重庆", (29.5630, 106.5516), 5),
    ("武汉", (30.5928, 114.3055), 6), ("西安", (34.3416, 108.9398), 5), ("天津", (39.3434, 117.3616), 4),
    ("沈阳", (41.8057, 123.4315), 3), ("哈尔滨", (45.8038, 126.5350), 2), ("长沙", (28.2282, 112.9388), 4),
    ("郑州", (34.7466, 113.6254), 4), ("济南", (36.6512, 117.1201), 3), ("青岛", (36.0671, 120.3826), 3),
    ("合肥", (31.8206, 117.2272), 3), ("福州", (26.0745, 119.2965), 2), ("厦门", (24.4798, 118.0894), 2),
    ("昆明", (25.0389, 102.7183), 2), ("贵阳", (26.6470, 106.6302), 1), ("南宁", (22.8170, 108.3665), 1),
    ("兰州", (36.0611, 103.8343), 1), ("乌鲁木齐", (43.8256, 87.6168), 1), ("拉萨", (29.6525, 91.1721), 1),
    ("呼和浩特", (40.8424, 111.7490), 1), ("海口", (20.0440, 110.1999), 1), ("太原", (37.8706, 112.5489), 2),
)
SKILLS = ("hardware", "network", "software:crm", "software:erp", "software:oa")
# C9's N hours, C15's 24 h, C14's 1 or 2 days, or no on-site deadline
DEADLINES = (timedelta(hours=2), timedelta(hours=4), timedelta(hours=8), timedelta(hours=24), timedelta(days=2), None)


def near(rng: random.Random, centre: Position, sigma_deg: float) -> Position:
    lat, lon = centre
    return (min(max(lat + rng.gauss(0, sigma_deg), 18.0), 53.0), min(max(lon + rng.gauss(0, sigma_deg), 74.0), 134.0))


def city(rng: random.Random) -> Position:
    return rng.choices([c[1] for c in CITIES], weights=[c[2] for c in CITIES])[0]


def technician(rng: random.Random, tid: str, position: Position) -> TechnicianView:
    start = NOW + timedelta(minutes=rng.randint(-120, 240))  # on shift already, or on a job till then
    return TechnicianView(
        technician_id=tid,
        skills=frozenset(rng.sample(SKILLS, rng.randint(1, 3))),
        position=position,
        available_from=start,
        shift_end=NOW + timedelta(hours=rng.uniform(2, 10)),
        capacity_left=rng.choice((0, 1, 2, 3, 4, 4, 4, 4, 4, 4)),
        on_leave=rng.random() < 0.05,
    )


def request(rng: random.Random, rid: str, site: Position) -> Need:
    due = rng.choice(DEADLINES)
    return Need(rid, site, rng.choice(SKILLS), None if due is None else NOW + due)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def bench_one(requests: int, technicians: int, seed: int) -> Result:
    rng = random.Random(seed)
    crew = [technician(rng, f"T{k:04d}", near(rng, city(rng), 0.25)) for k in range(technicians)]
    needs = [request(rng, f"R{i:05d}", near(rng, city(rng), 0.6)) for i in range(requests)]
    travel = TravelModel()
    positions = [t.position for t in crew]
    for warm in needs[:5]:
        assign(warm, crew, now=NOW, travel=travel)
    assign_ms: list[float] = []
    geo_ms: list[float] = []
    outcomes: Counter[str] = Counter()
    modes: Counter[str] = Counter()
    for n in needs:  # interleaved, so both see the same machine at the same moment
        started = time.perf_counter()
        for p in positions:
            distance_km(p, n.site)
        geo_ms.append((time.perf_counter() - started) * 1e3)
        started = time.perf_counter()
        result = assign(n, crew, now=NOW, travel=travel)
        assign_ms.append((time.perf_counter() - started) * 1e3)
        outcomes[result.explanation.rule] += 1
        if result.chosen is not None:
            modes[result.chosen.mode] += 1
    print(f"(1) one request among {technicians} technicians, {requests} seeded requests (seed {seed})")
    print(f"  assign:                 p50 {percentile(assign_ms, 0.5):7.2f} ms   "
          f"p99 {percentile(assign_ms, 0.99):7.2f} ms   mean {statistics.fmean(assign_ms):7.2f} ms")
    print(f"  {technicians} geodesic distances: p50 {percentile(geo_ms, 0.5):7.2f} ms   "
          f"p99 {percentile(geo_ms, 0.99):7.2f} ms   mean {statistics.fmean(geo_ms):7.2f} ms"
          f"   = {technicians * len(geo_ms) / (sum(geo_ms) / 1e3):,.0f} distances/s")
    print(f"  outcomes: {dict(sorted(outcomes.items()))}; chosen travel modes: {dict(sorted(modes.items()))}")
    return show(Result(f"assign among {technicians}", 1e3 / statistics.fmean(assign_ms),
                       f"{technicians} geodesic distances", 1e3 / statistics.fmean(geo_ms)))


def greedy_columns(costs: RoundCosts, crew: Sequence[TechnicianView], travel: TravelModel) -> list[int]:
    """One request after another with `assign`, each technician taken once: the columns it
    amounts to in the round's cost matrix (a request left over takes its own unassigned column)."""
    column = {tid: j for j, tid in enumerate(costs.technician_ids)}
    width = len(costs.technician_ids)
    taken: set[str] = set()
    columns = []
    for i, n in enumerate(costs.needs):
        chosen = assign(n, crew, now=NOW, travel=travel, exclude=frozenset(taken)).technician_id
        if chosen is None:
            columns.append(width + i)
        else:
            taken.add(chosen)
            columns.append(column[chosen])
    return columns


def travel_of(costs: RoundCosts, columns: Sequence[int]) -> tuple[float, int, int]:
    """Total travel minutes, late and unassigned requests of a solution."""
    minutes, late, unassigned = 0.0, 0, 0
    for i, j in enumerate(columns):
        if j >= len(costs.technician_ids):
            unassigned += 1
            continue
        pair = costs.weighed[i][j]
        minutes += pair.travel_minutes
        late += not pair.can_make_deadline
    return minutes, late, unassigned


def bench_round(rounds: int, requests: int, technicians: int, seed: int) -> None:
    rng = random.Random(seed)
    travel = TravelModel()
    gaps: list[float] = []
    ours_ms: list[float] = []
    scipy_ms: list[float] = []
    round_ms: list[float] = []
    greedy_late: list[int] = []
    greedy_unassigned: list[int] = []
    greedy_extra: list[float] = []
    served = late = 0
    for r in range(rounds):
        centre = city(rng)  # one office's region: road nearby, rail to the far corners
        crew = [technician(rng, f"T{k:03d}", near(rng, centre, 1.2)) for k in range(technicians)]
        needs = [request(rng, f"R{r:03d}-{i:02d}", near(rng, centre, 1.2)) for i in range(requests)]
        costs = round_costs(needs, crew, now=NOW, travel=travel)

        started = time.perf_counter()
        ours = hungarian(costs.matrix)
        ours_ms.append((time.perf_counter() - started) * 1e3)
        started = time.perf_counter()
        _, optimum = linear_sum_assignment(np.asarray(costs.matrix, dtype=np.float64))
        scipy_ms.append((time.perf_counter() - started) * 1e3)
        started = time.perf_counter()
        full = one_round(needs, crew, now=NOW, travel=travel)
        round_ms.append((time.perf_counter() - started) * 1e3)

        best = costs.total([int(j) for j in optimum])
        mine = costs.total(ours)
        if full.cost != mine:
            raise SystemExit(f"round {r}: one_round's cost {full.cost} differs from its solver's {mine}")
        gaps.append((mine - best) / best if best else 0.0)
        opt_minutes, opt_late, opt_unassigned = travel_of(costs, ours)
        served += requests - opt_unassigned
        late += opt_late
        g_minutes, g_late, g_unassigned = travel_of(costs, greedy_columns(costs, crew, travel))
        greedy_late.append(g_late - opt_late)
        greedy_unassigned.append(g_unassigned - opt_unassigned)
        if g_late == opt_late and g_unassigned == opt_unassigned and opt_minutes:
            greedy_extra.append((g_minutes - opt_minutes) / opt_minutes)
    print(f"(2) one round: {requests} requests x {technicians} technicians, {rounds} seeded instances (seed {seed})")
    print("  one_round (pure-Python Hungarian) vs scipy.optimize.linear_sum_assignment, same integer cost matrix:")
    print(f"  gap to the exact optimum: mean {statistics.fmean(gaps):.4%}   max {max(gaps):.4%}   (target 0 %)")
    print(f"  solver time per round: hungarian p50 {percentile(ours_ms, 0.5):.1f} ms, max {max(ours_ms):.1f} ms;"
          f" scipy p50 {percentile(scipy_ms, 0.5):.2f} ms;"
          f" whole one_round (costs + solve + explanations) p50 {percentile(round_ms, 0.5):.1f} ms")
    print(f"  optimum: {served}/{rounds * requests} requests assigned, {late} of them late (at risk)")
    extra = (f"travel +{statistics.fmean(greedy_extra):.1%} mean, +{max(greedy_extra):.1%} max"
             f" over the {len(greedy_extra)} rounds where it matched the optimum's counts") if greedy_extra else ""
    print(f"  greedy one-by-one assign for comparison: +{sum(greedy_unassigned)} unassigned,"
          f" +{sum(greedy_late)} late in total; {extra}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.assignment", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1_000, help="requests for (1) (default 1000)")
    parser.add_argument("--technicians", type=int, default=500, help="technicians for (1) (default 500)")
    parser.add_argument("--rounds", type=int, default=100, help="instances for (2) (default 100)")
    parser.add_argument("--round-size", type=int, nargs=2, default=(50, 80), metavar=("REQUESTS", "TECHNICIANS"),
                        help="one instance of (2) (default 50 80)")
    parser.add_argument("--seed", type=int, default=20260601)
    args = parser.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()} {platform.system()}, "
          f"{platform.processor() or 'unknown cpu'}")
    bench_one(args.requests, args.technicians, args.seed)
    round_requests, round_technicians = args.round_size
    bench_round(args.rounds, round_requests, round_technicians, seed=args.seed)


if __name__ == "__main__":
    main()
