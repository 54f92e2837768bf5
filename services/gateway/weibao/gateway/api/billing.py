"""Invoices, their provenance, and exports: the billing service over HTTP."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from weibao.gateway.deps import AUDIT, BILLING, AsOf, Caller, IdempotencyKey, Limit, Offset, caller
from weibao.gateway.schemas import HTML
from weibao.gateway.security import PRINT_CSP
from weibao.shared.commands.billing import (
    INVOICE_NUMBER,
    INVOICE_NUMBER_MAX,
    PERIOD,
    PERIOD_MAX,
    CreditNote,
    Issue,
    LinePrice,
    Payment,
    RenewalStatus,
)
from weibao.shared.public.billing import InvoiceStatus
from weibao.shared.views import Listing, Stored
from weibao.shared.views.billing import Invoice, InvoiceSummary, LineExplanation, Renewal

router = APIRouter(tags=["billing"])
Clerk = Annotated[Caller, caller(*BILLING)]
Reader = Annotated[Caller, caller(*BILLING, *AUDIT)]
# The filters are billing's own list schemas' (InvoiceList, RenewalList): the same pattern
# and Literals, so what billing accepts the gateway lets through, and nothing else.
Period = Annotated[str | None, Query(pattern=PERIOD, max_length=PERIOD_MAX,
                                     description="a month (YYYY-MM), or visit:<ticket_id>")]


Number = Annotated[str | None, Query(pattern=INVOICE_NUMBER, max_length=INVOICE_NUMBER_MAX,
                                     description="the printed number, INV-2026-000001 (any case)")]


@router.get("/invoices", response_model=Listing[InvoiceSummary],
            summary="Invoices, by customer, period, status and printed number")
async def invoices(call: Reader, *, limit: Limit = 50, offset: Offset = 0, customer_id: str | None = None,
                   period: Period = None, status: InvoiceStatus | None = None, number: Number = None) -> Any:
    return await call.ask("billing", "invoices", {"limit": limit, "offset": offset}, customer_id=customer_id,
                          period=period, status=status, number=number)


@router.get("/renewals", response_model=Listing[Renewal],
            summary="Renewal notices: annual fees fallen due (B4, C2), open, renewed or withdrawn; never invoice lines")
async def renewals(call: Reader, *, limit: Limit = 50, offset: Offset = 0, customer_id: str | None = None,
                   agreement_id: str | None = None, status: RenewalStatus | None = None) -> Any:
    # The billing clerk follows them up, the auditor reads them (Reader); a technician or a
    # dispatcher is refused (403) before anything is asked.
    return await call.ask("billing", "renewals", {"limit": limit, "offset": offset}, customer_id=customer_id,
                          agreement_id=agreement_id, status=status)


@router.get("/invoices/{invoice_id}", response_model=Invoice,
            summary="An invoice with its lines, now or as it stood at `as_of`")
async def invoice(invoice_id: str, call: Reader, as_of: AsOf = None) -> Any:
    return await call.ask("billing", "invoice", {"invoice_id": invoice_id},
                          as_of=as_of.isoformat() if as_of else None)


@router.get("/invoices/{invoice_id}/lines/{item_id}/explanation", response_model=LineExplanation,
            summary="Why this line: the clause that made it billable and the events it came from (provenance)")
async def explain(invoice_id: str, item_id: str, call: Reader) -> Any:
    return await call.ask("billing", "invoice.explain", {"invoice_id": invoice_id, "item_id": item_id})


@router.get("/invoices/{invoice_id}/page", responses=HTML, response_class=HTMLResponse, summary="The printable A4 page")
async def page(invoice_id: str, call: Reader) -> HTMLResponse:
    found = await call.ask("billing", "invoice.page", {"invoice_id": invoice_id})
    # Its own policy: billing's inline <style>, and customer text that must never run a script.
    return HTMLResponse(found["html"], headers={"Content-Security-Policy": PRINT_CSP})


@router.post("/invoices/{invoice_id}/issue", response_model=Stored,
             summary="Issue: a gap-free number, and the invoice is frozen (B8)")
async def issue(invoice_id: str, body: Issue, call: Clerk, key: IdempotencyKey = None) -> Any:
    return await call.ask("billing", "invoice.issue", body, invoice_id=invoice_id, key=key)


@router.post("/invoices/{invoice_id}/credit-notes", response_model=Stored,
             status_code=201, summary="Correct an issued invoice (B8)")
async def credit(invoice_id: str, body: CreditNote, call: Clerk, key: IdempotencyKey = None) -> Any:
    return await call.ask("billing", "invoice.credit", body, invoice_id=invoice_id, key=key)


@router.post("/invoices/{invoice_id}/payments", response_model=Stored,
             status_code=201, summary="A payment received (B8)")
async def pay(invoice_id: str, body: Payment, call: Clerk, key: IdempotencyKey = None) -> Any:
    return await call.ask("billing", "invoice.pay", body, invoice_id=invoice_id, key=key)


@router.post("/invoices/{invoice_id}/lines/{item_id}/price", response_model=Stored,
             summary="Price a draft line whose rate is to be agreed (C10 [4]); never once issued (B8)")
async def price_line(invoice_id: str, item_id: str, body: LinePrice, call: Clerk, key: IdempotencyKey = None) -> Any:
    return await call.ask("billing", "invoice.price_line", body, invoice_id=invoice_id, item_id=item_id,
                          key=key)
