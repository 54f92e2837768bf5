"""The deadline clock touches only what is due (rule D1; issue 15): each turn ticks the
requests whose next deadline news has come (the board's `next_check`, from the domain's
`next_evaluation`), not every open request; so an idle dispatch does no work per open
request, and each fact is still announced, once."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from nats.aio.client import Client as NATS

from tests.dispatch.conftest import ask, ok, set_up_customer_and_crew
from tests.helpers import eventually, stream_messages
from weibao.dispatch.application.tickets import Tickets
from weibao.dispatch.entrypoints import endpoints

TICKETS = [f"t-{n}" for n in range(5)]


@pytest.fixture
def turns(monkeypatch: pytest.MonkeyPatch) -> dict[str, Counter[str]]:
    """Counts, as the service runs: the clock's turns and each ticket's ticks."""
    seen: dict[str, Counter[str]] = {"turns": Counter(), "ticks": Counter()}
    tick, look = Tickets.tick, endpoints.find_missing_coverage

    async def counted_tick(self: Tickets, ticket_id: str) -> Any:
        seen["ticks"][ticket_id] += 1
        return await tick(self, ticket_id)

    async def counted_turn(*args: Any) -> None:  # the last step of every turn
        seen["turns"]["all"] += 1
        await look(*args)

    monkeypatch.setattr(Tickets, "tick", counted_tick)
    monkeypatch.setattr(endpoints, "find_missing_coverage", counted_turn)
    return seen


async def rows(nc: NATS) -> dict[str, dict[str, Any]]:
    answer = await ok(nc, "dispatch.tickets", {"status": "all", "limit": 200})
    return {row["ticket_id"]: row for row in answer["result"]["items"]}


async def at_risk(nc: NATS) -> Counter[str]:
    """How many times each request was announced at risk."""
    return Counter(body["data"]["ticket_id"] for _, headers, body in await stream_messages(nc, "dispatch")
                   if headers.get("Weibao-Type") == "SlaAtRisk" and isinstance(body, dict))


async def whole_turns(seen: dict[str, Counter[str]], count: int) -> None:
    """Wait until the clock has finished `count` more turns than now."""
    target = seen["turns"]["all"] + count + 1  # +1: the turn under way may have begun before

    async def done() -> bool:
        return seen["turns"]["all"] >= target

    await eventually(done)


async def test_d1_the_clock_ticks_only_requests_whose_deadline_news_is_due(
        services: None, nc: NATS, turns: dict[str, Counter[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    await set_up_customer_and_crew(nc)
    for ticket_id in TICKETS:  # 09:00: on site by 13:00 (C9), at risk from 12:12
        await ok(nc, "dispatch.ticket.open", {"ticket_id": ticket_id, "site_id": "s-1", "summary": "数据库连接失败"})

    async def scheduled() -> bool:
        board = await rows(nc)
        return all(board.get(t, {}).get("next_check") for t in TICKETS)

    await eventually(scheduled)
    await whole_turns(turns, 3)
    assert sum(turns["ticks"].values()) == 0  # open requests, nothing due: no work

    monkeypatch.setenv("WEIBAO_NOW", "2026-06-01T04:30:00+00:00")  # 12:30: every arrival at risk

    async def announced() -> bool:
        counts = await at_risk(nc)
        return all(counts[t] for t in TICKETS)

    await eventually(announced)

    async def rescheduled() -> bool:  # the board took the announcements: next news at 13:00
        board = await rows(nc)
        return all(board[t]["next_check"] > "2026-06-01T04:30:00+00:00" for t in TICKETS)

    await eventually(rescheduled)
    await whole_turns(turns, 1)  # a turn that read the board before it caught up has ticked by now
    ticked = sum(turns["ticks"].values())
    assert all(turns["ticks"][t] >= 1 for t in TICKETS)
    await whole_turns(turns, 3)
    assert sum(turns["ticks"].values()) == ticked  # nothing new is due: nothing ticked again
    counts = await at_risk(nc)
    assert all(counts[t] == 1 for t in TICKETS)  # each announced once
    probe = await ask(nc, "dispatch.ticket", {"ticket_id": TICKETS[0]})
    assert probe["result"]["actions"] == sorted(probe["result"]["actions"]) and "assign" not in probe["result"][
        "actions"]  # in triage: escalate or resolve first
