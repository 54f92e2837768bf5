"""Rule C4 per calendar day (issue 13 item 5), through the policy on a real event store:
hardware and network days are billed per technician, per request, per calendar day in
the agreement's time zone, however many work records fall on the day; a record across
midnight counts on both days; a record that adds no new day adds no line (not a zero
line); a redelivered `WorkLogged` bills nothing more (B8); and a replay of dispatch's
stream rebuilds the day ledger and the billed items exactly as the live policy wrote them."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.billing.ledger import Ledger, as_message
from weibao.billing.entrypoints.endpoints import Policy
from weibao.shared.db import begin_write
from weibao.shared.messages import Message
from weibao.shared.public.dispatch import WorkKind, WorkLogged
from weibao.shared.readmodels import create_tables, rows_of
from weibao.shared.replay import compare

INVOICE = "a-2026-06"
DAY_RATE = Decimal("800.00")


def work(started: str, ended: str, *, technician: str = "tech-1", ticket: str = "t-1",
         kind: WorkKind = "hardware") -> WorkLogged:
    """Work on customer a's request, Beijing time as the phone reports it."""
    return WorkLogged(ticket, "a", "ag-a", technician, f"w-{technician}-{started}", kind, f"2026-06-{started}:00+08:00",
                      f"2026-06-{ended}:00+08:00", "billable", ("C3",))


class Visits:
    """Customer a's agreement (800.00 a day), and dispatch's messages as they were sent."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.sent: list[Message] = []

    async def send(self, *records: WorkLogged) -> None:
        for record in records:
            position = self.ledger.positions["dispatch"] = self.ledger.positions.get("dispatch", 0) + 1
            message = as_message("dispatch", position, record)
            await self.ledger.deliver(message)
            self.sent.append(message)

    async def lines(self) -> list[tuple[str, Decimal, Decimal]]:
        """Each line's item id, quantity of days and amount."""
        return [(line.item_id, line.quantity, line.net) for line in (await self.ledger.invoice(INVOICE)).lines]

    async def days(self) -> list[tuple[Any, ...]]:
        """The day ledger: (technician, request, day, item)."""
        return (await rows_of(self.ledger.engine, Policy(self.ledger.policy, "dispatch")))["billing_work_days"]


async def visits(engine: AsyncEngine) -> Visits:
    ledger = await Ledger(engine).start()
    await ledger.agreement("ag-a", "a", "天宇贸易", "yizhuo-crm-maintenance",
                           {"fee.percent": "10", "fee.licence_price": "100000", "onsite.local_hours": 4,
                            "onsite.out_of_town_days": 2, "hardware.day_rate": "800"})
    return Visits(ledger)


async def test_c4_two_records_on_one_calendar_day_bill_one_day(engine: AsyncEngine) -> None:
    found = await visits(engine)
    await found.send(work("08T09:00", "08T12:00"), work("08T13:00", "08T17:00"))
    # The second record adds no new day: no line at all (not a zero line).
    assert await found.lines() == [("dispatch:1:0", Decimal(1), DAY_RATE)]


async def test_c4_a_record_across_midnight_counts_on_both_days(engine: AsyncEngine) -> None:
    found = await visits(engine)
    await found.send(work("08T22:00", "09T02:00"))
    assert await found.lines() == [("dispatch:1:0", Decimal(2), 2 * DAY_RATE)]
    [line] = (await found.ledger.invoice(INVOICE)).lines
    assert "2026-06-08、2026-06-09" in line.description  # the days it bills, for the customer to check


async def test_c4_a_record_ending_at_midnight_sharp_spends_no_time_on_the_next_day(engine: AsyncEngine) -> None:
    found = await visits(engine)
    await found.send(work("08T22:00", "09T00:00"))
    assert await found.lines() == [("dispatch:1:0", Decimal(1), DAY_RATE)]


async def test_c4_records_on_two_different_days_bill_two_days(engine: AsyncEngine) -> None:
    found = await visits(engine)
    await found.send(work("08T09:00", "08T12:00"), work("09T09:00", "09T12:00"))
    assert await found.lines() == [("dispatch:1:0", Decimal(1), DAY_RATE), ("dispatch:2:0", Decimal(1), DAY_RATE)]


