"""What several integration tests need: read a stream whole, wait for a condition."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from nats.aio.client import Client as NATS
from nats.js.errors import NotFoundError

from weibao.shared.streams import stream_name


async def stream_messages(nc: NATS, service: str) -> list[tuple[int, dict[str, str], dict[str, Any] | bytes]]:
    """Every message of a service's stream: (sequence, headers, body as JSON or raw)."""
    js = nc.jetstream()
    last = (await js.stream_info(stream_name(service))).state.last_seq
    found = []
    for seq in range(1, last + 1):
        try:
            raw = await js.get_msg(stream_name(service), seq)
        except NotFoundError:
            continue
        data = raw.data or b""
        try:
            body: dict[str, Any] | bytes = json.loads(data)
        except ValueError:
            body = data
        found.append((seq, dict(raw.headers or {}), body))
    return found


async def relayed_positions(nc: NATS, service: str) -> list[int]:
    return [int(h["Weibao-Position"]) for _, h, _ in await stream_messages(nc, service) if "Weibao-Position" in h]


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 20.0, every: float = 0.05) -> None:
    """Wait until `check` holds; fail with a timeout otherwise (tests never assert a time)."""
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(every)


async def services_answer(nc: NATS, *services: str) -> None:
    """Wait until every named service answers its health request."""

    async def answering() -> bool:
        try:
            for service in services:
                await nc.request(f"weibao.{service}.health", b"", timeout=0.5)
        except Exception:
            return False
        return True

    await eventually(answering)
