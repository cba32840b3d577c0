"""Units of the organisation: the district, its streets, communities, grids, buildings and places.

A unit is a level and an id. The id is a row of that level's table; the district has no row and is unit 0.
How units nest (which unit lies inside which), which role answers for which level and how a unit is named
are written here once; the request ladder (``bot.core.ladder``), admins' areas (``bot.core.areas``), staff
and the bulletin build on it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple, TypeVarTuple

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from bot.i18n import Translator
from storage.models import Building, Community, Department, Grid, Level, Place, Role, StaffRole, Street

# The columns a query selects, kept through the joins ``join_up`` adds.
_Columns = TypeVarTuple("_Columns")

# From the top of the organisation down.
LEVELS = (Level.DISTRICT, Level.STREET, Level.COMMUNITY, Level.GRID, Level.BUILDING)
# Units beside the tree, and the level of their parent: a place (a market, an alley) lies in a grid, beside
# its buildings.
BESIDE_THE_TREE = {Level.PLACE: Level.GRID}


class Unit(NamedTuple):
    """One unit of the organisation.

    A tuple, so that the ``(level, unit_id)`` pair a request or a staff role stores compares equal to it.
    """

    level: Level
    id: int


# The district is unit 0: it has no row of its own.
DISTRICT = Unit(Level.DISTRICT, 0)

ROLE_OF_LEVEL = {
    Level.GRID: Role.WORKER,
    Level.COMMUNITY: Role.COMMUNITY,
    Level.STREET: Role.STREET,
    Level.DISTRICT: Role.DISTRICT,
    Level.DEPARTMENT: Role.DEPARTMENT,
}
LEVEL_OF_ROLE = {role: level for level, role in ROLE_OF_LEVEL.items()}

UnitModel = type[Street] | type[Community] | type[Grid] | type[Building] | type[Place] | type[Department]
LEVEL_MODEL: dict[Level, UnitModel] = {
    Level.STREET: Street,
    Level.COMMUNITY: Community,
    Level.GRID: Grid,
    Level.BUILDING: Building,
    Level.PLACE: Place,
    Level.DEPARTMENT: Department,
}
# The column of a unit's row that holds the id of the unit above it; a street's parent is the district.
PARENT_COLUMN: dict[Level, InstrumentedAttribute[int]] = {
    Level.BUILDING: Building.grid_id,
    Level.PLACE: Place.grid_id,
    Level.GRID: Grid.community_id,
    Level.COMMUNITY: Community.street_id,
}


def level_below(level: Level) -> Level | None:
    """The level one step down; None below buildings."""
    index = LEVELS.index(level)
    return LEVELS[index + 1] if index + 1 < len(LEVELS) else None


def _level_above(level: Level) -> Level:
    if level in BESIDE_THE_TREE:
        return BESIDE_THE_TREE[level]
    return LEVELS[LEVELS.index(level) - 1]


def levels_below(level: Level) -> tuple[Level, ...]:
    """The levels strictly inside a unit of ``level``, from the top down."""
    return LEVELS[LEVELS.index(level) + 1 :]


def unit_of_role(staff_role: StaffRole) -> Unit:
    """The unit a staff role answers for."""
    level = LEVEL_OF_ROLE[staff_role.role]
    return DISTRICT if level is Level.DISTRICT else Unit(level, staff_role.unit_id)


def parent(session: Session, unit: Unit) -> Unit | None:
    """The unit one step up; None for the district and for a unit that does not exist."""
    if unit.level is Level.DISTRICT:
        return None
    if unit.level is Level.STREET:
        return DISTRICT
    if unit.level is Level.DEPARTMENT:
        return _department_parent(session, unit)
    row = session.get(LEVEL_MODEL[unit.level], unit.id)
    if row is None:
        return None
    return Unit(_level_above(unit.level), int(getattr(row, PARENT_COLUMN[unit.level].key)))


def _department_parent(session: Session, unit: Unit) -> Unit | None:
    # A department serves one street, or with no street the whole district.
    department = session.get(Department, unit.id)
    if department is None:
        return None
    return DISTRICT if department.street_id is None else Unit(Level.STREET, department.street_id)


def departments_within(area: Unit) -> Select[int] | None:
    """The ids of the departments of ``area``: every one for the district, a street's own for a street."""
    if area.level is Level.DISTRICT:
        return select(Department.id)
    if area.level is Level.STREET:
        return select(Department.id).where(Department.street_id == area.id)
    if area.level is Level.DEPARTMENT:
        return select(Department.id).where(Department.id == area.id)
    return None


def ancestor(session: Session, unit: Unit, level: Level) -> Unit | None:
    """The unit at ``level`` that ``unit`` lies in (``unit`` itself at its own level)."""
    found: Unit | None = unit
    while found is not None and found.level is not level:
        found = parent(session, found)
    return found


def join_up(query: Select[*_Columns], start: Level, end: Level) -> Select[*_Columns]:
    """``query``, which reads ``start`` rows, joined to the rows of the units above them up to ``end``."""
    level = start
    while level is not end:
        above = _level_above(level)
        model = LEVEL_MODEL[above]
        query = query.join(model, PARENT_COLUMN[level] == model.id)
        level = above
    return query


