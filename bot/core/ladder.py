"""The request ladder grid → community → street → district: where a request is held and who is staffed there.

A request is held by a unit of the ladder, stored on it as ``(level, unit_id)`` (``bot.core.units``).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from bot.core.units import DISTRICT, LEVEL_MODEL, ROLE_OF_LEVEL, Unit, ancestor, exists, ids_within, parent
from storage.models import Building, Level, Request, StaffRole

LADDER = (Level.GRID, Level.COMMUNITY, Level.STREET, Level.DISTRICT)
# A holding unit as a plain pair, the way request rows and callbacks give it; every ``Unit`` is one.
Holder = tuple[Level, int]


def level_below(level: Level) -> Level | None:
    """The ladder's level one step down; None for grids, the bottom of the ladder."""
    index = LADDER.index(level)
    return LADDER[index - 1] if index > 0 else None


def unit_above(session: Session, level: Level, unit_id: int) -> Unit | None:
    """The unit one step up from ``(level, unit_id)``; None above the district."""
    return parent(session, Unit(level, unit_id))


def building_unit(building: Building, level: Level) -> int:
    """The id of the unit at ``level`` that a building belongs to."""
    session = object_session(building)
    assert session is not None, "a building of the organisation is read in a session"
    unit = ancestor(session, Unit(Level.BUILDING, building.id), level)
    return unit.id if unit is not None else DISTRICT.id


def request_unit(request: Request, level: Level) -> int:
    """The id of the unit at ``level`` that the grid a request is about belongs to."""
    session = object_session(request)
    assert session is not None, "a request is read in a session"
    unit = ancestor(session, Unit(Level.GRID, request.grid_id), level)
    return unit.id if unit is not None else DISTRICT.id


def has_staff(session: Session, level: Level, unit_id: int) -> bool:
    """Whether somebody works at the unit; never at a level no role answers for (a building)."""
    role = ROLE_OF_LEVEL.get(level)
    if role is None:
        return False
    if level is Level.DISTRICT:
        unit_id = DISTRICT.id
    query = select(StaffRole.id).where(StaffRole.role == role, StaffRole.unit_id == unit_id)
    return session.scalar(query.limit(1)) is not None


def staffed_unit_from(session: Session, level: Level, unit_id: int) -> Unit:
    """``(level, unit_id)`` itself if somebody works there, else the first staffed unit above it.

    The district center always counts as staffed: it is the last resort and sees what nobody else holds.
    """
    unit: Unit | None = Unit(level, unit_id)
    while unit is not None and unit.level is not Level.DISTRICT:
        if has_staff(session, *unit):
            return unit
        unit = parent(session, unit)
    return DISTRICT


def unit_exists(session: Session, level: Level, unit_id: int) -> bool:
    return exists(session, Unit(level, unit_id))


def sibling_units(session: Session, level: Level, unit_id: int) -> list[tuple[int, str]]:
    """Other units under the same parent (all streets for a street), as (id, name), for reassigning."""
    above = unit_above(session, level, unit_id) if level is not Level.DISTRICT else None
    ids = ids_within(level, above) if above is not None else None
    if ids is None:
        return []
    model = LEVEL_MODEL[level]
    query = select(model.id, model.name).where(model.id.in_(ids), model.id != unit_id).order_by(model.id)
    return [(row[0], row[1]) for row in session.execute(query)]
