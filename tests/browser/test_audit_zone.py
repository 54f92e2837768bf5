"""The audit page speaks one time zone (issue 16, item 7): Beijing time, said on the page,
whatever the auditor's browser is set to. The history shows it, and the "as of" field
is read and filled in it: a New York laptop picks the same moment as a Hefei one."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.browser.conftest import sign_in
from tests.browser.world import Api, open_request

expect = pytest.importorskip("playwright.sync_api").expect


def test_the_audit_page_reads_and_shows_beijing_time_in_any_browser_zone(
        new_context: Callable[..., Any], api: Callable[[str], Api]) -> None:
    desk = api("li")
    open_request(desk, "T-ZONE-1", "财务模块凭证无法过账")
    time.sleep(1.2)  # the escalation is recorded a second later than the request, visibly so
    desk.post("/tickets/T-ZONE-1/triage", {"outcome": "escalate", "note": "远程无法连接"})
    [first] = [e for e in api("sun").get("/audit/dispatch/streams/ticket-T-ZONE-1")["events"] if e["version"] == 1]

    page = new_context(timezone_id="America/New_York").new_page()
    page.goto("/audit/")
    sign_in(page, "sun")
    expect(page.get_by_test_id("audit-zone")).to_have_text("时间均为北京时间（UTC+8）")
    expect(page.get_by_test_id("status-dispatch").locator("h3")).to_have_text("派工服务")  # services in words
    expect(page.get_by_test_id("audit-service").locator("option:checked")).to_have_text("派工服务")
    page.get_by_test_id("audit-stream").fill("ticket-T-ZONE-1")
    page.get_by_test_id("audit-show").click()
    expect(page.get_by_test_id("audit-state")).to_contain_text("awaiting_assignment")

    page.get_by_test_id("as-of-1").click()  # as of the first event: its time, rounded up to the second
    state = page.get_by_test_id("audit-state")
    expect(state).to_contain_text("triage")
    expect(state).not_to_contain_text("awaiting_assignment")
    recorded = datetime.fromisoformat(first["recorded_at"])
    rounded = recorded.replace(microsecond=0) + (timedelta(seconds=1) if recorded.microsecond else timedelta())
    beijing = rounded.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%dT%H:%M:%S")
    expect(page.get_by_test_id("audit-as-of")).to_have_value(beijing)  # not New York's wall time
    shown = recorded.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%m/%d %H:%M:%S")
    expect(page.get_by_test_id("event-1")).to_contain_text(shown)  # the table on the same clock
