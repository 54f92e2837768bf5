"""`weibao up`: the whole system on one machine, supervised.

Starts the embedded nats-server (unless NATS_URL points elsewhere), sets up the streams,
then each service and the gateway as child processes; restarts a child that dies; on
Ctrl-C or SIGTERM stops the children first and the broker last, so nothing is cut off
mid-write. A second start reuses the data folder.

On the first start (no `<data>/demo.loaded`) it loads the demo data once the system is
healthy, unless WEIBAO_DEMO=0; the demo users are written to the gateway's users file
(WEIBAO_USERS, default `<data>/users.json`) before the gateway starts, when there is none,
and printed with their passwords at every start. When the data folder holds the demo, the
demo pulse (runtime/pulse.py) then takes a step of a scripted request's life every
WEIBAO_DEMO_PULSE seconds (default 20; "0" stops it), so the board keeps moving.

The embedded broker admits only the NATS identities (weibao.shared.identities): their
seeds are made on the first start into `<data>/keys/nats/` and never replaced; each child
is given only its own (WEIBAO_NATS_SEED), and the supervisor itself, which loads the demo
and runs the pulse, is the `cli`. With NATS_URL set, the seeds found there are used."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from weibao.runtime import demo, pulse
from weibao.runtime.natsd import NatsServer
from weibao.shared import identities
from weibao.shared import keys as signing_keys
from weibao.shared.clock import utc_now
from weibao.shared.service import connect
from weibao.shared.settings import environment
from weibao.shared.streams import SERVICES, setup_streams

LOCK = "up.lock"


def embedded_url(data: Path) -> str | None:
    """The embedded broker's URL, from the port file `weibao up` writes (None: never started)."""
    port_file = data / "nats" / "port"
    return f"nats://127.0.0.1:{port_file.read_text().strip()}" if port_file.exists() else None


