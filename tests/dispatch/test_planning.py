"""Day planning (rule D4: skill, availability, travel, deadline) on PyVRP, small and fast.

Every solve gets well under a second; the cases are small enough that the optimum is found
in that time, and no test looks at a clock."""

from __future__ import annotations

import math
import random
from dataclasses import replace

import pytest
from geopy.distance import geodesic  # type: ignore[import-untyped]

from weibao.dispatch.planning.model import Plan, Technician, Visit
from weibao.dispatch.planning.solver import Prizes, plan_day, replan
from weibao.dispatch.planning.travel import DEFAULT_TRAVEL, LatLon, TravelModel, matrix, minutes_for_km, travel_minutes
from weibao.shared.errors import Rejected

SHANGHAI: LatLon = (31.2304, 121.4737)
BEIJING: LatLon = (39.9042, 116.4074)
SECONDS = 0.3
NINE, SIX = 540, 1080  # rule C20 service hours, minutes from midnight


def near(east_km: float, north_km: float = 0.0, origin: LatLon = SHANGHAI) -> LatLon:
    lat, lon = origin
    return (lat + north_km / 110.574, lon + east_km / (111.320 * math.cos(math.radians(lat))))


def technician(id_: str, *skills: str, at: LatLon = SHANGHAI, shift: tuple[int, int] = (NINE, SIX)) -> Technician:
    return Technician(id_, at, shift[0], shift[1], frozenset(skills or {"software"}))


def visit(id_: str, at: LatLon, *, window: tuple[int, int] = (NINE, SIX), duration: int = 30,
          skill: str = "software", priority: int = 1, locked_to: str | None = None) -> Visit:
    return Visit(id_, at, window[0], window[1], duration, skill, locked_to=locked_to, priority=priority)


def route_of(plan: Plan, technician_id: str) -> list[str]:
    return [stop.visit_id for stop in plan.routes[technician_id]]


# --- travel (rule D4: geodesic distance and a travel mode) --------------------------------------

def test_travel_is_by_road_within_the_region() -> None:
    model = TravelModel()
    km = geodesic(SHANGHAI, near(30)).km
    assert model.mode_for(km) == "road"
    assert travel_minutes(SHANGHAI, near(30)) == math.ceil(km / 40 * 60)  # 40 km/h
    assert travel_minutes(SHANGHAI, SHANGHAI) == 0


def test_travel_takes_the_train_beyond_the_rail_threshold_with_its_overhead() -> None:
    model = TravelModel()
    nanjing: LatLon = (32.0603, 118.7969)  # about 270 km
    km = geodesic(SHANGHAI, nanjing).km
    assert 150 < km < 800 and model.mode_for(km) == "rail"
    assert travel_minutes(SHANGHAI, nanjing, model) == math.ceil(60 + km / 200 * 60)


def test_travel_flies_beyond_the_air_threshold_with_its_overhead() -> None:
    model = TravelModel()
    km = geodesic(SHANGHAI, BEIJING).km
    assert km > 800 and model.mode_for(km) == "air"
    assert travel_minutes(SHANGHAI, BEIJING, model) == math.ceil(180 + km / 600 * 60)


def test_travel_thresholds_speeds_and_overheads_are_configurable() -> None:
    model = TravelModel(road_kmh=60, rail_beyond_km=100, rail_overhead_min=30, air_beyond_km=500)
    assert model.mode_for(100) == "road" and minutes_for_km(model, 90) == 90
    assert model.mode_for(101) == "rail" and minutes_for_km(model, 200) == 30 + 60
    assert model.mode_for(501) == "air" and minutes_for_km(model, 600) == 180 + 60
    with pytest.raises(Rejected, match="air_beyond_km"):
        TravelModel(rail_beyond_km=900, air_beyond_km=800)


