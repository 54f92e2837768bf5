"""The agreement register: every agreement with its standing (C1, C2: covered until;
lapsed; terminated), by customer, for the dispatcher's lists and the customer page,
built from contracts' own stream. The aggregate stays the truth; this is its index."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Column, MetaData, String, Table, Text, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from weibao.contracts.domain import agreement
from weibao.shared.codec import parse
from weibao.shared.commands.contracts import AgreementSearch
from weibao.shared.messages import Message
from weibao.shared.paging import Page

STREAM = "agreement-"


@dataclass
class AgreementRegister:
    suffix: str = ""

    def __post_init__(self) -> None:
        self.name = "agreement_register"
        self.metadata = MetaData()
        self.table = Table(
            f"agreement_register{self.suffix}", self.metadata,
            Column("agreement_id", String(100), primary_key=True),
            Column("customer_id", String(100), nullable=False, index=True),
            Column("template_id", String(100), nullable=False),
            Column("status", String(20), nullable=False),  # an AgreementStatus
            Column("go_live", String(10), nullable=False),  # ISO dates
            Column("free_until", String(10), nullable=False),
            Column("covered_until", String(10), nullable=False),
            Column("lapsed_on", String(10)),
            Column("terminated_on", String(10)),
            Column("site_ids", Text, nullable=False),  # JSON list
        )

    def tables(self) -> list[Table]:
        return [self.table]

    def fresh(self, suffix: str) -> AgreementRegister:
        return AgreementRegister(suffix)

    async def __call__(self, conn: AsyncConnection, message: Message) -> None:
        if not (agreement.EVENTS.knows(message.type) and message.stream_id.startswith(STREAM)):
            return  # public messages, customers, quotas, warranties
        agreement_id = message.stream_id.removeprefix(STREAM)
        event: agreement.Event = agreement.EVENTS.decode(message)
        t = self.table
        changes: dict[str, Any]
        match event:
            case agreement.AgreementSigned():
                await conn.execute(t.insert().values(
                    agreement_id=agreement_id, customer_id=event.customer_id, template_id=event.template_id,
                    status="active", go_live=_day(event.go_live), free_until=_day(event.free_until),
                    covered_until=_day(event.free_until), lapsed_on=None, terminated_on=None,
                    site_ids=json.dumps(list(event.site_ids))))
                return
            case agreement.FeePaid():  # rule C2: a payment opens or extends coverage, and ends a lapse
                changes = {"covered_until": _day(event.covered_until), "lapsed_on": None}
            case agreement.CoverageLapsed():  # rule C1
                changes = {"lapsed_on": _day(event.lapsed_on)}
            case agreement.AgreementTerminated():
                changes = {"status": "terminated", "terminated_on": _day(event.on)}
            case _:
                return  # amendments change terms, not standing; fees falling due are billing's
        await conn.execute(t.update().where(t.c.agreement_id == agreement_id).values(changes))


def _day(day: date) -> str:
    return day.isoformat()  # ISO text, as the log stores a date: sorts as the days do


def as_item(row: Mapping[Any, Any], template_name: Callable[[str], str]) -> dict[str, Any]:
    return {**row, "template_name": template_name(row["template_id"]), "site_ids": json.loads(row["site_ids"])}


async def agreements(engine: AsyncEngine, register: AgreementRegister, body: Mapping[str, Any],
                     template_name: Callable[[str], str]) -> dict[str, Any]:
    """`weibao.contracts.agreements`: a page of agreements, by customer and status. The body
    is read with the query's one schema (AgreementSearch: its status one of the register's
    standings, a misfit refused naming the field), so no list of standings is kept here."""
    asked = parse(AgreementSearch, body)
    page = Page.of(asked.model_dump(include={"limit", "offset"}))  # the kit's ranges, its refusals
    t = register.table
    query = select(t).order_by(t.c.customer_id, t.c.agreement_id)
    if asked.customer_id is not None:
        query = query.where(t.c.customer_id == asked.customer_id)
    if asked.status is not None:
        query = query.where(t.c.status == asked.status)
    async with engine.connect() as conn:
        rows, total = await page.rows(conn, query)
    return page.reply([as_item(row._mapping, template_name) for row in rows], total)


async def agreement_ids(engine: AsyncEngine, register: AgreementRegister, customer_id: str) -> list[str]:
    t = register.table
    async with engine.connect() as conn:
        rows = await conn.execute(select(t.c.agreement_id).where(t.c.customer_id == customer_id)
                                  .order_by(t.c.agreement_id))
        return [row.agreement_id for row in rows]