def hold_lock(data: Path, *, mine: bool = True) -> int | None:
    """Take `<data>/up.lock` for as long as this process lives (the kernel lets go when it
    dies, even by kill -9: no stale pid file to guess about); None if another holds it."""
    fd = os.open(data / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    if mine:  # the pid, for people; the lock, not the pid, is what tells
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def is_up(data: Path) -> bool:
    """Whether a `weibao up` runs on this data folder: it holds the lock."""
    if not (data / LOCK).exists():
        return False
    fd = hold_lock(data, mine=False)
    if fd is None:
        return True
    os.close(fd)
    return False


def _already_up(data: Path) -> int:
    # Two supervisors on one folder would fight over the SQLite files and the broker.
    print(f"Another `weibao up` runs on {data.resolve()} (it holds {data / LOCK}).", flush=True)
    return 1


def nats_keys(data: Path) -> Path:
    return data / "keys" / "nats"


async def streams_setup(nats_url: str, replicas: int = 1, *, seed: str | None = None) -> list[str]:
    """As the `setup` identity (`seed`): the only one the broker lets manage streams."""
    nc = await connect(nats_url, "weibao-streams-setup", seed=seed, max_reconnect_attempts=60, reconnect_time_wait=2)
    try:
        return await setup_streams(nc.jetstream(), replicas=replicas)
    finally:
        await nc.drain()


def embedded_streams_setup(data: Path, nats_url: str) -> list[str]:
    """The streams on the embedded broker, as `setup` from `<data>/keys/nats` (its file
    there, never WEIBAO_NATS_SEED: this process itself runs as the cli)."""
    seed = identities.seed_path(nats_keys(data), "setup")
    return asyncio.run(streams_setup(nats_url, seed=str(seed) if seed.exists() else None))


def jwt_secret(data: Path) -> Path:
    """`<data>/keys/jwt.secret`: the gateway's token secret, made on the first start (0600)
    and kept, so a restart signs nobody out. O_EXCL: two first starts cannot both write."""
    path = data / "keys" / "jwt.secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(48) + "\n")
    return path


def service_env(data: Path, service: str, nats_url: str) -> dict[str, str]:
    """A service's environment: DATABASE_URL, if set, wins over the embedded SQLite file;
    its NATS seed from `<data>/keys/nats`, else whatever WEIBAO_NATS_SEED says (an
    operator's `weibao replay` in the service's own container)."""
    env = dict(os.environ, NATS_URL=nats_url)
    if (seed := identities.seed_path(nats_keys(data), service)).exists():
        env[identities.SEED_ENV] = str(seed.resolve())
    if environment().database_url is not None:
        env.setdefault("WEIBAO_DB_SCHEMA", service)  # one PostgreSQL database, a schema each
    else:
        env["DATABASE_URL"] = f"sqlite:///{(data / f'{service}.db').resolve()}"
    return env


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0

    def start(self) -> None:
        # Its own session: Ctrl-C reaches only the supervisor, which stops children in order.
        self.process = subprocess.Popen(self.argv, env=self.env, start_new_session=True)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        if not self.alive():
            return
        assert self.process is not None
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class Supervisor:
    data: Path
    host: str = "127.0.0.1"
    http_port: int = 8000
    nats_port: int = 4250
    children: list[Child] = field(default_factory=list)
    stopping: bool = False
    loader: threading.Thread | None = None
    pulser: threading.Thread | None = None
    pulse_stop: threading.Event = field(default_factory=threading.Event)
    broker: NatsServer | None = None
    broker_restarts: int = 0
    broker_next_start: float = 0.0
    broker_started: float = 0.0

    @property
    def demo_enabled(self) -> bool:
        return environment().demo

    def run(self) -> int:
        # The business's records and keys: the owner's alone.
        self.data.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.data.chmod(0o700)
        if hold_lock(self.data) is None:  # held (its descriptor left open) until this process ends
            return _already_up(self.data)
        if self.demo_enabled and (written := demo.ensure_demo_users(self.data)) is not None:
            # Before the gateway starts: it signs people in from this file.
            print(f"users: wrote {len(written)} demo users to {demo.users_path(self.data)}", flush=True)
        if environment().keys is None:
            # One machine, one trust domain: the signing keys of every process (made on the
            # first start, never replaced) in one folder, as the NATS seeds are.
            signing_keys.generate(self.data / "keys")
            os.environ["WEIBAO_KEYS"] = str((self.data / "keys").resolve())
        broker = None
        nats_url = environment().explicit("nats_url")
        keys = nats_keys(self.data)
        if nats_url is None:
            # Loopback only and authenticated: every process as its own identity.
            identities.ensure(keys)
            broker = NatsServer(self.data / "nats", port=self.nats_port,
                                authorization=identities.authorization_for(keys))
            broker.start()
            self.broker, self.broker_started = broker, time.monotonic()
            (self.data / "nats" / "port").write_text(str(broker.port))
            nats_url = broker.url
        # This process loads the demo and runs the pulse: as the cli (their connect()s read it).
        if (cli_seed := identities.seed_for("cli", keys)) is not None:
            os.environ[identities.SEED_ENV] = str(Path(cli_seed).resolve())
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)
        try:
            for line in embedded_streams_setup(self.data, nats_url):
                print(f"streams: {line}", flush=True)
            self.children = [self._child(name, nats_url) for name in (*SERVICES, "gateway")]
            for child in self.children:
                child.start()
            url = f"http://{self.host}:{self.http_port}"
            if self._wait_healthy(url, timeout=60):
                print(f"\nWeibao is running: console at {url}/  (health: {url}/healthz)\n"
                      f"Data in {self.data.resolve()}. Press Ctrl-C to stop.\n", flush=True)
                if self.demo_enabled and not (self.data / demo.MARKER).exists():
                    print("Loading the demo data (first start; WEIBAO_DEMO=0 skips it) ...", flush=True)
                    self.loader = threading.Thread(target=self._load_demo, args=(nats_url, url), daemon=True,
                                                   name="demo-loader")
                    self.loader.start()
                else:
                    self._start_pulse(nats_url)
                    self._welcome(url)
            else:
                print(f"Weibao started but {url}/healthz is not yet 200; see the logs above.", flush=True)
                self._start_pulse(nats_url)  # it waits for the system itself
            while not self.stopping:
                self._restart_dead()
                time.sleep(0.5)
        finally:
            self._stop_pulse()  # before the services: no command cut off by their going
            for child in reversed(self.children):
                child.stop()
            if broker is not None:
                broker.stop()
            print("Weibao stopped.", flush=True)
        return 0

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def _load_demo(self, nats_url: str, url: str) -> None:
        """In its own thread: the main one keeps restarting children meanwhile."""
        try:
            report = asyncio.run(demo.load_and_mark(nats_url, self.data, now=utc_now()))
        except Exception as error:  # the system runs on without the demo; `weibao demo` retries it
            if not self.stopping:
                print(f"The demo data was not loaded ({error}); `weibao demo` loads it into the running system.",
                      flush=True)
        else:
            print("\n".join(report.lines()), flush=True)
        if not self.stopping:
            self._start_pulse(nats_url)  # only once the demo is in (its marker)
            self._welcome(url)

    def _start_pulse(self, nats_url: str) -> None:
        """The demo pulse, in its own thread, when the data holds the demo and
        WEIBAO_DEMO_PULSE is not "0"."""
        seconds = pulse.interval(environment().demo_pulse)
        if seconds is None or self.pulser is not None or not (self.data / demo.MARKER).exists():
            return
        print(f"Demo pulse: a new step every {seconds:g} s (WEIBAO_DEMO_PULSE=0 stops it)", flush=True)
        self.pulser = threading.Thread(target=pulse.run_in_thread, args=(nats_url, seconds, self.pulse_stop),
                                       daemon=True, name="demo-pulse")
        self.pulser.start()

    def _stop_pulse(self) -> None:
        self.pulse_stop.set()
        if self.pulser is not None:
            self.pulser.join(10)

    def _welcome(self, url: str) -> None:
        """Where to go and who to sign in as: the last thing on the screen after a start."""
        rule = "=" * 78
        lines = [rule, f"  console              {url}/", f"  technicians' phones  {url}/m/",
                 f"  audit                {url}/audit/"]
        users = demo.demo_users_note(self.data)
        if users:
            lines += ["", f"  Demo users ({demo.users_path(self.data)}):", *demo.users_table_header(), *users]
        else:
            lines += ["", f"  Users: {demo.users_path(self.data)} (no demo users here)"]
        print("\n".join(["", *lines, rule, ""]), flush=True)

    def _child(self, name: str, nats_url: str) -> Child:
        env = service_env(self.data, name, nats_url)
        if not identities.seed_path(nats_keys(self.data), name).exists():
            env.pop(identities.SEED_ENV, None)  # never this process's own (the cli's)
        if name == "gateway":
            env.update(WEIBAO_HTTP_HOST=self.host, WEIBAO_HTTP_PORT=str(self.http_port),
                       WEIBAO_USERS=str(demo.users_path(self.data).resolve()))
            if not (environment().jwt_secret or environment().jwt_secret_file):
                # By file, not value: the secret stays out of the process table and environ dumps.
                env["WEIBAO_JWT_SECRET_FILE"] = str(jwt_secret(self.data).resolve())
            return Child(name, [sys.executable, "-m", "weibao.gateway"], env)
        return Child(name, [sys.executable, "-m", f"weibao.{name}", "serve"], env)

    def _restart_broker(self) -> None:
        """The embedded broker is a child like the others: reaped when it dies (a zombie
        would hold nothing but confuse every `ps`), restarted with back-off on the same
        port, data folder and authorization, so the services' reconnect loops find it
        again and the JetStream data (fsynced on every write) is where it was."""
        broker = self.broker
        if broker is None or broker.alive() or self.stopping:
            return
        now = time.monotonic()
        if self.broker_next_start == 0.0:
            if now - self.broker_started > 60:
                self.broker_restarts = 0  # it ran a good while: an old crash no longer slows this restart
            delay = min(0.5 * 2**self.broker_restarts, 30.0)
            print(f"nats-server exited ({broker.returncode}); restarting it on {broker.url} in {delay:.1f}s",
                  flush=True)
            self.broker_next_start = now + delay
            return
        if now < self.broker_next_start:
            return
        self.broker_restarts += 1
        self.broker_next_start = 0.0
        try:
            broker.start()
        except (OSError, RuntimeError) as error:  # e.g. the port still taken: the next round backs off longer
            print(f"nats-server did not start again ({error})", flush=True)
            broker.stop(kill=True)
            return
        self.broker_started = time.monotonic()
        print(f"nats-server restarted on {broker.url} (restart {self.broker_restarts})", flush=True)

    def _restart_dead(self) -> None:
        self._restart_broker()  # first: the services need it
        now = time.monotonic()
        for child in self.children:
            if child.alive() or self.stopping:
                continue
            if child.next_start == 0.0:
                code = child.process.returncode if child.process else None
                delay = min(0.5 * 2**child.restarts, 30.0)
                print(f"{child.name} exited ({code}); restarting in {delay:.1f}s", flush=True)
                child.next_start = now + delay
            elif now >= child.next_start:
                child.restarts += 1
                child.next_start = 0.0
                child.start()

    def _wait_healthy(self, url: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.stopping:
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        return True
            except OSError:
                pass
            self._restart_dead()
            time.sleep(0.3)
        return False
