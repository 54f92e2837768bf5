"""Billing: what the fee does not cover, priced from the messages, onto invoices.

A policy consumer per upstream prices each message (domain/pricing) and adds the items
to the customer's draft for the period, in the same transaction as its checkpoint. Item
ids derive from the message's position, and every billed item id is kept with the
invoice it went to: a redelivered message, or the whole stream replayed from position
0, finds its items billed and adds nothing, wherever they went. An item for an issued
invoice goes on a supplementary draft of the same period (B8).

Replaying a policy (`weibao replay billing policy_contracts`): a policy's effect is
events appended to billing's own log, and a replay must never append (the log is the
truth; a second copy of each line would be a forgery of history). So a replay copy
(`Billing.fresh`) rebuilds the policy's own tables into fresh ones: the terms book as the
contracts stream says, and `billing_items`, where each item the upstream message prices
to is written with the invoice the *log* holds its `LineAdded` on (`(not in the log)`
when none does: the live policy lost it). The comparison then asks: did the live policy
bill exactly the items the upstream implies, onto the invoices the log says? Each policy
is compared on the items of its own upstream (their ids begin `<upstream>:`); the terms
book only by the contracts policy, which alone feeds it. `billing_drafts` (which draft is
open now) is not compared: it records decisions taken against commands (an issue opens a
supplementary draft) that a stream replay does not see; the log's `DraftOpened` events
are its audit trail."""

from __future__ import annotations

import json
import tomllib
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Integer, MetaData, String, Table, select
from sqlalchemy.ext.asyncio import AsyncConnection

from weibao.billing.adapters.exports import CreditView, InvoiceView, Settlement, invoice_html, lines_of
from weibao.billing.adapters.invoices import INVOICE, SERIES, STREAM_PREFIX, head, invoice_stream
from weibao.billing.adapters.terms import TermsBook
from weibao.billing.domain import invoice as domain
from weibao.billing.domain import pricing
from weibao.billing.domain import series as numbering
from weibao.shared import codec
from weibao.shared.aggregates import Repository
from weibao.shared.clock import CHINA
from weibao.shared.consumer import NotYet
from weibao.shared.errors import Rejected, require
from weibao.shared.events import RecordedEvent
from weibao.shared.eventstore import EventStore, events_table
from weibao.shared.fields import exact
from weibao.shared.messages import Message

__all__ = ["INVOICE", "SERIES", "Billing", "Config", "Drafts", "TermsNotYetKnown", "invoice_stream"]

CONFIG = Path(__file__).resolve().parent.parent / "config.toml"
FOLDED = 1024  # invoices whose folded state the policy keeps between messages
NOT_IN_LOG = "(not in the log)"  # a replayed item no invoice of the log holds
Row = tuple[Any, ...]


class TermsNotYetKnown(NotYet):
    """A visit's message names an agreement whose terms billing has not read yet: its
    contracts consumer is behind its dispatch consumer (a restart, a replay). Raised, not
    priced without terms (which would drop the visit's costs): the consumer retries for
    its patience (minutes, not five quick tries), and parks the message where an operator
    sees it only if the terms never come."""


@dataclass(frozen=True)
class Config:
    """VAT rate of each line's kind, and the prices of what the agreements leave open."""

    vat: Mapping[str, Decimal]
    quota_prices: Mapping[str, Decimal]
    change_request_day_rate: Decimal | None

    @classmethod
    def load(cls, path: Path = CONFIG) -> Config:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        rate = data.get("change_request_day_rate")
        return cls({k: Decimal(str(v)) for k, v in data["vat"].items()},
                   {k: Decimal(str(v)) for k, v in data["quota_prices"].items()},
                   Decimal(str(rate)) if rate is not None else None)


@dataclass
class Drafts:
    """The policy's own bookkeeping, written in the consumer's transaction with the lines:
    which draft takes a customer's items for a period now (supplementary after issue), and
    which invoice each billed item went to."""

    metadata: MetaData
    suffix: str = ""

    def __post_init__(self) -> None:
        self.table = Table(
            f"billing_drafts{self.suffix}", self.metadata,
            Column("customer_id", String(100), primary_key=True),
            Column("period", String(100), primary_key=True),
            Column("invoice_id", String(250), nullable=False),
            Column("supplement", Integer, nullable=False),
        )
        # Exactly once across invoices: a message replayed after its invoice was issued
        # and a supplementary draft opened would otherwise find its item on no open draft.
        self.items = Table(
            f"billing_items{self.suffix}", self.metadata,
            Column("item_id", String(250), primary_key=True),
            Column("invoice_id", String(250), nullable=False),
        )


