"""The billing service's commands and queries on NATS (`weibao.billing.<name>`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from faststream.nats import NatsBroker

from weibao.billing.adapters.invoices import InvoiceBook, invoice_stream, invoices_of
from weibao.billing.adapters.terms import TermsBook
from weibao.billing.application.invoicing import Invoicing
from weibao.billing.application.policy import BillingPolicy, Config
from weibao.billing.application.queries import Queries
from weibao.billing.domain.invoice import allowed
from weibao.shared.clock import china_today
from weibao.shared.commands.billing import (
    CreditInvoice,
    ExportQuery,
    InvoiceAsOf,
    InvoiceList,
    InvoiceRef,
    IssueInvoice,
    LineRef,
    PayInvoice,
    PriceLine,
    RenewalList,
)
from weibao.shared.eventstore import EventStore
from weibao.shared.messages import Message
from weibao.shared.rpc import command, expose, history_reply, query
from weibao.shared.service import Runtime


class Policy:
    """A tracking consumer's handler: one per upstream, all sharing one BillingPolicy."""

    def __init__(self, policy: BillingPolicy, upstream: str) -> None:
        self.policy, self.upstream = policy, upstream
        self.name = f"policy_{upstream}"
        self.metadata = policy.book.metadata
        self.suffix = policy.book.suffix

    def tables(self) -> list[Any]:
        return self.policy.tables()

    def fresh(self, suffix: str) -> Policy:
        """Its replay copy: rebuilds the policy's tables, appends nothing (application/policy.py)."""
        return Policy(self.policy.fresh(suffix), self.upstream)

    def replay_scope(self, rows: Mapping[str, list[Any]]) -> dict[str, list[Any]]:
        return self.policy.replay_scope(self.upstream, rows)

    async def rebuilt(self, conn: Any) -> None:
        """After a rebuild in place: the open drafts, which no stream replay restores."""
        await self.policy.drafts_from_log(conn)

    async def __call__(self, conn: Any, message: Message) -> None:
        await self.policy.handle(conn, message)


def policy_for(store: EventStore) -> BillingPolicy:
    return BillingPolicy(store, TermsBook(), Config.load(), china_today, invoices_of(store))


def invoice_book(policy: BillingPolicy) -> InvoiceBook:
    """The read model of invoices, naming customers from the policy's terms book."""
    return InvoiceBook(names=policy.book.customers)


def register(broker: NatsBroker, runtime: Runtime) -> None:
    # The one BillingPolicy the consumers run (service.py builds it): the commands and
    # queries share its repository (and its cache of folded invoices) and its terms book.
    policy = runtime.read_model(Policy).policy
    invoicing = Invoicing(runtime.store, policy.invoices, policy.today)
    queries = Queries(runtime.engine, runtime.read_model(InvoiceBook), policy.invoices, policy.book, policy)
    expose(broker, "billing", "invoice.issue", command(invoicing.issue, IssueInvoice), keys=runtime.keys)
    expose(broker, "billing", "invoice.credit", command(invoicing.credit, CreditInvoice), keys=runtime.keys)
    expose(broker, "billing", "invoice.pay", command(invoicing.pay, PayInvoice), keys=runtime.keys)
    expose(broker, "billing", "invoice.price_line", command(invoicing.price_line, PriceLine), keys=runtime.keys)

    async def invoice(found: InvoiceAsOf) -> Any:
        state = await queries.invoice(found)
        return {"invoice_id": state.invoice_id, "customer_id": state.customer_id, "period": state.period,
                "status": state.status, "number": state.number, "issued_on": state.issued_on,
                "lines": state.lines, "totals": state.totals, "outstanding": state.outstanding,
                # what the clerk may ask next (the domain's table): the console offers only these
                "actions": sorted(allowed(state))}

    async def page(found: InvoiceRef) -> Any:
        return {"html": await queries.statement(found)}

    async def history(found: InvoiceRef) -> Any:
        return history_reply(await runtime.store.load(invoice_stream(found.invoice_id)))

    expose(broker, "billing", "invoice", query(invoice, InvoiceAsOf), keys=runtime.keys)
    expose(broker, "billing", "invoice.page", query(page, InvoiceRef), keys=runtime.keys)
    expose(broker, "billing", "invoice.explain", query(queries.explain, LineRef), keys=runtime.keys)
    expose(broker, "billing", "history", query(history, InvoiceRef), keys=runtime.keys)
    expose(broker, "billing", "invoices", query(queries.invoices, InvoiceList), keys=runtime.keys)
    expose(broker, "billing", "export.lines", query(queries.export_lines, ExportQuery), keys=runtime.keys)
    expose(broker, "billing", "renewals", query(queries.renewals, RenewalList), keys=runtime.keys)  # B4, C2
