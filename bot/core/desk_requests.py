"""The desk's list of requests: filters, text search, sorting and keyset paging, limited to the viewer's area.

The area is applied here, in the core, whatever the page asked for: an admin sees the requests whose grid lies
in one of the areas they administer (``bot.core.areas``), the same requests ``requests.covers`` lets them
open. Paging is by keyset (the sort column and the id of the last row shown), never by OFFSET, and no page
counts the whole table, so a page costs the same on the first page and the thousandth. A text search reads
the newest ``SEARCH_WINDOW`` requests that pass the other filters; dates reach further back.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, false, func, or_, select, true
from sqlalchemy.orm import Session

from bot.core import requests as core
from bot.core.areas import admin_areas
from bot.core.binding import SEARCH_CANDIDATES, find_buildings
from bot.core.ladder import has_staff, request_unit
from bot.core.requests import RequestRefused
from bot.core.roles import is_district_staff
from bot.core.units import DISTRICT, LEVEL_MODEL, LEVELS, Unit, contains, ids_within, units_within
from bot.i18n import N_
from storage.models import (
    OPEN_STATUSES,
    Building,
    Level,
    Person,
    Place,
    Request,
    RequestEvent,
    RequestPhoto,
    RequestStatus,
)

PAGE_SIZE = 50
MAX_SEARCH = 100
# The map shows at most this many requests (the newest) and draws the buildings only up to this many.
MAP_REQUESTS = 2_000
MAP_BUILDINGS = 5_000
# How many of the newest requests passing the other filters a text search reads (see ``request_page``).
SEARCH_WINDOW = 20_000
# Levels of the unit filter: an area of the viewer's one level down and further.
AREA_LEVELS = (Level.STREET, Level.COMMUNITY, Level.GRID)


class Sort(enum.StrEnum):
    NEWEST = "newest"
    OLDEST = "oldest"
    DUE = "due"  # the nearest due date first


@dataclass(frozen=True)
class Cursor:
    """Where a page starts: after the row with this sort value and id."""

    value: datetime
    request_id: int

    def encode(self) -> str:
        return f"{self.value.isoformat()}_{self.request_id}"

    @staticmethod
    def decode(text: str) -> Cursor | None:
        value, _, request_id = text.rpartition("_")
        try:
            return Cursor(datetime.fromisoformat(value), int(request_id))
        except ValueError:
            return None


@dataclass(frozen=True)
class Filters:
    status: RequestStatus | None = None
    level: Level | None = None  # the holding level
    unit: Unit | None = None  # an area inside the viewer's
    category_id: int | None = None
    overdue: bool = False
    since: datetime | None = None  # filed at or after
    until: datetime | None = None  # filed before
    photos: bool = False
    place: str = ""  # part of a building's or place's name or address
    text: str = ""  # part of the description
    building_id: int | None = None  # one building, found by ``find_spots``
    place_id: int | None = None  # one place, found by ``find_spots``
    sort: Sort = Sort.NEWEST
    after: Cursor | None = None


@dataclass(frozen=True)
class Page:
    requests: list[Request]
    next: Cursor | None


def viewer_area_condition(viewer: Person) -> ColumnElement[bool]:
    """The requests the viewer may see on the desk: those of the grids in the areas they administer."""
    areas = admin_areas(viewer)
    if DISTRICT in areas:
        return true()
    parts = [Request.grid_id.in_(grids) for area in areas if (grids := ids_within(Level.GRID, area)) is not None]
    return or_(false(), *parts)


def may_filter_by(session: Session, viewer: Person, unit: Unit) -> bool:
    """Whether ``unit`` lies in one of the viewer's areas (a forged filter gets nothing beyond them)."""
    return any(contains(session, area, unit) for area in admin_areas(viewer))


