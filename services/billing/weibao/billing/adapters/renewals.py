"""Renewal notices (rules C2, B4; domain/renewal.py): the table the contracts policy
keeps, in its consumer's transaction with its checkpoint and with the renewal's line.

A function of contracts' stream alone: `FeeDue` opens a notice, `CoverageLapsed` records
the lapse on it, a paid `CoverageGranted` renews it (naming the payment and the item
billed for it), `CoverageEnded` withdraws what is still open. So a replay from position
0 rebuilds it row for row, and the contracts policy's replay compares it
(application/policy.py `replay_scope`). Keyed on agreement and period: a redelivered
`FeeDue` finds its notice and changes nothing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import Column, Date, MetaData, String, Table, Text, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ColumnElement

from weibao.billing.domain.renewal import Notice, renews
from weibao.shared.paging import Page


class Renewals:
    def __init__(self, metadata: MetaData, suffix: str = "") -> None:
        self.table = Table(
            f"billing_renewals{suffix}", metadata,
            Column("agreement_id", String(100), primary_key=True),
            Column("period_from", Date, primary_key=True),
            Column("period_to", Date, nullable=False),
            Column("customer_id", String(100), nullable=False, index=True),
            Column("amount", Text, nullable=False),  # yuan, exact decimal text (B8)
            Column("due_on", Date, nullable=False),
            Column("status", String(20), nullable=False, index=True),  # open | renewed | withdrawn
            Column("source", String(250), nullable=False),  # the FeeDue message, `<service>:<position>`
            Column("lapsed_on", Date),  # rule C1: first day without coverage, if it lapsed
            Column("payment_id", String(100)),  # the renewal (C2)
            Column("renewed_on", Date),  # the day it was paid
            # the annual fee's item (B4), billed from the payment (or, in a log from before
            # issue 13, from the FeeDue: then the payment bills nothing more)
            Column("item_id", String(250)),
            Column("renewal_source", String(250)),  # the payment's message, `<service>:<position>`
            Column("withdrawn_on", Date),  # the agreement's termination
        )

    def tables(self) -> list[Table]:
        return [self.table]

    async def due(self, conn: AsyncConnection, notice: Notice) -> None:
        """rule B4: open the notice, once per agreement and period."""
        t = self.table
        found = await conn.scalar(select(t.c.status).where(t.c.agreement_id == notice.agreement_id,
                                                           t.c.period_from == notice.period_from))
        if found is not None:
            return
        await conn.execute(t.insert().values(
            agreement_id=notice.agreement_id, period_from=notice.period_from, period_to=notice.period_to,
            customer_id=notice.customer_id, amount=str(notice.amount), due_on=notice.due_on, status="open",
            source=notice.source))

    async def lapsed(self, conn: AsyncConnection, agreement_id: str, lapsed_on: date) -> None:
        """rule C1: the period the notice asked for started unpaid: the notice stays open
        (still to renew) and says since when the customer is outside coverage."""
        t = self.table
        await conn.execute(t.update().where(t.c.agreement_id == agreement_id, t.c.period_from == lapsed_on,
                                            t.c.status == "open", t.c.lapsed_on.is_(None))
                           .values(lapsed_on=lapsed_on))

    async def renewable(self, conn: AsyncConnection, agreement_id: str, paid_from: date,
                        paid_to: date) -> list[tuple[date, str | None]]:
        """rule C2: the open notices of the agreement whose period a payment from
        `paid_from` to `paid_to` covers, each with the item already billed for it (only a
        notice of a log from before issue 13 has one: `drafted_before`)."""
        t = self.table
        rows = await conn.execute(select(t.c.period_from, t.c.period_to, t.c.item_id)
                                  .where(t.c.agreement_id == agreement_id, t.c.status == "open"))
        return [(period_from, item_id) for period_from, period_to, item_id in rows.all()
                if renews(period_from, period_to, paid_from, paid_to)]

    async def renewed(self, conn: AsyncConnection, agreement_id: str, periods: list[date], *,
                      payment_id: str | None, paid_on: date | None, item_id: str | None, source: str) -> None:
        """rule C2: these notices (by their first day) are renewed by the payment; the item
        that billed it, if the payment billed one (else the notice keeps its own)."""
        t = self.table
        for period_from in periods:
            values: dict[str, Any] = {"status": "renewed", "payment_id": payment_id, "renewed_on": paid_on,
                                      "renewal_source": source}
            if item_id is not None:
                values["item_id"] = item_id
            await conn.execute(t.update().where(t.c.agreement_id == agreement_id, t.c.period_from == period_from)
                               .values(values))

    async def drafted_before(self, conn: AsyncConnection, agreement_id: str, period_from: date,
                             item_id: str) -> None:
        """A log from before issue 13 drafted the annual fee from the FeeDue of this notice
        (`item_id`): the notice names it, so its renewal bills nothing more (B8)."""
        t = self.table
        await conn.execute(t.update().where(t.c.agreement_id == agreement_id, t.c.period_from == period_from)
                           .values(item_id=item_id))

    async def withdrawn(self, conn: AsyncConnection, agreement_id: str, on: date) -> None:
        """The agreement was terminated: what was not renewed will not be."""
        t = self.table
        await conn.execute(t.update().where(t.c.agreement_id == agreement_id, t.c.status == "open")
                           .values(status="withdrawn", withdrawn_on=on))

    async def page(self, conn: AsyncConnection, where: Sequence[ColumnElement[bool]], page: Page, *,
                   items: Table, customers: Table) -> tuple[list[dict[str, Any]], int]:
        """Notices matching `where`, earliest due first, then by agreement; with the
        customer's name and the invoice each renewal's item went to (`items`: the policy's
        billing_items; `customers`: the terms book's names)."""
        t = self.table
        invoice = select(items.c.invoice_id).where(items.c.item_id == t.c.item_id).scalar_subquery()
        name = select(customers.c.name).where(customers.c.customer_id == t.c.customer_id).scalar_subquery()
        query = (select(t, invoice.label("invoice_id"), name.label("customer_name")).where(*where)
                 .order_by(t.c.due_on, t.c.agreement_id, t.c.period_from))
        rows, total = await page.rows(conn, query)
        return [_item(row) for row in rows], total


def _day(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _item(row: Any) -> dict[str, Any]:
    return {"agreement_id": row.agreement_id, "customer_id": row.customer_id,
            "customer_name": row.customer_name or row.customer_id, "amount": row.amount,
            "period_from": _day(row.period_from), "period_to": _day(row.period_to), "due_on": _day(row.due_on),
            "status": row.status, "lapsed_on": _day(row.lapsed_on), "payment_id": row.payment_id,
            "renewed_on": _day(row.renewed_on), "item_id": row.item_id, "invoice_id": row.invoice_id,
            "withdrawn_on": _day(row.withdrawn_on), "source": row.source, "renewal_source": row.renewal_source,
            "clauses": ["B4", "C2"]}
