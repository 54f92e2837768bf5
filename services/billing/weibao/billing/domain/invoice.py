"""The invoice aggregate: one per customer and period ("2026-06") or visit ("visit:<ticket>").

A draft collects lines, each derived from billable items and naming the events it came
from (rule B8). Adding a line is idempotent by `item_id`: a redelivered message never
bills twice. Issuing freezes the invoice: from then on no line is added or removed
(B8: an issued invoice never changes); a correction is a credit note, an event of its
own with negative lines. Payments settle what is outstanding; overpayment is refused.

A line priced without a known rate (clause `RATE_TO_BE_AGREED`, unit price 0.00: C10 [4]
"a negotiated amount") is priced by the billing clerk on the draft (`PriceLine`), again
if the price is renegotiated, never once issued (B8).

Money is yuan in exact Decimal fen (B8). VAT is computed per line, half-up to the fen
(`to_fen(amount * vat_rate)`); the invoice VAT is the sum of the line VATs, never the
rate applied to a subtotal, so every printed line adds up to the printed total.
Dates come in with commands; nothing here reads a clock."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import Literal

from weibao.billing.domain.pricing import RATE_TO_BE_AGREED
from weibao.shared.errors import Rejected, require
from weibao.shared.money import as_text, to_fen
from weibao.shared.public.billing import InvoiceStatus

ZERO = Decimal("0.00")
# A line whose price the clerk negotiated and set (`PriceLine`). Not a DOMAIN.md rule,
# like RATE_TO_BE_AGREED, which it replaces in place on the priced line: that clause
# means "an operator must still set the price" (the console offers to price it, lists
# look for it), and a priced line no longer waits for anyone. The line keeps a clause
# saying the price came from a negotiation, not from the agreement's rates, so the
# statement and the export show why its unit price is what it is; who set it and why is
# in `LinePriced` (see `Invoice.pricings`, `Billing.explain`).
RATE_AGREED = "RATE_AGREED"
# What pricing appends to a to-be-agreed line's description, and what a priced one says.
PRICE_PENDING_NOTE, PRICE_AGREED_NOTE = "（单价待议）", "（单价议定）"
# A hand-set unit price: exact, but within what an invoice can hold to the fen.
MAX_UNIT_PRICE = Decimal("1000000000")  # 10^9 yuan
MAX_PRICE_PLACES = 6
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_VISIT = "visit:"

# -- values ------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One invoice line. `amount` is the net amount in fen and is authoritative
    (quantity x unit_price is shown, not recomputed: prorated fees do not divide evenly).
    `sources` name the events the line was derived from as (stream_id, version, type)."""

    item_id: str
    kind: str
    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    amount: Decimal
    vat_rate: Decimal
    clauses: tuple[str, ...]
    sources: tuple[tuple[str, int, str], ...]

    @property
    def net(self) -> Decimal:
        return self.amount

    @property
    def vat(self) -> Decimal:
        """rule B8: VAT rounded per line, half-up to the fen."""
        return to_fen(self.amount * self.vat_rate)

    @property
    def gross(self) -> Decimal:
        return self.amount + self.vat

    def check(self) -> None:
        require(bool(self.item_id), "missing", "line.item_id", "every line has the id of its billable item",
                reason="invoice.line_item_missing")
        require(bool(self.kind), "missing", "line.kind", "every line has a kind (it decides the VAT rate)",
                reason="invoice.line_kind_missing")
        require(self.amount.is_finite() and self.amount >= 0, "invalid", "line.amount",
                "a net amount of yuan, zero or more", reason="invoice.line_amount_negative")
        require(self.amount == to_fen(self.amount), "invalid", "line.amount", "yuan to the fen at most",
                reason="invoice.amount_below_fen")
        require(self.vat_rate.is_finite() and 0 <= self.vat_rate < 1, "invalid", "line.vat_rate",
                "a fraction such as 0.06 or 0.13", reason="invoice.vat_rate_invalid")
        require(self.quantity.is_finite() and self.quantity >= 0, "invalid", "line.quantity", "zero or more",
                reason="invoice.quantity_negative")
        require(bool(self.sources), "missing", "line.sources",
                "every invoice line names the events it was derived from (rule B8)",
                reason="invoice.line_sources_missing")


