"""Solomon (and Gehring & Homberger) VRPTW instances: read, solve with dispatch's engine, check.

The checker is independent of PyVRP: it reads the instance with `vrplib` (raw numbers, no
edge weights), computes DIMACS distances itself (the Euclidean distance truncated to one
decimal, in tenths: floor(10 * d), exact in integers for integer coordinates) and scales time
windows, service times and the BKS cost by 10 the same way, then walks every route."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import vrplib  # type: ignore[import-untyped]


@dataclass(frozen=True)
class Instance:
    name: str
    coords: list[tuple[float, float]]  # index 0 is the depot
    demand: list[int]
    capacity: int
    early: list[int]  # tenths of time units (DIMACS)
    late: list[int]
    service: list[int]
    vehicles: int

    def distance(self, i: int, j: int) -> int:
        (x1, y1), (x2, y2) = self.coords[i], self.coords[j]
        dx, dy = x1 - x2, y1 - y2
        if float(dx).is_integer() and float(dy).is_integer():
            return math.isqrt(100 * (int(dx) ** 2 + int(dy) ** 2))  # floor(10 * sqrt(...)), exactly
        return math.floor(10 * math.hypot(dx, dy))


def load(path: Path) -> Instance:
    raw = vrplib.read_instance(path, compute_edge_weights=False)
    n = int(raw["dimension"])
    # one number for every customer, or one per location
    services = [float(s) for s in np.broadcast_to(np.asarray(raw["service_time"], dtype=float), (n,))]
    services[0] = 0.0
    return Instance(
        name=path.stem,
        coords=[(float(x), float(y)) for x, y in raw["node_coord"]],
        demand=[int(d) for d in raw["demand"]],
        capacity=int(raw["capacity"]),
        early=[_tenths(tw[0]) for tw in raw["time_window"]],
        late=[_tenths(tw[1]) for tw in raw["time_window"]],
        service=[_tenths(s) for s in services],
        vehicles=int(raw.get("vehicles", n - 1)),
    )


def best_known(path: Path) -> tuple[int, list[list[int]]]:
    """The BKS cost in DIMACS tenths and its routes (customer numbers, depot 0)."""
    solution = vrplib.read_solution(path)
    return round(float(solution["cost"]) * 10), [list(map(int, r)) for r in solution["routes"]]


def _tenths(value: float) -> int:
    return math.floor(10 * float(value) + 1e-9)


@dataclass
class Check:
    cost: int = 0
    routes: int = 0
    infeasible_routes: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def feasible(self) -> bool:
        return not self.problems


def check(instance: Instance, routes: list[list[int]]) -> Check:
    """Walks every route from the depot and back: capacity, time windows (service must start
    by the window's end; waiting allowed), return by the depot's closing; every customer
    exactly once; no more routes than vehicles. Costs in DIMACS tenths."""
    result = Check()
    seen: dict[int, int] = {}
    for number, route in enumerate(routes):
        if not route:
            continue
        result.routes += 1
        bad: list[str] = []
        load_, clock, here = 0, instance.early[0], 0
        for customer in route:
            if not 1 <= customer < len(instance.coords):
                bad.append(f"route {number}: {customer} is not a customer")
                continue
            seen[customer] = seen.get(customer, 0) + 1
            load_ += instance.demand[customer]
            leg = instance.distance(here, customer)
            result.cost += leg
            start = max(clock + leg, instance.early[customer])
            if start > instance.late[customer]:
                bad.append(f"route {number}: customer {customer} starts at {start} > {instance.late[customer]}")
            clock, here = start + instance.service[customer], customer
        back = instance.distance(here, 0)
        result.cost += back
        if clock + back > instance.late[0]:
            bad.append(f"route {number}: back at the depot at {clock + back} > {instance.late[0]}")
        if load_ > instance.capacity:
            bad.append(f"route {number}: load {load_} > capacity {instance.capacity}")
        if bad:
            result.infeasible_routes += 1
            result.problems.extend(bad)
    for customer in range(1, len(instance.coords)):
        if seen.get(customer, 0) != 1:
            result.problems.append(f"customer {customer} visited {seen.get(customer, 0)} times")
    if result.routes > instance.vehicles:
        result.problems.append(f"{result.routes} routes > {instance.vehicles} vehicles")
    return result


@dataclass(frozen=True)
class Outcome:
    name: str
    bks: int
    cost: int
    routes: int
    infeasible_routes: int
    problems: list[str]
    bks_problems: list[str]
    bks_cost: int  # the BKS routes' cost as the checker computes it
    seconds: float
    iterations: int

    @property
    def gap(self) -> float:
        return (self.cost - self.bks) / self.bks


def solve_instance(path_and_budget: tuple[Path, float, int]) -> Outcome:
    """Solve one instance (in a worker process) with the engine day planning uses."""
    from pyvrp import read

    from weibao.dispatch.planning.solver import solve_data

    path, seconds, seed = path_and_budget
    instance = load(path)
    bks, bks_routes = best_known(path.with_suffix(".sol"))
    bks_check = check(instance, bks_routes)

    started = time.perf_counter()
    data = read(path, round_func="dimacs")
    result = solve_data(data, seconds=seconds, seed=seed)
    elapsed = time.perf_counter() - started
    routes = [[data.client(a.idx).location for a in route if a.is_client()] for route in result.best.routes()]
    ours = check(instance, routes)
    if not result.best.is_feasible():
        ours.problems.insert(0, "PyVRP found no feasible solution")
    return Outcome(path.stem, bks, ours.cost, ours.routes, ours.infeasible_routes, ours.problems,
                   bks_check.problems, bks_check.cost, elapsed, result.num_iterations)
