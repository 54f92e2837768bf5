"""The policy's own bookkeeping, written in the consumer's transaction with the lines:
which draft takes a customer's items for a period now (supplementary once the first was
issued, B8), and which invoice each billed item went to (exactly once across invoices:
a message replayed after its invoice was issued and a supplementary draft opened would
otherwise find its item on no open draft).

Both tables can also be read back from the log (`from_log`, `billed_in_log`): a rebuild
in place and a replay copy take them from there, since no stream replay sees the
commands (an issue) that opened a supplement."""

from __future__ import annotations

import json

from sqlalchemy import Column, Integer, MetaData, String, Table, select
from sqlalchemy.ext.asyncio import AsyncConnection

from weibao.billing.adapters.invoices import INVOICE, STREAM_PREFIX
from weibao.billing.domain import invoice as domain
from weibao.shared import codec
from weibao.shared.eventstore import events_table


class Drafts:
    def __init__(self, metadata: MetaData, suffix: str = "") -> None:
        self.table = Table(
            f"billing_drafts{suffix}", metadata,
            Column("customer_id", String(100), primary_key=True),
            Column("period", String(100), primary_key=True),
            Column("invoice_id", String(250), nullable=False),
            Column("supplement", Integer, nullable=False),
        )
        self.items = Table(
            f"billing_items{suffix}", metadata,
            Column("item_id", String(250), primary_key=True),
            Column("invoice_id", String(250), nullable=False),
        )

    def tables(self) -> list[Table]:
        return [self.table, self.items]

    async def billed(self, conn: AsyncConnection, item_id: str) -> str | None:
        """The invoice an item went to, if it was billed (on any invoice, even removed since)."""
        found = await conn.scalar(select(self.items.c.invoice_id).where(self.items.c.item_id == item_id))
        return None if found is None else str(found)

    async def bill(self, conn: AsyncConnection, item_id: str, invoice_id: str) -> None:
        await conn.execute(self.items.insert().values(item_id=item_id, invoice_id=invoice_id))

    async def open(self, conn: AsyncConnection, customer_id: str, period: str) -> str:
        """The draft that takes the customer's items for the period now: the first one is
        `<customer>-<period>`, recorded here the first time it is asked for."""
        t = self.table
        row = (await conn.execute(select(t.c.invoice_id).where(t.c.customer_id == customer_id,
                                                               t.c.period == period))).first()
        if row is not None:
            return str(row.invoice_id)
        invoice_id = f"{customer_id}-{period}"
        # Keyed on customer and period: no other writer, the policy holds the log's lock.
        await conn.execute(t.insert().values(customer_id=customer_id, period=period, invoice_id=invoice_id,
                                             supplement=0))
        return invoice_id

    async def supplement(self, conn: AsyncConnection, customer_id: str, period: str) -> None:
        """The period's draft was issued (B8: it stays as issued): the next supplementary
        draft `<customer>-<period>-S<n>` takes its items from now on."""
        t = self.table
        row = (await conn.execute(select(t.c.supplement).where(t.c.customer_id == customer_id,
                                                               t.c.period == period))).one()
        n = row.supplement + 1
        await conn.execute(t.update().where(t.c.customer_id == customer_id, t.c.period == period)
                           .values(invoice_id=f"{customer_id}-{period}-S{n}", supplement=n))

    async def from_log(self, conn: AsyncConnection) -> None:
        """`billing_drafts` as the log has it: per customer and period, the draft opened
        last (a supplementary one once the first was issued, B8). A stream replay cannot
        rebuild this table (an issue, which opens supplements, is a command, not a
        message), so a model rebuilt in place (weibao.shared.replay) takes it from here."""
        e = events_table
        opened = INVOICE.prefix + domain.DraftOpened.__name__
        latest: dict[tuple[str, str], str] = {}
        for (data,) in await conn.execute(select(e.c.data).where(e.c.type == opened).order_by(e.c.position)):
            draft = codec.load(domain.DraftOpened, json.loads(data))  # as the commands encoded it
            latest[(draft.customer_id, draft.period)] = draft.invoice_id
        await conn.execute(self.table.delete())
        for (customer_id, period), invoice_id in latest.items():
            first = f"{customer_id}-{period}"
            supplement = 0 if invoice_id == first else int(invoice_id.removeprefix(f"{first}-S"))
            await conn.execute(self.table.insert().values(customer_id=customer_id, period=period,
                                                          invoice_id=invoice_id, supplement=supplement))


async def billed_in_log(conn: AsyncConnection) -> dict[str, str]:
    """Each item id the log holds a `LineAdded` of, with its invoice (the first that
    took it): what a replay copy compares the live policy's `billing_items` with."""
    e = events_table
    found: dict[str, str] = {}
    added = INVOICE.prefix + domain.LineAdded.__name__
    rows = await conn.execute(select(e.c.stream_id, e.c.data).where(e.c.type == added).order_by(e.c.position))
    for stream_id, data in rows:
        added_line = codec.load(domain.LineAdded, json.loads(data)).line
        found.setdefault(added_line.item_id, str(stream_id).removeprefix(STREAM_PREFIX))
    return found


async def line_in_log(conn: AsyncConnection, item_id: str) -> str | None:
    """The invoice whose `LineAdded` holds `item_id` in the log (the first), if any: one
    item looked up, for the live policy (a replay copy reads them all once,
    `billed_in_log`). The text match only narrows the rows; each is decoded and compared."""
    e = events_table
    added = INVOICE.prefix + domain.LineAdded.__name__
    rows = await conn.execute(select(e.c.stream_id, e.c.data)
                              .where(e.c.type == added, e.c.data.contains(json.dumps(item_id), autoescape=True))
                              .order_by(e.c.position))
    for stream_id, data in rows:
        if codec.load(domain.LineAdded, json.loads(data)).line.item_id == item_id:
            return str(stream_id).removeprefix(STREAM_PREFIX)
    return None
