"""Renewal, not a phantom invoice (issue 13 item 7; rules B4, C2, C1).

A fee falling due is a renewal notice for billing's clerk, never an invoice line: nobody
has agreed to that period yet. The annual fee is drafted when the customer renews (the
paid `CoverageGranted` naming the payment), once, and the notice becomes "renewed"; a
terminated agreement's open notice is withdrawn. In-process (tests/billing/ledger.py:
each message through `BillingPolicy.handle` as the tracking consumer hands it over), on
SQLite and, with WEIBAO_TEST_POSTGRES_URL, PostgreSQL; the last test drives contracts and
billing on a real nats-server."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from nats.aio.client import Client as NATS
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.billing.ledger import HEFEI, Ledger, as_message, terms_of
from tests.dispatch.test_dispatch_e2e import ask, ok, set_up_customer_and_crew
from tests.helpers import eventually
from weibao.billing.adapters.terms import TermsBook
from weibao.billing.application.policy import BillingPolicy
from weibao.billing.application.queries import Queries
from weibao.billing.domain.pricing import BillableItem, Source, item_id
from weibao.billing.entrypoints.endpoints import Policy, invoice_book
from weibao.shared.commands.billing import InvoiceList, RenewalList
from weibao.shared.db import begin_write
from weibao.shared.errors import Rejected
from weibao.shared.public.contracts import CoverageEnded, CoverageGranted, CoverageLapsed, FeeDue, SiteLocated
from weibao.shared.readmodels import create_tables
from weibao.shared.replay import compare

D = Decimal
YIZHUO = {"fee.percent": "10", "fee.licence_price": "200000", "onsite.local_hours": 8,
          "onsite.out_of_town_days": 2, "hardware.day_rate": "800"}
# The next year's fee (B4, C2: 10 % of 200,000.00), due 30 days before the free year ends
FEE = FeeDue("ag-r", "r-1", "2026-06-01", "2027-05-31", "20000.00", "2026-05-02")


def paid(payment_id: str = "fee-2026", period_from: str = "2026-06-01", period_to: str = "2027-05-31",
         paid_on: str = "2026-06-20") -> CoverageGranted:
    """What contracts publishes when the fee is paid: the period it covers, the payment."""
    return CoverageGranted("ag-r", "r-1", ("s-1",), period_from, period_to, "paid", ("C2",), HEFEI,
                           terms_of("yizhuo-crm-maintenance", YIZHUO), payment_id=payment_id, amount="20000.00",
                           paid_on=paid_on)


async def a_ledger(engine: AsyncEngine) -> Ledger:
    ledger = await Ledger(engine).start()
    await ledger.agreement("ag-r", "r-1", "润泽商贸", "yizhuo-crm-maintenance", YIZHUO)  # contracts 1, 2
    return ledger


async def notices(ledger: Ledger, **asked: Any) -> list[dict[str, Any]]:
    # the queries as the service wires them (entrypoints): with the policy, whose table it reads
    queries = Queries(ledger.engine, invoice_book(ledger.policy), ledger.policy.invoices, ledger.policy.book,
                      ledger.policy)
    return list((await queries.renewals(RenewalList(**asked)))["items"])


async def items_billed(ledger: Ledger) -> list[tuple[str, str]]:
    table = ledger.policy.drafts.items
    async with ledger.engine.connect() as conn:
        return [(row.item_id, row.invoice_id) for row in await conn.execute(select(table).order_by(table.c.item_id))]


async def test_b4_a_lapsed_agreement_makes_a_renewal_notice_and_no_invoice_line(engine: AsyncEngine) -> None:
    ledger = await a_ledger(engine)
    # the daily assessment after the free year ended unpaid: the fee fell due, coverage lapsed (C1)
    await ledger.send("contracts", FEE, CoverageLapsed("ag-r", "r-1", "2026-06-01"))

    (notice,) = await notices(ledger)
    assert notice | {"source": None} == {
        "agreement_id": "ag-r", "customer_id": "r-1", "customer_name": "润泽商贸", "amount": "20000.00",
        "period_from": "2026-06-01", "period_to": "2027-05-31", "due_on": "2026-05-02", "status": "open",
        "lapsed_on": "2026-06-01", "payment_id": None, "renewed_on": None, "item_id": None, "invoice_id": None,
        "withdrawn_on": None, "source": None, "renewal_source": None, "clauses": ["B4", "C2"]}
    assert notice["source"] == "contracts:3"  # the FeeDue message it came from (B8)
    # B4: no line for a period nobody agreed, no draft opened for it
    assert await items_billed(ledger) == []
    assert (await ledger.queries(await ledger.book()).invoices(InvoiceList()))["total"] == 0
    for month in ("2026-05", "2026-06"):
        with pytest.raises(Rejected):
            await ledger.invoice(f"r-1-{month}")


async def test_b4_c2_the_renewal_drafts_exactly_one_line_and_renews_the_notice(engine: AsyncEngine) -> None:
    ledger = await a_ledger(engine)
    await ledger.send("contracts", FEE, CoverageLapsed("ag-r", "r-1", "2026-06-01"))
    (position,) = await ledger.send("contracts", paid())  # the customer renews, late (C2: coverage reopens)

    invoice = await ledger.invoice("r-1-2026-06")  # dated the day it was paid
    (line,) = invoice.lines
    assert (line.kind, line.quantity, line.net, line.vat) == ("annual_fee", D(1), D("20000.00"), D("1200.00"))
    assert line.clauses == ("B4", "C2") and "fee-2026" in line.description
    assert line.sources == (("contracts", position, "CoverageGranted"),)  # B8: the payment's message
    assert await items_billed(ledger) == [(f"contracts:{position}:0", "r-1-2026-06")]

    (notice,) = await notices(ledger)
    assert (notice["status"], notice["payment_id"], notice["renewed_on"]) == ("renewed", "fee-2026", "2026-06-20")
    assert (notice["item_id"], notice["invoice_id"]) == (f"contracts:{position}:0", "r-1-2026-06")
    assert notice["renewal_source"] == f"contracts:{position}" and notice["lapsed_on"] == "2026-06-01"
    assert await notices(ledger, status="open") == []
    assert [n["status"] for n in await notices(ledger, status="renewed", customer_id="r-1")] == ["renewed"]
    assert await notices(ledger, customer_id="someone-else") == []


async def test_b4_a_payment_without_a_notice_still_bills_once_and_renews_nothing_else(engine: AsyncEngine) -> None:
    # paid ahead, before the fee fell due: billed from the payment, no notice to renew
    ledger = await a_ledger(engine)
    (position,) = await ledger.send("contracts", paid(paid_on="2026-04-10"))
    assert [ln.item_id for ln in (await ledger.invoice("r-1-2026-04")).lines] == [f"contracts:{position}:0"]
    assert await notices(ledger) == []


async def test_b4_a_terminated_agreements_notice_is_withdrawn_and_bills_nothing(engine: AsyncEngine) -> None:
    ledger = await a_ledger(engine)
    await ledger.send("contracts", FEE, CoverageEnded("ag-r", "r-1", "2026-05-20", "customer closed"))
    (notice,) = await notices(ledger)
    assert (notice["status"], notice["withdrawn_on"]) == ("withdrawn", "2026-05-20")
    assert await notices(ledger, status="open") == []
    assert await items_billed(ledger) == []


async def test_b4_b8_redelivering_a_message_changes_nothing(engine: AsyncEngine) -> None:
    ledger = await a_ledger(engine)
    fee = as_message("contracts", 3, FEE)
    renewal = as_message("contracts", 4, paid())
    for message in (fee, fee, renewal, fee, renewal):  # at-least-once: each again, out of order too
        await ledger.deliver(message)
    (line,) = (await ledger.invoice("r-1-2026-06")).lines
    assert line.item_id == "contracts:4:0"
    assert await items_billed(ledger) == [("contracts:4:0", "r-1-2026-06")]
    (notice,) = await notices(ledger)
    assert (notice["status"], notice["payment_id"]) == ("renewed", "fee-2026")
    # a second payment for the next period renews nothing already renewed, and bills its own year once
    await ledger.deliver(as_message("contracts", 5, paid("fee-2027", "2027-06-01", "2028-05-31", "2026-06-25")))
    await ledger.deliver(as_message("contracts", 5, paid("fee-2027", "2027-06-01", "2028-05-31", "2026-06-25")))
    assert [ln.item_id for ln in (await ledger.invoice("r-1-2026-06")).lines] == ["contracts:4:0", "contracts:5:0"]
    assert [n["payment_id"] for n in await notices(ledger)] == ["fee-2026"]


async def test_b4_b8_an_old_log_with_fee_lines_drafted_from_fee_due_replays_equal(engine: AsyncEngine) -> None:
    """The upgrade path: before issue 13 the policy drafted the annual fee from `FeeDue`,
    and grants carried no payment. Those lines stay as billed (B8); a replay of such a
    log (and the rebuild in place on upgrade, which replays the same way) records them
    where the log holds them, bills nothing new, and keeps the notices."""
    ledger = await a_ledger(engine)
    due = 3  # the FeeDue's position
    # what the old policy did with it: the fee drafted as a line named after the FeeDue,
    # in the transaction that applied it (here just before)
    source = Source("contracts", due, "FeeDue")
    old = BillableItem(item_id(source), "r-1", "ag-r", "annual_fee", "年度维护费（2026-06-01 至 2027-05-31）", D(1),
                       "项", D("20000.00"), D("20000.00"), ("B4", "C2"), (source,), date(2026, 5, 2))
    async with begin_write(engine) as conn:
        await ledger.policy.add(conn, old, {}, ticket_id=None)
    assert await ledger.send("contracts", FEE) == [due]
    # the old payment's grant: no payment named, so no second line
    old_grant = CoverageGranted("ag-r", "r-1", ("s-1",), "2026-06-01", "2027-05-31", "paid", ("C2",), HEFEI,
                                terms_of("yizhuo-crm-maintenance", YIZHUO))
    await ledger.send("contracts", old_grant)
    assert [ln.item_id for ln in (await ledger.invoice("r-1-2026-05")).lines] == [f"contracts:{due}:0"]
    (notice,) = await notices(ledger)
    assert (notice["status"], notice["payment_id"]) == ("renewed", None)
    assert (notice["item_id"], notice["invoice_id"]) == (f"contracts:{due}:0", "r-1-2026-05")  # billed then

    live = Policy(ledger.policy, "contracts")
    fresh = live.fresh("__replay")
    # and a live policy applying the stream from position 0 on empty tables: what happens
    # on upgrade when the rebuild in place could not prove the old, unsigned messages yet
    again = Policy(BillingPolicy(ledger.store, TermsBook("__again"), ledger.policy.config, ledger.policy.today,
                                 ledger.policy.invoices), "contracts")
    for model in (fresh, again):
        await create_tables(engine, model)
        for position, message in enumerate(ledger_messages(old_grant), start=1):
            async with begin_write(engine) as conn:
                await model(conn, as_message("contracts", position, message))
        assert await compare(engine, live, model) == {}
    # nothing appended by either: the fee line is the old one, once
    assert [ln.item_id for ln in (await ledger.invoice("r-1-2026-05")).lines] == [f"contracts:{due}:0"]


async def test_b4_b8_a_fee_drafted_from_fee_due_before_the_upgrade_is_not_billed_again_when_paid(
        engine: AsyncEngine) -> None:
    ledger = await a_ledger(engine)
    (due,) = await ledger.send("contracts", FEE)
    source = Source("contracts", due, "FeeDue")
    old = BillableItem(item_id(source), "r-1", "ag-r", "annual_fee", "年度维护费（2026-06-01 至 2027-05-31）", D(1),
                       "项", D("20000.00"), D("20000.00"), ("B4", "C2"), (source,), date(2026, 5, 2))
    async with begin_write(engine) as conn:  # the old policy's line
        await ledger.policy.add(conn, old, {}, ticket_id=None)
    # the upgraded policy applies the stream again from 0 (a rebuild): the notice names the old line
    again = BillingPolicy(ledger.store, TermsBook("__again"), ledger.policy.config, ledger.policy.today,
                          ledger.policy.invoices)
    ledger.policy = again
    await create_tables(engine, Policy(again, "contracts"))
    for position, message in enumerate(ledger_messages(), start=1):
        await ledger.deliver(as_message("contracts", position, message))
    (notice,) = await notices(ledger)
    assert (notice["status"], notice["item_id"]) == ("open", f"contracts:{due}:0")
    # then the customer pays, under the new rule: the period is renewed, not billed twice (B8)
    await ledger.deliver(as_message("contracts", due + 1, paid()))
    with pytest.raises(Rejected):
        await ledger.invoice("r-1-2026-06")
    assert [ln.item_id for ln in (await ledger.invoice("r-1-2026-05")).lines] == [f"contracts:{due}:0"]
    (notice,) = await notices(ledger)
    assert (notice["status"], notice["payment_id"], notice["item_id"]) == ("renewed", "fee-2026",
                                                                          f"contracts:{due}:0")


def ledger_messages(*grants: CoverageGranted) -> list[Any]:
    """The contracts messages `a_ledger` and the tests above sent, in order."""
    terms = terms_of("yizhuo-crm-maintenance", YIZHUO)
    return [CoverageGranted("ag-r", "r-1", ("s-1",), "2025-06-01", "2026-05-31", "free", ("C1",), HEFEI, terms),
            SiteLocated("r-1", "润泽商贸", "r-1-site", "总部", "合肥", 31.86, 117.28, "3401", "street"), FEE, *grants]


# End to end: contracts' assessment and payment, billing's notices, on a real nats-server


async def test_b4_c2_end_to_end_the_assessment_notifies_and_the_payment_bills(system: None, nc: NATS) -> None:
    await set_up_customer_and_crew(nc)  # [1] 10 % of 120,000.00, live 2025-09-01: free until 2026-08-31
    # past the free year, unpaid: the fee falls due and coverage lapses (C1)
    await ok(nc, "contracts.assess", {"agreement_id": "a-1", "today": "2026-09-02"})

    async def listed(**asked: Any) -> list[dict[str, Any]]:
        answer = await ask(nc, "billing.renewals", asked)
        assert answer["ok"], answer
        return list(answer["result"]["items"])

    async def lapsed() -> bool:
        found = await listed()
        return bool(found) and found[0]["lapsed_on"] == "2026-09-01"

    await eventually(lapsed)
    (notice,) = await listed(status="open")
    assert (notice["amount"], notice["period_from"], notice["period_to"]) == ("12000.00", "2026-09-01", "2027-08-31")
    invoices = await ask(nc, "billing.invoices", {"customer_id": "c-1"})
    assert invoices["result"]["total"] == 0  # B4: no phantom invoice

    await ok(nc, "contracts.pay", {"agreement_id": "a-1", "payment_id": "fee-2026", "amount": "12000.00",
                                   "period_from": "2026-09-01", "period_to": "2027-08-31", "paid_on": "2026-09-05"})

    async def renewed() -> bool:
        return [n["status"] for n in await listed()] == ["renewed"]

    await eventually(renewed)
    (notice,) = await listed()
    assert notice["invoice_id"] == "c-1-2026-09" and notice["payment_id"] == "fee-2026"
    invoice = (await ask(nc, "billing.invoice", {"invoice_id": "c-1-2026-09"}))["result"]
    assert [(ln["kind"], ln["amount"]) for ln in invoice["lines"]] == [("annual_fee", "12000.00")]
    (line,) = invoice["lines"]
    assert [s[2] for s in line["sources"]] == ["CoverageGranted"]
    refused = await ask(nc, "billing.renewals", {"status": "lapsed"})
    assert refused["ok"] is False and refused["error"]["field"] == "status"
