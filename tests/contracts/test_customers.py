"""Customers and sites: geocoded offline, and "local" by city for rule C9."""

from __future__ import annotations

import pytest

from tests.decider import Decider, Given
from weibao.contracts.application.customers import locate
from weibao.contracts.domain.customer import (
    AddSite,
    Command,
    Customer,
    CustomerRegistered,
    Event,
    MoveSite,
    RegisterCustomer,
    SiteAdded,
    decide,
    evolve,
)
from weibao.shared.commands.contracts import SiteMove
from weibao.shared.errors import Rejected

CUSTOMER = Decider(decide=decide, evolve=evolve, initial=Customer())


def registered() -> Given[Command, Event, Customer]:
    return CUSTOMER.given().when(RegisterCustomer("c-1", "合肥天宇贸易")).then(
        CustomerRegistered("c-1", "合肥天宇贸易", ()))


def test_a_site_address_is_geocoded_with_its_city_code() -> None:
    where = locate(SiteMove(address="安徽省合肥市蜀山区长江西路100号"))
    assert where.city_code == "3401"
    assert 31.5 < where.latitude < 32.2 and 116.9 < where.longitude < 117.6


def test_explicit_coordinates_win_and_the_city_still_comes_from_the_address() -> None:
    where = locate(SiteMove(address="广州市天河区体育西路1号", latitude=23.1365, longitude=113.3206))
    assert (where.latitude, where.longitude, where.city_code) == (23.1365, 113.3206, "4401")


def test_an_unknown_address_without_coordinates_is_refused_by_field() -> None:
    with pytest.raises(Rejected) as refused:
        locate(SiteMove(address="火星基地"))
    assert refused.value.field == "address"


def test_sites_are_added_once_and_moved_as_events() -> None:
    (added,) = registered().when(AddSite("s-1", "总部", locate(SiteMove(address="合肥市蜀山区")))).events
    assert isinstance(added, SiteAdded)
    with_site = registered().given(added)
    again = AddSite("s-1", "again", locate(SiteMove(address="合肥市蜀山区")))
    with_site.when(again).then_rejected("conflict", "site_id")
    (moved,) = with_site.when(MoveSite("s-1", locate(SiteMove(address="郑州市金水区")))).events
    site = with_site.given(moved).state.site("s-1")
    assert site is not None and site.location.city_code == "4101"


def test_a_customer_needs_a_name() -> None:
    CUSTOMER.given().when(RegisterCustomer("c-2", " ")).then_rejected(field="name")
