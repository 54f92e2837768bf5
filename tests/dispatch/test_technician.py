"""Technicians, given/when/then on the pure domain: the one rule for a usable record
(checked at registration and edit, and again by whoever reads the board), edits,
retirement, and what the assignment (D4) and the day plan do with a record they cannot
use: leave it out and name it, never fail for everyone."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta, timezone
from typing import Any

import pytest

from tests.decider import Decider
from weibao.dispatch.adapters.technician_board import sort_out
from weibao.dispatch.domain import technician as crew
from weibao.dispatch.domain.assignment import Excluded, Need, TechnicianView, assign
from weibao.dispatch.domain.ticket import Position
from weibao.dispatch.domain.travel import TravelModel
from weibao.dispatch.planning.model import Technician, Visit, plannable
from weibao.dispatch.planning.solver import plan_day
from weibao.dispatch.planning.travel import TravelModel as PlanTravel
from weibao.shared.errors import Rejected

CST = timezone(timedelta(hours=8))
NOW = datetime(2026, 6, 1, 9, 0, tzinfo=CST)
HEFEI = Position(31.83, 117.24)
REGISTER = crew.RegisterTechnician("near", "王工", ("hardware", "software:crm"), HEFEI)


TECHNICIAN = Decider(decide=crew.decide, evolve=crew.evolve, initial=crew.Technician())
REGISTERED = TECHNICIAN.given().when(REGISTER).events[0]


# -- the one rule -------------------------------------------------------------------------

def test_a_good_record_has_no_problems() -> None:
    assert crew.problems(TECHNICIAN.given(REGISTERED).state.profile()) == ()


@pytest.mark.parametrize(("change", "field"), [
    ({"skills": ("x",)}, "skills"),  # the finding: "x" is no skill (D4)
    ({"skills": ()}, "skills"),
    ({"skills": ("hardware", "hardware")}, "skills"),
    ({"skills": ("software:",)}, "skills"),
    ({"name": "  "}, "name"),
    ({"name": "n" * 201}, "name"),
    ({"technician_id": ""}, "technician_id"),
    ({"home": Position(123.0, 117.0)}, "home.latitude"),
    ({"home": Position(31.0, float("nan"))}, "home.longitude"),
    ({"shift": crew.Shift(time(18), time(9))}, "shift.ends"),
    ({"capacity_per_day": 0}, "capacity_per_day"),
])
def test_the_rule_names_the_field_of_a_bad_record(change: dict[str, Any], field: str) -> None:
    profile = TECHNICIAN.given(REGISTERED).state.profile()
    fields = {"technician_id": profile.technician_id, "name": profile.name, "skills": profile.skills,
              "home": profile.home, "shift": profile.shift, "capacity_per_day": profile.capacity_per_day, **change}
    found = crew.problems(crew.Profile(**fields))
    assert [p.field for p in found] == [field]
    assert found[0].message  # in words


def test_d4_registration_refuses_an_unknown_skill_naming_the_field() -> None:
    # given no technician, when one is registered with a skill nobody can match (D4)
    refused = TECHNICIAN.given().when(crew.RegisterTechnician("odd", "怪", ("x",), HEFEI))
    # then nothing is decided, and the answer names the field and the value
    error = refused.then_rejected("invalid", "skills")
    assert "'x'" in error.message and "hardware" in error.message


# -- edits --------------------------------------------------------------------------------

def test_an_edit_records_the_whole_profile_after_it() -> None:
    after = TECHNICIAN.given(REGISTERED).when(
        crew.ChangeTechnician(skills=("network",), shift=crew.Shift(time(8), time(17)), name="王工 (网络)"),
    ).then(crew.TechnicianChanged("王工 (网络)", ("network",), HEFEI, crew.Shift(time(8), time(17)), 4)).state
    assert (after.skills, after.shift, after.name, after.home) == (("network",), crew.Shift(time(8), time(17)),
                                                                   "王工 (网络)", HEFEI)


def test_an_edit_that_changes_nothing_stores_nothing() -> None:
    TECHNICIAN.given(REGISTERED).when(crew.ChangeTechnician(skills=("hardware", "software:crm"))).then()


def test_an_edit_is_checked_by_the_same_rule() -> None:
    registered = TECHNICIAN.given(REGISTERED)
    registered.when(crew.ChangeTechnician(skills=("x",))).then_rejected(field="skills")
    registered.when(crew.ChangeTechnician(home=Position(91.0, 0.0))).then_rejected(field="home.latitude")


def test_an_edit_of_nobody_is_not_found() -> None:
    TECHNICIAN.given().when(crew.ChangeTechnician(name="x")).then_rejected("not_found")


# -- retirement ---------------------------------------------------------------------------

def test_d4_retirement_says_why_and_ends_every_later_change() -> None:
    registered = TECHNICIAN.given(REGISTERED)
    registered.when(crew.RetireTechnician(NOW, " ")).then_rejected(field="reason")
    retired = registered.when(crew.RetireTechnician(NOW, "调往上海")).then(crew.TechnicianRetired(NOW, "调往上海"))
    for later in (crew.RetireTechnician(NOW, "again"), crew.ChangeTechnician(name="x"),
                  crew.TakeTimeOff(NOW.date(), NOW.date(), "leave")):
        retired.when(later).then_rejected("retired")


# -- readers: the board, the assignment (D4), the plan -----------------------------------

def row(technician_id: str, *, skills: list[str] | None = None, retired_at: str | None = None) -> dict[str, Any]:
    return {"technician_id": technician_id, "name": technician_id, "skills": skills or ["hardware"],
            "home_latitude": 31.83, "home_longitude": 117.24, "latitude": 31.83, "longitude": 117.24,
            "last_seen": None, "shift": {"starts": "09:00:00", "ends": "18:00:00"}, "capacity_per_day": 4,
            "time_off": [], "open_visits": [], "retired_at": retired_at, "retirement_reason": "调走"}


def test_d4_the_board_reader_sorts_out_bad_and_retired_records_by_the_same_rule() -> None:
    shift_less = {**row("no-shift"), "shift": json.loads('"9 to 6"')}
    usable, unusable = sort_out([row("near"), row("odd", skills=["x"]), row("gone", retired_at="2026-05-01T00:00Z"),
                                 shift_less], purpose="test")
    assert [r["technician_id"] for r in usable] == ["near"]
    why = {u.technician_id: u for u in unusable}
    assert "skills" in why["odd"].reason and "'x'" in why["odd"].reason and not why["odd"].retired
    assert why["gone"].retired and why["gone"].reason == "retired on 2026-05-01: 调走"
    assert "cannot be read" in why["no-shift"].reason


def test_d4_weighs_everyone_else_and_names_who_it_left_out() -> None:
    near = TechnicianView("near", frozenset({"hardware"}), (31.83, 117.24), NOW, NOW.replace(hour=18), 4)
    need = Need("t-1", (31.865, 117.283), "hardware", NOW + timedelta(hours=4))
    decision = assign(need, [near], now=NOW, travel=TravelModel(),
                      unweighed=[Excluded("odd", "record fails the technician rule: skills: unknown 'x'")])
    assert decision.technician_id == "near"
    assert decision.explanation.excluded == (Excluded("odd", "record fails the technician rule: skills: unknown 'x'"),)
    nobody = assign(need, [], now=NOW, travel=TravelModel(), unweighed=[Excluded("odd", "bad")])
    assert nobody.technician_id is None and "odd (bad)" in nobody.explanation.reason


def test_a_technician_view_still_refuses_an_unknown_skill() -> None:
    with pytest.raises(Rejected, match="a skill is"):
        TechnicianView("odd", frozenset({"x"}), (31.83, 117.24), NOW, NOW.replace(hour=18), 4)


NINE, SIX = 9 * 60, 18 * 60


def test_d4_the_plan_leaves_out_a_double_booked_technician_and_plans_everyone_else() -> None:
    # given "near" with two visits under way at once (the API allows checking in twice)
    crew_ = [Technician("near", (31.83, 117.24), NINE, SIX, frozenset({"hardware"})),
             Technician("other", (31.82, 117.23), NINE, SIX, frozenset({"hardware"}))]
    visits = [Visit("a", (31.865, 117.283), NINE, SIX, 60, "hardware", locked_to="near"),
              Visit("b", (31.866, 117.284), NINE, SIX, 60, "hardware", locked_to="near"),
              Visit("c", (31.85, 117.25), NINE, SIX, 60, "hardware")]
    # when the day is planned
    kept, open_visits, left_out = plannable(crew_, visits)
    plan = plan_day(kept, open_visits, PlanTravel(), seconds=0.2)
    # then the other technician and the free visit are planned, and "near" is named with why
    assert [s.visit_id for s in plan.routes["other"]] == ["c"]
    assert [(n.technician_id, n.visits) for n in left_out] == [("near", ("a", "b"))]
    assert "2 visits under way at once" in left_out[0].reason


def test_d4_the_plan_names_an_absent_technician_with_a_visit_under_way() -> None:
    crew_ = [Technician("other", (31.82, 117.23), NINE, SIX, frozenset({"hardware"}))]
    visits = [Visit("a", (31.865, 117.283), NINE, SIX, 60, "hardware", locked_to="gone"),
              Visit("c", (31.85, 117.25), NINE, SIX, 60, "hardware")]
    kept, open_visits, left_out = plannable(crew_, visits, absent={"gone": "retired on 2026-05-01: 调走"})
    assert [v.id for v in open_visits] == ["c"] and [t.id for t in kept] == ["other"]
    assert left_out[0].technician_id == "gone" and left_out[0].reason.startswith("retired")
