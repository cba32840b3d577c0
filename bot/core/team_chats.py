"""Team chats: a grid's or community's Telegram group, linked by staff of that unit, where the unit's new
requests are posted as cards for its staff in the group to act on.

The group is a ``Person`` row of its own (external id and chat id: the group's chat id), so its cards go
through the outbox and are refreshed like anyone's; who presses a button in the group is the person who
acts, checked by the request use cases as anywhere else.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, lazyload

from bot.core.audit import AuditAction, record_action
from bot.core.messages import Sender
from bot.core.requests import RequestRefused
from bot.core.roles import is_district_staff
from bot.core.units import ROLE_OF_LEVEL, Unit, own_name, unit_by_code
from bot.i18n import N_, negotiate_locale
from storage.models import Level, Person, Request, TeamChat

# The units a group can be linked to: grid teams and community offices.
LINKABLE = (Level.GRID, Level.COMMUNITY)


def group_person(session: Session, sender: Sender, default_locale: str, now: datetime) -> Person:
    """The row standing for the group ``sender`` writes in, created the first time the bot is addressed there."""
    assert sender.group_chat_id is not None
    group = session.scalars(
        select(Person).where(Person.channel == sender.channel, Person.external_id == sender.group_chat_id)
    ).first()
    if group is None:
        group = Person(
            channel=sender.channel, external_id=sender.group_chat_id, chat_id=sender.group_chat_id,
            display_name=sender.group_title[:200], locale=negotiate_locale(sender.language_code, default_locale),
            state_data={}, created_at=now,
        )
        session.add(group)
        session.flush()
    else:
        group.display_name = sender.group_title[:200] or group.display_name
        # Addressed there again: the bot is back in a group it had been removed from.
        group.unreachable = False
    return group


def find_unit(session: Session, code: str) -> Unit:
    """The grid or community with ``code``."""
    code = code.strip()
    if not code:
        raise RequestRefused(N_("Write the code of your grid or community after /link, for example /link G01."))
    for level in LINKABLE:
        unit = unit_by_code(session, level, code)
        if unit is not None:
            return unit
    raise RequestRefused(N_("There is no grid or community with the code {code}."), code=code[:40])


def is_staff_of(person: Person, unit: Unit) -> bool:
    """Staff of exactly this unit (a team chat is the unit's own)."""
    wanted = ROLE_OF_LEVEL[unit.level]
    return any(role.role is wanted and role.unit_id == unit.id for role in person.roles)


def link(session: Session, actor: Person, group: Person, code: str, now: datetime) -> tuple[Unit, str]:
    """Link ``group`` to the unit with ``code``; staff of that unit only. Returns the unit and its name.

    A group serves one unit and a unit one group: linking again moves the link."""
    unit = find_unit(session, code)
    if not is_staff_of(actor, unit):
        raise RequestRefused(N_("Only staff of {unit} can link a group to it."), unit=own_name(session, unit))
    for old in session.scalars(select(TeamChat).where(
            (TeamChat.chat_person_id == group.id) | ((TeamChat.level == unit.level) & (TeamChat.unit_id == unit.id)))):
        session.delete(old)
    session.flush()
    session.add(TeamChat(level=unit.level, unit_id=unit.id, chat_person_id=group.id, linked_by_id=actor.id,
                         linked_at=now))
    record_action(session, actor, AuditAction.TEAM_CHAT_LINKED, now, level=unit.level.value, unit_id=unit.id,
                  chat=group.external_id)
    return unit, own_name(session, unit)


def unlink(session: Session, actor: Person, group: Person, now: datetime) -> str:
    """Unlink ``group`` from its unit; staff of that unit (or district staff). Returns the unit's name."""
    linked = session.scalars(select(TeamChat).where(TeamChat.chat_person_id == group.id)).first()
    if linked is None:
        raise RequestRefused(N_("This group is not linked to any grid or community."))
    unit = Unit(linked.level, linked.unit_id)
    if not (is_staff_of(actor, unit) or is_district_staff(actor)):
        raise RequestRefused(N_("Only staff of {unit} can unlink this group."), unit=own_name(session, unit))
    session.delete(linked)
    record_action(session, actor, AuditAction.TEAM_CHAT_UNLINKED, now, level=unit.level.value, unit_id=unit.id,
                  chat=group.external_id)
    return own_name(session, unit)


def chats_of_holder(session: Session, request: Request) -> list[Person]:
    """The group of the unit holding the request, if it has one."""
    return list(session.scalars(_CHATS_OF_UNIT, {"chat_level": request.level, "chat_unit_id": request.unit_id}))


# Built once: every request filed or moved looks for its holder's group with it.
_CHATS_OF_UNIT = (
    select(Person).join(TeamChat, TeamChat.chat_person_id == Person.id)
    .where(TeamChat.level == bindparam("chat_level"), TeamChat.unit_id == bindparam("chat_unit_id"),
           Person.unreachable.is_(False))
    # A group lives in no building: the joins of a person's building, grid, community and street find nothing.
    .options(lazyload(Person.building))
)


def unit_of_chat(session: Session, person: Person) -> Unit | None:
    """The unit whose team chat ``person`` stands for; None for a person."""
    linked = session.scalars(select(TeamChat).where(TeamChat.chat_person_id == person.id)).first()
    return Unit(linked.level, linked.unit_id) if linked is not None else None