def test_the_travel_matrix_agrees_with_travel_minutes() -> None:
    rng = random.Random(7)
    points = [(rng.uniform(18, 50), rng.uniform(75, 135)) for _ in range(40)]
    points += [SHANGHAI, near(0.4), near(151 * 0.999), BEIJING, SHANGHAI]
    minutes = matrix(DEFAULT_TRAVEL, points)
    for i, a in enumerate(points):
        for j, b in enumerate(points):
            assert minutes[i, j] == travel_minutes(a, b), (a, b)


# --- plan_day ----------------------------------------------------------------------------------

def test_time_windows_order_the_route_and_are_respected() -> None:
    # B's window closes before A's opens: only B then A meets both.
    a = visit("A", near(6), window=(600, 620))
    b = visit("B", near(-6), window=(NINE, 560))
    plan = plan_day([technician("T1")], [a, b], DEFAULT_TRAVEL, seconds=SECONDS)

    assert route_of(plan, "T1") == ["B", "A"]
    assert plan.unassigned == [] and plan.late_visits == []
    for stop, v in zip(plan.routes["T1"], [b, a], strict=True):
        assert v.earliest <= stop.start <= v.latest and stop.arrival <= v.latest
        assert stop.end == stop.start + v.duration
    assert plan.routes["T1"][1].start == 600  # arrives early and waits for the window
    # out and back over 6 + 12 + 6 km of road
    assert plan.total_travel_minutes == (travel_minutes(SHANGHAI, near(-6)) + travel_minutes(near(-6), near(6))
                                         + travel_minutes(near(6), SHANGHAI))


def test_routes_stay_inside_the_shift() -> None:
    # rule C20: a 9:00-12:00 shift, home again by 12:00
    t = technician("T1", shift=(NINE, 720))
    visits = [visit(f"V{i}", near(2 * i), duration=60) for i in range(1, 5)]
    plan = plan_day([t], visits, DEFAULT_TRAVEL, seconds=SECONDS)

    stops = plan.routes["T1"]
    assert stops and stops[0].arrival >= NINE
    last = next(v for v in visits if v.id == stops[-1].visit_id)
    assert stops[-1].end + travel_minutes(last.location, t.home) <= 720
    assert len(stops) + len(plan.unassigned) == 4 and plan.unassigned


def test_skills_decide_who_goes_even_when_someone_else_is_nearer() -> None:
    # rule D4: a hardware visit goes to the hardware technician, though the other is next door
    near_software = technician("SW", "software", at=near(5))
    far_hardware = technician("HW", "hardware", at=near(-15))
    visits = [visit("disk", near(5.5), skill="hardware"), visit("erp", near(-14), skill="software")]
    plan = plan_day([near_software, far_hardware], visits, DEFAULT_TRAVEL, seconds=SECONDS)

    assert route_of(plan, "HW") == ["disk"]
    assert route_of(plan, "SW") == ["erp"]


def test_skills_hold_across_a_bigger_day() -> None:
    rng = random.Random(3)
    skills = ("software", "hardware", "network")
    technicians = [technician(f"T{i}", *rng.sample(skills, rng.randint(1, 2)),
                              at=near(rng.uniform(-10, 10), rng.uniform(-10, 10))) for i in range(6)]
    visits = [visit(f"V{i}", near(rng.uniform(-15, 15), rng.uniform(-15, 15)), skill=rng.choice(skills),
                    duration=45) for i in range(30)]
    plan = plan_day(technicians, visits, DEFAULT_TRAVEL, seconds=SECONDS)

    by_id = {v.id: v for v in visits}
    for t in technicians:
        for stop in plan.routes[t.id]:
            assert by_id[stop.visit_id].skill in t.skills
    planned = [stop.visit_id for stops in plan.routes.values() for stop in stops]
    assert sorted(planned + plan.unassigned) == sorted(by_id)  # each visit once, planned or not


