"""Rule D4: choosing the technician, explaining the choice, overriding it; one round of
several requests against a brute-force optimum. Pure: no broker, no database."""

from __future__ import annotations

import itertools
import json
import random
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from geopy.distance import geodesic  # type: ignore[import-untyped]

from weibao.dispatch.domain.assignment import (
    Assignment,
    Need,
    TechnicianView,
    assign,
    hungarian,
    one_round,
    override,
    round_costs,
)
from weibao.dispatch.domain.travel import Position, TravelModel, distance_km
from weibao.shared.errors import Rejected

CST = timezone(timedelta(hours=8))
NOW = datetime(2026, 6, 1, 9, 0, tzinfo=CST)
SITE: Position = (39.9042, 116.4074)  # Beijing
TRAVEL = TravelModel()


def at(km: float, bearing: float = 0.0, origin: Position = SITE) -> Position:
    """The point `km` kilometres from `origin` along a geodesic (0 north, 180 south)."""
    point = geodesic(kilometers=km).destination(origin, bearing)
    return float(point.latitude), float(point.longitude)


def tech(tid: str, km: float, *, bearing: float = 0.0, skills: frozenset[str] = frozenset({"hardware"}),
         free_in: timedelta = timedelta(0), shift: timedelta = timedelta(hours=9), capacity: int = 3,
         on_leave: bool = False) -> TechnicianView:
    return TechnicianView(tid, skills, at(km, bearing), NOW + free_in, NOW + shift, capacity, on_leave)


def need(arrive_by: datetime | None = NOW + timedelta(hours=8), skill: str = "hardware",
         rid: str = "R1", site: Position = SITE) -> Need:
    return Need(rid, site, skill, arrive_by)


def chose(assignment: Assignment) -> str | None:
    return assignment.technician_id


# --- rule D4: the choice ---------------------------------------------------------------------------

def test_rule_d4_least_travel_among_those_in_time_even_if_another_arrives_earlier() -> None:
    near_but_busy = tech("T-near", 10, free_in=timedelta(hours=2))  # 15 min, arrives 11:15
    far_but_free = tech("T-far", 30)  # 45 min, arrives 9:45
    result = assign(need(), [far_but_free, near_but_busy], now=NOW, travel=TRAVEL)
    assert chose(result) == "T-near" and not result.at_risk
    assert result.explanation.rule == "in_time_least_travel"
    assert "T-far would arrive earlier" in result.explanation.reason and "rule D4" in result.explanation.reason
    assert [c.technician_id for c in result.explanation.candidates] == ["T-near", "T-far"]


def test_rule_d4_a_closer_technician_who_would_be_late_loses_to_one_in_time() -> None:
    closer_late = tech("T-close", 5, free_in=timedelta(hours=3))
    farther_in_time = tech("T-farther", 60)  # 90 min
    result = assign(need(NOW + timedelta(hours=2)), [closer_late, farther_in_time], now=NOW, travel=TRAVEL)
    assert chose(result) == "T-farther" and not result.at_risk
    close = result.explanation.of("T-close")
    assert close is not None and close.eligible and not close.can_make_deadline


def test_rule_d4_when_nobody_can_make_it_the_earliest_arrival_goes_and_is_at_risk() -> None:
    a = tech("T-a", 40)  # 60 min, arrives 10:00
    b = tech("T-b", 10, free_in=timedelta(hours=2))  # less travel, arrives 11:15
    result = assign(need(NOW + timedelta(minutes=30)), [b, a], now=NOW, travel=TRAVEL)
    assert chose(result) == "T-a" and result.at_risk
    assert result.explanation.rule == "earliest_arrival_at_risk"
    assert "at risk" in result.explanation.reason and "30 min late" in result.explanation.reason
    assert result.chosen is not None and result.chosen.arrives == NOW + timedelta(hours=1)


