"""An install of the previous release (`v0.1.0`) upgraded in place: its data, written before
events were signed and before the broker had identities, runs on today's code.

The old release runs from its own source (`git archive` of the tag) with the demo loaded;
then today's `weibao up` starts on the same folder. Every log gains one signed
`SigningStarted` vouching for its older events, `weibao verify` passes (chain, signatures,
the stream held against the log), no consumer refuses or parks anything, a read model
whose tables changed since is rebuilt at start and replays equal, and new commands are
stored signed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import Connection, MetaData, Table, inspect, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import health
from weibao.runtime.natsd import free_port
from weibao.shared.consumer import TrackingConsumer, parked_table, tracking_table
from weibao.shared.db import ensure_schema
from weibao.shared.events import GENESIS_HASH, event_hash
from weibao.shared.eventstore import EventStore, commands_table, events_table
from weibao.shared.readmodels import StreamIndex
from weibao.shared.schema import head, migrate

ROOT = Path(__file__).resolve().parent.parent
PREVIOUS = "v0.1.0"
BASELINE = "8be71cb"  # what v0.1.0 tags, should a clone lack the tag
ROOTS = ("shared", "services/contracts", "services/dispatch", "services/billing", "services/gateway")
NOW = "2026-06-01T01:00:00+00:00"


def previous_source(into: Path) -> Path:
    revision = PREVIOUS if subprocess.run(["git", "-C", str(ROOT), "rev-parse", "-q", "--verify", PREVIOUS],
                                          capture_output=True, check=False).returncode == 0 else BASELINE
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision, *ROOTS], capture_output=True, check=True)
    into.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def run_until(workdir: Path, env: dict[str, str], log: Path, ready: str, *, check: Any = None) -> str:
    """`weibao up` in `workdir` until `ready` is printed (and `check()` holds), then Ctrl-C."""
    http, nats = free_port(), free_port()
    with log.open("w") as out:  # a file, not a pipe: a full pipe would stall the children
        process = subprocess.Popen([sys.executable, "-m", "weibao.runtime.cli", "up", "--port", str(http),
                                    "--nats-port", str(nats)], cwd=workdir, env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline:
                if ready in log.read_text("utf-8") and (check is None or check(http)):
                    break
                if process.poll() is not None:
                    break
                time.sleep(0.5)
            else:
                pytest.fail(f"not ready: {log.read_text('utf-8')[-3000:]}")
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(90)
    return log.read_text("utf-8")


def cli(workdir: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "weibao.runtime.cli", *args], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=180, check=False)


def test_an_install_of_the_previous_release_upgrades_in_place(tmp_path: Path) -> None:
    base = {k: v for k, v in os.environ.items()
            if k not in ("NATS_URL", "DATABASE_URL", "WEIBAO_USERS", "WEIBAO_KEYS", "PYTHONPATH")}
    base.update(WEIBAO_NOW=NOW, WEIBAO_TODAY=NOW[:10], WEIBAO_DEMO="1", WEIBAO_DEMO_PULSE="0",
                WEIBAO_LOG_LEVEL="WARNING")
    old = previous_source(tmp_path / "old")
    # The old release's own modules first on the path: a `weibao` of its own.
    old_env = {**base, "PYTHONPATH": os.pathsep.join(str(old / r) for r in ROOTS)}
    first = run_until(tmp_path, old_env, tmp_path / "old.log", "Demo users")
    assert "Demo data: 7 customers" in first, first[-3000:]
    assert not (tmp_path / "var" / "keys").exists()  # truly the old release: it made no keys

    settled: dict[str, Any] = {}

    def caught_up(port: int) -> bool:
        status, body = health(port)
        settled.update(body)
        services = body.get("services", {})
        return status == 200 and all(s.get("signing") and not s.get("refused") and not s.get("foreign_messages")
                                     and s.get("relayed_position") == s.get("log_position")
                                     for s in services.values()) and len(services) == 3

    verified: dict[str, dict[str, Any]] = {}

    def caught_up_and_verified(port: int) -> bool:
        if not caught_up(port):
            return False
        for service in ("contracts", "dispatch", "billing"):  # while up: the stream too
            report = cli(tmp_path, base, "verify", service)
            verified[service] = json.loads(report.stdout) if report.stdout else {"stderr": report.stderr}
        # The model rebuilt at start (below) replays equal to itself from the stream.
        replayed = cli(tmp_path, base, "replay", "dispatch", "technician_board")
        verified["replay"] = json.loads(replayed.stdout) if replayed.stdout else {"stderr": replayed.stderr}
        return True

    second = run_until(tmp_path, base, tmp_path / "new.log", "Weibao is running", check=caught_up_and_verified)
    assert "Loading the demo data" not in second
    # The technician board gained a table (retired technicians) after v0.1.0: found at
    # start and rebuilt from the stream before its consumer ran; its replay agrees.
    assert '"model": "technician_board"' in second and '"event": "readmodel.rebuild"' in second
    assert verified.pop("replay").get("equal") is True, verified.get("replay")
    for service, found in verified.items():
        assert found.get("ok") is True, (service, found)
        # Everything the old release stored is vouched for by one signed SigningStarted;
        # its stream, relayed by the old relay, is exactly the log, with that mark added.
        assert found["unsigned"] > 0 and found["signed"] >= 1, found
        assert found["checked"] == found["unsigned"] + found["signed"]
        assert found["stream"]["checked"] == found["checked"] and found["stream"]["foreign"] == 0
        parked = cli(tmp_path, base, "parked", service)
        assert parked.returncode == 0 and parked.stdout == "", parked.stdout
    assert set(verified) == {"contracts", "dispatch", "billing"}, settled



async def test_tables_of_the_previous_release_gain_their_new_columns(engine: AsyncEngine) -> None:
    """The same upgrade at the table level, on both backends: the columns added since
    v0.1.0 (signatures, command fingerprints, the consumers' last hash) are added to
    existing tables, and what they held is untouched."""
    added = {"events": {"signed_by", "signature"}, "commands": {"fingerprint"}, "tracking": {"hash"}}
    old = MetaData()
    for table in (events_table, commands_table, tracking_table):
        Table(table.name, old, *(c._copy() for c in table.columns if c.name not in added[table.name]))
    await ensure_schema(engine)
    moment = datetime(2026, 6, 1, tzinfo=UTC)
    digest = event_hash(GENESIS_HASH, position=1, stream_id="visit-1", version=1, type="Logged", schema_version=1,
                        data_json='{"i":1}', meta_json='{"command_id":"c-1"}', recorded_at=moment)
    async with engine.begin() as conn:
        await conn.run_sync(old.create_all)
        await conn.execute(old.tables["events"].insert().values(
            position=1, stream_id="visit-1", version=1, type="Logged", schema_version=1, data='{"i":1}',
            meta='{"command_id":"c-1"}', recorded_at=moment, prev_hash=GENESIS_HASH, hash=digest))
        await conn.execute(old.tables["commands"].insert().values(command_id="c-1", stream_id="visit-1",
                                                                  first_position=1, last_position=1))
        await conn.execute(old.tables["tracking"].insert().values(consumer="x", upstream="dispatch", position=7,
                                                                  stream_seq=7))
    store = EventStore(engine)
    await store.create_tables()
    consumer = TrackingConsumer(engine, cast(Any, None), "dispatch", "x", StreamIndex("dispatch"))
    await consumer.create_tables()
    assert (await store.verify()).ok
    (event,) = await store.read_from(0)
    assert (event.hash, event.signature) == (digest, None)
    assert (await store.command_result("c-1")) is not None  # no fingerprint: plain idempotency
    async with engine.connect() as conn:
        row = (await conn.execute(select(tracking_table).where(tracking_table.c.consumer == "x"))).one()
    assert (row.position, row.hash) == (7, None)


async def test_the_migrations_make_the_tables_the_kit_reads_and_writes(engine: AsyncEngine) -> None:
    """No drift between the revisions (the DDL) and the kit's table definitions (what its
    queries use): the same columns, the same nullability, on both backends; at head."""
    assert await migrate(engine) == (None, head())
    assert await migrate(engine) == (head(), head())  # again: nothing to do
    for table in (events_table, commands_table, tracking_table, parked_table):
        def columns(conn: Connection, name: str = table.name) -> dict[str, bool]:
            schema = (conn.get_execution_options().get("schema_translate_map") or {}).get(None)
            return {c["name"]: bool(c["nullable"]) for c in inspect(conn).get_columns(name, schema=schema)}

        async with engine.connect() as conn:
            made = await conn.run_sync(columns)
        assert made == {c.name: bool(c.nullable) for c in table.columns}, table.name


def test_migrate_is_one_command(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'contracts.db'}"}
    run = subprocess.run([sys.executable, "-m", "weibao.contracts", "migrate"], env=env, capture_output=True,
                         text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.strip().splitlines()[-1]) == {"from": None, "to": head()}
