"""`weibao up` as a user runs it: healthy, stops cleanly on Ctrl-C, reuses its data."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import nats.errors
import pytest

from tests.helpers import eventually, health
from weibao.runtime.natsd import free_port
from weibao.shared.client import Client, signer_of
from weibao.shared.db import make_engine
from weibao.shared.events import NewEvent
from weibao.shared.eventstore import EventStore
from weibao.shared.keys import Keyring
from weibao.shared.service import connect

WEIBAO = [sys.executable, "-m", "weibao.runtime.cli"]


class System:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.http_port, self.nats_port = free_port(), free_port()
        self.process: subprocess.Popen[str] | None = None
        # Without the test run's keys: `weibao up` makes its own in ./var/keys, as on a new machine.
        self.env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "DATABASE_URL", "WEIBAO_KEYS")}
        self.env["WEIBAO_DEMO"] = "0"  # these tests count the logs' events; tests/test_demo.py loads the demo

    def up(self) -> None:
        self.process = subprocess.Popen(
            [*WEIBAO, "up", "--port", str(self.http_port), "--nats-port", str(self.nats_port)],
            cwd=self.workdir, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        # Read as it comes, so a test can wait for a line before it presses Ctrl-C.
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, args=(self.process,), daemon=True)
        self.reader.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.append(line)

    async def printed(self, text: str) -> None:
        async def found() -> bool:
            return any(text in line for line in self.lines)

        await eventually(found, timeout=90)

    def ctrl_c(self) -> str:
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=60)
        self.reader.join(timeout=10)
        return "".join(self.lines)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*WEIBAO, *args], cwd=self.workdir, env=self.env, capture_output=True, text=True,
                              timeout=120, check=False)


@pytest.fixture
def system(tmp_path: Path) -> Iterator[System]:
    system = System(tmp_path)
    yield system
    if system.process is not None and system.process.poll() is None:
        system.process.kill()
        system.process.wait()


async def wait_healthy(system: System) -> dict[str, Any]:
    found: dict[str, Any] = {}

    async def healthy() -> bool:
        nonlocal found
        status, found = await asyncio.to_thread(health, system.http_port)
        return status == 200

    await eventually(healthy, timeout=90, every=0.3)
    return found


async def append_to_contracts(workdir: Path, events: int) -> None:
    """Another writer on the service's SQLite log, as a command handler would be."""
    engine = make_engine(f"sqlite:///{workdir / 'var' / 'contracts.db'}")
    ring = Keyring.load(workdir / "var" / "keys")  # what `weibao up` made on its first start
    store = EventStore(engine, signer=ring.signer("contracts"))
    version = await store.version("agreement-demo")
    await store.append("agreement-demo", [NewEvent("Paid", {"n": n}) for n in range(events)],
                       expected_version=version)
    await engine.dispose()


async def test_up_serves_healthz_stops_cleanly_and_reuses_its_data(system: System) -> None:
    system.up()
    first = await wait_healthy(system)
    assert set(first["services"]) == {"contracts", "dispatch", "billing"}
    await refused_without_credentials(system.nats_port)
    await append_to_contracts(system.workdir, 5)

    async def indexed() -> bool:
        _, body = await asyncio.to_thread(health, system.http_port)
        contracts = body.get("services", {}).get("contracts", {})
        return contracts.get("consumers", {}).get("contracts-stream_index_contracts") == 5

    await eventually(indexed, timeout=30)
    # The supervisor polls health on its own: the welcome comes once it has seen it too.
    await system.printed("Weibao is running: console at http://127.0.0.1:")
    output = system.ctrl_c()
    assert system.process is not None and system.process.returncode == 0
    assert "created CONTRACTS" in output
    assert "Weibao stopped." in output

    system.up()  # the second start finds its streams and its logs
    again = await wait_healthy(system)
    contracts = again["services"]["contracts"]
    assert contracts["log_position"] == 5
    assert contracts["relayed_position"] == 5
    # The log (chain and signatures) and its stream on the broker, held against each other.
    verify = system.cli("verify", "contracts")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    report = json.loads(verify.stdout)
    assert (report["ok"], report["checked"], report["first_broken"], report["signed"]) == (True, 5, None, 5)
    assert (report["stream"]["ok"], report["stream"]["checked"], report["stream"]["foreign"]) == (True, 5, 0)
    output = system.ctrl_c()
    assert "updated CONTRACTS" in output

    verify = system.cli("verify", "contracts", "--log-only")
    assert verify.returncode == 0, verify.stderr
    assert json.loads(verify.stdout)["ok"] is True


async def refused_without_credentials(nats_port: int) -> None:
    """`weibao up`'s own broker admits nobody without credentials (issue 11, item 1): a
    plain nats-py client, and a command written straight onto the socket. (The command
    would have been a contracts event; the log holding only the 5 appended by hand,
    checked after the restart, shows it was never run.)"""
    errors: list[Exception] = []

    async def noted(error: Exception) -> None:
        errors.append(error)

    with pytest.raises(nats.errors.Error) as refused:
        await nats.connect(f"nats://127.0.0.1:{nats_port}", allow_reconnect=False, max_reconnect_attempts=0,
                           connect_timeout=5, error_cb=noted)
    assert "authorization" in " ".join(repr(e) for e in [refused.value, *errors]).lower(), (refused.value, errors)
    reader, writer = await asyncio.open_connection("127.0.0.1", nats_port)
    try:
        info = await reader.readline()
        assert info.startswith(b"INFO ") and b'"auth_required":true' in info.replace(b" ", b"")
        command = json.dumps({"customer_id": "intruder", "name": "Intruder"}).encode()
        writer.write(b'CONNECT {"verbose":false,"pedantic":false,"protocol":1,"headers":true}\r\n'
                     b"PUB weibao.contracts.customer.register _INBOX.intruder %d\r\n%s\r\nPING\r\n"
                     % (len(command), command))
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)  # the broker closes on us
    finally:
        writer.close()
    assert b"-ERR 'Authorization Violation'" in answer and b"PONG" not in answer, answer


