"""`weibao backup DIR` / `weibao restore DIR`: the embedded system's data, whole.

What a backup holds, and why:
- each service's SQLite database, copied with sqlite3's online backup API: a consistent
  snapshot (its log, read models and checkpoints at one instant) while the service
  writes on, WAL or not;
- the users file and the gateway's token secret beside it;
- the keys folder: the signing keys and the NATS seeds. A restore without them could not
  verify one signature of the restored logs, nor let the services onto the broker;
- the demo marker, so a restored system does not load the demo a second time;
- the sign-in state that lives only in JetStream key-value buckets (issue 12, Backups):
  every key of the users bucket with its value as stored (argon2 hash, disabled flag and
  epoch: a user added with `weibao users add` exists nowhere else, and a demo user
  disabled there would come back enabled from the users file), and the signed-out
  tokens of the revocations bucket that have not expired yet (each with its expiry: a
  signed-out token must stay refused after a restore). Read as the `gateway` NATS
  identity, the one allowed to read both; from the running broker, or from one started
  on the stopped system's store for the purpose. The throttle bucket is not kept: its
  counts are for the last 15 minutes, and a restore starts them afresh.

Everything written is the owner's alone (folders 0700, files 0600): the copies hold
password hashes, the token secret, the signing keys and the NATS seeds (issue 12, item 4:
data files readable by the owner only), so a backup must not be easier to read than the
data it copies.

Not the JetStream data: the SQL logs are the truth and the streams are copies of them.
A restore sets the broker's old store aside (a stream ahead of a restored log would hold
positions the log no longer has: foreign messages), creates the streams anew
(`weibao streams setup`, on a broker started for the purpose), puts the exported users
and revocations back into their new buckets on that broker, so they are there before
the gateway starts (it then imports the users file only for names the bucket lacks,
changing none) and, at the next
`weibao up`, each relay republishes its whole log and the consumers, which keep their
checkpoints in SQL, go on from where the restored databases say.

Restore refuses while the system is up: `weibao up` holds a lock on `<data>/up.lock`
for its lifetime (the kernel drops it when the process ends, even killed), so a
restore that cannot take that lock knows a supervisor runs on the folder.

Production (PostgreSQL, a NATS cluster) uses those systems' own tools: deploy/README.md."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nats.js.errors import BucketNotFoundError

from weibao.runtime import demo
from weibao.runtime.natsd import NatsServer, free_port
from weibao.runtime.supervisor import LOCK, embedded_streams_setup, embedded_url, is_up, nats_keys
from weibao.shared import identities
from weibao.shared.clock import utc_now
from weibao.shared.service import connect
from weibao.shared.settings import environment
from weibao.shared.streams import REVOKED_BUCKET, SERVICES, USERS_BUCKET
from weibao.shared.users import read_bucket

MANIFEST = "manifest.json"
SECRET = "jwt-secret"  # the gateway's token secret, beside the users file
# The key-value buckets a backup exports, each into its own file: {"bucket", "entries": [...]}.
BUCKET_FILES = {USERS_BUCKET: "users-bucket.json", REVOKED_BUCKET: "revoked-bucket.json"}


class BackupError(Exception):
    """Said to the operator as it is; nothing was changed."""


def _databases(data: Path) -> list[str]:
    return [service for service in SERVICES if (data / f"{service}.db").exists()]


def _snapshot(source: Path, target: Path) -> int:
    """A consistent copy of a live SQLite database; returns its log's last position."""
    target.unlink(missing_ok=True)  # born the owner's alone, under `_owner_only_files`
    # Read-only on the source: a backup must never be the writer that takes a lock.
    with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    with sqlite3.connect(target) as copy:
        try:
            return int(copy.execute("SELECT COALESCE(MAX(position), 0) FROM events").fetchone()[0])
        except sqlite3.OperationalError:  # a service that never started has no log yet
            return 0


@contextlib.contextmanager
def _owner_only_files() -> Iterator[None]:
    """Everything this process creates meanwhile is born 0600 / 0700 (no window in which a
    copy of a password hash or a seed is world-readable); `_owner_only` then fixes what
    kept a wider mode of its own (copy2 copies the source's, e.g. the public auth.conf)."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


def _owner_only(root: Path) -> None:
    """`root` and everything under it: folders 0700, files 0600 (issue 12, item 4)."""
    root.chmod(0o700)
    for folder, folders, files in os.walk(root):
        for name in folders:
            (Path(folder) / name).chmod(0o700)
        for name in files:
            (Path(folder) / name).chmod(0o600)


def _gateway_seed(data: Path) -> str | None:
    # The gateway identity reads and writes the sign-in buckets and nothing else of
    # JetStream (weibao.shared.identities); the cli's reaches the users bucket only.
    seed = identities.seed_path(nats_keys(data), "gateway")
    return str(seed) if seed.exists() else None


async def _export_buckets(url: str, seed: str | None) -> dict[str, list[dict[str, Any]]]:
    """The users bucket whole; the revocations not yet expired, each with its expiry and
    the seconds it had left when taken. A bucket not created yet exports nothing."""
    nc = await connect(url, "weibao-backup", seed=seed, max_reconnect_attempts=0)
    try:
        js = nc.jetstream()
        exported: dict[str, list[dict[str, Any]]] = {}
        for bucket in BUCKET_FILES:
            try:
                entries = await read_bucket(await js.key_value(bucket))
            except BucketNotFoundError:
                entries = {}
            rows: list[dict[str, Any]] = []
            now = time.time()
            for key, value in sorted(entries.items()):
                row: dict[str, Any] = {"key": key, "value": base64.b64encode(value).decode()}
                if bucket == REVOKED_BUCKET:
                    expiry = float(value)  # a revocation's value is its token's expiry (gateway.auth)
                    if expiry <= now:
                        continue  # its token has expired anyway: nothing left to refuse
                    row.update(expires_at=expiry, remaining_seconds=round(expiry - now, 3))
                rows.append(row)
            exported[bucket] = rows
        return exported
    finally:
        await nc.close()


async def _import_buckets(url: str, seed: str | None, exported: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Put exported entries back, values byte for byte; revocations only while their
    token would still be good (the bucket's own TTL then forgets them after at most a
    token lifetime, and every gateway ignores one past its expiry)."""
    nc = await connect(url, "weibao-restore", seed=seed, max_reconnect_attempts=0)
    done = []
    try:
        js = nc.jetstream()
        for bucket, rows in exported.items():
            kv = await js.key_value(bucket)
            now, put = time.time(), 0
            for row in rows:
                if bucket == REVOKED_BUCKET and float(row["expires_at"]) <= now:
                    continue
                await kv.put(row["key"], base64.b64decode(row["value"]))
                put += 1
            done.append(f"{bucket}: {put} entr{'y' if put == 1 else 'ies'} restored")
        return done
    finally:
        await nc.close()


