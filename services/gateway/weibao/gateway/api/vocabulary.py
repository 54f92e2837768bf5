"""The words the pages offer in their selects, each list read from the shared Literal
the API validates with (issue 14: one shape for each thing). A page builds its choices
from this answer, so a value the API accepts is one a screen can offer, and a value it
refuses is never offered; the labels are the pages' own (i18n.js, one per value)."""

from __future__ import annotations

from typing import get_args

from fastapi import APIRouter

from weibao.shared.public.billing import InvoiceStatus
from weibao.shared.public.dispatch import (
    Cause,
    Channel,
    DeskChannel,
    ExpenseKind,
    Phase,
    Priority,
    ResponseKind,
    WorkKind,
)

router = APIRouter(tags=["vocabulary"])

# Keyed by the pages' label prefix (i18n.js `<prefix>.<value>`), in the Literal's order.
VOCABULARY: dict[str, tuple[str, ...]] = {
    "channel": get_args(Channel),
    "cause": get_args(Cause),
    "priority": get_args(Priority),
    "phase": get_args(Phase),
    "response": get_args(ResponseKind),
    "desk_channel": get_args(DeskChannel),
    "work": get_args(WorkKind),
    "expense": get_args(ExpenseKind),
    "invoice_status": get_args(InvoiceStatus),
}


# No sign-in: the lists are the API's published schema (as /openapi.json is), and the
# phone's service worker keeps this answer in its offline shell, fetched without a token.
@router.get("/vocabulary", response_model=dict[str, list[str]],
            summary="The values each choice accepts (channels, causes, priorities, ...), for the pages' selects")
async def vocabulary() -> dict[str, list[str]]:
    return {name: list(values) for name, values in VOCABULARY.items()}
