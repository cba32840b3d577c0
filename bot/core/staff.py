"""Staff: who answers for which unit (grid workers, community, street and district staff).

Staff are added by an administrator from the command line before they ever write to the bot; messages
raised here are for that administrator and are in English.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, joinedload, lazyload

from bot.core.units import DISTRICT, LEVEL_OF_ROLE, LEVELS, ROLE_OF_LEVEL, Unit, codes_and_names, unit_by_code
from storage.models import Level, Person, Role, StaffRole

TELEGRAM = "telegram"
WECHAT = "wechat"
TELEGRAM_ID_PATTERN = re.compile(r"[0-9]{1,20}")
# An OpenID is 28 characters of A-Za-z0-9_- for an Official Account; the bounds leave room for test accounts.
OPENID_PATTERN = re.compile(r"[A-Za-z0-9_-]{6,64}")

# Listed from the top of the organisation down, the way an administrator reads it.
ROLE_ORDER = (*(ROLE_OF_LEVEL[level] for level in LEVELS if level in ROLE_OF_LEVEL), Role.DEPARTMENT)


class StaffError(Exception):
    """A staff change that cannot be made; the message says why, for the administrator."""


@dataclass(frozen=True)
class StaffLine:
    """One role of one person, ready to print."""

    role: Role
    unit_code: str
    unit_name: str
    person_name: str
    telegram_id: str  # the person's id on their channel: a Telegram user id or a WeChat OpenID
    channel: str = TELEGRAM


def _checked_id(channel: str, external_id: str | int) -> str:
    text = str(external_id).strip()
    if channel == WECHAT:
        if not OPENID_PATTERN.fullmatch(text):
            raise StaffError(f"WeChat OpenID {text!r} is not valid; copy the follower's OpenID from the console")
        return text
    if not TELEGRAM_ID_PATTERN.fullmatch(text):
        raise StaffError(f"telegram id {text!r} is not a number; use the person's numeric Telegram user id")
    return text


def _unit_id(session: Session, role: Role, unit_code: str | None) -> int:
    """The id a role's ``unit_id`` holds for ``unit_code``, checking the code names a unit of that level."""
    level = LEVEL_OF_ROLE[role]
    if level is Level.DISTRICT:
        if unit_code:
            raise StaffError("district staff belong to no unit; leave the unit code out")
        return DISTRICT.id
    if not unit_code:
        raise StaffError(f"a {role.value} role needs a {level.value} code")
    unit = unit_by_code(session, level, unit_code)
    if unit is None:
        raise StaffError(f"{level.value} {unit_code!r} does not exist{_other_levels_hint(session, level, unit_code)}")
    return unit.id


def _other_levels_hint(session: Session, level: Level, unit_code: str) -> str:
    # "DG-KM" given for a worker is a community code: say so, the mistake is common.
    for other_level in (Level.STREET, Level.COMMUNITY, Level.GRID, Level.DEPARTMENT):
        if other_level is not level and unit_by_code(session, other_level, unit_code) is not None:
            return f" ({unit_code} is a {other_level.value} code, for the {ROLE_OF_LEVEL[other_level].value} role)"
    return ""


def _find_person(session: Session, channel: str, external_id: str) -> Person | None:
    return session.scalars(select(Person).where(Person.channel == channel, Person.external_id == external_id)).first()


def add_staff(
    session: Session, external_id: str, role: Role, unit_code: str | None, name: str | None, now: datetime,
    channel: str = TELEGRAM,
) -> StaffRole:
    """Give the person ``external_id`` of ``channel`` (a Telegram user id, a WeChat OpenID) a role in a unit,
    creating the person if they are new.

    Workers need a grid code, community and street staff their unit's code, district staff none. Adding a
    role the person already has changes nothing but the name, if one is given. Raises ``StaffError``.
    """
    external_id = _checked_id(channel, external_id)
    unit_id = _unit_id(session, role, unit_code)
    person = _find_person(session, channel, external_id)
    if person is None:
        # No locale yet: it is taken from their chat client when they first write. Until then neither platform
        # lets the bot write first (Telegram refuses, WeChat's window is closed), so what is sent is held.
        person = Person(channel=channel, external_id=external_id, chat_id=external_id, state_data={}, created_at=now,
                        awaiting_first_message=True)
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




@dataclass(frozen=True)
class Follower:
    """A WeChat follower who has written to the bot: what an operator needs to make them staff."""

    openid: str
    first_contact: datetime
    locale: str | None
    is_staff: bool


def recent_followers(session: Session, limit: int) -> list[Follower]:
    """The WeChat followers who wrote to the bot, newest first. WeChat shows nobody's OpenID in its console, so
    the first admin of a WeChat-only district follows the account, writes, and is found here by the time."""
    people = session.scalars(
        select(Person).where(Person.channel == WECHAT).order_by(Person.created_at.desc(), Person.id.desc()).limit(limit)
    )
    return [Follower(person.external_id, person.created_at, person.locale, bool(person.roles)) for person in people]


def list_staff(session: Session) -> list[StaffLine]:
    """Every staff role with its unit and person, from the district down, then by unit code and name."""
    roles = list(session.scalars(select(StaffRole).join(StaffRole.person)))
    units = [Unit(LEVEL_OF_ROLE[staff_role.role], staff_role.unit_id) for staff_role in roles]
    labels = {DISTRICT: ("", "district"), **codes_and_names(session, units)}
    lines = []
    for staff_role, unit in zip(roles, units, strict=True):
        # A unit id that names nothing is shown by number, so the stale role can still be removed.
        code, unit_name = labels.get(unit, (f"#{staff_role.unit_id}", "?"))
        lines.append(
            StaffLine(
                role=staff_role.role,
                unit_code=code,
                unit_name=unit_name,
                person_name=staff_role.person.display_name,
                telegram_id=staff_role.person.external_id,
                channel=staff_role.person.channel,
            )
        )
    return sorted(lines, key=lambda line: (ROLE_ORDER.index(line.role), line.unit_code, line.person_name))


def staff_of_unit(session: Session, level: Level, unit_id: int) -> list[Person]:
    """The people who answer for a unit: a grid's workers, a community's or street's staff, or all
    district staff (``unit_id`` is ignored for the district)."""
    role = ROLE_OF_LEVEL[level]
    if role is Role.DISTRICT:
        unit_id = DISTRICT.id
    return list(session.scalars(_STAFF_OF_UNIT, {"staff_role": role, "staff_unit_id": unit_id}).unique())


# Built once: every request filed or moved reads its holders with it.
_STAFF_OF_UNIT = (
    select(Person)
    .join(StaffRole, StaffRole.person_id == Person.id)
    .where(StaffRole.role == bindparam("staff_role"), StaffRole.unit_id == bindparam("staff_unit_id"))
    .order_by(Person.id)
    # All their roles in the same statement: what each may do with a request is read from them. Their own
    # building (and its grid, community and street, joined by default) is not needed to tell them of a request.
    .options(joinedload(Person.roles), lazyload(Person.building))
)

