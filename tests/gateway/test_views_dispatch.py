"""The dispatch views (weibao.shared.views.dispatch) follow the service's own shapes: a
field added to a request's record, the assignment's explanation, a phone report, the
board's or the technicians' rows is declared in its view too (else the gateway would
answer it with a 500), and what the ticket query answers of a real request reads as
the `Ticket` view, field for field."""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import timedelta

import pytest
from pydantic import BaseModel

from tests.dispatch.test_ticket import T0, History, opened
from tests.gateway.test_vocabulary import strings
from weibao.contracts.domain import terms
from weibao.dispatch.adapters.technician_board import TechnicianBoard
from weibao.dispatch.adapters.ticket_board import TicketBoard, as_item, project
from weibao.dispatch.application.views import ticket_view
from weibao.dispatch.domain import assignment as d4
from weibao.dispatch.domain import deadlines as dl
from weibao.dispatch.domain import sla, ticket, travel
from weibao.dispatch.domain import technician as crew
from weibao.dispatch.planning import model as planning
from weibao.shared import codec
from weibao.shared.views import dispatch as views

MIRRORS: list[tuple[type, type[BaseModel], set[str]]] = [
    (ticket.TicketOpened, views.Opened, set()),
    (ticket.Coverage, views.Coverage, set()),
    (ticket.Position, views.Position, set()),
    (ticket.DeadlinesSet, views.DeadlinesSet, set()),
    (ticket.ClockSet, views.ClockSet, set()),
    (ticket.VisitAssigned, views.Assignment, set()),
    (ticket.CheckedIn, views.CheckIn, set()),
    (ticket.WorkLogged, views.WorkEntry, {"time"}),
    (ticket.ExpenseRecorded, views.ExpenseEntry, {"time"}),
    (ticket.DeskWorkLogged, views.DeskWorkEntry, set()),
    (d4.Explanation, views.AssignmentExplanation, {"overrides"}),  # the application adds the overrides
    (d4.Considered, views.Considered, set()),
    (d4.Excluded, views.Excluded, set()),
    (d4.Facts, views.Facts, set()),
    (d4.Override, views.Override, set()),
    (terms.Onsite, views.Onsite, set()),  # contracts' terms, as the coverage carries them
    (terms.PriorityTargets, views.PriorityTargets, set()),
    (terms.Targets, views.Targets, set()),
    (crew.Shift, views.Shift, set()),
    (planning.NotPlanned, views.NotPlanned, set()),
]


@pytest.mark.parametrize(("kind", "view", "added"), MIRRORS, ids=lambda kind: getattr(kind, "__name__", ""))
def test_a_view_declares_every_field_of_what_the_service_dumps(kind: type, view: type[BaseModel],
                                                               added: set[str]) -> None:
    assert {f.name for f in fields(kind)} | added == set(view.model_fields)


VOCABULARIES: list[tuple[object, object]] = [
    (views.Stage, ticket.Status),  # but "none": no query answers a request that does not exist
    (views.Action, ticket.Action),
    (views.ClockKind, sla.Kind),
    (views.ClockStatus, dl.Status),
    (views.Announcement, dl.Announcement),
    (views.Ineligible, d4.Ineligible),
    (views.Rule, d4.Rule),
    (views.Mode, travel.Mode),
]


@pytest.mark.parametrize(("view", "domain"), VOCABULARIES)
def test_a_view_s_vocabulary_is_the_domain_s(view: object, domain: object) -> None:
    assert strings(view) == strings(domain) - {"none"}


def test_the_board_rows_are_declared_column_for_column() -> None:
    board = TicketBoard().table
    assert {c.name for c in board.columns} | {"customer_name", "site_name", "site_address"} == set(
        views.TicketRow.model_fields)
    technicians = TechnicianBoard()
    assert {c.name for c in technicians.table.columns} | {"retired_at", "retirement_reason"} == set(
        views.Technician.model_fields)


def _as_answered(view: type[BaseModel], data: object) -> object:
    """What the gateway answers for `data` (exclude_unset: absent stays absent)."""
    return view.model_validate(data).model_dump(mode="json", exclude_unset=True)


def test_what_the_ticket_query_answers_reads_as_the_ticket_view_unchanged() -> None:
    history: History = opened()
    answered = json.loads(json.dumps(ticket_view(history.state, T0 + timedelta(minutes=1))))
    assert _as_answered(views.Ticket, answered) == answered


def test_a_board_row_reads_as_the_row_view_unchanged() -> None:
    state = opened().state
    row = {**project(state), "ticket_id": "t-1", "updated_at": T0.isoformat(), "last_event": "TicketOpened",
           "version": 1, "customer_name": None, "site_name": None, "site_address": None}
    item = json.loads(json.dumps(as_item(row)))
    assert _as_answered(views.TicketRow, item) == item


def test_a_command_that_changed_nothing_answers_the_request_beside_its_events() -> None:
    answered = json.loads(json.dumps({"events": [], "ticket": ticket_view(opened().state, T0)}))
    assert _as_answered(views.StoredOrStanding, answered) == answered
    assert _as_answered(views.StoredOrStanding, {"events": []}) == {"events": []}  # no `ticket: null` added


def test_every_opened_field_is_dumped_as_the_view_reads_it() -> None:
    dumped = codec.dump(opened().state.opened)
    assert _as_answered(views.Opened, dumped) == dumped