@dataclass(frozen=True)
class RateTotal:
    rate: Decimal
    net: Decimal
    vat: Decimal
    gross: Decimal


@dataclass(frozen=True)
class Totals:
    net: Decimal
    vat: Decimal
    gross: Decimal
    by_rate: tuple[RateTotal, ...]  # ascending by rate


def totals_of(lines: Iterable[tuple[Decimal, Decimal, Decimal]]) -> Totals:
    """Totals of (vat_rate, net, vat) triples: sums of line figures, grouped by rate."""
    groups: dict[Decimal, tuple[Decimal, Decimal]] = {}
    for rate, net, vat in lines:
        key = rate.normalize()
        old_net, old_vat = groups.get(key, (ZERO, ZERO))
        groups[key] = (old_net + net, old_vat + vat)
    by_rate = tuple(RateTotal(rate, net, vat, net + vat) for rate, (net, vat) in sorted(groups.items()))
    net = sum((r.net for r in by_rate), ZERO)
    vat = sum((r.vat for r in by_rate), ZERO)
    return Totals(net, vat, net + vat, by_rate)


# -- commands ----------------------------------------------------------------------


@dataclass(frozen=True)
class OpenDraft:
    invoice_id: str
    customer_id: str
    period: str  # "2026-06" (monthly) or "visit:<ticket_id>"
    opened_on: date


@dataclass(frozen=True)
class AddLine:
    line: Line


@dataclass(frozen=True)
class RemoveLine:
    item_id: str
    reason: str


@dataclass(frozen=True)
class Issue:
    """The number comes from the series stream (see `series.py`), allocated first."""

    number: str
    issued_on: date


@dataclass(frozen=True)
class CreditNote:
    """rule B8: the correction of an issued invoice. `lines=None` credits every line not
    yet credited."""

    credit_id: str
    lines: tuple[str, ...] | None
    reason: str
    on: date


@dataclass(frozen=True)
class RecordPayment:
    payment_id: str
    amount: Decimal
    paid_on: date


@dataclass(frozen=True)
class PriceLine:
    """Set the negotiated unit price of a draft's line that carries RATE_TO_BE_AGREED
    (or was priced so before: renegotiated). `by` is who priced it (the actor)."""

    item_id: str
    unit_price: Decimal
    reason: str
    by: str
    on: date


Command = OpenDraft | AddLine | RemoveLine | Issue | CreditNote | RecordPayment | PriceLine


# -- events ------------------------------------------------------------------------


@dataclass(frozen=True)
class DraftOpened:
    invoice_id: str
    customer_id: str
    period: str
    opened_on: date


@dataclass(frozen=True)
class LineAdded:
    line: Line


@dataclass(frozen=True)
class LineRemoved:
    item_id: str
    reason: str


@dataclass(frozen=True)
class InvoiceIssued:
    """The totals are frozen here, as printed; replay never recomputes them."""

    number: str
    issued_on: date
    item_ids: tuple[str, ...]
    totals: Totals


@dataclass(frozen=True)
class CreditedLine:
    """A negative line: the reversal of one issued line, naming it and its sources (B8)."""

    item_id: str
    description: str
    vat_rate: Decimal
    net: Decimal  # negative
    vat: Decimal  # negative
    gross: Decimal  # negative
    sources: tuple[tuple[str, int, str], ...]


@dataclass(frozen=True)
class CreditNoted:
    credit_id: str
    reason: str
    on: date
    lines: tuple[CreditedLine, ...]
    totals: Totals  # negative


@dataclass(frozen=True)
class PaymentRecorded:
    payment_id: str
    amount: Decimal
    paid_on: date


