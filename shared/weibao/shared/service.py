"""What every service process runs: its log, its relay, its consumers and its NATS
request/reply endpoints, with one command line (`python -m weibao.<service> ...`).

Commands and queries answer over FastStream (request/reply needs nothing more); the
relay and the tracking consumers use nats-py directly because their guarantees rest on
controlling exactly when a message is published, fetched and acked."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import ssl
import sys
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import nats
import structlog
from faststream.nats import NatsBroker, NatsNKey, NatsSecurity
from nats.aio.client import Client as NATS
from sqlalchemy.ext.asyncio import AsyncEngine

from weibao.shared import audit, identities
from weibao.shared import consumer as consumers
from weibao.shared.db import make_engine
from weibao.shared.eventstore import EventStore
from weibao.shared.keys import Keyring, Trust
from weibao.shared.logs import configure
from weibao.shared.readmodels import ReadModel, create_tables
from weibao.shared.relay import Relay
from weibao.shared.replay import compare, discard, live_position, rebuild, rebuild_in_place, unfinished
from weibao.shared.schema import drift, migrate
from weibao.shared.settings import environment
from weibao.shared.verification import verify_service

M = TypeVar("M")

log = structlog.get_logger("weibao.service")


def health_subject(service: str) -> str:
    return f"weibao.{service}.health"


@dataclass(frozen=True)
class Settings:
    nats_url: str
    database_url: str
    db_schema: str | None = None
    # This process's NATS nkey seed file (WEIBAO_NATS_SEED); None: an open broker.
    nats_seed: str | None = None
    # Its signing key and whom it trusts (WEIBAO_KEYS). None only where no keys were
    # made (kit tests): then events go unsigned and nothing is checked; health says so.
    keys: Keyring | None = field(default_factory=Keyring.from_env)

    @property
    def trust(self) -> Trust | None:
        """The keys upstream events and callers are checked against (None: no checks)."""
        return self.keys.trust if self.keys is not None else None

    def seed(self, role: str) -> str | None:
        """The NATS seed this process connects with as `role` (weibao.shared.identities)."""
        return self.nats_seed or identities.seed_for(role)

    @classmethod
    def from_env(cls, service: str) -> Settings:
        env = environment()
        return cls(nats_url=env.nats_url, database_url=env.database_url or f"sqlite:///var/{service}.db",
                   db_schema=env.db_schema, nats_seed=env.nats_seed)


@dataclass
class Runtime:
    """What a running service holds; endpoints registered by a service receive it."""

    spec: ServiceSpec
    engine: AsyncEngine
    store: EventStore
    nc: NATS
    relay: Relay
    consumers: list[consumers.TrackingConsumer]
    keys: Keyring | None = None

    def read_model(self, kind: type[M]) -> M:
        """The one instance of a read model this service runs: its consumer writes it, the
        endpoints read its tables (and share whatever it holds), so it is built once, by
        the spec's `read_models`. Two of a kind (billing's policies): the first."""
        for tracker in self.consumers:
            if isinstance(tracker.handler, kind):
                return tracker.handler
        raise LookupError(f"{self.spec.name} runs no {kind.__name__}")

    def trust_state(self) -> dict[str, Any]:
        """Whether this service signs, and what it found that nobody should have written:
        foreign messages on its stream (its relay's alarms, the last 20) and messages its
        consumers refused for want of proof. Health and the audit status show the same."""
        return {"signing": self.store.signer is not None,
                "foreign_messages": [{"stream_seq": seq, "reason": reason} for seq, reason
                                     in sorted(self.relay.alarms.items())[-20:]],
                "refused": {c.name: c.refused for c in self.consumers if c.refused}}

    async def health(self) -> dict[str, Any]:
        trust = self.trust_state()
        return {
            "service": self.spec.name,
            # Red when someone is writing where only we may.
            "status": "alarm" if trust["foreign_messages"] or trust["refused"] else "ok",
            "log_position": await self.store.last_position(),
            "relayed_position": self.relay.position,
            "consumers": {c.name: c.applied for c in self.consumers},
            **trust,
        }


@dataclass
class ServiceSpec:
    """A service as the kit sees it: its name, the read models it keeps (each on an
    upstream stream) and a hook that registers its commands and queries."""

    name: str
    # Given the service's own log: a policy appends to it in its consumer's transaction.
    read_models: Callable[[EventStore], Sequence[tuple[str, ReadModel]]] = field(default=lambda _store: ())
    endpoints: Callable[[NatsBroker, Runtime], None] | None = None
    # Work the service does on its own schedule (e.g. a daily assessment), until stop.
    background: Callable[[Runtime, asyncio.Event], Coroutine[Any, Any, None]] | None = None

    def consumer_name(self, model: ReadModel) -> str:
        return f"{self.name}-{model.name}"


# Seconds a stopping service waits for its relay, consumers and background work to end
# on their own before it cancels them.
SHUTDOWN_GRACE = 5.0


def nats_servers(url: str) -> list[str]:
    """NATS_URL may list a cluster's nodes, comma-separated."""
    return [part.strip() for part in url.split(",") if part.strip()]


def _tls(url: str) -> ssl.SSLContext | None:
    """TLS when a URL says tls:// or a CA is given (WEIBAO_NATS_CA: the CA that signed
    the broker's certificate; without it, the system's CAs)."""
    ca = environment().nats_ca
    if ca is None and not any(server.startswith("tls://") for server in nats_servers(url)):
        return None
    return ssl.create_default_context(cafile=ca)


async def connect(url: str, name: str, *, seed: str | None = None, **overrides: Any) -> NATS:
    """A connection that rides out broker restarts instead of giving up (`overrides`:
    other nats.connect options, e.g. a one-shot command's finite reconnects); as the
    identity of the nkey `seed` file (weibao.shared.identities), with its own inbox."""
    options: dict[str, Any] = {"max_reconnect_attempts": -1, "reconnect_time_wait": 0.5, "connect_timeout": 5,
                               "allow_reconnect": True}
    if seed is not None:
        options.update(nkeys_seed=seed, inbox_prefix=identities.inbox_prefix(identities.public_key(seed)))
    if (context := _tls(url)) is not None:
        options["tls"] = context
    return await nats.connect(servers=nats_servers(url), name=name, **(options | overrides))


def broker_options(url: str, seed: str | None) -> dict[str, Any]:
    """What FastStream's NatsBroker needs to connect as connect() does."""
    context = _tls(url)
    if seed is None:
        return {} if context is None else {"security": NatsSecurity(ssl_context=context)}
    return {"security": NatsNKey.from_file(seed, ssl_context=context),
            "inbox_prefix": identities.inbox_prefix(identities.public_key(seed))}


def _database(settings: Settings) -> AsyncEngine:
    url = settings.database_url
    if url.startswith("sqlite:///"):
        # The event log and read models are the business's records: the owner's alone.
        # The file is made (or narrowed) 0600 before SQLite opens it; its -wal, -shm and
        # journal files take the database file's mode. A new folder is 0700.
        path = Path(url.removeprefix("sqlite:///").split("?", 1)[0])
        if str(path) not in ("", ":memory:"):
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            path.chmod(0o600)
    return make_engine(url, schema=settings.db_schema)


async def serve(spec: ServiceSpec, settings: Settings, stop: asyncio.Event) -> None:
    engine = _database(settings)
    keys = settings.keys
    store = EventStore(engine, signer=keys.signer(spec.name) if keys is not None else None)
    await store.create_tables()
    if keys is None:
        log.warning("service.unsigned", service=spec.name,
                    reason="no WEIBAO_KEYS: events are not signed and upstream events are not checked")
    elif store.signer is None:
        raise SystemExit(f"{spec.name}: WEIBAO_KEYS has no signing key for {spec.name} (signing/{spec.name}.key)")
    else:
        await store.start_signing()
    models = list(spec.read_models(store))
    reshaped = await _reshaped(engine, spec, models)
    for _, model in models:
        await create_tables(engine, model)
    seed = settings.seed(spec.name)
    nc = await connect(settings.nats_url, spec.name, seed=seed)
    if reshaped:
        await _rebuild_reshaped(engine, nc, [(up, model, spec.consumer_name(model)) for up, model in reshaped],
                                settings.trust)
    broker = NatsBroker(nats_servers(settings.nats_url), max_reconnect_attempts=-1, logger=None,
                        **broker_options(settings.nats_url, seed))
    trackers = [
        consumers.TrackingConsumer(engine, nc, upstream, spec.consumer_name(model), model, on_commit=store.notify,
                                   trust=settings.trust)
        for upstream, model in models
    ]
    runtime = Runtime(spec, engine, store, nc, Relay(store, nc, spec.name), trackers, keys=settings.keys)

    @broker.subscriber(health_subject(spec.name))
    async def health() -> dict[str, Any]:
        return await runtime.health()

    audit.register(broker, runtime)
    if spec.endpoints is not None:
        spec.endpoints(broker, runtime)
    await broker.start()
    tasks = [asyncio.create_task(runtime.relay.run(stop), name="relay")]
    tasks += [asyncio.create_task(t.run(stop), name=t.name) for t in trackers]
    if spec.background is not None:
        tasks.append(asyncio.create_task(_supervised(spec, runtime, stop), name="background"))
    log.info("service.started", service=spec.name, nats=settings.nats_url,
             database=engine.url.render_as_string(hide_password=True))
    try:
        await stop.wait()
    finally:
        # Let the relay, the consumers and the background work see `stop` and finish what
        # they hold before anything is cancelled: a task cancelled between a write and its
        # commit can leave SQLite's write lock with a connection nobody will close, and
        # the next writer (a replay, a restart) then finds the database locked.
        stop.set()  # also when `serve` itself was cancelled rather than stopped
        await broker.stop()
        _, late = await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE) if tasks else (set(), set())
        for task in late:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await store.drain()  # appends already handed to the group commit are stored
        # close, not drain: draining a pull subscription waits forever, and whatever we
        # fetched but did not ack is redelivered anyway.
        await nc.close()
        await engine.dispose()
        log.info("service.stopped", service=spec.name)


