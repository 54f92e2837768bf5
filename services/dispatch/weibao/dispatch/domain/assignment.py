"""Rule D4: which technician goes on site.

A technician is chosen by skill, availability, travel time from where they are, and the
deadline (D1): among those who can arrive in time, the least travel; when none can, the
earliest arrival, and the request is flagged at risk. Every decision carries an
`Explanation` listing each technician considered, with the figures and the reasons that
kept the ineligible ones out, so a dispatcher can check it and `override` it with a reason.

`one_round` assigns several requests at once, each technician to at most one of them,
with the least total cost for the whole round (see `round_costs` for the objective).
The optimum is computed by `hungarian`, a pure-Python Hungarian algorithm: the domain
stays free of numerical libraries, and rounds of tens of requests take milliseconds.
The solver is a parameter, so the application may pass a compiled one (SciPy's
`linear_sum_assignment`) for big rounds; the benchmark checks both give the same optimum.

Pure: no I/O, no clock (`now` is an argument), no randomness. Ties are broken by
technician id (and a round sorts its inputs by id), so the same inputs give the same
answer whatever their order."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from weibao.dispatch.domain.skills import check_skill
from weibao.dispatch.domain.travel import Mode, Position, TravelModel, check_position, distance_km
from weibao.shared.errors import Rejected
from weibao.shared.public.dispatch import AssignmentRule, Ineligible

# Why a technician cannot take the request: lacks the skill, is on leave, the shift is
# over by the time they could set off, no visits left today, or excluded by the request
# itself (they declined it or did not show: re-dispatch).
# (Ineligible, from weibao.shared.public.dispatch.) Which branch of rule D4 chose the technician:
Rule = AssignmentRule

def _aware(moment: datetime, field: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise Rejected("naive_time", field, "times carry their UTC offset")


@dataclass(frozen=True)
class TechnicianView:
    """A technician as the assignment sees them. The application fills it from the
    technician's read model: position from the last check-in (D5) or the home base,
    `available_from` the shift start or the end of the current job."""

    technician_id: str
    skills: frozenset[str]
    position: Position
    available_from: datetime
    shift_end: datetime
    capacity_left: int  # visits they can still take today
    on_leave: bool = False

    def __post_init__(self) -> None:
        if not self.technician_id:
            raise Rejected("required", "technician_id", "a technician has an id")
        for skill in self.skills:
            check_skill(skill, "skills")  # the reader leaves out records that fail this (Excluded)
        check_position(self.position, "position")
        _aware(self.available_from, "available_from")
        _aware(self.shift_end, "shift_end")


Candidate = TechnicianView  # the name rule D4's text uses for the same input


@dataclass(frozen=True)
class Need:
    """A request that needs someone on site: where, which skill, arrive by when (D1;
    None when the agreement sets no on-site deadline)."""

    request_id: str
    site: Position
    skill: str  # "software:<product>", "hardware" or "network"
    arrive_by: datetime | None = None

    def __post_init__(self) -> None:
        if not self.request_id:
            raise Rejected("required", "request_id", "a request has an id")
        check_position(self.site, "site")
        check_skill(self.skill, "skill")
        if self.arrive_by is not None:
            _aware(self.arrive_by, "arrive_by")


@dataclass(frozen=True)
class Considered:
    """One technician weighed for one request: the figures and the verdict. Figures are
    computed for the ineligible too, so an override can be judged on them."""

    technician_id: str
    distance_km: float
    mode: Mode
    travel_minutes: float
    departs: datetime  # the later of now and available_from
    arrives: datetime
    eligible: bool
    why_not: tuple[Ineligible, ...]  # empty when eligible
    can_make_deadline: bool  # True when the request has no deadline


@dataclass(frozen=True)
class Excluded:
    """A technician the rule could not weigh at all, and why in words: a record that
    fails the technician rule (domain/technician.py), or one retired. Named, so that a
    dispatcher sees who is missing and why, instead of the whole assignment failing."""

    technician_id: str
    reason: str


@dataclass(frozen=True)
class Facts:
    """Why the winner won, as data rather than words (issue 16): what `reason` says in
    English, for a screen to say in its user's language. Technicians by id; counts over
    `candidates`; `late_minutes` past the deadline when the winner cannot make it. A round
    (`round_size`) names whom the request would have had alone (`alone`) and which request
    of the round has them (`alone_goes_to`). Explanations recorded before it have none."""

    winner: str | None  # the rule's choice; None when nobody is eligible
    weighed: int  # technicians weighed
    eligible: int
    in_time: int  # eligible and able to arrive by the deadline (all eligible when none is set)
    runner_up: str | None = None  # the next eligible one the rule would take
    earliest: str | None = None  # set when someone eligible would arrive before the winner
    late_minutes: float | None = None
    ineligible: tuple[tuple[Ineligible, int], ...] = ()  # how many were kept out for each reason
    round_size: int | None = None
    alone: str | None = None
    alone_goes_to: str | None = None


@dataclass(frozen=True)
class Explanation:
    request_id: str
    skill: str
    arrive_by: datetime | None
    now: datetime
    rule: Rule
    reason: str  # why the winner won, in words, naming rule D4
    candidates: tuple[Considered, ...]  # ranked: the rule's choice first, the ineligible last
    excluded: tuple[Excluded, ...] = ()  # not weighed at all: see Excluded
    facts: Facts | None = None  # `reason` as data (issue 16)

    def of(self, technician_id: str) -> Considered | None:
        return next((c for c in self.candidates if c.technician_id == technician_id), None)


@dataclass(frozen=True)
class Override:
    technician_id: str
    replaced: str | None
    reason: str
    by: str


@dataclass(frozen=True)
class Assignment:
    request_id: str
    technician_id: str | None  # None when nobody is eligible
    at_risk: bool  # the chosen technician cannot arrive by the deadline, or nobody can go
    explanation: Explanation  # the rule's decision, kept as it was through overrides
    overrides: tuple[Override, ...] = ()  # oldest first; the last one decided technician_id

    @property
    def overridden(self) -> bool:
        return bool(self.overrides)

    @property
    def chosen(self) -> Considered | None:
        return None if self.technician_id is None else self.explanation.of(self.technician_id)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (times as ISO 8601), for an event's payload or a reply."""
        def plain(value: Any) -> Any:
            match value:
                case datetime():
                    return value.isoformat()
                case dict():
                    return {k: plain(v) for k, v in value.items()}
                case list() | tuple():
                    return [plain(v) for v in value]
                case _:
                    return value

        data: dict[str, Any] = plain(asdict(self))
        return data


