"""Each seed agreement's invoices, computed by hand (rules B1-B8 with C2, C4, C5, C7, C8,
C10, C18).

Terms are the shipped templates, signed as contracts publishes them; prices not in the
agreements (quota units) come from billing's config.toml: installation 500.00, training
seat 800.00, on-site training session 2000.00; VAT 6 % on services and expenses, 13 % on
a dongle (goods). Every figure below is worked out in the comment above it, VAT per line
rounded half-up to the fen (B8), and compared with the invoice as issued.

The same out-of-town visit runs for each seed, once inside coverage and once outside:
hardware work from 09:00 on 8 June to 21:00 on 10 June (60 h = 2.5 days), 3 hours of
software work, a hotel for 2 nights, meals, and train tickets there and back. The last
test drives one seed end to end through contracts, dispatch and billing on NATS."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from nats.aio.client import Client as NATS
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.billing.ledger import HEFEI, Ledger
from tests.dispatch.test_dispatch_e2e import SITE, ask, ok, set_up_customer_and_crew
from tests.helpers import eventually
from weibao.billing.domain.invoice import RATE_AGREED, Invoice, RateTotal, Totals
from weibao.shared.public.contracts import ChangeRequestAssessed, CoverageGranted, QuotaConsumed, WarrantyVerdict
from weibao.shared.public.dispatch import ExpenseRecorded, WorkLogged

D = Decimal
SIX, THIRTEEN = D("0.06"), D("0.13")
FIRST_ON = "2026-06-30"


def visit(customer: str, agreement: str, verdict: str, clauses: tuple[str, ...], *,
          hardware: bool = True) -> list[Any]:
    """The out-of-town visit: work as dispatch reports it, expenses with their receipts."""
    ticket = f"{customer}-t1"

    def work(key: str, kind: str, started: str, ended: str) -> WorkLogged:
        return WorkLogged(ticket, customer, agreement, "tech-1", key, kind, started, ended, verdict, clauses)

    def spent(key: str, kind: str, amount: str, receipt: str, nights: int | None = None) -> ExpenseRecorded:
        return ExpenseRecorded(ticket, customer, agreement, "tech-1", key, kind, amount, receipt, "2026-06-08",
                               nights, "")

    found: list[Any] = []
    if hardware:
        found.append(work("w-hw", "hardware", "2026-06-08T09:00:00+08:00", "2026-06-10T21:00:00+08:00"))
    found += [
        work("w-sw", "software", "2026-06-09T14:00:00+08:00", "2026-06-09T17:00:00+08:00"),
        spent("e-hotel", "lodging", "536.00", "HT-0608", nights=2),
        spent("e-meals", "meals", "45.75", "CY-0608"),
        spent("e-train-out", "transport", "224.50", "G7205"),
        spent("e-train-back", "transport", "198.00", "G7216"),
    ]
    return found


def quota(customer: str, agreement: str, kind: str, *, free: int, waived: int = 0, billable: int,
          discount: str | None = None) -> QuotaConsumed:
    rule = "C10" if kind == "installation" else "C7"
    return QuotaConsumed(agreement, customer, kind, f"{kind}-1", "2026-06-15", free, waived, billable, (rule, "B5"),
                         discount)


def totals(net: str, vat: str, gross: str, *rates: tuple[str, str, str, str]) -> Totals:
    by_rate = tuple(RateTotal(D(r), D(n), D(v), D(g)) for r, n, v, g in rates) or (RateTotal(SIX, D(net), D(vat),
                                                                                          D(gross)),)
    return Totals(D(net), D(vat), D(gross), by_rate)


def amounts(invoice: Invoice) -> list[tuple[str, Decimal, Decimal, Decimal]]:
    """(kind, quantity, net, vat) of each line, in the invoice's order."""
    return [(line.kind, line.quantity, line.net, line.vat) for line in invoice.lines]


def to_be_agreed(invoice: Invoice) -> list[tuple[str, Decimal, str]]:
    """The lines that had no known rate: priced by hand (at 0.00 here) before the issue."""
    return [(ln.kind, ln.quantity, ln.unit) for ln in invoice.lines if RATE_AGREED in ln.clauses]


# [1] 易卓 CRM: paid annual maintenance; hardware days at the signed rate; paid-up discount


YIZHUO = {"fee.percent": "15", "fee.licence_price": "80000", "onsite.local_hours": 8,
          "onsite.out_of_town_days": 2, "hardware.day_rate": "800"}


