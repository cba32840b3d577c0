"""Staff invites: a single-use deep link (and its QR code) that makes whoever opens it staff of a unit."""

from __future__ import annotations

import enum
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.core.areas import admin_areas, in_admin_area
from bot.core.audit import AuditAction, record_action
from bot.core.units import LEVEL_OF_ROLE, LEVELS, Unit, ancestor, unit_by_code, units_within
from storage.models import Building, Level, Person, Role, StaffInvite, StaffRole

INVITE_PREFIX = "inv_"
WECHAT = "wechat"
INVITE_LIFETIME = timedelta(days=7)
# 24 random bytes: 32 characters of A-Za-z0-9_-, well within a deep link's 64.
TOKEN_BYTES = 24
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,60}")
# What an admin may type after /invite (in English or Chinese), and the role it names.
INVITABLE_ROLES = {
    "worker": Role.WORKER, "community": Role.COMMUNITY, "street": Role.STREET, "department": Role.DEPARTMENT,
    "网格员": Role.WORKER, "社区": Role.COMMUNITY, "街道": Role.STREET, "部门": Role.DEPARTMENT,
}


class InviteProblem(enum.StrEnum):
    UNKNOWN_UNIT = "unknown_unit"
    OUTSIDE_AREA = "outside_area"


class InviteError(Exception):
    def __init__(self, problem: InviteProblem) -> None:
        super().__init__(problem.value)
        self.problem = problem


class InviteRefusal(enum.StrEnum):
    """Why opening an invite link did not make the person staff."""

    UNKNOWN = "unknown"
    USED = "used"
    EXPIRED = "expired"


@dataclass(frozen=True)
class AcceptedInvite:
    role: Role
    unit_id: int
    inviter: Person | None


def create_invite(session: Session, admin: Person, role: Role, unit_code: str, now: datetime) -> StaffInvite:
    """A new invite for ``role`` in the unit with ``unit_code``, which must lie inside the admin's area.

    Raises ``InviteError`` for an unknown code or a unit outside the area.
    """
    level = LEVEL_OF_ROLE[role]
    unit = unit_by_code(session, level, unit_code) if level is not Level.DISTRICT else None
    if unit is None:
        raise InviteError(InviteProblem.UNKNOWN_UNIT)
    return create_invite_in(session, admin, role, unit, now)


def create_invite_in(session: Session, admin: Person, role: Role, unit: Unit, now: datetime) -> StaffInvite:
    """A new invite for ``role`` in ``unit``; ``InviteError`` unless the unit is of the role's level and lies
    inside the admin's area."""
    if unit.level is not LEVEL_OF_ROLE[role] or unit.level is Level.DISTRICT:
        raise InviteError(InviteProblem.UNKNOWN_UNIT)
    if not in_admin_area(session, admin, unit):
        raise InviteError(InviteProblem.OUTSIDE_AREA)
    invite = StaffInvite(
        token=secrets.token_urlsafe(TOKEN_BYTES), role=role, unit_id=unit.id, created_by_id=admin.id,
        created_at=now, expires_at=now + INVITE_LIFETIME,
    )
    session.add(invite)
    session.flush()
    record_action(
        session, admin, AuditAction.INVITE_CREATED, now, invite_id=invite.id, role=role.value, unit_id=unit.id
    )
    return invite


def invitable_units(session: Session, admin: Person, role: Role) -> list[Unit]:
    """The units of ``role``'s level inside the admin's areas, by code: where the admin may invite to."""
    level = LEVEL_OF_ROLE[role]
    found: dict[int, Unit] = {}
    for area in admin_areas(admin):
        query = units_within(level, area)
        if query is not None:
            for unit_id in session.scalars(query):
                found.setdefault(unit_id, Unit(level, unit_id))
    return list(found.values())


def units_of_buildings(
    session: Session, admin: Person, role: Role, buildings: list[Building]
) -> list[tuple[Unit, Building]]:
    """The units of ``role``'s level holding these buildings that the admin may invite to, each once with the
    best-matching building in it: how an admin finds a grid or community by typing a building's name, pinyin
    or code. Empty for roles outside the building tree (departments)."""
    level = LEVEL_OF_ROLE[role]
    if level not in LEVELS:
        return []
    allowed = set(invitable_units(session, admin, role))
    found: dict[Unit, Building] = {}
    for building in buildings:
        unit = ancestor(session, Unit(Level.BUILDING, building.id), level)
        if unit is not None and unit in allowed:
            found.setdefault(unit, building)
    return list(found.items())


def invitable_roles(session: Session, admin: Person) -> list[Role]:
    """The roles the admin may invite someone to (each has a unit inside the admin's area)."""
    roles = dict.fromkeys(INVITABLE_ROLES.values())
    return [role for role in roles if invitable_units(session, admin, role)]


def start_command(token: str) -> str:
    """What the new colleague can send the bot instead of opening the link."""
    return f"/start {INVITE_PREFIX}{token}"


def invites_by_link(admin: Person) -> bool:
    """Whether the admin's chat shows a Telegram link to pass on; on WeChat the invite is its QR code alone
    (and the /start message), since a t.me link is no use to a colleague who is on WeChat."""
    return admin.channel != WECHAT


def invite_link(bot_username: str, token: str) -> str:
    return f"https://t.me/{bot_username}?start={INVITE_PREFIX}{token}"


def accept_invite(session: Session, person: Person, token: str, now: datetime) -> AcceptedInvite | InviteRefusal:
    """Make ``person`` staff as the invite says, consuming it; or say why not."""
    if not TOKEN_PATTERN.fullmatch(token):
        return InviteRefusal.UNKNOWN
    invite = session.scalars(select(StaffInvite).where(StaffInvite.token == token)).first()
    if invite is None:
        return InviteRefusal.UNKNOWN
    if invite.used_at is not None:
        return InviteRefusal.USED
    if invite.expires_at <= now:
        return InviteRefusal.EXPIRED
    # Consumed with a conditional update, so two people opening the link at once cannot both get the role.
    claimed = session.execute(
        update(StaffInvite)
        .where(StaffInvite.id == invite.id, StaffInvite.used_at.is_(None))
        .values(used_by_id=person.id, used_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        return InviteRefusal.USED
    if not any(role.role is invite.role and role.unit_id == invite.unit_id for role in person.roles):
        person.roles.append(StaffRole(person_id=person.id, role=invite.role, unit_id=invite.unit_id))
    session.flush()
    record_action(
        session, person, AuditAction.INVITE_USED, now, invite_id=invite.id, role=invite.role.value,
        unit_id=invite.unit_id,
    )
    return AcceptedInvite(invite.role, invite.unit_id, session.get(Person, invite.created_by_id))

