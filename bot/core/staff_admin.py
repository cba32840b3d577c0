"""Admins managing the staff of their area: listing them and taking a role away.

Removing a grid worker must not strand their open requests: each is handed over through the request use cases
(``bot.core.requests.hand_over``): back to the grid's queue when other workers remain, and up to the first
unit where somebody works when the grid is left without anyone, whose queue goes up with them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from bot.core import requests
from bot.core.areas import admin_areas, in_admin_area, staff_condition
from bot.core.audit import AuditAction, record_action
from bot.core.staff import ROLE_ORDER, staff_of_unit
from bot.core.units import unit_of_role
from storage.models import OPEN_STATUSES, Level, Person, Request, Role, StaffRole


class StaffChangeNotAllowed(Exception):
    """The role lies outside the admin's area, or is the admin's own."""


@dataclass
class Removal:
    """What removing a role changed, for telling the people concerned."""

    person: Person
    role: Role
    unit_id: int
    # The worker's open requests as handed over, each saying who hears of it.
    handed_over: list[requests.Change] = field(default_factory=list)


def staff_in_area(session: Session, admin: Person) -> list[StaffRole]:
    """Every staff role inside the admin's areas, from the top of the organisation down."""
    areas = admin_areas(admin)
    if not areas:
        return []
    roles = session.scalars(
        select(StaffRole).join(StaffRole.person).where(or_(*(staff_condition(area) for area in areas)))
    )
    return sorted(
        roles, key=lambda r: (ROLE_ORDER.index(r.role), r.unit_id, r.person.display_name, r.person_id)
    )


def may_manage(session: Session, admin: Person, staff_role: StaffRole) -> bool:
    """Whether ``admin`` may take ``staff_role`` away: inside their area, and not their own."""
    if staff_role.person_id == admin.id:
        return False
    return in_admin_area(session, admin, unit_of_role(staff_role))


def open_requests_of(session: Session, staff_role: StaffRole) -> int:
    """How many open requests removing this role would move (the confirmation says so)."""
    if staff_role.role is not Role.WORKER:
        return 0
    return len(_requests_to_move(session, staff_role.person_id, staff_role.unit_id, grid_left_empty=False))


def remove_staff_role(session: Session, admin: Person, staff_role_id: int, now: datetime) -> Removal | None:
    """Take a role away, moving a worker's open requests; None if the role is already gone.

    Raises ``StaffChangeNotAllowed`` for a role outside the admin's area or their own.
    """
    staff_role = session.get(StaffRole, staff_role_id)
    if staff_role is None:
        return None
    if not may_manage(session, admin, staff_role):
        raise StaffChangeNotAllowed(f"person {admin.id} may not remove staff role {staff_role_id}")
    person, role, unit_id = staff_role.person, staff_role.role, staff_role.unit_id
    person.roles.remove(staff_role)
    session.delete(staff_role)
    session.flush()
    removal = Removal(person=person, role=role, unit_id=unit_id)
    if role is Role.WORKER:
        grid_left_empty = not staff_of_unit(session, Level.GRID, unit_id)
        removal.handed_over = [
            requests.hand_over(session, request, now)
            for request in _requests_to_move(session, person.id, unit_id, grid_left_empty)
        ]
    record_action(
        session, admin, AuditAction.STAFF_REMOVED, now, person_id=person.id, role=role.value, unit_id=unit_id,
        requests_moved=len(removal.handed_over),
    )
    return removal


def _requests_to_move(session: Session, worker_id: int, grid_id: int, grid_left_empty: bool) -> list[Request]:
    at_this_grid = (Request.level == Level.GRID) & (Request.unit_id == grid_id)
    theirs = Request.assignee_id == worker_id
    # A grid with nobody left cannot work through its queue either: its unassigned requests go up too.
    who = or_(theirs, Request.assignee_id.is_(None)) if grid_left_empty else theirs
    query = select(Request).where(at_this_grid, who, Request.status.in_(OPEN_STATUSES)).order_by(Request.id)
    return list(session.scalars(query).unique())
