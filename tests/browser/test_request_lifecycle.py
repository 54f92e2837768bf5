"""Issue 13 in the dispatcher console, in a real browser: a request opened through the form
with its cause, priority and product; the detail panel shows them, the coverage with its
clauses and penalty, and the SLA milestones in Chinese; the desk records a call back (the
response clock met, C15), corrects the classification and logs remote work; each status
time shows the clock it came from, the upload delay and why a phone's time was not
believed (D5). No vocabulary code reaches the Chinese screen."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import sign_in
from tests.browser.world import SITE_2, Api
from weibao.shared.clock import CHINA

expect = pytest.importorskip("playwright.sync_api").expect

# Codes the API carries that the Chinese panel must show only through their labels.
RAW_CODES = ("virus_cleanup", "software_fault", "call_back", "remote_session", "urgent", "high", "device", "server",
             "before_assignment", "future", "on_track", "at_risk", "breached", "covered", "parallel_run", "respond",
             "resolve", "software:general", "None", "null", "undefined")


def raw_codes_in(text: str) -> list[str]:
    return [code for code in RAW_CODES if re.search(rf"(?<![A-Za-z_]){re.escape(code)}(?![A-Za-z_])", text)]


def test_issue13_cause_priority_milestones_and_each_status_times_source(
        new_context: Callable[..., Any], api: Callable[[str], Api], artifacts: Path) -> None:
    page = new_context().new_page()
    page.goto("/")
    sign_in(page, "li")
    expect(page.get_by_test_id("live-status")).to_have_class(re.compile(r"\bon\b"))

    open_through_the_form(page)
    detail = page.get_by_test_id("detail")
    shows_cause_coverage_and_milestones(detail)
    call_back_and_correct_the_priority(page, detail)
    each_status_time_with_its_clock(page, detail, api("li"), api("wang"))
    remote_work_from_the_desk(page, detail)

    page.screenshot(path=str(artifacts / "request-lifecycle.png"), full_page=True)
    shown = detail.inner_text()
    assert not raw_codes_in(shown), (raw_codes_in(shown), shown)

    # The same panel in English, from the same vocabularies.
    page.locator("header").get_by_test_id("lang-switch").click()
    expect(detail.get_by_test_id("detail-cause")).to_have_text("virus clean-up")
    expect(detail.get_by_test_id("time-checked_in")).to_contain_text("device time")
    expect(detail.get_by_test_id("milestone-respond")).to_contain_text("met")
    page.locator("header").get_by_test_id("lang-switch").click()
    expect(detail.get_by_test_id("detail-cause")).to_have_text("病毒清除")


def open_through_the_form(page: Any) -> None:
    """The phone call, entered through the form: a virus, urgent, on a named machine (C12, C15)."""
    page.get_by_test_id("new-ticket").click()
    form = page.get_by_test_id("new-ticket-form")
    form.locator("input[name=ticket_id]").fill("T-LIFE-1")
    page.get_by_test_id("new-ticket-site").select_option("s-2")
    page.get_by_test_id("new-ticket-summary").fill("采购系统中毒，订单无法提交")
    expect(page.get_by_test_id("new-ticket-cause").locator("option[value=virus_cleanup]")).to_have_text("病毒清除")
    page.get_by_test_id("new-ticket-cause").select_option(label="病毒清除")
    page.get_by_test_id("new-ticket-priority").select_option(label="紧急")
    expect(page.get_by_test_id("new-ticket-phase").locator("option:checked")).to_have_text("不分阶段")
    page.get_by_test_id("new-ticket-product").fill("全搜索采购平台")
    page.get_by_test_id("new-ticket-serial").fill("QSS-2026-0815")
    page.get_by_test_id("new-ticket-submit").click()

    row = page.get_by_test_id("ticket-T-LIFE-1")
    expect(row).to_be_visible()
    expect(row.get_by_test_id("priority-T-LIFE-1")).to_have_text("紧急")  # marked on the board
    expect(row.get_by_test_id("priority-T-LIFE-1")).to_have_class(re.compile(r"\bpriority-urgent\b"))
    expect(row.locator("td.summary small")).to_contain_text("病毒清除")


def shows_cause_coverage_and_milestones(detail: Any) -> None:
    expect(detail).to_contain_text("T-LIFE-1")
    expect(detail.get_by_test_id("detail-cause")).to_have_text("病毒清除")
    expect(detail.get_by_test_id("detail-priority")).to_have_text("紧急")
    expect(detail.get_by_test_id("detail-phase")).to_have_text("不分阶段")
    expect(detail.get_by_test_id("detail-product")).to_have_text("全搜索采购平台 / QSS-2026-0815")
    expect(detail.get_by_test_id("detail-verdict")).to_contain_text("保障内")
    expect(detail.get_by_test_id("detail-clauses").locator(".clause").first).to_be_visible()  # e.g. C1, C12
    expect(detail.get_by_test_id("detail-penalty")).to_have_text("适用")
    respond = detail.get_by_test_id("milestone-respond")
    expect(respond).to_contain_text("响应")
    expect(respond).to_contain_text("进行中")
    expect(respond.locator(".countdown")).to_have_text(re.compile(r"\d+小时\d+分\d+秒"))  # ticking
    expect(detail.get_by_test_id("milestone-resolve")).to_contain_text("解决")


def call_back_and_correct_the_priority(page: Any, detail: Any) -> None:
    # rule C15: a call back is the first response; the response clock stops, met.
    respond = detail.get_by_test_id("milestone-respond")
    detail.get_by_test_id("respond").locator("summary").click()
    expect(detail.get_by_test_id("respond-kind").locator("option:checked")).to_have_text("电话回访")
    detail.get_by_test_id("respond-note").fill("已回电，指导客户断网并隔离中毒电脑")
    detail.get_by_test_id("respond-submit").click()
    expect(respond).to_have_attribute("data-status", "met")
    expect(respond).to_contain_text("已达成")
    expect(detail.get_by_test_id("milestone-resolve")).to_have_attribute("data-status", "on_track")

    # The priority corrected, with the reason (what is not chosen stays).
    detail.get_by_test_id("reclassify").locator("summary").click()
    detail.get_by_test_id("reclassify-priority").select_option(label="高")
    detail.get_by_test_id("reclassify-reason").fill("客户已恢复大部分业务")
    detail.get_by_test_id("reclassify-submit").click()
    expect(detail.get_by_test_id("detail-priority")).to_have_text("高")
    expect(detail.get_by_test_id("detail-cause")).to_have_text("病毒清除")
    expect(page.get_by_test_id("ticket-T-LIFE-1").get_by_test_id("priority-T-LIFE-1")).to_have_text("高")


def each_status_time_with_its_clock(page: Any, detail: Any, desk: Api, phone: Api) -> None:
    """A visit after all: escalated here, assigned to 王强, whose phone reports later (D5)."""
    row = page.get_by_test_id("ticket-T-LIFE-1")
    detail.get_by_test_id("triage-note").fill("需现场清除")
    detail.get_by_test_id("detail-escalate").click()
    expect(row).to_have_attribute("data-status", "awaiting_assignment")
    desk.post("/tickets/T-LIFE-1/assignment", {"technician_id": "near", "reason": "王强熟悉该系统"})
    assigned_at = desk.get("/tickets/T-LIFE-1")["assignment"]["at"]
    # The acceptance carries a phone time from before the visit was assigned: not believed.
    phone.post("/tickets/T-LIFE-1/acceptance",
               {"device_time": (datetime.now(CHINA) - timedelta(hours=6)).isoformat()})
    accepted = detail.get_by_test_id("time-accepted")
    expect(accepted).to_have_attribute("data-source", "server")
    expect(accepted).to_contain_text("接单")
    expect(accepted).to_contain_text("服务器时间")
    expect(accepted).to_contain_text("早于派工")
    expect(accepted).to_contain_text("上传延迟 6小时0分")

    # The check-in, made when the visit reached the phone and uploaded later: the phone's time counts.
    key = uuid.uuid4().hex
    phone.post("/tickets/T-LIFE-1/check-in", {"key": key, "device_time": assigned_at, "position": SITE_2,
                                              "accuracy_m": 10}, key=key)
    checked_in = detail.get_by_test_id("time-checked_in")
    expect(checked_in).to_have_attribute("data-source", "device")
    expect(checked_in).to_contain_text("签到")
    expect(checked_in).to_contain_text("设备时间")
    expect(checked_in).to_contain_text(re.compile(r"上传延迟 \d+(秒|分)"))
    expect(checked_in).not_to_contain_text("早于派工")
    expect(row).to_have_attribute("data-status", "on_site")


def remote_work_from_the_desk(page: Any, detail: Any) -> None:
    """Remote work from the desk, logged while the visit goes on (issue 13)."""
    detail.get_by_test_id("desk-work").locator("summary").click()
    expect(detail.get_by_test_id("desk-started")).not_to_have_value("")  # the last half hour, from the request on
    detail.get_by_test_id("desk-channel").select_option(label="远程")
    detail.get_by_test_id("desk-note").fill("远程检查杀毒软件病毒库")
    detail.get_by_test_id("desk-work-submit").click()
    expect(page.locator("#messages")).to_contain_text("已记录工作")
    expect(detail.get_by_test_id("desk-work")).not_to_have_attribute("open", "")
