"""A sample organisation of Wancheng District (宛城区), Nanyang, for trying the bot out.

Three streets, two communities each, two grids per community and three buildings per grid. Street and
community names follow the Wancheng report where it names them (五里堡街道 with 黄河社区, 汉冶街道 with the
老庄 market, 孔明路 and 校场路, 外贸家属院); the rest are plausible. Codes are ASCII so that building codes fit
Telegram deep links: ``DG``, ``DG-KM``, ``DG-KM-01``, ``DG-KM-01-B1``. A market, a back alley and a riverside
park are places beside the buildings; each street has an urban management squad and the district a housing
bureau, a market supervision bureau and the power company, to hand requests to (分流).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from bot.core.categories import seed_categories
from bot.core.department_import import DepartmentRow, apply_department_rows
from bot.core.organisation import ImportSummary, OrgRow, apply_rows
from bot.core.place_import import PlaceRow, apply_place_rows

CITY_ADDRESS_PREFIX = "南阳市宛城区"
BUILDINGS_PER_GRID = 3
GRID_NUMERALS = ("一", "二", "三", "四")
# Spacing of the generated points in degrees: a few hundred metres between grids, ~50 m between buildings.
GRID_STEP = 0.003
BUILDING_STEP = 0.0005


@dataclass(frozen=True)
class DemoCompound:
    """A residential compound (小区/院) that makes up one grid."""

    name: str
    street_address: str


@dataclass(frozen=True)
class DemoCommunity:
    code: str
    name: str
    compounds: tuple[DemoCompound, DemoCompound]


@dataclass(frozen=True)
class DemoStreet:
    code: str
    name: str
    latitude: float
    longitude: float
    communities: tuple[DemoCommunity, DemoCommunity]


DEMO_STREETS = (
    DemoStreet(
        "WLB",
        "五里堡街道",
        32.978,
        112.548,
        (
            DemoCommunity(
                "HH",
                "黄河社区",
                (DemoCompound("黄河路88号院", "黄河路88号"), DemoCompound("工业南路21号院", "工业南路21号")),
            ),
            DemoCommunity(
                "CJ",
                "长江社区",
                (DemoCompound("长江路156号院", "长江路156号"), DemoCompound("仲景南路45号院", "仲景南路45号")),
            ),
        ),
    ),
    DemoStreet(
        "HY",
        "汉冶街道",
        32.991,
        112.516,
        (
            DemoCommunity(
                "LZ",
                "老庄社区",
                (DemoCompound("老庄农贸市场家属院", "老庄路6号"), DemoCompound("汉冶路33号院", "汉冶路33号")),
            ),
            DemoCommunity(
                "BH",
                "白河社区",
                (DemoCompound("滨河路17号院", "滨河路17号"), DemoCompound("汉冶路102号院", "汉冶路102号")),
            ),
        ),
    ),
    DemoStreet(
        "DG",
        "东关街道",
        33.001,
        112.541,
        (
            DemoCommunity(
                "KM",
                "孔明社区",
                (DemoCompound("孔明路12号院", "孔明路12号"), DemoCompound("外贸家属院", "孔明路58号")),
            ),
            DemoCommunity(
                "XC",
                "校场社区",
                (DemoCompound("校场路9号院", "校场路9号"), DemoCompound("建设路12号院", "建设路12号")),
            ),
        ),
    ),
)


def _grid_rows(street: DemoStreet, community: DemoCommunity, grid_index: int, line: int) -> list[OrgRow]:
    compound = community.compounds[grid_index]
    grid_code = f"{street.code}-{community.code}-{grid_index + 1:02d}"
    community_offset = GRID_STEP * 2 * street.communities.index(community)
    rows = []
    for number in range(1, BUILDINGS_PER_GRID + 1):
        latitude = street.latitude + community_offset + GRID_STEP * grid_index + BUILDING_STEP * number
        longitude = street.longitude + community_offset - BUILDING_STEP * number
        rows.append(
            OrgRow(
                line=line + number - 1,
                street_code=street.code,
                street_name=street.name,
                community_code=f"{street.code}-{community.code}",
                community_name=community.name,
                grid_code=grid_code,
                grid_name=f"{community.name}第{GRID_NUMERALS[grid_index]}网格",
                building_code=f"{grid_code}-B{number}",
                building_name=f"{compound.name}{number}号楼",
                address=f"{CITY_ADDRESS_PREFIX}{compound.street_address}{number}号楼",
                latitude=f"{latitude:.6f}",
                longitude=f"{longitude:.6f}",
            )
        )
    return rows


def demo_rows() -> list[OrgRow]:
    """The sample organisation as import rows, numbered as if read from a file with a header line."""
    rows: list[OrgRow] = []
    for street in DEMO_STREETS:
        for community in street.communities:
            for grid_index in range(len(community.compounds)):
                rows.extend(_grid_rows(street, community, grid_index, line=len(rows) + 2))
    return rows


# (code, name, kind, grid, latitude, longitude, address)
DEMO_PLACES = (
    ("HY-LZ-01-MKT", "老庄农贸市场", "market", "HY-LZ-01", 32.9925, 112.5165, "老庄路8号"),
    ("DG-KM-01-XX", "孔明路背街小巷", "alley", "DG-KM-01", 33.0020, 112.5405, "孔明路12号院东侧"),
    ("HY-BH-02-PK", "白河滨河公园", "park", "HY-BH-02", 33.0010, 112.5225, "滨河路"),
)
# (code, name, street code; empty for a district-wide one)
DEMO_DEPARTMENTS = (
    *((f"{street.code}-CG", f"{street.name.removesuffix('街道')}城管中队", street.code) for street in DEMO_STREETS),
    ("QU-ZJ", "区住建局", ""),
    ("QU-SJ", "区市场监管局", ""),
    ("QU-GD", "宛城供电公司", ""),
)


def demo_places() -> list[PlaceRow]:
    return [PlaceRow(line, code, name, grid, kind, f"{latitude:.6f}", f"{longitude:.6f}", address)
            for line, (code, name, kind, grid, latitude, longitude, address) in enumerate(DEMO_PLACES, start=2)]


def demo_departments() -> list[DepartmentRow]:
    return [DepartmentRow(line, code, name, street) for line, (code, name, street) in enumerate(DEMO_DEPARTMENTS,
                                                                                               start=2)]


def load_demo(session: Session) -> ImportSummary:
    """Import the sample organisation, its places and departments, and the default categories; running it
    again changes nothing."""
    summary = apply_rows(session, demo_rows())
    apply_place_rows(session, demo_places())
    apply_department_rows(session, demo_departments())
    seed_categories(session)
    return summary
