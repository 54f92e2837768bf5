"""The JetStream streams, one per service, created by `weibao streams setup` only.

Services and FastStream never declare streams: declaring from whichever process starts
first would silently rewrite a stream's settings."""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

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
    return done