def test_rule_d4_without_a_deadline_least_travel_wins_and_nothing_is_at_risk() -> None:
    result = assign(need(None), [tech("T-1", 80), tech("T-2", 20, free_in=timedelta(hours=5))],
                    now=NOW, travel=TRAVEL)
    assert chose(result) == "T-2" and not result.at_risk
    assert all(c.can_make_deadline for c in result.explanation.candidates)


def test_rule_d4_arriving_exactly_at_the_deadline_is_in_time() -> None:
    result = assign(need(NOW + timedelta(minutes=60)), [tech("T-1", 40)], now=NOW, travel=TRAVEL)
    assert chose(result) == "T-1" and not result.at_risk


def test_rule_d4_departure_is_the_later_of_now_and_available_from() -> None:
    result = assign(need(), [tech("T-early", 20, free_in=-timedelta(hours=1)), tech("T-later", 20, bearing=180,
                                                                                   free_in=timedelta(hours=1))],
                    now=NOW, travel=TRAVEL)
    early, later = result.explanation.of("T-early"), result.explanation.of("T-later")
    assert early is not None and later is not None
    assert early.departs == NOW and later.departs == NOW + timedelta(hours=1)
    assert early.arrives == NOW + timedelta(minutes=30)


# --- rule D4: eligibility, with reasons ---------------------------------------------------------------

def test_rule_d4_skill_leave_shift_end_and_capacity_exclude_with_reasons() -> None:
    technicians = [
        tech("T-skill", 1, skills=frozenset({"network", "software:crm"})),
        tech("T-leave", 2, on_leave=True),
        tech("T-shift", 3, shift=timedelta(hours=-1)),  # the shift ended at 8:00
        tech("T-busy-past-shift", 4, free_in=timedelta(hours=9)),  # free exactly when the shift ends
        tech("T-capacity", 5, capacity=0),
        tech("T-ok", 50),
    ]
    result = assign(need(), technicians, now=NOW, travel=TRAVEL)
    assert chose(result) == "T-ok"
    why = {c.technician_id: c.why_not for c in result.explanation.candidates}
    assert why == {"T-skill": ("skill",), "T-leave": ("leave",), "T-shift": ("shift_over",),
                   "T-busy-past-shift": ("shift_over",), "T-capacity": ("capacity",), "T-ok": ()}
    assert result.explanation.candidates[0].technician_id == "T-ok"
    assert all(not c.eligible for c in result.explanation.candidates[1:])


def test_rule_d4_software_skill_is_per_product() -> None:
    crm = tech("T-crm", 30, skills=frozenset({"software:crm"}))
    erp = tech("T-erp", 5, skills=frozenset({"software:erp", "hardware"}))
    result = assign(need(skill="software:crm"), [erp, crm], now=NOW, travel=TRAVEL)
    assert chose(result) == "T-crm"
    erp_row = result.explanation.of("T-erp")
    assert erp_row is not None and erp_row.why_not == ("skill",)


def test_rule_d4_every_reason_is_listed_and_nobody_eligible_leaves_the_request_unassigned_at_risk() -> None:
    result = assign(need(), [tech("T-1", 5, skills=frozenset({"network"}), on_leave=True, capacity=0),
                             tech("T-2", 9, on_leave=True)], now=NOW, travel=TRAVEL)
    assert result.technician_id is None and result.at_risk and result.chosen is None
    assert result.explanation.rule == "nobody_eligible"
    one = result.explanation.of("T-1")
    assert one is not None and one.why_not == ("skill", "leave", "capacity")
    assert "none of the 2 technicians is eligible" in result.explanation.reason
    assert "2 on leave" in result.explanation.reason
    empty = assign(need(), [], now=NOW, travel=TRAVEL)
    assert empty.technician_id is None and empty.explanation.candidates == ()


def test_rule_d4_a_shift_ending_during_the_journey_does_not_exclude() -> None:
    # An out-of-town visit (C9's M days) may travel past today's shift end.
    result = assign(need(None), [tech("T-1", 500, shift=timedelta(minutes=30))], now=NOW, travel=TRAVEL)
    assert chose(result) == "T-1"


