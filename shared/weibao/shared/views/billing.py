"""What billing answers its readers (issue 12, item 4): an invoice with its lines, a
line's explanation (its provenance), the list of invoices and the renewal notices.

Money and the other exact figures (quantities, prices, VAT rates) are decimal text, never
JSON numbers (rule B8: exact to the fen); dates are `YYYY-MM-DD`. The queries that build
these answers are billing's (`weibao.billing.application.queries`, the `invoice` query in
its entrypoints); the gateway declares these models on its routes, so an answer that
drifts from them fails there."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import Field, WithJsonSchema

from weibao.shared.commands.billing import RenewalStatus
from weibao.shared.public.billing import InvoiceStatus
from weibao.shared.views import View

__all__ = [
    "DecimalText",
    "ExplainedSource",
    "Invoice",
    "InvoiceAction",
    "InvoiceLine",
    "InvoiceSummary",
    "LineExplanation",
    "LineSource",
    "Pricing",
    "RateTotal",
    "Renewal",
    "Totals",
]

# Exact decimal text as billing writes it (`str(Decimal)`): `1200.00`, `-61.70`, `0.13`, `1.5`.
DecimalText = Annotated[str, Field(pattern=r"^-?\d+(\.\d+)?$", examples=["1200.00"])]

# What a clerk may ask of an invoice next (billing's state table, `domain.invoice.Action`).
InvoiceAction = Literal["issue", "price_line", "remove_line", "credit", "pay"]

# An event a line was derived from (B8): its service, its position in that service's log,
# its type. A JSON array of exactly those three, as billing has always answered it.
LineSource = Annotated[tuple[str, int, str], WithJsonSchema({
    "type": "array", "minItems": 3, "maxItems": 3,
    "prefixItems": [{"type": "string", "description": "the service whose log holds the event"},
                    {"type": "integer", "description": "the event's position in that log"},
                    {"type": "string", "description": "the event's type"}],
    "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
    "description": "an event the line was derived from: [service, position, type]",
    "examples": [["dispatch", 12, "VisitClosed"]]})]


class RateTotal(View):
    rate: DecimalText = Field(description="the VAT rate, as a fraction (`0.13`)")
    net: DecimalText = Field(description="the lines' net amount at this rate, yuan")
    vat: DecimalText = Field(description="the VAT of those lines (the sum of each line's, B8), yuan")
    gross: DecimalText = Field(description="net + VAT, yuan")


class Totals(View):
    """An invoice's totals: frozen at issue (B8); on a draft, what it would be issued with now."""

    net: DecimalText = Field(description="the invoice's net amount, yuan")
    vat: DecimalText = Field(description="its VAT, the sum of the lines' VAT (B8), yuan")
    gross: DecimalText = Field(description="net + VAT: what the invoice asks, yuan")
    by_rate: list[RateTotal] = Field(description="the same figures per VAT rate, lowest rate first")


class InvoiceLine(View):
    item_id: str = Field(description="the billed item's id in billing (the line's key)")
    kind: str = Field(description="what is billed (`expense`, `hardware_days`, `annual_fee`, ...); sets the VAT rate")
    description: str = Field(description="the line's text, as printed")
    quantity: DecimalText = Field(description="how many units")
    unit: str = Field(description="the unit of `quantity` (`天`, `人`, `次`, ...)")
    unit_price: DecimalText = Field(description="the price of one unit before VAT, yuan (shown, not recomputed)")
    amount: DecimalText = Field(description="the line's net amount, yuan: authoritative")
    vat_rate: DecimalText = Field(description="the line's VAT rate, as a fraction (`0.06`)")
    clauses: list[str] = Field(description="the rules the line is charged under (`B2`, `C4`, ...)")
    sources: list[LineSource] = Field(description="the events the line was derived from (B8)")


class Invoice(View):
    """One invoice with its lines, now or as it stood at a time."""

    invoice_id: str = Field(description="the invoice's id: its customer and period")
    customer_id: str = Field(description="the customer (甲方) billed")
    period: str = Field(description="the billing month (`2026-06`), or `visit:<ticket_id>` for one visit's invoice")
    status: InvoiceStatus = Field(description="draft until issued; then issued, partially paid, paid or credited")
    number: str | None = Field(description="its number from the gap-free series (`INV-2026-000001`); "
                                           "null on a draft")
    issued_on: date | None = Field(description="the day it was issued; null on a draft")
    lines: list[InvoiceLine] = Field(description="its lines, in order")
    totals: Totals = Field(description="its totals (frozen at issue)")
    outstanding: DecimalText = Field(description="what is left to pay after credit notes and payments, yuan; "
                                                 "negative when a credit note leaves a refund due")
    actions: list[InvoiceAction] = Field(description="what a clerk may do with it next, in its status")


