"""The phone in a machine room (rule D5; issue 16, item 9): a link that opens the phone's map app
at the site (a geo: URI, RFC 5870), and notices that never lie over a form being filled
in: they take their own room below the visits, which shrink instead."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from tests.browser.conftest import sign_in
from tests.browser.test_mobile import PHONE
from tests.browser.world import SITE, Api, open_request

expect = pytest.importorskip("playwright.sync_api").expect


def _overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return (a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"]
            and a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"])


def test_the_visit_links_to_the_phone_s_map_app_at_the_site(
        new_context: Callable[..., Any], api: Callable[[str], Api]) -> None:
    open_request(api("li"), "T-NAV-1", "收银系统数据库连接失败", technician_id="near")
    phone = new_context(**PHONE).new_page()
    phone.goto("/m/")
    sign_in(phone, "wang")
    link = phone.get_by_test_id("navigate-T-NAV-1")
    expect(link).to_have_text("导航到现场")
    href = unquote(link.get_attribute("href") or "")
    point = f"{SITE['latitude']:.6f},{SITE['longitude']:.6f}"
    assert href.startswith(f"geo:{point}?q={point}(")  # where the map app centres and what it marks
    assert href.endswith("天宇贸易 合肥总部)")  # the site named in words, not by its id


def test_a_notice_never_covers_the_form_being_filled_in(
        new_context: Callable[..., Any], api: Callable[[str], Api], artifacts: Path) -> None:
    open_request(api("li"), "T-NOTE-1", "机房交换机端口故障", technician_id="near")
    phone = new_context(**PHONE).new_page()
    phone.goto("/m/")
    sign_in(phone, "wang")
    phone.get_by_test_id("accept-T-NOTE-1").click()
    expect(phone.get_by_test_id("queue-count")).to_have_attribute("data-count", "0")
    phone.get_by_test_id("check-in-T-NOTE-1").click()
    expect(phone.get_by_test_id("visit-status-T-NOTE-1")).to_have_text("已到场")
    phone.get_by_test_id("expense-T-NOTE-1").click()  # the expense form opens
    amount = phone.get_by_test_id("expense-amount-T-NOTE-1")
    amount.fill("88.50")
    phone.get_by_test_id("expense-submit-T-NOTE-1").click()
    notice = phone.get_by_test_id("notice").first
    expect(notice).to_be_visible()
    phone.screenshot(path=str(artifacts / "mobile-notice.png"))

    visible_main = phone.locator("main").bounding_box()
    notice_box = notice.bounding_box()
    assert visible_main is not None and notice_box is not None
    assert not _overlap(visible_main, notice_box)  # the notices have their own room
    for field in phone.locator("main form input, main form select, main form button").all():
        box = field.bounding_box()
        if box is not None and field.is_visible():
            assert not _overlap(box, notice_box) or not _overlap(box, visible_main), box