def test_rule_d4_exclude_list_for_redispatch_after_a_decline_or_no_show() -> None:
    technicians = [tech("T-first", 5), tech("T-second", 15)]
    first = assign(need(), technicians, now=NOW, travel=TRAVEL)
    again = assign(need(), technicians, now=NOW, travel=TRAVEL, exclude=frozenset({"T-first"}))
    assert chose(first) == "T-first" and chose(again) == "T-second"
    row = again.explanation.of("T-first")
    assert row is not None and row.why_not == ("excluded",)
    nobody = assign(need(), technicians, now=NOW, travel=TRAVEL, exclude=frozenset({"T-first", "T-second"}))
    assert nobody.technician_id is None and "excluded" in nobody.explanation.reason


# --- rule D4: travel modes ------------------------------------------------------------------------------

@pytest.mark.parametrize(("km", "mode", "minutes"), [
    (0, "road", 0), (100, "road", 150), (150, "road", 225),  # road within the region: 40 km/h
    (150.5, "rail", 150.5 / 200 * 60 + 60), (800, "rail", 240 + 60),  # rail: 200 km/h + 60 min
    (800.5, "air", 800.5 / 600 * 60 + 180), (1200, "air", 120 + 180),  # air: 600 km/h + 180 min
])
def test_rule_d4_road_rail_air_thresholds_with_overheads(km: float, mode: str, minutes: float) -> None:
    assert TRAVEL.mode_for(km) == mode
    got_mode, got_minutes = TRAVEL.travel(km)
    assert got_mode == mode and got_minutes == pytest.approx(minutes)


def test_rule_d4_travel_model_parameters_are_data() -> None:
    model = TravelModel(road_kmh=60, rail_beyond_km=100, air_beyond_km=500, rail_overhead_min=30)
    assert model.travel(90)[0] == "road" and model.travel(90)[1] == pytest.approx(90)
    assert model.travel(200)[0] == "rail" and model.travel(200)[1] == pytest.approx(60 + 30)
    assert model.mode_for(501) == "air"
    with pytest.raises(Rejected) as speed:
        TravelModel(road_kmh=0)
    assert speed.value.field == "road_kmh"
    with pytest.raises(Rejected):
        TravelModel(rail_beyond_km=900, air_beyond_km=800)
    with pytest.raises(Rejected):
        TRAVEL.mode_for(-1)


def test_rule_d4_geodesic_distance_on_wgs84() -> None:
    shanghai = (31.2304, 121.4737)
    assert distance_km(SITE, shanghai) == pytest.approx(1067, abs=5)
    assert distance_km(SITE, at(42.0)) == pytest.approx(42.0, abs=1e-6)


def test_rule_d4_explanation_carries_mode_and_overheads_out_of_town() -> None:
    def based(tid: str, position: Position) -> TechnicianView:
        return TechnicianView(tid, frozenset({"hardware"}), position, NOW, NOW + timedelta(hours=9), 2)

    shanghai_tech = based("T-sh", (31.2304, 121.4737))
    wuhan_tech = based("T-wh", (30.5928, 114.3055))
    tianjin_tech = based("T-tj", (39.3434, 117.3616))
    result = assign(need(NOW + timedelta(days=2)), [shanghai_tech, wuhan_tech, tianjin_tech], now=NOW, travel=TRAVEL)
    modes = {c.technician_id: c.mode for c in result.explanation.candidates}
    assert modes == {"T-sh": "air", "T-wh": "air", "T-tj": "road"}
    sh = result.explanation.of("T-sh")
    assert sh is not None and sh.travel_minutes == pytest.approx(sh.distance_km / 600 * 60 + 180)
    assert chose(result) == "T-tj" and "by road" in result.explanation.reason
    # between 150 and 800 km: rail, with its hour of overhead
    jinan_tech = replace(tianjin_tech, technician_id="T-jn", position=(36.6512, 117.1201))
    jn = assign(need(), [jinan_tech], now=NOW, travel=TRAVEL).chosen
    assert jn is not None and jn.mode == "rail" and jn.travel_minutes == pytest.approx(jn.distance_km / 200 * 60 + 60)


