"""Customers, agreements, coverage, quotas and warranties: the contracts service's
commands and queries over HTTP. Each body's schema is weibao.shared.commands.contracts',
which the service decodes too, with the path's fields (agreement_id, customer_id, ...)
sent beside the body."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from weibao.gateway.deps import BILLING, DISPATCH, OFFICE, AsOf, Caller, IdempotencyKey, Limit, Offset, caller
from weibao.shared.commands.contracts import (
    AgreementStatus,
    Amendment,
    Assessment,
    ChangeRequest,
    CoverageQuestion,
    FeePayment,
    NewCustomer,
    NewSite,
    QuotaKind,
    QuotaUse,
    Signature,
    SiteMove,
    Termination,
    WarrantyQuestion,
    WarrantyRecord,
)
from weibao.shared.views import Stored
from weibao.shared.views.contracts import (
    Agreement,
    AgreementPage,
    AgreementTemplate,
    CoverageVerdict,
    Customer,
    CustomerOverview,
    CustomerPage,
    QuotaBalance,
    WarrantyVerdict,
)

router = APIRouter(tags=["contracts"])
Office = Annotated[Caller, caller(*OFFICE)]
Desk = Annotated[Caller, caller(*DISPATCH, *BILLING)]  # dispatchers and clerks keep customer records
Clerk = Annotated[Caller, caller(*BILLING)]  # agreements and fees are the billing clerk's (and admin's)
Admin = Annotated[Caller, caller()]


@router.get("/templates", response_model=list[AgreementTemplate],
            summary="Agreement templates and their parameters")
async def templates(call: Office) -> Any:
    return await call.ask("contracts", "templates")


@router.get("/customers", response_model=CustomerPage, summary="Customers with their sites, by name or id")
async def customers(call: Office, limit: Limit = 50, offset: Offset = 0,
                    q: Annotated[str | None, Query(max_length=100)] = None) -> Any:
    return await call.ask("contracts", "customers", {"limit": limit, "offset": offset}, q=q)


@router.post("/customers", response_model=Stored, status_code=201, summary="Register a customer and its sites")
async def register_customer(body: NewCustomer, call: Desk, key: IdempotencyKey = None) -> Any:
    return await call.ask("contracts", "customer.register", body, key=key)


@router.get("/customers/{customer_id}", response_model=Customer, summary="A customer")
async def customer(customer_id: str, call: Office) -> Any:
    return await call.ask("contracts", "customer", {"customer_id": customer_id})


@router.get("/customers/{customer_id}/overview", response_model=CustomerOverview,
            summary="The customer page: agreements, coverage today and quota balances")
async def overview(customer_id: str, call: Office) -> Any:
    return await call.ask("contracts", "customer.overview", {"customer_id": customer_id})


@router.post("/customers/{customer_id}/sites", response_model=Stored, status_code=201, summary="Add a site")
async def add_site(customer_id: str, body: NewSite, call: Desk, key: IdempotencyKey = None) -> Any:
    return await call.ask("contracts", "customer.add_site", body, customer_id=customer_id, key=key)


@router.post("/customers/{customer_id}/sites/{site_id}/move", response_model=Stored, summary="A site moved")
async def move_site(customer_id: str, site_id: str, body: SiteMove, call: Desk, key: IdempotencyKey = None) -> Any:
    return await call.ask("contracts", "customer.move_site", body, customer_id=customer_id, site_id=site_id,
                          key=key)


@router.get("/agreements", response_model=AgreementPage, summary="Agreements, by customer and status")
async def agreements(call: Office, limit: Limit = 50, offset: Offset = 0,
                     customer_id: str | None = None, status: AgreementStatus | None = None) -> Any:
    return await call.ask("contracts", "agreements", {"limit": limit, "offset": offset},
                          customer_id=customer_id, status=status)


@router.post("/agreements", response_model=Stored, status_code=201, summary="Sign an agreement from a template")
async def sign(body: Signature, call: Clerk, key: IdempotencyKey = None) -> Any:
    return await call.ask("contracts", "sign", body, key=key)


@router.get("/agreements/{agreement_id}", response_model=Agreement,
            summary="An agreement, now or as it stood at `as_of`")
async def agreement(agreement_id: str, call: Office, as_of: AsOf = None) -> Any:
    return await call.ask("contracts", "agreement", {"agreement_id": agreement_id},
                          as_of=as_of.isoformat() if as_of else None)


@router.post("/agreements/{agreement_id}/payments", response_model=Stored,
             status_code=201, summary="A maintenance fee paid (C2, B4)")
async def pay_fee(agreement_id: str, body: FeePayment, call: Clerk, key: IdempotencyKey = None) -> Any:
    return await call.ask("contracts", "pay", body, agreement_id=agreement_id, key=key)


@router.post("/agreements/{agreement_id}/amendments", response_model=Stored,
             status_code=201, summary="Amend terms from a date")
async def amend(agreement_id: str, body: Amendment, call: Admin, key: IdempotencyKey = None) -> Any:
    return await call.ask("contracts", "amend", body, agreement_id=agreement_id, key=key)


@router.post("/agreements/{agreement_id}/termination", response_model=Stored, summary="End an agreement")
async def terminate(agreement_id: str, body: Termination, call: Admin, key: IdempotencyKey = None) -> Any:
    return await call.ask("contracts", "terminate", body, agreement_id=agreement_id, key=key)


@router.post("/agreements/{agreement_id}/assessment", response_model=Stored,
             summary="Run the lapse and fee-due check now")
async def assess(agreement_id: str, body: Assessment, call: Admin) -> Any:
    return await call.ask("contracts", "assess", body, agreement_id=agreement_id)


@router.post("/agreements/{agreement_id}/change-requests", response_model=Stored, status_code=201,
             summary="Record a change request: small ones free, large ones billed by workload (C8, B6)")
async def change_request(agreement_id: str, body: ChangeRequest, call: Desk, key: IdempotencyKey = None) -> Any:
    return await call.ask("contracts", "change.record", body, agreement_id=agreement_id, key=key)


@router.post("/coverage", response_model=CoverageVerdict,
             summary="Is this service covered, billable or excluded, and why")
async def coverage(body: CoverageQuestion, call: Office) -> Any:
    return await call.ask("contracts", "coverage", body)


@router.get("/agreements/{agreement_id}/quotas/{kind}", response_model=QuotaBalance,
            summary="A free quota's balance (C7, C10, B5)")
async def quota(agreement_id: str, kind: QuotaKind, call: Office) -> Any:
    return await call.ask("contracts", "quota.balance", {"agreement_id": agreement_id, "kind": kind})


@router.post("/agreements/{agreement_id}/quotas/{action}", response_model=Stored,
             summary="Reserve, consume, release or expire quota")
async def use_quota(agreement_id: str, action: Literal["reserve", "consume", "release", "expire"], body: QuotaUse,
                    call: Desk, key: IdempotencyKey = None) -> Any:
    return await call.ask("contracts", f"quota.{action}", body, agreement_id=agreement_id, key=key)


@router.post("/warranties/verdict", response_model=WarrantyVerdict,
             summary="What the warranty says about a fault (C11, C18, C19, C21-C24)")
async def warranty_verdict(body: WarrantyQuestion, call: Office) -> Any:
    return await call.ask("contracts", "warranty.verdict", body)


@router.post("/warranties/{action}", response_model=Stored, status_code=201,
             summary="Register vendor hardware, or record a repair, return or replacement")
async def warranty(action: Literal["register", "repair", "return", "replace"], body: WarrantyRecord, call: Desk,
                   key: IdempotencyKey = None) -> Any:
    return await call.ask("contracts", f"warranty.{action}", body, key=key)
