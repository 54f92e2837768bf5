"""The day ledger of rule C4 per calendar day (issue 13): which calendar days of
hardware or network work are billed, per technician and request, and by which item.

Pricing is pure (domain/pricing.py `for_work` takes the days already billed); this table
is where the policy keeps them, written in the consumer's transaction with the line, so
a redelivered or replayed `WorkLogged` finds its days billed and bills nothing more
(B8). Unlike `billing_items` it needs nothing from the log: it is a function of
dispatch's stream alone (and the terms), so a stream replay rebuilds it as it was, and
a replay copy compares it row for row (application/policy.py `replay_scope`)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from sqlalchemy import Column, Date, MetaData, String, Table, select
from sqlalchemy.ext.asyncio import AsyncConnection


class WorkDays:
    def __init__(self, metadata: MetaData, suffix: str = "") -> None:
        # rule C4: per technician, per request, per calendar day; the item says which
        # message billed the day (B8: every line names its events).
        self.table = Table(
            f"billing_work_days{suffix}", metadata,
            Column("technician_id", String(100), primary_key=True),
            Column("ticket_id", String(100), primary_key=True),
            Column("day", Date, primary_key=True),
            Column("item_id", String(250), nullable=False),
        )

    def tables(self) -> list[Table]:
        return [self.table]

    async def billed(self, conn: AsyncConnection, technician_id: str, ticket_id: str,
                     days: Iterable[date]) -> frozenset[date]:
        """Which of `days` this technician was already billed for on this request."""
        wanted = list(days)
        if not wanted:
            return frozenset()
        t = self.table
        rows = await conn.execute(select(t.c.day).where(t.c.technician_id == technician_id,
                                                        t.c.ticket_id == ticket_id, t.c.day.in_(wanted)))
        return frozenset(row.day for row in rows)

    async def bill(self, conn: AsyncConnection, technician_id: str, ticket_id: str, days: Iterable[date],
                   item_id: str) -> None:
        """Record `days` as billed by `item_id`: only new days, priced against `billed`
        in this transaction (the live policy holds the log's append lock, a replay copy
        writes its own tables alone: no other writer adds them meanwhile)."""
        rows = [{"technician_id": technician_id, "ticket_id": ticket_id, "day": day, "item_id": item_id}
                for day in days]
        if rows:
            await conn.execute(self.table.insert(), rows)
