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
import sys
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import structlog
from faststream.nats import NatsBroker
from nats.aio.client import Client as NATS
from sqlalchemy.ext.asyncio import AsyncEngine

from weibao.shared import audit
from weibao.shared import consumer as consumers
from weibao.shared.db import make_engine
from weibao.shared.eventstore import EventStore
from weibao.shared.logs import configure
from weibao.shared.readmodels import ReadModel, create_tables
from weibao.shared.relay import Relay
from weibao.shared.replay import compare, live_position, rebuild

log = structlog.get_logger("weibao.service")


def health_subject(service: str) -> str:
    return f"weibao.{service}.health"


@dataclass(frozen=True)
class Settings:
    nats_url: str
    database_url: str
    db_schema: str | None = None

    @classmethod
    def from_env(cls, service: str) -> Settings:
        return cls(
            nats_url=os.environ.get("NATS_URL", "nats://127.0.0.1:4222"),
            database_url=os.environ.get("DATABASE_URL", f"sqlite:///var/{service}.db"),
            db_schema=os.environ.get("WEIBAO_DB_SCHEMA") or None,
        )


@dataclass
class Runtime:
    """What a running service holds; endpoints registered by a service receive it."""

    spec: ServiceSpec
    engine: AsyncEngine
    store: EventStore
    nc: NATS
    relay: Relay
    consumers: list[consumers.TrackingConsumer]

    async def health(self) -> dict[str, Any]:
        return {
            "service": self.spec.name,
            "status": "ok",
            "log_position": await self.store.last_position(),
            "relayed_position": self.relay.position,
            "consumers": {c.name: c.applied for c in self.consumers},
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


async def connect(url: str, name: str) -> NATS:
    """A connection that rides out broker restarts instead of giving up."""
    return await nats.connect(
        servers=nats_servers(url), name=name, max_reconnect_attempts=-1, reconnect_time_wait=0.5,
        connect_timeout=5, allow_reconnect=True,
    )


def _database(settings: Settings) -> AsyncEngine:
    url = settings.database_url
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return make_engine(url, schema=settings.db_schema)


async def serve(spec: ServiceSpec, settings: Settings, stop: asyncio.Event) -> None:
    engine = _database(settings)
    store = EventStore(engine)
    await store.create_tables()
    models = list(spec.read_models(store))
    for _, model in models:
        await create_tables(engine, model)
    nc = await connect(settings.nats_url, spec.name)
    broker = NatsBroker(nats_servers(settings.nats_url), max_reconnect_attempts=-1, logger=None)
    trackers = [
        consumers.TrackingConsumer(engine, nc, upstream, spec.consumer_name(model), model, on_commit=store.notify)
        for upstream, model in models
    ]
    runtime = Runtime(spec, engine, store, nc, Relay(store, nc, spec.name), trackers)

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
        tasks.append(asyncio.create_task(spec.background(runtime, stop), name="background"))
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
    nc = await connect(settings.nats_url, f"{spec.name}-replay")
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

        result = await rebuild(engine, nc, upstream, fresh, until=until, progress=progress)
        if bar is not None:
            bar.close()
        result.differences = await compare(engine, live, fresh)
        print(json.dumps({"model": name, "applied": result.applied, "position": result.position,
                          "live_position": until, "skipped": result.skipped, "equal": result.equal,
                          "differences": result.differences}, default=str, ensure_ascii=False))
        return 0 if result.equal else 1
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
        applied = await consumers.retry_parked(engine, retry, handler)
        print("applied" if applied else "failed again; see `parked` for the reason")
        return 0 if applied else 1
    finally:
        await engine.dispose()


async def verify_command(settings: Settings) -> int:
    engine = _database(settings)
    try:
        report = await EventStore(engine).verify()
        print(json.dumps({"ok": report.ok, "checked": report.checked, "first_broken": report.first_broken,
                          "reason": report.reason}))
        return 0 if report.ok else 1
    finally:
        await engine.dispose()


def main(spec: ServiceSpec, argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m weibao.{spec.name}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the service until SIGINT or SIGTERM")
    replay = sub.add_parser("replay", help="rebuild a read model from position 0 and compare it with the live one")
    replay.add_argument("model")
    parked = sub.add_parser("parked", help="list parked messages, or retry one")
    parked.add_argument("--retry", type=int, metavar="ID")
    sub.add_parser("verify", help="check the hash chain of this service's log")
    args = parser.parse_args(argv)
    configure()
    settings = Settings.from_env(spec.name)
    if args.command == "serve":
        return asyncio.run(_serve_until_signal(spec, settings))
    if args.command == "replay":
        return asyncio.run(replay_command(spec, settings, args.model, show_progress=sys.stderr.isatty()))
    if args.command == "parked":
        return asyncio.run(parked_command(spec, settings, args.retry))
    return asyncio.run(verify_command(settings))


async def _serve_until_signal(spec: ServiceSpec, settings: Settings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await serve(spec, settings, stop)
    return 0
