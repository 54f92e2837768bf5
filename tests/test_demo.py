"""The demo a first `weibao up` loads: a living board over real NATS, loaded through the
services' own subjects, and a second load that stores nothing new."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from decimal import Decimal
from pathlib import Path
from typing import Any, get_args

import pytest
from nats.aio.client import Client as NATS

from tests.dispatch.test_dispatch_e2e import ok
from tests.helpers import services_answer
from weibao.billing.service import spec as billing_spec
from weibao.contracts.adapters.templates import SHIPPED
from weibao.contracts.service import spec as contracts_spec
from weibao.dispatch.domain import ticket as dispatch_ticket
from weibao.dispatch.domain.skills import known as known_skill
from weibao.dispatch.service import spec as dispatch_spec
from weibao.runtime import demo, pulse
from weibao.runtime.natsd import NatsServer, free_port
from weibao.runtime.supervisor import Supervisor
from weibao.shared.geo import distance_km
from weibao.shared.service import Settings, serve
from weibao.shared.users import load_users, password_matches

# Wednesday 10:30 in Beijing: every technician on shift, a year chinese-calendar knows.
NOW = datetime(2026, 11, 18, 2, 30, tzinfo=UTC)


@pytest.fixture
async def system(nats_server: NatsServer, nc: NATS, tmp_path: Path,
                 monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    monkeypatch.setenv("WEIBAO_ASSESS_INTERVAL", "3600")
    monkeypatch.setenv("WEIBAO_TICK_INTERVAL", "3600")  # the clock's ticks would add events between loads
    monkeypatch.setenv("WEIBAO_TODAY", NOW.date().isoformat())
    monkeypatch.setenv("WEIBAO_NOW", NOW.isoformat())
    stop = asyncio.Event()
    specs = {"contracts": contracts_spec, "dispatch": dispatch_spec, "billing": billing_spec}
    tasks = [asyncio.create_task(serve(spec, Settings(nats_server.url, f"sqlite:///{tmp_path / name}.db"), stop))
             for name, spec in specs.items()]
    await services_answer(nc, *specs)
    yield
    stop.set()
    await asyncio.gather(*tasks)


async def positions(nc: NATS) -> dict[str, int]:
    assert await demo.wait_settled(nc)
    return {service: (await demo.health(nc, service))["log_position"] for service in demo.SERVICES}


async def test_the_demo_is_a_living_board_and_loads_once(system: None, nc: NATS,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    report = await demo.load_demo(nc, now=NOW)
    assert report.skipped == [], report.skipped
    assert report.received_at == "honoured"  # the week's requests count their deadlines from the call (D1)

    # the five seed agreements, from their templates, in force
    signed = {}
    for agreement in demo.AGREEMENTS:
        found = (await ok(nc, "contracts.agreement", {"agreement_id": agreement.agreement_id}))["result"]
        assert found["status"] == "active"
        signed[agreement.agreement_id] = found
    assert {a.template_id for a in demo.AGREEMENTS} == {path.stem for path in SHIPPED.glob("*.toml")}
    assert signed["tianyu-crm"]["paid_periods"] and signed["tianyu-crm"]["covered_until"] > NOW.date().isoformat()
    assert signed["jiangcheng-crm"]["covered_until"] < NOW.date().isoformat()  # lapsed: billable (C1, B3)

    # technicians on the board, one on leave
    board = {row["technician_id"]: row for row in (await ok(nc, "dispatch.technicians", {}))["result"]}
    assert set(board) == {t.technician_id for t in demo.TECHNICIANS}
    assert report.technicians == len(demo.TECHNICIANS) >= 8
    assert [t for t, row in board.items() if row["time_off"]] == ["wh-xujing"]
    assert report.customers == 7 and len({t.office.city_code for t in demo.TECHNICIANS}) == 6

    # requests in every state, over the past week
    assert set(report.by_status) == {"triage", "resolved", "awaiting_assignment", "assigned", "accepted", "on_site",
                                     "checked_out", "completed"}
    assert len(report.tickets) == len(demo.REQUESTS)
    oldest = (await ok(nc, "dispatch.ticket", {"ticket_id": "SR-1009"}))["result"]
    assert datetime.fromisoformat(oldest["opened"]["opened_at"]) < NOW.replace(day=13)
    assert report.at_risk  # D4: someone goes, knowing the deadline cannot be met

    # billing drafted the visits' costs: the paid-up CRM customer's hardware day (B2, C4);
    # the year it paid is billed from its payment (B4, C2), the next year's fee, fallen
    # due, is a renewal notice for the clerk and no line (B4, issue 13)
    assert report.invoice_lines >= 10
    invoice = (await ok(nc, "billing.invoice", {"invoice_id": "tianyu-2026-11"}))["result"]
    kinds = {line["kind"]: line for line in invoice["lines"]}
    assert Decimal(kinds["hardware_days"]["amount"]) == Decimal("800.00")
    assert "annual_fee" not in kinds
    assert invoice["status"] == "draft"
    paid_year = (await ok(nc, "billing.invoice", {"invoice_id": "tianyu-2025-11"}))["result"]  # paid 12 days ahead
    assert [(line["kind"], Decimal(line["amount"])) for line in paid_year["lines"]] == [
        ("annual_fee", Decimal("12000.00"))]
    renewals = (await ok(nc, "billing.renewals", {"customer_id": "tianyu"}))["result"]["items"]
    next_year = datetime.fromisoformat(signed["tianyu-crm"]["covered_until"]).date() + timedelta(days=1)
    assert [(n["status"], Decimal(n["amount"]), n["period_from"]) for n in renewals] == [
        ("open", Decimal("12000.00"), next_year.isoformat())]
    # the lapsed customer's software visit, outside coverage, at its signed hourly rate (B3, C1):
    # 4 hours of work x 260.00
    lapsed = (await ok(nc, "billing.invoice", {"invoice_id": "jiangcheng-2026-11"}))["result"]
    (service,) = [line for line in lapsed["lines"] if line["kind"] == "service"]
    assert (Decimal(service["quantity"]), Decimal(service["amount"])) == (Decimal(4), Decimal("1040.00"))
    assert "B3" in service["clauses"]

    # a second load, an hour later, stores nothing at all
    before = await positions(nc)
    later = NOW + timedelta(hours=1)
    monkeypatch.setenv("WEIBAO_NOW", later.isoformat())
    again = await demo.load_demo(nc, now=later)
    assert again.new_events == {} and again.skipped == []
    assert again.tickets == report.tickets
    assert await positions(nc) == before


def test_the_demo_signs_with_each_templates_example() -> None:
    for agreement in demo.AGREEMENTS:
        example = tomllib.loads((SHIPPED / f"{agreement.template_id}.toml").read_text("utf-8")).get("example", {})
        given = dict(agreement.parameters)
        assert {k: v for k, v in given.items() if k in example} == example, agreement.agreement_id
        # beyond the example, only the rates of service outside coverage (B3)
        assert set(given) - set(example) <= {"service.hourly_rate", "service.day_rate"}, agreement.agreement_id


# What each demo data file builds (demo_data/<name>.toml).
BUILDERS = {"offices": lambda data: {key: demo.Office(**row) for key, row in data.items()},
            "customers": demo._customers_from, "agreements": demo._agreements_from,
            "technicians": demo._technicians_from, "requests": demo._requests_from, "users": demo._staff_from,
            "calls": pulse._calls}


def test_the_demo_data_files_load_and_hold_together() -> None:
    # every file shipped is one the loader reads (a stray file would be silently left out)
    assert sorted(path.name for path in demo.DATA.iterdir()) == sorted(f"{name}.toml" for name in BUILDERS)
    assert demo.load_data("requests", demo._requests_from) == demo.REQUESTS
    # the pulse's calls: at customers' sites, with skills and work kinds dispatch knows
    known_sites = {site.site_id for c in demo.CUSTOMERS for site in c.sites} | {demo.LAST_SITE[1].site_id}
    assert {call.site_id for call in pulse.CALLS} <= known_sites
    assert all(known_skill(call.skill) for call in pulse.CALLS)
    assert sum(call.remote for call in pulse.CALLS) == len(pulse.CALLS) // 3  # every third remote (D3)

    # customers and their sites: ids unique, real places in China, the last site a customer's
    customers = [c.customer_id for c in demo.CUSTOMERS]
    assert len(set(customers)) == len(customers) == 7
    last_customer, last_site = demo.LAST_SITE
    everywhere = [(c.customer_id, s) for c in demo.CUSTOMERS for s in c.sites] + [(last_customer, last_site)]
    sites = {site.site_id: customer for customer, site in everywhere}
    assert len(sites) == len(everywhere) and last_customer in customers
    for _, site in everywhere:
        assert 18 < site.latitude < 54 and 73 < site.longitude < 135, site
        assert min(distance_km(site, office) for office in demo.OFFICES.values()) < 250, site

    # agreements: the customer's own sites, every site covered once, a shipped template
    covered: Counter[str] = Counter()
    for a in demo.AGREEMENTS:
        assert {sites[s] for s in a.site_ids} == {a.customer_id}, a.agreement_id
        assert (SHIPPED / f"{a.template_id}.toml").exists() and a.office in demo.OFFICES.values()
        assert a.go_live_months_ago > 0 and a.paid_years >= 0 and a.days_earlier >= 0
        if a.paid_years:  # the fee paid is a percent of the licence price (C2)
            assert Decimal(a.parameters["fee.percent"]) > 0 and Decimal(a.parameters["fee.licence_price"]) > 0
        covered.update(a.site_ids)
    assert covered == Counter(set(sites))
    assert len({a.agreement_id for a in demo.AGREEMENTS}) == len(demo.AGREEMENTS)

    # technicians: known skills, a home in their office's city, a shift that ends after it starts
    assert len({t.technician_id for t in demo.TECHNICIANS}) == len(demo.TECHNICIANS)
    for t in demo.TECHNICIANS:
        assert t.skills and all(known_skill(s) for s in t.skills) and len(set(t.skills)) == len(t.skills), t
        assert t.office in demo.OFFICES.values() and distance_km(demo._Point(*t.home), t.office) < 50, t
        starts, ends = (clock_time.fromisoformat(moment) for moment in t.shift)
        assert starts < ends and t.capacity > 0 and t.leave_days >= 0, t
    at_work = [t for t in demo.TECHNICIANS if not t.leave_days]

    # requests: a known site, channel and skill; what the stage sends is there, nothing else
    assert get_args(demo.WorkKind) == get_args(dispatch_ticket.WorkKind)
    assert get_args(demo.ExpenseKind) == get_args(dispatch_ticket.ExpenseKind)
    assert len({r.ticket_id for r in demo.REQUESTS}) == len(demo.REQUESTS)
    assert {r.stage for r in demo.REQUESTS} == set(demo.STAGES)  # every state on the board
    visited = ("checked_out", "completed")  # work and expenses are reported from the check-in to the check-out
    for r in demo.REQUESTS:
        assert r.site_id in sites and r.channel in get_args(dispatch_ticket.Channel) and known_skill(r.skill), r
        assert 0 <= r.hours_ago <= 7 * 24 and r.travel_hours > 0, r
        if demo.STAGES.index(r.stage) > demo.STAGES.index("escalated"):  # someone with the skill can go
            assert any(r.skill in t.skills for t in at_work), r
        assert bool(r.work) == bool(r.expenses) == (r.stage in visited), r
        assert bool(r.resolution) == (r.stage == "completed"), r
        assert r.note or r.stage != "waiting", r  # the reason dispatch.ticket.wait carries
        assert all(w.hours > 0 for w in r.work), r
        for e in r.expenses:
            amount = Decimal(e.amount)
            assert amount > 0 and amount.as_tuple().exponent == -2, e
            assert (e.nights is not None) == (e.kind == "lodging"), e

    # users: one per office role, then one per technician, every username once
    assert sorted(u.role for u in demo.STAFF) == ["admin", "auditor", "billing", "dispatcher"]
    assert all(u.technician_id is None for u in demo.STAFF)
    assert len({u.username for u in demo.DEMO_USERS}) == len(demo.DEMO_USERS) == len(demo.STAFF) + len(demo.TECHNICIANS)


@pytest.mark.parametrize(("name", "old", "new", "says"), [
    ("technicians", "leave_days = 3", "leave_day = 3", "leave_day"),  # a key the loader does not know
    ("requests", 'stage = "triage"', 'stage = "triaged"', "triaged"),  # not a stage
    ("customers", ', phone = "0551-65321001"', "", "phone"),  # a contact without a phone
    ("agreements", 'office = "hefei"', 'office = "hf"', "hf"),  # no such office
    ("users", 'role = "billing"', 'role = "finance"', "finance"),  # not a role
    ("offices", "latitude = 31.8206, ", "", "latitude"),
])
def test_a_demo_data_file_that_does_not_fit_fails_on_load_naming_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, old: str, new: str, says: str) -> None:
    shutil.copytree(demo.DATA, tmp_path, dirs_exist_ok=True)
    path = tmp_path / f"{name}.toml"
    text = path.read_text("utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), "utf-8")
    monkeypatch.setattr(demo, "DATA", tmp_path)
    build: Any = BUILDERS[name]
    with pytest.raises(demo.DemoError) as refused:
        demo.load_data(name, build)
    assert str(path) in str(refused.value) and says in str(refused.value)


def test_the_demo_users_round_trip_and_their_passwords_verify(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    written = demo.write_demo_users(path)
    assert [u.username for u in written] == [u.username for u in demo.DEMO_USERS]
    users = load_users(path)
    assert {u.role for u in users.values()} == {"dispatcher", "technician", "billing", "auditor", "admin"}
    for user in demo.DEMO_USERS:
        stored = users[user.username]
        assert stored.password_hash.startswith("$argon2id$") and user.password not in stored.password_hash
        assert password_matches(stored, user.password) and not password_matches(stored, user.password + "x")
        assert stored.technician_id == user.technician_id
    technicians = {t.technician_id for t in demo.TECHNICIANS}
    assert {u.technician_id for u in users.values() if u.role == "technician"} == technicians

    assert demo.write_demo_users(path) == []  # nobody written twice, nobody's password changed
    assert load_users(path) == users


def test_ensure_demo_users_writes_once_and_notes_the_passwords(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEIBAO_USERS", raising=False)
    written = demo.ensure_demo_users(tmp_path)
    assert written is not None and (tmp_path / "users.json").exists()
    note = demo.demo_users_note(tmp_path)
    assert note is not None and any("diaodu" in line and "diaodu123" in line for line in note)
    assert (tmp_path / demo.USERS_NOTE).stat().st_mode & 0o077 == 0
    assert demo.ensure_demo_users(tmp_path) is None


def test_the_gateway_reads_the_users_file_beside_the_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEIBAO_USERS", raising=False)
    gateway = Supervisor(tmp_path / "var")._child("gateway", "nats://127.0.0.1:4250")
    assert gateway.env["WEIBAO_USERS"] == str((tmp_path / "var" / "users.json").resolve())


def test_weibao_up_loads_the_demo_on_the_first_start_only_and_prints_the_users(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "DATABASE_URL", "WEIBAO_USERS")}
    env.update(WEIBAO_NOW=NOW.isoformat(), WEIBAO_TODAY=NOW.date().isoformat(), WEIBAO_DEMO="1",
               WEIBAO_LOG_LEVEL="WARNING")
    ports = [str(free_port()), str(free_port())]

    def start_and_stop(log: Path, done: str) -> str:
        with log.open("w") as out:  # a file, not a pipe: a full pipe would stall the children
            process = subprocess.Popen(
                [sys.executable, "-m", "weibao.runtime.cli", "up", "--port", ports[0], "--nats-port", ports[1]],
                cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
            try:
                deadline = time.monotonic() + 180
                while done not in log.read_text("utf-8") and time.monotonic() < deadline:
                    time.sleep(0.5)
            finally:
                process.send_signal(signal.SIGINT)
                process.wait(60)
        return log.read_text("utf-8")

    first = start_and_stop(tmp_path / "first.log", "Demo users")
    assert "Loading the demo data" in first and "Demo data: 7 customers" in first, first[-3000:]
    assert (tmp_path / "var" / demo.MARKER).exists()
    for words in ("/m/", "/audit/", "diaodu", "diaodu123", "dispatcher", "wanglei123"):
        assert words in first, words
    users = load_users(tmp_path / "var" / "users.json")
    assert password_matches(users["diaodu"], "diaodu123")

    second = start_and_stop(tmp_path / "second.log", "Demo users")
    assert "Loading the demo data" not in second and "diaodu123" in second, second[-3000:]
