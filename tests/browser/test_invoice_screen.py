"""The billing clerk's invoice screen (issue 16, item 6): on an issued invoice the clerk
records a partial payment (the outstanding goes down by it) and credits one line with a
reason (B8: the invoice stays as issued; the credit note is listed under it and the line
reads 已冲红); the lines read in Chinese, not as codes; a refusal reads in Chinese."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import sign_in
from tests.browser.test_invoices_and_audit import report
from tests.browser.world import SITE, Api, open_request, until
from weibao.shared.clock import CHINA

expect = pytest.importorskip("playwright.sync_api").expect

TICKET = "T-INV-SCREEN-1"


def money(value: Decimal | str) -> str:
    """As the console shows money (fmtMoney): yuan sign, thousands separated, two decimals."""
    return f"¥{Decimal(value):,.2f}"


def drafted_visit(api: Callable[[str], Api]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A visit's hardware day and lodging, billed: the draft's id, its hardware and lodging lines."""
    clerk = api("zhao")
    # The drafts that were there before this visit's: the package's other tests bill c-1 too.
    before = {i["invoice_id"] for i in clerk.get("/invoices", customer_id="c-1", limit=200)["items"]}
    open_request(api("li"), TICKET, "打印服务器网卡故障", skill="hardware", technician_id="near")
    technician = api("wang")
    report(technician, TICKET, "check-in", position=SITE, accuracy_m=10)
    now = datetime.now(CHINA)
    report(technician, TICKET, "work", kind="hardware", started=(now - timedelta(hours=5)).isoformat(),
           ended=(now - timedelta(hours=1)).isoformat())
    report(technician, TICKET, "expenses", kind="lodging", amount="268.00", receipt_no="FP-INV-1",
           receipt_date=now.date().isoformat(), nights=1)

    def drafted() -> Any:
        return next((i for i in clerk.get("/invoices", customer_id="c-1", limit=200)["items"]
                     if i["status"] == "draft" and i["lines_count"] >= 2
                     and (i["invoice_id"] not in before or TICKET in i["period"])), None)

    invoice_id = until(drafted)["invoice_id"]
    lines = clerk.get(f"/invoices/{invoice_id}")["lines"]
    hardware = next(line for line in lines if line["kind"] == "hardware_days")
    lodging = next(line for line in lines if line["kind"] == "expense")
    return invoice_id, hardware, lodging


def reads_in_words(page: Any, hardware: dict[str, Any], lodging: dict[str, Any]) -> None:
    """Issue 16: the kinds and clauses in Chinese (the rule id as the tooltip), the customer
    by name, no item ids as text."""
    card = page.get_by_test_id("invoice")
    table = page.get_by_test_id("invoice-lines")
    text = table.inner_text()
    for code in ("hardware_days", "expense", "lodging", hardware["item_id"], lodging["item_id"], "B2"):
        assert code not in text, code
    expect(page.get_by_test_id(f"line-{hardware['item_id']}")).to_contain_text("硬件维护（按天）")
    expect(page.get_by_test_id(f"line-{hardware['item_id']}").locator("[data-clause=B2]")).to_have_attribute(
        "title", "B2")
    expect(page.get_by_test_id("invoice-customer-name")).to_have_text("天宇贸易")
    assert "c-1" not in card.locator("dl.facts").inner_text()


def test_b8_the_clerk_pays_and_credits_an_issued_invoice_from_the_screen(
        new_context: Callable[..., Any], api: Callable[[str], Api], artifacts: Path) -> None:
    clerk = api("zhao")
    invoice_id, hardware, lodging = drafted_visit(api)
    page = new_context().new_page()
    page.goto("/#invoices")
    sign_in(page, "zhao")
    page.get_by_test_id(f"invoice-{invoice_id}").click()
    page.get_by_test_id("issue-invoice").click()
    card = page.get_by_test_id("invoice")
    expect(card).to_contain_text("INV-")
    issued = clerk.get(f"/invoices/{invoice_id}")
    gross = Decimal(issued["totals"]["gross"])
    outstanding = page.get_by_test_id("invoice-outstanding")
    expect(outstanding).to_contain_text(money(gross))

    reads_in_words(page, hardware, lodging)

    # a partial payment: the outstanding goes down by it
    page.get_by_test_id("payment-amount").fill("100.00")
    page.get_by_test_id("payment-submit").click()
    expect(outstanding).to_contain_text(money(gross - Decimal("100.00")))
    expect(page.get_by_test_id("invoice-paid")).to_contain_text(money("100.00"))
    expect(card).to_contain_text("部分付款")

    # a credit note for the lodging line, with its reason
    page.get_by_test_id(f"credit-pick-{lodging['item_id']}").check()
    page.get_by_test_id("credit-reason").fill("住宿发票重复报销，冲红该明细")
    page.get_by_test_id("credit-submit").click()
    notes = page.get_by_test_id("credit-notes")
    note = notes.locator(".credit-note")
    expect(note).to_have_count(1)
    expect(note).to_contain_text(lodging["description"])
    expect(note).to_contain_text("差旅费用")
    expect(page.get_by_test_id(f"credited-{lodging['item_id']}")).to_have_text("已冲红")
    expect(page.get_by_test_id(f"credited-{hardware['item_id']}")).to_have_count(0)
    after = clerk.get(f"/invoices/{invoice_id}")
    expect(outstanding).to_contain_text(money(after["outstanding"]))
    assert Decimal(after["outstanding"]) < gross - Decimal("100.00")  # the credit note's gross is off it too

    # refused by billing: more than is outstanding; the reason in Chinese, in the page's messages
    page.get_by_test_id("payment-amount").fill(f'{Decimal(after["outstanding"]) + Decimal("1.00"):.2f}')
    page.get_by_test_id("payment-submit").click()
    error = page.get_by_test_id("error-text").first
    expect(error).to_contain_text("未付金额仅剩")
    expect(outstanding).to_contain_text(money(after["outstanding"]))  # nothing was recorded
    # refused by the gateway's body schema (Money > 0): still said in Chinese, naming the field
    page.get_by_test_id("payment-amount").fill("0.00")
    page.get_by_test_id("payment-submit").click()
    zero = page.get_by_test_id("error").filter(has_text="字段：金额")  # the newest message first
    expect(zero).to_have_count(1)
    expect(zero.get_by_test_id("error-text")).to_have_text("填写的内容无效")
    expect(outstanding).to_contain_text(money(after["outstanding"]))

    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(artifacts / "invoice-screen.png"), full_page=True)
