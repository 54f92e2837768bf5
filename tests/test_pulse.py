"""The demo pulse: which command comes next for a pulse ticket, never more than three in
flight, and over real NATS a call's whole life, each step stored once (D3-D6)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from nats.aio.client import Client as NATS

from tests import test_demo
from tests.dispatch.test_dispatch_e2e import ok
from weibao.runtime import demo, pulse
from weibao.runtime.pulse import CALLS, Step, Tracked, next_kind, plan

system = test_demo.system  # the services in-process on a real nats-server, the clock pinned
NOW = test_demo.NOW

VISIT = next(c for c in CALLS if not c.remote)
REMOTE = next(c for c in CALLS if c.remote)


@pytest.mark.parametrize(("ticket", "expected"), [
    (Tracked("SR-L1", VISIT), "open"),
    (Tracked("SR-L1", VISIT, "triage"), "escalate"),  # rule D3: a visit only when triage escalates
    (Tracked("SR-L1", REMOTE, "triage"), "remote"),
    (Tracked("SR-L1", VISIT, "awaiting_assignment"), "assign"),  # rule D4
    (Tracked("SR-L1", VISIT, "assigned", "hf-wanglei"), "accept"),
    (Tracked("SR-L1", VISIT, "accepted", "hf-wanglei"), "check_in"),  # rule D5
    (Tracked("SR-L1", VISIT, "on_site", "hf-wanglei"), "work"),  # rule D6
    (Tracked("SR-L1", VISIT, "on_site", "hf-wanglei", worked=True), "expense"),
    (Tracked("SR-L1", VISIT, "on_site", "hf-wanglei", worked=True, spent=True), "check_out"),
    (Tracked("SR-L1", VISIT, "checked_out", "hf-wanglei", worked=True, spent=True), "complete"),
    (Tracked("SR-L1", VISIT, "completed", "hf-wanglei"), None),
    (Tracked("SR-L1", REMOTE, "resolved"), None),
])
def test_the_next_command_follows_the_tickets_state(ticket: Tracked, expected: str | None) -> None:
    assert next_kind(ticket) == expected


def test_every_third_call_is_resolved_remotely() -> None:
    assert [c.remote for c in CALLS] == [False, False, True] * (len(CALLS) // 3)
    assert len({c.summary for c in CALLS}) == len(CALLS)  # a ticket's script is found by its summary
    for call in CALLS:
        assert demo.site_of(call.site_id).site_id == call.site_id


def test_never_more_than_three_in_flight_and_each_gets_its_turn() -> None:
    assert plan([], 0) == Step("open", None)
    two = [Tracked("SR-L1", VISIT, "triage"), Tracked("SR-L2", VISIT, "assigned", "hf-wanglei")]
    assert {plan(two, turn) for turn in range(3)} == {Step("open", None), Step("escalate", "SR-L1"),
                                                      Step("accept", "SR-L2")}
    three = [*two, Tracked("SR-L3", REMOTE, "triage")]
    chosen = {plan(three, turn) for turn in range(6)}
    assert chosen == {Step("escalate", "SR-L1"), Step("accept", "SR-L2"), Step("remote", "SR-L3")}
    # done tickets do not count; a new call takes their place
    done = [replace(three[0], status="completed"), *three[1:]]
    assert Step("open", None) in {plan(done, turn) for turn in range(3)}
    assert Step("escalate", "SR-L1") not in {plan(done, turn) for turn in range(3)}
    assert plan(three, 0, limit=1) == Step("escalate", "SR-L1")


def test_the_interval_comes_from_weibao_demo_pulse() -> None:
    assert pulse.interval(None) == 20.0
    assert pulse.interval("3") == 3.0
    assert pulse.interval("0") is None
    assert pulse.interval("soon") == 20.0


async def test_a_pulse_call_lives_from_open_to_completed_each_step_once(system: None, nc: NATS) -> None:
    report = await demo.load_demo(nc, now=NOW)
    assert report.skipped == []
    beat = pulse.Pulse(nc)
    seen: dict[str, list[str]] = {}
    for _ in range(60):
        taken = await beat.step()
        assert taken is not None and taken.refused is None, taken
        ticket_id = taken.ticket.ticket_id
        assert ticket_id.startswith(f"SR-L{NOW.astimezone(demo.CHINA):%Y%m%d%H%M}")
        seen.setdefault(ticket_id, []).append(taken.step.kind)
        assert len(beat.tracked) <= pulse.MAX_IN_FLIGHT
        # the same step again (a retry after a silence) stores nothing new
        before = await test_demo.positions(nc)
        again = await beat.execute(taken.step, taken.ticket)
        assert again.refused is None, again
        assert await test_demo.positions(nc) == before, taken.step
        if any(kinds[-1] == "complete" for kinds in seen.values()) and any(
                kinds[-1] == "remote" for kinds in seen.values()):
            break
    completed = next(t for t, kinds in seen.items() if kinds[-1] == "complete")
    assert seen[completed] == ["open", "escalate", "assign", "accept", "check_in", "work", "expense", "check_out",
                               "complete"]
    resolved = next(t for t, kinds in seen.items() if kinds[-1] == "remote")
    assert seen[resolved] == ["open", "remote"]  # rule D3

    ticket = (await ok(nc, "dispatch.ticket", {"ticket_id": completed}))["result"]
    assert ticket["status"] == "completed" and ticket["opened"]["channel"] == "phone"
    assert ticket["first_check_in"]["within_geofence"]  # rule D5: a few metres from the site
    assert len(ticket["work"]) == 1 and len(ticket["expenses"]) == 1  # rule D6
    history = (await ok(nc, "dispatch.history", {"ticket_id": completed}))["result"]
    actors = {event["meta"].get("actor") for event in history}
    assert {"dispatcher:diaodu", demo.technician_actor(ticket["technician_id"])} <= actors
    assert (await ok(nc, "dispatch.ticket", {"ticket_id": resolved}))["result"]["status"] == "resolved"

    # the board shows them
    assert await demo.wait_settled(nc)
    board = (await ok(nc, "dispatch.tickets", {"status": "all", "limit": 200}))["result"]
    rows = {row["ticket_id"]: row for row in board["items"]}
    assert rows[completed]["status"] == "completed" and rows[resolved]["status"] == "resolved"
    assert {t for t in rows if t.startswith("SR-L")} == set(seen)

    # a restarted pulse picks up the calls still in flight from the board
    fresh = pulse.Pulse(nc)
    await fresh.step()
    assert set(beat.tracked) <= set(fresh.tracked) | {completed, resolved}
