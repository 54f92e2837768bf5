"""Requests, visits and technicians: the dispatch service's commands and queries over HTTP.

Object-level access: a technician sees only the visits assigned to them and reports
only as themselves (the token, not the body, says who they are); dispatch itself
refuses a report on a visit assigned to someone else, so a forged body cannot pass."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from weibao.gateway.deps import AUDIT, BILLING, DISPATCH, OFFICE, AsOf, Caller, IdempotencyKey, Limit, Offset, caller
from weibao.gateway.errors import ApiError
from weibao.shared.commands.dispatch import (
    Acceptance,
    Assign,
    Completion,
    DeadlinePreview,
    Decline,
    DeskWork,
    Expense,
    NewTechnician,
    NewTicket,
    Presence,
    Reclassification,
    Response,
    Retirement,
    TechnicianChange,
    TicketStatus,
    TimeOff,
    Triage,
    Wait,
    Work,
)
from weibao.shared.views import Stored
from weibao.shared.views.dispatch import (
    Plan,
    Preview,
    StoredOrStanding,
    Technician,
    TechnicianCard,
    Ticket,
    TicketPage,
)

router = APIRouter(tags=["dispatch"])
Dispatcher = Annotated[Caller, caller(*DISPATCH)]
Viewer = Annotated[Caller, caller(*OFFICE, "technician")]
Field = Annotated[Caller, caller(*DISPATCH, "technician")]  # the technician, or a dispatcher on their behalf
Desk = Annotated[Caller, caller(*DISPATCH, *AUDIT)]


@router.get("/tickets", response_model=TicketPage,
            summary="Requests and visits, soonest deadline first (a technician: their own)")
async def tickets(call: Viewer, *, limit: Limit = 50, offset: Offset = 0, status: TicketStatus = "open",
                  technician_id: str | None = None, customer_id: str | None = None) -> Any:
    if call.principal.role == "technician":
        if technician_id not in (None, call.principal.technician_id):
            raise ApiError("forbidden", "technician_id", "a technician sees only their own visits",
                           reason="technician.only_own_visits")
        technician_id = call.principal.technician_id
    return await call.ask("dispatch", "tickets", {"status": status, "limit": limit, "offset": offset},
                          technician_id=technician_id, customer_id=customer_id)


@router.get("/me/visits", response_model=TicketPage, summary="The signed-in technician's open visits")
async def my_visits(call: Annotated[Caller, caller("technician")], limit: Limit = 50, offset: Offset = 0) -> Any:
    return await call.ask("dispatch", "tickets", {"status": "open", "limit": limit, "offset": offset,
                                                  "technician_id": call.principal.technician_id})


@router.post("/tickets", response_model=Stored,
             status_code=201, summary="A request from any channel (C13); deadlines from the SLA")
async def open_ticket(body: NewTicket, call: Dispatcher, key: IdempotencyKey = None) -> Any:
    return await call.ask("dispatch", "ticket.open", body, key=key)


@router.get("/tickets/{ticket_id}", response_model=Ticket, response_model_exclude_unset=True,
            summary="A request, now or as it stood at `as_of`")
async def ticket(ticket_id: str, call: Viewer, as_of: AsOf = None) -> Any:
    found = await call.ask("dispatch", "ticket", {"ticket_id": ticket_id}, as_of=as_of.isoformat() if as_of else None)
    if call.principal.role == "technician" and found.get("technician_id") != call.principal.technician_id:
        raise ApiError("forbidden", "ticket_id", "this visit is not assigned to you",
                       reason="ticket.not_assigned_to_you")
    return found


@router.post("/tickets/{ticket_id}/triage", response_model=StoredOrStanding, response_model_exclude_unset=True,
             summary="Resolved remotely, or escalated to a visit (D3)")
async def triage(ticket_id: str, body: Triage, call: Dispatcher, key: IdempotencyKey = None) -> Any:
    return await call.ask("dispatch", "ticket.triage", body, ticket_id=ticket_id, key=key)


@router.post("/tickets/{ticket_id}/assignment", response_model=StoredOrStanding, response_model_exclude_unset=True,
             summary="Assign by rule D4, or override with a technician and a reason; answers the explanation")
async def assign(ticket_id: str, body: Assign, call: Dispatcher, key: IdempotencyKey = None) -> Any:
    return await call.ask("dispatch", "ticket.assign", body, ticket_id=ticket_id, key=key)


@router.post("/tickets/{ticket_id}/coverage-check", response_model=Stored,
             summary="Look again for the coverage of a request opened without an agreement (D1, C1)")
async def coverage_check(ticket_id: str, call: Dispatcher, key: IdempotencyKey = None) -> Any:
    return await call.ask("dispatch", "ticket.find_coverage", {}, ticket_id=ticket_id, key=key)


@router.post("/tickets/{ticket_id}/classification", response_model=Stored,
             summary="Correct the cause, phase or priority; coverage and deadlines decided again (issue 13)")
async def reclassify(ticket_id: str, body: Reclassification, call: Dispatcher, key: IdempotencyKey = None) -> Any:
    return await call.ask("dispatch", "ticket.reclassify", body, ticket_id=ticket_id, key=key)


@router.post("/tickets/{ticket_id}/responses", response_model=Stored,
             summary="The desk called back or started a remote session: a first response (C15)")
async def respond(ticket_id: str, body: Response, call: Dispatcher, key: IdempotencyKey = None) -> Any:
    return await call.ask("dispatch", "ticket.respond", body, ticket_id=ticket_id, key=key)


@router.post("/tickets/{ticket_id}/desk-work", response_model=Stored,
             summary="Phone or remote work on a request, billed as on-site work is (B3, C4)")
async def desk_work(ticket_id: str, body: DeskWork, call: Field, key: IdempotencyKey = None) -> Any:
    worker = body.technician_id
    if call.principal.role == "technician":
        if worker not in (None, call.principal.technician_id):
            raise ApiError("forbidden", "technician_id", "a technician logs only their own work",
                           reason="technician.only_own_work")
        worker = call.principal.technician_id
    return await call.ask("dispatch", "ticket.desk_work", body, ticket_id=ticket_id, technician_id=worker,
                          key=key or body.key)


@router.post("/deadlines/preview", response_model=Preview, response_model_exclude_unset=True,
             summary="The coverage and due times a request would get at a site, at any time (D1, D2)")
async def preview_deadlines(body: DeadlinePreview, call: Desk) -> Any:
    return await call.ask("dispatch", "deadlines.preview", body)


@router.post("/tickets/{ticket_id}/wait", response_model=Stored,
             summary="Pause the clocks while waiting on the customer, or resume")
async def wait(ticket_id: str, body: Wait, call: Dispatcher, key: IdempotencyKey = None) -> Any:
    return await call.ask("dispatch", "ticket.wait", body, ticket_id=ticket_id, key=key)


async def _as_technician(call: Caller, ticket_id: str, named: str | None) -> str:
    """Who is reporting: a technician is always themselves; a dispatcher names the
    technician, or reports for the one the visit is assigned to."""
    if call.principal.role == "technician":
        if named not in (None, call.principal.technician_id):
            raise ApiError("forbidden", "technician_id", "a technician reports only as themselves",
                           reason="technician.only_as_themselves")
        return str(call.principal.technician_id)
    if named:
        return named
    found = await call.ask("dispatch", "ticket", {"ticket_id": ticket_id})
    if not found.get("technician_id"):
        raise ApiError("missing", "technician_id", "the visit is not assigned; name the technician",
                       reason="ticket.unassigned_name_technician")
    return str(found["technician_id"])


async def _report(call: Caller, name: str, ticket_id: str, body: Any, key: str | None) -> Any:
    who = await _as_technician(call, ticket_id, getattr(body, "technician_id", None))
    # A phone's own key makes its retries one effect (D5); the header is an alias for it.
    # The body goes as sent (its fingerprint is the request's), who reports beside it.
    return await call.ask("dispatch", name, body, ticket_id=ticket_id, technician_id=who,
                          key=key or getattr(body, "key", None))


@router.post("/tickets/{ticket_id}/acceptance", response_model=StoredOrStanding,
             response_model_exclude_unset=True,
             summary="The technician accepts the visit (with the phone's `device_time`, D5; the body may be empty)")
async def accept(ticket_id: str, call: Field, body: Acceptance | None = None, key: IdempotencyKey = None) -> Any:
    return await _report(call, "ticket.accept", ticket_id, body or Acceptance(), key)


@router.post("/tickets/{ticket_id}/decline", response_model=Stored,
             summary="The technician declines; dispatch assigns again (D4)")
async def decline(ticket_id: str, body: Decline, call: Field, key: IdempotencyKey = None) -> Any:
    return await _report(call, "ticket.decline", ticket_id, body, key)


@router.post("/tickets/{ticket_id}/check-in", response_model=Stored, summary="Arrived on site, from the phone (D5)")
async def check_in(ticket_id: str, body: Presence, call: Field, key: IdempotencyKey = None) -> Any:
    return await _report(call, "ticket.check_in", ticket_id, body, key)


@router.post("/tickets/{ticket_id}/check-out", response_model=Stored, summary="Left the site (D5)")
async def check_out(ticket_id: str, body: Presence, call: Field, key: IdempotencyKey = None) -> Any:
    return await _report(call, "ticket.check_out", ticket_id, body, key)


@router.post("/tickets/{ticket_id}/work", response_model=Stored, summary="Hardware, network or software work time (D6)")
async def work(ticket_id: str, body: Work, call: Field, key: IdempotencyKey = None) -> Any:
    return await _report(call, "ticket.work", ticket_id, body, key)


@router.post("/tickets/{ticket_id}/expenses", response_model=Stored,
             summary="Travel, transport, lodging or meals with the receipt (D6, C5)")
async def expense(ticket_id: str, body: Expense, call: Field, key: IdempotencyKey = None) -> Any:
    return await _report(call, "ticket.expense", ticket_id, body, key)


@router.post("/tickets/{ticket_id}/completion", response_model=StoredOrStanding,
             response_model_exclude_unset=True, summary="The visit is done")
async def complete(ticket_id: str, body: Completion, call: Field, key: IdempotencyKey = None) -> Any:
    return await _report(call, "ticket.complete", ticket_id, body, key)


# Where a technician lives and where they were last seen is personal: only who sends them
# (dispatchers), who checks that (auditors, admin) and the technician themselves see it.
# Everyone else (billing) sees who they are and what they can do: an allow-list of roles
# and of fields, so a new role or a new board column is hidden until someone decides.
WHOLE_RECORD = (*DISPATCH, *AUDIT, "admin", "technician")
NARROW_FIELDS = ("technician_id", "name", "skills")


def _shown(call: Caller, record: Any) -> Any:
    if call.principal.role in WHOLE_RECORD or not isinstance(record, dict):
        return record
    return {name: record.get(name) for name in NARROW_FIELDS}


@router.get("/technicians", response_model=list[Technician | TechnicianCard],
            summary="Technicians: skills, position, open visits, time off (billing: who and skills)")
async def technicians(call: Annotated[Caller, caller(*DISPATCH, *AUDIT, *BILLING)]) -> Any:
    return [_shown(call, record) for record in await call.ask("dispatch", "technicians")]


@router.get("/technicians/{technician_id}", response_model=Technician | TechnicianCard,
            summary="One technician (a technician: only themselves; billing: "
            "who and skills)")
async def technician(technician_id: str, call: Viewer) -> Any:
    if call.principal.role == "technician" and technician_id != call.principal.technician_id:
        raise ApiError("forbidden", "technician_id", "a technician sees only themselves",
                       reason="technician.only_themselves")
    return _shown(call, await call.ask("dispatch", "technician", {"technician_id": technician_id}))


@router.post("/technicians", status_code=201, response_model=Stored, summary="Register a technician")
async def register_technician(body: NewTechnician, call: Dispatcher, key: IdempotencyKey = None) -> Any:
    return await call.ask("dispatch", "technician.register", body, key=key)


@router.patch("/technicians/{technician_id}", response_model=Stored,
              summary="Change a technician's name, skills, home, shift or capacity")
async def change_technician(technician_id: str, body: TechnicianChange, call: Dispatcher,
                            key: IdempotencyKey = None) -> Any:
    return await call.ask("dispatch", "technician.change", body, technician_id=technician_id, key=key)


@router.post("/technicians/{technician_id}/retirement", status_code=201, response_model=Stored,
             summary="Retire a technician: no new assignments; visits already assigned stay until reassigned")
async def retire_technician(technician_id: str, body: Retirement, call: Dispatcher,
                            key: IdempotencyKey = None) -> Any:
    return await call.ask("dispatch", "technician.retire", body, technician_id=technician_id, key=key)


@router.post("/technicians/{technician_id}/time-off", status_code=201, response_model=Stored,
             summary="Days a technician is away")
async def time_off(technician_id: str, body: TimeOff, call: Dispatcher, key: IdempotencyKey = None) -> Any:
    return await call.ask("dispatch", "technician.time_off", body, technician_id=technician_id, key=key)


@router.get("/plan", response_model=Plan,
            summary="Today's open visits routed across the technicians (a proposal; nothing stored)")
async def plan(call: Dispatcher, seconds: Annotated[float, Query(gt=0, le=60)] = 5) -> Any:
    return await call.ask("dispatch", "plan", {"seconds": seconds}, timeout=seconds + 30)
