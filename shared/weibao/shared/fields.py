"""Reading a request's fields the one way every service does, refusing with the field's name."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from weibao.shared.errors import require


def instant(data: Mapping[str, Any], name: str) -> datetime | None:
    """An optional instant from a request: ISO 8601 with its UTC offset, never a naive
    time (whose zone would be a guess)."""
    value = data.get(name)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    require(parsed is not None, "invalid", name, "an ISO 8601 time, e.g. 2026-06-01T09:30:00+08:00")
    assert parsed is not None
    require(parsed.utcoffset() is not None, "invalid", name, "a time with its UTC offset, not a naive one")
    return parsed