async def test_seed_1_yizhuo_inside_coverage_with_annual_fee_and_discounted_training(engine: AsyncEngine) -> None:
    ledger = await Ledger(engine).start()
    terms = await ledger.agreement("a-y", "y-in", "易卓客户甲", "yizhuo-crm-maintenance", YIZHUO)
    await ledger.send("dispatch", *visit("y-in", "a-y", "covered", ("C2",)))
    await ledger.send("contracts",
                      # B4: the annual fee is billed from the renewal (the payment), issue 13
                      CoverageGranted("a-y", "y-in", ("s-1",), "2026-06-01", "2027-05-31", "paid", ("C2",), HEFEI,
                                      terms, payment_id="fee-y-2026", amount="12000.00", paid_on="2026-06-01"),
                      quota("y-in", "a-y", "training_seat", free=0, billable=2,
                            discount=terms["training"]["paid_up_discount_percent"]))

    invoice = await ledger.issue("y-in-2026-06")

    assert amounts(invoice) == [
        # B2, C4: 60 h is 2.5 days, part of a day is a whole day: 3 days x 800.00 = 2,400.00; VAT 144.00
        ("hardware_days", D(3), D("2400.00"), D("144.00")),
        # software work inside coverage is not billed (B3 only outside it)
        # B1, C5 at cost, inside coverage too: 536.00 x 6% = 32.16
        ("expense", D(1), D("536.00"), D("32.16")),
        # 45.75 x 6% = 2.745, half-up to 2.75 (B8)
        ("expense", D(1), D("45.75"), D("2.75")),
        ("expense", D(1), D("224.50"), D("13.47")),  # 224.50 x 6% = 13.470
        ("expense", D(1), D("198.00"), D("11.88")),  # 198.00 x 6% = 11.880
        # B4, C2: 15% of 80,000.00 for the 12 months = 12,000.00; VAT 720.00
        ("annual_fee", D(1), D("12000.00"), D("720.00")),
        # B5, C7 [1]: 2 seats x 800.00 x (100 - 20)% paid-up = 1,280.00; VAT 76.80
        ("training", D(2), D("1280.00"), D("76.80")),
    ]
    # net 2,400.00 + 536.00 + 45.75 + 224.50 + 198.00 + 12,000.00 + 1,280.00 = 16,684.25
    # VAT 144.00 + 32.16 + 2.75 + 13.47 + 11.88 + 720.00 + 76.80 = 1,001.06; gross 17,685.31
    assert invoice.totals == totals("16684.25", "1001.06", "17685.31")
    assert (invoice.status, invoice.number, invoice.outstanding) == ("issued", "INV-2026-000001", D("17685.31"))


async def test_seed_1_yizhuo_outside_coverage(engine: AsyncEngine) -> None:
    ledger = await Ledger(engine).start()
    await ledger.agreement("a-y", "y-out", "易卓客户乙", "yizhuo-crm-maintenance", YIZHUO)
    await ledger.send("dispatch", *visit("y-out", "a-y", "billable", ("C1", "B3")))
    # the year's fee is not paid: no discount on training (C7 [1])
    await ledger.send("contracts", quota("y-out", "a-y", "training_seat", free=0, billable=2))

    invoice = await ledger.issue("y-out-2026-06")

    assert amounts(invoice) == [
        ("hardware_days", D(3), D("2400.00"), D("144.00")),  # C4 does not depend on coverage
        # B3, C1: 14:00-17:00 is part of a day, so one day (no hourly rate either); the
        # agreement has no rate for it, so the line waits for an operator's price at 0.00
        # rather than a guessed one
        ("service", D(1), D("0.00"), D("0.00")),
        ("expense", D(1), D("536.00"), D("32.16")),
        ("expense", D(1), D("45.75"), D("2.75")),
        ("expense", D(1), D("224.50"), D("13.47")),
        ("expense", D(1), D("198.00"), D("11.88")),
        ("training", D(2), D("1600.00"), D("96.00")),  # B5: 2 x 800.00, full price; VAT 96.00
    ]
    assert to_be_agreed(invoice) == [("service", D(1), "天")]
    # net 2,400.00 + 0.00 + 1,004.25 + 1,600.00 = 5,004.25; VAT 144.00 + 60.26 + 96.00 = 300.26
    assert invoice.totals == totals("5004.25", "300.26", "5304.51")


# [2] XXX software: vendor hardware under its one-year warranty; 3 installations, 3 trainees free