@dataclass(frozen=True)
class LinePriced:
    """A draft line's negotiated price. `amount` is `to_fen(quantity * unit_price)`,
    computed once when priced and stored: replay never recomputes it (as `Line.amount`)."""

    item_id: str
    unit_price: Decimal
    amount: Decimal
    reason: str
    by: str
    on: date


Event = DraftOpened | LineAdded | LineRemoved | InvoiceIssued | CreditNoted | PaymentRecorded | LinePriced

Status = Literal["none", InvoiceStatus]

# What a clerk may ask of an invoice in each status: the screens offer these (the API
# answers them with the invoice), `decide` refuses the rest (B8: issued stays as issued;
# a draft is corrected by removing lines, an issued invoice by a credit note). What else
# a command needs (a line priced, an amount outstanding) decide says with its refusal.
Action = Literal["issue", "price_line", "remove_line", "credit", "pay"]
ISSUED: frozenset[Status] = frozenset({"issued", "partially_paid", "paid", "credited"})
ALLOWS: Mapping[Action, frozenset[Status]] = {
    "issue": frozenset({"draft"}),
    "price_line": frozenset({"draft"}),
    "remove_line": frozenset({"draft"}),
    "credit": ISSUED - {"credited"},  # credited: every line is already
    "pay": frozenset({"issued", "partially_paid"}),  # paid, credited: nothing is outstanding
}


def allowed(state: Invoice) -> frozenset[Action]:
    return frozenset(action for action, statuses in ALLOWS.items() if state.status in statuses)


# -- state -------------------------------------------------------------------------


@dataclass(frozen=True)
class Invoice:
    status: Status = "none"
    invoice_id: str = ""
    customer_id: str = ""
    period: str = ""
    opened_on: date | None = None
    lines: tuple[Line, ...] = ()
    removed: frozenset[str] = frozenset()  # item ids taken off the draft: a redelivery does not bring them back
    number: str | None = None
    issued_on: date | None = None
    issued_totals: Totals | None = None
    credits: tuple[CreditNoted, ...] = ()
    payments: tuple[PaymentRecorded, ...] = ()
    pricings: tuple[LinePriced, ...] = ()  # every price set by hand, in order (renegotiations too)

    @property
    def item_ids(self) -> frozenset[str]:
        return frozenset(line.item_id for line in self.lines)

    @property
    def month(self) -> str:
        """The billing month ("2026-06"): the period, or the month a per-visit draft was opened."""
        if self.period.startswith(_VISIT) and self.opened_on is not None:
            return self.opened_on.strftime("%Y-%m")
        return self.period

    @property
    def totals(self) -> Totals:
        """Frozen at issue; on a draft, what it would be issued with now."""
        if self.issued_totals is not None:
            return self.issued_totals
        return totals_of((line.vat_rate, line.net, line.vat) for line in self.lines)

    @property
    def credited_ids(self) -> frozenset[str]:
        return frozenset(c.item_id for note in self.credits for c in note.lines)

    @property
    def credited(self) -> Decimal:
        """Gross of all credit notes, as a positive amount."""
        return -sum((note.totals.gross for note in self.credits), ZERO)

    @property
    def paid(self) -> Decimal:
        return sum((p.amount for p in self.payments), ZERO)

    @property
    def outstanding(self) -> Decimal:
        """gross - credits - payments; negative when a credit note leaves a refund due."""
        return self.totals.gross - self.credited - self.paid

    @property
    def payment_ids(self) -> frozenset[str]:
        return frozenset(p.payment_id for p in self.payments)

    @property
    def credit_ids(self) -> frozenset[str]:
        return frozenset(note.credit_id for note in self.credits)

    def pricings_of(self, item_id: str) -> tuple[LinePriced, ...]:
        """The prices set by hand on one line, oldest first: the last one holds."""
        return tuple(p for p in self.pricings if p.item_id == item_id)


