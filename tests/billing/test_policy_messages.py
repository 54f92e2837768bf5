"""What the billing policy makes of the messages it is handed: each decoded into its
public dataclass (weibao.shared.public.read) before it is priced. A message that does
not fit its schema, or of a schema version billing does not read, is refused with the
reason (the consumer parks it where an operator sees it), and bills nothing."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.billing.ledger import Ledger, as_message
from weibao.shared.errors import Rejected
from weibao.shared.messages import BadMessage
from weibao.shared.public.dispatch import ExpenseRecorded

D = Decimal


def expense(key: str, receipt_date: str) -> ExpenseRecorded:
    return ExpenseRecorded("t-1", "c", "ag-c", "tech-1", key, "transport", "10.00", f"R-{key}", receipt_date, None, "")


async def a_ledger(engine: AsyncEngine) -> Ledger:
    ledger = await Ledger(engine).start()
    await ledger.agreement("ag-c", "c", "超人客户", "chaoren-software-sale")
    return ledger


async def test_b1_a_receipt_without_its_date_is_billed_in_the_month_it_was_recorded(engine: AsyncEngine) -> None:
    ledger = await a_ledger(engine)
    recorded = datetime(2026, 6, 30, 17, 0, tzinfo=UTC)  # when dispatch recorded it: 1 July, 01:00 in Beijing
    await ledger.deliver(replace(as_message("dispatch", 1, expense("e-1", "")), recorded_at=recorded))
    july = await ledger.invoice("c-2026-07")
    assert [(ln.kind, ln.net, ln.clauses) for ln in july.lines] == [("expense", D("10.00"), ("B1", "C5"))]
    with pytest.raises(Rejected):  # not in June, the month of the UTC date
        await ledger.invoice("c-2026-06")


async def test_a_message_that_does_not_fit_its_schema_is_refused_naming_the_field(engine: AsyncEngine) -> None:
    ledger = await a_ledger(engine)
    misfit = as_message("dispatch", 1, expense("e-1", "2026-06-08"))
    del misfit.data["amount"]
    with pytest.raises(BadMessage, match="amount"):
        await ledger.deliver(misfit)
    newer = replace(as_message("dispatch", 2, expense("e-2", "2026-06-08")), schema_version=2)
    with pytest.raises(BadMessage, match="schema 2"):
        await ledger.deliver(newer)
    with pytest.raises(Rejected):  # nothing billed, no draft opened
        await ledger.invoice("c-2026-06")


async def test_a_producers_private_event_bills_nothing(engine: AsyncEngine) -> None:
    ledger = await a_ledger(engine)
    # the same fields under a private type: what a producer's own event looks like on its stream
    private = replace(as_message("dispatch", 7, expense("e-1", "2026-06-08")), type="private.ExpenseRecorded")
    await ledger.deliver(private)
    await ledger.send("dispatch", expense("e-2", "2026-06-08"))
    june = await ledger.invoice("c-2026-06")
    assert [ln.item_id for ln in june.lines] == ["dispatch:1:0"]  # the public one only