# --- rule D4: determinism -----------------------------------------------------------------------------

def test_rule_d4_ties_are_broken_by_technician_id_whatever_the_input_order() -> None:
    same = [tech(tid, 12) for tid in ("T-c", "T-a", "T-b")]
    for order in itertools.permutations(same):
        result = assign(need(), list(order), now=NOW, travel=TRAVEL)
        assert chose(result) == "T-a"
        assert [c.technician_id for c in result.explanation.candidates] == ["T-a", "T-b", "T-c"]
    late = [tech(tid, 12) for tid in ("T-z", "T-y")]
    assert chose(assign(need(NOW), late, now=NOW, travel=TRAVEL)) == "T-y"


def test_rule_d4_equal_travel_prefers_the_earlier_arrival_before_the_id() -> None:
    result = assign(need(), [tech("T-a", 12, free_in=timedelta(hours=1)), tech("T-b", 12)],
                    now=NOW, travel=TRAVEL)
    assert chose(result) == "T-b"


def test_rule_d4_same_inputs_same_assignment() -> None:
    technicians = [tech(f"T-{i}", 5 + 7 * i, bearing=40 * i) for i in range(8)]
    assert assign(need(), technicians, now=NOW, travel=TRAVEL) == assign(need(), technicians[::-1], now=NOW,
                                                                           travel=TRAVEL)


# --- rule D4: refusals ----------------------------------------------------------------------------------

def test_rule_d4_refuses_naive_times_bad_skills_and_duplicate_technicians() -> None:
    with pytest.raises(Rejected) as naive:
        assign(need(), [tech("T-1", 1)], now=NOW.replace(tzinfo=None), travel=TRAVEL)
    assert (naive.value.code, naive.value.field) == ("naive_time", "now")
    with pytest.raises(Rejected) as skill:
        need(skill="software:")
    assert skill.value.field == "skill"
    with pytest.raises(Rejected) as deadline:
        need(NOW.replace(tzinfo=None))
    assert deadline.value.field == "arrive_by"
    with pytest.raises(Rejected) as dup:
        assign(need(), [tech("T-1", 1), tech("T-1", 2)], now=NOW, travel=TRAVEL)
    assert dup.value.code == "duplicate"
    with pytest.raises(Rejected):
        Need("R1", (91.0, 0.0), "hardware")


# --- rule D4: dispatcher override -----------------------------------------------------------------------

def test_rule_d4_override_requires_a_reason() -> None:
    result = assign(need(), [tech("T-1", 5), tech("T-2", 20)], now=NOW, travel=TRAVEL)
    for blank in ("", "   "):
        with pytest.raises(Rejected) as refused:
            override(result, "T-2", blank, "dispatcher-li")
        assert (refused.value.code, refused.value.field) == ("reason_required", "reason")
    with pytest.raises(Rejected) as nobody:
        override(result, "T-2", "customer asked for T-2", "")
    assert nobody.value.field == "by"


def test_rule_d4_override_keeps_the_explanation_and_adds_the_override() -> None:
    result = assign(need(NOW + timedelta(minutes=20)), [tech("T-1", 5), tech("T-2", 20)], now=NOW, travel=TRAVEL)
    assert chose(result) == "T-1" and not result.at_risk
    changed = override(result, "T-2", " knows this customer's installation ", "dispatcher-li")
    assert chose(changed) == "T-2" and changed.overridden
    assert changed.explanation == result.explanation  # the rule's reasons stay on record
    first = changed.overrides[0]
    assert (first.replaced, first.reason, first.by) == ("T-1", "knows this customer's installation", "dispatcher-li")
    assert changed.at_risk  # T-2 needs 30 min for a 20 min deadline
    back = override(changed, "T-1", "T-2 is stuck in traffic", "dispatcher-wang")
    assert chose(back) == "T-1" and not back.at_risk
    assert [o.technician_id for o in back.overrides] == ["T-2", "T-1"] and back.overrides[1].replaced == "T-2"
    data = back.as_dict()  # what an assignment event carries
    assert json.loads(json.dumps(data)) == data
    assert data["explanation"]["candidates"][0]["arrives"] == "2026-06-01T09:07:30+08:00"
    assert [o["by"] for o in data["overrides"]] == ["dispatcher-li", "dispatcher-wang"]


