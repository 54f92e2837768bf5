"""Travel time between two points (rule D4): geodesic distance on WGS-84 and a travel mode.

Road within a region; rail beyond `rail_beyond_km`, air beyond `air_beyond_km`, each with a
fixed overhead (getting to the station or airport, check-in, the transfer at the far end).
Minutes are whole and rounded up: a promised arrival errs on the late side.

`travel_minutes` is the one-pair answer (geopy's geodesic). A day plan needs every pair of
a thousand points, where geopy costs about a minute; `TravelModel.matrix` computes the same
geodesic vectorised (Vincenty's inverse formula on WGS-84, within a millimetre of geopy's
Karney algorithm; any pair that does not converge, near-antipodal points, falls back to geopy)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from geopy.distance import geodesic  # type: ignore[import-untyped]

# The one travel model (speeds, thresholds, overheads), shared with assignment (D4).
from weibao.dispatch.domain.travel import Mode, TravelModel

__all__ = ["DEFAULT_TRAVEL", "LatLon", "Mode", "TravelModel", "geodesic_km", "geodesic_km_matrix", "matrix",
           "minutes_for_km", "travel_minutes"]

LatLon = tuple[float, float]
"""(latitude, longitude) in degrees, WGS-84."""

# WGS-84, as geopy's default ellipsoid
_A = 6_378_137.0
_F = 1 / 298.257223563
_B = (1 - _F) * _A
# ceil() of a float that is an integer up to rounding noise must not add a minute
_EPSILON = 1e-9


DEFAULT_TRAVEL = TravelModel()


def minutes_for_km(model: TravelModel, km: float) -> int:
    """Whole minutes, rounded up: a promised arrival errs on the late side."""
    return max(0, math.ceil(model.travel(km)[1] - _EPSILON))


def travel_minutes(a: LatLon, b: LatLon, model: TravelModel = DEFAULT_TRAVEL) -> int:
    """Minutes from `a` to `b` under `model` (rule D4)."""
    return minutes_for_km(model, geodesic_km(a, b))


def minutes_for_km_array(model: TravelModel, km: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """`minutes_for_km` over an array, element by element the same answer."""
    road = km / model.road_kmh * 60
    rail = model.rail_overhead_min + km / model.rail_kmh * 60
    air = model.air_overhead_min + km / model.air_kmh * 60
    minutes = np.where(km > model.air_beyond_km, air, np.where(km > model.rail_beyond_km, rail, road))
    return np.maximum(0, np.ceil(minutes - _EPSILON)).astype(np.int64)


def matrix(model: TravelModel, points: Sequence[LatLon]) -> npt.NDArray[np.int64]:
    """Travel minutes between every pair of `points` (row: from, column: to)."""
    return minutes_for_km_array(model, geodesic_km_matrix(points))


def geodesic_km(a: LatLon, b: LatLon) -> float:
    if a == b:
        return 0.0
    return float(geodesic(a, b).km)


def geodesic_km_matrix(points: Sequence[LatLon]) -> npt.NDArray[np.float64]:
    """Geodesic kilometres between every pair of points, vectorised (Vincenty's inverse)."""
    n = len(points)
    if n == 0:
        return np.zeros((0, 0))
    coords = np.radians(np.asarray(points, dtype=np.float64).reshape(n, 2))
    lat, lon = coords[:, 0], coords[:, 1]
    reduced = np.arctan((1 - _F) * np.tan(lat))
    sin_u, cos_u = np.sin(reduced), np.cos(reduced)
    sin_u1, sin_u2 = sin_u[:, None], sin_u[None, :]
    cos_u1, cos_u2 = cos_u[:, None], cos_u[None, :]
    big_l = lon[None, :] - lon[:, None]

    lam = big_l.copy()
    converged = np.zeros((n, n), dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        for _ in range(200):
            sin_lam, cos_lam = np.sin(lam), np.cos(lam)
            sin_sigma = np.hypot(cos_u2 * sin_lam, cos_u1 * sin_u2 - sin_u1 * cos_u2 * cos_lam)
            cos_sigma = sin_u1 * sin_u2 + cos_u1 * cos_u2 * cos_lam
            sigma = np.arctan2(sin_sigma, cos_sigma)
            sin_alpha = np.where(sin_sigma == 0, 0.0, cos_u1 * cos_u2 * sin_lam / sin_sigma)
            cos2_alpha = 1 - sin_alpha**2
            # on the equator cos²α is 0 and the term vanishes
            cos_2sm = np.where(cos2_alpha == 0, 0.0, cos_sigma - 2 * sin_u1 * sin_u2 / cos2_alpha)
            c = _F / 16 * cos2_alpha * (4 + _F * (4 - 3 * cos2_alpha))
            lam_next = big_l + (1 - c) * _F * sin_alpha * (
                sigma + c * sin_sigma * (cos_2sm + c * cos_sigma * (-1 + 2 * cos_2sm**2)))
            converged = np.abs(lam_next - lam) < 1e-12
            lam = lam_next
            if converged.all():
                break

        u2 = cos2_alpha * (_A**2 - _B**2) / _B**2
        a_coef = 1 + u2 / 16384 * (4096 + u2 * (-768 + u2 * (320 - 175 * u2)))
        b_coef = u2 / 1024 * (256 + u2 * (-128 + u2 * (74 - 47 * u2)))
        delta_sigma = b_coef * sin_sigma * (cos_2sm + b_coef / 4 * (
            cos_sigma * (-1 + 2 * cos_2sm**2)
            - b_coef / 6 * cos_2sm * (-3 + 4 * sin_sigma**2) * (-3 + 4 * cos_2sm**2)))
        km: npt.NDArray[np.float64] = _B * a_coef * (sigma - delta_sigma) / 1000

    km[sin_sigma == 0] = 0.0
    for i, j in zip(*np.nonzero(~converged | ~np.isfinite(km)), strict=True):
        km[i, j] = geodesic_km(points[i], points[j])
    np.fill_diagonal(km, 0.0)
    return km
