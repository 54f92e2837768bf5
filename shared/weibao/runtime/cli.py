"""`weibao`: the one command line for operators.

  weibao up                 the whole system on this machine (embedded nats-server, SQLite);
                            the first start loads the demo data (WEIBAO_DEMO=0 skips it); with
                            the demo in, the demo pulse moves the board: a step of a request's
                            life every WEIBAO_DEMO_PULSE seconds (default 20; 0 stops it)
  weibao demo               load the demo data into a running system (again: nothing new)
  weibao users add NAME --role R   add|list|disable|enable|reset-password: who signs in
  weibao streams setup      create or update the JetStream streams (the only place that does;
                            as the `setup` NATS identity)
  weibao keys nats --out D  the NATS identities' seeds (made once) and the broker's auth.conf
  weibao keys signing --out D  the event and command signing keys (made once) and trusted.json
  weibao verify SERVICE     check a service's log (chain, signatures) and its stream against it
  weibao replay SERVICE M   rebuild read model M from position 0 and compare with the live one
  weibao parked SERVICE     list parked messages (--retry ID to apply one again)
  weibao backup DIR         the embedded system's databases (online snapshots), users and keys
  weibao restore DIR        put a backup back (the system stopped); the relays refill the streams

The runtime starts each service as its own process (`python -m weibao.<service>`), as
production does, so nothing here imports a service."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from weibao.runtime import backup, demo, users_cli
from weibao.runtime.supervisor import Supervisor, embedded_url, nats_keys, service_env, streams_setup
from weibao.shared import identities
from weibao.shared import keys as signing_keys
from weibao.shared.clock import utc_now
from weibao.shared.settings import Environment, environment, table
from weibao.shared.streams import SERVICES

ALL = (*SERVICES, "gateway")


def load_demo_command(data: Path, nats_url: str) -> int:
    """`weibao demo`: the demo into whatever runs at `nats_url`; users written if none."""
    data.mkdir(mode=0o700, parents=True, exist_ok=True)
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
    env = service_env(data, service, environment().explicit("nats_url") or _embedded_url(data))
    return subprocess.call([sys.executable, "-m", f"weibao.{service}", *args], env=env)


def keys_command(out: Path, add: str | None, label: str | None) -> int:
    """`weibao keys nats`: a seed per identity that has none (never replaced), and the
    broker's auth.conf with every seed's public key; `--add ROLE` starts a rotation."""
    made = identities.ensure(out)
    if add is not None:
        made[add] = identities.add_key(out, add, label or utc_now().strftime("%Y%m%d%H%M%S"))
    auth = out / "auth.conf"
    auth.write_text("# Rendered by `weibao keys nats`: the NATS identities and what each may do.\n"
                    + identities.authorization_for(out))
    auth.chmod(0o644)  # public keys only: the broker needs to read it, nobody learns a secret
    for role, paths in identities.seed_files(out).items():
        for path in paths:
            print(f"{role:9} {identities.public_key(path)}  {path}")
    print(f"auth.conf {auth}")
    return 0


def _seed(data: Path, role: str) -> str | None:
    return identities.seed_for(role, nats_keys(data))


def _embedded_url(data: Path) -> str:
    return embedded_url(data) or "nats://127.0.0.1:4222"


def _parser(env: Environment) -> argparse.ArgumentParser:
    """The command line, its defaults from the environment (weibao.shared.settings)."""
    parser = argparse.ArgumentParser(prog="weibao", description=__doc__, formatter_class=argparse.RawTextHelpFormatter,
                                     epilog="environment variables (every one Weibao reads):\n\n" + table())
    parser.add_argument("--data", type=Path, default=Path("var"), help="where the embedded system keeps its data")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run the whole system on this machine")
    up.add_argument("--host", default=env.http_host)
    up.add_argument("--port", type=int, default=env.http_port)
    up.add_argument("--nats-port", type=int, default=env.nats_port,
                    help="port of the embedded nats-server (4222 is often a system one)")
    demo_parser = sub.add_parser("demo", help="load the demo data into a running system (idempotent)")
    demo_parser.add_argument("--nats", default=env.explicit("nats_url"))
    streams = sub.add_parser("streams", help="JetStream stream administration")
    streams.add_argument("action", choices=["setup"])
    streams.add_argument("--nats", default=env.explicit("nats_url"))
    streams.add_argument("--replicas", type=int, default=1)
    users_cli.register(sub)
    for name, text in (("backup", "snapshot the embedded system's databases, users and keys into DIR"),
                       ("restore", "put a backup from DIR back (the system stopped)")):
        sub.add_parser(name, help=text).add_argument("dir", type=Path)
    keys = sub.add_parser("keys", help="make the NATS identities' seeds and the broker's auth.conf, or the "
                                       "signing keys and their trusted.json")
    keys.add_argument("kind", choices=["nats", "signing"])
    keys.add_argument("--out", type=Path, default=None, help="default: <data>/keys/nats, or <data>/keys (signing)")
    keys.add_argument("--add", choices=identities.ROLES, help="a second key for this role (a rotation)")
    keys.add_argument("--label", help="the second key's file label (default: a timestamp)")
    for name, text in (("verify", "check a service's hash chain"), ("parked", "list or retry parked messages"),
                       ("replay", "rebuild a read model and compare")):
        command = sub.add_parser(name, help=text)
        command.add_argument("service", choices=SERVICES)
        if name == "replay":
            command.add_argument("model")
        if name == "parked":
            command.add_argument("--retry", type=int, metavar="ID")
        if name == "verify":
            command.add_argument("--log-only", action="store_true", help="the log alone, without the broker")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    env = environment()
    args = _parser(env).parse_args(argv)
    if env.keys is None and (args.data / "keys" / "signing" / "trusted.json").exists():
        # The embedded system's signing keys: the demo signs as the cli with them, and the
        # service commands (verify, parked, replay) check signatures against them.
        os.environ["WEIBAO_KEYS"] = str((args.data / "keys").resolve())

    if args.command == "up":
        return Supervisor(args.data, host=args.host, http_port=args.port, nats_port=args.nats_port).run()
    if args.command == "keys" and args.kind == "signing":
        ring = signing_keys.generate(args.out or args.data / "keys")
        print(json.dumps(ring.trust.as_json(), indent=2))
        return 0
    if args.command == "keys":
        return keys_command(args.out or nats_keys(args.data), args.add, args.label)
    if args.command == "demo":
        if (seed := _seed(args.data, "cli")) is not None:
            os.environ[identities.SEED_ENV] = seed  # this process is the cli; demo's connect() reads it
        return load_demo_command(args.data, args.nats or _embedded_url(args.data))
    if args.command == "users":
        return users_cli.run(args, env.explicit("nats_url") or _embedded_url(args.data), _seed(args.data, "cli"))
    if args.command == "backup":
        return backup.backup_command(args.data, args.dir)
    if args.command == "restore":
        return backup.restore_command(args.dir, args.data)
    if args.command == "streams":
        url = args.nats or _embedded_url(args.data)
        for line in asyncio.run(streams_setup(url, args.replicas, seed=_seed(args.data, "setup"))):
            print(line)
        return 0
    extra = [args.model] if args.command == "replay" else []
    if args.command == "parked" and args.retry is not None:
        extra = ["--retry", str(args.retry)]
    if args.command == "verify" and args.log_only:
        extra = ["--log-only"]
    return run_service_command(args.data, args.service, [args.command, *extra])


if __name__ == "__main__":
    sys.exit(main())
