"""python -m bench [--events N] [--quick] [--seconds S]: the backbone benchmark.

Prints each layer's rate beside the raw rate of the layer below, measured in the same run."""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import secrets
import sqlite3
import subprocess
import tempfile
from importlib.metadata import version
from pathlib import Path

import nats
from nats.aio.client import Client as NATSClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.consumer import consumer_rate, no_op, ordered_read_rate
from bench.relay import SERVICE, SIGNED_SERVICE, bench_relays
from bench.replay import replay_rate
from bench.report import Result, cost, show, table
from bench.store import bench_store
from weibao.runtime.natsd import NatsServer, server_binary
from weibao.shared import keys
from weibao.shared.consumer import Handler, TrackingConsumer
from weibao.shared.db import make_engine
from weibao.shared.eventstore import EventStore
from weibao.shared.keys import Trust
from weibao.shared.logs import configure
from weibao.shared.readmodels import StreamIndex, create_tables
from weibao.shared.streams import setup_streams

POSTGRES_ENV = "WEIBAO_BENCH_POSTGRES_URL"
POSTGRES_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"
WRITERS = (1, 16)
BASELINES = """
baselines:
  Core insert: the events table's columns (position autoincrement, constant hashes), one row per
    begin_write transaction; the store also locks, reads the stream's version and the chain's tail.
  js.publish_async: the relay's payload bytes, with stream= but no Weibao, Msg-Id or expected-sequence
    headers, to a stream with the service stream's settings; all N in flight, then all acks awaited.
  ordered consumer read: js.subscribe(ordered_consumer=True, deliver_policy=ALL), next_msg() N times,
    no database; replay reads the stream the same way.
  (diagnostic) rows isolate the consumer's own cost: same TrackingConsumer, a handler that writes nothing.
  signed: a second log, its own SQLite file, every event's hash signed (Ed25519) at append, relayed to the
    dispatch stream. verified: TrackingConsumer(trust=...) checks each message's hash, signature and link
    before applying it; not verified: trust=None, the same signed messages, nothing checked.
  cost lines: 1e6/rate_on - 1e6/rate_off per event, from rates of this run; signing at append from filling
    the two logs (100 events per append), the others from the rows beside them."""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, help="events through relay, consumer, replay (default 20000)")
    parser.add_argument("--seconds", type=float, help="duration of each event-store measurement (default 3)")
    parser.add_argument("--quick", action="store_true", help="small run: 2000 events, 1 s per store measurement")
    args = parser.parse_args()
    if args.events is None:
        args.events = 2_000 if args.quick else 20_000
    if args.seconds is None:
        args.seconds = 1.0 if args.quick else 3.0
    return args


async def postgres_version(url: str) -> str | None:
    """The server's version, or None (with a note) when it cannot be reached."""
    engine = make_engine(url)
    try:
        async with asyncio.timeout(5), engine.connect() as conn:
            return str(await conn.scalar(text("SHOW server_version")))
    except Exception as error:
        print(f"note: PostgreSQL at {url} is unreachable, its rows are skipped ({type(error).__name__}: {error})")
        return None
    finally:
        await engine.dispose()


async def drop_schema(url: str, schema: str) -> None:
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        await engine.dispose()


def engines(tmp: Path, name: str, pg_url: str | None, schema: str) -> dict[str, AsyncEngine]:
    """One engine per backend: a fresh SQLite file, and PostgreSQL's bench schema."""
    found = {"sqlite": make_engine(f"sqlite:///{tmp / name}")}
    if pg_url is not None:
        found["postgres"] = make_engine(pg_url, schema=schema)
    return found


async def dispose(found: dict[str, AsyncEngine]) -> None:
    for engine in found.values():
        await engine.dispose()


async def store_layer(tmp: Path, seconds: float, pg_url: str | None, schema: str) -> list[Result]:
    found = engines(tmp, "store.db", pg_url, schema)
    try:
        return [result for backend, engine in found.items()
                for result in await bench_store(backend, engine, seconds, WRITERS)]
    finally:
        await dispose(found)


async def verification(engine: AsyncEngine, nc: NATSClient, events: int,
                       trust: Trust) -> tuple[list[Result], list[str]]:
    """Consumer rows on the signed stream, not verified then verified: the same messages and the same
    handler (each StreamIndex in its own table), so the difference is the verification alone."""
    read, read_rate = "ordered consumer read, signed", await ordered_read_rate(nc, SIGNED_SERVICE, events)
    plain_index, verified_index = StreamIndex(SIGNED_SERVICE, "_plain"), StreamIndex(SIGNED_SERVICE, "_verified")
    for model in (plain_index, verified_index):
        await create_tables(engine, model)
    pairs: list[tuple[str, Handler, Handler]] = [("consumer -> StreamIndex sqlite", plain_index, verified_index),
                                                 ("(diagnostic) consumer -> no-op sqlite", no_op, no_op)]
    results, costs = [], []
    for n, (layer, plain_handler, verified_handler) in enumerate(pairs):
        plain = await consumer_rate(TrackingConsumer(engine, nc, SIGNED_SERVICE, f"bench-signed-{n}", plain_handler),
                                    events)
        checked = await consumer_rate(TrackingConsumer(engine, nc, SIGNED_SERVICE, f"bench-verified-{n}",
                                                       verified_handler, trust=trust), events)
        results += [show(Result(f"{layer}, signed, not verified", plain, read, read_rate)),
                    show(Result(f"{layer}, signed, verified", checked, read, read_rate))]
        costs.append(cost(f"verification in the consumer ({layer.removeprefix('(diagnostic) ')})", checked, plain))
    return results, costs


