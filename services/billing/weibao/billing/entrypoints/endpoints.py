"""The billing service's commands and queries on NATS (`weibao.billing.<name>`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from faststream.nats import NatsBroker

from weibao.billing.adapters.invoices import InvoiceBook, invoice_stream
from weibao.billing.adapters.terms import TermsBook
from weibao.billing.application.billing import Billing, Config
from weibao.billing.application.queries import Queries, moment
from weibao.shared.clock import china_today
from weibao.shared.messages import Message
from weibao.shared.rpc import command, expose, history_reply
from weibao.shared.service import Runtime


class Policy:
    """A tracking consumer's handler: one per upstream, all sharing one Billing."""

    def __init__(self, billing: Billing, upstream: str) -> None:
        self.billing, self.upstream = billing, upstream
        self.name = f"policy_{upstream}"
        self.metadata = billing.book.metadata
        self.suffix = billing.book.suffix

    def tables(self) -> list[Any]:
        return [*self.billing.book.tables(), self.billing.drafts, self.billing.items]

    def fresh(self, suffix: str) -> Policy:
        """Its replay copy: rebuilds the policy's tables, appends nothing (application/billing.py)."""
        return Policy(self.billing.fresh(suffix), self.upstream)

    def replay_scope(self, rows: Mapping[str, list[Any]]) -> dict[str, list[Any]]:
        return self.billing.replay_scope(self.upstream, rows)

    async def rebuilt(self, conn: Any) -> None:
        """After a rebuild in place: the open drafts, which no stream replay restores."""
        await self.billing.drafts_from_log(conn)

    async def __call__(self, conn: Any, message: Message) -> None:
        await self.billing.handle(conn, message)


def billing_for(store: Any) -> Billing:
    return Billing(store, TermsBook(), Config.load(), china_today)


def invoice_book(billing: Billing) -> InvoiceBook:
    """The read model of invoices, naming customers from the billing's terms book."""
    return InvoiceBook(names=billing.book.customers)


def register(broker: NatsBroker, runtime: Runtime) -> None:
    # The one Billing the policies run (service.py builds it): commands and queries share
    # its terms book and its cache of folded invoices.
    billing = runtime.read_model(Policy).billing
    queries = Queries(runtime.engine, runtime.read_model(InvoiceBook))
    expose(broker, "billing", "invoice.issue", command(billing.issue), keys=runtime.keys)
    expose(broker, "billing", "invoice.credit", command(billing.credit), keys=runtime.keys)
    expose(broker, "billing", "invoice.pay", command(billing.pay), keys=runtime.keys)
    expose(broker, "billing", "invoice.price_line", command(billing.price_line), keys=runtime.keys)

    async def invoice(body: Mapping[str, Any], _meta: Mapping[str, Any]) -> Any:
        state = await billing.invoice(str(body.get("invoice_id", "")), moment(body, "as_of"))
        return {"invoice_id": state.invoice_id, "customer_id": state.customer_id, "period": state.period,
                "status": state.status, "number": state.number, "issued_on": state.issued_on,
                "lines": state.lines, "totals": state.totals, "outstanding": state.outstanding}

    async def page(body: Mapping[str, Any], _meta: Mapping[str, Any]) -> Any:
        return {"html": await billing.statement(str(body.get("invoice_id", "")))}

    async def invoices(body: Mapping[str, Any], _meta: Mapping[str, Any]) -> Any:
        return await queries.invoices(body)

    async def export_lines(body: Mapping[str, Any], _meta: Mapping[str, Any]) -> Any:
        return await queries.export_lines(body)

    async def explain(body: Mapping[str, Any], _meta: Mapping[str, Any]) -> Any:
        return await billing.explain(str(body.get("invoice_id", "")), str(body.get("item_id", "")))

    async def history(body: Mapping[str, Any], _meta: Mapping[str, Any]) -> Any:
        return history_reply(await runtime.store.load(invoice_stream(str(body.get("invoice_id", "")))))

    expose(broker, "billing", "invoice", invoice, keys=runtime.keys)
    expose(broker, "billing", "invoice.page", page, keys=runtime.keys)
    expose(broker, "billing", "invoices", invoices, keys=runtime.keys)
    expose(broker, "billing", "export.lines", export_lines, keys=runtime.keys)
    expose(broker, "billing", "invoice.explain", explain, keys=runtime.keys)
    expose(broker, "billing", "history", history, keys=runtime.keys)