def list_conditions(session: Session, viewer: Person, filters: Filters, now: datetime) -> list[ColumnElement[bool]]:
    """What a request must meet to be in the viewer's list with ``filters`` (the page's cursor aside): inside the
    viewer's area whatever was asked for; a unit outside it is refused."""
    if filters.unit is not None and not may_filter_by(session, viewer, filters.unit):
        raise RequestRefused(N_("That unit is outside your area."))
    return _searched([viewer_area_condition(viewer), *_conditions(filters, now)], filters)


def request_page(session: Session, viewer: Person, filters: Filters, now: datetime, size: int = PAGE_SIZE) -> Page:
    """One page of the requests the viewer may see that pass ``filters``, and where the next page starts."""
    query = select(Request).where(*list_conditions(session, viewer, filters, now))
    query = _sorted_after(query, filters.sort, filters.after)
    rows = list(session.scalars(query.limit(size + 1)).unique())
    following = None
    if len(rows) > size:
        rows = rows[:size]
        last = rows[-1]
        following = Cursor(last.due_at if filters.sort is Sort.DUE else last.created_at, last.id)
    return Page(rows, following)


@dataclass(frozen=True)
class MapPoint:
    """A request on the map: where it is and what colour it gets."""

    request_id: int
    latitude: float
    longitude: float
    status: RequestStatus
    overdue: bool

    @property
    def code(self) -> str:
        return f"R-{self.request_id:06d}"


def map_points(session: Session, viewer: Person, filters: Filters, now: datetime,
               limit: int = MAP_REQUESTS) -> list[MapPoint]:
    """The newest ``limit`` requests with a location that the viewer may see and that pass ``filters``."""
    # A request about a building or place is where that is; one about a location sent, where it was sent.
    latitude = func.coalesce(Request.latitude, Building.latitude, Place.latitude)
    longitude = func.coalesce(Request.longitude, Building.longitude, Place.longitude)
    conditions = list_conditions(session, viewer, filters, now)
    query = (select(Request.id, latitude, longitude, Request.status, Request.due_at)
             .outerjoin(Building, Building.id == Request.building_id).outerjoin(Place, Place.id == Request.place_id)
             .where(*conditions, latitude.is_not(None), longitude.is_not(None))
             .order_by(Request.created_at.desc(), Request.id.desc()).limit(limit))
    return [MapPoint(request_id, float(north), float(east), status, status in OPEN_STATUSES and now > due_at)
            for request_id, north, east, status, due_at in session.execute(query)]


def area_buildings(session: Session, viewer: Person, limit: int = MAP_BUILDINGS) -> list[tuple[float, float]]:
    """Where the buildings of the viewer's areas are, for the map's background; none when there are more than
    ``limit`` (a province's hundred thousand would hide the requests)."""
    parts = [Building.id.in_(ids) for area in admin_areas(viewer)
             if (ids := ids_within(Level.BUILDING, area)) is not None]
    query = select(Building.latitude, Building.longitude).where(
        or_(false(), *parts), Building.latitude.is_not(None), Building.longitude.is_not(None)).limit(limit + 1)
    rows = [(latitude or 0.0, longitude or 0.0) for latitude, longitude in session.execute(query)]
    return rows if len(rows) <= limit else []


def _searched(conditions: list[ColumnElement[bool]], filters: Filters) -> list[ColumnElement[bool]]:
    """``conditions`` and, for a text search, the words in the description."""
    words = filters.text.strip()[:MAX_SEARCH]
    if not words:
        return conditions
    # A description is matched by LIKE, which reads every row it is asked about: only the newest SEARCH_WINDOW
    # requests that pass the other filters are searched, so a word found nowhere costs milliseconds, not a
    # scan of a million rows. Dates reach further back.
    window = select(Request.id).where(*conditions).order_by(Request.created_at.desc(), Request.id.desc())
    return [*conditions, Request.id.in_(window.limit(SEARCH_WINDOW).scalar_subquery()),
            Request.description.contains(words, autoescape=True)]


