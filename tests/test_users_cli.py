"""`weibao users ...`, a real process as the `cli` NATS identity on a real, authenticated
nats-server: add, list, disable, enable, reset-password; the password read from stdin
(or a prompt), never from the command line, and at least 10 characters."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import connect_harness
from weibao.runtime.natsd import NatsServer
from weibao.shared import identities
from weibao.shared.streams import setup_streams
from weibao.shared.users import UserStore, verify_password

PASSWORD = "tea at the west lake"


def weibao(url: str, tmp_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    seed = identities.seed_for("cli")
    assert seed is not None
    env = dict(os.environ, NATS_URL=url, **{identities.SEED_ENV: seed})
    return subprocess.run([sys.executable, "-m", "weibao.runtime.cli", "--data", str(tmp_path / "var"), *args],
                          check=False, input=stdin, capture_output=True, text=True, env=env, timeout=60)


async def _setup_and(url: str, username: str | None = None) -> tuple[bool, bool] | None:
    nc = await connect_harness(url)
    try:
        if username is None:
            await setup_streams(nc.jetstream())
            return None
        found = await (await UserStore.open(nc.jetstream())).get(username)
        assert found is not None
        user, _ = found
        return user.disabled, verify_password(user.password_hash, PASSWORD)
    finally:
        await nc.close()


@pytest.fixture
def url(nats_server: NatsServer) -> str:
    asyncio.run(_setup_and(nats_server.url))
    return nats_server.url


def test_the_users_round_trip(url: str, nats_server: NatsServer, tmp_path: Path) -> None:
    added = weibao(url, tmp_path, "users", "add", "wu", "--role", "dispatcher", "--display-name", "吴",
                   "--password-stdin", stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == "added wu (dispatcher)"
    assert asyncio.run(_setup_and(url, "wu")) == (False, True)
    tech = weibao(url, tmp_path, "users", "add", "near", "--role", "technician", "--technician-id", "t-7",
                  "--password-stdin", stdin=PASSWORD)
    assert tech.returncode == 0, tech.stderr

    listed = weibao(url, tmp_path, "users", "list")
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[:3] for line in listed.stdout.splitlines()] == [
        ["near", "technician", "enabled"], ["wu", "dispatcher", "enabled"]]
    assert "technician=t-7" in listed.stdout and "$argon2" not in listed.stdout

    assert weibao(url, tmp_path, "users", "disable", "wu").returncode == 0
    assert asyncio.run(_setup_and(url, "wu")) == (True, True)
    assert "disabled" in weibao(url, tmp_path, "users", "list").stdout
    assert weibao(url, tmp_path, "users", "enable", "wu").returncode == 0
    assert asyncio.run(_setup_and(url, "wu")) == (False, True)

    reset = weibao(url, tmp_path, "users", "reset-password", "wu", "--password-stdin", stdin="another one, longer\n")
    assert reset.returncode == 0, reset.stderr
    assert asyncio.run(_setup_and(url, "wu")) == (False, False)  # the old password no longer matches

    again = weibao(url, tmp_path, "users", "add", "wu", "--role", "dispatcher", "--password-stdin", stdin=PASSWORD)
    assert again.returncode == 1 and "exists already" in again.stderr
    nobody = weibao(url, tmp_path, "users", "disable", "nobody")
    assert nobody.returncode == 1 and "no user named 'nobody'" in nobody.stderr
    # Only what the cli identity may do: the broker refused nothing.
    assert [line for line in (nats_server.data_dir / "nats.log").read_text().splitlines()
            if " Violation - " in line] == []


def test_a_password_is_never_an_argument_and_never_short(url: str, tmp_path: Path) -> None:
    as_argument = weibao(url, tmp_path, "users", "add", "wu", "--role", "dispatcher", "--password", PASSWORD)
    assert as_argument.returncode == 2  # argparse: no such option
    short = weibao(url, tmp_path, "users", "add", "wu", "--role", "dispatcher", "--password-stdin",
                   stdin="123456789\n")
    assert short.returncode == 1
    assert "a password needs at least 10 characters" in short.stderr
    no_terminal = weibao(url, tmp_path, "users", "add", "wu", "--role", "dispatcher", stdin=PASSWORD)
    assert no_terminal.returncode == 1 and "use --password-stdin" in no_terminal.stderr
    lonely = weibao(url, tmp_path, "users", "add", "wu", "--role", "technician", "--password-stdin", stdin=PASSWORD)
    assert lonely.returncode == 1 and "technician_id" in lonely.stderr


def test_the_prompt_asks_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    from io import StringIO

    from weibao.runtime.users_cli import read_password
    from weibao.shared.users import UserError

    class Terminal(StringIO):
        def isatty(self) -> bool:
            return True

    answers = iter([PASSWORD, PASSWORD, PASSWORD, "a typo"])
    assert read_password(False, Terminal(), lambda _prompt: next(answers)) == PASSWORD
    with pytest.raises(UserError, match="differ"):
        read_password(False, Terminal(), lambda _prompt: next(answers))
