"""Queries over the invoice read model: the list of invoices and the export's pages.

Requests are plain JSON; every refusal names the field at fault. Pages are small and
bounded: the gateway pages through `export_lines` and streams the file, so an export of
100,000 lines never sits whole in memory on either side."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncEngine

from weibao.billing.adapters.invoices import InvoiceBook, decode_cursor, encode_cursor
from weibao.billing.domain.pricing import CHINA
from weibao.shared.errors import Rejected, require
from weibao.shared.public.billing import row_of

STATUSES = ("draft", "issued", "partially_paid", "paid", "credited")
INVOICES_LIMIT, INVOICES_MAX = 50, 200
EXPORT_LIMIT, EXPORT_MAX = 1000, 5000
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def count(body: Mapping[str, Any], name: str, default: int, *, least: int, most: int | None = None) -> int:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < least or (most is not None and value > most):
        bound = f"from {least} to {most}" if most is not None else f"{least} or more"
        raise Rejected("invalid", name, f"a whole number {bound}, not {value!r}")
    return value


def text(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    require(isinstance(value, str) and bool(value), "invalid", name, "a non-empty string")
    return str(value)


def month(body: Mapping[str, Any], name: str) -> str | None:
    value = text(body, name)
    require(value is None or _MONTH.match(value) is not None, "invalid", name, "a month such as 2026-06")
    return value


def moment(body: Mapping[str, Any], name: str) -> datetime | None:
    """An ISO datetime; without an offset it is read as Beijing time, where the vendors'
    offices are (the log itself records UTC)."""
    value = body.get(name)
    if value is None:
        return None
    try:
        if not isinstance(value, str):
            raise ValueError
        found = datetime.fromisoformat(value)
    except ValueError:
        raise Rejected("invalid", name, "an ISO datetime such as 2026-06-30T18:00:00+08:00") from None
    return found if found.tzinfo is not None else found.replace(tzinfo=CHINA)


@dataclass
class Queries:
    engine: AsyncEngine
    book: InvoiceBook

    async def invoices(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """`weibao.billing.invoices`: {customer_id?, period?, status?, limit?, offset?} ->
        {items, total, next_offset}. `period` is a month (every invoice billed in it,
        per-visit ones by the month their draft opened) or a `visit:<ticket_id>`."""
        limit = count(body, "limit", INVOICES_LIMIT, least=1, most=INVOICES_MAX)
        offset = count(body, "offset", 0, least=0)
        t = self.book.invoices
        where: list[ColumnElement[bool]] = []
        if (customer_id := text(body, "customer_id")) is not None:
            where.append(t.c.customer_id == customer_id)
        if (period := text(body, "period")) is not None:
            if _MONTH.match(period):
                where.append(t.c.month == period)
            else:
                require(period.startswith("visit:") and len(period) > len("visit:"), "invalid", "period",
                        "a month such as 2026-06, or visit:<ticket_id>")
                where.append(t.c.period == period)
        if (status := text(body, "status")) is not None:
            require(status in STATUSES, "invalid", "status", f"one of {', '.join(STATUSES)}")
            where.append(t.c.status == status)
        async with self.engine.connect() as conn:
            items, total = await self.book.page(conn, where, limit=limit, offset=offset)
        following = offset + len(items)
        return {"items": items, "total": total, "next_offset": following if following < total else None}

    async def export_lines(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """`weibao.billing.export.lines`: {customer_id?, period_from?, period_to?, invoice_id?,
        after?, limit?} -> {lines: [rows keyed by COLUMNS], next: cursor or null}. Issued
        invoices and their credit notes only: a draft changes until it is issued."""
        limit = count(body, "limit", EXPORT_LIMIT, least=1, most=EXPORT_MAX)
        after = decode_cursor(body["after"]) if body.get("after") is not None else None
        first, last = month(body, "period_from"), month(body, "period_to")
        require(first is None or last is None or first <= last, "invalid", "period_to", "before period_from")
        t, lines = self.book.invoices, self.book.lines
        where: list[ColumnElement[bool]] = []
        if (customer_id := text(body, "customer_id")) is not None:
            where.append(t.c.customer_id == customer_id)
        if first is not None:
            where.append(t.c.month >= first)
        if last is not None:
            where.append(t.c.month <= last)
        if (invoice_id := text(body, "invoice_id")) is not None:
            where.append(lines.c.invoice_id == invoice_id)
        async with self.engine.connect() as conn:
            found, following = await self.book.export(conn, where, after=after, limit=limit)
        return {"lines": [row_of(line) for line in found],
                "next": encode_cursor(following) if following is not None else None}
