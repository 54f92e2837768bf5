"""What was already logged on a visit, on the phone (issue 16, item 9; rule D6): the visit's
已记录 fold lists the work periods and expenses stored on it (from the visit's record,
GET /tickets/{id}, kept for offline), and those still waiting in the phone's queue,
marked 待上传; once uploaded an entry shows as stored, once, so nobody logs it twice."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import sign_in
from tests.browser.test_mobile import PHONE, phone_report
from tests.browser.world import Api, open_request, until

expect = pytest.importorskip("playwright.sync_api").expect


def _on_site(phone: Any, ticket_id: str) -> None:
    phone.get_by_test_id(f"accept-{ticket_id}").click()
    expect(phone.get_by_test_id("queue-count")).to_have_attribute("data-count", "0")
    phone.get_by_test_id(f"check-in-{ticket_id}").click()
    expect(phone.get_by_test_id(f"visit-status-{ticket_id}")).to_have_text("已到场")
    expect(phone.get_by_test_id("queue-count")).to_have_attribute("data-count", "0")


def _choose(select: Any, value: str) -> None:
    # As a finger does: the select has the focus, so the page does not redraw the form
    # under it (Playwright's select_option alone chooses without focusing).
    select.focus()
    select.select_option(value)


def _log_work(phone: Any, ticket_id: str, kind: str) -> tuple[str, str]:
    """Log an hour ending now (the form's own times, China time); answer its start and end."""
    phone.get_by_test_id(f"work-{ticket_id}").click()  # the work form opens
    form = phone.get_by_test_id(f"work-form-{ticket_id}")
    _choose(form.locator("select[name=kind]"), kind)
    started = form.locator("input[name=started]").input_value()
    ended = form.locator("input[name=ended]").input_value()
    phone.get_by_test_id(f"work-submit-{ticket_id}").click()
    return started, ended


def _log_expense(phone: Any, ticket_id: str, kind: str, amount: str, receipt_no: str) -> None:
    phone.get_by_test_id(f"expense-{ticket_id}").click()  # the expense form opens
    form = phone.get_by_test_id(f"expense-form-{ticket_id}")
    _choose(form.locator("select[name=kind]"), kind)
    phone.get_by_test_id(f"expense-amount-{ticket_id}").fill(amount)
    form.locator("input[name=receipt_no]").fill(receipt_no)
    phone.get_by_test_id(f"expense-submit-{ticket_id}").click()


def _reopened_offline(phone: Any, ticket_id: str, artifacts: Path) -> None:
    """Opened again without a network: the fold comes from the phone's copy of the record."""
    phone.reload()
    phone.get_by_test_id(f"logged-{ticket_id}").click()
    logged = phone.get_by_test_id(f"logged-list-{ticket_id}")
    expect(logged.locator("[data-testid=logged-work][data-state=stored]")).to_contain_text("硬件")
    expect(logged.locator("[data-testid=logged-expense][data-state=stored]")).to_have_count(1)
    expect(logged.locator("[data-testid=logged-expense][data-state=pending]")).to_have_count(1)
    expect(logged).to_contain_text("服务器记录截至")  # how old the copy is
    # the card alone: other tests' visits share the phone's list, and the list scrolls inside the page
    phone.get_by_test_id(f"visit-{ticket_id}").screenshot(path=str(artifacts / "mobile-logged-offline.png"))


def test_d6_the_visit_shows_the_work_and_expenses_already_logged_and_those_waiting(
        new_context: Callable[..., Any], api: Callable[[str], Api], artifacts: Path) -> None:
    open_request(api("li"), "T-LOG-1", "机房交换机端口故障", technician_id="near")
    context = new_context(**PHONE)
    phone = context.new_page()
    phone.goto("/m/")
    sign_in(phone, "wang")
    _on_site(phone, "T-LOG-1")

    phone.get_by_test_id("logged-T-LOG-1").click()  # the fold opens, and stays open across redraws
    logged = phone.get_by_test_id("logged-list-T-LOG-1")
    expect(logged).to_have_text("尚未记录工时或费用")

    started, ended = _log_work(phone, "T-LOG-1", "hardware")
    expect(phone.get_by_test_id("queue-count")).to_have_attribute("data-count", "0")
    work = logged.locator("[data-testid=logged-work][data-state=stored]")
    expect(work).to_have_count(1)
    expect(work).to_contain_text("硬件")  # the kind in words
    expect(work).to_contain_text(re.compile(f"{started[11:16]}–.*{ended[11:16]}"))  # start–end, China time
    expect(work).to_contain_text("1小时00分")

    _log_expense(phone, "T-LOG-1", "transport", "36", "FP-001")
    expect(phone.get_by_test_id("queue-count")).to_have_attribute("data-count", "0")
    expense = logged.locator("[data-testid=logged-expense][data-state=stored]")
    expect(expense).to_have_count(1)
    expect(expense).to_contain_text("交通")
    expect(expense).to_contain_text("¥36.00")
    expect(expense).to_contain_text("FP-001")
    expect(phone.get_by_test_id("logged-T-LOG-1")).to_have_text("已记录 · 工时 1 条 · 费用 1 条")
    for code in ("hardware", "transport"):  # no raw codes on the Chinese screen
        expect(logged).not_to_contain_text(code)

    # Offline: another expense waits in the queue, and shows in the fold as 待上传.
    phone.wait_for_function("navigator.serviceWorker.controller !== null")  # the offline shell is in place
    context.set_offline(True)
    expect(phone.get_by_test_id("net-status")).to_have_text(re.compile("离线"))
    _log_expense(phone, "T-LOG-1", "meals", "45.50", "FP-002")
    expect(phone.get_by_test_id("queue-count")).to_have_attribute("data-count", "1")
    waiting = logged.locator("[data-testid=logged-expense][data-state=pending]")
    expect(waiting).to_have_count(1)
    expect(waiting).to_contain_text("餐费")
    expect(waiting).to_contain_text("¥45.50")
    expect(waiting).to_contain_text("待上传")
    expect(expense).to_have_count(1)

    _reopened_offline(phone, "T-LOG-1", artifacts)

    # Back online: the queue uploads by itself; the expense is stored, and shown once.
    context.set_offline(False)
    expect(phone.get_by_test_id("queue-count")).to_have_attribute("data-count", "0")
    expect(expense).to_have_count(2)
    expect(waiting).to_have_count(0)
    expect(expense.filter(has_text="¥45.50")).to_have_count(1)
    expect(expense.filter(has_text="¥45.50")).to_contain_text("餐费")
    expect(phone.get_by_test_id("logged-T-LOG-1")).to_have_text("已记录 · 工时 1 条 · 费用 2 条")
    assert len(until(lambda: phone_report(api("sun"), "T-LOG-1", "ExpenseRecorded"))) == 2
    phone.get_by_test_id("visit-T-LOG-1").screenshot(path=str(artifacts / "mobile-logged.png"))
