"""Issue 13, intake: a request carries its channel (C13), cause (C3, C12, C17, C24),
phase (C14), product and priority; the coverage stored on it is judged for the cause;
a correction of cause, phase or priority decides coverage and deadlines again; and the
deadline preview answers what a real request opened at the same moment gets (D1, D2)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.decider import Decider, Given
from tests.gateway.backends import any_gateway
from tests.gateway.conftest import HEFEI_OFFICE, SITE, Gateway
from tests.gateway.test_api import dispatch_read_contracts, post
from weibao.contracts.adapters.templates import TemplateFile, load_templates
from weibao.contracts.domain.agreement import Agreement, Office, SignAgreement
from weibao.contracts.domain.agreement import decide as sign
from weibao.contracts.domain.agreement import evolve as signed
from weibao.contracts.domain.coverage import Question, decide_coverage
from weibao.dispatch.domain import intake
from weibao.dispatch.domain.deadlines import OFFICE_TZ
from weibao.dispatch.domain.ticket import (
    CheckIn,
    Command,
    Coverage,
    Escalate,
    Event,
    OpenTicket,
    Position,
    Reclassified,
    Reclassify,
    RecordAssignment,
    Ticket,
    decide,
    evolve,
    geofence_radius,
)
from weibao.shared import codec
from weibao.shared.errors import Rejected

__all__ = ["any_gateway"]  # the fixture, imported for pytest to find

TICKET = Decider(decide=decide, evolve=evolve, initial=Ticket())
History = Given[Command, Event, Ticket]
T0 = datetime(2026, 6, 1, 1, 0, tzinfo=UTC)  # 09:00 in Beijing, a Monday
HERE = Position(31.8650, 117.2830)
XXX_TERMS: dict[str, Any] = {"channels": ["phone", "fax", "email", "remote", "letter", "onsite"],
                             "onsite": {"kind": "by_phase", "parallel_run_days": 2, "cutover_days": 1}}
COVERED = Coverage("a-x", "covered", ("C1",), True, XXX_TERMS["onsite"], "software_fault", "", True)


# -- the judgement, held equal to contracts' own coverage decision -----------------------

# What contracts' Question asks for each intake cause: the service, its C12/C17 cause code,
# and C3's third party under warranty.
QUESTION: dict[str, tuple[str, str | None, bool]] = {
    "software_fault": ("fault", None, False),
    **{cause: ("fault", cause, False) for cause in (*intake.C12, *intake.C17)},
    "hardware_network": ("hardware_network", None, False),
    "third_party_hardware": ("hardware_network", None, True),
    "upgrade": ("upgrade", None, False),
    "training": ("training", None, False),
    "installation": ("installation", None, False),
    "change_request": ("change_request", None, False),
}
# Clauses that say how fast (the SLA) or who pays expenses: not part of the verdict's reason.
NOT_DECIDING = {"C1", "C2", "C5", "C9", "C14", "C15", "C16", "C20"}


@pytest.fixture(scope="module")
def templates() -> dict[str, TemplateFile]:
    return load_templates()


@pytest.mark.parametrize("day", [date(2025, 6, 1), date(2026, 6, 1)], ids=["free-year", "no-period"])
@pytest.mark.parametrize("template_id", ["xxx-software-service", "quansousuo-purchasing", "yizhuo-crm-maintenance",
                                         "chaoren-software-sale", "ziguang-three-guarantees"])
def test_c3_c6_c7_c8_c10_c12_c17_the_intake_judgement_is_contracts_coverage_decision(
        templates: dict[str, TemplateFile], template_id: str, day: date) -> None:
    """Dispatch judges a request's cause from the terms contracts published; over every
    cause, seed template and period it answers contracts' verdict, penalty and deciding
    clauses (C24's misuse is the warranty's question, asked of vendor hardware)."""
    template = templates[template_id]
    terms = template.resolve(CUSTOMERS["c-y"][1] if template_id == "yizhuo-crm-maintenance" else {})
    office = Office("合肥办事处", "3401", 31.8206, 117.2272)
    agreement = Agreement()
    for event in sign(SignAgreement("a-1", "c-1", template_id, terms, date(2025, 3, 1), date(2025, 3, 1), office),
                      agreement):
        agreement = signed(agreement, event)
    period = agreement.covered_on(day)
    published = codec.dump(terms)
    for cause, (service, code, third_party) in QUESTION.items():
        theirs = decide_coverage(agreement, Question(day, service, code,  # type: ignore[arg-type]
                                                     third_party_under_warranty=third_party))
        ours = intake.judge(cause, agreement=True,  # type: ignore[arg-type]
                            period=None if period == "none" else period,
                            period_clauses=("C1",) if period == "free" else ("C2",) if period == "paid" else (),
                            terms=published)
        assert ours.verdict == theirs.verdict, (cause, theirs.reason)
        if theirs.sla is not None:  # a penalty means something only where an SLA is owed
            assert ours.penalty == theirs.penalty_applies, (cause, theirs.reason)
            assert ours.sla, cause
        assert set(ours.clauses) - NOT_DECIDING == set(theirs.clauses) - NOT_DECIDING, cause


def test_c24_misuse_of_vendor_hardware_is_excluded_without_an_sla() -> None:
    judged = intake.judge("hardware_misuse", agreement=True, period="free", period_clauses=("C1",), terms={})
    assert (judged.verdict, judged.clauses, judged.penalty, judged.sla) == ("excluded", ("C24",), False, False)


# -- the domain: channel, phase, reclassification -----------------------------------------


def opening(**changes: Any) -> OpenTicket:
    fields: dict[str, Any] = {"ticket_id": "t-1", "customer_id": "c-x", "site_id": "s-x", "site": HERE,
                              "channel": "phone", "summary": "凭证无法过账", "opened_at": T0, "coverage": COVERED,
                              "terms": XXX_TERMS}
    return OpenTicket(**{**fields, **changes})


def test_c13_a_channel_the_agreement_does_not_offer_is_refused_naming_it() -> None:
    TICKET.given().when(opening(channel="qq")).then_rejected("invalid", "channel")
    (opened,) = TICKET.given().when(opening(channel="qq", terms=None)).events  # no agreement: any channel
    assert opened.channel == "qq"


def test_c14_a_phase_only_where_the_agreement_sets_deadlines_by_phase() -> None:
    c9 = {"channels": ["phone"], "onsite": {"kind": "local_or_out_of_town", "local_hours": 8, "out_of_town_days": 2}}
    TICKET.given().when(opening(phase="cutover", terms=c9)).then_rejected("invalid", "phase")
    (event,) = TICKET.given().when(opening(phase="cutover", priority="urgent", product="U8 总账")).events
    assert event.deadlines is not None and event.deadlines.clocks[0].due == T0 + timedelta(days=1)  # C14
    assert (event.phase, event.priority, event.product) == ("cutover", "urgent", "U8 总账")


def reclassify(**changes: Any) -> Reclassify:
    fields: dict[str, Any] = {"at": T0 + timedelta(hours=1), "by": "dispatcher:li", "reason": "客户已脱离手工",
                              "cause": "software_fault", "phase": "cutover", "priority": "normal",
                              "coverage": COVERED, "terms": XXX_TERMS}
    return Reclassify(**{**fields, **changes})


def test_c14_d1_a_corrected_phase_decides_the_deadlines_again_from_receipt_and_says_what_changed() -> None:
    history = TICKET.after(opening())
    (event,) = history.when(reclassify()).events
    assert isinstance(event, Reclassified)
    assert event.changes["phase"] == [None, "cutover"]
    beijing = {"arrive": (T0 + timedelta(days=2)).astimezone(OFFICE_TZ).isoformat()}
    assert event.changes["due"] == [beijing, {"arrive": (T0 + timedelta(days=1)).astimezone(OFFICE_TZ).isoformat()}]
    assert event.deadlines is not None and event.deadlines.clocks[0].due == T0 + timedelta(days=1)
    again = history.after(reclassify())
    again.when(reclassify(reason="再说一次")).then()  # idempotent by state: nothing changes


def test_c17_a_cause_outside_liability_leaves_no_deadline_and_no_penalty() -> None:
    excluded = Coverage("a-x", "billable", ("C17",), True, {}, "customer_misoperation_loss",
                        "the cause is outside the vendor's liability", False)
    (event,) = TICKET.after(opening()).when(reclassify(cause="customer_misoperation_loss", phase=None,
                                                      coverage=excluded)).events
    assert isinstance(event, Reclassified)
    assert event.deadlines is None and event.changes["verdict"] == ["covered", "billable"]
    assert TICKET.after(opening(), reclassify(cause="customer_misoperation_loss", phase=None,
                                              coverage=excluded)).state.deadlines is None


def test_a_correction_after_the_first_report_from_site_is_refused_with_a_reason() -> None:
    on_site = TICKET.after(
        opening(), Escalate(T0, "电话无法解决"),
        RecordAssignment("tech-1", T0, {"winner": "tech-1"}, False, "dispatcher:li"),
        CheckIn(technician_id="tech-1", key="in-0001", server_time=T0 + timedelta(hours=2),
                device_time=T0 + timedelta(hours=2), position=HERE, accuracy_m=10.0))
    with pytest.raises(Rejected) as refused:
        decide(reclassify(), on_site.state)
    assert refused.value.code == "conflict" and "credit note" in refused.value.message
    TICKET.after(opening()).when(reclassify(reason="  ")).then_rejected("missing", "reason")


# -- through the HTTP API -------------------------------------------------------------------

CUSTOMERS = {  # customer: (template, parameters)
    "c-x": ("xxx-software-service", {}),  # C14 by phase, clock hours
    "c-w": ("xxx-software-service", {"onsite.calendar": "working"}),  # C14 in working time (D2)
    "c-y": ("yizhuo-crm-maintenance", {"fee.percent": "10", "fee.licence_price": "120000",
                                       "onsite.local_hours": 8, "onsite.out_of_town_days": 2,
                                       "hardware.day_rate": "800"}),
}


async def sign_up(gateway: Gateway) -> None:
    async with await gateway.as_user("li") as li, await gateway.as_user("qian") as qian, \
            await gateway.as_user("shen") as shen:
        for customer, (template, parameters) in CUSTOMERS.items():
            site = f"s-{customer[2:]}"
            await post(li, "/customers", {"customer_id": customer, "name": f"客户{customer}", "sites": [
                {"site_id": site, "name": "总部", "address": "安徽省合肥市庐阳区", **SITE}]}, status=201)
            await post(qian, "/agreements", {
                "agreement_id": f"a-{customer[2:]}", "customer_id": customer, "template_id": template,
                "parameters": parameters, "go_live": "2026-03-01", "office": HEFEI_OFFICE, "site_ids": [site]},
                status=201)
        await dispatch_read_contracts(shen)


def opened_data(reply: Any) -> Any:
    (event,) = [e for e in reply["events"] if e["type"] == "private.TicketOpened"]
    return event["data"]


def dues(data: Any) -> dict[str, str]:
    return {c["kind"]: c["due"] for c in (data["deadlines"] or {"clocks": []})["clocks"]}


async def refused(client: httpx.AsyncClient, path: str, body: dict[str, Any], field: str) -> None:
    response = await client.post(f"/api/v1{path}", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"].endswith(field), response.text


async def test_c3_c13_c14_c17_intake_through_the_api(any_gateway: Gateway) -> None:
    gateway = any_gateway
    await sign_up(gateway)
    async with await gateway.as_user("li") as li:
        now = "2026-06-01T09:00:00+08:00"
        cut = opened_data(await post(li, "/tickets", {
            "ticket_id": "t-cut", "site_id": "s-x", "summary": "总账无法结账", "phase": "cutover",
            "priority": "urgent", "product": "XXX 财务", "serial": "SN-0001"}, status=201))
        par = opened_data(await post(li, "/tickets", {
            "ticket_id": "t-par", "site_id": "s-x", "summary": "总账无法结账", "phase": "parallel_run"}, status=201))
        # rule C14: after cut-over within 1 day, in the parallel run within 2 (clock hours here)
        assert dues(cut) == {"arrive": "2026-06-02T09:00:00+08:00"}
        assert dues(par) == {"arrive": "2026-06-03T09:00:00+08:00"}
        assert (cut["priority"], cut["product"], cut["serial"], cut["coverage"]["cause"]) == (
            "urgent", "XXX 财务", "SN-0001", "software_fault")

        # rule C17: the customer's own misoperation: a visit is possible, billable, no penalty, no deadline
        mis = opened_data(await post(li, "/tickets", {
            "ticket_id": "t-mis", "site_id": "s-x", "summary": "误删凭证", "cause": "customer_misoperation_loss"},
            status=201))
        assert (mis["coverage"]["verdict"], mis["coverage"]["clauses"], mis["coverage"]["penalty"]) == (
            "billable", ["C17"], False)
        assert mis["deadlines"] is None
        # rule C3: a third party's equipment under its supplier's warranty
        third = opened_data(await post(li, "/tickets", {
            "ticket_id": "t-3rd", "site_id": "s-y", "summary": "交换机故障", "cause": "third_party_hardware"},
            status=201))
        assert (third["coverage"]["verdict"], third["coverage"]["clauses"]) == ("excluded", ["C3"])

        # bad input: a structured error naming the field, nothing stored
        await refused(li, "/tickets", {"ticket_id": "t-qq", "site_id": "s-x", "summary": "x", "channel": "qq"},
                      "channel")  # C13: [2] offers no QQ
        await refused(li, "/tickets", {"ticket_id": "t-ph", "site_id": "s-y", "summary": "x", "phase": "cutover"},
                      "phase")  # C14: [1] sets no deadline by phase
        await refused(li, "/tickets", {"ticket_id": "t-un", "site_id": "s-x", "summary": "x", "cause": "alien"},
                      "cause")
        await refused(li, "/tickets", {"ticket_id": "t-pr", "site_id": "s-x", "summary": "x", "priority": "p0"},
                      "priority")
        for ticket_id in ("t-qq", "t-ph", "t-un", "t-pr"):
            assert (await li.get(f"/api/v1/tickets/{ticket_id}")).status_code == 404

        # a corrected phase: the deadline decided again from receipt, what changed said
        changed = await post(li, "/tickets/t-par/classification", {"phase": "cutover", "reason": "客户已脱离手工"})
        (event,) = [e for e in changed["events"] if e["type"] == "private.Reclassified"]
        assert event["data"]["changes"]["phase"] == ["parallel_run", "cutover"]
        assert event["data"]["changes"]["due"] == [{"arrive": "2026-06-03T09:00:00+08:00"},
                                                   {"arrive": "2026-06-02T09:00:00+08:00"}]
        again = await post(li, "/tickets/t-par/classification", {"phase": "cutover", "reason": "再确认"})
        assert again["events"] == []  # it already is what is asked
        view = (await li.get("/api/v1/tickets/t-par")).json()
        assert view["opened"]["phase"] == "cutover" and view["deadlines"]["clocks"][0]["due"].startswith(
            "2026-06-02T09:00")
        # a cause outside liability: no deadline any more, no penalty
        await post(li, "/tickets/t-cut/classification", {"cause": "force_majeure", "reason": "雷击停电"})
        view = (await li.get("/api/v1/tickets/t-cut")).json()
        assert view["deadlines"] is None and view["opened"]["coverage"]["verdict"] == "billable"
        assert now  # the gateway's pinned clock the due times above count from


async def test_d1_d2_the_preview_answers_what_a_request_opened_at_that_moment_gets(
        any_gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    gateway = any_gateway
    await sign_up(gateway)
    async with await gateway.as_user("li") as li, await gateway.as_user("shen") as shen, \
            await gateway.as_user("near") as technician:
        cases = [  # (site, received, expected arrive-by)
            # 2 days = 18 service hours (09:00-18:00): Wed 8.5 h, National Day Oct 1-7 off, Thu 9 h, Fri 0.5 h
            ("s-w", "2026-09-30T09:30:00+08:00", "2026-10-09T09:30:00+08:00"),
            # a Saturday call counts from the swapped working Sunday (调休) Sep 20: 9 h, then Monday 9 h
            ("s-w", "2026-09-19T10:00:00+08:00", "2026-09-21T18:00:00+08:00"),
            # clock hours: 48 h whatever the calendar
            ("s-x", "2026-09-30T09:30:00+08:00", "2026-10-02T09:30:00+08:00"),
        ]
        for number, (site, received, due) in enumerate(cases):
            # any date, past or future, by the desk and the auditor alike
            previewed = await post(shen, "/deadlines/preview", {"site_id": site, "at": received})
            assert dues(previewed) == {"arrive": due}
            # a real request opened at that moment (the clock pinned there) gets the same due time
            monkeypatch.setenv("WEIBAO_NOW", received)
            real = opened_data(await post(li, "/tickets", {"ticket_id": f"t-{number}", "site_id": site,
                                                           "summary": "报表错误"}, status=201))
            assert dues(real) == dues(previewed) == {"arrive": due}
        days = {d["date"]: d for d in previewed["days"]} if previewed["days"] else {}
        assert days == {}  # the clock calendar counts no working days
        working = await post(li, "/deadlines/preview", {"site_id": "s-w", "at": cases[0][1]})
        days = {d["date"]: d for d in working["days"]}
        assert [day for day, d in days.items() if not d["working_day"]] == [
            f"2026-10-0{n}" for n in range(1, 8)]  # National Day, as the official calendar has it
        assert sum(d["counted_seconds"] for d in days.values()) == 18 * 3600
        # a past receipt more than 7 days back: the preview answers, a request stays refused (D1)
        monkeypatch.setenv("WEIBAO_NOW", "2026-10-20T09:00:00+08:00")
        old = await post(li, "/deadlines/preview", {"site_id": "s-w", "at": "2026-09-19T10:00:00+08:00"})
        assert dues(old) == {"arrive": "2026-09-21T18:00:00+08:00"}
        await refused(li, "/tickets", {"ticket_id": "t-old", "site_id": "s-w", "summary": "x",
                                       "received_at": "2026-09-19T10:00:00+08:00"}, "received_at")
        # terms the seeds need, given at signing (issue 13 item 9): service hours as a list, seven
        # days a week (C20), a priority target tighter than the clause (the tighter one wins)
        async with await gateway.as_user("qian") as qian:
            await post(li, "/customers", {"customer_id": "c-h", "name": "客户c-h", "sites": [
                {"site_id": "s-h", "name": "总部", "address": "安徽省合肥市庐阳区", **SITE}]}, status=201)
            await post(qian, "/agreements", {
                "agreement_id": "a-h", "customer_id": "c-h", "template_id": "xxx-software-service",
                "parameters": {"onsite.calendar": "working", "onsite.service_hours": ["09:00", "17:00"],
                               "onsite.service_days": [1, 2, 3, 4, 5, 6, 7],
                               "onsite.priority_targets.urgent.arrive_hours": 4},
                "go_live": "2026-03-01", "office": HEFEI_OFFICE, "site_ids": ["s-h"]}, status=201)
            bad = await qian.post("/api/v1/agreements", json={
                "agreement_id": "a-bad", "customer_id": "c-h", "template_id": "xxx-software-service",
                "parameters": {"onsite.service_hours": ["17:00", "09:00"]},
                "go_live": "2026-03-01", "office": HEFEI_OFFICE, "site_ids": ["s-h"]})
            assert bad.status_code == 422 and bad.json()["error"]["field"] == "parameters.onsite.service_hours"
        await dispatch_read_contracts(shen)
        saturday = "2026-06-06T10:00:00+08:00"
        # 2 days = 2 x 8 service hours: Saturday 7 h, Sunday 8 h, Monday 1 h
        normal = await post(li, "/deadlines/preview", {"site_id": "s-h", "at": saturday})
        assert dues(normal) == {"arrive": "2026-06-08T10:00:00+08:00"}
        urgent = await post(li, "/deadlines/preview", {"site_id": "s-h", "at": saturday, "priority": "urgent"})
        assert dues(urgent) == {"arrive": "2026-06-06T14:00:00+08:00"}

        # bad input named; a technician may not ask
        await refused(li, "/deadlines/preview", {"site_id": "s-w", "at": "2026-09-19T10:00:00"}, "at")
        await refused(li, "/deadlines/preview", {"site_id": "s-x", "at": cases[0][1], "channel": "qq"}, "channel")
        assert (await technician.post("/api/v1/deadlines/preview",
                                      json={"site_id": "s-w", "at": cases[0][1]})).status_code == 403
        assert (await li.post("/api/v1/deadlines/preview",
                              json={"site_id": "nowhere", "at": cases[0][1]})).status_code == 404


def test_d5_an_agreement_s_own_geofence_replaces_the_service_s() -> None:
    """issue 13 item 9: onsite.geofence_m, kept on the coverage even where no SLA is owed."""
    wide = Coverage("a-x", "billable", ("C3", "C4"), True, {}, "hardware_network", "", False, 2000.0)
    history = TICKET.after(opening(coverage=wide), Escalate(T0, "上门"),
                           RecordAssignment("tech-1", T0, {"winner": "tech-1"}, False, "dispatcher:li"))
    away = Position(HERE.latitude + 0.0135, HERE.longitude)  # about 1.5 km north
    check_in = CheckIn(technician_id="tech-1", key="in-0002", server_time=T0 + timedelta(hours=1),
                       device_time=T0 + timedelta(hours=1), position=away, accuracy_m=10.0)
    assert geofence_radius(history.state, 500.0) == 2000.0
    (inside,) = decide(check_in, history.state, geofence_radius_m=geofence_radius(history.state, 500.0))
    assert inside.within_geofence  # type: ignore[union-attr]
    (outside,) = decide(check_in, history.state, geofence_radius_m=500.0)
    assert not outside.within_geofence  # type: ignore[union-attr]
    assert geofence_radius(TICKET.after(opening()).state, 500.0) == 500.0  # none set: the service's
