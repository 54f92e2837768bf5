"""Places: geocoding an address offline, `locate` for sites and offices, and rule C9's
"local or out-of-town".

Every coordinate here is WGS-84 (see `datum.py`): converted on the way in, never on the
way out."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from geopy.distance import geodesic  # type: ignore[import-untyped]
from geopy.exc import GeopyError  # type: ignore[import-untyped]
from geopy.point import Point  # type: ignore[import-untyped]

from weibao.shared.errors import Rejected
from weibao.shared.geo.datum import gcj02_to_wgs84
from weibao.shared.geo.gazetteer import CITY_PROVINCES, Gazetteer, Match, load_gazetteer

Datum = Literal["wgs84", "gcj02"]
# exact: coordinates given (a phone's GPS, a map pin); address: an online geocoder's
# answer; district/city/province: the seat of government of the finest division the
# gazetteer recognised that has a point.
Precision = Literal["exact", "address", "district", "city", "province"]
DATUMS: tuple[Datum, ...] = ("wgs84", "gcj02")


@dataclass(frozen=True)
class Place:
    """A located address; duck-compatible with geopy's `Location` (.address, .latitude,
    .longitude, .point, .raw) so code written against geopy takes it."""

    address: str
    latitude: float  # WGS-84
    longitude: float  # WGS-84
    province: str | None
    city: str | None  # a municipality (or SAR) is its own city: 北京市
    district: str | None
    adcode: str | None  # 6 digits, the finest division recognised in the text
    city_code: str | None  # rule C9 compares these; see gazetteer.city_code_of
    precision: Precision
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def point(self) -> Point:
        return Point(self.latitude, self.longitude)

    @property
    def altitude(self) -> float:
        return 0.0


class Located(Protocol):
    """Anything with a WGS-84 position: a Place, the contracts service's Office..."""

    @property
    def latitude(self) -> float: ...
    @property
    def longitude(self) -> float: ...


class InCity(Located, Protocol):
    @property
    def city_code(self) -> str | None: ...


class Geocoder(Protocol):
    """What `locate` asks for coordinates when none are given."""

    def geocode(self, query: str) -> Place | None: ...


class _GeopyLocation(Protocol):
    @property
    def address(self) -> str: ...
    @property
    def latitude(self) -> float: ...
    @property
    def longitude(self) -> float: ...
    @property
    def raw(self) -> Any: ...


class _GeopyGeocoder(Protocol):
    def geocode(self, query: str) -> _GeopyLocation | None: ...


def _place(
    address: str,
    match: Match | None,
    latitude: float,
    longitude: float,
    *,
    precision: Precision,
    raw: Mapping[str, Any],
) -> Place:
    if match is None:
        return Place(address, latitude, longitude, None, None, None, None, None, precision, raw)
    one_city = match.province.adcode[:2] in CITY_PROVINCES
    city = match.city.name if match.city else (match.province.name if one_city else None)
    return Place(
        address=address,
        latitude=latitude,
        longitude=longitude,
        province=match.province.name,
        city=city,
        district=match.district.name if match.district else None,
        adcode=match.finest.adcode,
        city_code=match.city_code,
        precision=precision,
        raw=raw,
    )


class GazetteerGeocoder:
    """Offline geocoding of Chinese addresses to the seat of their finest named division.

    geopy-style: `geocode(query)` returns a `Place` or None. Nothing is read until the
    first call (then the table is cached for the process)."""

    def __init__(self, gazetteer: Gazetteer | None = None) -> None:
        self._gazetteer = gazetteer

    @property
    def gazetteer(self) -> Gazetteer:
        return self._gazetteer if self._gazetteer is not None else load_gazetteer()

    def parse(self, query: str) -> Match | None:
        return self.gazetteer.parse(query)

    def geocode(self, query: str, *, exactly_one: Literal[True] = True, timeout: float | None = None) -> Place | None:
        """`exactly_one` and `timeout` are accepted for geopy's sake and mean nothing offline."""
        match = self.parse(query)
        if match is None:
            return None
        division, latitude, longitude = self.gazetteer.point_of(match)
        one_city = division.level == "province" and division.adcode[:2] in CITY_PROVINCES
        precision: Precision = "city" if one_city else division.level
        raw = {"source": "gazetteer", "source_datum": "gcj02", "point_of": division.adcode, "rest": match.rest}
        return _place(query.strip(), match, latitude, longitude, precision=precision, raw=raw)


