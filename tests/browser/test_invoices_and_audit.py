"""Invoices and the auditor's page in a real browser: a visit's hardware day and lodging
become invoice lines whose provenance names the events they came from (B1, B2, B8);
issued, the invoice exports as CSV with a BOM; the auditor sees an aggregate's history,
its state as of a moment, and the replay status with the hash chains verified."""

from __future__ import annotations

import csv
import io
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import sign_in
from tests.browser.world import SITE, Api, open_request, until
from weibao.shared.clock import CHINA

expect = pytest.importorskip("playwright.sync_api").expect


def report(technician: Api, ticket_id: str, what: str, **fields: Any) -> None:
    key = str(uuid.uuid4())
    technician.post(f"/tickets/{ticket_id}/{what}", {"key": key, "device_time": datetime.now(CHINA).isoformat(),
                                                     **fields}, key=key)


def test_b1_b2_b8_an_invoice_shows_provenance_and_exports_as_csv(
        new_context: Callable[..., Any], api: Callable[[str], Api], artifacts: Path) -> None:
    open_request(api("li"), "T-BILL-1", "服务器硬盘故障", skill="hardware", technician_id="near")
    technician = api("wang")
    report(technician, "T-BILL-1", "check-in", position=SITE, accuracy_m=10)
    now = datetime.now(CHINA)
    report(technician, "T-BILL-1", "work", kind="hardware", started=(now - timedelta(hours=7)).isoformat(),
           ended=(now - timedelta(hours=1)).isoformat())  # part of a day is a whole day (C4)
    report(technician, "T-BILL-1", "expenses", kind="lodging", amount="268.00", receipt_no="FP-1",
           receipt_date=now.date().isoformat(), nights=1)
    clerk = api("zhao")

    def drafted() -> Any:
        return next((i for i in clerk.get("/invoices", customer_id="c-1")["items"]
                     if i["status"] == "draft" and i["lines_count"] >= 2), None)

    invoice = until(drafted)
    invoice_id = invoice["invoice_id"]

    page = new_context().new_page()
    page.goto("/#invoices")
    sign_in(page, "zhao")
    page.get_by_test_id(f"invoice-{invoice_id}").click()
    lines = page.get_by_test_id("invoice-lines")
    expect(lines.locator("tbody tr:not(.provenance)")).to_have_count(2)
    hardware = next(line for line in clerk.get(f"/invoices/{invoice_id}")["lines"] if line["kind"] == "hardware_days")
    page.get_by_test_id(f"explain-{hardware['item_id']}").click()
    provenance = page.get_by_test_id(f"provenance-{hardware['item_id']}")
    expect(provenance).to_contain_text("WorkLogged")  # the event the line came from
    expect(provenance).to_contain_text("dispatch")
    expect(provenance).to_contain_text("B2")
    page.screenshot(path=str(artifacts / "invoice.png"), full_page=True)

    assert clerk.get(f"/invoices/{invoice_id}")["actions"] == ["issue", "price_line", "remove_line"]
    page.get_by_test_id("issue-invoice").click()  # B8: a number, and frozen
    expect(page.get_by_test_id("invoice")).to_contain_text("INV-")
    # Issued, it offers what billing's table allows an issued invoice, not issuing again.
    assert clerk.get(f"/invoices/{invoice_id}")["actions"] == ["credit", "pay"]
    expect(page.get_by_test_id("issue-invoice")).to_have_count(0)
    with page.expect_popup() as printed:
        page.get_by_test_id("invoice-page").click()
    expect(printed.value.locator("body")).to_contain_text("INV-")  # the A4 page, by the cookie

    with page.expect_download() as downloaded:
        page.get_by_test_id("export-csv").click()
    data = downloaded.value.path().read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")  # a BOM: Excel reads the Chinese right
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert {row["invoice_id"] for row in rows} == {invoice_id}
    hardware_row = next(row for row in rows if row["item_id"] == hardware["item_id"])
    assert hardware_row["customer_name"] == "天宇贸易"
    assert hardware_row["net"] == hardware["amount"]


def test_the_auditor_sees_history_state_as_of_and_replay_status(
        new_context: Callable[..., Any], api: Callable[[str], Api], artifacts: Path) -> None:
    desk = api("li")
    open_request(desk, "T-AUD-1", "财务模块凭证无法过账")
    time.sleep(1.2)  # the escalation is recorded a second later than the request, visibly so
    desk.post("/tickets/T-AUD-1/triage", {"outcome": "escalate", "note": "远程无法连接"})

    page = new_context().new_page()
    page.goto("/audit/")
    sign_in(page, "sun")
    for service in ("contracts", "dispatch", "billing"):
        expect(page.get_by_test_id(f"status-{service}")).to_be_visible()
    page.get_by_test_id("verify").click()
    expect(page.get_by_test_id("chain-dispatch")).to_contain_text("完整")
    # Trust: every signature checked, and the broker's stream held against the log.
    expect(page.get_by_test_id("signatures-dispatch")).to_contain_text("全部有效")
    expect(page.get_by_test_id("stream-check-dispatch")).to_contain_text("与日志一致")
    expect(page.get_by_test_id("alarm-dispatch")).to_have_count(0)

    page.get_by_test_id("audit-prefix").fill("ticket-T-AUD")
    page.get_by_test_id("audit-prefix").press("Enter")
    page.get_by_test_id("stream-ticket-T-AUD-1").click()
    history = page.get_by_test_id("audit-history")
    expect(history).to_contain_text("private.VisitRequested")
    expect(page.get_by_test_id("audit-state")).to_contain_text("awaiting_assignment")

    page.get_by_test_id("as-of-1").click()  # as of the first event
    expect(history).not_to_contain_text("private.VisitRequested")
    expect(history).to_contain_text("private.TicketOpened")
    state = page.get_by_test_id("audit-state")
    expect(state).to_contain_text("triage")
    expect(state).not_to_contain_text("awaiting_assignment")
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(artifacts / "audit.png"), full_page=True)
