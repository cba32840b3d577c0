"""A deployment for broadcast tests and the benchmark: an organisation, an admin and many residents in one
building, and simulator users that have opened the chat with the bot (so the Bot API lets it write to them)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import insert
from sqlalchemy.orm import Session

from bot.core.broadcasts import Audience, Who, create_broadcast
from bot.core.units import Unit
from bot.simulator import BotApiSimulator
from storage.database import Database
from storage.models import Broadcast, Level, Person, Role
from tests.org_fixture import NOW, make_small_org, staff

ADMIN_ID = 500
FIRST_RESIDENT_ID = 1_000_000
NOTICE = "停水通知：明天9:00-12:00检修管道。"


@dataclass
class Deployment:
    community_id: int
    building_id: int
    resident_ids: list[int]


def add_people(session: Session, building_id: int, user_ids: range) -> None:
    """Residents in bulk: one INSERT, no ORM objects."""
    rows = [
        {
            "channel": "telegram", "external_id": str(user_id), "chat_id": str(user_id), "display_name": "",
            "locale": "zh_CN", "building_id": building_id, "unreachable": False, "state_data": {},
            "created_at": NOW,
        }
        for user_id in user_ids
    ]
    session.execute(insert(Person), rows)


async def make_deployment(database: Database, residents: int) -> Deployment:
    def build(session: Session) -> Deployment:
        org = make_small_org(session)
        staff(session, ADMIN_ID, "Admin Wang", Role.COMMUNITY, org.community, locale="en")
        ids = range(FIRST_RESIDENT_ID, FIRST_RESIDENT_ID + residents)
        add_people(session, org.building, ids)
        return Deployment(org.community, org.building, list(ids))

    return await database.run(build)


def open_chats(sim: BotApiSimulator, user_ids: list[int]) -> None:
    """Simulator users who have written to the bot before (Telegram refuses to message anyone else)."""
    for user_id in user_ids:
        sim.user(user_id, first_name=f"r{user_id}").started = True


async def queue_broadcast(database: Database, deployment: Deployment, text: str = NOTICE) -> int:
    """A confirmed broadcast to the deployment's community, as if the admin had pressed Send."""

    def create(session: Session) -> int:
        admin = session.query(Person).filter_by(external_id=str(ADMIN_ID)).one()
        audience = Audience(Unit(Level.COMMUNITY, deployment.community_id), Who.RESIDENTS)
        broadcast: Broadcast = create_broadcast(session, admin, audience, text, None, NOW)
        return broadcast.id

    return await database.run(create)


def copies_received(sim: BotApiSimulator, user_ids: list[int], text: str = NOTICE) -> dict[int, int]:
    """How many copies of ``text`` each user got."""
    users = sim.users
    return {user_id: sum(1 for m in users[user_id].messages if m.text == text) for user_id in user_ids}