class OnlineGeocoder:
    """An online geopy geocoder (Nominatim, GoogleV3, ...) for street-level points, with
    the gazetteer naming the province, city and district and standing in whenever the
    service answers nothing or fails. Tell it the datum its answers are in: GCJ-02 for
    services that serve China's maps (Amap, Google inside China), WGS-84 for OSM."""

    def __init__(self, geocoder: _GeopyGeocoder, *, datum: Datum, offline: GazetteerGeocoder | None = None) -> None:
        if datum not in DATUMS:
            raise ValueError(f"datum is one of {DATUMS}, not {datum!r}")
        self._geocoder = geocoder
        self._datum = datum
        self._offline = offline or DEFAULT_GEOCODER

    def parse(self, query: str) -> Match | None:
        return self._offline.parse(query)

    def geocode(self, query: str) -> Place | None:
        try:
            location = self._geocoder.geocode(query)
        except GeopyError:
            location = None  # the offline answer is coarser, not wrong
        if location is None:
            return self._offline.geocode(query)
        latitude, longitude = float(location.latitude), float(location.longitude)
        if self._datum == "gcj02":
            latitude, longitude = gcj02_to_wgs84(latitude, longitude)
        raw = {"source": "online", "source_datum": self._datum, "raw": location.raw}
        match = self._offline.parse(query)
        return _place(str(location.address), match, latitude, longitude, precision="address", raw=raw)


DEFAULT_GEOCODER = GazetteerGeocoder()


def _coordinate(value: float, field_name: str, limit: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Rejected("invalid", field_name, f"{field_name} is a number of degrees")
    if not math.isfinite(value) or not -limit <= value <= limit:
        raise Rejected("out_of_range", field_name, f"{field_name} lies between -{limit:g} and {limit:g} degrees")
    return float(value)


def locate(
    address: str,
    *,
    latitude: float | None = None,
    longitude: float | None = None,
    datum: Datum = "wgs84",
    geocoder: Geocoder = DEFAULT_GEOCODER,
) -> Place:
    """Where a site or office is. Explicit coordinates always win (in `datum`: WGS-84 from
    a phone's browser, GCJ-02 from an Amap pin); the gazetteer still names the province,
    city and district from the text when it can. Without coordinates, `geocoder` finds
    them from the address. Raises Rejected naming the field at fault."""
    if datum not in DATUMS:
        raise Rejected("invalid", "datum", f"datum is one of {', '.join(DATUMS)}")
    if latitude is None and longitude is None:
        place = geocoder.geocode(address) if address.strip() else None
        if place is None:
            raise Rejected("unknown_address", "address", "no province, city or district recognised; give coordinates")
        return place
    if latitude is None:
        raise Rejected("missing", "latitude", "longitude was given without latitude")
    if longitude is None:
        raise Rejected("missing", "longitude", "latitude was given without longitude")
    lat = _coordinate(latitude, "latitude", 90)
    lng = _coordinate(longitude, "longitude", 180)
    if datum == "gcj02":
        lat, lng = gcj02_to_wgs84(lat, lng)
    # The geocoder is not asked for coordinates here, only its gazetteer for names.
    offline = geocoder if isinstance(geocoder, GazetteerGeocoder | OnlineGeocoder) else DEFAULT_GEOCODER
    raw = {"source": "coordinates", "source_datum": datum}
    return _place(address.strip(), offline.parse(address), lat, lng, precision="exact", raw=raw)


def distance_km(a: Located, b: Located) -> float:
    """Geodesic distance on the WGS-84 ellipsoid, in kilometres."""
    return float(geodesic((a.latitude, a.longitude), (b.latitude, b.longitude)).km)


def is_local(site: InCity, office: InCity, *, radius_km: float | None = None) -> bool:
    """Rule C9 as D1 defines it: the site is local when it lies in the servicing office's
    city (same city code) or within the agreement's radius of the office. A place with
    no city code (bare coordinates, a whole province) can only be local by radius."""
    if radius_km is not None and (not math.isfinite(radius_km) or radius_km < 0):
        raise Rejected("out_of_range", "radius_km", "the radius is a non-negative number of kilometres")
    if site.city_code is not None and site.city_code == office.city_code:
        return True
    return radius_km is not None and distance_km(site, office) <= radius_km
