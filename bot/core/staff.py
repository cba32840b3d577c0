"""Staff: who answers for which unit (grid workers, community, street and district staff).

Staff are added by an administrator from the command line before they ever write to the bot; messages
raised here are for that administrator and are in English.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Community, Grid, Level, Person, Role, StaffRole, Street

TELEGRAM = "telegram"
DISTRICT_UNIT_ID = 0
TELEGRAM_ID_PATTERN = re.compile(r"[0-9]{1,20}")

ROLE_OF_LEVEL = {
    Level.GRID: Role.WORKER,
    Level.COMMUNITY: Role.COMMUNITY,
    Level.STREET: Role.STREET,
    Level.DISTRICT: Role.DISTRICT,
}
# Listed from the top of the organisation down, the way an administrator reads it.
ROLE_ORDER = (Role.DISTRICT, Role.STREET, Role.COMMUNITY, Role.WORKER)
UNIT_MODEL: dict[Role, type[Street] | type[Community] | type[Grid]] = {
    Role.STREET: Street,
    Role.COMMUNITY: Community,
    Role.WORKER: Grid,
}
UNIT_WORD = {Role.STREET: "street", Role.COMMUNITY: "community", Role.WORKER: "grid"}


class StaffError(Exception):
    """A staff change that cannot be made; the message says why, for the administrator."""


@dataclass(frozen=True)
class StaffLine:
    """One role of one person, ready to print."""

    role: Role
    unit_code: str
    unit_name: str
    person_name: str
    telegram_id: str


def _checked_telegram_id(telegram_id: str | int) -> str:
    text = str(telegram_id).strip()
    if not TELEGRAM_ID_PATTERN.fullmatch(text):
        raise StaffError(f"telegram id {text!r} is not a number; use the person's numeric Telegram user id")
    return text


def _unit_id(session: Session, role: Role, unit_code: str | None) -> int:
    """The id a role's ``unit_id`` holds for ``unit_code``, checking the code names a unit of that level."""
    if role is Role.DISTRICT:
        if unit_code:
            raise StaffError("district staff belong to no unit; leave the unit code out")
        return DISTRICT_UNIT_ID
    word = UNIT_WORD[role]
    if not unit_code:
        raise StaffError(f"a {role.value} role needs a {word} code")
    model = UNIT_MODEL[role]
    unit_id = session.scalar(select(model.id).where(model.code == unit_code))
    if unit_id is None:
        raise StaffError(f"{word} {unit_code!r} does not exist{_other_levels_hint(session, role, unit_code)}")
    return unit_id


def _other_levels_hint(session: Session, role: Role, unit_code: str) -> str:
    # "DG-KM" given for a worker is a community code: say so, the mistake is common.
    for other_role, model in UNIT_MODEL.items():
        if other_role is not role and session.scalar(select(model.id).where(model.code == unit_code)) is not None:
            return f" ({unit_code} is a {UNIT_WORD[other_role]} code, for the {other_role.value} role)"
    return ""


def _find_telegram_person(session: Session, telegram_id: str) -> Person | None:
    return session.scalars(select(Person).where(Person.channel == TELEGRAM, Person.external_id == telegram_id)).first()


def add_staff(
    session: Session, telegram_id: str, role: Role, unit_code: str | None, name: str | None, now: datetime
) -> StaffRole:
    """Give the Telegram user ``telegram_id`` a role in a unit, creating the person if they are new.

    Workers need a grid code, community and street staff their unit's code, district staff none. Adding a
    role the person already has changes nothing but the name, if one is given. Raises ``StaffError``.
    """
    external_id = _checked_telegram_id(telegram_id)
    unit_id = _unit_id(session, role, unit_code)
    person = _find_telegram_person(session, external_id)
    if person is None:
        # No locale yet: it is taken from their chat client when they first write.
        person = Person(channel=TELEGRAM, external_id=external_id, chat_id=external_id, state_data={}, created_at=now)
        session.add(person)
    if name and name.strip():
        person.display_name = name.strip()[:200]
    session.flush()
    for existing in person.roles:
        if existing.role is role and existing.unit_id == unit_id:
            return existing
    staff_role = StaffRole(person=person, role=role, unit_id=unit_id)
    session.add(staff_role)
    session.flush()
    return staff_role


def _unit_labels(session: Session, roles: list[StaffRole]) -> dict[tuple[Role, int], tuple[str, str]]:
    labels: dict[tuple[Role, int], tuple[str, str]] = {(Role.DISTRICT, DISTRICT_UNIT_ID): ("", "district")}
    for role, model in UNIT_MODEL.items():
        ids = {staff_role.unit_id for staff_role in roles if staff_role.role is role}
        if ids:
            for unit_id, code, name in session.execute(
                select(model.id, model.code, model.name).where(model.id.in_(ids))
            ):
                labels[(role, unit_id)] = (code, name)
    return labels


def list_staff(session: Session) -> list[StaffLine]:
    """Every staff role with its unit and person, from the district down, then by unit code and name."""
    roles = list(session.scalars(select(StaffRole).join(StaffRole.person)))
    labels = _unit_labels(session, roles)
    lines = []
    for staff_role in roles:
        # A unit id that names nothing is shown by number, so the stale role can still be removed.
        code, unit_name = labels.get((staff_role.role, staff_role.unit_id), (f"#{staff_role.unit_id}", "?"))
        lines.append(
            StaffLine(
                role=staff_role.role,
                unit_code=code,
                unit_name=unit_name,
                person_name=staff_role.person.display_name,
                telegram_id=staff_role.person.external_id,
            )
        )
    return sorted(lines, key=lambda line: (ROLE_ORDER.index(line.role), line.unit_code, line.person_name))


def staff_of_unit(session: Session, level: Level, unit_id: int) -> list[Person]:
    """The people who answer for a unit: a grid's workers, a community's or street's staff, or all
    district staff (``unit_id`` is ignored for the district)."""
    role = ROLE_OF_LEVEL[level]
    if role is Role.DISTRICT:
        unit_id = DISTRICT_UNIT_ID
    query = (
        select(Person)
        .join(StaffRole, StaffRole.person_id == Person.id)
        .where(StaffRole.role == role, StaffRole.unit_id == unit_id)
        .order_by(Person.id)
    )
    return list(session.scalars(query).unique())


def roles_of(person: Person) -> list[StaffRole]:
    """A person's staff roles, from the grid up to the district; empty for residents."""
    return sorted(person.roles, key=lambda staff_role: (-ROLE_ORDER.index(staff_role.role), staff_role.unit_id))
