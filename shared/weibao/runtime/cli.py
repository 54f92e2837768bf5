"""`weibao`: the one command line for operators.

  weibao up                 the whole system on this machine (embedded nats-server, SQLite);
                            the first start loads the demo data (WEIBAO_DEMO=0 skips it); with
                            the demo in, the demo pulse moves the board: a step of a request's
                            life every WEIBAO_DEMO_PULSE seconds (default 20; 0 stops it)
  weibao demo               load the demo data into a running system (again: nothing new)
  weibao streams setup      create or update the JetStream streams (the only place that does)
  weibao verify SERVICE     check the hash chain of a service's log
  weibao replay SERVICE M   rebuild read model M from position 0 and compare with the live one
  weibao parked SERVICE     list parked messages (--retry ID to apply one again)

The runtime starts each service as its own process (`python -m weibao.<service>`), as
production does, so nothing here imports a service."""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import nats

from weibao.runtime import demo
from weibao.runtime.supervisor import Supervisor, service_env
from weibao.shared.clock import utc_now
from weibao.shared.streams import SERVICES, setup_streams

ALL = (*SERVICES, "gateway")


async def streams_setup(nats_url: str, replicas: int = 1) -> list[str]:
    nc = await nats.connect(nats_url, connect_timeout=5)
    try:
        return await setup_streams(nc.jetstream(), replicas=replicas)
    finally:
        await nc.drain()


def load_demo_command(data: Path, nats_url: str) -> int:
    """`weibao demo`: the demo into whatever runs at `nats_url`; users written if none."""
    data.mkdir(parents=True, exist_ok=True)
    if (written := demo.ensure_demo_users(data)) is not None:
        print(f"users: wrote {len(written)} demo users to {demo.users_path(data)}")
    try:
        report = asyncio.run(demo.load_and_mark(nats_url, data, now=utc_now()))
    except (demo.DemoError, OSError) as error:
        print(f"demo: not loaded: {error}", file=sys.stderr)
        return 1
    print("\n".join(report.lines()))
    if users := demo.demo_users_note(data):
        print("\n".join(["Demo users:", *demo.users_table_header(), *users]))
    return 0


def run_service_command(data: Path, service: str, args: Sequence[str]) -> int:
    env = service_env(data, service, os.environ.get("NATS_URL") or _embedded_url(data))
    return subprocess.call([sys.executable, "-m", f"weibao.{service}", *args], env=env)


def _embedded_url(data: Path) -> str:
    port_file = data / "nats" / "port"
    return f"nats://127.0.0.1:{port_file.read_text().strip()}" if port_file.exists() else "nats://127.0.0.1:4222"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="weibao", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("var"), help="where the embedded system keeps its data")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run the whole system on this machine")
    up.add_argument("--host", default=os.environ.get("WEIBAO_HTTP_HOST", "127.0.0.1"))
    up.add_argument("--port", type=int, default=int(os.environ.get("WEIBAO_HTTP_PORT", "8000")))
    up.add_argument("--nats-port", type=int, default=int(os.environ.get("WEIBAO_NATS_PORT", "4250")),
                    help="port of the embedded nats-server (4222 is often a system one)")
    demo_parser = sub.add_parser("demo", help="load the demo data into a running system (idempotent)")
    demo_parser.add_argument("--nats", default=os.environ.get("NATS_URL"))
    streams = sub.add_parser("streams", help="JetStream stream administration")
    streams.add_argument("action", choices=["setup"])
    streams.add_argument("--nats", default=os.environ.get("NATS_URL"))
    streams.add_argument("--replicas", type=int, default=1)
    for name, text in (("verify", "check a service's hash chain"), ("parked", "list or retry parked messages"),
                       ("replay", "rebuild a read model and compare")):
        command = sub.add_parser(name, help=text)
        command.add_argument("service", choices=SERVICES)
        if name == "replay":
            command.add_argument("model")
        if name == "parked":
            command.add_argument("--retry", type=int, metavar="ID")
    args = parser.parse_args(argv)

    if args.command == "up":
        return Supervisor(args.data, host=args.host, http_port=args.port, nats_port=args.nats_port).run()
    if args.command == "demo":
        return load_demo_command(args.data, args.nats or _embedded_url(args.data))
    if args.command == "streams":
        for line in asyncio.run(streams_setup(args.nats or _embedded_url(args.data), args.replicas)):
            print(line)
        return 0
    extra = [args.model] if args.command == "replay" else []
    if args.command == "parked" and args.retry is not None:
        extra = ["--retry", str(args.retry)]
    return run_service_command(args.data, args.service, [args.command, *extra])


if __name__ == "__main__":
    sys.exit(main())
