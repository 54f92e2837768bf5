"""Billing's copy of what it prices with: each agreement's terms (day rate, expenses,
discounts, billing period) and customers' names, from contracts' public messages."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, MetaData, String, Table, Text, select
from sqlalchemy.ext.asyncio import AsyncConnection

from weibao.shared.messages import BadMessage, Message
from weibao.shared.readmodels import upsert

READS = {"CoverageGranted": 1, "CoverageChanged": 1, "SiteLocated": 1}


@dataclass
class TermsBook:
    suffix: str = ""

    def __post_init__(self) -> None:
        self.name = "terms_book"
        self.metadata = MetaData()
        self.agreements = Table(
            f"billing_agreements{self.suffix}", self.metadata,
            Column("agreement_id", String(100), primary_key=True),
            Column("customer_id", String(100), nullable=False),
            Column("terms", Text, nullable=False),
        )
        self.customers = Table(
            f"billing_customers{self.suffix}", self.metadata,
            Column("customer_id", String(100), primary_key=True),
            Column("name", String(200), nullable=False),
        )

    def tables(self) -> list[Table]:
        return [self.agreements, self.customers]

    def fresh(self, suffix: str) -> TermsBook:
        return TermsBook(suffix)

    async def __call__(self, conn: AsyncConnection, message: Message) -> None:
        version = READS.get(message.type)
        if version is None:
            return
        if message.schema_version != version:
            raise BadMessage(f"{message.type} schema {message.schema_version} is unknown here (we read {version})")
        data = message.data
        if message.type == "SiteLocated":
            await upsert(conn, self.customers, "customer_id", data["customer_id"], {"name": data["customer_name"]})
        else:
            await upsert(conn, self.agreements, "agreement_id", data["agreement_id"],
                          {"customer_id": data["customer_id"], "terms": json.dumps(data["terms"])})

    async def terms(self, conn: AsyncConnection, agreement_id: str | None) -> dict[str, Any]:
        if agreement_id is None:
            return {}
        found = await conn.scalar(select(self.agreements.c.terms).where(self.agreements.c.agreement_id == agreement_id))
        return json.loads(found) if found else {}

    async def customer_name(self, conn: AsyncConnection, customer_id: str) -> str:
        found = await conn.scalar(select(self.customers.c.name).where(self.customers.c.customer_id == customer_id))
        return str(found) if found else customer_id

