"""Issue 16: the D4 explanation as data (`Explanation.facts`), beside the English `reason`
it repeats, so a screen can say it in its user's language; and it survives the codec."""

from __future__ import annotations

from datetime import timedelta

from tests.dispatch.test_assignment import NOW, TRAVEL, at, need, tech
from weibao.dispatch.domain.assignment import Explanation, assign, one_round, override
from weibao.shared import codec


def test_d4_in_time_facts_name_the_winner_the_runner_up_and_an_earlier_arrival() -> None:
    result = assign(need(), [tech("T-far", 30), tech("T-near", 10, free_in=timedelta(hours=2)),
                             tech("T-away", 3, on_leave=True)], now=NOW, travel=TRAVEL)
    facts = result.explanation.facts
    assert facts is not None
    assert (facts.winner, facts.weighed, facts.eligible, facts.in_time) == ("T-near", 3, 2, 2)
    assert facts.runner_up == "T-far" and facts.earliest == "T-far"  # as the English says
    assert facts.late_minutes is None and facts.ineligible == (("leave", 1),)


def test_d4_at_risk_facts_say_how_late() -> None:
    result = assign(need(NOW + timedelta(minutes=30)), [tech("T-b", 10, free_in=timedelta(hours=2)), tech("T-a", 40)],
                    now=NOW, travel=TRAVEL)
    facts = result.explanation.facts
    assert facts is not None and result.explanation.rule == "earliest_arrival_at_risk"
    assert (facts.winner, facts.in_time, facts.late_minutes, facts.runner_up) == ("T-a", 0, 30.0, "T-b")
    assert facts.earliest is None


def test_d4_nobody_eligible_facts_count_the_reasons() -> None:
    result = assign(need(), [tech("T-1", 3, on_leave=True), tech("T-2", 4, skills=frozenset({"network"}))],
                    now=NOW, travel=TRAVEL)
    facts = result.explanation.facts
    assert facts is not None and facts.winner is None and facts.eligible == 0
    assert dict(facts.ineligible) == {"leave": 1, "skill": 1}


def test_d4_round_facts_name_whom_the_request_would_have_had_alone() -> None:
    r1, r2 = need(rid="R1"), need(rid="R2", site=at(10))
    result = one_round([r1, r2], [tech("T-a", 4), tech("T-b", 6, bearing=180)], now=NOW, travel=TRAVEL)
    facts = result.assignments[0].explanation.facts
    assert facts is not None
    assert (facts.winner, facts.round_size, facts.alone, facts.alone_goes_to) == ("T-b", 2, "T-a", "R2")


def test_d4_facts_go_through_the_codec_and_old_explanations_without_them_still_load() -> None:
    result = override(assign(need(), [tech("T-1", 5), tech("T-2", 9)], now=NOW, travel=TRAVEL), "T-2", "why",
                      "dispatcher:li")
    data = codec.dump(result.explanation)
    assert data["facts"]["winner"] == "T-1" and data["facts"]["ineligible"] == []
    assert codec.load(Explanation, data) == result.explanation
    del data["facts"]
    assert codec.load(Explanation, data).facts is None  # recorded before issue 16
