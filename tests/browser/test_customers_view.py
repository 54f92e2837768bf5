"""Issue 16, item 8: the customer page in words, in a real browser. Coverage reads as a
verdict, clauses in words (the rule id only as a tooltip) and the service levels as a
sentence (D1, C9: "本地4小时内到场，外地2天内"); an agreement whose free year ended unpaid
(C1, C2) is badged lapsed with a renewal cue that takes billing to the customer's
invoices; the customer links to its requests (the board, filtered) and its invoices (the
list, filtered). The new-request form groups sites by customer, and offers channels and
skills in Chinese with the API's codes as the values."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import sign_in
from tests.browser.world import HEFEI_OFFICE, SITE, Api, open_request, until
from weibao.shared.clock import CHINA

expect = pytest.importorskip("playwright.sync_api").expect

# Codes the API speaks that must never reach the Chinese screen (issue 16).
RAW = ("covered", "billable", "excluded", "software:general", "yizhuo-crm-maintenance", "xxx-software-service",
       "phone", "active", "lapsed", "clock", "working")


def no_codes(text: str) -> None:
    for code in RAW:
        assert not re.search(rf"(?<![\w:-]){re.escape(code)}(?![\w:-])", text), (code, text)


def test_c9_d1_coverage_reads_in_words_and_the_customer_links_to_its_requests(
        new_context: Callable[..., Any], api: Callable[[str], Api]) -> None:
    desk = api("li")
    open_request(desk, "T-CUST-1", "天宇：打印服务停止")
    open_request(desk, "T-CUST-2", "中原：报表导出乱码", site_id="s-2")
    page = new_context().new_page()
    page.goto("/#customers")
    sign_in(page, "li")
    page.get_by_test_id("customer-c-1").click()
    detail = page.get_by_test_id("customer-detail")
    agreement = detail.get_by_test_id("agreement-a-1")
    expect(agreement.get_by_test_id("agreement-state-a-1")).to_have_text("生效")
    coverage = agreement.get_by_test_id("coverage")
    expect(coverage.get_by_test_id("coverage-verdict")).to_contain_text("保障内")  # the free first year (C1)
    expect(coverage.get_by_test_id("coverage-verdict")).to_contain_text("免费服务期")
    # today's fault on a local site: the local deadline (C9, D1), in a sentence
    expect(coverage.get_by_test_id("coverage-sla")).to_contain_text("4小时内到场")
    # the agreement's terms: C9 with the signature's 4 hours local, 2 days out of town
    expect(agreement.get_by_test_id("terms-a-1")).to_contain_text("本地4小时内到场，外地2天内")
    clauses = coverage.get_by_test_id("coverage-clauses").locator(".clause")
    expect(clauses.first).to_be_visible()
    for clause in clauses.all():  # words on the screen, the rule id as the tooltip only
        rule = clause.get_attribute("title") or ""
        assert re.fullmatch(r"[BCD]\d{1,2}", rule), rule
        assert rule not in clause.inner_text()
    no_codes(detail.inner_text())
    expect(detail.get_by_test_id("customer-invoices")).to_have_count(0)  # a dispatcher has no invoices view

    # the customer's requests: the board, filtered to it (GET /tickets?customer_id=)
    detail.get_by_test_id("customer-requests").click()
    expect(page.get_by_test_id("view-board")).to_be_visible()
    expect(page.get_by_test_id("board-filter")).to_contain_text("天宇贸易")
    expect(page.get_by_test_id("ticket-T-CUST-1")).to_be_visible()
    expect(page.get_by_test_id("ticket-T-CUST-2")).to_have_count(0)
    page.get_by_test_id("board-filter-clear").click()
    expect(page.get_by_test_id("ticket-T-CUST-2")).to_be_visible()
    expect(page.get_by_test_id("board-filter")).to_be_hidden()

    # the new-request form: sites under their customer, channels and skills in Chinese
    page.get_by_test_id("new-ticket").click()
    form = page.get_by_test_id("new-ticket-form")
    site = form.get_by_test_id("new-ticket-site")
    expect(site.locator("optgroup[label=天宇贸易] option[value=s-1]")).to_have_text("合肥总部")
    expect(site.locator("optgroup[label=中原商贸] option[value=s-2]")).to_have_text("郑州门店")
    channel = form.get_by_test_id("new-ticket-channel")
    expect(channel.locator("option[value=phone]")).to_have_text("电话")
    skill = form.get_by_test_id("new-ticket-skill")
    expect(skill).to_have_value("software:general")  # NewTicket's default, as the value the API takes
    expect(skill.locator("option[value='software:general']")).to_have_text("通用软件")
    expect(skill.locator("option[value=network]")).to_have_text("网络")  # 陈静's skill (D4)
    no_codes(" ".join(channel.locator("option").all_text_contents() + skill.locator("option").all_text_contents()))
    skill.select_option(label="硬件")
    site.select_option("s-1")
    form.get_by_test_id("new-ticket-summary").fill("收银机主板故障")
    form.locator("input[name=ticket_id]").fill("T-CUST-3")
    form.get_by_test_id("new-ticket-submit").click()
    until(lambda: any(row["ticket_id"] == "T-CUST-3" and row["skill"] == "hardware"
                      for row in desk.get("/tickets", customer_id="c-1", status="open")["items"]))


def test_c1_c2_a_lapsed_agreement_is_badged_with_its_renewal_and_links_to_the_invoices(
        new_context: Callable[..., Any], api: Callable[[str], Api], artifacts: Path) -> None:
    clerk = api("zhao")
    went_live = (datetime.now(CHINA).date() - timedelta(days=400)).isoformat()  # the free year is over (C1)
    clerk.post("/customers", {"customer_id": "c-9", "name": "江淮仪表", "sites": [
        {"site_id": "s-9", "name": "合肥工厂", "address": "安徽省合肥市包河区", **SITE}]})
    clerk.post("/agreements", {"agreement_id": "a-9", "customer_id": "c-9", "template_id": "xxx-software-service",
                               "go_live": went_live, "office": HEFEI_OFFICE, "site_ids": ["s-9"]})
    root = api("root")
    amended_on = (datetime.now(CHINA).date() - timedelta(days=100)).isoformat()
    root.post("/agreements/a-9/amendments", {"parameters": {}, "effective_on": amended_on, "reason": "补签服务条款"})
    root.post("/agreements/a-9/assessment", {})  # the daily check, run now: no fee paid (C2)
    lapsed = until(lambda: clerk.get("/customers/c-9/overview")["agreements"][0]["lapsed_on"])

    page = new_context().new_page()
    page.goto("/#customers")
    sign_in(page, "zhao")
    page.get_by_test_id("customer-c-9").click()
    detail = page.get_by_test_id("customer-detail")
    expect(detail.get_by_test_id("agreement-state-a-9")).to_have_text("已失效")
    renewal = detail.get_by_test_id("renewal-a-9")
    expect(renewal).to_contain_text(f"已于 {lapsed} 失效，续费后恢复服务")
    expect(detail.get_by_test_id("coverage-verdict")).to_contain_text("收费")  # B3: outside coverage
    # the amendment, by its day and reason, under the agreement's terms
    expect(detail.get_by_test_id("amendments-a-9")).to_contain_text(f"{amended_on} 起：补签服务条款")
    no_codes(detail.inner_text())
    page.screenshot(path=str(artifacts / "customers.png"), full_page=True)

    # the renewal cue takes the clerk to the customer's invoices (GET /invoices?customer_id=)
    renewal.get_by_test_id("renew-a-9").click()
    expect(page.get_by_test_id("view-invoices")).to_be_visible()
    expect(page.get_by_test_id("invoice-customer")).to_have_value("c-9")

    # and so does the customer's own link, from the customer page
    page.get_by_test_id("invoice-customer").select_option("")
    page.get_by_test_id("tab-customers").click()
    page.get_by_test_id("customer-c-1").click()
    expect(page.get_by_test_id("agreement-a-1")).to_be_visible()  # c-1's page, not c-9's still shown
    page.get_by_test_id("customer-detail").get_by_test_id("customer-invoices").click()
    expect(page.get_by_test_id("view-invoices")).to_be_visible()
    expect(page.get_by_test_id("invoice-customer")).to_have_value("c-1")

    page.get_by_test_id("lang-switch").click()  # English second: the same page in English words
    page.get_by_test_id("tab-customers").click()
    page.get_by_test_id("customer-c-9").click()
    expect(page.get_by_test_id("agreement-a-9")).to_be_visible()
    expect(page.get_by_test_id("agreement-state-a-9")).to_have_text("lapsed")
    expect(page.get_by_test_id("renewal-a-9")).to_contain_text(f"Lapsed on {lapsed}")