# --- weighing -----------------------------------------------------------------------------

def consider(need: Need, technician: TechnicianView, *, now: datetime, travel: TravelModel,
             excluded: bool = False) -> Considered:
    why: list[Ineligible] = []
    if need.skill not in technician.skills:
        why.append("skill")
    if technician.on_leave:
        why.append("leave")
    departs = max(now, technician.available_from)
    if departs >= technician.shift_end:
        # Only a shift that is over before they could set off excludes them: an
        # out-of-town journey (C9's M days) may well end after today's shift.
        why.append("shift_over")
    if technician.capacity_left <= 0:
        why.append("capacity")
    if excluded:
        why.append("excluded")
    km = distance_km(technician.position, need.site)
    mode, minutes = travel.travel(km)
    arrives = departs + timedelta(minutes=minutes)
    return Considered(
        technician_id=technician.technician_id, distance_km=km, mode=mode, travel_minutes=minutes,
        departs=departs, arrives=arrives, eligible=not why, why_not=tuple(why),
        can_make_deadline=need.arrive_by is None or arrives <= need.arrive_by,
    )


def _rank(c: Considered, now: datetime) -> tuple[int, float, float, str]:
    """Rule D4's order: eligible and in time by least travel; eligible but late by earliest
    arrival; the ineligible last (by travel, for whoever looks for an override). Each
    ends with the technician id, so ties are broken the same way every time."""
    arrival = (c.arrives - now).total_seconds() / 60
    if not c.eligible:
        return 2, c.travel_minutes, arrival, c.technician_id
    if c.can_make_deadline:
        return 0, c.travel_minutes, arrival, c.technician_id
    return 1, arrival, c.travel_minutes, c.technician_id


