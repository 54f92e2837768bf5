"""More of the dispatcher console in a real browser: a request assigned elsewhere (or
earlier) shows why its technician was chosen when opened (D4, from the ticket query);
the board follows the pages of open requests past the gateway's 200 a page, up to a cap
it names; an export the gateway refuses says why beside its buttons and downloads
nothing."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from tests.browser.conftest import sign_in
from tests.browser.world import Api, open_request, until

expect = pytest.importorskip("playwright.sync_api").expect


def test_d4_a_ticket_assigned_earlier_shows_its_explanation_when_opened(
        new_context: Callable[..., Any], api: Callable[[str], Api], artifacts: Path) -> None:
    desk = api("li")
    open_request(desk, "T-WHY-1", "OA 审批流卡住", escalate=True)
    desk.post("/tickets/T-WHY-1/assignment", {})  # by rule D4, outside this browser
    open_request(desk, "T-WHY-2", "备份任务失败", technician_id="far")  # an override, with its reason

    page = new_context().new_page()
    page.goto("/")
    sign_in(page, "li")
    page.get_by_test_id("ticket-T-WHY-1").locator("td.summary").click()
    explanation = page.get_by_test_id("explanation")
    expect(explanation).to_be_visible()
    expect(explanation).to_contain_text("T-WHY-1")
    expect(explanation.get_by_test_id("explanation-technician")).to_have_attribute("data-technician", "near")
    expect(explanation.get_by_test_id("explanation-reason")).to_contain_text("按规则D4")
    expect(page.get_by_test_id("candidates").locator("tbody tr")).to_have_count(3)  # everyone weighed
    expect(page.get_by_test_id("candidates").locator("tr.chosen")).to_contain_text("王强")
    expect(explanation.get_by_test_id("explanation-by")).to_have_text("李调度")  # by whom, by name

    page.get_by_test_id("ticket-T-WHY-2").locator("td.summary").click()
    explanation = page.get_by_test_id("explanation")
    expect(explanation).to_contain_text("T-WHY-2")
    expect(explanation.get_by_test_id("explanation-technician")).to_have_attribute("data-technician", "far")
    expect(explanation).to_contain_text("熟悉该客户")  # the override's reason
    expect(explanation).to_contain_text("王强 → 刘洋")
    page.screenshot(path=str(artifacts / "explanation-later.png"), full_page=True)

    # The technician declines and dispatch assigns again (D4): the open panel follows the live
    # board and explains the new choice.
    page.get_by_test_id("ticket-T-WHY-1").locator("td.summary").click()
    expect(page.get_by_test_id("explanation-technician")).to_have_attribute("data-technician", "near")
    api("wang").post("/tickets/T-WHY-1/decline", {"reason": "另有急单"})
    expect(page.get_by_test_id("ticket-T-WHY-1").locator("td.technician")).to_have_text("刘洋")
    explanation = page.get_by_test_id("explanation")
    expect(explanation.get_by_test_id("explanation-technician")).to_have_attribute("data-technician", "far")
    expect(explanation).to_contain_text("T-WHY-1")
    expect(page.get_by_test_id("explanation-superseded")).to_have_count(0)

    # The auditor's "state as of" reads the same ticket query.
    assert api("sun").get("/tickets/T-WHY-2")["assignment"]["override_reason"] == "熟悉该客户"


def _row(n: int) -> dict[str, Any]:
    return {"ticket_id": f"T-PAGE-{n:04d}", "customer_id": "c-1", "site_id": "s-1", "summary": f"请求 {n}",
            "channel": "phone", "skill": "software:general", "status": "triage",
            "opened_at": "2026-06-01T01:00:00+00:00",
            "latitude": 31.865, "longitude": 117.283, "agreement_id": None, "verdict": "billable", "local": True,
            "technician_id": None, "respond_by": None, "arrive_by": None, "resolve_by": None, "next_due": None,
            "at_risk": [], "breached": [], "stopped": [], "paused": False, "checked_in_at": None}


@pytest.mark.parametrize(("total", "shown"), [(450, 450), (2300, 2000)])
def test_the_board_follows_the_pages_up_to_its_cap(new_context: Callable[..., Any], total: int, shown: int) -> None:
    """The gateway's own paging (limit at most 200, `next_offset`), played by the browser's
    router so the board can hold thousands of rows without opening thousands of requests."""
    asked: list[tuple[int, int]] = []

    def pages(route: Any) -> None:
        found = parse_qs(urlparse(route.request.url).query)
        limit, offset = int(found["limit"][0]), int(found.get("offset", ["0"])[0])
        assert found["status"] == ["open"] and 1 <= limit <= 200
        asked.append((offset, limit))
        end = min(offset + limit, total)
        body = {"items": [_row(n) for n in range(offset, end)], "total": total,
                "next_offset": end if end < total else None}
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    page = new_context().new_page()
    page.route(re.compile(r".*/api/v1/tickets\?.*"), pages)
    page.goto("/")
    sign_in(page, "li")
    expect(page.locator("#board-rows tr[data-ticket]")).to_have_count(shown)
    expect(page.get_by_test_id(f"ticket-T-PAGE-{shown - 1:04d}")).to_be_attached()
    count = page.locator("#board-count")
    expect(count).to_contain_text(f"{total} 个未结请求")
    if shown < total:
        expect(count).to_contain_text(f"仅显示 {shown} / {total}")  # capped, and says so
    else:
        expect(count).not_to_contain_text("仅显示")
    first = asked[: -(-shown // 200)]  # the first load: one request a page, in order
    assert [offset for offset, _ in first] == list(range(0, shown, 200))


def test_a_refused_export_says_why_and_downloads_nothing(new_context: Callable[..., Any],
                                                         api: Callable[[str], Api], artifacts: Path) -> None:
    page = new_context().new_page()
    downloads: list[Any] = []
    def saved(download: Any) -> None:  # Playwright takes a Python function, not a bound builtin
        downloads.append(download)

    page.on("download", saved)
    page.goto("/#invoices")
    sign_in(page, "zhao")
    refusal = api("zhao").http.get("/exports/invoice-lines", params={"format": "csv", "period_from": "12345-01"})
    assert refusal.status_code == 422  # what the browser would have saved as the file

    page.get_by_test_id("invoice-period").fill("12345-01")  # a month input takes years past 9999
    page.get_by_test_id("invoice-period").dispatch_event("change")
    expect(page.get_by_test_id("export-list-csv")).to_have_attribute("href", re.compile(r"period_from=12345-01"))
    page.get_by_test_id("export-list-csv").click()
    error = page.get_by_test_id("export-list-error")
    expect(error).to_contain_text("起始账期")  # the field's label, in the page's language (issue 16)
    expect(error).to_contain_text("填写的内容无效")
    # the gateway's field and English message stay reachable, in the box's tooltip
    expect(error.get_by_test_id("error")).to_have_attribute("title", re.compile(
        re.escape(f"period_from · {refusal.json()['error']['message']}")))
    page.get_by_test_id("export-list-xlsx").click()
    expect(error.get_by_test_id("error")).to_have_count(1)  # said once, not piled up
    page.wait_for_timeout(1000)
    assert downloads == []
    page.screenshot(path=str(artifacts / "export-refused.png"))

    # A filter the gateway takes: the message goes, the file comes (by the sign-in cookie).
    page.get_by_test_id("invoice-period").fill("")
    page.get_by_test_id("invoice-period").dispatch_event("change")
    expect(page.get_by_test_id("export-list-json")).not_to_have_attribute("href", re.compile(r"period_from"))
    with page.expect_download() as downloaded:
        page.get_by_test_id("export-list-json").click()
    assert isinstance(json.loads(downloaded.value.path().read_text(encoding="utf-8")), list)
    expect(page.get_by_test_id("export-list-error")).to_be_empty()
    until(lambda: len(downloads) == 1, timeout=5)
