"""rule D4 after the fact: the ticket query carries the latest assignment and its
explanation (who, when, why, at risk, by whom, the override's reason), as plain JSON,
so a dispatcher opening the request later, or an auditor reading it as of a moment,
sees why this technician."""

from __future__ import annotations

import json
from datetime import timedelta

from tests.dispatch.test_ticket import T0, History, opened
from weibao.dispatch.application.views import ticket_view
from weibao.dispatch.domain.ticket import Decline, Escalate, RecordAssignment

EXPLANATION = {
    "rule": "D4", "reason": "least travel among those who arrive in time (rule D4)",
    "arrive_by": (T0 + timedelta(hours=8)).isoformat(),
    "candidates": [
        {"technician_id": "tech-1", "distance_km": 3.2, "mode": "road", "travel_minutes": 12.5,
         "arrives": (T0 + timedelta(minutes=13)).isoformat(), "eligible": True, "can_make_deadline": True,
         "why_not": []},
        {"technician_id": "tech-2", "distance_km": 480.0, "mode": "rail", "travel_minutes": 240.0,
         "arrives": (T0 + timedelta(hours=4)).isoformat(), "eligible": True, "can_make_deadline": True,
         "why_not": []},
    ],
}


def awaiting() -> History:
    return opened().after(Escalate(T0, "phone guidance failed"))


def test_no_assignment_before_one_is_recorded() -> None:
    assert ticket_view(opened().state, T0)["assignment"] is None
    assert ticket_view(awaiting().state, T0)["assignment"] is None


def test_d4_the_ticket_view_carries_the_assignment_and_its_explanation() -> None:
    state = awaiting().after(RecordAssignment("tech-1", T0, EXPLANATION, False, "dispatcher:li")).state
    view = ticket_view(state, T0)
    assert view["technician_id"] == "tech-1"
    assert view["assignment"] == {
        "technician_id": "tech-1", "at": "2026-06-01T09:00:00Z", "explanation": EXPLANATION,
        "at_risk": False, "by": "dispatcher:li", "override_reason": None,
    }
    json.dumps(view)  # plain JSON, as the query answers it


def test_d4_an_override_replaces_it_with_its_reason_and_a_decline_keeps_the_record() -> None:
    later = T0 + timedelta(minutes=5)
    overridden = awaiting().after(
        RecordAssignment("tech-1", T0, EXPLANATION, False, "dispatcher:li"),
        RecordAssignment("tech-2", later, {**EXPLANATION, "overrides": [
            {"technician_id": "tech-2", "replaced": "tech-1", "reason": "客户指定", "by": "dispatcher:li"}]},
            True, "dispatcher:li", "客户指定"))
    assignment = ticket_view(overridden.state, later)["assignment"]
    assert (assignment["technician_id"], assignment["at_risk"], assignment["override_reason"]) == ("tech-2", True,
                                                                                                   "客户指定")
    assert assignment["explanation"]["overrides"][0]["replaced"] == "tech-1"

    declined = overridden.after(Decline("tech-2", later, "sick")).state
    view = ticket_view(declined, later)
    assert view["status"] == "awaiting_assignment" and view["technician_id"] is None
    assert view["assignment"]["technician_id"] == "tech-2"  # what was decided, and why, stays readable