# -- decide ------------------------------------------------------------------------


def decide(command: Command, state: Invoice) -> list[Event]:
    match command:
        case OpenDraft():
            require(state.status == "none", "conflict", "invoice_id", "this invoice already exists",
                    reason="invoice.already_exists")
            require(bool(command.invoice_id), "missing", "invoice_id", "an invoice has an id",
                    reason="invoice.id_missing")
            require(bool(command.customer_id), "missing", "customer_id", "an invoice belongs to a customer",
                    reason="invoice.customer_missing")
            require(_valid_period(command.period), "invalid", "period",
                    "a month such as '2026-06', or 'visit:<ticket_id>'", reason="invoice.period_invalid")
            return [DraftOpened(command.invoice_id, command.customer_id, command.period, command.opened_on)]
        case AddLine():
            _require_exists(state)
            line = command.line
            if line.item_id in state.item_ids or line.item_id in state.removed:
                return []  # redelivered: never billed twice, never brought back once removed
            _require_draft(state, "no line is added to an issued invoice; put it on the next draft "
                                  "or a supplementary invoice", "invoice.issued_no_new_lines")
            line.check()
            return [LineAdded(line)]
        case RemoveLine():
            _require_exists(state)
            if command.item_id in state.removed:
                return []
            _require_draft(state, "no line is removed from an issued invoice; issue a credit note",
                           "invoice.issued_no_line_removed")
            require(command.item_id in state.item_ids, "not_found", "item_id", "no such line on this invoice",
                    reason="invoice.line_not_found")
            require(bool(command.reason.strip()), "missing", "reason", "say why the line is removed",
                    reason="invoice.remove_reason_missing")
            return [LineRemoved(command.item_id, command.reason.strip())]
        case Issue():
            _require_exists(state)
            if state.number is not None:
                require(state.number == command.number, "issued", "invoice_id",
                        f"already issued as {state.number}", reason="invoice.already_issued",
                        values={"number": state.number})
                return []  # the same issue redelivered
            require(bool(command.number), "missing", "number", "an issued invoice has a number from its series",
                    reason="invoice.number_missing")
            require(bool(state.lines), "empty", "lines", "an invoice without lines is not issued",
                    reason="invoice.no_lines")
            # An issued invoice never changes (B8): a line still waiting for its negotiated
            # price would be frozen at 0.00 and its work never billed. Price it (0 waives it).
            unpriced = [line.item_id for line in state.lines if RATE_TO_BE_AGREED in line.clauses]
            require(not unpriced, "unpriced", "lines",
                    f"price these lines first (a price of 0 waives one): {', '.join(unpriced)}",
                    reason="invoice.lines_unpriced", values={"count": len(unpriced)})
            assert state.opened_on is not None
            require(command.issued_on >= state.opened_on, "invalid", "issued_on", "before the draft was opened",
                    reason="invoice.issued_before_opened")
            return [InvoiceIssued(command.number, command.issued_on, tuple(line.item_id for line in state.lines),
                                  state.totals)]
        case CreditNote():
            return _credit(command, state)
        case PriceLine():
            return _price(command, state)
        case RecordPayment():
            _require_exists(state)
            if command.payment_id in state.payment_ids:
                return []  # the same payment recorded twice: one effect
            require(state.status != "draft", "draft", "invoice_id", "a draft is not paid; issue it first",
                    reason="invoice.draft_not_paid")
            require(bool(command.payment_id), "missing", "payment_id", "a payment has an id",
                    reason="invoice.payment_id_missing")
            require(command.amount.is_finite() and command.amount > 0, "invalid", "amount",
                    "a positive amount of yuan", reason="invoice.payment_not_positive")
            require(command.amount == to_fen(command.amount), "invalid", "amount", "yuan to the fen at most",
                    reason="invoice.amount_below_fen")
            outstanding = max(state.outstanding, ZERO)
            require(command.amount <= outstanding, "overpaid", "amount",
                    f"only {as_text(outstanding)} yuan is outstanding", reason="invoice.overpaid",
                    values={"outstanding": as_text(outstanding)})
            return [PaymentRecorded(command.payment_id, command.amount, command.paid_on)]
    raise AssertionError(f"unknown command {command!r}")