async def pipeline_layers(tmp: Path, events: int, pg_url: str | None, schema: str) -> tuple[list[Result], list[str]]:
    """The relay, consumer and replay rows, and the cost lines of signing and verifying."""
    server = NatsServer(data_dir=tmp / "nats")
    await server.astart()
    nc = await nats.connect(server.url)
    keyring = keys.generate(tmp / "keys", (SIGNED_SERVICE,))
    # Unsigned and signed logs in separate files, relayed to separate streams.
    store = EventStore(make_engine(f"sqlite:///{tmp / 'relay.db'}"))
    signed_store = EventStore(make_engine(f"sqlite:///{tmp / 'relay-signed.db'}"),
                              signer=keyring.signer(SIGNED_SERVICE))
    models = engines(tmp, "readmodel.db", pg_url, schema)
    try:
        await setup_streams(nc.jetstream(), (SERVICE, SIGNED_SERVICE))
        await store.create_tables()
        await signed_store.create_tables()
        (append_rate, signed_append_rate), results = await bench_relays(
            {SERVICE: store, SIGNED_SERVICE: signed_store}, nc, events)
        relay, signed_relay = results
        costs = [cost("signing at append", signed_append_rate, append_rate),
                 cost("the relay's extra envelope work", signed_relay.rate, relay.rate)]
        read = "ordered consumer read"
        read_rate = await ordered_read_rate(nc, SERVICE, events)
        for backend, engine in models.items():
            model = StreamIndex(SERVICE)
            await create_tables(engine, model)
            rate = await consumer_rate(TrackingConsumer(engine, nc, SERVICE, f"bench-index-{backend}", model), events)
            results.append(show(Result(f"consumer -> StreamIndex {backend}", rate, read, read_rate)))
            rate = await replay_rate(engine, nc, events)
            results.append(show(Result(f"replay.rebuild StreamIndex {backend}", rate, read, read_rate)))
        rate = await consumer_rate(TrackingConsumer(models["sqlite"], nc, SERVICE, "bench-noop", no_op), events)
        results.append(show(Result("(diagnostic) consumer -> no-op sqlite", rate, read, read_rate)))
        verified, verified_costs = await verification(models["sqlite"], nc, events, keyring.trust)
        return results + verified, costs + verified_costs
    finally:
        await nc.close()
        await store.engine.dispose()
        await signed_store.engine.dispose()
        await dispose(models)
        await server.astop()


async def run(args: argparse.Namespace) -> None:
    url = os.environ.get(POSTGRES_ENV, POSTGRES_DEFAULT)
    pg = await postgres_version(url)
    pg_url = url if pg else None
    schema = f"bench_{secrets.token_hex(4)}"
    nats_server = await asyncio.to_thread(
        subprocess.run, [str(server_binary()), "--version"], check=False, capture_output=True, text=True
    )
    print(f"Weibao backbone benchmark: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"SQLite {sqlite3.sqlite_version}, PostgreSQL {pg or 'skipped'}, {nats_server.stdout.strip()}, "
          f"nats-py {version('nats-py')}, SQLAlchemy {version('SQLAlchemy')}")
    print(f"events through relay/consumer/replay: {args.events:,}; each store measurement: {args.seconds:g} s "
          f"(after a 0.2 s warm-up); concurrent writers: {', '.join(map(str, WRITERS))}"
          + (f"; PostgreSQL schema {schema} (dropped at the end)" if pg else ""))
    print("logging: weibao.shared.logs.configure(level='WARNING'), WEIBAO_LOG_LEVEL=WARNING "
          "(the consumer logs one line per message at INFO)")
    print("figures only, nothing asserts on time; target: each layer >= 50% of the raw layer below\n")
    try:
        with tempfile.TemporaryDirectory(prefix="weibao-bench-") as name:
            tmp = Path(name)
            print("1. event store: one event per append, each writer on its own stream "
                  "(SQLite: WAL, synchronous=FULL, BEGIN IMMEDIATE)")
            results = await store_layer(tmp, args.seconds, pg_url, schema)
            print("2-4. relay from a SQLite store, consumer and replay into a read model "
                  "(nats-server: file storage, sync_interval always); the same with signing and verification")
            pipeline, costs = await pipeline_layers(tmp, args.events, pg_url, schema)
            results += pipeline
    finally:
        if pg_url is not None:
            await drop_schema(pg_url, schema)
    print()
    print(table(results))
    print("\ncost per event of signing and verification (this run):")
    print("\n".join(costs))
    print(BASELINES)


def main() -> None:
    args = parse_args()
    os.environ["WEIBAO_LOG_LEVEL"] = "WARNING"

    configure(level="WARNING")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
