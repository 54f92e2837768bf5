"""Billing: what the fee does not cover, priced from the messages, onto invoices.

A policy consumer per upstream prices each message (domain/pricing) and adds the items
to the customer's draft for the period, in the same transaction as its checkpoint:
a redelivered message finds its item id already on the invoice and bills nothing twice.
An item for an issued invoice goes on a supplementary draft of the same period (B8)."""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Integer, MetaData, String, Table, select
from sqlalchemy.ext.asyncio import AsyncConnection

from weibao.billing.adapters.terms import TermsBook
from weibao.billing.domain import invoice as domain
from weibao.billing.domain import pricing
from weibao.billing.domain import series as numbering
from weibao.shared import codec
from weibao.shared.aggregates import Repository
from weibao.shared.errors import Rejected, require
from weibao.shared.events import RecordedEvent
from weibao.shared.eventstore import EventStore
from weibao.shared.messages import Message
from weibao.shared.readmodels import upsert

CONFIG = Path(__file__).resolve().parent.parent / "config.toml"

INVOICE = codec.Codec([domain.DraftOpened, domain.LineAdded, domain.LineRemoved, domain.InvoiceIssued,
                       domain.CreditNoted, domain.PaymentRecorded], prefix="private.")
SERIES = codec.Codec([numbering.NumberAllocated], prefix="private.")


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


def invoice_stream(invoice_id: str) -> str:
    return f"invoice-{invoice_id}"


@dataclass
class Drafts:
    """Which draft takes a customer's items for a period, now (supplementary after issue)."""

    metadata: MetaData

    def __post_init__(self) -> None:
        self.table = Table(
            "billing_drafts", self.metadata,
            Column("customer_id", String(100), primary_key=True),
            Column("period", String(100), primary_key=True),
            Column("invoice_id", String(250), nullable=False),
            Column("supplement", Integer, nullable=False),
        )


@dataclass
class Billing:
    store: EventStore
    book: TermsBook
    config: Config
    today: Callable[[], date]

    def __post_init__(self) -> None:
        self.drafts = Drafts(self.book.metadata).table

    @property
    def invoices(self) -> Repository[domain.Invoice, Any]:
        return Repository(self.store, INVOICE, domain.evolve, domain.Invoice())

    # -- the policy: messages in, invoice lines out ---------------------------------

    async def handle(self, conn: AsyncConnection, message: Message) -> None:
        # Both policies (contracts, dispatch) may add to one draft: take the log's append
        # lock before reading it, so neither decides on a version the other is changing.
        await self.store.lock(conn)
        await self.book(conn, message)  # terms and names first: a later message prices with them
        if message.type not in ("FeeDue", "QuotaConsumed", "WarrantyVerdict", "WorkLogged", "ExpenseRecorded"):
            return
        source = pricing.Source(message.service, message.position, message.type)
        data = message.data
        terms = await self.book.terms(conn, data.get("agreement_id"))  # read once per message
        match message.type:
            case "FeeDue":
                items = pricing.for_fee_due(data, source)
            case "QuotaConsumed":
                items = pricing.for_quota(data, self.config.quota_prices, source)
            case "WarrantyVerdict":
                items = pricing.for_dongle(data, {}, source)
            case "WorkLogged":
                items = pricing.for_work(data, terms, source)
            case _:
                items = pricing.for_expense(data, terms, source)
        for item in items:
            await self.add(conn, item, terms, ticket_id=data.get("ticket_id"))

    async def add(self, conn: AsyncConnection, item: pricing.BillableItem, terms: Mapping[str, Any], *,
                  ticket_id: str | None) -> None:
        per_visit = terms.get("billing_period") == "per_visit" and ticket_id
        period = f"visit:{ticket_id}" if per_visit else item.occurred_on.strftime("%Y-%m")
        line = domain.Line(
            item.item_id, item.kind, item.description, item.quantity, item.unit, item.unit_price, item.amount,
            self.config.vat.get(item.kind, self.config.vat["default"]), item.clauses,
            tuple((s.service, s.position, s.message_type) for s in item.sources),
        )
        for _attempt in range(2):
            invoice_id = await self._draft(conn, item.customer_id, period)
            state, _ = await self.invoices.load(invoice_stream(invoice_id), conn=conn)
            if state.status not in ("none", "draft") and item.item_id not in state.item_ids:
                await self._supplement(conn, item.customer_id, period)  # B8: issued stays as issued
                continue
            opened_on = self.today()

            def decide(state: domain.Invoice, invoice_id: str = invoice_id, opened_on: date = opened_on) -> list[Any]:
                events: list[Any] = []
                if state.status == "none":
                    events = domain.decide(domain.OpenDraft(invoice_id, item.customer_id, period, opened_on), state)
                    for event in events:
                        state = domain.evolve(state, event)
                return events + domain.decide(domain.AddLine(line), state)

            await self.invoices.execute(invoice_stream(invoice_id), decide, conn=conn)
            return
        raise AssertionError("a fresh supplementary draft is always open")

    async def _draft(self, conn: AsyncConnection, customer_id: str, period: str) -> str:
        t = self.drafts
        row = (await conn.execute(select(t.c.invoice_id).where(t.c.customer_id == customer_id,
                                                               t.c.period == period))).first()
        if row is not None:
            return str(row.invoice_id)
        invoice_id = f"{customer_id}-{period}"
        await upsert(conn, t, "customer_id", customer_id, {"period": period, "invoice_id": invoice_id,
                                                            "supplement": 0})
        return invoice_id

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
        lines = data.get("lines")
        command = domain.CreditNote(str(data.get("credit_id", "")), tuple(lines) if lines else None,
                                    str(data.get("reason", "")), self.today())
        return await self.invoices.execute(invoice_stream(str(data.get("invoice_id", ""))),
                                           lambda s: domain.decide(command, s), **kw)

    async def pay(self, data: Mapping[str, Any], **kw: Any) -> list[RecordedEvent]:
        command = domain.RecordPayment(str(data.get("payment_id", "")),
                                       codec.parse(Decimal, data.get("amount"), field="amount"),
                                       codec.parse(date, data.get("paid_on", self.today().isoformat()),
                                                   field="paid_on"))
        return await self.invoices.execute(invoice_stream(str(data.get("invoice_id", ""))),
                                           lambda s: domain.decide(command, s), **kw)

    async def invoice(self, invoice_id: str) -> domain.Invoice:
        state, _ = await self.invoices.load(invoice_stream(invoice_id))
        require(state.status != "none", "not_found", "invoice_id", "no such invoice")
        return state

    async def explain(self, invoice_id: str, item_id: str) -> Mapping[str, Any]:
        """For an invoice line: the clauses that made it billable and the events it came
        from (service and position, which `weibao.<service>.history` and the stream hold)."""
        state = await self.invoice(invoice_id)
        line = next((ln for ln in state.lines if ln.item_id == item_id), None)
        if line is None:
            raise Rejected("not_found", "item_id", "no such line on this invoice")
        return {"invoice_id": invoice_id, "number": state.number, "item_id": item_id, "clauses": line.clauses,
                "sources": [{"service": s, "position": p, "type": t} for s, p, t in line.sources],
                "description": line.description, "amount": str(line.amount), "vat_rate": str(line.vat_rate)}