def test_a_visit_nobody_can_serve_is_reported_unassigned() -> None:
    visits = [
        visit("ok", near(3)),
        visit("no-skill", near(4), skill="network"),  # nobody has it
        visit("too-far", BEIJING),  # flying there and back does not fit a 9-hour shift
        visit("too-long", near(2), duration=600),  # longer than any shift
        visit("after-hours", near(2), window=(1100, 1200)),  # opens after every shift ends
    ]
    plan = plan_day([technician("T1")], visits, DEFAULT_TRAVEL, seconds=SECONDS)

    assert route_of(plan, "T1") == ["ok"]
    assert plan.unassigned == ["no-skill", "too-far", "too-long", "after-hours"]


def test_a_deadline_that_cannot_be_met_is_served_late_and_flagged() -> None:
    # rule D4: when nobody can arrive in time, the earliest arrival, flagged at risk
    far = visit("far", near(30), window=(NINE, NINE + 20))  # 45 minutes away, due in 20
    plan = plan_day([technician("T1")], [far], DEFAULT_TRAVEL, seconds=SECONDS)

    assert route_of(plan, "T1") == ["far"]
    assert plan.late_visits == ["far"] and plan.unassigned == []
    stop = plan.routes["T1"][0]
    assert stop.late and stop.arrival == NINE + travel_minutes(SHANGHAI, near(30))


def test_on_time_beats_late_when_the_order_allows_both() -> None:
    urgent = visit("urgent", near(-8), window=(NINE, NINE + 30))
    relaxed = visit("relaxed", near(8))
    plan = plan_day([technician("T1")], [relaxed, urgent], DEFAULT_TRAVEL, seconds=SECONDS)

    assert route_of(plan, "T1") == ["urgent", "relaxed"] and plan.late_visits == []


def test_priority_decides_which_visit_fits_when_not_both_can() -> None:
    short_shift = technician("T1", shift=(NINE, NINE + 100))
    low = visit("low", near(3), duration=60, priority=1)
    high = visit("high", near(-3), duration=60, priority=3)
    plan = plan_day([short_shift], [low, high], DEFAULT_TRAVEL, seconds=SECONDS)

    assert route_of(plan, "T1") == ["high"] and plan.unassigned == ["low"]


def test_the_work_is_shared_when_one_technician_cannot_do_it_all() -> None:
    technicians = [technician("T1"), technician("T2", at=near(0, 10))]
    visits = [visit(f"V{i}", near(i - 3, 5), duration=90, window=(NINE, 800)) for i in range(6)]
    plan = plan_day(technicians, visits, DEFAULT_TRAVEL, seconds=SECONDS)

    assert plan.unassigned == [] and plan.late_visits == []
    assert plan.routes["T1"] and plan.routes["T2"]


def test_a_visit_under_way_is_first_in_its_technicians_route() -> None:
    # T2 is nearer to everything, but T1 is already on site at "fixing"
    technicians = [technician("T1", at=near(-20)), technician("T2")]
    visits = [visit("a", near(1)), visit("fixing", near(2), locked_to="T1", duration=60), visit("b", near(3))]
    plan = plan_day(technicians, visits, DEFAULT_TRAVEL, seconds=SECONDS)

    assert route_of(plan, "T1")[0] == "fixing"
    first = plan.routes["T1"][0]
    assert first.arrival == NINE and first.end == NINE + 60
    assert plan.technician_of("fixing") == "T1"


def test_no_technicians_leaves_everything_unassigned() -> None:
    plan = plan_day([], [visit("a", near(1))], DEFAULT_TRAVEL, seconds=SECONDS)
    assert plan.routes == {} and plan.unassigned == ["a"] and plan.total_travel_minutes == 0


