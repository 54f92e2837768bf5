"""The billing service's command and query bodies (`weibao.billing.<name>`)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from pydantic import Field

from weibao.shared.commands import Body, Id, Money


class Issue(Body):
    issued_on: date | None = None


class CreditNote(Body):
    credit_id: str | None = Field(default=None, max_length=100)
    lines: list[str] = Field(default_factory=list, max_length=1000)  # item ids; empty: the whole invoice
    reason: str = Field(min_length=1, max_length=2000)


class Payment(Body):
    payment_id: str = Id
    amount: Decimal = Money
    paid_on: date | None = None
