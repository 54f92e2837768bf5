"""`weibao backup DIR` / `weibao restore DIR`: the embedded system's data, whole.

What a backup holds, and why:
- each service's SQLite database, copied with sqlite3's online backup API: a consistent
  snapshot (its log, read models and checkpoints at one instant) while the service
  writes on, WAL or not;
- the users file and the gateway's token secret beside it;
- the keys folder: the signing keys and the NATS seeds. A restore without them could not
  verify one signature of the restored logs, nor let the services onto the broker;
- the demo marker, so a restored system does not load the demo a second time.

Not the JetStream data: the SQL logs are the truth and the streams are copies of them.
A restore sets the broker's old store aside (a stream ahead of a restored log would hold
positions the log no longer has: foreign messages), creates the streams anew
(`weibao streams setup`, on a broker started for the purpose) and, at the next
`weibao up`, each relay republishes its whole log and the consumers, which keep their
checkpoints in SQL, go on from where the restored databases say.

Restore refuses while the system is up: `weibao up` holds a lock on `<data>/up.lock`
for its lifetime (the kernel drops it when the process ends, even killed), so a
restore that cannot take that lock knows a supervisor runs on the folder.

Production (PostgreSQL, a NATS cluster) uses those systems' own tools: deploy/README.md."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from weibao.runtime import demo
from weibao.runtime.natsd import NatsServer, free_port
from weibao.runtime.supervisor import LOCK, embedded_streams_setup, is_up, nats_keys
from weibao.shared import identities
from weibao.shared.clock import utc_now
from weibao.shared.settings import environment
from weibao.shared.streams import SERVICES

MANIFEST = "manifest.json"
SECRET = "jwt-secret"  # the gateway's token secret, beside the users file


class BackupError(Exception):
    """Said to the operator as it is; nothing was changed."""


def _databases(data: Path) -> list[str]:
    return [service for service in SERVICES if (data / f"{service}.db").exists()]


def _snapshot(source: Path, target: Path) -> int:
    """A consistent copy of a live SQLite database; returns its log's last position."""
    target.unlink(missing_ok=True)
    # Read-only on the source: a backup must never be the writer that takes a lock.
    with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    with sqlite3.connect(target) as copy:
        try:
            return int(copy.execute("SELECT COALESCE(MAX(position), 0) FROM events").fetchone()[0])
        except sqlite3.OperationalError:  # a service that never started has no log yet
            return 0


def _embedded_only() -> None:
    if environment().database_url is not None:
        raise BackupError("DATABASE_URL is set: this is a production system; back it up with pg_dump and restore "
                          "with pg_restore per schema (deploy/README.md, Backups)")


def backup(data: Path, target: Path) -> dict[str, Any]:
    """Everything a restore needs into `target` (created; must be empty)."""
    _embedded_only()
    if not _databases(data):
        raise BackupError(f"no service database in {data.resolve()}: nothing to back up")
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"{target} is not empty: a backup goes into a folder of its own")
    target.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {"taken_at": utc_now().isoformat(), "from": str(data.resolve()), "databases": {}}
    for service in _databases(data):
        manifest["databases"][service] = {"log_position": _snapshot(data / f"{service}.db",
                                                                    target / f"{service}.db")}
    users = demo.users_path(data)
    files = [users, users.parent / SECRET, data / demo.MARKER]
    manifest["files"] = [path.name for path in files if path.exists()]
    for path in files:
        if path.exists():
            shutil.copy2(path, target / path.name)
    if (data / "keys").is_dir():
        shutil.copytree(data / "keys", target / "keys")  # copy2: the seeds keep their 0600
        manifest["keys"] = True
    else:
        manifest["keys"] = False
    (target / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return manifest


def restore(source: Path, data: Path) -> list[str]:
    """Put a backup back into `data` (the system stopped); returns what it did, line by line."""
    _embedded_only()
    if not (source / MANIFEST).exists():
        raise BackupError(f"{source} holds no {MANIFEST}: not a `weibao backup` folder")
    if is_up(data):
        raise BackupError(f"the system is up on {data.resolve()} (a `weibao up` holds {data / LOCK}): "
                          "stop it first; a restore under running services would be overwritten or corrupt them")
    manifest = json.loads((source / MANIFEST).read_text())
    if not manifest.get("keys") and not (data / "keys").is_dir():
        raise BackupError("the backup has no keys and this folder has none: the logs' signatures could not be "
                          "verified; restore the keys folder too")
    data.mkdir(parents=True, exist_ok=True)
    done = []
    for service in manifest["databases"]:
        target = data / f"{service}.db"
        for leftover in (target, Path(f"{target}-wal"), Path(f"{target}-shm"), Path(f"{target}-journal")):
            leftover.unlink(missing_ok=True)  # an old WAL would be replayed over the restored file
        shutil.copy2(source / f"{service}.db", target)
        done.append(f"{service}: database restored (log up to position "
                    f"{manifest['databases'][service]['log_position']})")
    users = demo.users_path(data)
    for name in manifest.get("files", []):
        destination = users.parent / name if name in (users.name, SECRET) else data / name
        shutil.copy2(source / name, destination)
        done.append(f"{name}: restored")
    if manifest.get("keys"):
        if (data / "keys").exists():
            shutil.rmtree(data / "keys")
        shutil.copytree(source / "keys", data / "keys")
        done.append("keys: restored (signing keys and NATS seeds)")
    done += _fresh_streams(data)
    return done


def _fresh_streams(data: Path) -> list[str]:
    """Set the old JetStream store aside and create empty streams on a broker started
    for the purpose, with the restored identities: the relays fill them at the next start."""
    done = []
    store = data / "nats" / "jetstream"
    if store.exists():
        aside = store.with_name(f"jetstream.before-restore-{utc_now():%Y%m%dT%H%M%S}")
        store.rename(aside)
        done.append(f"streams: the old JetStream data set aside in {aside} (delete it when satisfied)")
    keys = nats_keys(data)
    identities.ensure(keys)
    port_file = data / "nats" / "port"
    port = int(port_file.read_text()) if port_file.exists() else free_port()
    broker = NatsServer(data / "nats", port=port, authorization=identities.authorization_for(keys))
    broker.start()
    try:
        done += [f"streams: {line}" for line in embedded_streams_setup(data, broker.url)]
    finally:
        broker.stop()
    done.append("streams: empty; each service's relay republishes its log at the next `weibao up`")
    return done


def backup_command(data: Path, target: Path) -> int:
    try:
        manifest = backup(data, target)
    except BackupError as error:
        print(f"backup: {error}", flush=True)
        return 1
    for service, info in manifest["databases"].items():
        print(f"{service}: log up to position {info['log_position']}")
    print(f"backup written to {target.resolve()} ({MANIFEST} says what it holds)")
    return 0


def restore_command(source: Path, data: Path) -> int:
    try:
        lines = restore(source, data)
    except BackupError as error:
        print(f"restore: {error}", flush=True)
        return 1
    print("\n".join(lines))
    print("restored; start it with `weibao up`, then `weibao verify SERVICE` for each service")
    return 0
