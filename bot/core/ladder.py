"""The escalation ladder grid → community → street → district, and where a building sits on it.

A unit is a ``(level, unit_id)`` pair: ``unit_id`` is a row of that level's table, 0 for the district.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Building, Community, Grid, Level, Role, StaffRole, Street

LADDER = (Level.GRID, Level.COMMUNITY, Level.STREET, Level.DISTRICT)
DISTRICT_UNIT_ID = 0
ROLE_OF_LEVEL = {
    Level.GRID: Role.WORKER,
    Level.COMMUNITY: Role.COMMUNITY,
    Level.STREET: Role.STREET,
    Level.DISTRICT: Role.DISTRICT,
}
LEVEL_OF_ROLE = {role: level for level, role in ROLE_OF_LEVEL.items()}
UNIT_MODEL: dict[Level, type[Grid] | type[Community] | type[Street]] = {
    Level.GRID: Grid,
    Level.COMMUNITY: Community,
    Level.STREET: Street,
}

Unit = tuple[Level, int]
DISTRICT: Unit = (Level.DISTRICT, DISTRICT_UNIT_ID)


def level_above(level: Level) -> Level | None:
    index = LADDER.index(level)
    return LADDER[index + 1] if index + 1 < len(LADDER) else None


def level_below(level: Level) -> Level | None:
    index = LADDER.index(level)
    return LADDER[index - 1] if index > 0 else None


def unit_above(session: Session, level: Level, unit_id: int) -> Unit | None:
    """The unit one step up from ``(level, unit_id)``; None above the district."""
    if level is Level.GRID:
        grid = session.get(Grid, unit_id)
        return (Level.COMMUNITY, grid.community_id) if grid is not None else None
    if level is Level.COMMUNITY:
        community = session.get(Community, unit_id)
        return (Level.STREET, community.street_id) if community is not None else None
    if level is Level.STREET:
        return DISTRICT
    return None


def building_unit(building: Building, level: Level) -> int:
    """The id of the unit at ``level`` that a building belongs to."""
    if level is Level.GRID:
        return building.grid_id
    if level is Level.COMMUNITY:
        return building.grid.community_id
    if level is Level.STREET:
        return building.grid.community.street_id
    return DISTRICT_UNIT_ID


def has_staff(session: Session, level: Level, unit_id: int) -> bool:
    if level is Level.DISTRICT:
        unit_id = DISTRICT_UNIT_ID
    query = select(StaffRole.id).where(StaffRole.role == ROLE_OF_LEVEL[level], StaffRole.unit_id == unit_id)
    return session.scalar(query.limit(1)) is not None


def staffed_unit_from(session: Session, level: Level, unit_id: int) -> Unit:
    """``(level, unit_id)`` itself if somebody works there, else the first staffed unit above it.

    The district center always counts as staffed: it is the last resort and sees what nobody else holds.
    """
    unit: Unit | None = (level, unit_id)
    while unit is not None and unit[0] is not Level.DISTRICT:
        if has_staff(session, *unit):
            return unit
        unit = unit_above(session, *unit)
    return DISTRICT


def unit_exists(session: Session, level: Level, unit_id: int) -> bool:
    if level is Level.DISTRICT:
        return unit_id == DISTRICT_UNIT_ID
    return session.get(UNIT_MODEL[level], unit_id) is not None


def unit_name(session: Session, level: Level, unit_id: int) -> str:
    """The unit's own name (e.g. 建设一网格); empty for the district, which the caller names in its language."""
    if level is Level.DISTRICT:
        return ""
    model = UNIT_MODEL[level]
    name = session.scalar(select(model.name).where(model.id == unit_id))
    return name if name is not None else "?"


def sibling_units(session: Session, level: Level, unit_id: int) -> list[tuple[int, str]]:
    """Other units under the same parent (all streets for a street), as (id, name), for reassigning."""
    if level is Level.GRID:
        grid = session.get(Grid, unit_id)
        query = select(Grid.id, Grid.name).where(Grid.community_id == (grid.community_id if grid else -1))
    elif level is Level.COMMUNITY:
        community = session.get(Community, unit_id)
        query = select(Community.id, Community.name).where(
            Community.street_id == (community.street_id if community else -1)
        )
    elif level is Level.STREET:
        query = select(Street.id, Street.name)
    else:
        return []
    return [(row[0], row[1]) for row in session.execute(query.order_by(query.selected_columns[0]))
            if row[0] != unit_id]

