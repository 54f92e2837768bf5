"""The demo a first `weibao up` loads: a living board over real NATS, loaded through the
services' own subjects, and a second load that stores nothing new."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from nats.aio.client import Client as NATS

from tests.dispatch.test_dispatch_e2e import ok
from tests.helpers import services_answer
from weibao.billing.service import spec as billing_spec
from weibao.contracts.adapters.templates import SHIPPED
from weibao.contracts.service import spec as contracts_spec
from weibao.dispatch.service import spec as dispatch_spec
from weibao.runtime import demo
from weibao.runtime.natsd import NatsServer, free_port
from weibao.runtime.supervisor import Supervisor
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

    # billing drafted the visits' costs: the paid-up CRM customer's hardware day (B2, C4)
    # and the fee for its next year (B4)
    assert report.invoice_lines >= 10
    invoice = (await ok(nc, "billing.invoice", {"invoice_id": "tianyu-2026-11"}))["result"]
    kinds = {line["kind"]: line for line in invoice["lines"]}
    assert Decimal(kinds["hardware_days"]["amount"]) == Decimal("800.00")
    assert Decimal(kinds["annual_fee"]["amount"]) == Decimal("12000.00")  # next year's fee is due (B4, C2)
    assert invoice["status"] == "draft"
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