async def test_seed_2_xxx_software_inside_and_outside_coverage(engine: AsyncEngine) -> None:
    ledger = await Ledger(engine).start()
    await ledger.agreement("a-x", "x-in", "某某客户甲", "xxx-software-service")
    await ledger.agreement("a-x2", "x-out", "某某客户乙", "xxx-software-service")
    # inside: the hardware is the vendor's, in its first year (C11): no hardware days (B2)
    await ledger.send("dispatch", *visit("x-in", "a-x", "covered", ("C1", "C11")))
    await ledger.send("contracts",
                      quota("x-in", "a-x", "installation", free=0, billable=1),  # the 4th installation (C10)
                      # re-installed after a hardware fault on a sound OS: free on site (C10 [2])
                      quota("x-in", "a-x", "installation", free=0, waived=1, billable=0),
                      quota("x-in", "a-x", "training_seat", free=3, billable=2))  # 5 trainees, 3 free (C7)
    # outside: the warranty and the free year are over
    await ledger.send("dispatch", *visit("x-out", "a-x2", "billable", ("C1", "C11", "B3")))

    inside = await ledger.issue("x-in-2026-06")
    outside = await ledger.issue("x-out-2026-06")

    assert amounts(inside) == [
        ("expense", D(1), D("536.00"), D("32.16")),
        ("expense", D(1), D("45.75"), D("2.75")),
        ("expense", D(1), D("224.50"), D("13.47")),
        ("expense", D(1), D("198.00"), D("11.88")),
        ("installation", D(1), D("500.00"), D("30.00")),  # B5: 1 x 500.00; VAT 30.00
        ("training", D(2), D("1600.00"), D("96.00")),  # B5: 2 x 800.00, no discount in [2]
    ]
    # net 1,004.25 + 500.00 + 1,600.00 = 3,104.25; VAT 60.26 + 30.00 + 96.00 = 186.26
    assert inside.totals == totals("3104.25", "186.26", "3290.51")
    # [2] leaves the price of out-of-warranty hardware work to be agreed (另行商定): 3 days
    # at a price to be set, as is the software work outside coverage (B3)
    assert to_be_agreed(outside) == [("hardware_days", D(3), "天"), ("service", D(1), "天")]
    # net 1,004.25 (B1 only); VAT 32.16 + 2.75 + 13.47 + 11.88 = 60.26; gross 1,064.51
    assert outside.totals == totals("1004.25", "60.26", "1064.51")
    assert (inside.number, outside.number) == ("INV-2026-000001", "INV-2026-000002")  # gap-free (B8)


# [3] 超人 sale: one on-site training free; the dongle's one-year warranty, then 200 yuan


async def test_seed_3_chaoren_dongle_out_of_warranty_at_goods_vat(engine: AsyncEngine) -> None:
    ledger = await Ledger(engine).start()
    terms = await ledger.agreement("a-c", "c-in", "超人客户甲", "chaoren-software-sale")
    await ledger.agreement("a-c2", "c-out", "超人客户乙", "chaoren-software-sale")
    assert terms["warranty"]["dongle_replacement_fee"] == "200"  # rule C18, from the seed
    await ledger.send("dispatch", *visit("c-in", "a-c", "covered", ("C1",), hardware=False))
    await ledger.send("contracts",
                      quota("c-in", "a-c", "onsite_training_session", free=1, billable=1),  # a second session (C7)
                      WarrantyVerdict("K-1", "c-in", "dongle", "replacement", "2026-06-12", True, ("C18",),
                                      "free_replacement", "0.00"))  # within its year: free
    await ledger.send("dispatch", *visit("c-out", "a-c2", "billable", ("C1", "B3"), hardware=False))
    await ledger.send("contracts",
                      WarrantyVerdict("K-2", "c-out", "dongle", "replacement", "2026-06-12", False, ("C18",),
                                      "paid_replacement", "200.00"))

    inside = await ledger.issue("c-in-2026-06")
    outside = await ledger.issue("c-out-2026-06")

    # expenses 1,004.25 + a training session 2,000.00 = 3,004.25; VAT 60.26 + 120.00 = 180.26
    assert amounts(inside)[-1] == ("training", D(1), D("2000.00"), D("120.00"))
    assert inside.totals == totals("3004.25", "180.26", "3184.51")
    assert [line.kind for line in outside.lines] == ["service", "expense", "expense", "expense", "expense", "dongle"]
    # B7, C18: the dongle is goods at 13 %: 200.00 x 13% = 26.00
    assert amounts(outside)[-1] == ("dongle", D(1), D("200.00"), D("26.00"))
    # net 1,004.25 + 200.00 = 1,204.25; VAT 60.26 + 26.00 = 86.26; gross 1,290.51
    assert outside.totals == totals("1204.25", "86.26", "1290.51",
                                    ("0.06", "1004.25", "60.26", "1064.51"), ("0.13", "200.00", "26.00", "226.00"))


