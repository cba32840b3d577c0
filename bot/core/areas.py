"""Admins' areas: what part of the organisation an admin may act on.

A community admin's area is their community (its grids and buildings), a street admin's their street, the
district center's everything. Every admin use case (broadcasts, invites, staff removal) checks here, in the
core, whatever the keyboard offered. How units nest is ``bot.core.units``.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, false, or_, true
from sqlalchemy.orm import Session

from bot.core.roles import ADMIN_ROLES
from bot.core.units import LEVELS, ROLE_OF_LEVEL, Unit, contains, ids_within, unit_of_role, units_within
from storage.models import Level, Person, StaffRole


def admin_areas(person: Person) -> list[Unit]:
    """The areas a person administers, widest first; empty for residents and grid workers."""
    areas = {unit_of_role(role) for role in person.roles if role.role in ADMIN_ROLES}
    return sorted(areas, key=lambda unit: (LEVELS.index(unit.level), unit.id))


def in_admin_area(session: Session, person: Person, unit: Unit) -> bool:
    """Whether ``unit`` lies inside one of the areas ``person`` administers."""
    return any(contains(session, area, unit) for area in admin_areas(person))


def staff_condition(area: Unit) -> ColumnElement[bool]:
    """A condition on ``StaffRole`` rows: the role's unit lies inside ``area``."""
    if area.level is Level.DISTRICT:
        return true()
    parts = []
    for level, role in ROLE_OF_LEVEL.items():
        query = ids_within(level, area)
        if query is not None:
            parts.append(and_(StaffRole.role == role, StaffRole.unit_id.in_(query)))
    return or_(false(), *parts)


def units_page(
    session: Session, level: Level, area: Unit, page: int, per_page: int
) -> tuple[list[tuple[int, str]], bool]:
    """``(id, name)`` of the ``level`` units inside ``area``, one page, and whether more follow."""
    query = units_within(level, area)
    if query is None:
        return [], False
    rows = session.execute(query.offset(page * per_page).limit(per_page + 1)).all()
    return [(unit_id, name) for unit_id, _code, name in rows[:per_page]], len(rows) > per_page