async def test_c4_two_technicians_on_one_day_bill_two_days(engine: AsyncEngine) -> None:
    found = await visits(engine)
    await found.send(work("08T09:00", "08T12:00", technician="tech-1"),
                     work("08T09:00", "08T12:00", technician="tech-2"))
    assert await found.lines() == [("dispatch:1:0", Decimal(1), DAY_RATE), ("dispatch:2:0", Decimal(1), DAY_RATE)]


async def test_c4_one_technician_on_two_requests_on_one_day_bills_each_request(engine: AsyncEngine) -> None:
    # Per request: two customers' requests (or two of one customer) each owe their day.
    found = await visits(engine)
    await found.send(work("08T09:00", "08T12:00", ticket="t-1"), work("08T13:00", "08T17:00", ticket="t-2"))
    assert [quantity for _, quantity, _ in await found.lines()] == [Decimal(1), Decimal(1)]


async def test_c4_a_later_record_bills_only_the_days_not_yet_billed(engine: AsyncEngine) -> None:
    found = await visits(engine)
    await found.send(work("08T09:00", "08T12:00"), work("08T20:00", "09T03:00"))
    assert await found.lines() == [("dispatch:1:0", Decimal(1), DAY_RATE), ("dispatch:2:0", Decimal(1), DAY_RATE)]
    second = (await found.ledger.invoice(INVOICE)).lines[1]
    assert "2026-06-09" in second.description and "2026-06-08" not in second.description
    assert [(row[2].isoformat(), row[3]) for row in await found.days()] == [("2026-06-08", "dispatch:1:0"),
                                                                           ("2026-06-09", "dispatch:2:0")]


async def test_c4_software_work_stays_per_record(engine: AsyncEngine) -> None:
    # Software work is not C4's (B3 prices it per record, here outside coverage at a rate
    # to be agreed): it neither bills a day of the ledger nor is kept from billing by one.
    found = await visits(engine)
    await found.send(work("08T09:00", "08T12:00"), work("08T13:00", "08T17:00", kind="software"))
    invoice = await found.ledger.invoice(INVOICE)
    assert [(line.item_id, line.kind) for line in invoice.lines] == [("dispatch:1:0", "hardware_days"),
                                                                     ("dispatch:2:0", "service")]
    assert [row[3] for row in await found.days()] == ["dispatch:1:0"]


async def test_b8_c4_a_redelivered_work_record_bills_nothing_more(engine: AsyncEngine) -> None:
    found = await visits(engine)
    await found.send(work("08T22:00", "09T02:00"), work("09T09:00", "09T12:00"))
    lines, days = await found.lines(), await found.days()
    position = await found.ledger.store.last_position()
    for message in (found.sent[0], found.sent[1], found.sent[0]):  # again, in and out of order
        await found.ledger.deliver(message)
    assert await found.lines() == lines == [("dispatch:1:0", Decimal(2), 2 * DAY_RATE)]
    assert await found.days() == days
    assert await found.ledger.store.last_position() == position  # nothing appended: billed once


async def test_b8_c4_a_replay_rebuilds_the_day_ledger_as_the_live_policy_wrote_it(engine: AsyncEngine) -> None:
    found = await visits(engine)
    await found.send(work("08T09:00", "08T12:00"), work("08T13:00", "08T17:00"),
                     work("08T22:00", "09T02:00", technician="tech-2"), work("09T09:00", "10T01:00"))
    live = Policy(found.ledger.policy, "dispatch")
    replay = live.fresh("__replay")
    await create_tables(engine, replay)
    for message in found.sent:
        async with begin_write(engine) as conn:
            await replay(conn, message)
    # tech-1: 8 June (twice), 9 and 10 June; tech-2: 8 and 9 June
    assert len((await rows_of(engine, replay))["billing_work_days"]) == 5
    assert await compare(engine, live, replay) == {}
