"""The phone's time (issue 13, item 4; rule D5) in a real browser: the page counts an
action's device_time from the server's time at its last sync plus its monotonic clock
since, so setting the phone's clock back does not move it. Set three hours back, the
phone's own clock would put the acceptance before the visit was assigned (flagged and
judged by the server's time); the page's time counts instead."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

import pytest

from tests.browser.conftest import sign_in
from tests.browser.test_mobile import PHONE, phone_report
from tests.browser.world import Api, open_request, until

expect = pytest.importorskip("playwright.sync_api").expect


def test_d5_setting_the_phone_s_clock_back_does_not_move_its_device_time(
        new_context: Callable[..., Any], api: Callable[[str], Api]) -> None:
    open_request(api("li"), "T-CLOCK-1", "收银系统数据库连接失败", technician_id="near")
    phone = new_context(**PHONE).new_page()
    phone.clock.install()  # the phone's clocks, running as before, so the test can set the wall clock
    phone.goto("/m/")
    sign_in(phone, "wang")
    expect(phone.get_by_test_id("visit-T-CLOCK-1")).to_be_visible()  # the visit came with the server's time

    phone.clock.set_system_time(datetime.now() - timedelta(hours=3))  # the technician sets the clock back
    [assigned] = phone_report(api("sun"), "T-CLOCK-1", "VisitAssigned")
    # the phone's own clock now reads before the visit was assigned: by it, the tap would be flagged
    assert phone.evaluate("Date.now()") / 1000 < datetime.fromisoformat(assigned["data"]["at"]).timestamp()
    phone.get_by_test_id("accept-T-CLOCK-1").click()
    expect(phone.get_by_test_id("queue-count")).to_have_attribute("data-count", "0")

    [accepted] = until(lambda: phone_report(api("sun"), "T-CLOCK-1", "VisitAccepted"))
    data = accepted["data"]
    assert data["device_time"].endswith("+08:00")  # the tap's time, with the phone's offset
    # within the visit's assignment and the upload: the page's time counted, not flagged
    assert (data["time_source"], data["time_flag"]) == ("device", None)


def test_d5_the_phone_counts_from_the_server_s_millisecond_clock_not_the_date_header(
        new_context: Callable[..., Any], api: Callable[[str], Api]) -> None:
    """The Date header is to the second, cut down: counted from it, a tap within a second
    of the assignment fell before it (flagged, judged by the server's time). Here a proxy
    puts every answer's Date an hour early, and the phone's own clock is three hours
    behind: only the Weibao-Server-Time header gives the tap a time after the assignment."""
    open_request(api("li"), "T-CLOCK-2", "收银系统数据库连接失败", technician_id="near")
    phone = new_context(**PHONE).new_page()

    def date_an_hour_early(route: Any) -> None:
        answer = route.fetch()
        headers = dict(answer.headers)
        if "date" in headers:
            early = parsedate_to_datetime(headers["date"]) - timedelta(hours=1)
            headers["date"] = format_datetime(early, usegmt=True)
        route.fulfill(response=answer, headers=headers)

    # every answer but the live stream (a route's fetch waits for the whole body)
    phone.route(lambda url: "/api/v1/" in url and not url.endswith("/live"), date_an_hour_early)
    phone.clock.install(time=datetime.now() - timedelta(hours=3))
    phone.goto("/m/")
    sign_in(phone, "wang")
    expect(phone.get_by_test_id("visit-T-CLOCK-2")).to_be_visible()
    phone.get_by_test_id("accept-T-CLOCK-2").click()
    expect(phone.get_by_test_id("queue-count")).to_have_attribute("data-count", "0")
    phone.unroute_all(behavior="ignoreErrors")

    [assigned] = phone_report(api("sun"), "T-CLOCK-2", "VisitAssigned")
    [accepted] = until(lambda: phone_report(api("sun"), "T-CLOCK-2", "VisitAccepted"))
    data = accepted["data"]
    assert (data["time_source"], data["time_flag"]) == ("device", None)
    assert datetime.fromisoformat(data["device_time"]) >= datetime.fromisoformat(assigned["data"]["at"])