# [4] 全搜索: remote first; one trainee and one installation free; re-installation charged;
# changes over 3 working days at a price agreed separately


async def test_seed_4_quansousuo_remote_service_reinstallation_and_large_change(engine: AsyncEngine) -> None:
    ledger = await Ledger(engine).start()
    await ledger.agreement("a-q", "q-in", "全搜索客户甲", "quansousuo-purchasing")
    await ledger.agreement("a-q2", "q-out", "全搜索客户乙", "quansousuo-purchasing")
    remote = "2026-06-09T09:00:00+08:00", "2026-06-09T14:00:00+08:00"  # 5 hours, over QQ and remote desktop
    await ledger.send("dispatch", WorkLogged("q-t1", "q-in", "a-q", "tech-1", "w-1", "software", *remote, "covered",
                                             ("C1", "C12")))
    await ledger.send("contracts",
                      quota("q-in", "a-q", "training_seat", free=1, billable=2),  # 3 trainees, 1 free (C7 [4])
                      quota("q-in", "a-q", "installation", free=0, billable=1))  # re-installation: charged (C10 [4])
    # C8 [4]: more than 3 working days is a large change, billable (B6); contracts assessed both
    await ledger.send("contracts", *(ChangeRequestAssessed("a-q", "q-in", f"CR-{days}", "", "2026-06-20", days,
                                                           verdict, ("C8",))
                                     for days, verdict in (("5", "billable"), ("2", "covered"))))
    await ledger.send("dispatch", WorkLogged("q-t2", "q-out", "a-q2", "tech-1", "w-2", "software", *remote,
                                             "billable", ("C1", "B3")))
    await ledger.send("contracts", quota("q-out", "a-q2", "installation", free=0, billable=1))

    inside = await ledger.issue("q-in-2026-06")
    outside = await ledger.issue("q-out-2026-06")

    assert amounts(inside) == [
        ("training", D(2), D("1600.00"), D("96.00")),  # 2 x 800.00
        ("installation", D(1), D("500.00"), D("30.00")),  # 1 x 500.00
        # 5 working days > 3: billed by the workload, at a price agreed separately (另行商定)
        ("change_request", D(5), D("0.00"), D("0.00")),
    ]  # the 2-day change is small, so free (C8); remote work inside coverage is free
    assert to_be_agreed(inside) == [("change_request", D(5), "天")]
    # net 1,600.00 + 500.00 = 2,100.00; VAT 96.00 + 30.00 = 126.00; gross 2,226.00
    assert inside.totals == totals("2100.00", "126.00", "2226.00")
    # outside: 5 hours, one started day at a rate to be agreed (B3), and the re-installation 500.00
    assert amounts(outside) == [("service", D(1), D("0.00"), D("0.00")),
                                ("installation", D(1), D("500.00"), D("30.00"))]
    assert outside.totals == totals("500.00", "30.00", "530.00")


# [5] 紫光 three guarantees: the vendor's own PCs, warranted for a year (C19)


async def test_seed_5_ziguang_repairs_free_under_three_guarantees_billed_after(engine: AsyncEngine) -> None:
    ledger = await Ledger(engine).start()
    # [5]: paid service by arrangement with the service point (协商): the signature records
    # the day rate agreed
    await ledger.agreement("a-z", "z-in", "紫光客户甲", "ziguang-three-guarantees", {"hardware.day_rate": "300"})
    await ledger.agreement("a-z2", "z-out", "紫光客户乙", "ziguang-three-guarantees", {"hardware.day_rate": "300"})
    await ledger.send("dispatch", *visit("z-in", "a-z", "covered", ("C1", "C19")))
    await ledger.send("dispatch", *visit("z-out", "a-z2", "billable", ("C1", "C11", "B3")))

    inside = await ledger.issue("z-in-2026-06")
    outside = await ledger.issue("z-out-2026-06")

    # inside: the repair is the three guarantees' (B2); the visit's costs are the customer's (B1)
    assert [line.kind for line in inside.lines] == ["expense"] * 4
    assert inside.totals == totals("1004.25", "60.26", "1064.51")
    # outside: 3 days x 300.00 = 900.00, VAT 54.00
    assert amounts(outside)[0] == ("hardware_days", D(3), D("900.00"), D("54.00"))
    # net 900.00 + 0.00 + 1,004.25 = 1,904.25; VAT 54.00 + 60.26 = 114.26; gross 2,018.51
    assert outside.totals == totals("1904.25", "114.26", "2018.51")


# End to end: [1] through contracts, dispatch and billing on a real nats-server


