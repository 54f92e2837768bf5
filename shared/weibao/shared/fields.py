"""Reading a request's fields the one way every service does, refusing with the field's name."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from weibao.shared.errors import Rejected, require


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


def exact(data: Mapping[str, Any], name: str, what: str, example: str) -> Decimal:
    """A decimal from a request, exactly as written: text or a whole number, never a float
    (already inexact) nor a boolean. `what` names it in the refusal ("an amount of yuan"),
    `example` shows one ("12000.00"). Its range is the caller's rule."""
    value = data.get(name)
    require(isinstance(value, str | int) and not isinstance(value, bool), "invalid", name,
            f"{what} as exact decimal text, e.g. '{example}'")
    try:
        number = Decimal(str(value).strip())
    except ArithmeticError as error:
        raise Rejected("invalid", name, f"not {what}: {value!r}") from error
    require(number.is_finite(), "invalid", name, f"not {what}: {value!r}")
    return number
