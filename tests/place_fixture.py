"""Places and a grid boundary beside ``make_small_org``: a market in 建设一网格 and a boundary for 人民一网格
that reaches towards 建设一网格, so that a point inside it lies nearer a building of the other grid."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from bot.core.geo import bounds
from storage.models import Grid, Place
from tests.org_fixture import SmallOrg, make_small_org

MARKET_CODE = "DG-JS-01-MKT"
# Inside 人民一网格's boundary, yet some 250 m from 建设路12号院1号楼 (建设一网格) and 1.4 km from 人民路8号院.
IN_THE_BOUNDARY = (32.9970, 112.5300)
# Near 人民路8号院2号楼, where no boundary reaches: its grid's by the nearest building.
NEAR_RENMIN = (32.9903, 112.5400)


def square(south: float, west: float, side: float) -> dict[str, Any]:
    ring = [[west, south], [west + side, south], [west + side, south + side], [west, south + side], [west, south]]
    return {"type": "Polygon", "coordinates": [ring]}


BOUNDARY = square(32.9960, 112.5290, 0.002)


@dataclass
class PlacesOrg:
    org: SmallOrg
    market: int


def set_boundary(grid: Grid, geometry: dict[str, Any]) -> None:
    grid.boundary = geometry
    grid.min_latitude, grid.max_latitude, grid.min_longitude, grid.max_longitude = bounds(geometry)


def add_places(session: Session, org: SmallOrg, boundary: bool = True) -> PlacesOrg:
    market = Place(code=MARKET_CODE, name="建设路农贸市场", kind="market", address="建设路30号", latitude=32.9995,
                   longitude=112.5290, grid_id=org.grid)
    session.add(market)
    if boundary:
        grid2 = session.get(Grid, org.grid2)
        assert grid2 is not None
        set_boundary(grid2, BOUNDARY)
    session.flush()
    return PlacesOrg(org, market.id)


def make_places_org(session: Session) -> PlacesOrg:
    return add_places(session, make_small_org(session))