def _valid_period(period: str) -> bool:
    if period.startswith(_VISIT):
        return bool(period.removeprefix(_VISIT).strip())
    return _MONTH.match(period) is not None


def _require_exists(state: Invoice) -> None:
    require(state.status != "none", "not_found", "invoice_id", "no such invoice", reason="invoice.not_found")


def _require_draft(state: Invoice, message: str, reason: str) -> None:
    if state.status != "draft":
        raise Rejected("issued", "invoice_id", f"{message} (rule B8)", reason=reason)


def _credit(command: CreditNote, state: Invoice) -> list[Event]:
    """rule B8: a correction is a credit note of negative lines; the invoice stays as issued."""
    _require_exists(state)
    if command.credit_id in state.credit_ids:
        return []
    require(state.status != "draft", "draft", "invoice_id", "a draft is corrected by removing lines, not credited",
            reason="invoice.draft_not_credited")
    require(bool(command.credit_id), "missing", "credit_id", "a credit note has an id",
            reason="invoice.credit_id_missing")
    require(bool(command.reason.strip()), "missing", "reason", "say why the invoice is corrected",
            reason="invoice.credit_reason_missing")
    assert state.issued_on is not None
    require(command.on >= state.issued_on, "invalid", "on", "a credit note follows the invoice it corrects",
            reason="invoice.credit_before_issue")
    already = state.credited_ids
    if command.lines is None:
        chosen = [line for line in state.lines if line.item_id not in already]
        require(bool(chosen), "conflict", "lines", "every line is already credited",
                reason="invoice.all_lines_credited")
    else:
        require(bool(command.lines), "missing", "lines", "name the lines to credit, or None for all",
                reason="invoice.credit_lines_missing")
        require(len(set(command.lines)) == len(command.lines), "invalid", "lines", "a line is named twice",
                reason="invoice.line_named_twice")
        by_id = {line.item_id: line for line in state.lines}
        for item_id in command.lines:
            require(item_id in by_id, "not_found", "lines", f"{item_id} is not on this invoice",
                    reason="invoice.credit_line_not_on_invoice")
            require(item_id not in already, "conflict", "lines", f"{item_id} is already credited",
                    reason="invoice.line_already_credited", values={"line": by_id[item_id].description})
        chosen = [by_id[item_id] for item_id in command.lines]
    credited = tuple(CreditedLine(line.item_id, line.description, line.vat_rate, -line.net, -line.vat,
                                  -line.gross, line.sources) for line in chosen)
    totals = totals_of((c.vat_rate, c.net, c.vat) for c in credited)
    return [CreditNoted(command.credit_id, command.reason.strip(), command.on, credited, totals)]


def negotiable(line: Line) -> bool:
    """A line priced by hand: still to be agreed, or agreed before (renegotiation)."""
    return RATE_TO_BE_AGREED in line.clauses or RATE_AGREED in line.clauses


def priced_clauses(clauses: tuple[str, ...]) -> tuple[str, ...]:
    """RATE_TO_BE_AGREED becomes RATE_AGREED where it stood; the other clauses stay."""
    swapped = (RATE_AGREED if clause == RATE_TO_BE_AGREED else clause for clause in clauses)
    out = tuple(dict.fromkeys(swapped))  # in order, once each
    return out if RATE_AGREED in out else (*out, RATE_AGREED)


def priced_description(description: str) -> str:
    return description.replace(PRICE_PENDING_NOTE, PRICE_AGREED_NOTE)


