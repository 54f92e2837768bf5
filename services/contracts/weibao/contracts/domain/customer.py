"""Customers and their sites. Where a site is decides "local or out-of-town" (rule C9)
and a technician's travel (D4), so every site has coordinates (WGS-84) and a city code;
the application geocodes addresses before a command reaches here."""

from __future__ import annotations

from dataclasses import dataclass, replace

from weibao.shared.codec import Codec
from weibao.shared.errors import require


@dataclass(frozen=True)
class Contact:
    name: str
    phone: str = ""
    email: str = ""
    qq: str = ""  # rule C13: QQ is a service channel


@dataclass(frozen=True)
class Location:
    address: str
    latitude: float  # WGS-84
    longitude: float
    city_code: str | None
    province: str | None = None
    city: str | None = None
    district: str | None = None
    precision: str = "district"


@dataclass(frozen=True)
class RegisterCustomer:
    customer_id: str
    name: str
    contacts: tuple[Contact, ...] = ()


@dataclass(frozen=True)
class AddSite:
    site_id: str
    name: str
    location: Location


@dataclass(frozen=True)
class MoveSite:
    site_id: str
    location: Location


@dataclass(frozen=True)
class ChangeContacts:
    contacts: tuple[Contact, ...]


Command = RegisterCustomer | AddSite | MoveSite | ChangeContacts


@dataclass(frozen=True)
class CustomerRegistered:
    customer_id: str
    name: str
    contacts: tuple[Contact, ...]


@dataclass(frozen=True)
class SiteAdded:
    site_id: str
    name: str
    location: Location


@dataclass(frozen=True)
class SiteMoved:
    site_id: str
    location: Location


@dataclass(frozen=True)
class ContactsChanged:
    contacts: tuple[Contact, ...]


Event = CustomerRegistered | SiteAdded | SiteMoved | ContactsChanged
# The events as stored: `private.<Name>` (the commands append them, the directory reads them back).
EVENTS = Codec([CustomerRegistered, SiteAdded, SiteMoved, ContactsChanged], prefix="private.")


@dataclass(frozen=True)
class Site:
    site_id: str
    name: str
    location: Location


@dataclass(frozen=True)
class Customer:
    customer_id: str = ""
    name: str = ""
    contacts: tuple[Contact, ...] = ()
    sites: tuple[Site, ...] = ()

    def site(self, site_id: str) -> Site | None:
        return next((s for s in self.sites if s.site_id == site_id), None)


def decide(command: Command, state: Customer) -> list[Event]:
    match command:
        case RegisterCustomer():
            require(not state.customer_id, "conflict", "customer_id", "this customer is already registered")
            require(bool(command.customer_id.strip()), "missing", "customer_id", "a customer needs an id")
            require(bool(command.name.strip()), "missing", "name", "a customer needs a name")
            return [CustomerRegistered(command.customer_id, command.name.strip(), command.contacts)]
        case AddSite():
            _require_registered(state)
            require(bool(command.site_id.strip()), "missing", "site_id", "a site needs an id")
            require(state.site(command.site_id) is None, "conflict", "site_id", "this site already exists")
            return [SiteAdded(command.site_id, command.name, command.location)]
        case MoveSite():
            _require_registered(state)
            require(state.site(command.site_id) is not None, "not_found", "site_id", "no such site",
                    reason="site.not_found")
            return [SiteMoved(command.site_id, command.location)]
        case ChangeContacts():
            _require_registered(state)
            return [ContactsChanged(command.contacts)]
    raise AssertionError(command)


def _require_registered(state: Customer) -> None:
    require(bool(state.customer_id), "not_found", "customer_id", "no such customer", reason="customer.not_found")


def evolve(state: Customer, event: Event) -> Customer:
    match event:
        case CustomerRegistered():
            return Customer(event.customer_id, event.name, event.contacts)
        case SiteAdded():
            return replace(state, sites=(*state.sites, Site(event.site_id, event.name, event.location)))
        case SiteMoved():
            moved = tuple(replace(s, location=event.location) if s.site_id == event.site_id else s
                          for s in state.sites)
            return replace(state, sites=moved)
        case ContactsChanged():
            return replace(state, contacts=event.contacts)
    raise AssertionError(event)