async def _reshaped(engine: AsyncEngine, spec: ServiceSpec,
                    models: Sequence[tuple[str, ReadModel]]) -> list[tuple[str, ReadModel]]:
    """The read models whose tables this release changed, or whose rebuild an earlier
    start began and did not finish (and those sharing their tables), to be rebuilt from
    their streams before their consumers start: a read model is derived, so its new
    shape is reached by replaying, not by a migration. (The kit's tables and the logs,
    which are not derived, are versioned by weibao.shared.schema.)"""
    changed: dict[int, list[str]] = {}
    interrupted = await unfinished(engine)
    async with engine.connect() as conn:
        for _, model in models:
            found = await conn.run_sync(drift, model.tables())
            if spec.consumer_name(model) in interrupted:
                found.append("an earlier rebuild did not finish")
            if found:
                changed.setdefault(id(model.metadata), []).extend(found)
    reshaped = [(upstream, model) for upstream, model in models if id(model.metadata) in changed]
    for upstream, model in reshaped:
        log.warning("readmodel.rebuild", model=model.name, upstream=upstream, changes=changed[id(model.metadata)])
    return reshaped


async def _rebuild_reshaped(engine: AsyncEngine, nc: NATS, models: list[tuple[str, ReadModel, str]],
                            trust: Trust | None, attempts: int = 5) -> None:
    """Rebuild in place, again from the start if the broker or the database fails under
    it (a busy broker, a node changing leader): each attempt drops what the last left."""
    for attempt in range(1, attempts + 1):
        try:
            await rebuild_in_place(engine, nc, models, trust=trust)
            return
        except Exception as error:
            if attempt == attempts:
                raise
            log.warning("readmodel.rebuild_retry", attempt=attempt, error=repr(error))
            await asyncio.sleep(min(2.0**attempt, 30.0))


