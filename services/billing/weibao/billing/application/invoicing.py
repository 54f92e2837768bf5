"""A clerk's commands on an invoice: issue it, correct it, record a payment, price a line.

Each is load, decide, append on the invoice's stream through the repository the policy
uses too (adapters/invoices.py: `invoices_of`), so a line the policy adds and a command
never decide on each other's stale state. The bodies arrive decoded
(`weibao.shared.commands.billing`): their shape is checked there, their meaning here
and in the domain."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from weibao.billing.adapters.invoices import SERIES, Invoices, invoice_stream
from weibao.billing.domain import invoice as domain
from weibao.billing.domain import series as numbering
from weibao.shared.aggregates import Repository
from weibao.shared.commands.billing import CreditInvoice, IssueInvoice, PayInvoice, PriceLine
from weibao.shared.errors import Rejected, require
from weibao.shared.events import RecordedEvent
from weibao.shared.eventstore import EventStore


@dataclass
class Invoicing:
    store: EventStore
    invoices: Invoices
    today: Callable[[], date]

    async def issue(self, command: IssueInvoice, *, command_id: str | None = None,
                    meta: Mapping[str, Any] | None = None) -> list[RecordedEvent]:
        """A gap-free number from the year's series, then the invoice is frozen (B8)."""
        invoice_id = command.invoice_id
        state, _ = await self.invoices.load(invoice_stream(invoice_id))
        require(state.status != "none", "not_found", "invoice_id", "no such invoice", reason="invoice.not_found")
        if state.status != "draft":
            return []
        issued_on = command.issued_on or self.today()
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

    async def credit(self, command: CreditInvoice, *, command_id: str | None = None,
                     meta: Mapping[str, Any] | None = None) -> list[RecordedEvent]:
        """rule B8: a credit note of the named lines (none named: all not yet credited).
        Without a `credit_id` the note is numbered on its invoice: `<invoice_id>-CN<n>`."""
        on = self.today()

        def decide(state: domain.Invoice) -> list[domain.Event]:
            credit_id = command.credit_id or f"{command.invoice_id}-CN{len(state.credits) + 1}"
            note = domain.CreditNote(credit_id, tuple(command.lines) or None, command.reason, on)
            return domain.decide(note, state)

        return await self.invoices.execute(invoice_stream(command.invoice_id), decide, command_id=command_id,
                                           meta=meta)

    async def pay(self, command: PayInvoice, *, command_id: str | None = None,
                  meta: Mapping[str, Any] | None = None) -> list[RecordedEvent]:
        payment = domain.RecordPayment(command.payment_id, command.amount, command.paid_on or self.today())
        return await self.invoices.execute(invoice_stream(command.invoice_id),
                                           lambda s: domain.decide(payment, s), command_id=command_id, meta=meta)

    async def price_line(self, command: PriceLine, *, command_id: str | None = None,
                         meta: Mapping[str, Any] | None = None) -> list[RecordedEvent]:
        """C10 [4]: the negotiated unit price of a draft line whose rate is to be agreed
        (RATE_TO_BE_AGREED); again on the draft if renegotiated, never once issued (B8).
        Who priced it is the request's actor (`Weibao-Actor`), or `by` when a caller
        without one names it."""
        actor = (meta or {}).get("actor")
        by = str(actor) if actor and actor != "system" else str(command.by or actor or "")
        try:
            price = Decimal(command.unit_price)  # its range is the domain's rule
        except InvalidOperation as error:  # the schema's pattern admits decimal text only
            raise Rejected("invalid", "unit_price", f"not an amount of yuan: {command.unit_price!r}") from error
        priced = domain.PriceLine(command.item_id, price, command.reason, by, self.today())
        return await self.invoices.execute(invoice_stream(command.invoice_id),
                                           lambda s: domain.decide(priced, s), command_id=command_id, meta=meta)