async def invoice_with(nc: NATS, invoice_id: str, count: int) -> dict[str, Any]:
    found: dict[str, Any] = {}

    async def enough() -> bool:
        nonlocal found
        answer = await ask(nc, "billing.invoice", {"invoice_id": invoice_id})
        found = answer.get("result") or {}
        return answer["ok"] and len(found["lines"]) >= count

    await eventually(enough)
    return found


async def test_seed_1_end_to_end_visit_annual_fee_and_paid_up_training(system: None, nc: NATS,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEIBAO_TODAY", "2026-06-08")  # the services read their clocks per request
    monkeypatch.setenv("WEIBAO_NOW", "2026-06-08T00:30:00+00:00")  # 08:30 in Hefei
    await set_up_customer_and_crew(nc)  # [1] signed: 10% of 120,000.00, 800.00 a hardware day, live 2025-09-01
    await ok(nc, "dispatch.ticket.open", {"ticket_id": "t-1", "site_id": "s-1", "summary": "服务器与交换机故障",
                                          "skill": "hardware"})
    await ok(nc, "dispatch.ticket.triage", {"ticket_id": "t-1", "outcome": "escalate", "note": ""})
    await ok(nc, "dispatch.ticket.assign", {"ticket_id": "t-1", "technician_id": "near", "reason": "硬件专长"})
    technician = {"ticket_id": "t-1", "technician_id": "near", "device_time": "2026-06-08T08:30:00+08:00"}
    await ok(nc, "dispatch.ticket.check_in", {**technician, "key": "check-in-1", "position": SITE, "accuracy_m": 10},
             actor="technician:near")
    await ok(nc, "dispatch.ticket.work", {**technician, "key": "work-1-1", "kind": "hardware",
                                          "started": "2026-06-08T09:00:00+08:00",
                                          "ended": "2026-06-10T21:00:00+08:00"}, actor="technician:near")
    for key, kind, amount, receipt, extra in (("expense-1", "lodging", "536.00", "HT-0608", {"nights": 2}),
                                               ("expense-2", "meals", "45.75", "CY-0608", {}),
                                               ("expense-3", "transport", "224.50", "G7205", {}),
                                               ("expense-4", "transport", "198.00", "G7216", {})):
        await ok(nc, "dispatch.ticket.expense", {**technician, "key": key, "kind": kind, "amount": amount,
                                                 "receipt_no": receipt, "receipt_date": "2026-06-08", **extra},
                 actor="technician:near")
    # The free year ends 2026-08-31: the fee for the next falls due 30 days before (a
    # renewal notice, no line: B4, issue 13), is paid (the renewal: its line, in August),
    # and training in the paid year gets the paid-up discount (C7 [1]).
    await ok(nc, "contracts.assess", {"agreement_id": "a-1", "today": "2026-08-02"})
    await ok(nc, "contracts.pay", {"agreement_id": "a-1", "payment_id": "fee-2026", "amount": "12000.00",
                                   "period_from": "2026-09-01", "period_to": "2027-08-31", "paid_on": "2026-08-20"})
    await ok(nc, "contracts.quota.consume", {"agreement_id": "a-1", "kind": "training_seat", "ref": "提高班-1",
                                             "units": 2, "on": "2026-09-15"})

    june = await invoice_with(nc, "c-1-2026-06", 5)
    august = await invoice_with(nc, "c-1-2026-08", 1)
    september = await invoice_with(nc, "c-1-2026-09", 1)

    # 3 days x 800.00 = 2,400.00 (144.00) + expenses 1,004.25 (60.26): 3,404.25 + 204.26 = 3,608.51
    assert june["totals"]["net"] == "3404.25" and june["totals"]["vat"] == "204.26"
    assert june["totals"]["gross"] == "3608.51"
    # B4: 10% of 120,000.00 = 12,000.00; VAT 720.00, once: from the payment, none from the fee falling due
    assert [line["kind"] for line in august["lines"]] == ["annual_fee"] and august["totals"]["gross"] == "12720.00"
    assert august["lines"][0]["sources"][0][2] == "CoverageGranted"
    # B5: 2 x 800.00 x 80% = 1,280.00; VAT 76.80
    assert september["lines"][0]["description"].endswith("已缴年费优惠 20%")
    assert (september["totals"]["net"], september["totals"]["gross"]) == ("1280.00", "1356.80")

    issued = await ok(nc, "billing.invoice.issue", {"invoice_id": "c-1-2026-06", "issued_on": FIRST_ON})
    assert [e["data"]["number"] for e in issued["result"]["events"] if e["type"] == "private.InvoiceIssued"] == [
        "INV-2026-000001"]
