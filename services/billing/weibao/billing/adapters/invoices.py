"""Invoices as the log stores them, and the read model the queries and exports page through.

`InvoiceBook` is a read model on billing's own stream (`billing.>`): one row per invoice
(status, number, totals, what is credited and paid) and one per invoice or credit-note
line, in the order an export writes them. Replay from position 0 rebuilds it exactly:
every value comes from the events, nothing from a clock, and a batch gives the same rows
however the stream is cut into batches (`python -m weibao.billing replay invoice_book`).

It follows the log within a relay hop and a consumer batch. `weibao.billing.invoice`
reads the log itself and is always current; lists and exports read this model.

Money is stored as decimal text, never as a SQL number: SQLite would keep a float."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Date,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    bindparam,
    func,
    select,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from weibao.billing.adapters.folded import FoldedRepository
from weibao.billing.domain import invoice as domain
from weibao.billing.domain import series as numbering
from weibao.shared import codec
from weibao.shared.errors import Rejected
from weibao.shared.eventstore import EventStore
from weibao.shared.messages import Message
from weibao.shared.money import to_fen
from weibao.shared.paging import Page
from weibao.shared.public.billing import ExportLine

INVOICE = codec.Codec([domain.DraftOpened, domain.LineAdded, domain.LineRemoved, domain.InvoiceIssued,
                       domain.CreditNoted, domain.PaymentRecorded, domain.LinePriced], prefix="private.")
SERIES = codec.Codec([numbering.NumberAllocated], prefix="private.")
STREAM_PREFIX = "invoice-"
ZERO = Decimal("0.00")
FOLDED = 1024  # invoices whose folded state is kept between messages (a month's draft: a line each)

Invoices = FoldedRepository[domain.Invoice, domain.Event]


def invoice_stream(invoice_id: str) -> str:
    return f"{STREAM_PREFIX}{invoice_id}"


def invoices_of(store: EventStore) -> Invoices:
    """Load, decide, append on an invoice's stream; the service's policy, commands and
    queries share one, and so its folded states."""
    return FoldedRepository(store, INVOICE, domain.evolve, domain.Invoice(), size=FOLDED)


# -- export cursors ---------------------------------------------------------------------

Cursor = tuple[str, int, int]  # (invoice_id, document, seq): the export's order


def encode_cursor(key: Cursor) -> str:
    """Opaque to callers: they hand it back as `after`, and never build one."""
    return base64.urlsafe_b64encode(json.dumps(list(key), ensure_ascii=False).encode()).decode().rstrip("=")


def decode_cursor(text: object) -> Cursor:
    try:
        if not isinstance(text, str):
            raise ValueError
        raw = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        invoice_id, document, seq = raw
        if not (isinstance(invoice_id, str) and type(document) is int and type(seq) is int):
            raise ValueError
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise Rejected("invalid", "after", "not a cursor of this export; pass `next` from the previous page") from None
    return invoice_id, document, seq


# -- the read model ---------------------------------------------------------------------


@dataclass
class _Invoice:
    """One invoice row while a batch is applied; written back once per batch. A draft's
    totals are kept as running sums per VAT rate, with the number of lines at each rate
    (a rate whose lines were all removed leaves the totals, as in the domain)."""

    row: dict[str, Any]
    fresh: bool
    rates: dict[Decimal, tuple[Decimal, Decimal, int]] = field(default_factory=dict)

    @classmethod
    def load(cls, row: Mapping[Any, Any]) -> _Invoice:
        running = json.loads(row["running"])
        return cls(dict(row), False, {Decimal(r): (Decimal(n), Decimal(v), c) for r, n, v, c in running})

    def totals(self) -> domain.Totals:
        if self.row["status"] != "draft":
            return codec.load(domain.Totals, json.loads(self.row["totals"]))  # frozen at issue (B8)
        return domain.totals_of((rate, net, vat) for rate, (net, vat, _n) in self.rates.items())

    def count(self, line_rate: Decimal, net: Decimal, vat: Decimal, lines: int) -> None:
        rate = line_rate.normalize()  # as `totals_of` groups them
        old_net, old_vat, old_lines = self.rates.get(rate, (ZERO, ZERO, 0))
        if old_lines + lines == 0:
            self.rates.pop(rate, None)
        else:
            self.rates[rate] = (old_net + net, old_vat + vat, old_lines + lines)

    def settle(self) -> None:
        gross = self.totals().gross
        outstanding = gross - Decimal(self.row["credited"]) - Decimal(self.row["paid"])
        self.row["status"] = domain.settled(self.row["lines_count"], self.row["credited_lines"], outstanding,
                                            self.row["payments"])

    def written(self) -> dict[str, Any]:
        if self.row["status"] == "draft":
            self.row["totals"] = json.dumps(codec.dump(self.totals()), sort_keys=True)
        self.row["running"] = json.dumps([[str(r), str(n), str(v), c] for r, (n, v, c) in sorted(self.rates.items())])
        return self.row


@dataclass
class InvoiceBook:
    """Invoices and their lines, from billing's own events. `names` is the customers table
    the queries take names from (billing's terms book); it is not part of this model."""

    names: Table | None = None
    suffix: str = ""

    def __post_init__(self) -> None:
        self.name = "invoice_book"
        self.metadata = MetaData()
        s = self.suffix
        self.invoices = Table(
            f"billing_invoices{s}", self.metadata,
            Column("invoice_id", String(250), primary_key=True),
            Column("customer_id", String(100), nullable=False, index=True),
            Column("period", String(100), nullable=False),
            Column("month", String(7), nullable=False, index=True),  # YYYY-MM, also for per-visit invoices
            Column("status", String(20), nullable=False),
            Column("number", String(40)),
            Column("issued_on", Date),
            Column("opened_on", Date, nullable=False),
            Column("lines_count", Integer, nullable=False),
            Column("lines_added", Integer, nullable=False),  # ever added: the next line's seq
            Column("credited_lines", Integer, nullable=False),
            Column("credit_notes", Integer, nullable=False),
            Column("payments", Integer, nullable=False),
            Column("totals", Text, nullable=False),  # JSON, as `weibao.billing.invoice` answers it
            Column("credited", Text, nullable=False),  # gross of the credit notes, positive
            Column("paid", Text, nullable=False),
            Column("running", Text, nullable=False),  # a draft's [rate, net, vat, lines] per VAT rate
        )
        # `document` 0 is the invoice, n its n-th credit note; `seq` never changes (the
        # export's order and cursor), `line_no` is renumbered when a draft loses a line.
        self.lines = Table(
            f"billing_invoice_lines{s}", self.metadata,
            Column("invoice_id", String(250), primary_key=True),
            Column("document", Integer, primary_key=True),
            Column("seq", Integer, primary_key=True),
            Column("line_no", Integer, nullable=False),
            Column("item_id", String(250), nullable=False),
            Column("kind", String(40), nullable=False),
            Column("description", Text, nullable=False),
            Column("quantity", Text, nullable=False),
            Column("unit", String(20), nullable=False),
            Column("unit_price", Text, nullable=False),
            Column("net", Text, nullable=False),
            Column("vat_rate", Text, nullable=False),
            Column("vat", Text, nullable=False),
            Column("gross", Text, nullable=False),
            Column("clauses", Text, nullable=False),  # ";"-joined, as exported
            Column("sources", Text, nullable=False),  # ";"-joined <service>:<position>
            Column("credit_id", String(100), nullable=False),
            Column("credited_on", Date),
        )

    def tables(self) -> list[Table]:
        return [self.invoices, self.lines]

    def fresh(self, suffix: str) -> InvoiceBook:
        return InvoiceBook(self.names, suffix)

    async def __call__(self, conn: AsyncConnection, message: Message) -> None:
        await self.apply_batch(conn, [message])

    async def apply_batch(self, conn: AsyncConnection, messages: Sequence[Message]) -> None:
        """Fold the batch in memory per invoice: one read, then bulk writes."""
        relevant = [m for m in messages if m.stream_id.startswith(STREAM_PREFIX) and INVOICE.knows(m.type)]
        if not relevant:
            return
        ids = {m.stream_id.removeprefix(STREAM_PREFIX) for m in relevant}
        t = self.invoices
        found = {row.invoice_id: _Invoice.load(row._mapping)
                 for row in await conn.execute(select(t).where(t.c.invoice_id.in_(ids)))}
        pending: list[dict[str, Any]] = []
        for message in relevant:
            event: Any = codec.load(INVOICE.kinds[message.type], dict(message.data))
            invoice_id = message.stream_id.removeprefix(STREAM_PREFIX)
            if isinstance(event, domain.DraftOpened):
                found[invoice_id] = _opened(event)
                continue
            await self._apply(conn, found[invoice_id], event, pending)
        await _insert(conn, self.lines, pending)
        fresh = [state.written() for state in found.values() if state.fresh]
        seen = [{**state.written(), "key": state.row["invoice_id"]} for state in found.values() if not state.fresh]
        if fresh:
            await conn.execute(t.insert(), fresh)
        if seen:
            columns = [c.name for c in t.columns if c.name != "invoice_id"]
            await conn.execute(t.update().where(t.c.invoice_id == bindparam("key"))
                               .values({name: bindparam(name) for name in columns}), seen)

    async def _apply(self, conn: AsyncConnection, state: _Invoice, event: Any, pending: list[dict[str, Any]]) -> None:
        row = state.row
        match event:
            case domain.LineAdded(line=line):
                row["lines_count"] += 1
                row["lines_added"] += 1
                pending.append(_line_row(row["invoice_id"], 0, row["lines_added"], row["lines_count"], line))
                state.count(line.vat_rate, line.net, line.vat, 1)
            case domain.LineRemoved(item_id=item_id):
                await _insert(conn, self.lines, pending)  # the line may have come in this batch
                lines = self.lines
                mine = and_(lines.c.invoice_id == row["invoice_id"], lines.c.document == 0)
                gone = (await conn.execute(select(lines).where(mine, lines.c.item_id == item_id))).one()
                await conn.execute(lines.delete().where(mine, lines.c.seq == gone.seq))
                await conn.execute(lines.update().where(mine, lines.c.line_no > gone.line_no)
                                   .values(line_no=lines.c.line_no - 1))
                row["lines_count"] -= 1
                state.count(Decimal(gone.vat_rate), -Decimal(gone.net), -Decimal(gone.vat), -1)
            case domain.LinePriced():
                await self._priced(conn, state, event, pending)
            case domain.InvoiceIssued():
                row.update(status="issued", number=event.number, issued_on=event.issued_on,
                           totals=json.dumps(codec.dump(event.totals), sort_keys=True))
            case domain.CreditNoted():
                await _insert(conn, self.lines, pending)
                lines = self.lines
                originals = {r.item_id: r for r in await conn.execute(select(lines).where(
                    lines.c.invoice_id == row["invoice_id"], lines.c.document == 0,
                    lines.c.item_id.in_([c.item_id for c in event.lines])))}
                row["credit_notes"] += 1
                for n, credited in enumerate(event.lines, start=1):
                    pending.append(_credit_row(event, credited, originals[credited.item_id],
                                               invoice_id=row["invoice_id"], document=row["credit_notes"], n=n))
                row["credited_lines"] += len(event.lines)
                row["credited"] = str(Decimal(row["credited"]) - event.totals.gross)
                state.settle()
            case domain.PaymentRecorded():
                row["payments"] += 1
                row["paid"] = str(Decimal(row["paid"]) + event.amount)
                state.settle()

    async def _priced(self, conn: AsyncConnection, state: _Invoice, event: domain.LinePriced,
                      pending: list[dict[str, Any]]) -> None:
        """A draft line's negotiated price: its row takes the new price and the event's
        amount, VAT per line (B8), and the draft's running totals move by the difference."""
        await _insert(conn, self.lines, pending)  # the line may have come in this batch
        lines = self.lines
        mine = and_(lines.c.invoice_id == state.row["invoice_id"], lines.c.document == 0,
                    lines.c.item_id == event.item_id)
        old = (await conn.execute(select(lines).where(mine))).one()
        rate = Decimal(old.vat_rate)
        vat = to_fen(event.amount * rate)  # as `Line.vat`
        await conn.execute(lines.update().where(mine).values(
            unit_price=str(event.unit_price), net=str(event.amount), vat=str(vat), gross=str(event.amount + vat),
            clauses=";".join(domain.priced_clauses(_parts(old.clauses))),
            description=domain.priced_description(old.description)))
        state.count(rate, event.amount - Decimal(old.net), vat - Decimal(old.vat), 0)

    # -- queries ----------------------------------------------------------------------

    def _name(self) -> Any:
        if self.names is None:
            return self.invoices.c.customer_id
        return func.coalesce(self.names.c.name, self.invoices.c.customer_id)

    def _joined(self, base: Any) -> Any:
        if self.names is None:
            return base
        return base.outerjoin(self.names, self.names.c.customer_id == self.invoices.c.customer_id)

    async def page(self, conn: AsyncConnection, where: Sequence[ColumnElement[bool]],
                   page: Page) -> tuple[list[dict[str, Any]], int]:
        """Invoices matching `where`, newest month first, then by id; and how many match."""
        t = self.invoices
        query = (select(t, self._name().label("customer_name")).select_from(self._joined(t)).where(*where)
                 .order_by(t.c.month.desc(), t.c.invoice_id))
        rows, total = await page.rows(conn, query)
        items = []
        for row in rows:
            outstanding = Decimal(json.loads(row.totals)["gross"]) - Decimal(row.credited) - Decimal(row.paid)
            items.append({
                "invoice_id": row.invoice_id, "customer_id": row.customer_id, "customer_name": row.customer_name,
                "period": row.period, "month": row.month, "status": row.status, "number": row.number,
                "issued_on": row.issued_on.isoformat() if row.issued_on else None,
                "totals": json.loads(row.totals), "outstanding": str(outstanding), "lines_count": row.lines_count,
            })
        return items, total

    async def export(self, conn: AsyncConnection, where: Sequence[ColumnElement[bool]], *, after: Cursor | None,
                     limit: int) -> tuple[list[tuple[Cursor, ExportLine]], bool]:
        """Up to `limit` rows of issued invoices and their credit notes in the export's order
        (invoice id, then the invoice before its credit notes, then line order) after
        `after`, each with its cursor; and whether more rows follow."""
        t, lines = self.invoices, self.lines
        key = tuple_(lines.c.invoice_id, lines.c.document, lines.c.seq)
        query = (select(lines, t.c.number, t.c.status, t.c.issued_on, t.c.customer_id, t.c.month,
                        self._name().label("customer_name"))
                 .select_from(self._joined(lines.join(t, t.c.invoice_id == lines.c.invoice_id)))
                 .where(t.c.status != "draft", *where)
                 .order_by(lines.c.invoice_id, lines.c.document, lines.c.seq).limit(limit + 1))
        if after is not None:
            query = query.where(key > tuple_(*after))
        rows = (await conn.execute(query)).all()
        return [((row.invoice_id, row.document, row.seq), _export_line(row)) for row in rows[:limit]], len(rows) > limit


def _opened(event: domain.DraftOpened) -> _Invoice:
    month = domain.Invoice(period=event.period, opened_on=event.opened_on).month
    return _Invoice({
        "invoice_id": event.invoice_id, "customer_id": event.customer_id, "period": event.period, "month": month,
        "status": "draft", "number": None, "issued_on": None, "opened_on": event.opened_on, "lines_count": 0,
        "lines_added": 0, "credited_lines": 0, "credit_notes": 0, "payments": 0, "totals": "",
        "credited": "0.00", "paid": "0.00", "running": "[]",
    }, fresh=True)


def _sources(sources: Sequence[tuple[str, int, str]]) -> str:
    return ";".join(f"{service}:{position}" for service, position, _type in sources)


def _line_row(invoice_id: str, document: int, seq: int, line_no: int, line: domain.Line) -> dict[str, Any]:
    return {
        "invoice_id": invoice_id, "document": document, "seq": seq, "line_no": line_no, "item_id": line.item_id,
        "kind": line.kind, "description": line.description, "quantity": str(line.quantity), "unit": line.unit,
        "unit_price": str(line.unit_price), "net": str(line.net), "vat_rate": str(line.vat_rate),
        "vat": str(line.vat), "gross": str(line.gross), "clauses": ";".join(line.clauses),
        "sources": _sources(line.sources), "credit_id": "", "credited_on": None,
    }


def _credit_row(note: domain.CreditNoted, credited: domain.CreditedLine, original: Any, *, invoice_id: str,
                document: int, n: int) -> dict[str, Any]:
    """A red-letter line: the credited line's kind, unit, price and clauses, its quantity
    negated, the credit note's own negative amounts (as `exports.lines_of` writes it)."""
    return {
        "invoice_id": invoice_id, "document": document, "seq": n, "line_no": n, "item_id": credited.item_id,
        "kind": original.kind, "description": credited.description, "quantity": str(-Decimal(original.quantity)),
        "unit": original.unit, "unit_price": original.unit_price, "net": str(credited.net),
        "vat_rate": str(credited.vat_rate), "vat": str(credited.vat), "gross": str(credited.gross),
        "clauses": original.clauses, "sources": _sources(credited.sources), "credit_id": note.credit_id,
        "credited_on": note.on,
    }


async def _insert(conn: AsyncConnection, table: Table, pending: list[dict[str, Any]]) -> None:
    if pending:
        await conn.execute(table.insert(), pending)
        pending.clear()


def _parts(text: str) -> tuple[str, ...]:
    return tuple(text.split(";")) if text else ()


def _export_line(row: Any) -> ExportLine:
    credit = row.document > 0
    issued_on: date = row.credited_on if credit else row.issued_on
    return ExportLine(
        invoice_number=row.number, invoice_id=row.invoice_id, status="credit_note" if credit else row.status,
        issued_on=issued_on, customer_id=row.customer_id, customer_name=row.customer_name, period=row.month,
        line_no=row.line_no, item_id=row.item_id, kind=row.kind, description=row.description,
        quantity=Decimal(row.quantity), unit=row.unit, unit_price=Decimal(row.unit_price), net=Decimal(row.net),
        vat_rate=Decimal(row.vat_rate), vat=Decimal(row.vat), gross=Decimal(row.gross), clauses=_parts(row.clauses),
        sources=_parts(row.sources), credit_id=row.credit_id,
    )
