"""The technician's phone page in a real browser: check-in with the browser's position
(D5) that the dispatcher's board follows live; actions taken offline wait in the phone's
queue with the key they got when tapped, and upload once (D5, D6); the page shell is
kept by a service worker."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import sign_in
from tests.browser.world import SITE, Api, open_request, until

expect = pytest.importorskip("playwright.sync_api").expect

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
         "geolocation": {**SITE, "accuracy": 12}, "permissions": ["geolocation"]}


def phone_report(auditor: Api, ticket_id: str, kind: str) -> list[dict[str, Any]]:
    history = auditor.get(f"/audit/dispatch/streams/ticket-{ticket_id}")
    return [e for e in history["events"] if e["type"] == f"private.{kind}"]


def test_d5_a_check_in_from_the_phone_and_the_board_follows(
        new_context: Callable[..., Any], api: Callable[[str], Api], artifacts: Path) -> None:
    open_request(api("li"), "T-VISIT-1", "收银系统数据库连接失败", technician_id="near")
    board = new_context().new_page()
    board.goto("/")
    sign_in(board, "li")
    row = board.get_by_test_id("ticket-T-VISIT-1")
    expect(row).to_have_attribute("data-status", "assigned")
    expect(board.get_by_test_id("override-open-T-VISIT-1")).to_be_visible()  # D4: not accepted yet

    phone = new_context(**PHONE).new_page()
    phone.goto("/m/")
    sign_in(phone, "wang")
    visit = phone.get_by_test_id("visit-T-VISIT-1")
    expect(visit).to_contain_text("收银系统数据库连接失败")
    # where to go, though a technician may not read the customer records
    expect(phone.get_by_test_id("visit-site-T-VISIT-1")).to_contain_text("天宇贸易 · 合肥总部")
    expect(phone.get_by_test_id("visit-site-T-VISIT-1")).to_contain_text("安徽省合肥市庐阳区")
    phone.get_by_test_id("accept-T-VISIT-1").click()
    expect(phone.get_by_test_id("visit-status-T-VISIT-1")).to_have_text("已接单")
    expect(row).to_have_attribute("data-status", "accepted")  # live on the board
    # Accepted: the domain takes no override any more, so the console offers none (issue 14).
    expect(board.get_by_test_id("override-open-T-VISIT-1")).to_have_count(0)

    phone.get_by_test_id("check-in-T-VISIT-1").click()
    expect(phone.get_by_test_id("notice").filter(has_text="签到成功")).to_be_visible()  # inside the geofence
    expect(phone.get_by_test_id("queue-count")).to_have_attribute("data-count", "0")
    expect(phone.get_by_test_id("visit-status-T-VISIT-1")).to_have_text("已到场")
    expect(row).to_have_attribute("data-status", "on_site")  # the board follows, no reload
    expect(row.locator("td.clock.stopped").first).to_be_visible()  # D5: the check-in stopped the clock

    [checked_in] = phone_report(api("sun"), "T-VISIT-1", "CheckedIn")
    assert checked_in["data"]["within_geofence"] is True
    assert re.fullmatch(r"[0-9a-f-]{36}", checked_in["data"]["key"])  # the tap's own key
    assert checked_in["data"]["device_time"].endswith("+08:00")  # the tap's time with its offset
    assert checked_in["data"]["position"] == SITE

    phone.screenshot(path=str(artifacts / "mobile.png"), full_page=True)


def test_d5_d6_actions_taken_offline_upload_later_exactly_once(
        new_context: Callable[..., Any], api: Callable[[str], Api]) -> None:
    open_request(api("li"), "T-OFF-1", "机房交换机端口故障", technician_id="near")
    context = new_context(**PHONE)
    phone = context.new_page()
    phone.goto("/m/")
    sign_in(phone, "wang")
    expect(phone.get_by_test_id("visit-T-OFF-1")).to_be_visible()
    phone.wait_for_function("navigator.serviceWorker.controller !== null")  # the offline shell is in place
    assert phone.evaluate("caches.match('/m/').then((found) => found !== undefined)")

    context.set_offline(True)
    expect(phone.get_by_test_id("net-status")).to_have_text(re.compile("离线"))
    phone.get_by_test_id("expense-T-OFF-1").click()
    form = phone.get_by_test_id("expense-form-T-OFF-1")
    form.locator("select[name=kind]").select_option("meals")
    phone.get_by_test_id("expense-amount-T-OFF-1").fill("45.50")
    form.locator("input[name=receipt_no]").fill("FP-20260601")
    phone.get_by_test_id("expense-submit-T-OFF-1").click()
    expect(phone.get_by_test_id("queue-count")).to_have_attribute("data-count", "1")
    [queued] = json.loads(phone.evaluate("localStorage.getItem('weibao.m.queue')"))
    assert queued["action"] == "expenses" and queued["key"] == queued["body"]["key"]
    assert queued["body"]["device_time"].endswith("+08:00")

    phone.reload()  # the page opens offline, with its queue and its copy of the visits
    expect(phone.get_by_test_id("visit-T-OFF-1")).to_be_visible()
    expect(phone.get_by_test_id("queue-count")).to_have_attribute("data-count", "1")

    context.set_offline(False)  # back online: the queue uploads by itself
    expect(phone.get_by_test_id("queue-count")).to_have_attribute("data-count", "0")
    auditor, technician = api("sun"), api("wang")
    [recorded] = until(lambda: phone_report(auditor, "T-OFF-1", "ExpenseRecorded"))
    assert recorded["data"]["key"] == queued["key"] and recorded["data"]["amount"] == "45.50"

    # The upload's reply was lost, say: the phone sends it again with the same key.
    again = technician.post("/tickets/T-OFF-1/expenses", queued["body"], key=queued["key"])
    assert {e["position"] for e in again["events"] if e["type"] == "private.ExpenseRecorded"} == {recorded["position"]}
    assert len(phone_report(auditor, "T-OFF-1", "ExpenseRecorded")) == 1
