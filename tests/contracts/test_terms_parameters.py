"""Terms the seeds need (issue 13): service hours as a list, service days (C20), the
check-in radius (D5), priority targets, given in templates, at signing and at
amendment, and refused in words naming the term. Contracts validates; dispatch counts
(tests/dispatch/test_sla_terms.py), and both answer the same SLA for the same terms."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from weibao.contracts.adapters.templates import TemplateError, TemplateFile, load_template, load_templates
from weibao.contracts.domain.agreement import AmendAgreement
from weibao.contracts.domain.coverage import Question, Sla, sla_for
from weibao.contracts.domain.terms import Onsite, PriorityTargets, Targets
from weibao.dispatch.domain.sla import Span, sla_from_terms
from weibao.shared import codec
from weibao.shared.errors import Rejected

from .conftest import AGREEMENT, YIZHUO_PARAMETERS, signing

ALL_WEEK = [1, 2, 3, 4, 5, 6, 7]


def refused(template: TemplateFile, **parameters: Any) -> Rejected:
    with pytest.raises(Rejected) as error:
        template.resolve({**YIZHUO_PARAMETERS, **parameters})
    return error.value


@pytest.fixture
def yizhuo(templates: dict[str, TemplateFile]) -> TemplateFile:
    return templates["yizhuo-crm-maintenance"]


# -- service hours (C20) ----------------------------------------------------------------


def test_c20_service_hours_given_at_signing_as_a_list_of_two_times(yizhuo: TemplateFile) -> None:
    terms = yizhuo.resolve({**YIZHUO_PARAMETERS, "onsite.service_hours": ["09:00", "17:00"]})
    assert terms.onsite.service_hours == ("09:00", "17:00")


@pytest.mark.parametrize("hours", [
    ["17:00", "09:00"],  # closes before it opens
    ["09:00", "09:00"],  # an empty window
    ["9", "17:00"],  # not HH:MM
    ["09:00", "24:00"],  # no such time
    ["09:00", "17:00", "20:00"],  # three times
    ["09:00"],
    "09:00-17:00",  # one text, not two times
    [9, 17],
])
def test_c20_bad_service_hours_are_refused_in_words_naming_the_term(yizhuo: TemplateFile, hours: Any) -> None:
    error = refused(yizhuo, **{"onsite.service_hours": hours})
    assert (error.code, error.field) == ("invalid", "parameters.onsite.service_hours")
    assert error.message == "two times HH:MM, opening before closing"


def test_c20_service_hours_as_a_list_at_amendment(templates: dict[str, TemplateFile]) -> None:
    template = templates["yizhuo-crm-maintenance"]
    agreement = AGREEMENT.after(signing(template, **YIZHUO_PARAMETERS))
    terms = template.resolve({**YIZHUO_PARAMETERS, "onsite.service_hours": ["08:30", "17:30"],
                              "onsite.calendar": "working"})
    amended = agreement.when(AmendAgreement(terms, date(2025, 9, 1), "longer desk hours")).state
    assert amended.terms_on(date(2025, 9, 1)).onsite.service_hours == ("08:30", "17:30")
    assert amended.terms_on(date(2025, 8, 31)).onsite.service_hours is None


# -- service days (C20) ------------------------------------------------------------------


def test_c20_service_days_default_to_monday_to_friday(yizhuo: TemplateFile) -> None:
    assert yizhuo.resolve(YIZHUO_PARAMETERS).onsite.service_days == (1, 2, 3, 4, 5)


def test_c20_seven_days_a_week_is_every_iso_weekday_in_any_order(yizhuo: TemplateFile) -> None:
    terms = yizhuo.resolve({**YIZHUO_PARAMETERS, "onsite.service_days": [7, 6, 5, 4, 3, 2, 1]})
    assert terms.onsite.service_days == (1, 2, 3, 4, 5, 6, 7)  # one spelling of a week


@pytest.mark.parametrize("days", [[], [0], [8], [1, 1], "weekdays", [1, "x"]])
def test_c20_bad_service_days_are_refused_naming_the_term(yizhuo: TemplateFile, days: Any) -> None:
    error = refused(yizhuo, **{"onsite.service_days": days})
    assert (error.code, error.field) == ("invalid", "parameters.onsite.service_days")
    assert "1 (Monday) to 7 (Sunday)" in error.message


def test_c20_the_ziguang_seed_serves_9_to_18_seven_days_a_week(templates: dict[str, TemplateFile]) -> None:
    onsite = templates["ziguang-three-guarantees"].template.terms.onsite
    assert onsite.service_hours == ("09:00", "18:00") and onsite.service_days == tuple(ALL_WEEK)
    assert onsite.calendar == "working"


# -- geofence (D5) -----------------------------------------------------------------------


def test_d5_a_per_agreement_check_in_radius(yizhuo: TemplateFile) -> None:
    assert yizhuo.resolve(YIZHUO_PARAMETERS).onsite.geofence_m is None  # the service-wide setting
    assert yizhuo.resolve({**YIZHUO_PARAMETERS, "onsite.geofence_m": 300}).onsite.geofence_m == 300


@pytest.mark.parametrize("radius", [0, 49, 5001, -100, "near", 120.5])
def test_d5_a_radius_outside_50_to_5000_metres_is_refused_naming_the_term(yizhuo: TemplateFile,
                                                                         radius: Any) -> None:
    error = refused(yizhuo, **{"onsite.geofence_m": radius})
    assert (error.code, error.field) == ("invalid", "parameters.onsite.geofence_m")
    assert "50 to 5000" in error.message


# -- priority targets (issue 13) -----------------------------------------------------------


def test_priority_targets_are_given_as_dotted_parameters(yizhuo: TemplateFile) -> None:
    terms = yizhuo.resolve({**YIZHUO_PARAMETERS, "onsite.priority_targets.urgent.arrive_hours": 4,
                            "onsite.priority_targets.urgent.respond_hours": 1,
                            "onsite.priority_targets.high.arrive_hours": 6})
    assert terms.onsite.priority_targets == PriorityTargets(urgent=Targets(respond_hours=1, arrive_hours=4),
                                                            high=Targets(arrive_hours=6))


@pytest.mark.parametrize("value", [0, -1, "soon", None])
def test_a_target_that_is_not_a_positive_number_of_hours_is_refused_by_name(yizhuo: TemplateFile,
                                                                            value: Any) -> None:
    error = refused(yizhuo, **{"onsite.priority_targets.urgent.arrive_hours": value} if value is not None
                    else {"onsite.priority_targets": {"urgent": {"arrive_hours": "x"}}})
    assert (error.code, error.field) == ("invalid", "parameters.onsite.priority_targets.urgent.arrive_hours")
    assert error.message == "a positive number of hours"


def test_an_unknown_priority_or_target_is_refused_naming_it(yizhuo: TemplateFile) -> None:
    error = refused(yizhuo, **{"onsite.priority_targets.critical.arrive_hours": 2})
    assert (error.code, error.field) == ("unknown", "parameters.onsite.priority_targets.critical.arrive_hours")
    assert error.message == "not a priority: urgent, high, normal or low"
    error = refused(yizhuo, **{"onsite.priority_targets.urgent.arrive_minutes": 30})
    assert (error.code, error.field) == ("unknown", "parameters.onsite.priority_targets.urgent.arrive_minutes")
    assert error.message == "not a target: respond_hours, arrive_hours or resolve_hours"
    # the same refusals for a whole table (a template's own terms)
    error = refused(yizhuo, **{"onsite.priority_targets": {"critical": {"arrive_hours": 2}}})
    assert (error.field, error.message) == ("parameters.onsite.priority_targets.critical",
                                            "not a priority: urgent, high, normal or low")


# -- templates ------------------------------------------------------------------------------

SIXTH = '''id = "city-clinic-his"
name = "诊所 HIS 维护"
sources = ["vendor's own"]
parameters = ["onsite.service_hours"]
[terms.onsite]
kind = "local_or_out_of_town"
local_hours = 4
out_of_town_days = 1
calendar = "working"
service_days = [1, 2, 3, 4, 5, 6, 7]
geofence_m = 800
phone_support_24h = true
[terms.onsite.priority_targets.urgent]
arrive_hours = 2
[example]
"onsite.service_hours" = ["08:00", "20:00"]
'''


def test_c16_c20_a_sixth_template_sets_the_new_terms_without_code(tmp_path: Path) -> None:
    (tmp_path / "city-clinic-his.toml").write_text(SIXTH, encoding="utf-8")
    (loaded,) = load_templates(tmp_path).values()
    onsite = loaded.resolve({"onsite.service_hours": ["09:00", "18:00"]}).onsite
    assert onsite.service_hours == ("09:00", "18:00") and onsite.service_days == tuple(ALL_WEEK)
    assert onsite.geofence_m == 800 and onsite.priority_targets is not None
    assert onsite.priority_targets.urgent == Targets(arrive_hours=2)


@pytest.mark.parametrize(("change", "field", "reason"), [
    (('"onsite.service_hours" = ["08:00", "20:00"]', '"onsite.service_hours" = ["20:00", "08:00"]'),
     "terms.onsite.service_hours", "two times HH:MM, opening before closing"),
    (("service_days = [1, 2, 3, 4, 5, 6, 7]", "service_days = [1, 9]"),
     "terms.onsite.service_days", "1 (Monday) to 7 (Sunday)"),
    (("geofence_m = 800", "geofence_m = 9000"), "terms.onsite.geofence_m", "50 to 5000"),
    (("arrive_hours = 2", "arrive_hours = 0"), "terms.onsite.priority_targets.urgent.arrive_hours",
     "a positive number of hours"),
    (("[terms.onsite.priority_targets.urgent]", "[terms.onsite.priority_targets.asap]"),
     "terms.onsite.priority_targets.asap", "not a priority"),
])
def test_a_template_with_a_bad_new_term_names_file_field_and_reason(
        tmp_path: Path, change: tuple[str, str], field: str, reason: str) -> None:
    path = tmp_path / "city-clinic-his.toml"
    path.write_text(SIXTH.replace(*change), encoding="utf-8")
    with pytest.raises(TemplateError) as error:
        load_template(path)
    assert (error.value.file, error.value.field) == ("city-clinic-his.toml", field)
    assert reason in error.value.reason


# -- contracts' SLA answer is dispatch's (D1, D2, C16) --------------------------------------


def test_terms_published_to_dispatch_read_back_as_the_same_sla(yizhuo: TemplateFile) -> None:
    """`CoverageGranted.terms` carries the new terms as plain data that dispatch reads."""
    terms = yizhuo.resolve({**YIZHUO_PARAMETERS, "onsite.service_hours": ["09:00", "17:00"],
                            "onsite.service_days": ALL_WEEK, "onsite.calendar": "working",
                            "onsite.priority_targets.urgent.arrive_hours": 4})
    onsite = codec.dump(terms)["onsite"]
    assert onsite["service_hours"] == ["09:00", "17:00"] and onsite["service_days"] == ALL_WEEK
    assert onsite["priority_targets"]["urgent"]["arrive_hours"] == 4
    sla = sla_from_terms(onsite, local=True, phase=None, priority="urgent")
    assert sla.arrive_within == Span.hours(4) and sla.service_days == tuple(ALL_WEEK)


C15_24H = Onsite("respond_resolve", respond_hours=24, resolve_hours=24, calendar="working", phone_support_24h=True,
                 priority_targets=PriorityTargets(urgent=Targets(respond_hours=2, arrive_hours=8),
                                                  low=Targets(resolve_hours=48)))
C9_WORKING = Onsite("local_or_out_of_town", local_hours=8, out_of_town_days=2, calendar="working",
                    service_days=(1, 2, 3, 4, 5, 6, 7), service_hours=("09:00", "17:00"),
                    priority_targets=PriorityTargets(urgent=Targets(arrive_hours=12), high=Targets(arrive_hours=20)))
BY_ARRANGEMENT = Onsite("by_arrangement", phone_support_24h=True,
                        priority_targets=PriorityTargets(urgent=Targets(respond_hours=4)))


@pytest.mark.parametrize("onsite", [C15_24H, C9_WORKING, BY_ARRANGEMENT])
@pytest.mark.parametrize("local", [True, False])
@pytest.mark.parametrize("priority", [None, "urgent", "high", "normal", "low"])
@pytest.mark.parametrize("channel", [None, "phone", "email"])
def test_d1_c16_contracts_sla_for_answers_what_dispatch_counts(onsite: Onsite, local: bool, priority: Any,
                                                               channel: Any) -> None:
    ours = sla_for(onsite, Question(date(2025, 6, 1), "fault", local=local, priority=priority, channel=channel))
    theirs = sla_from_terms(codec.dump(onsite), local=local, phase=None, priority=priority, channel=channel)
    if ours is None:
        assert not theirs.sets_deadlines and not theirs.clauses
        return
    assert _as_dispatch(ours) == (theirs.respond_within and theirs.respond_within.total_seconds() / 3600,
                                  theirs.arrive_within, theirs.resolve_within and
                                  theirs.resolve_within.total_seconds() / 3600, theirs.clauses,
                                  theirs.service_days, "respond" in theirs.around_the_clock,
                                  theirs.set_by_priority)


def _as_dispatch(sla: Sla) -> tuple[Any, ...]:
    arrive = (Span.hours(sla.arrive_within_hours) if sla.arrive_within_hours is not None
              else Span.days(sla.arrive_within_days) if sla.arrive_within_days is not None else None)
    return (sla.respond_within_hours, arrive, sla.resolve_within_hours, sla.clauses, sla.service_days,
            sla.respond_around_the_clock, sla.set_by_priority)


def test_priority_targets_tighter_wins_in_contracts_coverage_answer() -> None:
    """Issue 13: a clause of 2 days on a 7-day, 8-hour desk is 16 service hours: an urgent
    target of 12 wins, a high one of 20 does not; no priority, no change."""
    question = Question(date(2025, 6, 1), "fault", local=False)
    plain = sla_for(C9_WORKING, question)
    assert plain is not None and (plain.arrive_within_days, plain.set_by_priority) == (2, ())
    urgent = sla_for(C9_WORKING, Question(date(2025, 6, 1), "fault", local=False, priority="urgent"))
    assert urgent is not None and (urgent.arrive_within_hours, urgent.arrive_within_days) == (12, None)
    assert urgent.set_by_priority == ("arrive",)
    high = sla_for(C9_WORKING, Question(date(2025, 6, 1), "fault", local=False, priority="high"))
    assert high == plain
