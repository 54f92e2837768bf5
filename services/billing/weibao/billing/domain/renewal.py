"""Renewal notices (rules C2, B4; issue 13): what billing's clerk follows up, never an
invoice line.

When contracts says the next period's fee falls due (`FeeDue`), the customer has not
agreed to that period yet: billing keeps a notice (agreement, customer, fee, period,
due date) with a status, and drafts the annual fee only when the customer renews, i.e.
pays it (`CoverageGranted` with basis "paid" names the payment; pricing.for_renewal).

- `open`: the fee fell due; nothing is billed. A lapse (C1) leaves it open (the clerk
  still chases the renewal) and records the first day without coverage.
- `renewed`: a payment covers (part of) its period; the notice names the payment and
  the item that billed it. (In a log from before issue 13 the fee was drafted from the
  FeeDue itself: the notice names that item, and its renewal bills nothing more, B8.)
- `withdrawn`: the agreement was terminated before it was renewed.

Pure: the policy decodes the message, this says what the notice is; the table is in
adapters/renewals.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Literal, get_args

from weibao.billing.domain.pricing import Source, day, money
from weibao.shared.public.contracts import FeeDue

NoticeStatus = Literal["open", "renewed", "withdrawn"]
STATUSES: tuple[str, ...] = get_args(NoticeStatus)


@dataclass(frozen=True)
class Notice:
    agreement_id: str
    customer_id: str
    period_from: date
    period_to: date  # inclusive
    amount: Decimal  # yuan, as contracts computed it (C2)
    due_on: date
    source: str  # `<service>:<position>` of the FeeDue message (B8: where it came from)


def notice_of(fee: FeeDue, source: Source) -> Notice:
    """rule B4: the notice a fee falling due makes; its values checked as pricing checks
    an item's (text is not yet a date or an amount)."""
    return Notice(fee.agreement_id, fee.customer_id, day(fee.period_from, "period_from"),
                  day(fee.period_to, "period_to"), money(fee.amount, "amount"), day(fee.due_on, "due_on"),
                  f"{source.service}:{source.position}")


def renews(notice_from: date, notice_to: date, paid_from: date, paid_to: date) -> bool:
    """rule C2: a payment renews a notice whose period it covers, wholly or in part (a
    customer who lapsed may pay from a later day; one who pays two years covers it too)."""
    return paid_from <= notice_to and notice_from <= paid_to
