"""Travel for rule D4: how far a technician is from a site, and how long the journey takes.

D4 names the shape: geodesic distance, then a travel mode, road within a region and rail or
air beyond. The model is deliberately coarse (a speed and a fixed overhead per mode, chosen
by distance thresholds) so that a dispatcher can redo any figure of an explanation by hand.

Pure: geopy's geodesic is arithmetic on the WGS-84 ellipsoid (no geocoder, no network)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from geopy.distance import geodesic  # type: ignore[import-untyped]

from weibao.shared.errors import Rejected
from weibao.shared.public.dispatch import TravelMode

Mode = TravelMode
Position = tuple[float, float]  # (latitude, longitude), WGS-84 degrees


def check_position(position: Position, field: str) -> None:
    lat, lon = position
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        raise Rejected("out_of_range", field, "a position is (latitude, longitude) in WGS-84 degrees")


def distance_km(a: Position, b: Position) -> float:
    """Geodesic distance on the WGS-84 ellipsoid, in kilometres."""
    return float(geodesic(a, b).km)


@dataclass(frozen=True)
class TravelModel:
    """Speeds in km/h; a journey is rail when longer than `rail_beyond_km`, air when longer
    than `air_beyond_km`, road otherwise. Overheads (getting to the station or airport,
    boarding, the last leg) are added once per journey; road has none."""

    road_kmh: float = 40
    rail_kmh: float = 200
    air_kmh: float = 600
    rail_beyond_km: float = 150
    air_beyond_km: float = 800
    rail_overhead_min: float = 60
    air_overhead_min: float = 180

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not math.isfinite(value) or value < 0 or (f.name.endswith("_kmh") and value == 0):
                raise Rejected("out_of_range", f.name, "speeds are positive, distances and overheads non-negative")
        if self.air_beyond_km < self.rail_beyond_km:
            raise Rejected("out_of_range", "air_beyond_km", "air starts no nearer than rail")

    def mode_for(self, km: float) -> Mode:
        """Road up to and including `rail_beyond_km`; rail up to and including `air_beyond_km`;
        air beyond."""
        if not math.isfinite(km) or km < 0:
            raise Rejected("out_of_range", "km", "a distance is a non-negative number of kilometres")
        if km > self.air_beyond_km:
            return "air"
        if km > self.rail_beyond_km:
            return "rail"
        return "road"

    def travel(self, km: float) -> tuple[Mode, float]:
        """The mode and the door-to-door minutes of a journey of `km` kilometres."""
        mode = self.mode_for(km)
        match mode:
            case "road":
                return mode, km / self.road_kmh * 60
            case "rail":
                return mode, km / self.rail_kmh * 60 + self.rail_overhead_min
            case "air":
                return mode, km / self.air_kmh * 60 + self.air_overhead_min
