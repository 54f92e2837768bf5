"""Billing from the contracts data that B3 and B6 need: large change requests by their
workload at the agreement's day rate (B6, C8), and software service outside coverage at
the agreement's hourly rate (B3, C1). Amounts worked out by hand, VAT 6 % per line,
rounded half-up to the fen (B8)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.billing.ledger import Ledger, as_message
from tests.decider import Decider
from weibao.billing.domain import pricing
from weibao.contracts.adapters.templates import load_templates
from weibao.contracts.application.agreements import translate
from weibao.contracts.domain.agreement import Agreement, Office, SignAgreement, decide, evolve
from weibao.contracts.domain.changes import RecordChangeRequest
from weibao.contracts.domain.changes import decide as decide_change
from weibao.contracts.domain.terms import Terms
from weibao.shared import codec
from weibao.shared.errors import Rejected
from weibao.shared.public.contracts import ChangeRequestAssessed
from weibao.shared.public.dispatch import WorkLogged

D = Decimal
HEFEI = Office("合肥办事处", "3401", 31.8206, 117.2272)
# The agreement's commands and its change requests fold into one history (tests/decider.py).
AGREEMENT = Decider(decide=decide, evolve=evolve, initial=Agreement())
CHANGES = Decider(decide=decide_change, evolve=evolve, initial=Agreement())


def assessed(ref: str, workload: str, verdict: str = "billable",
             clauses: tuple[str, ...] = ("C8", "B6")) -> ChangeRequestAssessed:
    return ChangeRequestAssessed(agreement_id="a-q", customer_id="q-1", ref=ref, description=f"大型修改 {ref}",
                                 on="2026-06-15", workload_days=workload, verdict=verdict,  # type: ignore[arg-type]
                                 clauses=clauses)


async def quansousuo(ledger: Ledger, **parameters: Any) -> dict[str, Any]:
    """[4]: changes of more than 3 working days are large (C8)."""
    return await ledger.agreement("a-q", "q-1", "全搜索客户", "quansousuo-purchasing", parameters)


def lines(invoice: Any) -> list[tuple[str, Decimal, str, Decimal, Decimal, Decimal, tuple[str, ...]]]:
    return [(ln.kind, ln.quantity, ln.unit, ln.unit_price, ln.net, ln.vat, ln.clauses) for ln in invoice.lines]


async def test_b6_c8_a_large_change_is_billed_by_workload_at_the_agreements_day_rate(engine: AsyncEngine) -> None:
    ledger = await Ledger(engine).start()
    await quansousuo(ledger, **{"service.day_rate": "980.50"})
    [position] = await ledger.send("contracts", assessed("CR-1", "4.5"))
    invoice = await ledger.issue("q-1-2026-06")
    # 4.5 working days x 980.50 = 4,412.25 (exact days, not rounded up);
    # VAT 4,412.25 x 6 % = 264.735 -> 264.74 (half-up to the fen)
    assert lines(invoice) == [("change_request", D("4.5"), "天", D("980.50"), D("4412.25"), D("264.74"),
                               ("B6", "C8"))]
    assert invoice.totals.net == D("4412.25") and invoice.totals.gross == D("4676.99")
    # B8: the line names the message it came from
    assert invoice.lines[0].sources == (("contracts", position, "ChangeRequestAssessed"),)


async def test_b6_b8_the_same_change_request_delivered_twice_is_billed_once(engine: AsyncEngine) -> None:
    ledger = await Ledger(engine).start()
    await quansousuo(ledger, **{"service.day_rate": "800"})
    message = as_message("contracts", 10, assessed("CR-2", "5"))
    await ledger.deliver(message)
    await ledger.deliver(message)  # redelivered before the invoice is issued
    issued = await ledger.issue("q-1-2026-06")
    await ledger.deliver(message)  # and again after: no supplementary draft for it
    # 5 x 800.00 = 4,000.00; VAT 240.00
    assert lines(issued) == [("change_request", D(5), "天", D("800.00"), D("4000.00"), D("240.00"), ("B6", "C8"))]
    with pytest.raises(Rejected):
        await ledger.invoice("q-1-2026-06-S1")
    assert lines(await ledger.invoice("q-1-2026-06")) == lines(issued)


async def test_c8_a_covered_change_bills_nothing_and_without_a_day_rate_it_is_to_be_agreed(
        engine: AsyncEngine) -> None:
    ledger = await Ledger(engine).start()
    await quansousuo(ledger)  # [4]: the price of a large change is agreed separately (另行商定)
    await ledger.send("contracts", assessed("CR-small", "2", "covered", ("C8",)), assessed("CR-big", "6"))
    invoice = await ledger.invoice("q-1-2026-06")
    assert lines(invoice) == [("change_request", D(6), "天", D("0.00"), D("0.00"), D("0.00"),
                               ("B6", "C8", pricing.RATE_TO_BE_AGREED))]


async def test_b6_c1_a_change_as_contracts_assesses_and_publishes_it_is_billed(engine: AsyncEngine) -> None:
    """From the contracts domain to the invoice: the change recorded after the free year
    (C1, no paid period) is billable whatever its size, at the signed day rate."""
    template = load_templates()["quansousuo-purchasing"]
    terms = template.resolve({"service.day_rate": "1200"})
    signed = AGREEMENT.after(SignAgreement("a-q", "q-1", template.template.id, terms, date(2025, 3, 1),
                                           date(2025, 3, 1), HEFEI))
    recording = CHANGES.given_state(signed.state).when(
        RecordChangeRequest("CR-9", "增加导出功能", date(2026, 6, 15), D("1.25")))
    [recorded] = recording.events
    [message] = translate(recorded, recording.state)
    assert isinstance(message, ChangeRequestAssessed) and message.clauses == ("C1", "C8", "B3")

    ledger = await Ledger(engine).start()
    await ledger.agreement("a-q", "q-1", "全搜索客户", "quansousuo-purchasing", {"service.day_rate": "1200"})
    await ledger.send("contracts", message)
    # 1.25 x 1,200.00 = 1,500.00; VAT 90.00
    assert lines(await ledger.invoice("q-1-2026-06")) == [
        ("change_request", D("1.25"), "天", D("1200.00"), D("1500.00"), D("90.00"), ("B6", "C8"))]


async def test_b3_c1_software_service_outside_coverage_at_the_agreements_hourly_rate(engine: AsyncEngine) -> None:
    # The rate as contracts holds it: a real Terms, signed from a template with its parameters.
    terms = load_templates()["chaoren-software-sale"].resolve({"service.hourly_rate": "138.55"})
    assert isinstance(terms, Terms) and terms.service is not None and terms.service.hourly_rate == D("138.55")
    ledger = await Ledger(engine).start()
    await ledger.agreement("a-c", "c-1", "超人客户", "chaoren-software-sale", {"service.hourly_rate": "138.55"})
    async with engine.connect() as conn:  # billing's copy of the terms, as CoverageGranted carried them
        assert (await ledger.policy.book.terms(conn, "a-c"))["service"] == codec.dump(terms)["service"]
    # 09:10 to 11:40: 2 h 30 min, 3 started hours, after the free year (C1, B3)
    await ledger.send("dispatch", WorkLogged("t-1", "c-1", "a-c", "tech-1", "w-1", "software",
                                             "2026-06-09T09:10:00+08:00", "2026-06-09T11:40:00+08:00", "billable",
                                             ("C1", "B3")))
    invoice = await ledger.invoice("c-1-2026-06")
    # 3 x 138.55 = 415.65; VAT 415.65 x 6 % = 24.939 -> 24.94
    assert lines(invoice) == [("service", D(3), "小时", D("138.55"), D("415.65"), D("24.94"), ("B3", "C1"))]