# Seconds before background work that failed starts again (doubling up to the last).
BACKGROUND_RETRY = (1.0, 30.0)


async def _supervised(spec: ServiceSpec, runtime: Runtime, stop: asyncio.Event) -> None:
    """The service's background work (deadline clock, daily assessment) until `stop`,
    started again after it fails: a database restart or a broker outage under one of its
    turns must not end the clock for the life of the process while commands and
    consumers go on. Each start begins with a full turn, which is safe: the work is
    idempotent (command ids, version checks)."""
    assert spec.background is not None
    shortest, longest = BACKGROUND_RETRY
    pause = shortest
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        began = loop.time()
        try:
            await spec.background(runtime, stop)
            return
        except asyncio.CancelledError:
            raise
        except Exception as error:
            # A run that went well for a while starts the back-off over.
            pause = shortest if loop.time() - began > longest else pause
            log.warning("background.retry", service=spec.name, error=repr(error), retry_in=pause)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)
            pause = min(pause * 2, longest)


def _find_model(spec: ServiceSpec, name: str, store: EventStore) -> tuple[str, ReadModel]:
    models = {model.name: (upstream, model) for upstream, model in spec.read_models(store)}
    if name not in models:
        raise SystemExit(f"{spec.name} has no read model {name!r}; it has: {', '.join(sorted(models)) or 'none'}")
    return models[name]


