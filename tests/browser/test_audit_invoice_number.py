"""The auditor holds a printed invoice, not our id (issue 16, item 7): typing its number
(any case) on the audit page opens the invoice's history and its state, as if picked
from billing's list, and fills the line-explanation form with the invoice."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from tests.browser.conftest import sign_in
from tests.browser.test_invoices_and_audit import report
from tests.browser.world import SITE, Api, open_request, until
from weibao.shared.clock import CHINA

expect = pytest.importorskip("playwright.sync_api").expect


def test_b8_the_auditor_finds_an_issued_invoice_by_its_printed_number(
        new_context: Callable[..., Any], api: Callable[[str], Api]) -> None:
    open_request(api("li"), "T-NUM-1", "打印服务停止", technician_id="near")
    technician = api("wang")
    report(technician, "T-NUM-1", "check-in", position=SITE, accuracy_m=10)
    report(technician, "T-NUM-1", "expenses", kind="lodging", amount="199.00", receipt_no="FP-NUM-1",
           receipt_date=datetime.now(CHINA).date().isoformat(), nights=1)
    clerk = api("zhao")

    def drafted() -> Any:
        return next((i for i in clerk.get("/invoices", customer_id="c-1", status="draft")["items"]
                     if i["lines_count"] >= 1), None)

    invoice_id = until(drafted)["invoice_id"]
    clerk.post(f"/invoices/{invoice_id}/issue", {})
    number = clerk.get(f"/invoices/{invoice_id}")["number"]
    assert number.startswith("INV-")
    until(lambda: clerk.get("/invoices", number=number)["items"])  # billing's list follows its log

    page = new_context().new_page()
    page.goto("/audit/")
    sign_in(page, "sun")
    page.get_by_test_id("audit-number").fill(number.lower())  # as typed off the paper
    page.get_by_test_id("audit-number-find").click()
    expect(page.get_by_test_id("number-found")).to_contain_text(f"发票 {number}（天宇贸易）")
    expect(page.get_by_test_id("audit-stream")).to_have_value(f"invoice-{invoice_id}")
    expect(page.get_by_test_id("audit-history")).to_contain_text("InvoiceIssued")
    expect(page.get_by_test_id("audit-state")).to_contain_text(number)
    expect(page.get_by_test_id("explain-invoice")).to_have_value(invoice_id)

    page.get_by_test_id("audit-number").fill("INV-1999-000001")
    page.get_by_test_id("audit-number-find").click()
    expect(page.get_by_test_id("number-found")).to_have_text("没有号码为 INV-1999-000001 的发票")
