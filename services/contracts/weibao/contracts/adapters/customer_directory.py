"""The customer directory: every customer with its sites, for the dispatcher's search
(by name or id) and pick lists, built from contracts' own stream.

Sites keep the order they were added in; a move changes where a site is, never which
it is (rule C9 and D4 read the new place)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from weibao.contracts.domain import customer
from weibao.shared.messages import Message
from weibao.shared.paging import Page
from weibao.shared.readmodels import upsert

STREAM = "customer-"
SITE_FIELDS = ("site_id", "name", "address", "latitude", "longitude", "city", "city_code")


@dataclass
class CustomerDirectory:
    suffix: str = ""

    def __post_init__(self) -> None:
        self.name = "customer_directory"
        self.metadata = MetaData()
        self.customers = Table(
            f"customer_directory{self.suffix}", self.metadata,
            Column("customer_id", String(100), primary_key=True),
            Column("name", String(200), nullable=False),
        )
        self.sites = Table(
            f"customer_directory_sites{self.suffix}", self.metadata,
            Column("customer_id", String(100), primary_key=True),
            Column("site_id", String(100), primary_key=True),
            Column("seq", Integer, nullable=False),  # the order sites were added in
            Column("name", String(200), nullable=False),
            Column("address", Text, nullable=False),
            Column("latitude", Float, nullable=False),  # WGS-84
            Column("longitude", Float, nullable=False),
            Column("city", String(100)),
            Column("city_code", String(12)),
        )

    def tables(self) -> list[Table]:
        return [self.customers, self.sites]

    def fresh(self, suffix: str) -> CustomerDirectory:
        return CustomerDirectory(suffix)

    async def __call__(self, conn: AsyncConnection, message: Message) -> None:
        if not (customer.EVENTS.knows(message.type) and message.stream_id.startswith(STREAM)):
            return  # public messages, agreements, quotas, warranties
        customer_id = message.stream_id.removeprefix(STREAM)
        event: customer.Event = customer.EVENTS.decode(message)
        sites = self.sites
        match event:
            case customer.CustomerRegistered():
                await upsert(conn, self.customers, "customer_id", customer_id, {"name": event.name})
            case customer.SiteAdded():
                seq = await conn.scalar(select(func.count()).where(sites.c.customer_id == customer_id))
                await conn.execute(sites.insert().values(customer_id=customer_id, site_id=event.site_id,
                                                         seq=int(seq or 0), name=event.name,
                                                         **_where(event.location)))
            case customer.SiteMoved():
                await conn.execute(sites.update().where(sites.c.customer_id == customer_id,
                                                        sites.c.site_id == event.site_id)
                                   .values(_where(event.location)))
            case customer.ContactsChanged():
                pass  # the directory lists names and sites; contacts are on the customer itself


def _where(location: customer.Location) -> dict[str, Any]:
    return {"address": location.address, "latitude": location.latitude, "longitude": location.longitude,
            "city": location.city, "city_code": location.city_code}


async def customers(engine: AsyncEngine, directory: CustomerDirectory, body: Mapping[str, Any]) -> dict[str, Any]:
    """`weibao.contracts.customers`: a page of customers, each with its sites; `q` finds a
    customer by a part of its name or id."""
    page = Page.of(body)
    c, s = directory.customers, directory.sites
    query = select(c).order_by(c.c.customer_id)
    q = str(body.get("q") or "").strip().lower()
    if q:
        query = query.where(or_(func.lower(c.c.name).contains(q, autoescape=True),
                                func.lower(c.c.customer_id).contains(q, autoescape=True)))
    async with engine.connect() as conn:
        rows, total = await page.rows(conn, query)
        ids = [row.customer_id for row in rows]
        found = (await conn.execute(select(s).where(s.c.customer_id.in_(ids)).order_by(s.c.seq))).all() if ids else []
    by_customer: dict[str, list[dict[str, Any]]] = {customer: [] for customer in ids}
    for site in found:
        by_customer[site.customer_id].append({name: site._mapping[name] for name in SITE_FIELDS})
    return page.reply([{"customer_id": row.customer_id, "name": row.name, "sites": by_customer[row.customer_id]}
                       for row in rows], total)
