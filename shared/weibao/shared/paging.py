"""The one pagination convention of every list query the gateway pages through.

Request `limit` (default 50, at most 200) and `offset` (default 0, at most MAX_OFFSET); reply
`{"items", "total", "next_offset"}`, `next_offset` null on the last page. In the kit
because every service's lists (and the auditor's) answer alike."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from weibao.shared.errors import Rejected, require

DEFAULT_LIMIT = 50
MAX_LIMIT = 200  # a screenful or a few; more is an export, not a list
# The largest offset any backend binds: a signed 32-bit integer fits every SQL driver's
# LIMIT/OFFSET parameter (SQLite and asyncpg refuse 2**63 with an error, not an empty
# page), and no list here comes near two billion rows. The gateway's `Offset` has it too.
MAX_OFFSET = 2**31 - 1
_WHOLE = re.compile(r"-?[0-9]+")  # ASCII digits only: str.isdigit() also admits "²" and "١"
_DIGITS = 12  # more digits than this is out of every range here; int() of 5,000 digits raises


@dataclass(frozen=True)
class Page:
    limit: int = DEFAULT_LIMIT
    offset: int = 0

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> Page:
        limit = _integer(body, "limit", DEFAULT_LIMIT)
        require(1 <= limit <= MAX_LIMIT, "invalid", "limit", f"from 1 to {MAX_LIMIT}")
        offset = _integer(body, "offset", 0)
        require(0 <= offset <= MAX_OFFSET, "invalid", "offset", f"from 0 to {MAX_OFFSET}")
        return cls(limit, offset)

    async def rows(self, conn: AsyncConnection, query: Select[Any]) -> tuple[Sequence[Row[Any]], int]:
        """This page of an ordered query's rows, and how many rows the whole query has."""
        total = await conn.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
        rows = (await conn.execute(query.limit(self.limit).offset(self.offset))).all()
        return rows, int(total or 0)

    def reply(self, items: Sequence[Any], total: int) -> dict[str, Any]:
        end = self.offset + len(items)
        return {"items": list(items), "total": total, "next_offset": end if end < total else None}


def _integer(body: Mapping[str, Any], name: str, default: int) -> int:
    value = body.get(name)
    if value is None:
        return default
    # A query string brings numbers as text; a JSON true is not a number.
    if isinstance(value, str) and _WHOLE.fullmatch(value.strip()):
        if len(value.strip().lstrip("-")) > _DIGITS:
            raise Rejected("invalid", name, "a whole number, out of range")
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise Rejected("invalid", name, "a whole number")