def test_rule_d4_override_may_send_an_ineligible_technician_but_only_one_that_was_weighed() -> None:
    result = assign(need(), [tech("T-1", 5), tech("T-leave", 3, on_leave=True)], now=NOW, travel=TRAVEL)
    changed = override(result, "T-leave", "back from leave early, confirmed by phone", "dispatcher-li")
    assert chose(changed) == "T-leave"
    with pytest.raises(Rejected) as unknown:
        override(result, "T-9", "a reason", "dispatcher-li")
    assert unknown.value.code == "unknown_technician"
    with pytest.raises(Rejected) as same:
        override(result, "T-1", "a reason", "dispatcher-li")
    assert same.value.code == "unchanged"
    unassigned = assign(need(), [tech("T-leave", 3, on_leave=True)], now=NOW, travel=TRAVEL)
    rescued = override(unassigned, "T-leave", "back from leave", "dispatcher-li")
    assert rescued.technician_id == "T-leave" and rescued.overrides[0].replaced is None


# --- rule D4: one round of several requests -----------------------------------------------------------

def test_rule_d4_one_round_minimises_total_travel_where_one_by_one_would_not() -> None:
    # On a meridian: R1 at the site, R2 10 km north; T-a 4 km north, T-b 6 km south.
    r1, r2 = need(rid="R1"), need(rid="R2", site=at(10))
    a, b = tech("T-a", 4), tech("T-b", 6, bearing=180)
    greedy_first = assign(r1, [a, b], now=NOW, travel=TRAVEL)
    assert chose(greedy_first) == "T-a"  # alone, R1 takes T-a, leaving T-b 16 km from R2
    result = one_round([r1, r2], [a, b], now=NOW, travel=TRAVEL)
    assert [x.technician_id for x in result.assignments] == ["T-b", "T-a"]
    assert result.total_travel_minutes == pytest.approx((6 + 6) / 40 * 60)
    assert result.late == 0 and result.unassigned == 0
    first = result.assignments[0]
    assert first.explanation.rule == "round_optimum" and first.explanation.candidates[0].technician_id == "T-b"
    assert "alone the request would have gone to T-a, who goes to R2" in first.explanation.reason


def test_rule_d4_one_round_puts_arriving_in_time_before_saving_travel() -> None:
    # T-a could serve either in time; T-b is only in time for R2 (no deadline) -> T-a to R1.
    r1, r2 = need(NOW + timedelta(minutes=20), rid="R1"), need(None, rid="R2", site=at(3))
    a, b = tech("T-a", 2), tech("T-b", 20, bearing=180)
    result = one_round([r1, r2], [a, b], now=NOW, travel=TRAVEL)
    assert [x.technician_id for x in result.assignments] == ["T-a", "T-b"]
    assert result.late == 0


def test_rule_d4_one_round_each_technician_once_and_requests_left_over_are_at_risk() -> None:
    needs = [need(rid=f"R{i}", site=at(i)) for i in range(3)]
    result = one_round(needs, [tech("T-a", 1), tech("T-b", 2, on_leave=True), tech("T-c", 5)], now=NOW,
                       travel=TRAVEL)
    taken = [x.technician_id for x in result.assignments if x.technician_id]
    assert sorted(taken) == ["T-a", "T-c"] and result.unassigned == 1
    left = next(x for x in result.assignments if x.technician_id is None)
    assert left.at_risk and "needed by other requests" in left.explanation.reason