def _price(command: PriceLine, state: Invoice) -> list[Event]:
    """C10 [4]: a negotiated amount, priced on the draft; B8: an issued invoice never
    changes (correct it with a credit note and bill the agreed price again)."""
    _require_exists(state)
    _require_draft(state, "an issued invoice is not repriced; issue a credit note and bill the agreed price anew",
                   "invoice.issued_not_repriced")
    line = next((ln for ln in state.lines if ln.item_id == command.item_id), None)
    require(line is not None, "not_found", "item_id", "no such line on this draft",
            reason="invoice.line_not_found")
    assert line is not None
    require(negotiable(line), "not_negotiable", "item_id",
            f"this line is priced by its agreement ({' · '.join(line.clauses)}); only a line whose rate is to be "
            f"agreed ({RATE_TO_BE_AGREED}) is priced by hand", reason="invoice.line_not_negotiable")
    price = command.unit_price
    require(price.is_finite() and price >= 0, "invalid", "unit_price", "an exact amount of yuan, zero or more",
            reason="invoice.unit_price_negative")
    exponent = price.as_tuple().exponent
    require(isinstance(exponent, int) and -exponent <= MAX_PRICE_PLACES, "invalid", "unit_price",
            f"at most {MAX_PRICE_PLACES} decimal places", reason="invoice.unit_price_places",
            values={"places": MAX_PRICE_PLACES})
    require(price <= MAX_UNIT_PRICE, "invalid", "unit_price", f"at most {MAX_UNIT_PRICE} yuan",
            reason="invoice.unit_price_too_high", values={"max": str(MAX_UNIT_PRICE)})
    reason = command.reason.strip()
    require(bool(reason), "missing", "reason", "say how the price was agreed (whom with, on what)",
            reason="invoice.price_reason_missing")
    require(bool(command.by.strip()), "missing", "by", "who set the price", reason="invoice.price_by_missing")
    last = state.pricings_of(line.item_id)
    if last and (last[-1].unit_price, last[-1].reason, last[-1].by) == (price, reason, command.by):
        return []  # the same price set again: one effect
    amount = to_fen(line.quantity * price)  # once, half-up, as pricing computes every amount
    return [LinePriced(line.item_id, price, amount, reason, command.by, command.on)]


# -- evolve ------------------------------------------------------------------------


def evolve(state: Invoice, event: Event) -> Invoice:
    match event:
        case DraftOpened():
            return Invoice("draft", event.invoice_id, event.customer_id, event.period, event.opened_on)
        case LineAdded():
            return replace(state, lines=(*state.lines, event.line))
        case LineRemoved():
            return replace(state, lines=tuple(line for line in state.lines if line.item_id != event.item_id),
                           removed=state.removed | {event.item_id})
        case InvoiceIssued():
            return replace(state, status="issued", number=event.number, issued_on=event.issued_on,
                           issued_totals=event.totals)
        case CreditNoted():
            after = replace(state, credits=(*state.credits, event))
            return replace(after, status=_settled(after))
        case PaymentRecorded():
            after = replace(state, payments=(*state.payments, event))
            return replace(after, status=_settled(after))
        case LinePriced():
            lines = tuple(replace(line, unit_price=event.unit_price, amount=event.amount,
                                  description=priced_description(line.description),
                                  clauses=priced_clauses(line.clauses))
                          if line.item_id == event.item_id else line for line in state.lines)
            return replace(state, lines=lines, pricings=(*state.pricings, event))
    raise AssertionError(f"unknown event {event!r}")


def _settled(state: Invoice) -> Status:
    return settled(len(state.lines), len(state.credited_ids), state.outstanding, len(state.payments))


def settled(lines: int, credited_lines: int, outstanding: Decimal, payments: int) -> Status:
    """The status of an issued invoice from its figures: every line credited, nothing
    outstanding, or some paid. Read models call it too, so both agree."""
    if credited_lines >= lines:
        return "credited"
    if outstanding <= 0:
        return "paid"
    return "partially_paid" if payments else "issued"
