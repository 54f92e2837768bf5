"""Billing's copy of what it prices with: each agreement's terms (day rate, expenses,
discounts, billing period) and customers' names, from contracts' public messages."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, MetaData, String, Table, Text, select
from sqlalchemy.ext.asyncio import AsyncConnection

from weibao.shared import public
from weibao.shared.messages import Message
from weibao.shared.public import contracts
from weibao.shared.readmodels import upsert

# What the book reads of contracts' messages (the policy prices others).
READS = (contracts.SiteLocated, contracts.CoverageGranted, contracts.CoverageChanged)


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
        await self.apply(conn, public.read(message, *READS))

    async def apply(self, conn: AsyncConnection, found: public.Published | None) -> None:
        """A message already decoded (the policy decodes each once, for this book and its
        pricing alike)."""
        match found:
            case contracts.SiteLocated() as site:
                await upsert(conn, self.customers, "customer_id", site.customer_id, {"name": site.customer_name})
            case contracts.CoverageGranted() | contracts.CoverageChanged() as coverage:
                await upsert(conn, self.agreements, "agreement_id", coverage.agreement_id,
                             {"customer_id": coverage.customer_id, "terms": json.dumps(coverage.terms)})
            case _:
                pass  # what billing prices (the policy), and what it does not read

    async def terms(self, conn: AsyncConnection, agreement_id: str | None) -> dict[str, Any]:
        if agreement_id is None:
            return {}
        found = await conn.scalar(select(self.agreements.c.terms).where(self.agreements.c.agreement_id == agreement_id))
        return json.loads(found) if found else {}

    async def customer_name(self, conn: AsyncConnection, customer_id: str) -> str:
        found = await conn.scalar(select(self.customers.c.name).where(self.customers.c.customer_id == customer_id))
        return str(found) if found else customer_id

