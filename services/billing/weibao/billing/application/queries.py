"""What billing answers: the invoice from its log (now or as of a time), a line's
explanation, the A4 statement; from the invoice read model, the list of invoices and
the export's pages; from the contracts policy's table, the renewal notices (B4).

The invoice, its explanation and its statement read the log through the repository the
commands use (always current); lists and exports read `InvoiceBook`, which follows the
log within a relay hop. Requests arrive decoded where a schema says their shape
(`weibao.shared.commands.billing`); the list's and the export's filters are checked here,
every refusal naming its field. Pages are small and bounded: the gateway pages through
`export_lines` and streams the file, so an export of 100,000 lines never sits whole in
memory on either side."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncEngine

from weibao.billing.adapters.exports import CreditView, InvoiceView, Settlement, invoice_html, lines_of
from weibao.billing.adapters.invoices import InvoiceBook, Invoices, decode_cursor, encode_cursor, invoice_stream
from weibao.billing.adapters.terms import TermsBook
from weibao.billing.application.policy import BillingPolicy
from weibao.billing.domain import invoice as domain
from weibao.shared.commands.billing import ExportQuery, InvoiceAsOf, InvoiceList, InvoiceRef, LineRef, RenewalList
from weibao.shared.errors import Rejected, require
from weibao.shared.paging import Page
from weibao.shared.public.billing import ExportLine, row_of

# A reply's budget, well under NATS's max_payload (8 MB in deploy/): a page stops early
# rather than grow past it when its lines carry long descriptions.
REPLY_BYTES = 4 * 2**20
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def _estimate(line: ExportLine) -> int:
    """A row's JSON size, from above: the free texts at 3 bytes a character (CJK in
    UTF-8), the bounded fields at most 600 bytes."""
    texts = len(line.description) + len(line.customer_name) + sum(map(len, line.sources)) + len(line.item_id)
    return 3 * texts + 600


@dataclass
class Queries:
    engine: AsyncEngine
    book: InvoiceBook  # the invoice read model: lists and exports
    log: Invoices  # one invoice from its stream, always current
    terms: TermsBook  # customers' names for the statement
    policy: BillingPolicy | None = None  # its renewal notices (B4) and billed items

    async def invoice(self, query: InvoiceAsOf) -> domain.Invoice:
        """`weibao.billing.invoice`: the invoice from its events; with `as_of`, as it stood
        then (events recorded by then)."""
        # The log records UTC; SQLite compares the stored text, so the bound must be UTC too.
        moment = query.as_of.astimezone(UTC) if query.as_of is not None else None
        state, _ = await self.log.load(invoice_stream(query.invoice_id), as_of=moment)
        require(state.status != "none", "not_found", "invoice_id",
                "no such invoice" if moment is None else "no such invoice at that time",
                reason="invoice.not_found" if moment is None else "invoice.not_found_at_that_time")
        return state

    async def statement(self, query: InvoiceRef) -> str:
        """`weibao.billing.invoice.page`: the printable A4 statement of charges (结算单) of
        an issued invoice: its lines and totals as issued, frozen (B8); then each credit
        note (red-letter lines) and what is left to pay after the credit notes and the
        payments."""
        state = await self.invoice(InvoiceAsOf(invoice_id=query.invoice_id))
        require(state.status != "draft", "draft", "invoice_id", "a draft has no statement yet; issue it first")
        async with self.engine.connect() as conn:
            name = await self.terms.customer_name(conn, state.customer_id)
        rows = lines_of(state, name)
        credits = tuple(CreditView(note.credit_id, note.on, note.reason,
                                   tuple(row for row in rows if row.credit_id == note.credit_id), note.totals)
                        for note in state.credits)
        return invoice_html(InvoiceView.of([row for row in rows if not row.credit_id]),
                            Settlement(credits, state.credited, state.paid, state.outstanding))

    async def explain(self, query: LineRef) -> Mapping[str, Any]:
        """`weibao.billing.invoice.explain`: for an invoice line, the clauses that made it
        billable and the events it came from (service and position, which
        `weibao.<service>.history` and the stream hold)."""
        state = await self.invoice(InvoiceAsOf(invoice_id=query.invoice_id))
        line = next((ln for ln in state.lines if ln.item_id == query.item_id), None)
        if line is None:
            raise Rejected("not_found", "item_id", "no such line on this invoice", reason="invoice.line_not_found")
        pricings = [{"unit_price": str(p.unit_price), "amount": str(p.amount), "reason": p.reason, "by": p.by,
                     "on": p.on.isoformat()} for p in state.pricings_of(line.item_id)]
        sources = [{"service": s, "position": p, "type": t} for s, p, t in line.sources]
        return {"invoice_id": query.invoice_id, "number": state.number, "item_id": line.item_id,
                "clauses": line.clauses, "sources": sources,
                "description": line.description, "amount": str(line.amount), "vat_rate": str(line.vat_rate),
                "unit_price": str(line.unit_price),
                # C10 [4]: a price set by hand says who set it and why; the last one holds
                "pricing": pricings[-1] if pricings else None, "pricings": pricings}

    async def invoices(self, asked: InvoiceList) -> dict[str, Any]:
        """`weibao.billing.invoices` -> {items, total, next_offset}. `period` is a month
        (every invoice billed in it, per-visit ones by the month their draft opened) or a
        `visit:<ticket_id>`."""
        page = Page.of(asked.model_dump(include={"limit", "offset"}))  # the kit's ranges, its refusals
        t = self.book.invoices
        where: list[ColumnElement[bool]] = []
        if asked.customer_id is not None:
            where.append(t.c.customer_id == asked.customer_id)
        if (period := asked.period) is not None:
            if _MONTH.match(period):
                where.append(t.c.month == period)
            else:
                require(period.startswith("visit:") and len(period) > len("visit:"), "invalid", "period",
                        "a month such as 2026-06, or visit:<ticket_id>")
                where.append(t.c.period == period)
        if asked.status is not None:
            where.append(t.c.status == asked.status)
        if asked.number is not None:  # the printed number an auditor or a customer quotes
            where.append(t.c.number == asked.number.upper())
        async with self.engine.connect() as conn:
            items, total = await self.book.page(conn, where, page)
        return page.reply(items, total)

    async def renewals(self, asked: RenewalList) -> dict[str, Any]:
        """`weibao.billing.renewals` -> {items, total, next_offset}: the renewal notices the
        contracts policy keeps (rules B4, C2), earliest due first; a renewed one names the
        payment, the annual fee's item and the invoice it went to."""
        require(self.policy is not None, "unavailable", "renewals", "this billing has no renewal notices")
        assert self.policy is not None
        page = Page.of(asked.model_dump(include={"limit", "offset"}))
        t = self.policy.renewals.table
        where: list[ColumnElement[bool]] = []
        if asked.customer_id is not None:
            where.append(t.c.customer_id == asked.customer_id)
        if asked.agreement_id is not None:
            where.append(t.c.agreement_id == asked.agreement_id)
        if asked.status is not None:
            where.append(t.c.status == asked.status)
        async with self.engine.connect() as conn:
            items, total = await self.policy.renewals.page(conn, where, page, items=self.policy.drafts.items,
                                                           customers=self.terms.customers)
        return page.reply(items, total)

    async def export_lines(self, asked: ExportQuery) -> dict[str, Any]:
        """`weibao.billing.export.lines` -> {lines: [rows keyed by COLUMNS], next: cursor
        or null}. Issued invoices and their credit notes only: a draft changes until it is
        issued."""
        after = decode_cursor(asked.after) if asked.after is not None else None
        first, last = asked.period_from, asked.period_to
        require(first is None or last is None or first <= last, "invalid", "period_to", "before period_from")
        t, lines = self.book.invoices, self.book.lines
        where: list[ColumnElement[bool]] = []
        if asked.customer_id is not None:
            where.append(t.c.customer_id == asked.customer_id)
        if first is not None:
            where.append(t.c.month >= first)
        if last is not None:
            where.append(t.c.month <= last)
        if asked.invoice_id is not None:
            where.append(lines.c.invoice_id == asked.invoice_id)
        async with self.engine.connect() as conn:
            found, more = await self.book.export(conn, where, after=after, limit=asked.limit)
        rows: list[dict[str, Any]] = []
        size, cursor = 0, after
        for key, line in found:
            if rows and size >= REPLY_BYTES:  # long descriptions: a shorter page, never an oversized reply
                more = True
                break
            rows.append(row_of(line))
            size += _estimate(line)
            cursor = key
        return {"lines": rows, "next": encode_cursor(cursor) if more and cursor is not None else None}
