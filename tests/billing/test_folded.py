"""The policy keeps the invoices it folded (adapters/folded.py), so a month's draft is not
folded again for each line; a kept state is used only while its stream's last event is
still the one it was folded to (version and hash, read in the deciding transaction). A
batch rolled back and another writer's event at the same version must not leave the
policy deciding on a state the log does not hold (B8: every line once, on the right
invoice)."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.billing.ledger import Ledger, as_message
from weibao.billing.adapters.invoices import INVOICE, invoice_stream
from weibao.billing.domain import invoice as domain
from weibao.shared.aggregates import Repository
from weibao.shared.db import begin_write
from weibao.shared.public.dispatch import ExpenseRecorded

STREAM = invoice_stream("c-2026-06")


def expense(key: str) -> ExpenseRecorded:
    return ExpenseRecorded("t-1", "c", "ag-c", "tech-1", key, "transport", "10.00", f"R-{key}", "2026-06-08", None, "")


class Failed(Exception):
    """The consumer's batch failed after the policy had added its line."""


async def test_a_kept_state_is_folded_anew_once_another_event_took_its_version(engine: AsyncEngine) -> None:
    ledger = await Ledger(engine).start()
    await ledger.agreement("ag-c", "c", "超人客户", "chaoren-software-sale")
    await ledger.deliver(as_message("dispatch", 1, expense("e-1")))  # the draft opened, its first line
    with pytest.raises(Failed):  # the policy kept a version 3 that the log never did
        async with begin_write(engine) as conn:
            await ledger.policy.handle(conn, as_message("dispatch", 2, expense("e-2")))
            raise Failed
    # another replica (its own repository, nothing kept here) takes version 3
    replica = Repository(ledger.store, INVOICE, domain.evolve, domain.Invoice())
    await replica.execute(STREAM, lambda s: domain.decide(domain.RemoveLine("dispatch:1:0", "技术员个人消费"), s))

    await ledger.deliver(as_message("dispatch", 3, expense("e-3")))

    log, version = await replica.load(STREAM)
    async with engine.connect() as conn:
        kept, kept_version = await ledger.policy.invoices.load(STREAM, conn=conn)
    assert (kept, kept_version) == (log, version) == (log, 4)
    assert [line.item_id for line in log.lines] == ["dispatch:3:0"]  # the rolled-back line is on no invoice
    assert "dispatch:1:0" in log.removed