async def replay_command(spec: ServiceSpec, settings: Settings, name: str, *, show_progress: bool) -> int:
    """Rebuild `name` into fresh tables up to the live model's position and compare."""
    engine = _database(settings)
    upstream, live = _find_model(spec, name, EventStore(engine))
    fresh_model = getattr(live, "fresh", None)
    if fresh_model is None:
        raise SystemExit(f"read model {name!r} cannot be built beside itself (no fresh())")
    fresh = fresh_model("__replay")
    nc = await connect(settings.nats_url, f"{spec.name}-replay",
                       seed=settings.seed(spec.name))
    try:
        until = await live_position(engine, spec.consumer_name(live), upstream)
        bar = None
        if show_progress:
            from tqdm import tqdm

            bar = tqdm(total=0, unit="msg", desc=f"replay {name}")

        def progress(seq: int, last: int) -> None:
            if bar is not None:
                bar.total = last
                bar.update(seq - bar.n)

        result = await rebuild(engine, nc, upstream, fresh, until=until, progress=progress,
                               trust=settings.trust)
        if bar is not None:
            bar.close()
        result.differences = await compare(engine, live, fresh)
        print(json.dumps({"model": name, "applied": result.applied, "position": result.position,
                          "live_position": until, "skipped": result.skipped, "equal": result.equal,
                          "differences": result.differences}, default=str, ensure_ascii=False))
        return 0 if result.equal else 1
    finally:
        try:
            await discard(engine, fresh)  # also after a failure: no `__replay` table outlives its replay
        finally:
            await nc.close()
            await engine.dispose()


async def parked_command(spec: ServiceSpec, settings: Settings, retry: int | None) -> int:
    engine = _database(settings)
    try:
        if retry is None:
            for parked in await consumers.list_parked(engine):
                print(json.dumps(parked.__dict__, default=str, ensure_ascii=False))
            return 0
        rows = {p.id: p for p in await consumers.list_parked(engine)}
        if retry not in rows:
            raise SystemExit(f"no parked message {retry}")
        handlers = {spec.consumer_name(model): model for _, model in spec.read_models(EventStore(engine))}
        handler = handlers.get(rows[retry].consumer)
        if handler is None:
            raise SystemExit(f"{spec.name} has no consumer {rows[retry].consumer!r}")
        applied = await consumers.retry_parked(engine, retry, handler,
                                               trust=settings.trust)
        print("applied" if applied else "failed again; see `parked` for the reason")
        return 0 if applied else 1
    finally:
        await engine.dispose()


async def migrate_command(settings: Settings) -> int:
    """One command to upgrade a database before a rollout (a start does the same)."""
    engine = _database(settings)
    try:
        before, after = await migrate(engine)
        print(json.dumps({"from": before, "to": after}))
        return 0
    finally:
        await engine.dispose()


async def verify_command(spec: ServiceSpec, settings: Settings, *, stream: bool) -> int:
    """The log's chain and signatures; with `stream`, also the broker's copy of it."""
    nc = None
    if stream:
        try:
            # One attempt per server: nats-py reads max_reconnect_attempts=0 as "no limit".
            nc = await connect(settings.nats_url, f"{spec.name}-verify",
                               seed=settings.seed(spec.name),
                               max_reconnect_attempts=1, allow_reconnect=False, connect_timeout=3)
        except Exception as error:  # any failure to reach the broker is the operator's answer
            print(f"the broker at {settings.nats_url} does not answer ({error!r}): the stream cannot be "
                  "checked; `--log-only` checks the log alone", file=sys.stderr)
            return 2
    engine = _database(settings)
    try:
        result = await verify_service(EventStore(engine), spec.name,
                                      settings.trust, nc)
        print(json.dumps(result, ensure_ascii=False))
        return 0 if result["ok"] else 1
    finally:
        if nc is not None:
            await nc.close()
        await engine.dispose()


def main(spec: ServiceSpec, argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m weibao.{spec.name}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the service until SIGINT or SIGTERM")
    replay = sub.add_parser("replay", help="rebuild a read model from position 0 and compare it with the live one")
    replay.add_argument("model")
    parked = sub.add_parser("parked", help="list parked messages, or retry one")
    parked.add_argument("--retry", type=int, metavar="ID")
    sub.add_parser("migrate", help="bring the kit's tables to the current revision (also done at every start)")
    verify = sub.add_parser("verify", help="check this service's log (chain, signatures) and its stream against it")
    verify.add_argument("--log-only", action="store_true", help="the log alone, without the broker")
    args = parser.parse_args(argv)
    configure()
    settings = Settings.from_env(spec.name)
    if args.command == "serve":
        return asyncio.run(_serve_until_signal(spec, settings))
    if args.command == "replay":
        return asyncio.run(replay_command(spec, settings, args.model, show_progress=sys.stderr.isatty()))
    if args.command == "parked":
        return asyncio.run(parked_command(spec, settings, args.retry))
    if args.command == "migrate":
        return asyncio.run(migrate_command(settings))
    return asyncio.run(verify_command(spec, settings, stream=not args.log_only))


async def _serve_until_signal(spec: ServiceSpec, settings: Settings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await serve(spec, settings, stop)
    return 0