@dataclass
class Billing:
    store: EventStore
    book: TermsBook
    config: Config
    today: Callable[[], date]
    # Set only on a replay copy (`fresh`): the live terms book, priced with when the copy's
    # own book has not the agreement (the dispatch policy's replay reads no terms).
    live_book: TermsBook | None = None

    def __post_init__(self) -> None:
        tables = Drafts(self.book.metadata, self.book.suffix)
        self.drafts, self.items = tables.table, tables.items
        # stream -> (version, hash, state): a month's draft gets a line per message, and
        # folding all its events again for each would make a long draft quadratic.
        self._folded: OrderedDict[str, tuple[int, str, domain.Invoice]] = OrderedDict()
        self._in_log: dict[str, str] | None = None  # a replay copy's item id -> invoice, from the log

    def fresh(self, suffix: str) -> Billing:
        """A replay copy: its own tables (suffixed), reading the log, never appending."""
        return Billing(self.store, TermsBook(suffix), self.config, self.today, live_book=self.book)

    @property
    def replaying(self) -> bool:
        return self.live_book is not None

    def replay_scope(self, upstream: str, rows: Mapping[str, list[Row]]) -> dict[str, list[Row]]:
        """What a replay of the `upstream` policy compares (module docstring): the items
        priced from that upstream's messages, and the terms book for contracts."""
        scoped = {"billing_items": [row for row in rows.get("billing_items", []) if str(row[0]).startswith(
            f"{upstream}:")]}
        if upstream == "contracts":
            scoped |= {name: list(rows.get(name, [])) for name in ("billing_agreements", "billing_customers")}
        return scoped

    async def _terms(self, conn: AsyncConnection, agreement_id: str | None) -> dict[str, Any]:
        terms = await self.book.terms(conn, agreement_id)
        if not terms and self.live_book is not None:
            terms = await self.live_book.terms(conn, agreement_id)
        return terms

    async def _billed_in_log(self, conn: AsyncConnection, item_id: str) -> str:
        """The invoice whose `LineAdded` holds `item_id` in the log (read once per replay)."""
        if self._in_log is None:
            e = events_table
            found: dict[str, str] = {}
            added = INVOICE.prefix + domain.LineAdded.__name__
            rows = await conn.execute(select(e.c.stream_id, e.c.data).where(e.c.type == added).order_by(e.c.position))
            for stream_id, data in rows:
                found.setdefault(str(json.loads(data)["line"]["item_id"]), str(stream_id).removeprefix(STREAM_PREFIX))
            self._in_log = found
        return self._in_log.get(item_id, NOT_IN_LOG)

    @property
    def invoices(self) -> Repository[domain.Invoice, Any]:
        return Repository(self.store, INVOICE, domain.evolve, domain.Invoice())

    # -- the policy: messages in, invoice lines out ---------------------------------

    async def handle(self, conn: AsyncConnection, message: Message) -> None:
        # Both policies (contracts, dispatch) may add to one draft: take the log's append
        # lock before reading it, so neither decides on a version the other is changing.
        if not self.replaying:  # a replay copy appends nothing
            await self.store.lock(conn)
        await self.book(conn, message)  # terms and names first: a later message prices with them
        if message.type not in ("FeeDue", "QuotaConsumed", "WarrantyVerdict", "ChangeRequestAssessed", "WorkLogged",
                                "ExpenseRecorded"):
            return
        source = pricing.Source(message.service, message.position, message.type)
        data = message.data
        if message.type == "ExpenseRecorded" and not data.get("receipt_date"):
            # rule B1: a receipt without its date (the phone left it blank) is billed in
            # the month it was recorded, rather than parked and never billed.
            data = {**data, "receipt_date": message.recorded_at.astimezone(CHINA).date().isoformat()}
        terms = await self._terms(conn, data.get("agreement_id"))  # read once per message
        if not terms and data.get("agreement_id") is not None and message.type in ("WorkLogged", "ExpenseRecorded"):
            raise TermsNotYetKnown(f"no terms yet for agreement {data['agreement_id']!r} ({message.type} at "
                                   f"{message.service}:{message.position})")
        match message.type:
            case "FeeDue":
                items = pricing.for_fee_due(data, source)
            case "QuotaConsumed":
                items = pricing.for_quota(data, self.config.quota_prices, source)
            case "WarrantyVerdict":
                items = pricing.for_dongle(data, {}, source)
            case "ChangeRequestAssessed":
                # rules B6, C8: by workload at the agreement's day rate for service (B3); without
                # one, the vendor's configured rate, else a rate to be agreed
                rate = (terms.get("service") or {}).get("day_rate")
                day_rate = Decimal(str(rate)) if rate is not None else self.config.change_request_day_rate
                items = pricing.for_change_request(data, terms, day_rate, source)
            case "WorkLogged":
                items = pricing.for_work(data, terms, source)
            case _:
                items = pricing.for_expense(data, terms, source)
        for item in items:
            await self.add(conn, item, terms, ticket_id=data.get("ticket_id"))

    async def add(self, conn: AsyncConnection, item: pricing.BillableItem, terms: Mapping[str, Any], *,
                  ticket_id: str | None) -> None:
        """Put the item on its draft, once: an item id already billed (on any invoice,
        issued or not, even removed since) adds nothing (B8: never billed twice)."""
        billed = await conn.scalar(select(self.items.c.invoice_id).where(self.items.c.item_id == item.item_id))
        if billed is not None:
            return
        if self.replaying:
            await conn.execute(self.items.insert().values(item_id=item.item_id,
                                                          invoice_id=await self._billed_in_log(conn, item.item_id)))
            return
        per_visit = terms.get("billing_period") == "per_visit" and ticket_id
        period = f"visit:{ticket_id}" if per_visit else item.occurred_on.strftime("%Y-%m")
        line = domain.Line(
            item.item_id, item.kind, item.description, item.quantity, item.unit, item.unit_price, item.amount,
            self.config.vat.get(item.kind, self.config.vat["default"]), item.clauses,
            tuple((s.service, s.position, s.message_type) for s in item.sources),
        )
        for _attempt in range(2):
            invoice_id = await self._draft(conn, item.customer_id, period)
            stream = invoice_stream(invoice_id)
            state, version = await self._current(conn, stream)
            if state.status not in ("none", "draft") and item.item_id not in state.item_ids:
                await self._supplement(conn, item.customer_id, period)  # B8: issued stays as issued
                continue
            events: list[domain.Event] = []
            if state.status == "none":
                events = domain.decide(domain.OpenDraft(invoice_id, item.customer_id, period, self.today()), state)
                for event in events:
                    state = domain.evolve(state, event)
            added = domain.decide(domain.AddLine(line), state)
            for event in added:
                state = domain.evolve(state, event)
            events += added
            if events:
                result = await self.store.append(stream, [INVOICE.encode(e) for e in events],
                                                 expected_version=version, conn=conn)
                last = result.events[-1]
                self._remember(stream, (last.version, last.hash), state)
            await conn.execute(self.items.insert().values(item_id=item.item_id, invoice_id=invoice_id))
            return
        raise AssertionError("a fresh supplementary draft is always open")

    async def _current(self, conn: AsyncConnection, stream: str) -> tuple[domain.Invoice, int]:
        """The invoice folded from its stream, or as folded before if its last event is the
        same (a command, another replica or a rolled-back batch changes it: folded anew)."""
        last = await head(conn, stream)
        if last is None:
            return domain.Invoice(), 0
        cached = self._folded.get(stream)
        if cached is not None and cached[:2] == last:
            self._folded.move_to_end(stream)
            return cached[2], last[0]
        state, version = await self.invoices.load(stream, conn=conn)
        self._remember(stream, last, state)
        return state, version

    def _remember(self, stream: str, last: tuple[int, str], state: domain.Invoice) -> None:
        self._folded[stream] = (*last, state)
        self._folded.move_to_end(stream)
        while len(self._folded) > FOLDED:
            self._folded.popitem(last=False)

    async def _draft(self, conn: AsyncConnection, customer_id: str, period: str) -> str:
        t = self.drafts
        row = (await conn.execute(select(t.c.invoice_id).where(t.c.customer_id == customer_id,
                                                               t.c.period == period))).first()
        if row is not None:
            return str(row.invoice_id)
        invoice_id = f"{customer_id}-{period}"
        # Keyed on customer and period: no other writer, we hold the log's lock.
        await conn.execute(t.insert().values(customer_id=customer_id, period=period, invoice_id=invoice_id,
                                             supplement=0))
        return invoice_id

    async def drafts_from_log(self, conn: AsyncConnection) -> None:
        """`billing_drafts` as the log has it: per customer and period, the draft opened
        last (a supplementary one once the first was issued, B8). A stream replay cannot
        rebuild this table (an issue, which opens supplements, is a command, not a
        message), so a model rebuilt in place (weibao.shared.replay) takes it from here."""
        e = events_table
        opened = INVOICE.prefix + domain.DraftOpened.__name__
        latest: dict[tuple[str, str], str] = {}
        for (data,) in await conn.execute(select(e.c.data).where(e.c.type == opened).order_by(e.c.position)):
            found = json.loads(data)
            latest[(found["customer_id"], found["period"])] = found["invoice_id"]
        await conn.execute(self.drafts.delete())
        for (customer_id, period), invoice_id in latest.items():
            first = f"{customer_id}-{period}"
            supplement = 0 if invoice_id == first else int(invoice_id.removeprefix(f"{first}-S"))
            await conn.execute(self.drafts.insert().values(customer_id=customer_id, period=period,
                                                           invoice_id=invoice_id, supplement=supplement))

    async def _supplement(self, conn: AsyncConnection, customer_id: str, period: str) -> None:
        t = self.drafts
        row = (await conn.execute(select(t.c.supplement).where(t.c.customer_id == customer_id,
                                                               t.c.period == period))).one()
        n = row.supplement + 1
        await conn.execute(t.update().where(t.c.customer_id == customer_id, t.c.period == period)
                           .values(invoice_id=f"{customer_id}-{period}-S{n}", supplement=n))

    # -- commands from people -------------------------------------------------------

    async def issue(self, data: Mapping[str, Any], *, command_id: str | None = None,
                    meta: Mapping[str, Any] | None = None) -> list[RecordedEvent]:
        """A gap-free number from the year's series, then the invoice is frozen (B8)."""
        invoice_id = str(data.get("invoice_id", ""))
        state, _ = await self.invoices.load(invoice_stream(invoice_id))
        require(state.status != "none", "not_found", "invoice_id", "no such invoice")
        if state.status != "draft":
            return []
        issued_on = codec.parse(date, data.get("issued_on", self.today().isoformat()), field="issued_on")
        # Refusals first (an empty draft, a date before it opened): a number allocated to
        # an invoice that is then not issued would be a hole in the series.
        domain.decide(domain.Issue("(to be allocated)", issued_on), state)
        series_id = f"INV-{issued_on.year}"
        series = Repository(self.store, SERIES, numbering.evolve, numbering.Series(series_id))
        allocated = await series.execute(f"series-{series_id}",
                                         lambda s: numbering.decide(numbering.Allocate(invoice_id), s), meta=meta)
        current, _ = await series.load(f"series-{series_id}")
        number = current.number_of(invoice_id)
        assert number is not None
        issued = await self.invoices.execute(invoice_stream(invoice_id),
                                             lambda s: domain.decide(domain.Issue(number, issued_on), s),
                                             command_id=command_id, meta=meta)
        return allocated + issued

    async def credit(self, data: Mapping[str, Any], **kw: Any) -> list[RecordedEvent]:
        """rule B8: a credit note of the named lines (none named: all not yet credited).
        Without a `credit_id` the note is numbered on its invoice: `<invoice_id>-CN<n>`."""
        invoice_id = str(data.get("invoice_id", ""))
        lines = data.get("lines")
        require(lines is None or (isinstance(lines, list) and all(isinstance(x, str) for x in lines)), "invalid",
                "lines", "a list of the item ids to credit, or nothing for every line")
        reason, on = str(data.get("reason", "")), self.today()

        def decide(state: domain.Invoice) -> list[domain.Event]:
            credit_id = str(data.get("credit_id") or f"{invoice_id}-CN{len(state.credits) + 1}")
            command = domain.CreditNote(credit_id, tuple(lines) if lines else None, reason, on)
            return domain.decide(command, state)

        return await self.invoices.execute(invoice_stream(invoice_id), decide, **kw)

    async def pay(self, data: Mapping[str, Any], **kw: Any) -> list[RecordedEvent]:
        command = domain.RecordPayment(str(data.get("payment_id", "")),
                                       codec.parse(Decimal, data.get("amount"), field="amount"),
                                       codec.parse(date, data.get("paid_on", self.today().isoformat()),
                                                   field="paid_on"))
        return await self.invoices.execute(invoice_stream(str(data.get("invoice_id", ""))),
                                           lambda s: domain.decide(command, s), **kw)

    # -- reading the log --------------------------------------------------------------

    async def invoice(self, invoice_id: str, as_of: datetime | None = None) -> domain.Invoice:
        """The invoice from its events; with `as_of`, as it stood then (events recorded by then)."""
        # The log records UTC; SQLite compares the stored text, so the bound must be UTC too.
        moment = as_of.astimezone(UTC) if as_of is not None else None
        state, _ = await self.invoices.load(invoice_stream(invoice_id), as_of=moment)
        require(state.status != "none", "not_found", "invoice_id",
                "no such invoice" if as_of is None else "no such invoice at that time")
        return state

    async def statement(self, invoice_id: str) -> str:
        """The printable A4 statement of charges (结算单) of an issued invoice: its lines and
        totals as issued, frozen (B8); then each credit note (red-letter lines) and what is
        left to pay after the credit notes and the payments."""
        state = await self.invoice(invoice_id)
        require(state.status != "draft", "draft", "invoice_id", "a draft has no statement yet; issue it first")
        async with self.store.engine.connect() as conn:
            name = await self.book.customer_name(conn, state.customer_id)
        rows = lines_of(state, name)
        credits = tuple(CreditView(note.credit_id, note.on, note.reason,
                                   tuple(row for row in rows if row.credit_id == note.credit_id), note.totals)
                        for note in state.credits)
        return invoice_html(InvoiceView.of([row for row in rows if not row.credit_id]),
                            Settlement(credits, state.credited, state.paid, state.outstanding))

    async def explain(self, invoice_id: str, item_id: str) -> Mapping[str, Any]:
        """For an invoice line: the clauses that made it billable and the events it came
        from (service and position, which `weibao.<service>.history` and the stream hold)."""
        state = await self.invoice(invoice_id)
        line = next((ln for ln in state.lines if ln.item_id == item_id), None)
        if line is None:
            raise Rejected("not_found", "item_id", "no such line on this invoice")
        pricings = [{"unit_price": str(p.unit_price), "amount": str(p.amount), "reason": p.reason, "by": p.by,
                     "on": p.on.isoformat()} for p in state.pricings_of(item_id)]
        return {"invoice_id": invoice_id, "number": state.number, "item_id": item_id, "clauses": line.clauses,
                "sources": [{"service": s, "position": p, "type": t} for s, p, t in line.sources],
                "description": line.description, "amount": str(line.amount), "vat_rate": str(line.vat_rate),
                "unit_price": str(line.unit_price),
                # C10 [4]: a price set by hand says who set it and why; the last one holds
                "pricing": pricings[-1] if pricings else None, "pricings": pricings}

    # -- a price agreed by hand ---------------------------------------------------------

    async def price_line(self, data: Mapping[str, Any], *, command_id: str | None = None,
                         meta: Mapping[str, Any] | None = None) -> list[RecordedEvent]:
        """C10 [4]: the negotiated unit price of a draft line whose rate is to be agreed
        (RATE_TO_BE_AGREED); again on the draft if renegotiated, never once issued (B8).
        {invoice_id, item_id, unit_price (decimal text), reason}; who priced it is the
        request's actor (`Weibao-Actor`), or `by` when a caller without one names it."""
        actor = (meta or {}).get("actor")
        by = str(actor) if actor and actor != "system" else str(data.get("by") or actor or "")
        price = exact(data, "unit_price", "an amount of yuan", "333.335")  # its range: the domain's rule
        command = domain.PriceLine(str(data.get("item_id", "")), price, str(data.get("reason") or ""), by,
                                   self.today())
        return await self.invoices.execute(invoice_stream(str(data.get("invoice_id", ""))),
                                           lambda s: domain.decide(command, s), command_id=command_id, meta=meta)


