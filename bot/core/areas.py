"""Admins' areas: which units lie inside which, and what part of the organisation an admin may act on.

A community admin's area is their community (its grids and buildings), a street admin's their street, the
district center's everything. Every admin use case (broadcasts, invites, staff removal) checks here, in the
core, whatever the keyboard offered.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, and_, false, or_, select, true
from sqlalchemy.orm import InstrumentedAttribute, Session

from bot.i18n import Translator
from storage.models import Building, Community, Grid, Person, Role, StaffRole, Street


class Scope(enum.StrEnum):
    """A level of the organisation as units are addressed in callbacks (one letter keeps them short)."""

    DISTRICT = "d"
    STREET = "s"
    COMMUNITY = "c"
    GRID = "g"
    BUILDING = "b"


# Top to bottom.
SCOPE_ORDER = (Scope.DISTRICT, Scope.STREET, Scope.COMMUNITY, Scope.GRID, Scope.BUILDING)
UnitModel = type[Street] | type[Community] | type[Grid] | type[Building]
MODEL_OF: dict[Scope, UnitModel] = {
    Scope.STREET: Street,
    Scope.COMMUNITY: Community,
    Scope.GRID: Grid,
    Scope.BUILDING: Building,
}
SCOPE_OF_ROLE = {
    Role.DISTRICT: Scope.DISTRICT,
    Role.STREET: Scope.STREET,
    Role.COMMUNITY: Scope.COMMUNITY,
    Role.WORKER: Scope.GRID,
}
ROLE_OF_SCOPE = {scope: role for role, scope in SCOPE_OF_ROLE.items()}


@dataclass(frozen=True)
class Unit:
    """One unit of the organisation; the district is ``Unit(Scope.DISTRICT, 0)``."""

    scope: Scope
    id: int

    @classmethod
    def of_role(cls, staff_role: StaffRole) -> Unit:
        return cls(SCOPE_OF_ROLE[staff_role.role], staff_role.unit_id)


DISTRICT = Unit(Scope.DISTRICT, 0)


def _parent_column(scope: Scope) -> InstrumentedAttribute[int]:
    columns: dict[Scope, InstrumentedAttribute[int]] = {
        Scope.BUILDING: Building.grid_id,
        Scope.GRID: Grid.community_id,
        Scope.COMMUNITY: Community.street_id,
    }
    return columns[scope]


def ids_within(target: Scope, area: Unit) -> Select[tuple[int]] | None:
    """A query of the ids of every ``target``-level unit inside ``area`` (the area itself at its own level);
    None when no unit of that level can lie inside it (a street inside a community)."""
    if target is Scope.DISTRICT:
        return None
    model = MODEL_OF[target]
    query: Select[tuple[int]] = select(model.id)
    if area.scope is Scope.DISTRICT:
        return query
    if target is area.scope:
        return query.where(model.id == area.id)
    if SCOPE_ORDER.index(target) < SCOPE_ORDER.index(area.scope):
        return None
    level: Scope = target
    while True:
        parent_column = _parent_column(level)
        parent = SCOPE_ORDER[SCOPE_ORDER.index(level) - 1]
        if parent is area.scope:
            return query.where(parent_column == area.id)
        parent_model = MODEL_OF[parent]
        query = query.join(parent_model, parent_column == parent_model.id)
        level = parent


def contains(session: Session, area: Unit, unit: Unit) -> bool:
    """Whether ``unit`` exists and lies inside ``area`` (or is it)."""
    if unit.scope is Scope.DISTRICT:
        return area.scope is Scope.DISTRICT and unit.id == 0
    query = ids_within(unit.scope, area)
    if query is None:
        return False
    return session.scalar(query.where(MODEL_OF[unit.scope].id == unit.id).limit(1)) is not None


def admin_areas(person: Person) -> list[Unit]:
    """The areas a person administers, widest first; empty for residents and grid workers."""
    areas = {Unit.of_role(role) for role in person.roles if role.role is not Role.WORKER}
    return sorted(areas, key=lambda unit: (SCOPE_ORDER.index(unit.scope), unit.id))


def in_admin_area(session: Session, person: Person, unit: Unit) -> bool:
    """Whether ``unit`` lies inside one of the areas ``person`` administers."""
    return any(contains(session, area, unit) for area in admin_areas(person))


def staff_condition(area: Unit) -> ColumnElement[bool]:
    """A condition on ``StaffRole`` rows: the role's unit lies inside ``area``."""
    if area.scope is Scope.DISTRICT:
        return true()
    parts = []
    for role, scope in SCOPE_OF_ROLE.items():
        query = ids_within(scope, area) if scope is not Scope.DISTRICT else None
        if query is not None:
            parts.append(and_(StaffRole.role == role, StaffRole.unit_id.in_(query)))
    return or_(false(), *parts)


def unit_name(session: Session, t: Translator, unit: Unit) -> str:
    """The unit's own name ("建设社区"), or "the whole district"."""
    if unit.scope is Scope.DISTRICT:
        return t._("the whole district")
    name = session.scalar(select(MODEL_OF[unit.scope].name).where(MODEL_OF[unit.scope].id == unit.id))
    return name or "?"


def unit_by_code(session: Session, scope: Scope, code: str) -> Unit | None:
    """The unit of that level with that code, if there is one."""
    model = MODEL_OF[scope]
    unit_id = session.scalar(select(model.id).where(model.code == code))
    return Unit(scope, unit_id) if unit_id is not None else None


def units_page(
    session: Session, target: Scope, area: Unit, page: int, per_page: int
) -> tuple[list[tuple[int, str]], bool]:
    """``(id, name)`` of the ``target``-level units inside ``area``, one page, and whether more follow."""
    query = ids_within(target, area)
    if query is None:
        return [], False
    model = MODEL_OF[target]
    rows = session.execute(
        select(model.id, model.name)
        .where(model.id.in_(query))
        .order_by(model.code)
        .offset(page * per_page)
        .limit(per_page + 1)
    ).all()
    return [(row[0], row[1]) for row in rows[:per_page]], len(rows) > per_page


def scopes_below(area: Unit) -> tuple[Scope, ...]:
    """The levels strictly inside ``area``, from the top down."""
    return SCOPE_ORDER[SCOPE_ORDER.index(area.scope) + 1 :]
