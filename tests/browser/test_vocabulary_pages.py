"""Issue 14 in a real browser: the selects offer the API's own lists (GET
/api/v1/vocabulary, the shared Literals) with their Chinese labels, so the phone records
travel expenses it could not before; and the phone's buttons follow the `actions` dispatch
answers with each visit, an action queued offline showing what it will allow next."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.browser.conftest import sign_in
from tests.browser.test_mobile import PHONE, phone_report
from tests.browser.world import Api, open_request, until

expect = pytest.importorskip("playwright.sync_api").expect


def test_the_console_offers_the_apis_lists_in_chinese(new_context: Callable[..., Any],
                                                      api: Callable[[str], Api]) -> None:
    words = api("li").get("/vocabulary")
    page = new_context().new_page()
    page.goto("/")
    sign_in(page, "li")
    form = page.get_by_test_id("new-ticket-form")
    channel = form.locator("select[name=channel]")
    assert channel.locator("option").evaluate_all("(os) => os.map((o) => o.value)") == words["channel"]
    expect(channel).to_have_value("phone")  # NewTicket's default
    assert "传真" in channel.locator("option").all_text_contents()
    causes = form.locator("select[name=cause]").locator("option").evaluate_all("(os) => os.map((o) => o.value)")
    assert causes == words["cause"]
    statuses = page.locator("#invoice-filter select[name=status] option")
    assert statuses.evaluate_all("(os) => os.map((o) => o.value)") == ["", *words["invoice_status"]]


def test_the_phone_records_travel_and_its_buttons_follow_the_visits_actions(
        new_context: Callable[..., Any], api: Callable[[str], Api]) -> None:
    open_request(api("li"), "T-WORDS-1", "出差上门排查网络", technician_id="near")
    context = new_context(**PHONE)
    phone = context.new_page()
    phone.goto("/m/")
    sign_in(phone, "wang")
    card = phone.get_by_test_id("visit-T-WORDS-1")
    expect(card).to_be_visible()
    phone.wait_for_function("navigator.serviceWorker.controller !== null")

    # Travel, which the API always accepted, is offered, in Chinese.
    phone.get_by_test_id("expense-T-WORDS-1").click()
    form = phone.get_by_test_id("expense-form-T-WORDS-1")
    kinds = form.locator("select[name=kind] option")
    assert "travel" in kinds.evaluate_all("(os) => os.map((o) => o.value)")
    assert "差旅" in kinds.all_text_contents()
    form.locator("select[name=kind]").select_option("travel")
    phone.get_by_test_id("expense-amount-T-WORDS-1").fill("260.00")
    phone.get_by_test_id("expense-submit-T-WORDS-1").click()
    expect(phone.get_by_test_id("queue-count")).to_have_attribute("data-count", "0")
    [recorded] = until(lambda: phone_report(api("sun"), "T-WORDS-1", "ExpenseRecorded"))
    assert recorded["data"]["kind"] == "travel"

    # Assigned: accept and check in are offered; neither check-out nor completion.
    expect(phone.get_by_test_id("accept-T-WORDS-1")).to_be_visible()
    expect(phone.get_by_test_id("check-in-T-WORDS-1")).to_be_visible()
    expect(phone.get_by_test_id("check-out-T-WORDS-1")).to_have_count(0)
    expect(phone.get_by_test_id("complete-T-WORDS-1")).to_have_count(0)

    # Offline, a queued action shows what it will allow: accepted (no accept), then on site.
    context.set_offline(True)
    phone.get_by_test_id("accept-T-WORDS-1").click()
    expect(phone.get_by_test_id("accept-T-WORDS-1")).to_have_count(0)
    expect(phone.get_by_test_id("check-in-T-WORDS-1")).to_be_visible()
    phone.get_by_test_id("check-in-T-WORDS-1").click()
    expect(phone.get_by_test_id("queue-count")).to_have_attribute("data-count", "2")
    expect(phone.get_by_test_id("check-in-T-WORDS-1")).to_have_count(0)
    expect(phone.get_by_test_id("check-out-T-WORDS-1")).to_be_visible()
    expect(phone.get_by_test_id("complete-T-WORDS-1")).to_be_visible()
    expect(phone.get_by_test_id("visit-status-T-WORDS-1")).to_have_text("已到场")  # as it will stand
    phone.reload()  # offline: the selects' values come from the shell, the queue from the phone
    expect(phone.get_by_test_id("check-out-T-WORDS-1")).to_be_visible()
    phone.get_by_test_id("work-T-WORDS-1").click()
    kinds = phone.get_by_test_id("work-form-T-WORDS-1").locator("select[name=kind] option")
    assert kinds.evaluate_all("(os) => os.map((o) => o.value)") == api("li").get("/vocabulary")["work"]

    context.set_offline(False)
    expect(phone.get_by_test_id("queue-count")).to_have_attribute("data-count", "0")
    # Uploaded: the server's own answer now (once the board has read the check-in), the same offer.
    until(lambda: any(v["ticket_id"] == "T-WORDS-1" and v["status"] == "on_site"
                      for v in api("wang").get("/me/visits")["items"]))
    phone.locator("#refresh").click()  # the live feed would too, once its connection is back
    expect(phone.get_by_test_id("check-out-T-WORDS-1")).to_be_visible()
    expect(phone.get_by_test_id("accept-T-WORDS-1")).to_have_count(0)
    visits = json.loads(phone.evaluate("localStorage.getItem('weibao.m.visits')"))["items"]
    assert "complete" in next(v for v in visits if v["ticket_id"] == "T-WORDS-1")["actions"]
