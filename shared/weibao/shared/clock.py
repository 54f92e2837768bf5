"""The services' clocks, read at the edge only (domains get time with their commands).

The vendors' offices are in China: "today" is Beijing time's date whatever the host's
zone. WEIBAO_TODAY and WEIBAO_NOW pin the clocks for demos and tests."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from weibao.shared.settings import pinned

CHINA = ZoneInfo("Asia/Shanghai")


def china_today() -> date:
    fixed = pinned("WEIBAO_TODAY")
    return date.fromisoformat(fixed) if fixed else datetime.now(CHINA).date()


def utc_now() -> datetime:
    fixed = pinned("WEIBAO_NOW")
    return datetime.fromisoformat(fixed) if fixed else datetime.now(UTC)