class InvoiceSummary(View):
    """An invoice in a list: its header and totals, without its lines."""

    invoice_id: str = Field(description="the invoice's id: its customer and period")
    customer_id: str = Field(description="the customer (甲方) billed")
    customer_name: str = Field(description="the customer's name (its id when billing does not know it)")
    period: str = Field(description="the billing month (`2026-06`), or `visit:<ticket_id>` for one visit's invoice")
    month: str = Field(description="the month it belongs to (`2026-06`); a visit's invoice: the month it was opened")
    status: InvoiceStatus = Field(description="draft until issued; then issued, partially paid, paid or credited")
    number: str | None = Field(description="its number from the gap-free series; null on a draft")
    issued_on: date | None = Field(description="the day it was issued; null on a draft")
    totals: Totals = Field(description="its totals (frozen at issue)")
    outstanding: DecimalText = Field(description="what is left to pay after credit notes and payments, yuan")
    lines_count: int = Field(ge=0, description="how many lines it has")


class ExplainedSource(View):
    service: str = Field(description="the service whose log holds the event")
    position: int = Field(description="the event's position in that log (its audit history shows it)")
    type: str = Field(description="the event's type")


class Pricing(View):
    """A price set by hand on a line whose rate was to be agreed (C10 [4])."""

    unit_price: DecimalText = Field(description="the agreed price of one unit, yuan")
    amount: DecimalText = Field(description="the line's net amount at that price, yuan")
    reason: str = Field(description="how the price was agreed")
    by: str = Field(description="who set it (`billing:wang`)")
    on: date = Field(description="the day it was set")


class LineExplanation(View):
    """Why an invoice line: the clauses that made it billable, the events it came from,
    and who priced it when its rate was to be agreed."""

    invoice_id: str = Field(description="the invoice")
    number: str | None = Field(description="the invoice's number; null on a draft")
    item_id: str = Field(description="the line's billed item")
    clauses: list[str] = Field(description="the rules the line is charged under")
    sources: list[ExplainedSource] = Field(description="the events the line was derived from (B8)")
    description: str = Field(description="the line's text, as printed")
    amount: DecimalText = Field(description="the line's net amount, yuan")
    vat_rate: DecimalText = Field(description="the line's VAT rate, as a fraction")
    unit_price: DecimalText = Field(description="the price of one unit before VAT, yuan")
    pricing: Pricing | None = Field(description="the price set by hand that holds (the last); null if none was")
    pricings: list[Pricing] = Field(description="every price set by hand on the line, oldest first")


class Renewal(View):
    """A renewal notice (rules B4, C2): an agreement's annual fee fell due for a period."""

    agreement_id: str = Field(description="the agreement renewed")
    customer_id: str = Field(description="its customer (甲方)")
    customer_name: str = Field(description="the customer's name (its id when billing does not know it)")
    amount: DecimalText = Field(description="the annual fee due, yuan")
    period_from: date = Field(description="the first day of the period the fee covers")
    period_to: date = Field(description="the last day of that period")
    due_on: date = Field(description="the day the fee fell due")
    status: RenewalStatus = Field(description="open (nothing billed yet), renewed (paid) or withdrawn "
                                              "(the agreement was terminated)")
    lapsed_on: date | None = Field(description="the first day without coverage, if it lapsed (C1); else null")
    payment_id: str | None = Field(description="the payment that renewed it; null until renewed")
    renewed_on: date | None = Field(description="the day it was paid; null until renewed")
    item_id: str | None = Field(description="the annual fee's billed item; null until billed")
    invoice_id: str | None = Field(description="the invoice the annual fee went to; null until billed")
    withdrawn_on: date | None = Field(description="the day the agreement was terminated; null unless withdrawn")
    source: str = Field(description="the event that opened the notice, `<service>:<position>`")
    renewal_source: str | None = Field(description="the payment's event, `<service>:<position>`; null until renewed")
    clauses: list[str] = Field(description="the rules it follows (`B4`, `C2`)")