def _export_from(data: Path) -> dict[str, list[dict[str, Any]]] | None:
    """The buckets from the running broker, else from one started on the stopped store;
    None when there is no store at all (a system never started has no users bucket)."""
    seed = _gateway_seed(data)
    if is_up(data) and (url := embedded_url(data)) is not None:
        return asyncio.run(_export_buckets(url, seed))
    if not (data / "nats" / "jetstream").exists():
        return None
    with _store_broker(data) as broker:
        return asyncio.run(_export_buckets(broker.url, seed))


@contextlib.contextmanager
def _store_broker(data: Path) -> Iterator[NatsServer]:
    """A broker of its own on the stopped system's store and port, with its identities:
    to read the buckets from, or to set the streams up and refill them on a restore."""
    keys = nats_keys(data)
    identities.ensure(keys)
    url = embedded_url(data)
    port = int(url.rsplit(":", 1)[1]) if url else free_port()
    broker = NatsServer(data / "nats", port=port, authorization=identities.authorization_for(keys))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def _embedded_only() -> None:
    if environment().database_url is not None:
        raise BackupError("DATABASE_URL is set: this is a production system; back it up with pg_dump and restore "
                          "with pg_restore per schema, and the users and revocations buckets with `nats stream "
                          "backup KV_weibao_users` / `KV_weibao_revoked` (deploy/README.md, Backups)")


def backup(data: Path, target: Path) -> dict[str, Any]:
    """Everything a restore needs into `target` (created; must be empty)."""
    _embedded_only()
    if not _databases(data):
        raise BackupError(f"no service database in {data.resolve()}: nothing to back up")
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"{target} is not empty: a backup goes into a folder of its own")
    with _owner_only_files():
        target.mkdir(mode=0o700, parents=True, exist_ok=True)
        manifest = _backup_into(data, target)
    _owner_only(target)
    return manifest


def _backup_into(data: Path, target: Path) -> dict[str, Any]:
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
    exported = _export_from(data)
    manifest["buckets"] = {}
    for bucket, rows in (exported or {}).items():
        (target / BUCKET_FILES[bucket]).write_text(
            json.dumps({"bucket": bucket, "entries": rows}, indent=2, ensure_ascii=False) + "\n")
        manifest["buckets"][bucket] = {"file": BUCKET_FILES[bucket], "entries": len(rows)}
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
    with _owner_only_files():
        return _restore_into(source, data, manifest)


def _restore_into(source: Path, data: Path, manifest: dict[str, Any]) -> list[str]:
    done = []
    for service in manifest["databases"]:
        target = data / f"{service}.db"
        for leftover in (target, Path(f"{target}-wal"), Path(f"{target}-shm"), Path(f"{target}-journal")):
            leftover.unlink(missing_ok=True)  # an old WAL would be replayed over the restored file
        shutil.copy2(source / f"{service}.db", target)
        target.chmod(0o600)  # the data's owner only, whatever mode the copy had
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
    exported = {bucket: json.loads((source / info["file"]).read_text("utf-8"))["entries"]
                for bucket, info in manifest.get("buckets", {}).items()}
    done += _fresh_streams(data, exported)
    return done


def _fresh_streams(data: Path, exported: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Set the old JetStream store aside and create empty streams on a broker started
    for the purpose, with the restored identities: the relays fill them at the next start.
    The exported buckets go back on the same broker, before any gateway can start."""
    done = []
    store = data / "nats" / "jetstream"
    if store.exists():
        aside = store.with_name(f"jetstream.before-restore-{utc_now():%Y%m%dT%H%M%S}")
        store.rename(aside)
        done.append(f"streams: the old JetStream data set aside in {aside} (delete it when satisfied)")
    with _store_broker(data) as broker:
        done += [f"streams: {line}" for line in embedded_streams_setup(data, broker.url)]
        if exported:
            done += asyncio.run(_import_buckets(broker.url, _gateway_seed(data), exported))
        else:
            done.append("buckets: this backup holds none (an older backup): users come from the users file only")
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