def _conditions(filters: Filters, now: datetime) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.status is not None:
        conditions.append(Request.status == filters.status)
    if filters.level is not None:
        conditions.append(Request.level == filters.level)
    if filters.unit is not None and (grids := ids_within(Level.GRID, filters.unit)) is not None:
        conditions.append(Request.grid_id.in_(grids))
    if filters.category_id is not None:
        conditions.append(Request.category_id == filters.category_id)
    if filters.overdue:
        conditions.append(and_(Request.status.in_(OPEN_STATUSES), Request.due_at < now))
    if filters.since is not None:
        conditions.append(Request.created_at >= filters.since)
    if filters.until is not None:
        conditions.append(Request.created_at < filters.until)
    if filters.photos:
        conditions.append(exists().where(RequestPhoto.request_id == Request.id, RequestPhoto.from_handler.is_(False)))
    if filters.building_id is not None:
        conditions.append(Request.building_id == filters.building_id)
    if filters.place_id is not None:
        conditions.append(Request.place_id == filters.place_id)
    if filters.place.strip() and filters.building_id is None and filters.place_id is None:
        conditions.append(_at_place(filters.place.strip()[:MAX_SEARCH]))
    return conditions


def _at_place(text: str) -> ColumnElement[bool]:
    """Requests about a building or place whose name or address contains ``text`` (a building also by its
    pinyin, initials and code, through its search key)."""
    lowered = text.lower()
    buildings = select(Building.id).where(Building.search_key.contains(lowered, autoescape=True))
    places = select(Place.id).where(or_(Place.name.contains(text, autoescape=True),
                                        Place.address.contains(text, autoescape=True)))
    return or_(Request.building_id.in_(buildings), Request.place_id.in_(places))


def _sorted_after(query: Select[Any], sort: Sort, after: Cursor | None) -> Select[Any]:
    column = Request.due_at if sort is Sort.DUE else Request.created_at
    ascending = sort is not Sort.NEWEST
    if after is not None:
        if ascending:
            query = query.where(or_(column > after.value, and_(column == after.value, Request.id > after.request_id)))
        else:
            query = query.where(or_(column < after.value, and_(column == after.value, Request.id < after.request_id)))
    if ascending:
        return query.order_by(column, Request.id)
    return query.order_by(column.desc(), Request.id.desc())


def request_for_viewer(session: Session, viewer: Person, request_id: int) -> Request:
    """The request, if the viewer's roles cover it; to anyone else it does not exist (the chat's rule)."""
    request = core.get_request(session, request_id)
    if core.view_of(session, viewer, request) is not core.View.STAFF:
        raise RequestRefused(N_("There is no request {code}."), code=request.code)
    return request


def area_units(session: Session, viewer: Person) -> list[tuple[Unit, str]]:
    """The units the filter offers the viewer, with their names: those of the two levels below each of their
    areas (a district's streets and communities, a community's grids), so the list stays short in a province;
    a unit further down can still be asked for by its id, and ``request_page`` checks it."""
    found: dict[Unit, str] = {}
    for area in admin_areas(viewer):
        below = [level for level in AREA_LEVELS if LEVELS.index(level) > LEVELS.index(area.level)]
        for level in below[:2]:
            ids = ids_within(level, area)
            if ids is None:
                continue
            model = LEVEL_MODEL[level]
            for unit_id, name in session.execute(
                    select(model.id, model.name).where(model.id.in_(ids)).order_by(model.code)):
                found.setdefault(Unit(level, unit_id), name)
    return list(found.items())


