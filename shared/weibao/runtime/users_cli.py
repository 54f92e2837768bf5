"""`weibao users add|list|disable|enable|reset-password`: the people who sign in.

Writes the users bucket (weibao.shared.users) as the `cli` NATS identity, so every gateway
replica sees the change at once; disabling a user, or giving them a new password, ends
every session they had. A password is asked for twice at a prompt, or read as one line
from standard input with `--password-stdin` (for scripts): never from the command line,
where other users of the machine and the shell's history would see it. A password
needs at least 10 characters."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Callable
from typing import Any, TextIO

from weibao.shared.service import connect
from weibao.shared.users import (
    PASSWORD_RULE,
    ROLES,
    UserError,
    UserStore,
    check_password,
    check_username,
)


def register(sub: Any) -> None:
    """The `users` subcommand on `weibao`'s parser (`sub` is its subparsers)."""
    users = sub.add_parser("users", help="add, list, disable, enable users, or give one a new password",
                           description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    users.add_argument("--nats", default=None, help="the broker (default: NATS_URL, else the embedded one)")
    actions = users.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help=f"add a user; {PASSWORD_RULE}")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--display-name", default="")
    add.add_argument("--technician-id", default=None, help="for (and only for) the technician role")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    actions.add_parser("list", help="every user, with role and state (never a password)")
    for name, text in (("disable", "refuse the user's sign-ins and every token they hold, at once"),
                       ("enable", "let a disabled user sign in again")):
        actions.add_parser(name, help=text).add_argument("username")
    reset = actions.add_parser("reset-password", help=f"give a user a new password (ends their sessions); "
                                                      f"{PASSWORD_RULE}")
    reset.add_argument("username")
    reset.add_argument("--password-stdin", action="store_true", help="read the password from standard input")


def read_password(from_stdin: bool, stdin: TextIO | None = None,
                  prompt: Callable[[str], str] = getpass.getpass) -> str:
    """One line of stdin (without its line end), or the same password typed twice."""
    stream = stdin or sys.stdin
    if from_stdin:
        return stream.readline().rstrip("\r\n")
    if not stream.isatty():
        raise UserError("invalid", "password", "no terminal to ask at: use --password-stdin")
    first = prompt("New password: ")
    if prompt("The same again: ") != first:
        raise UserError("invalid", "password", "the two passwords differ")
    return first


async def users_command(args: argparse.Namespace, nats_url: str, seed: str | None,
                        out: TextIO | None = None, stdin: TextIO | None = None) -> int:
    out = out or sys.stdout
    password = None
    if args.action in ("add", "reset-password"):
        # Asked before connecting, and checked at once: a typo costs no round trip.
        password = read_password(args.password_stdin, stdin)
        check_password(password)
    if args.action == "add":
        check_username(args.username)
    nc = await connect(nats_url, "weibao-users", seed=seed)
    try:
        store = await UserStore.open(nc.jetstream())
        if args.action == "list":
            for u in await store.all():
                state = "disabled" if u.disabled else "enabled"
                extra = f" technician={u.technician_id}" if u.technician_id else ""
                print(f"{u.username:<20} {u.role:<11} {state:<8} {u.display_name}{extra}", file=out)
            return 0
        if args.action == "add":
            assert password is not None
            user = await store.create(args.username, args.role, password, args.display_name, args.technician_id)
            print(f"added {user.username} ({user.role})", file=out)
        elif args.action == "disable":
            await store.disable(args.username)
            print(f"disabled {args.username}: their sessions are ended", file=out)
        elif args.action == "enable":
            await store.enable(args.username)
            print(f"enabled {args.username}", file=out)
        else:
            assert password is not None
            await store.reset_password(args.username, password)
            print(f"new password for {args.username}: their sessions are ended", file=out)
        return 0
    finally:
        await nc.drain()


def run(args: argparse.Namespace, nats_url: str, seed: str | None) -> int:
    """`weibao users ...`: 0 when done, 1 with the reason on stderr when refused."""
    try:
        return asyncio.run(users_command(args, args.nats or nats_url, seed))
    except UserError as error:
        print(f"weibao users {args.action}: {error.field}: {error.message}", file=sys.stderr)
        return 1
    except Exception as error:  # no broker, no bucket yet: say which, not a trace
        hint = " (has `weibao streams setup` run?)" if type(error).__name__ == "BucketNotFoundError" else ""
        print(f"weibao users {args.action}: {type(error).__name__}: {error}{hint}", file=sys.stderr)
        return 1
