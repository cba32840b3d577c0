"""Who counts as staff and who as an admin: the one definition every module asks.

Staff hold at least one role in the organisation. Admins are staff above the grid (community, street or
district): they administer an area, send notices to it, invite and remove staff in it and read its bulletin.
Grid workers handle requests but administer nothing.
"""

from __future__ import annotations

from storage.models import Person, Role

ADMIN_ROLES = frozenset({Role.COMMUNITY, Role.STREET, Role.DISTRICT})


def is_staff(person: Person) -> bool:
    return bool(person.roles)


def is_admin(person: Person) -> bool:
    return any(role.role in ADMIN_ROLES for role in person.roles)


def is_district_staff(person: Person) -> bool:
    return any(role.role is Role.DISTRICT for role in person.roles)