def _weigh(need: Need, technicians: Sequence[TechnicianView], now: datetime, travel: TravelModel,
           exclude: frozenset[str]) -> tuple[Considered, ...]:
    _aware(now, "now")
    seen: set[str] = set()
    for t in technicians:
        if t.technician_id in seen:
            raise Rejected("duplicate", "technicians", f"technician {t.technician_id} is listed twice")
        seen.add(t.technician_id)
    weighed = (consider(need, t, now=now, travel=travel, excluded=t.technician_id in exclude) for t in technicians)
    return tuple(sorted(weighed, key=lambda c: _rank(c, now)))


# --- words --------------------------------------------------------------------------------

def _minutes(minutes: float) -> str:
    whole = round(minutes)
    return f"{whole} min" if whole < 60 else f"{whole // 60} h {whole % 60:02d} min"


def _at(moment: datetime) -> str:
    return moment.isoformat(timespec="minutes")


def _trip(c: Considered) -> str:
    return f"{_minutes(c.travel_minutes)} by {c.mode} ({c.distance_km:.1f} km), arriving {_at(c.arrives)}"


def _why_nobody(need: Need, candidates: Sequence[Considered]) -> str:
    if not candidates:
        return "rule D4: no technician to consider"
    counts: dict[Ineligible, int] = {}
    for c in candidates:
        for why in c.why_not:
            counts[why] = counts.get(why, 0) + 1
    words = {"skill": f"lack {need.skill}", "leave": "on leave", "shift_over": "shift over",
             "capacity": "no visits left today", "excluded": "excluded (declined or no-show)"}
    detail = ", ".join(f"{n} {words[why]}" for why, n in counts.items())
    return f"rule D4: none of the {len(candidates)} technicians is eligible: {detail}"


def _reason(need: Need, rule: Rule, winner: Considered, ranked: Sequence[Considered]) -> str:
    eligible = [c for c in ranked if c.eligible]
    runner_up = next((c for c in eligible if c.technician_id != winner.technician_id), None)
    if rule == "in_time_least_travel":
        in_time = sum(c.can_make_deadline for c in eligible)
        deadline = "no deadline" if need.arrive_by is None else f"deadline {_at(need.arrive_by)}"
        text = (f"rule D4: {winner.technician_id} has the least travel among the {in_time} eligible "
                f"technicians who can arrive in time ({deadline}): {_trip(winner)}")
        if runner_up is not None and runner_up.can_make_deadline:
            text += f"; next {runner_up.technician_id}, {_minutes(runner_up.travel_minutes)}"
        earliest = min(eligible, key=lambda c: (c.arrives, c.technician_id))
        if earliest.technician_id != winner.technician_id:
            text += f"; {earliest.technician_id} would arrive earlier ({_at(earliest.arrives)}) but travels more"
        return text
    assert need.arrive_by is not None  # a late arrival needs a deadline
    late = _minutes((winner.arrives - need.arrive_by).total_seconds() / 60)
    text = (f"rule D4: none of the {len(eligible)} eligible technicians can arrive by {_at(need.arrive_by)}; "
            f"{winner.technician_id} arrives earliest: {_trip(winner)}, {late} late; at risk")
    if runner_up is not None:
        text += f"; next {runner_up.technician_id}, arriving {_at(runner_up.arrives)}"
    return text


def _ineligible(candidates: Sequence[Considered]) -> tuple[tuple[Ineligible, int], ...]:
    counts: dict[Ineligible, int] = {}
    for c in candidates:
        for why in c.why_not:
            counts[why] = counts.get(why, 0) + 1
    return tuple(counts.items())


def facts(need: Need, winner: Considered | None, ranked: Sequence[Considered]) -> Facts:
    """What `_reason` (or `_why_nobody`) says, as data: the same runner-up, earliest
    arrival and lateness, so both languages tell the same story."""
    eligible = [c for c in ranked if c.eligible]
    in_time = sum(c.can_make_deadline for c in eligible)
    if winner is None:
        return Facts(None, len(ranked), len(eligible), in_time, ineligible=_ineligible(ranked))
    runner_up = next((c for c in eligible if c.technician_id != winner.technician_id), None)
    earliest = min(eligible, key=lambda c: (c.arrives, c.technician_id)) if eligible else None
    late = None
    if need.arrive_by is not None and not winner.can_make_deadline:
        late = round((winner.arrives - need.arrive_by).total_seconds() / 60, 1)
    if runner_up is not None and winner.can_make_deadline and not runner_up.can_make_deadline:
        runner_up = None  # the English names only an in-time runner-up beside an in-time winner
    return Facts(
        winner.technician_id, len(ranked), len(eligible), in_time,
        runner_up=runner_up.technician_id if runner_up is not None else None,
        earliest=(earliest.technician_id if earliest is not None and earliest.technician_id != winner.technician_id
                  and earliest.arrives < winner.arrives else None),
        late_minutes=late, ineligible=_ineligible(ranked),
    )


