"""`weibao backup` / `weibao restore` on the embedded system: the databases, users and
keys back; the streams rebuilt by the relays from the restored logs; the users and the
revocations, which live only in JetStream key-value buckets, back before the gateway
starts (issue 12, Backups); every file of a backup the owner's alone."""

from __future__ import annotations

import asyncio
import json
import shutil
import stat
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.helpers import eventually
from tests.test_replay_all import quiet
from tests.test_runtime import WEIBAO, System, wait_healthy
from weibao.runtime import demo
from weibao.shared.client import Client, signer_of
from weibao.shared.keys import Keyring
from weibao.shared.service import connect
from weibao.shared.streams import SERVICES

# Dispatch's deadline watch runs on the clock at each start: a request nearer its
# deadline now gets an at-risk event, which moves these (and the next check, the row's
# version); nothing else may differ.
MOVED_BY_THE_CLOCK = {"at_risk", "last_event", "updated_at", "next_check", "version"}

NEWCOMER, NEWCOMER_PASSWORD = "xinren", "a-long-new-password"  # added with `weibao users add`: in the bucket only
DISABLED = next(u for u in demo.STAFF if u.role == "billing")  # a demo user, disabled in the bucket only


def http(port: int, method: str, path: str, body: dict[str, Any] | None = None,
         token: str | None = None) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json",
                                              **({"Authorization": f"Bearer {token}"} if token else {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


async def sign_in(system: System, username: str, password: str) -> tuple[int, dict[str, Any]]:
    """A sign-in once the gateway has its users (503 while it attaches to the bucket)."""
    answer: tuple[int, dict[str, Any]] = (0, {})

    async def attached() -> bool:
        nonlocal answer
        answer = await asyncio.to_thread(http, system.http_port, "POST", "/api/v1/session",
                                         {"username": username, "password": password})
        return answer[0] != 503

    await eventually(attached, timeout=60, every=0.3)
    return answer


def users_cli(system: System, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([*WEIBAO, "users", *args], cwd=system.workdir, env=system.env, input=stdin,
                          capture_output=True, text=True, timeout=120, check=False)


def modes(root: Path) -> dict[str, int]:
    """Each path under `root` (and itself) with its permission bits."""
    return {str(path.relative_to(root)): stat.S_IMODE(path.stat().st_mode) for path in [root, *root.rglob("*")]}


async def sign_in_state_only_in_buckets(system: System) -> str:
    """What exists only in the buckets: a user added, a demo user disabled, a token signed
    out (a revocation). Returns that token."""
    added = users_cli(system, "add", NEWCOMER, "--role", "dispatcher", "--password-stdin",
                      stdin=NEWCOMER_PASSWORD + "\n")
    assert added.returncode == 0, added.stdout + added.stderr
    disabled = users_cli(system, "disable", DISABLED.username)
    assert disabled.returncode == 0, disabled.stdout + disabled.stderr
    status, session = await sign_in(system, NEWCOMER, NEWCOMER_PASSWORD)
    assert status == 200, session
    token = str(session["access_token"])
    status, out = await asyncio.to_thread(http, system.http_port, "DELETE", "/api/v1/session", token=token)
    assert status == 200 and out["revoked"] == 1, out
    return token


def owner_only_with_the_buckets(saved: Path) -> None:
    """Every file 0600 and folder 0700 (issue 12, item 4: it holds hashes, seeds, keys),
    and the buckets exported whole."""
    loose = {path: oct(mode) for path, mode in modes(saved).items()
             if mode != (0o700 if (saved / path).is_dir() else 0o600)}
    assert not loose, loose
    manifest = json.loads((saved / "manifest.json").read_text())
    assert manifest["buckets"]["weibao_users"]["entries"] == len(demo.DEMO_USERS) + 1
    assert manifest["buckets"]["weibao_revoked"]["entries"] == 1


def stopped_backup_exports_the_same_buckets(system: System, online: Path, offline: Path) -> None:
    """Stopped, the buckets are read from a broker started on the store for the purpose."""
    stopped = system.cli("backup", str(offline))
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    for bucket in ("users-bucket.json", "revoked-bucket.json"):
        taken, again = (json.loads((folder / bucket).read_text())["entries"] for folder in (online, offline))
        assert [row["key"] for row in again] == [row["key"] for row in taken], bucket
        if bucket == "users-bucket.json":
            assert again == taken  # every value byte for byte


async def sign_in_state_as_before(system: System, signed_out: str) -> None:
    """The users as they were in the bucket, not as the users file says: the newcomer signs
    in, the demo user disabled stays disabled, the signed-out token stays out."""
    status, session = await sign_in(system, NEWCOMER, NEWCOMER_PASSWORD)
    assert status == 200 and session["user"]["role"] == "dispatcher", session
    status, refused = await sign_in(system, DISABLED.username, DISABLED.password)
    assert status == 401 and "disabled" in refused["error"]["message"], refused
    status, refused = await asyncio.to_thread(http, system.http_port, "GET", "/api/v1/me", token=signed_out)
    assert status == 401 and "signed out" in refused["error"]["message"], refused


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

        signed_out = await sign_in_state_only_in_buckets(system)

        taken = system.cli("backup", str(saved))  # while it runs: online snapshots
        assert taken.returncode == 0, taken.stdout + taken.stderr
        owner_only_with_the_buckets(saved)
        refused = system.cli("restore", str(saved))
        assert refused.returncode == 1
        assert "the system is up" in refused.stdout and "up.lock" in refused.stdout
        system.ctrl_c()
        stopped_backup_exports_the_same_buckets(system, saved, tmp_path / "backup-stopped")

        # The disaster: every database, the users file and the broker's whole store
        # (the buckets with it) gone.
        for database in var.glob("*.db*"):
            database.unlink()
        demo.users_path(var).unlink()
        shutil.rmtree(var / "nats" / "jetstream")
        restored = system.cli("restore", str(saved))
        assert restored.returncode == 0, restored.stdout + restored.stderr
        assert "created CONTRACTS" in restored.stdout
        assert "weibao_users: " in restored.stdout and "weibao_revoked: 1 entry restored" in restored.stdout
        for name in ("contracts", "dispatch", "billing"):
            assert stat.S_IMODE((var / f"{name}.db").stat().st_mode) == 0o600

        system.up()
        await wait_healthy(system)
        await sign_in_state_as_before(system, signed_out)
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
