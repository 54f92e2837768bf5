"""The JetStream streams, one per service, and the gateway's key-value buckets, created by
`weibao streams setup` only.

Services and FastStream never declare streams: declaring from whichever process starts
first would silently rewrite a stream's settings."""

from __future__ import annotations

from dataclasses import replace

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, KeyValueConfig, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from weibao.shared.settings import environment

SERVICES = ("contracts", "dispatch", "billing")

# Long enough to cover a relay's retry after a lost ack or a broker restart.
DUPLICATE_WINDOW_SECONDS = 600.0


def stream_name(service: str) -> str:
    return service.upper()


def stream_config(service: str, *, replicas: int = 1) -> StreamConfig:
    return StreamConfig(
        name=stream_name(service),
        subjects=[f"{service}.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        # The stream is the log's copy: nothing may remove a message from it.
        deny_delete=True,
        deny_purge=True,
        discard=DiscardPolicy.NEW,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
        num_replicas=replicas,
    )


async def setup_streams(js: JetStreamContext, services: tuple[str, ...] = SERVICES, *, replicas: int = 1) -> list[str]:
    """Create each service's stream, or bring its settings to ours. Says what it did."""
    done = []
    for service in services:
        config = stream_config(service, replicas=replicas)
        try:
            await js.stream_info(config.name or "")
        except NotFoundError:
            await js.add_stream(config)
            done.append(f"created {config.name}")
        else:
            await js.update_stream(config)
            done.append(f"updated {config.name}")
    if services == SERVICES:  # the whole setup: the gateway's buckets too
        done += await setup_buckets(js, replicas=replicas)
    return done


# -- key-value buckets: what every gateway replica must share ---------------------------------
# The sign-in state lives in JetStream KV, not in one gateway's memory nor in a file: the
# buckets are replicated with the cluster (R3 in production), so any replica sees a
# sign-out, a disabled user or a throttled name at once, and the embedded default needs
# no extra component. Created here, by the setup command only, as the streams are.
USERS_BUCKET = "weibao_users"  # one key per user (the name, base64url): the record, argon2 hash included
REVOKED_BUCKET = "weibao_revoked"  # one key per signed-out token id; forgotten once the token expired anyway
THROTTLE_BUCKET = "weibao_throttle"  # failed sign-ins per user and per address within the window
BUCKETS = (USERS_BUCKET, REVOKED_BUCKET, THROTTLE_BUCKET)

TOKEN_TTL_SECONDS = 8 * 3600  # the gateway's default token lifetime (WEIBAO_TOKEN_TTL)
THROTTLE_WINDOW_SECONDS = 15 * 60
USERS_HISTORY = 10  # a user's last records stay readable (who was disabled, when)


def token_ttl() -> int:
    """WEIBAO_TOKEN_TTL, as the gateway reads it: a revocation must outlive the token."""
    return environment().token_ttl


def bucket_config(bucket: str, *, replicas: int = 1, token_seconds: int | None = None) -> KeyValueConfig:
    ttl = {USERS_BUCKET: None, REVOKED_BUCKET: float(token_seconds or token_ttl()),
           THROTTLE_BUCKET: float(THROTTLE_WINDOW_SECONDS)}[bucket]
    return KeyValueConfig(bucket=bucket, history=USERS_HISTORY if bucket == USERS_BUCKET else 1, ttl=ttl,
                          storage=StorageType.FILE, replicas=replicas, direct=True)


async def setup_buckets(js: JetStreamContext, *, replicas: int = 1, token_seconds: int | None = None) -> list[str]:
    """Create each bucket, or bring its TTL, history and replicas to ours (a longer token
    lifetime needs revocations kept as long). Says what it did."""
    done = []
    for bucket in BUCKETS:
        config = bucket_config(bucket, replicas=replicas, token_seconds=token_seconds)
        try:
            info = await js.stream_info(f"KV_{bucket}")
        except NotFoundError:
            await js.create_key_value(config)
            done.append(f"created bucket {bucket}")
        else:
            await js.update_stream(replace(info.config, max_age=config.ttl or 0.0, num_replicas=replicas,
                                           max_msgs_per_subject=config.history))
            done.append(f"updated bucket {bucket}")
    return done