# --- one request --------------------------------------------------------------------------

def assign(request: Need, technicians: Sequence[TechnicianView], *, now: datetime, travel: TravelModel,
           exclude: frozenset[str] = frozenset(), unweighed: Sequence[Excluded] = ()) -> Assignment:
    """Rule D4 for one request. `exclude` holds technicians who may not take it again
    (they declined it or did not show up): re-dispatch passes them. `unweighed`: the
    technicians the caller could not turn into a `TechnicianView`, kept in the
    explanation (sorted by id, so the answer does not depend on the order given)."""
    ranked = _weigh(request, technicians, now, travel, exclude)
    left_out = tuple(sorted(unweighed, key=lambda e: e.technician_id))
    best = ranked[0] if ranked and ranked[0].eligible else None
    if best is None:
        why = _why_nobody(request, ranked)
        if left_out:
            why += "; not weighed: " + ", ".join(f"{e.technician_id} ({e.reason})" for e in left_out)
        explanation = Explanation(request.request_id, request.skill, request.arrive_by, now, "nobody_eligible",
                                  why, ranked, left_out, facts(request, None, ranked))
        return Assignment(request.request_id, None, True, explanation)
    rule: Rule = "in_time_least_travel" if best.can_make_deadline else "earliest_arrival_at_risk"
    explanation = Explanation(request.request_id, request.skill, request.arrive_by, now, rule,
                              _reason(request, rule, best, ranked), ranked, left_out, facts(request, best, ranked))
    return Assignment(request.request_id, best.technician_id, not best.can_make_deadline, explanation)


def override(assignment: Assignment, technician_id: str, reason: str, by: str) -> Assignment:
    """A dispatcher sends someone else, and says why. The rule's explanation stays as it
    was; the override is added to it. The new technician must be one the rule weighed
    (ineligible ones included: the dispatcher may know better, e.g. leave cut short);
    at risk is then whether they can make the deadline."""
    reason = reason.strip()
    if not reason:
        raise Rejected("reason_required", "reason", "an override says why", reason="assignment.override_reason_missing")
    if not by.strip():
        raise Rejected("required", "by", "an override names the dispatcher", reason="assignment.override_by_missing")
    weighed = assignment.explanation.of(technician_id)
    if weighed is None:
        raise Rejected("unknown_technician", "technician_id",
                       f"{technician_id} was not weighed for request {assignment.request_id}; assign again with them",
                       reason="assignment.technician_not_weighed")
    if technician_id == assignment.technician_id:
        raise Rejected("unchanged", "technician_id", f"{technician_id} is already assigned",
                       reason="assignment.already_assigned")
    return replace(assignment, technician_id=technician_id, at_risk=not weighed.can_make_deadline,
                   overrides=(*assignment.overrides, Override(technician_id, assignment.technician_id, reason, by)))


# --- one round of several requests --------------------------------------------------------

Solver = Callable[[Sequence[Sequence[int]]], Sequence[int]]
"""Given an n x m cost matrix (n <= m), the column of each row in a least-cost assignment."""


