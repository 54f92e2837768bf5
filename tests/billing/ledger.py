"""Billing in-process on a real event store: public messages in, invoices out.

No broker: each message goes through `BillingPolicy.handle` in its own write
transaction, as the tracking consumer would hand it over; the clerk's commands and the
queries share the policy's repository, as the service wires them (entrypoints). Terms
come from the shipped contract templates, resolved and serialised exactly as contracts
publishes them in `CoverageGranted`."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from weibao.billing.adapters.invoices import InvoiceBook, invoices_of
from weibao.billing.adapters.terms import TermsBook
from weibao.billing.application.invoicing import Invoicing
from weibao.billing.application.policy import BillingPolicy, Config
from weibao.billing.application.queries import Queries
from weibao.billing.domain import invoice as domain
from weibao.billing.domain.pricing import RATE_TO_BE_AGREED
from weibao.billing.entrypoints.endpoints import Policy, invoice_book
from weibao.contracts.adapters.templates import load_templates
from weibao.shared import codec
from weibao.shared.commands.billing import InvoiceAsOf, IssueInvoice, PriceLine
from weibao.shared.db import begin_write
from weibao.shared.eventstore import EventStore
from weibao.shared.messages import Message
from weibao.shared.public.contracts import CoverageGranted, Office, SiteLocated
from weibao.shared.readmodels import create_tables

HEFEI = Office("合肥办事处", "3401", 31.8206, 117.2272)
RECORDED = datetime(2026, 6, 1, tzinfo=UTC)


def terms_of(template_id: str, parameters: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """An agreement's terms as `CoverageGranted` carries them: the template, signed."""
    dumped: dict[str, Any] = codec.dump(load_templates()[template_id].resolve(parameters or {}))
    return dumped


def as_message(service: str, position: int, message: Any, *, stream_id: str | None = None) -> Message:
    """A public dataclass as a consumer decodes it off the stream (JSON: tuples become lists)."""
    kind = type(message)
    return Message(service, position, stream_id or f"{kind.__name__}-{position}", 1, kind.__name__,
                   getattr(kind, "SCHEMA", 1), RECORDED, json.loads(json.dumps(asdict(message))), {})


def messages_of(events: Sequence[Any], service: str = "billing") -> list[Message]:
    """A service's own recorded events as its stream delivers them back (read models)."""
    return [Message(service, e.position, e.stream_id, e.version, e.type, e.schema_version, e.recorded_at,
                    json.loads(json.dumps(dict(e.data))), dict(e.meta)) for e in events]


class Ledger:
    def __init__(self, engine: AsyncEngine, today: date = date(2026, 6, 30)) -> None:
        self.engine = engine
        self.now = RECORDED  # the log's clock: set it to record events at a known time
        self.store = EventStore(engine, clock=lambda: self.now)
        self.policy = BillingPolicy(self.store, TermsBook(), Config.load(), lambda: today, invoices_of(self.store))
        self.invoicing = Invoicing(self.store, self.policy.invoices, self.policy.today)
        self.positions: dict[str, int] = {}

    def queries(self, book: InvoiceBook | None = None) -> Queries:
        """The queries: one invoice from the log; lists and exports from `book`."""
        return Queries(self.engine, book or invoice_book(self.policy), self.policy.invoices, self.policy.book)

    async def start(self) -> Ledger:
        await self.store.create_tables()
        await create_tables(self.engine, Policy(self.policy, "any"))
        return self

    async def send(self, service: str, *messages: Any) -> list[int]:
        """Each message at the upstream's next position; returns the positions."""
        positions = []
        for message in messages:
            position = self.positions[service] = self.positions.get(service, 0) + 1
            await self.deliver(as_message(service, position, message))
            positions.append(position)
        return positions

    async def deliver(self, message: Message) -> None:
        async with begin_write(self.engine) as conn:
            await self.policy.handle(conn, message)

    async def agreement(self, agreement_id: str, customer_id: str, customer_name: str, template_id: str,
                        parameters: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """What contracts publishes when an agreement is signed: its coverage, the site's customer."""
        terms = terms_of(template_id, parameters)
        await self.send("contracts",
                        CoverageGranted(agreement_id, customer_id, ("s-1",), "2025-06-01", "2026-05-31", "free",
                                        ("C1",), HEFEI, terms),
                        SiteLocated(customer_id, customer_name, f"{customer_id}-site", "总部", "合肥", 31.86, 117.28,
                                    "3401", "street"))
        return terms

    async def invoice(self, invoice_id: str) -> domain.Invoice:
        return await self.queries().invoice(InvoiceAsOf(invoice_id=invoice_id))

    async def issue(self, invoice_id: str, on: str = "2026-06-30") -> domain.Invoice:
        """Issue the draft. A line still waiting for its negotiated price would refuse the
        issue (B8); these hand-computed invoices keep such lines at 0.00, so the clerk
        prices each at 0.00 first, as a clerk does who waives it."""
        draft = await self.invoice(invoice_id)
        for line in draft.lines:
            if RATE_TO_BE_AGREED in line.clauses:
                await self.invoicing.price_line(PriceLine(invoice_id=invoice_id, item_id=line.item_id, unit_price="0",
                                                          reason="left at 0.00 in this test"),
                                                meta={"actor": "billing:test"})
        await self.invoicing.issue(IssueInvoice(invoice_id=invoice_id, issued_on=date.fromisoformat(on)))
        return await self.invoice(invoice_id)

    async def book(self, *, batch: int = 500, suffix: str = "") -> InvoiceBook:
        """The invoice read model built from the log, `batch` messages per transaction."""
        model = invoice_book(self.policy)
        if suffix:
            model = model.fresh(suffix)
        await create_tables(self.engine, model)
        events = [e async for e in self.store.read_all()]
        messages = messages_of(events)
        for start in range(0, len(messages), batch):
            async with begin_write(self.engine) as conn:
                await model.apply_batch(conn, messages[start:start + batch])
        return model