async def test_replay_from_the_command_line_matches_the_live_model(system: System) -> None:
    system.up()
    await wait_healthy(system)
    await append_to_contracts(system.workdir, 12)

    async def indexed() -> bool:
        _, body = await asyncio.to_thread(health, system.http_port)
        return body["services"]["contracts"]["consumers"]["contracts-stream_index_contracts"] == 12

    await eventually(indexed, timeout=30)
    replay = system.cli("replay", "contracts", "stream_index_contracts")
    assert replay.returncode == 0, replay.stdout + replay.stderr
    report = json.loads(replay.stdout.strip().splitlines()[-1])
    assert report["equal"] is True
    assert report["applied"] == 12
    parked = system.cli("parked", "contracts")
    assert parked.returncode == 0
    assert parked.stdout == ""
    system.ctrl_c()


def broker_pid(workdir: Path) -> int:
    """The embedded nats-server the supervisor started: its pid file in the data folder,
    checked against /proc (a child of the supervisor, running nats-server)."""
    pid = int((workdir / "var" / "nats" / "nats.pid").read_text())
    assert "nats-server" in Path(f"/proc/{pid}/cmdline").read_text()
    return pid


def zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return False  # reaped


async def register_customer(workdir: Path, nats_port: int, customer_id: str) -> dict[str, Any]:
    """A command as the CLI sends one: its NATS identity and its signing key, both the
    ones `weibao up` made in ./var/keys."""
    seed = str(workdir / "var" / "keys" / "nats" / "cli.nk")
    nc = await connect(f"nats://127.0.0.1:{nats_port}", "test-cli", seed=seed, max_reconnect_attempts=0)
    try:
        client = Client(nc, signer_of(Keyring.load(workdir / "var" / "keys"), "cli"), timeout=10)
        return await client.answer("weibao.contracts.customer.register",
                                   {"customer_id": customer_id, "name": f"Customer {customer_id}"},
                                   actor="dispatcher:li")
    finally:
        await nc.close()


async def test_a_killed_broker_is_restarted_and_the_system_recovers_on_its_own(system: System) -> None:
    system.up()
    await wait_healthy(system)
    assert (await register_customer(system.workdir, system.nats_port, "before"))["ok"] is True
    pid = broker_pid(system.workdir)
    killed_at = time.monotonic()
    os.kill(pid, signal.SIGKILL)

    # The outage itself lasts about a second, too short to be sure to see from here on a
    # busy machine; /healthz naming the broker while it is gone is tested in
    # tests/test_gateway_health.py, where nothing restarts it.
    await system.printed("nats-server exited (-9); restarting it on")
    await system.printed("nats-server restarted on")
    assert not zombie(pid)  # reaped by the supervisor, not left for anyone to find

    recovered = await wait_healthy(system)
    seconds = time.monotonic() - killed_at
    print(f"healthy again {seconds:.1f}s after the broker was killed")
    assert recovered["broker"]["status"] == "ok"
    new_pid = broker_pid(system.workdir)
    assert new_pid != pid

    # Same port, same data, same authorization: the services reconnected and a command
    # sent now is stored, relayed and read back.
    answer = await register_customer(system.workdir, system.nats_port, "after")
    assert answer["ok"] is True, answer

    async def relayed() -> bool:
        _, body = await asyncio.to_thread(health, system.http_port)
        contracts = body.get("services", {}).get("contracts", {})
        position = contracts.get("log_position", 0)
        return bool(position >= 2 and contracts.get("relayed_position") == position)

    await eventually(relayed, timeout=30)
    output = system.ctrl_c()
    assert system.process is not None and system.process.returncode == 0
    assert "Weibao stopped." in output
    verify = system.cli("verify", "contracts", "--log-only")
    assert json.loads(verify.stdout)["ok"] is True


async def test_a_service_that_is_not_running_is_named_in_health(system: System) -> None:
    system.up()
    await wait_healthy(system)
    # Stop billing the way a crash would, and look before the supervisor restarts it.
    pid = _billing_pid(system.workdir)
    os.kill(pid, signal.SIGSTOP)  # alive but silent: it cannot answer
    body: dict[str, Any] = {}

    async def billing_down() -> bool:
        nonlocal body
        status, body = await asyncio.to_thread(health, system.http_port)
        return status == 503 and body.get("down") == ["billing"]

    try:
        await eventually(billing_down, timeout=30, every=0.2)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert body["services"]["billing"]["why"].startswith("service not answering")
    assert body["broker"]["status"] == "ok"
    await wait_healthy(system)
    system.ctrl_c()


def _billing_pid(workdir: Path) -> int:
    """The billing service this test's supervisor started (its environment names the folder)."""
    found = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _argv(p)[-2:] == ["weibao.billing", "serve"]
             and str(workdir) in _environ(p)]
    assert len(found) == 1
    return int(found[0].name)


def _argv(proc: Path) -> list[str]:
    try:
        return (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []


def _environ(proc: Path) -> str:
    try:
        return (proc / "environ").read_bytes().decode(errors="replace")
    except OSError:
        return ""
