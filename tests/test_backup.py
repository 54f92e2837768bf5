"""`weibao backup` / `weibao restore` on the embedded system: the databases, users and
keys back; the streams rebuilt by the relays from the restored logs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tests.helpers import eventually
from tests.test_replay_all import quiet
from tests.test_runtime import System, wait_healthy
from weibao.runtime import demo
from weibao.shared.client import Client, signer_of
from weibao.shared.keys import Keyring
from weibao.shared.service import connect
from weibao.shared.streams import SERVICES

# Dispatch's deadline watch runs on the clock at each start: a request nearer its
# deadline now gets an at-risk event, which moves these (and the next check, the row's
# version); nothing else may differ.
MOVED_BY_THE_CLOCK = {"at_risk", "last_event", "updated_at", "next_check", "version"}


async def answers(system: System) -> dict[str, Any]:
    """What the board and the invoice list show, asked as the CLI (its keys from ./var)."""
    keys = system.workdir / "var" / "keys"
    nc = await connect(f"nats://127.0.0.1:{system.nats_port}", "test-cli", seed=str(keys / "nats" / "cli.nk"),
                       max_reconnect_attempts=0)
    try:
        client = Client(nc, signer_of(Keyring.load(keys), "cli"), timeout=10)
        return {
            "board": await client.ask("dispatch", "tickets", {"limit": 200}, actor="dispatcher:li"),
            "invoices": await client.ask("billing", "invoices", {"limit": 200}, actor="dispatcher:li"),
        }
    finally:
        await nc.close()


async def test_backup_of_a_running_system_restores_after_losing_databases_and_streams(tmp_path: Path) -> None:
    system = System(tmp_path / "site")
    system.workdir.mkdir()
    system.env.update(WEIBAO_DEMO="1", WEIBAO_DEMO_PULSE="0")
    var, saved = system.workdir / "var", tmp_path / "backup"
    try:
        system.up()
        await wait_healthy(system)

        async def loaded() -> bool:
            return (var / demo.MARKER).exists()

        await eventually(loaded, timeout=180, every=0.5)
        await quiet(system)
        before = await answers(system)
        assert before["board"] and before["invoices"]

        taken = system.cli("backup", str(saved))  # while it runs: online snapshots
        assert taken.returncode == 0, taken.stdout + taken.stderr
        refused = system.cli("restore", str(saved))
        assert refused.returncode == 1
        assert "the system is up" in refused.stdout and "up.lock" in refused.stdout
        system.ctrl_c()

        # The disaster: every database and the broker's whole store gone.
        for database in var.glob("*.db*"):
            database.unlink()
        shutil.rmtree(var / "nats" / "jetstream")
        restored = system.cli("restore", str(saved))
        assert restored.returncode == 0, restored.stdout + restored.stderr
        assert "created CONTRACTS" in restored.stdout

        system.up()
        await wait_healthy(system)
        await quiet(system)  # the relays have republished every log
        for service in SERVICES:
            verify = system.cli("verify", service)
            report = json.loads(verify.stdout)
            assert verify.returncode == 0 and report["ok"] and report["stream"]["ok"], verify.stdout
            assert report["signed"] > 0
            replay = system.cli("replay", service, f"stream_index_{service}")
            assert replay.returncode == 0, replay.stdout + replay.stderr
            assert json.loads(replay.stdout.strip().splitlines()[-1])["equal"] is True
        after = await answers(system)
        assert after["invoices"] == before["invoices"]
        # The board's rows as before, but for what the clock moves (deadlines' time left).
        changed = {key for old, new in zip(before["board"]["items"], after["board"]["items"], strict=True)
                   for key in old if old[key] != new.get(key)}
        assert changed <= MOVED_BY_THE_CLOCK, changed
        assert "Loading the demo data" not in "".join(system.lines[-200:])  # the marker came back too
    finally:
        if system.process is not None and system.process.poll() is None:
            system.ctrl_c()
