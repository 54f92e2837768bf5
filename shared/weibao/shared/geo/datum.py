"""WGS-84 and GCJ-02: the two datums Chinese coordinates come in.

- **WGS-84** is what GPS receivers report, and what a phone's browser gives through the
  W3C Geolocation API (`navigator.geolocation`, which the spec defines as WGS-84), so a
  technician's check-in arrives in WGS-84. OpenStreetMap, Nominatim and geopy's
  `geodesic` (which assumes the WGS-84 ellipsoid) use it too. **Weibao stores and
  computes in WGS-84 everywhere.** (An app built on Amap's SDK, or WeChat's
  `wx.getLocation({type: "gcj02"})`, hands out GCJ-02 instead: `locate(..., datum="gcj02")`.)
- **GCJ-02** ("Mars coordinates", 国测局坐标) is the obfuscated datum that Chinese law
  requires of published maps: Amap/Gaode (高德), Tencent and Google's China tiles use it,
  and so does almost every Chinese data set derived from them, including the gazetteer
  (see `gazetteer.py`). Inside China it is WGS-84 plus a smooth, position-dependent
  shift of a few hundred metres (roughly 300-700 m); outside China it is WGS-84.
  (Baidu's BD-09 is a further shift on top of GCJ-02; nothing here uses it.)

The forward transform is the public algorithm (as in `eviltransform`); it has not
changed since 2008. Packages on PyPI (eviltransform, coordTransform, coord-convert,
geotool-cn's `coords`) carry the same ~30 lines, untyped, and invert it with a single
subtraction that is off by up to a few metres. We keep the forward formula here and
invert it by fixed-point iteration, which converges to well under a millimetre, so a
round trip is exact for our purposes.

"Outside China" is the customary bounding box that the algorithm's users agree on
(longitude 72.004-137.8347, latitude 0.8293-55.8271); it is deliberately rough (it
contains e.g. Seoul), but it is the box the GCJ-02 data was produced with, so
converting with it is what undoes the data's shift. All functions take and return
`(latitude, longitude)` in degrees, latitude first, like geopy."""

from __future__ import annotations

import math

# Krasovsky 1940 ellipsoid, as the GCJ-02 algorithm uses it.
_A = 6378245.0
_EE = 0.00669342162296594323

_LNG_MIN, _LNG_MAX = 72.004, 137.8347
_LAT_MIN, _LAT_MAX = 0.8293, 55.8271

# 1e-10 degree is ~0.01 mm; the iteration gains ~3 orders of magnitude a step.
_TOLERANCE_DEG = 1e-10
_MAX_ITERATIONS = 20


def outside_china(latitude: float, longitude: float) -> bool:
    """True where GCJ-02 equals WGS-84 (the algorithm's own bounding box)."""
    return not (_LNG_MIN <= longitude <= _LNG_MAX and _LAT_MIN <= latitude <= _LAT_MAX)


def _shift_lat(x: float, y: float) -> float:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return ret


def _shift_lng(x: float, y: float) -> float:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return ret


def _offset(latitude: float, longitude: float) -> tuple[float, float]:
    """GCJ-02 minus WGS-84, in degrees, at a WGS-84 point inside China."""
    d_lat = _shift_lat(longitude - 105.0, latitude - 35.0)
    d_lng = _shift_lng(longitude - 105.0, latitude - 35.0)
    rad = latitude / 180.0 * math.pi
    magic = 1 - _EE * math.sin(rad) ** 2
    sqrt_magic = math.sqrt(magic)
    d_lat = (d_lat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrt_magic) * math.pi)
    d_lng = (d_lng * 180.0) / (_A / sqrt_magic * math.cos(rad) * math.pi)
    return d_lat, d_lng


def wgs84_to_gcj02(latitude: float, longitude: float) -> tuple[float, float]:
    """WGS-84 (GPS, a phone) to GCJ-02 (Amap, Chinese data sets); unchanged outside China."""
    if outside_china(latitude, longitude):
        return latitude, longitude
    d_lat, d_lng = _offset(latitude, longitude)
    return latitude + d_lat, longitude + d_lng


def gcj02_to_wgs84(latitude: float, longitude: float) -> tuple[float, float]:
    """GCJ-02 to WGS-84, the exact inverse of `wgs84_to_gcj02` (to ~0.01 mm)."""
    if outside_china(latitude, longitude):
        return latitude, longitude
    lat, lng = latitude, longitude
    for _ in range(_MAX_ITERATIONS):
        fwd_lat, fwd_lng = wgs84_to_gcj02(lat, lng)
        err_lat, err_lng = fwd_lat - latitude, fwd_lng - longitude
        lat, lng = lat - err_lat, lng - err_lng
        if abs(err_lat) < _TOLERANCE_DEG and abs(err_lng) < _TOLERANCE_DEG:
            break
    return lat, lng