def hand_over_targets(session: Session, viewer: Person, request: Request) -> list[tuple[Unit, str]]:
    """Units with staff the viewer may hand the request to: the chat's choice (``requests.reassign_targets``)
    and, for district staff, who may hand it to any unit, also the grids of its community, the communities of
    its street and the streets. ``requests.reassign`` checks the choice again."""
    targets = {Unit(*unit): name for unit, name in core.reassign_targets(session, request)}
    if is_district_staff(viewer):
        community = Unit(Level.COMMUNITY, request_unit(request, Level.COMMUNITY))
        street = Unit(Level.STREET, request_unit(request, Level.STREET))
        for level, area in ((Level.GRID, community), (Level.COMMUNITY, street), (Level.STREET, DISTRICT)):
            query = units_within(level, area)
            for unit_id, _code, name in session.execute(query) if query is not None else ():
                if has_staff(session, level, unit_id):
                    targets.setdefault(Unit(level, unit_id), name)
    targets.pop(Unit(request.level, request.unit_id), None)
    return list(targets.items())


def watermark(session: Session) -> int:
    """The newest event's id: it grows with every filing and every change of any request, so a page compares
    it with what it last saw to know whether to reload (one index lookup)."""
    return session.scalar(select(func.max(RequestEvent.id))) or 0


def request_watermark(session: Session, request_id: int) -> int:
    """The newest event of one request (its timeline grows with every change)."""
    return session.scalar(select(func.max(RequestEvent.id)).where(RequestEvent.request_id == request_id)) or 0


# --- finding a building or place ------------------------------------------------------------------------------


class SpotKind(enum.StrEnum):
    BUILDING = "building"
    PLACE = "place"


@dataclass(frozen=True)
class FoundSpot:
    """A building or place of the viewer's area that the list can be narrowed to."""

    kind: SpotKind
    spot_id: int
    code: str
    name: str
    address: str

    @property
    def value(self) -> str:
        """How the list's query names it: ``building:12``, ``place:3``."""
        return f"{self.kind.value}:{self.spot_id}"


SPOT_RESULTS = 8


def _viewer_grids(session: Session, viewer: Person) -> set[int] | None:
    """The ids of the grids in the viewer's areas; None for the whole district."""
    areas = admin_areas(viewer)
    if DISTRICT in areas:
        return None
    return {grid_id for area in areas if (grids := ids_within(Level.GRID, area)) is not None
            for grid_id in session.scalars(grids)}


def find_spots(session: Session, viewer: Person, text: str, limit: int = SPOT_RESULTS) -> list[FoundSpot]:
    """The buildings and places of the viewer's area matching ``text``, best first: buildings by
    ``binding.find_buildings`` (Chinese, full pinyin, initials, code), then places by name, address or code."""
    grids = _viewer_grids(session, viewer)
    buildings = [FoundSpot(SpotKind.BUILDING, building.id, building.code, building.name, building.address)
                 for building in find_buildings(session, text, SEARCH_CANDIDATES)
                 if grids is None or building.grid_id in grids]
    words = text.strip()[:MAX_SEARCH]
    query = select(Place).where(Place.active.is_(True), or_(
        Place.name.contains(words, autoescape=True), Place.address.contains(words, autoescape=True),
        func.lower(Place.code) == words.lower()))
    if grids is not None:
        query = query.where(Place.grid_id.in_(grids))
    places = [FoundSpot(SpotKind.PLACE, place.id, place.code, place.name, place.address)
              for place in session.scalars(query.order_by(Place.name, Place.id).limit(limit))] if words else []
    return [*buildings, *places][:limit]


def spot_for_viewer(session: Session, viewer: Person, value: str) -> FoundSpot | None:
    """The building or place ``building:12`` / ``place:3`` names, when it lies in the viewer's area."""
    kind, _, spot_id = value.partition(":")
    if kind not in {member.value for member in SpotKind} or not spot_id.isdigit():
        return None
    found: Building | Place | None = (session.get(Building, int(spot_id)) if kind == SpotKind.BUILDING
                                      else session.get(Place, int(spot_id)))
    grids = _viewer_grids(session, viewer)
    if found is None or (grids is not None and found.grid_id not in grids):
        return None
    return FoundSpot(SpotKind(kind), found.id, found.code, found.name, found.address)
