"""Places (a market, a back alley, a square) and where a location belongs: the grid a request goes to.

A location goes to the grid whose boundary contains it; without one, to the grid of the nearest building or
place. Both are index lookups: the boundary boxes holding the point (``ix_grids_bounds``, at most
``MAX_GRID_SPAN_DEGREES`` tall, so the range read is short) and the nearest units in a small box around it
(``binding.nearest``). Coordinates are WGS-84 (see ``bot.core.geo``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.binding import nearest
from bot.core.geo import contains_point
from storage.models import Building, Grid, Place

# A grid's boundary is at most this tall and wide; the import refuses larger ones (about 2 km).
MAX_GRID_SPAN_DEGREES = 0.02
# A building or place this near a location is what the location is about.
NEAR_ENOUGH_M = 300.0
# Candidates read from each table when looking for what a location is about.
NEAREST_CANDIDATES = 3
MAX_SEARCH = 40
SEARCH_RESULTS = 8
# A place's QR code opens the bot with the payload "p_<code>".
PLACE_LINK_PREFIX = "p_"


@dataclass(frozen=True)
class Spot:
    """Where a problem is: the grid it goes to, the building or place it is about (if any) and the point."""

    grid_id: int
    building: Building | None = None
    place: Place | None = None
    latitude: float | None = None
    longitude: float | None = None


def active_place(session: Session, place_id: int) -> Place | None:
    place = session.get(Place, place_id)
    return place if place is not None and place.active else None


def place_by_code(session: Session, code: str) -> Place | None:
    return session.scalars(select(Place).where(Place.code == code, Place.active.is_(True))).first()


def search_places(session: Session, text: str) -> list[Place]:
    """Active places whose name contains ``text``, by name; at most ``SEARCH_RESULTS``."""
    words = text.strip()[:MAX_SEARCH]
    if not words:
        return []
    escaped = words.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    query = (
        select(Place)
        .where(Place.active.is_(True), Place.name.like(f"%{escaped}%", escape="\\"))
        .order_by(Place.name, Place.id)
        .limit(SEARCH_RESULTS)
    )
    return list(session.scalars(query))


def spot_of_place(place: Place) -> Spot:
    return Spot(place.grid_id, place=place, latitude=place.latitude, longitude=place.longitude)


def spot_of_building(building: Building) -> Spot:
    return Spot(building.grid_id, building=building)


def grid_containing(session: Session, latitude: float, longitude: float) -> int | None:
    """The grid whose boundary contains the point (the lowest id if boundaries overlap), or None."""
    candidates = session.execute(
        select(Grid.id, Grid.boundary)
        .where(
            Grid.min_latitude.between(latitude - MAX_GRID_SPAN_DEGREES, latitude),
            Grid.max_latitude >= latitude,
            Grid.min_longitude <= longitude,
            Grid.max_longitude >= longitude,
        )
        .order_by(Grid.id)
    )
    for grid_id, boundary in candidates:
        if boundary is not None and contains_point(boundary, latitude, longitude):
            return int(grid_id)
    return None


def locate(session: Session, latitude: float, longitude: float) -> Spot | None:
    """Where a location belongs: the grid whose boundary contains it, else the grid of the nearest building
    or place; with the building or place it is about when one of that grid lies within ``NEAR_ENOUGH_M``.
    None when no boundary contains it and no building or place is near enough to search."""
    near: list[tuple[Building | Place, float]] = [
        *nearest(session, Building, latitude, longitude, NEAREST_CANDIDATES),
        *nearest(session, Place, latitude, longitude, NEAREST_CANDIDATES),
    ]
    near.sort(key=lambda pair: pair[1])
    grid_id = grid_containing(session, latitude, longitude)
    if grid_id is None:
        if not near:
            return None
        grid_id = near[0][0].grid_id
    about = next((unit for unit, metres in near if unit.grid_id == grid_id and metres <= NEAR_ENOUGH_M), None)
    return Spot(
        grid_id,
        building=about if isinstance(about, Building) else None,
        place=about if isinstance(about, Place) else None,
        latitude=latitude,
        longitude=longitude,
    )