def hungarian(costs: Sequence[Sequence[int]]) -> list[int]:
    """The Hungarian algorithm (Kuhn-Munkres with potentials, shortest augmenting paths),
    O(n^2 m) for n rows <= m columns. Exact on integers: every quantity stays an int."""
    n = len(costs)
    if n == 0:
        return []
    m = len(costs[0])
    if n > m or any(len(row) != m for row in costs):
        raise ValueError("a cost matrix has at most as many rows as columns, all of one length")
    inf = float("inf")
    u = [0] * (n + 1)  # row potentials (1-based; index 0 is the virtual start)
    v = [0] * (m + 1)  # column potentials
    owner = [0] * (m + 1)  # owner[j]: the row holding column j, 0 when free
    way = [0] * (m + 1)
    for i in range(1, n + 1):
        owner[0] = i
        j0 = 0
        slack: list[float] = [inf] * (m + 1)
        used = [False] * (m + 1)
        while True:
            used[j0] = True
            i0 = owner[j0]
            row = costs[i0 - 1]
            ui0 = u[i0]
            delta = inf
            j1 = 0
            for j in range(1, m + 1):
                if not used[j]:
                    reduced = row[j - 1] - ui0 - v[j]
                    if reduced < slack[j]:
                        slack[j] = reduced
                        way[j] = j0
                    if slack[j] < delta:
                        delta = slack[j]
                        j1 = j
            step = int(delta)  # finite: n <= m leaves a free column
            for j in range(m + 1):
                if used[j]:
                    u[owner[j]] += step
                    v[j] -= step
                else:
                    slack[j] -= step
            j0 = j1
            if owner[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            owner[j0] = owner[j1]
            j0 = j1
    columns = [-1] * n
    for j in range(1, m + 1):
        if owner[j]:
            columns[owner[j] - 1] = j - 1
    return columns


@dataclass(frozen=True)
class RoundCosts:
    """A round as an assignment problem: one row per request (sorted by request id), one
    column per technician eligible for some request (sorted by id), then one "unassigned"
    column per request. Costs are integer seconds, so every solver agrees exactly.

    A pair costs its travel when the technician arrives in time; `late_penalty` plus the
    lateness when not; `unassigned_penalty` for an unassigned column; `forbidden` for an
    ineligible pair. The penalties dominate everything below them, so the optimum is
    lexicographic: (1) as many requests assigned as possible, (2) of those, as many in
    time as possible, (3) the least travel of the in-time ones plus lateness of the late
    ones. With one request this is exactly `assign`: least travel in time, else earliest
    arrival."""

    needs: tuple[Need, ...]
    technician_ids: tuple[str, ...]
    weighed: tuple[tuple[Considered, ...], ...]  # [row][column], technicians' columns only
    matrix: tuple[tuple[int, ...], ...]
    late_penalty: int
    unassigned_penalty: int
    forbidden: int

    def total(self, columns: Sequence[int]) -> int:
        return sum(self.matrix[i][j] for i, j in enumerate(columns))


def _seconds(minutes: float) -> int:
    return round(minutes * 60)


def round_costs(needs: Sequence[Need], technicians: Sequence[TechnicianView], *, now: datetime,
                travel: TravelModel, exclude: Mapping[str, frozenset[str]] | None = None) -> RoundCosts:
    """The cost matrix of a round (see `RoundCosts`). `exclude` maps a request id to the
    technicians it must not go to again (re-dispatch)."""
    _aware(now, "now")
    exclude = exclude or {}
    if len({n.request_id for n in needs}) != len(needs):
        raise Rejected("duplicate", "needs", "a request is listed twice in the round")
    if len({t.technician_id for t in technicians}) != len(technicians):
        raise Rejected("duplicate", "technicians", "a technician is listed twice")
    rows = tuple(sorted(needs, key=lambda n: n.request_id))
    everyone = sorted(technicians, key=lambda t: t.technician_id)
    grid = [[consider(need, t, now=now, travel=travel, excluded=t.technician_id in exclude.get(need.request_id, ()))
             for t in everyone] for need in rows]
    # Technicians eligible for no request cannot change the optimum: leave them out.
    keep = [j for j in range(len(everyone)) if any(row[j].eligible for row in grid)]
    weighed = tuple(tuple(row[j] for j in keep) for row in grid)

    def base(need: Need, c: Considered) -> int:
        if need.arrive_by is None or c.can_make_deadline:
            return _seconds(c.travel_minutes)
        return round((c.arrives - need.arrive_by).total_seconds())  # lateness: earliest arrival wins

    bases = [[base(need, c) if c.eligible else None for c in row] for need, row in zip(rows, weighed, strict=True)]
    n = len(rows)
    largest = max((b for row in bases for b in row if b is not None), default=0)
    late_penalty = n * largest + 1  # more than all the travel and lateness a round can add
    unassigned_penalty = n * (late_penalty + largest) + 1  # more than any round with one more assigned
    forbidden = unassigned_penalty + 1  # worse than leaving that request unassigned
    matrix = tuple(
        tuple(
            forbidden if b is None else b if c.can_make_deadline else late_penalty + b
            for b, c in zip(brow, crow, strict=True)
        ) + (unassigned_penalty,) * n
        for brow, crow in zip(bases, weighed, strict=True)
    )
    return RoundCosts(rows, tuple(everyone[j].technician_id for j in keep), weighed, matrix, late_penalty,
                      unassigned_penalty, forbidden)


@dataclass(frozen=True)
class Round:
    assignments: tuple[Assignment, ...]  # in the order the needs were given
    cost: int  # the optimum of RoundCosts.matrix
    total_travel_minutes: float  # over the assigned requests
    late: int  # assigned but cannot arrive in time
    unassigned: int


def one_round(needs: Sequence[Need], technicians: Sequence[TechnicianView], *, now: datetime,
              travel: TravelModel, exclude: Mapping[str, frozenset[str]] | None = None,
              solver: Solver = hungarian) -> Round:
    """Rule D4 for several requests at once: each technician takes at most one of them
    (after a visit their position and availability change: the next round sees that),
    and the round's total is least (see `RoundCosts`)."""
    costs = round_costs(needs, technicians, now=now, travel=travel, exclude=exclude)
    columns = list(solver(costs.matrix)) if costs.needs else []
    width = len(costs.technician_ids)
    by_request: dict[str, Assignment] = {}
    holder = {costs.technician_ids[j]: costs.needs[i].request_id for i, j in enumerate(columns) if j < width}
    for i, need in enumerate(costs.needs):
        j = columns[i]
        pair = costs.weighed[i][j] if j < width else None
        if pair is not None and not pair.eligible:
            pair = None  # a forbidden pair is never optimal; a faulty solver must not smuggle one in
        ranked = tuple(sorted(costs.weighed[i], key=lambda c: _rank(c, now)))
        if pair is None:
            if any(c.eligible for c in ranked):
                rule: Rule = "round_optimum"
                reason = (f"rule D4, one round of {len(costs.needs)} requests: every technician eligible for "
                          f"{need.request_id} is needed by other requests of the round; at risk")
            else:
                rule, reason = "nobody_eligible", _why_nobody(need, ranked)
            explanation = Explanation(need.request_id, need.skill, need.arrive_by, now, rule, reason, ranked,
                                      facts=replace(facts(need, None, ranked), round_size=len(costs.needs)))
            by_request[need.request_id] = Assignment(need.request_id, None, True, explanation)
            continue
        own = ranked[0]
        reason = (f"rule D4, one round of {len(costs.needs)} requests: {pair.technician_id} "
                  f"({'in time' if pair.can_make_deadline else 'late, at risk'}), {_trip(pair)}; "
                  "the round's least total travel")
        if own.technician_id != pair.technician_id:
            taken = holder.get(own.technician_id)
            reason += (f"; alone the request would have gone to {own.technician_id}"
                       + (f", who goes to {taken}" if taken else ""))
        ordered = (pair, *(c for c in ranked if c.technician_id != pair.technician_id))
        alone = own.technician_id if own.technician_id != pair.technician_id else None
        told = replace(facts(need, pair, ranked), runner_up=None, earliest=None, round_size=len(costs.needs),
                       alone=alone, alone_goes_to=holder.get(own.technician_id) if alone else None)
        explanation = Explanation(need.request_id, need.skill, need.arrive_by, now, "round_optimum", reason, ordered,
                                  facts=told)
        by_request[need.request_id] = Assignment(need.request_id, pair.technician_id, not pair.can_make_deadline,
                                                 explanation)
    chosen = [a.chosen for a in by_request.values() if a.chosen is not None]
    return Round(
        assignments=tuple(by_request[n.request_id] for n in needs),
        cost=costs.total(columns),
        total_travel_minutes=sum(c.travel_minutes for c in chosen),
        late=sum(not c.can_make_deadline for c in chosen),
        unassigned=sum(a.technician_id is None for a in by_request.values()),
    )
