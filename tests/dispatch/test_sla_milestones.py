"""SLA milestones for every request (issue 13, item 2): a first response (a technician's
acceptance, a remote resolution) meets the respond clock, a remote resolution (D3) or a
completion on site the resolve clock (C15); met, at risk and breached are announced once
each, for each clock; a breach once announced stays a breach; a stopped clock announces
nothing later. Given events, when a command, then events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.decider import Decider, Given
from tests.gateway.backends import any_gateway
from tests.gateway.conftest import HEFEI_OFFICE, Gateway
from tests.gateway.conftest import SITE as SITE_S1
from tests.gateway.test_api import dispatch_read_contracts, post
from tests.gateway.test_idempotency import history
from tests.helpers import eventually
from weibao.dispatch.application.views import ticket_view
from weibao.dispatch.domain.deadlines import DeadlineBreached, DeadlineMet, next_evaluation
from weibao.dispatch.domain.ticket import (
    Accept,
    CheckedIn,
    CheckIn,
    Command,
    Complete,
    Coverage,
    CoverageFound,
    Decline,
    Escalate,
    Event,
    FindCoverage,
    OpenTicket,
    Position,
    RecordAssignment,
    ResolvedRemotely,
    ResolveRemotely,
    Tick,
    Ticket,
    VisitAccepted,
    VisitCompleted,
    decide,
    evolve,
)

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
SITE = Position(31.8206, 117.2272)
NEAR = Position(31.8226, 117.2272)  # about 220 m north
HOURS = timedelta(hours=1)
DUE = T0 + 24 * HOURS  # C15: respond within 24 h, resolve within 24 h, clock hours

__all__ = ["any_gateway"]  # the fixture, imported for pytest to find

TICKET = Decider(decide=decide, evolve=evolve, initial=Ticket())
History = Given[Command, Event, Ticket]

C15 = Coverage("a-4", "covered", ("C1", "C15"), True,
               {"kind": "respond_resolve", "respond_hours": 24, "resolve_hours": 24})
C9 = Coverage("a-1", "covered", ("C1", "C9"), True,
              {"kind": "local_or_out_of_town", "local_hours": 8, "out_of_town_days": 2})


def opened(coverage: Coverage = C15) -> History:
    return TICKET.after(OpenTicket("t-1", "c-1", "s-1", SITE, "phone", "开票模块报错", T0, coverage))


def assigned(coverage: Coverage = C15) -> History:
    return opened(coverage).after(Escalate(T0, "phone guidance failed"),
                                  RecordAssignment("tech-1", T0, {"winner": "tech-1"}, False, "dispatcher:li"))


def check_in(at: datetime) -> CheckIn:
    return CheckIn(technician_id="tech-1", key=f"in-{at.isoformat()}", server_time=at, device_time=at,
                   position=NEAR, accuracy_m=20.0)


def clocks(state: Ticket, at: datetime) -> dict[str, str]:
    view = ticket_view(state, at)
    return {clock["kind"]: clock["status"] for clock in view["deadlines"]["clocks"]}


def test_c15_d3_a_remote_resolution_after_an_hour_meets_respond_and_resolve_and_later_ticks_announce_nothing() -> None:
    resolved = opened().when(ResolveRemotely(T0 + HOURS, "guided by phone")).then(
        ResolvedRemotely(T0 + HOURS, "guided by phone"),
        DeadlineMet("respond", DUE, T0 + HOURS), DeadlineMet("resolve", DUE, T0 + HOURS))
    # the report: 30 hours later both deadlines showed breached
    resolved.when(Tick(T0 + 31 * HOURS)).then()
    state = resolved.state
    assert state.deadlines is not None and next_evaluation(state.deadlines) is None  # nothing for the clock to tick
    assert clocks(state, T0 + 31 * HOURS) == {"respond": "met", "resolve": "met"}
    assert state.deadlines.status(T0 + 31 * HOURS) == "met"


def test_c15_an_acceptance_meets_the_respond_clock_only() -> None:
    accepted = assigned().when(Accept("tech-1", T0 + 2 * HOURS)).then(
        VisitAccepted("tech-1", T0 + 2 * HOURS), DeadlineMet("respond", DUE, T0 + 2 * HOURS))
    assert clocks(accepted.state, T0 + 3 * HOURS) == {"respond": "met", "resolve": "on_track"}
    # the resolve clock still runs, and only it is announced when it runs out
    accepted.when(Tick(T0 + 30 * HOURS)).then(DeadlineBreached("resolve", DUE, DUE)).when(
        Tick(T0 + 40 * HOURS)).then()


def test_c15_d5_a_check_in_after_the_acceptance_stops_nothing_more() -> None:
    accepted = assigned().after(Accept("tech-1", T0 + 2 * HOURS))
    (event,) = accepted.when(check_in(T0 + 4 * HOURS)).events
    assert isinstance(event, CheckedIn) and event.within_geofence
    respond = accepted.given(event).state.deadlines
    assert respond is not None and (clock := respond.clock("respond")) is not None
    assert clock.stopped_at == T0 + 2 * HOURS  # the first response counts


def test_c15_a_completion_on_site_meets_the_resolve_clock() -> None:
    on_site = assigned().after(Accept("tech-1", T0 + 2 * HOURS), check_in(T0 + 4 * HOURS))
    done = on_site.when(Complete("tech-1", T0 + 6 * HOURS, "reinstalled")).then(
        VisitCompleted("tech-1", T0 + 6 * HOURS, "reinstalled"), DeadlineMet("resolve", DUE, T0 + 6 * HOURS))
    done.when(Tick(T0 + 30 * HOURS)).then()
    assert clocks(done.state, T0 + 30 * HOURS) == {"respond": "met", "resolve": "met"}


def test_c15_a_response_after_the_announced_breach_stops_the_clock_without_sla_met() -> None:
    breached = assigned().after(Tick(T0 + 25 * HOURS))  # respond and resolve announced breached
    breached.when(Accept("tech-1", T0 + 26 * HOURS)).then(VisitAccepted("tech-1", T0 + 26 * HOURS))
    accepted = breached.after(Accept("tech-1", T0 + 26 * HOURS))
    state = accepted.state
    assert state.deadlines is not None and (clock := state.deadlines.clock("respond")) is not None
    assert clock.stopped_at == T0 + 26 * HOURS and clock.met is False  # stopped, a breach still
    accepted.when(Tick(T0 + 40 * HOURS)).then()
    assert next_evaluation(state.deadlines) is None


def test_c15_a_late_response_not_yet_announced_is_announced_breached_once() -> None:
    # what the acceptance decides is announced with it: the response late, and the
    # resolve clock (still running) past its due as well
    accepted = assigned().when(Accept("tech-1", T0 + 25 * HOURS)).then(
        VisitAccepted("tech-1", T0 + 25 * HOURS), DeadlineBreached("respond", DUE, DUE),
        DeadlineBreached("resolve", DUE, DUE))
    accepted.when(Tick(T0 + 26 * HOURS)).then()


def test_c15_each_sla_met_is_announced_once() -> None:
    accepted = assigned().after(Accept("tech-1", T0 + 2 * HOURS))
    accepted.when(Accept("tech-1", T0 + 3 * HOURS)).then()  # issue 13: the same acceptance again
    accepted.when(Tick(T0 + 3 * HOURS)).then()
    done = accepted.after(check_in(T0 + 4 * HOURS), Complete("tech-1", T0 + 6 * HOURS, "ok"))
    done.when(Complete("tech-1", T0 + 7 * HOURS, "ok again")).then()
    done.when(Tick(T0 + 7 * HOURS)).then()
    resolved = opened().after(ResolveRemotely(T0 + HOURS, "guided by phone"))
    resolved.when(ResolveRemotely(T0 + 2 * HOURS, "again")).then()
    resolved.when(Tick(T0 + 2 * HOURS)).then()


def test_c15_the_first_acceptance_is_the_response_a_later_one_after_a_decline_changes_nothing() -> None:
    declined = assigned().after(Accept("tech-1", T0 + 2 * HOURS), Decline("tech-1", T0 + 3 * HOURS, "ill"),
                                RecordAssignment("tech-2", T0 + 4 * HOURS, {"winner": "tech-2"}, False,
                                                 "dispatcher:li"))
    declined.when(Accept("tech-2", T0 + 5 * HOURS)).then(VisitAccepted("tech-2", T0 + 5 * HOURS))


def test_c9_d3_a_remote_resolution_stops_the_arrival_clock_too() -> None:
    # a request resolved by phone needs nobody on site: its C9 arrival clock stops, in time
    arrive_by = T0 + 8 * HOURS
    resolved = opened(C9).when(ResolveRemotely(T0 + HOURS, "guided by phone")).then(
        ResolvedRemotely(T0 + HOURS, "guided by phone"), DeadlineMet("arrive", arrive_by, T0 + HOURS))
    resolved.when(Tick(T0 + 9 * HOURS)).then()


def test_c9_an_acceptance_does_not_stop_the_arrival_clock() -> None:
    # C9 sets only an arrival clock: an acceptance is no arrival (D5: the check-in is)
    assigned(C9).when(Accept("tech-1", T0 + HOURS)).then(VisitAccepted("tech-1", T0 + HOURS))


def test_c15_d1_coverage_found_after_an_acceptance_counts_the_acceptance_as_the_response() -> None:
    nothing = Coverage(None, "billable", ("B3",), True, {})
    accepted = assigned(nothing).after(Accept("tech-1", T0 + 2 * HOURS))
    (found,) = accepted.when(FindCoverage(T0 + 3 * HOURS, C15, "system:coverage")).events
    assert isinstance(found, CoverageFound)
    # announced at the clock's next turn (next_evaluation says it is due)
    state = accepted.given(found).state
    assert state.deadlines is not None and next_evaluation(state.deadlines) == T0 + 2 * HOURS
    accepted.given(found).when(Tick(T0 + 3 * HOURS)).then(DeadlineMet("respond", DUE, T0 + 2 * HOURS))


def test_c15_a_log_that_announced_a_breach_after_an_acceptance_stays_breached() -> None:
    # a log written before acceptances stopped the respond clock: accepted at 2 h,
    # the breach announced at 25 h. Folded today, the breach stands and no SlaMet follows.
    history = assigned().given(VisitAccepted("tech-1", T0 + 2 * HOURS), DeadlineBreached("respond", DUE, DUE))
    history.when(Tick(T0 + 26 * HOURS)).then(DeadlineBreached("resolve", DUE, DUE))
    assert clocks(history.state, T0 + 26 * HOURS)["respond"] == "breached"


# -- through the HTTP API -----------------------------------------------------------------

AGREEMENT_C15 = {  # [4]: respond within 24 hours and resolve within 24 hours (C15)
    "agreement_id": "a-q", "customer_id": "c-1", "template_id": "quansousuo-purchasing", "parameters": {},
    "go_live": "2025-09-01", "office": HEFEI_OFFICE, "site_ids": ["s-1"]}


async def test_c15_d3_a_request_resolved_remotely_shows_respond_and_resolve_met_announced_once(
        any_gateway: Gateway) -> None:
    gateway = any_gateway
    async with await gateway.as_user("li") as li, await gateway.as_user("qian") as qian, \
            await gateway.as_user("shen") as shen:
        await post(li, "/customers", {"customer_id": "c-1", "name": "全搜索客户", "sites": [
            {"site_id": "s-1", "name": "总部", "address": "安徽省合肥市庐阳区", **SITE_S1}]}, status=201)
        await post(qian, "/agreements", AGREEMENT_C15, status=201)
        await dispatch_read_contracts(shen)
        opened = await post(li, "/tickets", {"ticket_id": "t-1", "site_id": "s-1", "summary": "订单无法同步"},
                            status=201)
        kinds = [c["kind"] for c in opened["events"][0]["data"]["deadlines"]["clocks"]]
        assert kinds == ["respond", "resolve"]  # C15, no arrival clock
        resolved = await post(li, "/tickets/t-1/triage", {"outcome": "remote", "note": "远程会话解决"})
        assert [e["type"] for e in resolved["events"]] == [
            "private.ResolvedRemotely", "private.DeadlineMet", "SlaMet", "private.DeadlineMet", "SlaMet"]
        again = await post(li, "/tickets/t-1/triage", {"outcome": "remote", "note": "远程会话解决"})
        assert again["events"] == []  # issue 13: idempotent by state, nothing announced again

        view = (await li.get("/api/v1/tickets/t-1")).json()
        clocks = {c["kind"]: c for c in view["deadlines"]["clocks"]}
        assert {kind: (c["status"], c["met"], c["announced"]) for kind, c in clocks.items()} == {
            "respond": ("met", True, ["met"]), "resolve": ("met", True, ["met"])}
        assert all(c["stopped_at"] for c in clocks.values())

        async def on_the_board() -> bool:  # the list's row: both clocks stopped, nothing left to check
            found = (await li.get("/api/v1/tickets", params={"status": "all"})).json()
            row = next((r for r in found["items"] if r["ticket_id"] == "t-1"), None)
            return row is not None and row["stopped"] == ["resolve", "respond"] and row["next_check"] is None

        await eventually(on_the_board)

    met = [e["data"]["kind"] for e in await history(gateway, "ticket-t-1") if e["type"] == "SlaMet"]
    assert sorted(met) == ["resolve", "respond"]  # one each, on the public stream