def test_rule_d4_one_round_honours_each_requests_exclude_list() -> None:
    needs = [need(rid="R1"), need(rid="R2", skill="network", site=at(5))]
    technicians = [tech("T-a", 1, skills=frozenset({"hardware", "network"})), tech("T-b", 30)]
    result = one_round(needs, technicians, now=NOW, travel=TRAVEL, exclude={"R1": frozenset({"T-a"})})
    assert [x.technician_id for x in result.assignments] == ["T-b", "T-a"]


def test_rule_d4_one_round_of_one_request_is_assign() -> None:
    rng = random.Random(4)
    for _ in range(30):
        site = (rng.uniform(22, 41), rng.uniform(100, 122))
        request = Need("R", site, "hardware", NOW + timedelta(minutes=rng.choice([30, 120, 600])))
        technicians = [
            TechnicianView(f"T-{k:02d}", frozenset(rng.sample(["hardware", "network"], rng.randint(1, 2))),
                           at(rng.uniform(0, 1500), rng.uniform(0, 360), site),
                           NOW + timedelta(minutes=rng.randint(0, 300)), NOW + timedelta(hours=8),
                           rng.randint(0, 2), rng.random() < 0.1)
            for k in range(12)
        ]
        alone = assign(request, technicians, now=NOW, travel=TRAVEL)
        rounded = one_round([request], technicians, now=NOW, travel=TRAVEL).assignments[0]
        assert (rounded.technician_id, rounded.at_risk) == (alone.technician_id, alone.at_risk)


def test_rule_d4_one_round_does_not_depend_on_input_order() -> None:
    needs = [need(rid=f"R{i}", site=at(3 * i, 90)) for i in range(4)]
    technicians = [tech(f"T-{i}", 3 * i + 1, bearing=90) for i in range(5)]
    forward = one_round(needs, technicians, now=NOW, travel=TRAVEL)
    backward = one_round(needs[::-1], technicians[::-1], now=NOW, travel=TRAVEL)
    assert {a.request_id: a.technician_id for a in forward.assignments} == \
        {a.request_id: a.technician_id for a in backward.assignments}


def test_rule_d4_one_round_is_the_exact_optimum_of_its_cost_matrix() -> None:
    rng = random.Random(7)
    for _ in range(40):
        site = (rng.uniform(25, 35), rng.uniform(105, 120))
        needs = [Need(f"R{i}", at(rng.uniform(0, 300), rng.uniform(0, 360), site), rng.choice(["hardware", "network"]),
                      NOW + timedelta(minutes=rng.choice([60, 180, 480]))) for i in range(rng.randint(1, 4))]
        technicians = [TechnicianView(f"T{k}", frozenset(rng.sample(["hardware", "network"], rng.randint(1, 2))),
                                      at(rng.uniform(0, 400), rng.uniform(0, 360), site),
                                      NOW + timedelta(minutes=rng.randint(0, 240)), NOW + timedelta(hours=8),
                                      rng.randint(0, 2)) for k in range(rng.randint(0, 6))]
        costs = round_costs(needs, technicians, now=NOW, travel=TRAVEL)
        width = len(costs.matrix[0])
        best = min(sum(costs.matrix[i][j] for i, j in enumerate(cols))
                   for cols in itertools.permutations(range(width), len(needs)))
        assert one_round(needs, technicians, now=NOW, travel=TRAVEL).cost == best


def test_hungarian_matches_brute_force_on_random_matrices() -> None:
    rng = random.Random(11)
    for _ in range(200):
        n = rng.randint(1, 5)
        m = rng.randint(n, 6)
        matrix = [[rng.randint(0, 20) for _ in range(m)] for _ in range(n)]
        cols = hungarian(matrix)
        assert len(set(cols)) == n and all(0 <= c < m for c in cols)
        assert sum(matrix[i][c] for i, c in enumerate(cols)) == min(
            sum(matrix[i][c] for i, c in enumerate(p)) for p in itertools.permutations(range(m), n))
    assert hungarian([]) == []
    with pytest.raises(ValueError, match="at most as many rows"):
        hungarian([[1], [2]])
