"""Customers and sites: addresses geocoded offline at the edge (weibao.shared.geo),
explicit coordinates always winning."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from weibao.contracts.application.published import PUBLIC
from weibao.contracts.domain import customer as domain
from weibao.shared import codec, geo
from weibao.shared.aggregates import Repository
from weibao.shared.commands import contracts as commands
from weibao.shared.events import RecordedEvent
from weibao.shared.eventstore import EventStore
from weibao.shared.public import contracts as public

PRIVATE = domain.EVENTS


def stream_of(customer_id: str) -> str:
    return f"customer-{customer_id}"


def translate(event: Any, state: domain.Customer) -> list[Any]:
    if isinstance(event, domain.SiteAdded | domain.SiteMoved):
        site = state.site(event.site_id)
        assert site is not None
        where = site.location
        return [public.SiteLocated(state.customer_id, state.name, site.site_id, site.name, where.address,
                                   where.latitude, where.longitude, where.city_code, where.precision)]
    return []


def customer_view(state: domain.Customer) -> dict[str, Any]:
    """A customer as the directory lists it (sites flat, as `customers` answers), with contacts."""
    return {
        "customer_id": state.customer_id, "name": state.name, "contacts": [codec.dump(c) for c in state.contacts],
        "sites": [{"site_id": site.site_id, "name": site.name, "address": site.location.address,
                   "latitude": site.location.latitude, "longitude": site.location.longitude,
                   "city": site.location.city, "city_code": site.location.city_code} for site in state.sites],
    }


def locate(site: commands.NewSite | commands.SiteMove) -> domain.Location:
    """rule C9 needs the city: the gazetteer reads it from the address, coordinates win."""
    place = geo.locate(site.address, latitude=site.latitude, longitude=site.longitude, datum=site.datum)
    return domain.Location(place.address, place.latitude, place.longitude, place.city_code, place.province,
                           place.city, place.district, place.precision)


@dataclass
class Customers:
    store: EventStore

    @property
    def repository(self) -> Repository[domain.Customer, domain.Event]:
        return Repository(self.store, PRIVATE, domain.evolve, domain.Customer(), PUBLIC, translate)

    async def load(self, customer_id: str) -> domain.Customer:
        state, _ = await self.repository.load(stream_of(customer_id))
        return state

    async def execute(self, customer_id: str, command: domain.Command, *, command_id: str | None = None,
                      meta: Mapping[str, Any] | None = None) -> list[RecordedEvent]:
        return await self.repository.execute(stream_of(customer_id), lambda s: domain.decide(command, s),
                                             command_id=command_id, meta=meta)

    async def register(self, request: commands.NewCustomer, **kw: Any) -> list[RecordedEvent]:
        # A contact's role is the desk's note for the person; the domain keeps name and phone.
        contacts = tuple(domain.Contact(contact.name, contact.phone) for contact in request.contacts)
        commands_: list[domain.Command] = [domain.RegisterCustomer(request.customer_id, request.name, contacts)]
        commands_ += [domain.AddSite(site.site_id, site.name, locate(site)) for site in request.sites]

        def decide(state: domain.Customer) -> list[domain.Event]:
            # The customer and its sites in one append: all stored, or none.
            events: list[domain.Event] = []
            for command in commands_:
                new = domain.decide(command, state)
                for event in new:
                    state = domain.evolve(state, event)
                events += new
            return events

        return await self.repository.execute(stream_of(request.customer_id), decide, **kw)

    async def add_site(self, request: commands.AddSite, **kw: Any) -> list[RecordedEvent]:
        command = domain.AddSite(request.site_id, request.name, locate(request))
        return await self.execute(request.customer_id, command, **kw)

    async def move_site(self, request: commands.MoveSite, **kw: Any) -> list[RecordedEvent]:
        command = domain.MoveSite(request.site_id, locate(request))
        return await self.execute(request.customer_id, command, **kw)
