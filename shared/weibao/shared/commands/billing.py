"""The billing service's command and query bodies (`weibao.billing.<name>`).

Two kinds per command: the HTTP body a clerk posts (`Issue`, `CreditNote`, `Payment`,
`LinePrice`, which the gateway validates and documents), and what billing decodes from
NATS: that body with the fields the gateway takes from the path (`IssueInvoice`, ...).
The gateway sends exactly the second; a field renamed here fails both sides at once."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import Field, field_validator

from weibao.shared.clock import CHINA
from weibao.shared.commands import ID_PATTERN, Body, Decimal, Id, Money, Paging, Whole
from weibao.shared.public.billing import InvoiceStatus

# An invoice is named after its customer and period (`<customer>-2026-06`,
# `<customer>-visit:<ticket>-S1`): longer than an id of its own, as long as billing stores.
InvoiceId = Field(min_length=1, max_length=250)
ItemId = Field(min_length=1, max_length=250)  # `<service>:<position>:<n>`
EXAMPLE = "2026-06-30T18:00:00+08:00"


# -- the HTTP bodies -------------------------------------------------------------------


class Issue(Body):
    issued_on: date | None = None  # none: today


class CreditNote(Body):
    credit_id: str | None = Field(default=None, max_length=100)  # none: `<invoice_id>-CN<n>`
    lines: list[str] = Field(default_factory=list, max_length=1000)  # item ids; empty: the whole invoice
    reason: str = Field(min_length=1, max_length=2000)


class Payment(Body):
    payment_id: str = Id
    amount: Decimal = Money
    paid_on: date | None = None  # none: today


class LinePrice(Body):
    """The negotiated price of a line whose rate is to be agreed (C10 [4]). Unknown fields
    are refused (`Body`); the price is decimal text, never a JSON number (B8: exact)."""

    unit_price: str = Field(pattern=r"^\d{1,10}(\.\d{1,6})?$", examples=["333.335"],
                            description="yuan per unit, exact decimal text, up to 6 decimal places")
    reason: str = Field(min_length=1, max_length=2000, description="how the price was agreed")


# -- what billing decodes: the body and the path's fields ------------------------------


class InvoiceRef(Body):
    """`weibao.billing.invoice.page` and `.history`: one invoice."""

    invoice_id: str = InvoiceId


class InvoiceAsOf(InvoiceRef):
    """`weibao.billing.invoice`: the invoice now, or as it stood at `as_of`."""

    as_of: datetime | None = None

    @field_validator("as_of", mode="before")
    @classmethod
    def _iso(cls, value: object) -> object:
        # ISO text only: pydantic would read a number as a Unix time, a typo as a moment.
        # Without an offset, Beijing time: where the vendors' offices are (the log records UTC).
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                raise ValueError(f"an ISO datetime such as {EXAMPLE}") from None
        elif value is not None and not isinstance(value, datetime):
            raise ValueError(f"an ISO datetime such as {EXAMPLE}")
        return value.replace(tzinfo=CHINA) if isinstance(value, datetime) and value.tzinfo is None else value


class LineRef(InvoiceRef):
    """`weibao.billing.invoice.explain`: one line of an invoice."""

    item_id: str = ItemId


class IssueInvoice(InvoiceRef, Issue):
    """`weibao.billing.invoice.issue`."""


class CreditInvoice(InvoiceRef, CreditNote):
    """`weibao.billing.invoice.credit`."""


class PayInvoice(InvoiceRef, Payment):
    """`weibao.billing.invoice.pay`."""


class PriceLine(LineRef, LinePrice):
    """`weibao.billing.invoice.price_line`. Who priced it is the request's actor; `by`
    names them only for a caller that has none (a script on the service's own identity)."""

    by: str | None = Field(default=None, max_length=200)


# -- billing's lists -----------------------------------------------------------------

MONTH = r"^\d{4}-(0[1-9]|1[0-2])$"
# An invoice list's period: a month such as 2026-06 (per-visit invoices by the month their
# draft opened), or `visit:<ticket_id>` (one visit's invoice); billing tells which. The
# gateway's query parameter is bound by the same pattern and length (issue 14).
PERIOD = rf"^(\d{{4}}-(0[1-9]|1[0-2])|visit:{ID_PATTERN.removeprefix('^').removesuffix('$')})$"
PERIOD_MAX = 250
# An invoice's printed number (`INV-2026-000001`, the gap-free series an issued invoice gets, B8), as typed by an
# auditor: letters, digits and hyphens; compared in capitals.
INVOICE_NUMBER = r"^[A-Za-z0-9-]+$"
INVOICE_NUMBER_MAX = 40
# A renewal notice's standing (rules B4, C2): the fee fell due and nothing is billed yet,
# it was paid (its annual fee is drafted), or the agreement was terminated.
RenewalStatus = Literal["open", "renewed", "withdrawn"]
EXPORT_LIMIT, EXPORT_MAX = 1000, 5000  # an export's page: bigger than a list's, still bounded


class InvoiceList(Paging):
    """`weibao.billing.invoices`: a page of invoices, by customer, period, status and
    printed number."""

    customer_id: str | None = Field(default=None, min_length=1, max_length=100)
    period: str | None = Field(default=None, max_length=PERIOD_MAX, pattern=PERIOD)
    status: InvoiceStatus | None = None
    number: str | None = Field(default=None, min_length=1, max_length=INVOICE_NUMBER_MAX, pattern=INVOICE_NUMBER)


class RenewalList(Paging):
    """`weibao.billing.renewals`: a page of renewal notices (rules B4, C2), by status and
    customer: open (the fee fell due, nothing billed), renewed (paid: its annual fee is
    drafted), withdrawn (the agreement was terminated)."""

    customer_id: str | None = Field(default=None, min_length=1, max_length=100)
    agreement_id: str | None = Field(default=None, min_length=1, max_length=100)
    status: RenewalStatus | None = None


class ExportQuery(Body):
    """`weibao.billing.export.lines`: issued invoices' lines and their credit notes, a
    page at a time; `after` is the previous page's `next`."""

    customer_id: str | None = Field(default=None, min_length=1, max_length=100)
    invoice_id: str | None = Field(default=None, min_length=1, max_length=250)
    period_from: str | None = Field(default=None, pattern=MONTH)
    period_to: str | None = Field(default=None, pattern=MONTH)
    after: str | None = Field(default=None, max_length=2000)
    limit: Whole = Field(default=EXPORT_LIMIT, ge=1, le=EXPORT_MAX)

