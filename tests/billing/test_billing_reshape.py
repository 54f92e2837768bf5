"""A release that changes a read model's tables (issue 12): the service finds, at start,
that a table no longer has its code's shape (weibao.shared.schema.drift) and rebuilds
that model from its stream before its consumer starts. Billing's policies write invoices
to billing's own log, so the rebuild must append nothing (B8: nothing billed twice),
end with the same rows, and leave the consumer to go on from where it stopped."""

from __future__ import annotations

from datetime import date

from nats.aio.client import Client as NATS
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.billing import test_billing_redelivery as redelivery
from tests.billing.test_billing_redelivery import (  # noqa: F401 - fixtures
    INVOICE,
    Service,
    health,
    publish,
    settings,
    settled,
)
from tests.dispatch.test_dispatch_e2e import ask, ok
from tests.helpers import eventually
from weibao.billing.service import spec
from weibao.shared.consumer import tracking_table
from weibao.shared.db import qualified
from weibao.shared.eventstore import EventStore
from weibao.shared.readmodels import rows_of
from weibao.shared.replay import REBUILDING
from weibao.shared.schema import drift

billing = redelivery.billing  # the fixture: billing alone, stopped and started at will

# tables billing's two policies share (the day ledger of C4 too)
SHARED_BY_POLICIES = ("billing_items", "billing_drafts", "billing_work_days")
SUPPLEMENT = f"{INVOICE}-S1"
INVOICE_LINES = "billing_invoice_lines"


async def state(engine: AsyncEngine) -> tuple[dict[str, object], list[tuple[object, ...]]]:
    """Every read model's rows, and every consumer's checkpoint."""
    rows: dict[str, object] = {}
    for _, model in spec.read_models(EventStore(engine)):
        rows |= await rows_of(engine, model)
    async with engine.connect() as conn:
        checkpoints = list(await conn.execute(tracking_table.select().order_by(tracking_table.c.consumer)))
    return rows, [tuple(row) for row in checkpoints]


async def caught_up(engine: AsyncEngine, published: dict[str, int]) -> None:
    """Every consumer has applied all its upstream holds: what was published of contracts'
    and dispatch's streams, and billing's own log (its relay publishes the invoices'
    events a moment after the policies append them; `settled` alone can pass before)."""
    async def done() -> bool:
        upstreams = {**published, "billing": await EventStore(engine).last_position()}
        async with engine.connect() as conn:
            rows = list(await conn.execute(tracking_table.select()))
        return len(rows) == 4 and all(row.position == upstreams[row.upstream] for row in rows)

    await eventually(done)


async def drifted(engine: AsyncEngine) -> list[str]:
    found: list[str] = []
    async with engine.connect() as conn:
        for _, model in spec.read_models(EventStore(engine)):
            found += await conn.run_sync(drift, model.tables())
    return found


async def lines(nc: NATS, invoice_id: str = INVOICE) -> list[str]:
    """The item ids on an invoice ([] while it has none)."""
    answer = await ask(nc, "billing.invoice", {"invoice_id": invoice_id})
    return [line["item_id"] for line in answer["result"]["lines"]] if answer["ok"] else []


async def two_lines_billed(nc: NATS) -> None:
    """Two messages from each upstream, until the draft holds their two lines."""
    for position in (1, 2):
        assert await publish(nc, "contracts", position)
        assert await publish(nc, "dispatch", position)

    async def two_lines() -> bool:
        return len(await lines(nc)) == 2

    await eventually(two_lines)


async def two_lines_billed_then_stopped(billing: Service, nc: NATS, engine: AsyncEngine) -> tuple[
        tuple[dict[str, object], list[tuple[object, ...]]], int]:
    """Two lines billed, every consumer caught up, billing stopped: the tables and
    checkpoints as they stand, and the log's last position."""
    await two_lines_billed(nc)
    await caught_up(engine, {"contracts": 2, "dispatch": 2})
    await settled(nc)
    await billing.stop()
    return await state(engine), await EventStore(engine).last_position()


