"""The dispatcher console in a real browser: signing in, the language switch, the live
board (a request opened elsewhere appears without a reload, D3 triage, D4 assignment
with its explanation), the map, and the customer page."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import sign_in
from tests.browser.world import Api, open_request

expect = pytest.importorskip("playwright.sync_api").expect


def test_sign_in_refuses_a_wrong_password_and_the_language_is_remembered(new_context: Callable[..., Any]) -> None:
    page = new_context().new_page()
    page.goto("/")
    expect(page.get_by_test_id("login-form")).to_be_visible()
    page.get_by_test_id("login-username").fill("li")
    page.get_by_test_id("login-password").fill("wrong-password")
    page.get_by_test_id("login-submit").click()
    error = page.get_by_test_id("login-form").get_by_test_id("error")
    expect(error).to_contain_text("用户名或密码错误")  # the reason, in the page's language (issue 16)
    # the gateway's code, field and message stay reachable, in the box's tooltip
    expect(error).to_have_attribute("title", re.compile(r"unauthenticated · password · wrong user name"))

    page.get_by_test_id("login-password").fill("browser-secret-1")
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("user")).to_contain_text("李调度")
    expect(page.get_by_role("heading", name="待处理请求")).to_be_visible()  # Chinese by default

    page.locator("header").get_by_test_id("lang-switch").click()
    expect(page.get_by_role("heading", name="Open requests")).to_be_visible()
    page.reload()
    expect(page.get_by_role("heading", name="Open requests")).to_be_visible()  # remembered
    page.locator("header").get_by_test_id("lang-switch").click()
    expect(page.get_by_role("heading", name="待处理请求")).to_be_visible()


def test_d3_d4_a_new_request_appears_live_and_is_assigned_with_its_explanation(
        new_context: Callable[..., Any], api: Callable[[str], Api], artifacts: Path) -> None:
    page = new_context().new_page()
    page.goto("/")
    sign_in(page, "li")
    expect(page.get_by_test_id("live-status")).to_have_class(re.compile(r"\bon\b"))
    page.evaluate("window.sameDocument = true")  # gone if the page reloads

    open_request(api("li"), "T-LIVE-1", "CRM 报表打不开，月结无法完成")  # a phone call, taken elsewhere
    row = page.get_by_test_id("ticket-T-LIVE-1")
    expect(row).to_be_visible()  # over server-sent events, no reload
    expect(row).to_have_attribute("data-status", "triage")
    expect(row.locator("td.clock .countdown").first).to_have_text(re.compile(r"\d+分\d+秒"))  # ticking

    page.get_by_test_id("escalate-T-LIVE-1").click()  # D3: the phone could not solve it
    expect(row).to_have_attribute("data-status", "awaiting_assignment")
    page.get_by_test_id("assign-T-LIVE-1").click()  # D4 chooses
    explanation = page.get_by_test_id("explanation")
    expect(explanation).to_be_visible()
    expect(explanation.get_by_test_id("explanation-technician")).to_have_attribute("data-technician", "near")
    expect(explanation.get_by_test_id("explanation-reason")).to_contain_text("按规则D4")
    expect(page.get_by_test_id("candidates").locator("tbody tr")).to_have_count(3)  # everyone weighed
    expect(page.get_by_test_id("candidates").locator("tr.chosen")).to_contain_text("王强")
    expect(row).to_have_attribute("data-status", "assigned")
    expect(page.get_by_test_id("route-T-LIVE-1")).to_have_count(1)  # the map draws the trip
    assert page.evaluate("window.sameDocument") is True

    # D1: requests taken on paper and entered late; the clock announces them at risk, breached
    now = datetime.now(UTC)
    desk = api("li")
    desk.post("/tickets", {"ticket_id": "T-RISK-1", "site_id": "s-1", "summary": "ERP 登录缓慢",
                           "received_at": (now - timedelta(hours=3, minutes=30)).isoformat()})
    desk.post("/tickets", {"ticket_id": "T-LATE-1", "site_id": "s-1", "summary": "条码打印机无法打印",
                           "skill": "hardware", "received_at": (now - timedelta(hours=5)).isoformat()})
    open_request(desk, "T-ZZ-1", "代购订单同步失败", site_id="s-2")  # C15: respond and resolve in 24 h
    expect(page.get_by_test_id("ticket-T-RISK-1")).to_have_class(re.compile(r"\bat-risk\b"))
    expect(page.get_by_test_id("ticket-T-LATE-1")).to_have_class(re.compile(r"\bbreached\b"))
    expect(page.get_by_test_id("ticket-T-LATE-1").locator("td.clock.overdue")).to_have_count(1)
    expect(page.get_by_test_id("ticket-T-ZZ-1").locator("td.clock[data-due]")).to_have_count(2)
    assert page.evaluate("window.sameDocument") is True

    page.screenshot(path=str(artifacts / "board.png"), full_page=True)


def test_d4_an_override_needs_a_reason_and_shows_it(new_context: Callable[..., Any], api: Callable[[str], Api]) -> None:
    open_request(api("li"), "T-OVR-1", "打印服务无法启动", escalate=True)
    page = new_context().new_page()
    page.goto("/")
    sign_in(page, "li")
    page.get_by_test_id("assign-T-OVR-1").click()
    expect(page.get_by_test_id("explanation-technician")).to_have_attribute("data-technician", "near")

    page.get_by_test_id("override-technician").select_option("far")
    page.get_by_test_id("override-submit").click()  # no reason: the browser keeps the form
    expect(page.get_by_test_id("explanation-technician")).to_have_attribute("data-technician", "near")
    page.get_by_test_id("override-reason").fill("客户指定刘洋")
    page.get_by_test_id("override-submit").click()
    expect(page.get_by_test_id("override-warning")).to_contain_text("公里")  # far away: warned first (issue 16)
    page.get_by_test_id("override-confirm").click()
    explanation = page.get_by_test_id("explanation")
    expect(explanation.get_by_test_id("explanation-technician")).to_have_attribute("data-technician", "far")
    expect(explanation).to_contain_text("客户指定刘洋")  # the override, beside the rule's decision
    expect(explanation).to_contain_text("王强 → 刘洋")
    expect(page.get_by_test_id("ticket-T-OVR-1")).to_contain_text("刘洋")


def test_the_customer_page_shows_agreements_coverage_and_quotas(new_context: Callable[..., Any],
                                                                artifacts: Path) -> None:
    page = new_context().new_page()
    page.goto("/#customers")
    sign_in(page, "li")
    page.get_by_test_id("customer-c-2").click()
    detail = page.get_by_test_id("customer-detail")
    expect(detail).to_contain_text("中原商贸")
    expect(detail).to_contain_text("郑州门店")
    agreement = detail.get_by_test_id("agreement-a-2")
    # issue 16, item 8: the template by its name; its id (a code) only as the tooltip
    expect(agreement.locator("[title=quansousuo-purchasing]")).to_be_visible()
    expect(agreement).not_to_contain_text("quansousuo-purchasing")
    expect(agreement.get_by_test_id("coverage")).to_contain_text("保障内")  # the free first year (C1)
    expect(agreement.get_by_test_id("coverage")).to_contain_text("24小时内响应")  # C15, in a sentence
    quotas = agreement.get_by_test_id("quotas-a-2")
    expect(quotas).to_contain_text("培训名额")  # C7: one free seat
    expect(quotas).to_contain_text("安装")  # C10: one free installation
    page.screenshot(path=str(artifacts / "customer.png"), full_page=True)

    page.get_by_test_id("customer-search").fill("天宇")
    expect(page.get_by_test_id("customer-list").locator("li")).to_have_count(1)
    expect(page.get_by_test_id("customer-c-1")).to_be_visible()
