"""Rule C4 through the HTTP API end to end (issue 13): two hardware work records on one
calendar day (09-12 and 13-17) bill one hardware day, not two; a record on the next day
bills a second one."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.dispatch.test_command_schemas import CHECK_IN
from tests.dispatch.test_desk import billed_lines
from tests.gateway.backends import any_gateway
from tests.gateway.conftest import Gateway
from tests.gateway.test_api import PHONE_TIME, post, set_up
from tests.helpers import eventually

__all__ = ["any_gateway"]  # the fixture, imported for pytest to find


def hardware(key: str, started: str, ended: str) -> dict[str, str]:
    return {"key": key, "device_time": PHONE_TIME, "kind": "hardware", "started": started, "ended": ended}


async def test_c4_two_records_on_one_day_bill_one_day_through_the_api(
        any_gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    gateway = any_gateway
    await set_up(gateway)  # 天宇贸易 under [1]: hardware work at 800 yuan a day (C4)
    async with await gateway.as_user("li") as li, await gateway.as_user("near") as near, \
            await gateway.as_user("qian") as qian:
        await post(li, "/tickets/t-1/triage", {"outcome": "escalate", "note": "服务器硬盘告警，需上门"})
        await post(li, "/tickets/t-1/assignment", {"technician_id": "near", "reason": "就近"})
        await post(near, "/tickets/t-1/check-in", CHECK_IN)
        monkeypatch.setenv("WEIBAO_NOW", "2026-06-02T12:00:00+00:00")  # the next evening in Hefei: all done
        await post(near, "/tickets/t-1/work", hardware("hw-record-1", "2026-06-01T09:00:00+08:00",
                                                       "2026-06-01T12:00:00+08:00"))
        await post(near, "/tickets/t-1/work", hardware("hw-record-2", "2026-06-01T13:00:00+08:00",
                                                       "2026-06-01T17:00:00+08:00"))
        await post(near, "/tickets/t-1/work", hardware("hw-record-3", "2026-06-02T09:00:00+08:00",
                                                       "2026-06-02T10:30:00+08:00"))

        async def two_days() -> bool:  # the third record's day is the last to be billed
            lines = [line for line in await billed_lines(qian, "c-1") if line["kind"] == "hardware_days"]
            return sum(Decimal(line["quantity"]) for line in lines) >= 2

        await eventually(two_days)
        lines = [line for line in await billed_lines(qian, "c-1") if line["kind"] == "hardware_days"]
        assert [(Decimal(line["quantity"]), line["unit_price"]) for line in lines] == [
            (Decimal(1), "800.00"), (Decimal(1), "800.00")], lines  # 06-01 once, 06-02 once
        assert all("C4" in line["clauses"] for line in lines)