async def test_a_reshaped_read_model_is_rebuilt_at_start_and_bills_nothing_twice(
        billing: Service, nc: NATS, engine: AsyncEngine) -> None:
    await two_lines_billed(nc)
    await ok(nc, "billing.invoice.issue", {"invoice_id": INVOICE, "issued_on": "2026-06-30"})
    assert await publish(nc, "dispatch", 3)  # after the issue: onto a supplementary draft (B8)

    async def supplement() -> bool:
        return await lines(nc, SUPPLEMENT) == ["dispatch:3:0"]

    await eventually(supplement)
    await caught_up(engine, {"contracts": 2, "dispatch": 3})
    await settled(nc)
    await billing.stop()
    before, log_position = await state(engine), await EventStore(engine).last_position()
    assert await drifted(engine) == []  # as made by this release: nothing to rebuild

    # The tables as an older release left them: another shape, and rows this release's
    # code would read wrong (here: gone, so a skipped rebuild shows).
    async with engine.begin() as conn:
        for table in (*SHARED_BY_POLICIES, INVOICE_LINES):
            await conn.execute(text(f"ALTER TABLE {qualified(engine, table)} ADD COLUMN legacy INTEGER"))
            await conn.execute(text(f"DELETE FROM {qualified(engine, table)}"))
    assert {change.split()[0] for change in await drifted(engine)} == {"remove_column"}

    await billing.start()
    await caught_up(engine, {"contracts": 2, "dispatch": 3})
    await settled(nc)
    assert await drifted(engine) == []
    rows, checkpoints = await state(engine)
    assert {name: rows[name] for name in rows if rows[name] != before[0][name]} == {}  # every row back
    assert checkpoints == before[1]  # every checkpoint where it was
    assert await EventStore(engine).last_position() == log_position  # appended nothing: billed nothing twice

    # The consumer goes on from the rebuilt checkpoint, onto the open supplementary draft.
    assert await publish(nc, "dispatch", 4)

    async def four() -> bool:
        return await lines(nc, SUPPLEMENT) == ["dispatch:3:0", "dispatch:4:0"]

    await eventually(four)
    assert await lines(nc) == ["dispatch:1:0", "dispatch:2:0"]
    assert (await health(nc))["consumers"]["billing-policy_dispatch"] == 1


async def test_a_rebuild_cut_short_is_done_again_at_the_next_start(
        billing: Service, nc: NATS, engine: AsyncEngine) -> None:
    before, log_position = await two_lines_billed_then_stopped(billing, nc, engine)

    # As a process that died inside a rebuild leaves it: the tables in today's shape but
    # emptied, and the mark on the checkpoint instead of a position.
    async with engine.begin() as conn:
        for table in SHARED_BY_POLICIES:
            await conn.execute(text(f"DELETE FROM {qualified(engine, table)}"))
        await conn.execute(tracking_table.update().where(tracking_table.c.consumer == "billing-policy_dispatch")
                           .values(position=REBUILDING))
    assert await drifted(engine) == []  # the shape alone would not tell

    await billing.start()
    await caught_up(engine, {"contracts": 2, "dispatch": 2})
    await settled(nc)
    rows, checkpoints = await state(engine)
    assert {name: rows[name] for name in rows if rows[name] != before[0][name]} == {}
    assert checkpoints == before[1]
    assert await EventStore(engine).last_position() == log_position


async def test_c4_a_release_adding_the_day_ledger_builds_it_from_the_stream_and_bills_nothing_twice(
        billing: Service, nc: NATS, engine: AsyncEngine) -> None:
    """The release that bills C4 per calendar day adds `billing_work_days`: a database of
    the release before has every other table of the policies and not this one. The start
    finds the table missing (drift), rebuilds both policies from their streams, and the
    ledger holds the days the log's lines billed, without a line appended."""
    before, log_position = await two_lines_billed_then_stopped(billing, nc, engine)
    # 8 and 9 June, by the one hardware record (25 h across midnight, C4)
    assert [row[2:] for row in before[0]["billing_work_days"]] == [  # type: ignore[attr-defined]
        (date(2026, 6, 8), "dispatch:1:0"), (date(2026, 6, 9), "dispatch:1:0")]

    async with engine.begin() as conn:
        await conn.execute(text(f"DROP TABLE {qualified(engine, 'billing_work_days')}"))
    assert await drifted(engine) == ["add_table billing_work_days"] * 2  # seen by both policies

    await billing.start()
    await caught_up(engine, {"contracts": 2, "dispatch": 2})
    await settled(nc)
    assert await drifted(engine) == []
    rows, checkpoints = await state(engine)
    assert {name: rows[name] for name in rows if rows[name] != before[0][name]} == {}
    assert checkpoints == before[1]
    assert await EventStore(engine).last_position() == log_position
