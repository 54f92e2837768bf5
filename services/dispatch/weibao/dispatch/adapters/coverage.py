"""Dispatch's copy of what contracts published: agreements, coverage periods, sites.

Fed by a tracking consumer on `contracts.>` (public messages only, each decoded into
its dataclass by weibao.shared.public.read; private ones are skipped), so a request
carries the latest coverage verdict and SLA without a synchronous call to contracts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from sqlalchemy import Column, Float, MetaData, String, Table, Text, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from weibao.shared import geo, public
from weibao.shared.messages import Message
from weibao.shared.public import contracts
from weibao.shared.readmodels import upsert

# What dispatch reads of contracts' messages. Not CoverageLapsed: periods already end on
# their last day (the lapse is kept for the record upstream).
READS = (contracts.CoverageGranted, contracts.CoverageChanged, contracts.CoverageEnded, contracts.SiteLocated)


@dataclass
class CoverageBook:
    suffix: str = ""

    def __post_init__(self) -> None:
        self.name = "coverage_book"
        self.metadata = MetaData()
        s = self.suffix
        self.agreements = Table(
            f"coverage_agreements{s}", self.metadata,
            Column("agreement_id", String(100), primary_key=True),
            Column("customer_id", String(100), nullable=False, index=True),
            Column("site_ids", Text, nullable=False),
            Column("office", Text, nullable=False),
            Column("terms", Text, nullable=False),
            Column("ended_on", String(10)),
        )
        self.periods = Table(
            f"coverage_periods{s}", self.metadata,
            Column("agreement_id", String(100), primary_key=True),
            Column("period_from", String(10), primary_key=True),
            Column("period_to", String(10), nullable=False),
            Column("basis", String(10), nullable=False),
            Column("clauses", Text, nullable=False),
        )
        self.sites = Table(
            f"coverage_sites{s}", self.metadata,
            Column("site_id", String(100), primary_key=True),
            Column("customer_id", String(100), nullable=False, index=True),
            Column("customer_name", String(200), nullable=False),
            Column("name", String(200), nullable=False),
            Column("address", Text, nullable=False),
            Column("latitude", Float, nullable=False),
            Column("longitude", Float, nullable=False),
            Column("city_code", String(12)),
        )

    def tables(self) -> list[Table]:
        return [self.agreements, self.periods, self.sites]

    def fresh(self, suffix: str) -> CoverageBook:
        return CoverageBook(suffix)

    async def __call__(self, conn: AsyncConnection, message: Message) -> None:
        match public.read(message, *READS):
            case contracts.CoverageGranted() as granted:
                await upsert(conn, self.agreements, "agreement_id", granted.agreement_id, {
                    "customer_id": granted.customer_id, "site_ids": json.dumps(granted.site_ids),
                    "office": json.dumps(asdict(granted.office), sort_keys=True),
                    "terms": json.dumps(granted.terms, sort_keys=True),
                    "ended_on": None,
                })
                await conn.execute(self.periods.delete().where(
                    (self.periods.c.agreement_id == granted.agreement_id)
                    & (self.periods.c.period_from == granted.period_from)))
                await conn.execute(self.periods.insert().values(
                    agreement_id=granted.agreement_id, period_from=granted.period_from,
                    period_to=granted.period_to, basis=granted.basis, clauses=json.dumps(granted.clauses)))
            case contracts.CoverageChanged() as changed:
                await conn.execute(self.agreements.update().where(
                    self.agreements.c.agreement_id == changed.agreement_id).values(
                        terms=json.dumps(changed.terms, sort_keys=True)))
            case contracts.CoverageEnded() as ended:
                await conn.execute(self.agreements.update().where(
                    self.agreements.c.agreement_id == ended.agreement_id).values(ended_on=ended.on))
            case contracts.SiteLocated() as located:
                await upsert(conn, self.sites, "site_id", located.site_id, {
                    "customer_id": located.customer_id, "customer_name": located.customer_name,
                    "name": located.name, "address": located.address, "latitude": located.latitude,
                    "longitude": located.longitude, "city_code": located.city_code,
                })
            case _:
                pass  # what dispatch does not read (READS)


@dataclass(frozen=True)
class SiteView:
    site_id: str
    customer_id: str
    customer_name: str
    name: str
    address: str
    latitude: float
    longitude: float
    city_code: str | None


@dataclass(frozen=True)
class CoverageView:
    """What a new request needs to know (rules C1, C2, C9)."""

    agreement_id: str | None
    verdict: str
    clauses: tuple[str, ...]
    local: bool
    onsite: dict[str, Any]
    office: dict[str, Any] | None
    period: str | None = None  # "free" or "paid": the period the date falls in (None: none does)
    terms: dict[str, Any] | None = None  # the agreement's terms as contracts published them


async def site(engine: AsyncEngine, book: CoverageBook, site_id: str) -> SiteView | None:
    async with engine.connect() as conn:
        row = (await conn.execute(select(book.sites).where(book.sites.c.site_id == site_id))).first()
    return SiteView(**row._mapping) if row is not None else None


async def coverage_on(engine: AsyncEngine, book: CoverageBook, where: SiteView, on: date) -> CoverageView:
    """The customer's agreement that covers `on` (or, failing that, its latest one)."""
    day = on.isoformat()
    async with engine.connect() as conn:
        agreements = (await conn.execute(
            select(book.agreements).where(book.agreements.c.customer_id == where.customer_id))).all()
        best: tuple[Any, Any] | None = None
        for agreement in agreements:
            if where.site_id not in json.loads(agreement.site_ids) and json.loads(agreement.site_ids):
                continue
            periods: Sequence[Any] = (await conn.execute(select(book.periods).where(
                book.periods.c.agreement_id == agreement.agreement_id))).all()
            covering = [p for p in periods if p.period_from <= day <= p.period_to
                        and (agreement.ended_on is None or day < agreement.ended_on)]
            if covering:
                best = (agreement, covering[0])
                break
            if best is None:
                best = (agreement, None)
    if best is None:
        return CoverageView(None, "billable", ("B3",), True, {}, None)
    agreement, period = best
    office = json.loads(agreement.office)
    terms = json.loads(agreement.terms)
    onsite = terms.get("onsite", {})
    local = geo.is_local(_Located(where.latitude, where.longitude, where.city_code),
                         _Located(office["latitude"], office["longitude"], office["city_code"]),
                         radius_km=onsite.get("local_radius_km"))
    if period is None:
        # rule C1 / B3: outside any free or paid period, the visit is billable
        return CoverageView(agreement.agreement_id, "billable", ("C1", "B3"), local, onsite, office, None, terms)
    clauses = tuple(json.loads(period.clauses))
    return CoverageView(agreement.agreement_id, "covered", clauses, local, onsite, office, period.basis, terms)


@dataclass(frozen=True)
class _Located:
    latitude: float
    longitude: float
    city_code: str | None