def ids_within(level: Level, area: Unit) -> Select[int] | None:
    """A query of the ids of every ``level`` unit inside ``area`` (the area itself at its own level);
    None when no unit of that level can lie inside it (a street inside a community, the district)."""
    if level is Level.DEPARTMENT:
        return departments_within(area)
    if level is Level.DISTRICT or area.level is Level.DEPARTMENT or (
            area.level in BESIDE_THE_TREE and level is not area.level):
        return None
    model = LEVEL_MODEL[level]
    query: Select[int] = select(model.id)
    if level is area.level:
        return query.where(model.id == area.id)
    # A unit beside the tree lies in an area when its parent does.
    above = BESIDE_THE_TREE.get(level)
    if above is not None:
        parents = ids_within(above, area)
        return None if parents is None else query.where(PARENT_COLUMN[level].in_(parents))
    if LEVELS.index(level) < LEVELS.index(area.level):
        return None
    if area.level is Level.DISTRICT:
        return query
    # Join up to the units just inside the area, whose parent column names the area.
    top = LEVELS[LEVELS.index(area.level) + 1]
    return join_up(query, level, top).where(PARENT_COLUMN[top] == area.id)


def contains(session: Session, area: Unit, unit: Unit) -> bool:
    """Whether ``unit`` exists and lies inside ``area`` (or is it)."""
    if unit.level is Level.DISTRICT:
        return area.level is Level.DISTRICT and unit.id == DISTRICT.id
    query = ids_within(unit.level, area)
    if query is None:
        return False
    return session.scalar(query.where(LEVEL_MODEL[unit.level].id == unit.id).limit(1)) is not None


def exists(session: Session, unit: Unit) -> bool:
    if unit.level is Level.DISTRICT:
        return unit == DISTRICT
    return session.get(LEVEL_MODEL[unit.level], unit.id) is not None


def unit_by_code(session: Session, level: Level, code: str) -> Unit | None:
    """The unit of that level with that code, if there is one (codes are unique within a level)."""
    model = LEVEL_MODEL[level]
    unit_id = session.scalar(select(model.id).where(model.code == code))
    return Unit(level, unit_id) if unit_id is not None else None


def building_column(level: Level) -> ColumnElement[int]:
    """The id of the ``level`` unit a building lies in, as a column of buildings joined up to communities
    (``join_up(query, Level.BUILDING, Level.COMMUNITY)``); for queries over many buildings at once."""
    if level is Level.BUILDING:
        return Building.id.expression
    below = level_below(level)
    assert below is not None and below in PARENT_COLUMN, f"no column holds a {level} of a building"
    return PARENT_COLUMN[below].expression


def units_within(level: Level, area: Unit) -> Select[int, str, str] | None:
    """``(id, code, name)`` of every ``level`` unit inside ``area``, by code; None as for ``ids_within``."""
    ids = ids_within(level, area)
    if ids is None:
        return None
    model = LEVEL_MODEL[level]
    return select(model.id, model.code, model.name).where(model.id.in_(ids)).order_by(model.code)


def codes_and_names(session: Session, units: Iterable[Unit]) -> dict[Unit, tuple[str, str]]:
    """``(code, name)`` of each unit that exists, one query per level; the district has neither."""
    ids_of: dict[Level, set[int]] = {}
    for unit in units:
        if unit.level is not Level.DISTRICT:
            ids_of.setdefault(unit.level, set()).add(unit.id)
    labels: dict[Unit, tuple[str, str]] = {}
    for level, ids in ids_of.items():
        model = LEVEL_MODEL[level]
        for unit_id, code, name in session.execute(select(model.id, model.code, model.name).where(model.id.in_(ids))):
            labels[Unit(level, unit_id)] = (code, name)
    return labels


def own_name(session: Session, unit: Unit) -> str:
    """The unit's own name ("建设一网格"); empty for the district, which the reader's language names."""
    if unit.level is Level.DISTRICT:
        return ""
    # By its key, so a unit already loaded in the session (the grid of the person's building) costs no query.
    row = session.get(LEVEL_MODEL[unit.level], unit.id)
    name = getattr(row, "name", None) if row is not None else None
    return str(name) if name else "?"


def own_names(session: Session, units: Iterable[Unit]) -> dict[Unit, str]:
    """``own_name`` of many units at once: one query per level (a page of requests is held by hundreds)."""
    wanted: dict[Level, set[int]] = {}
    for unit in units:
        wanted.setdefault(unit.level, set()).add(unit.id)
    names = {DISTRICT: ""} if Level.DISTRICT in wanted else {}
    for level, ids in wanted.items():
        if level is Level.DISTRICT:
            continue
        model = LEVEL_MODEL[level]
        names.update({Unit(level, unit_id): name for unit_id, name in
                      session.execute(select(model.id, model.name).where(model.id.in_(ids)))})
    return names


def area_label(t: Translator, unit: Unit, name: str) -> str:
    """The unit as an area to address or report on, given its own name: that name, or "the whole district"."""
    return name if unit.level is not Level.DISTRICT else t._("the whole district")


def area_name(session: Session, t: Translator, unit: Unit) -> str:
    """``area_label`` with the unit's own name looked up."""
    return area_label(t, unit, own_name(session, unit))


def holder_name(session: Session, t: Translator, unit: Unit) -> str:
    """The unit as the office that holds a request: its own name, or "the district center"."""
    return own_name(session, unit) if unit.level is not Level.DISTRICT else t._("the district center")
