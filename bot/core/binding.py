"""Finding buildings and binding residents to them."""

from __future__ import annotations

import math
from typing import TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, lazyload

from bot.core.units import LEVEL_OF_ROLE, Unit, ids_within, own_name
from bot.i18n import Translator
from storage.models import Building, Community, Level, Person, Place, Role, Street
from storage.search_keys import SEPARATOR, clean

EARTH_RADIUS_M = 6_371_000
# Half-sides, in degrees of latitude, of the boxes searched around the sender in turn (about 0.5, 2 and
# 5.5 km): a dense city answers from the first, a village from the last.
SEARCH_BOXES_DEGREES = (0.005, 0.02, 0.05)
MIN_QUERY = 2  # letters or digits; one Chinese character is enough
SEARCH_CANDIDATES = 200


def streets(session: Session) -> list[Street]:
    return list(session.scalars(select(Street).order_by(Street.code)))


def communities(session: Session, street_id: int) -> list[Community]:
    within = _ids_within(Level.COMMUNITY, Unit(Level.STREET, street_id))
    return list(session.scalars(select(Community).where(Community.id.in_(within)).order_by(Community.code)))


def buildings_page(session: Session, community_id: int, page: int, per_page: int) -> tuple[list[Building], bool]:
    """One page of a community's active buildings, and whether more follow."""
    within = _ids_within(Level.BUILDING, Unit(Level.COMMUNITY, community_id))
    rows = list(
        session.scalars(
            select(Building)
            .where(Building.id.in_(within), Building.active.is_(True))
            .order_by(Building.code)
            .offset(page * per_page)
            .limit(per_page + 1)
        )
    )
    return rows[:per_page], len(rows) > per_page


def _ids_within(level: Level, area: Unit) -> Select[int]:
    query = ids_within(level, area)
    assert query is not None, f"a {area.level} holds {level} units"
    return query


def active_building(session: Session, building_id: int) -> Building | None:
    building = session.get(Building, building_id)
    return building if building is not None and building.active else None


def building_by_code(session: Session, code: str) -> Building | None:
    return session.scalars(select(Building).where(Building.code == code, Building.active.is_(True))).first()


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlmb = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


def nearest_buildings(session: Session, latitude: float, longitude: float, limit: int) -> list[tuple[Building, float]]:
    """The ``limit`` active buildings nearest to the point (within the largest search box), nearest first."""
    return nearest(session, Building, latitude, longitude, limit)


Located = TypeVar("Located", Building, Place)


def nearest(
    session: Session, model: type[Located], latitude: float, longitude: float, limit: int
) -> list[tuple[Located, float]]:
    """The ``limit`` active buildings or places nearest to the point (within the largest search box), nearest
    first, with their distance in metres.

    Each box is read through the (latitude, longitude) index and ranked in SQL by squared distance in degrees,
    longitude scaled by cos(latitude): over a few kilometres that ranks like the true distance.
    """
    squeeze = max(math.cos(math.radians(latitude)), 0.01)  # a degree of longitude shrinks towards the poles
    for box in SEARCH_BOXES_DEGREES:
        ranked = _nearest_in_box(session, model, (latitude, longitude), squeeze, box, limit)
        # A unit outside this box is at least ``box`` away: the answer is final once the last one found
        # is nearer than that, or when there is no larger box to look in.
        if (len(ranked) == limit and ranked[-1][1] <= box) or box == SEARCH_BOXES_DEGREES[-1]:
            measured = [(unit, distance_m(latitude, longitude, *_coordinates(unit))) for unit, _ in ranked]
            return sorted(measured, key=lambda pair: pair[1])
    return []


def _nearest_in_box(
    session: Session, model: type[Located], point: tuple[float, float], squeeze: float, box: float, limit: int
) -> list[tuple[Located, float]]:
    """Units in the box, nearest first, with their distance in degrees of latitude."""
    latitude, longitude = point
    north, east = model.latitude - latitude, (model.longitude - longitude) * squeeze
    rows = session.scalars(
        # The grid (and its community and street) only when asked for: routing needs the grid's id alone.
        select(model)
        .options(lazyload(model.grid))
        .where(
            model.latitude.between(latitude - box, latitude + box),
            model.longitude.between(longitude - box / squeeze, longitude + box / squeeze),
            model.active.is_(True),
        )
        .order_by(north * north + east * east, model.id)
        .limit(limit)
    )
    return [(unit, _degrees(unit, latitude, longitude, squeeze)) for unit in rows]


def _coordinates(unit: Building | Place) -> tuple[float, float]:
    return unit.latitude or 0.0, unit.longitude or 0.0


def _degrees(unit: Building | Place, latitude: float, longitude: float, squeeze: float) -> float:
    north, east = _coordinates(unit)
    return math.hypot(north - latitude, (east - longitude) * squeeze)


def find_buildings(session: Session, query: str, limit: int) -> list[Building]:
    """The active buildings whose name, address or code contains ``query`` (as typed, in full pinyin such as
    ``waimao`` or in initials such as ``wmjsy``), best first: the code itself, then names that start with it,
    names that contain it, and addresses. Empty for a query too short to narrow anything down.

    One ``LIKE`` on the precomputed ``search_key``; only the first ``SEARCH_CANDIDATES`` matches are ranked.
    """
    wanted = clean(query)
    if len(wanted) < MIN_QUERY and not any(char > "\u3400" for char in wanted):
        return []
    matches = session.scalars(
        select(Building)
        .where(Building.active.is_(True), Building.search_key.contains(wanted, autoescape=True))
        .order_by(Building.id)
        .limit(SEARCH_CANDIDATES)
    )
    return sorted(matches, key=lambda building: _rank(building, wanted))[:limit]


def _rank(building: Building, wanted: str) -> tuple[int, int, str]:
    code, name, name_full, name_initials, *_address = [*building.search_key.split(SEPARATOR), "", "", "", ""]
    if wanted == code:
        place = 0
    elif any(part.startswith(wanted) for part in (name, name_full, name_initials)):
        place = 1
    elif any(wanted in part for part in (name, name_full, name_initials)):
        place = 2
    else:
        place = 3
    return place, len(building.name), building.name


def bind_person(session: Session, person: Person, building_id: int) -> Building:
    building = session.get(Building, building_id)
    if building is None or not building.active:
        raise LookupError(building_id)
    person.building_id = building.id
    person.building = building
    return building


def describe_unit(session: Session, t: Translator, role: str, unit_id: int) -> str:
    """"grid worker of 建设路网格" and the like."""
    level = LEVEL_OF_ROLE[Role(role)]
    if level is Level.DISTRICT:
        return t._("district center staff")
    unit = own_name(session, Unit(level, unit_id))
    if level is Level.GRID:
        return t._("grid worker of {unit}").format(unit=unit)
    return t._("staff of {unit}").format(unit=unit)