def test_inconsistent_input_is_rejected() -> None:
    with pytest.raises(Rejected) as unknown:
        plan_day([technician("T1")], [visit("a", near(1), locked_to="T9")], DEFAULT_TRAVEL, seconds=SECONDS)
    assert unknown.value.code == "unknown_technician"
    with pytest.raises(Rejected) as twice:
        plan_day([technician("T1")], [visit("a", near(1), locked_to="T1"), visit("b", near(2), locked_to="T1")],
                 DEFAULT_TRAVEL, seconds=SECONDS)
    assert twice.value.field == "locked_to"
    with pytest.raises(Rejected) as duplicate:
        plan_day([technician("T1")], [visit("a", near(1)), visit("a", near(2))], DEFAULT_TRAVEL, seconds=SECONDS)
    assert duplicate.value.code == "duplicate"
    with pytest.raises(Rejected):
        visit("late-before-early", near(1), window=(700, 600))
    with pytest.raises(Rejected):
        Prizes(serve=0)


# --- replan ------------------------------------------------------------------------------------

def test_replan_keeps_the_visit_under_way_first_and_fits_the_urgent_request() -> None:
    technicians = [technician("T1"), technician("T2", at=near(0, 12))]
    visits = [visit("a", near(2), duration=60), visit("b", near(4), duration=60),
              visit("c", near(1, 11), duration=60), visit("d", near(3, 12), duration=60)]
    plan = plan_day(technicians, visits, DEFAULT_TRAVEL, seconds=SECONDS)
    holder = plan.technician_of("a")
    assert holder is not None
    started = plan.stop_of("a")
    assert started is not None

    now = started.start + 15  # "a" is under way
    still_open = [replace(v, locked_to=holder) if v.id == "a" else v for v in visits]
    urgent = visit("urgent", near(2.5), window=(now, now + 90), priority=10)
    again = replan(plan, technicians, still_open, urgent, DEFAULT_TRAVEL, now=now, seconds=SECONDS)

    assert route_of(again, holder)[0] == "a"
    assert again.routes[holder][0] == started  # the same arrival and end as planned
    assert again.technician_of("urgent") is not None and "urgent" not in again.late_visits
    for stops in again.routes.values():
        for stop in stops:
            if stop.visit_id != "a":
                assert stop.arrival >= now  # nobody sets off before the re-plan
    assert sorted(s.visit_id for stops in again.routes.values() for s in stops) == ["a", "b", "c", "d", "urgent"]


def test_replan_keeps_the_visit_under_way_even_when_moving_it_would_be_cheaper() -> None:
    # T1 is on site far out; T2 sits next to it with nothing to do
    technicians = [technician("T1", at=near(-25)), technician("T2", at=near(20))]
    under_way = visit("fixing", near(20.5), locked_to="T1", duration=120)
    previous = plan_day(technicians, [under_way], DEFAULT_TRAVEL, seconds=SECONDS)
    urgent = visit("urgent", near(-24), window=(600, 700), priority=5)
    again = replan(previous, technicians, [under_way], urgent, DEFAULT_TRAVEL, now=600, seconds=SECONDS)

    assert route_of(again, "T1")[0] == "fixing"
    assert again.technician_of("urgent") is not None


def test_replan_starts_technicians_where_they_are_and_ends_them_at_home() -> None:
    home = near(-10)
    on_the_road = Technician("T1", near(10), NINE, SIX, frozenset({"software"}), end=home)
    previous = Plan({"T1": []}, [], 0, [])
    urgent = visit("urgent", near(11), window=(700, 760))
    again = replan(previous, [on_the_road], [], urgent, DEFAULT_TRAVEL, now=700, seconds=SECONDS)

    stop = again.routes["T1"][0]
    assert stop.arrival == 700 + travel_minutes(near(10), near(11))
    assert again.total_travel_minutes == travel_minutes(near(10), near(11)) + travel_minutes(near(11), home)


def test_replan_rejects_an_urgent_visit_that_is_already_open() -> None:
    a = visit("a", near(1))
    with pytest.raises(Rejected):
        replan(Plan({}, [], 0, []), [technician("T1")], [a], a, DEFAULT_TRAVEL, now=600, seconds=SECONDS)
