"""Team chats in the core: the row standing for a group, one group per unit and one unit per group, and no
cards for a group the bot was removed from."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core import requests as core
from bot.core import team_chats
from bot.core.messages import Sender
from bot.core.units import Unit
from storage.database import Database
from storage.models import Level, Person, Role, StaffRole, TeamChat
from tests.org_fixture import NOW, make_small_org, staff


def sender_in(group_id: str, title: str, user_id: int = 7001) -> Sender:
    return Sender("telegram", str(user_id), str(user_id), "Wang", "en", group_chat_id=group_id, group_title=title)


async def test_a_group_is_one_row_that_follows_its_title_and_comes_back_when_addressed(database: Database) -> None:
    def scenario(session: Session) -> None:
        first = team_chats.group_person(session, sender_in("-1001", "一网格"), "zh_CN", NOW)
        assert (first.external_id, first.chat_id, first.display_name, first.locale) == (
            "-1001", "-1001", "一网格", "en")
        first.unreachable = True
        again = team_chats.group_person(session, sender_in("-1001", "一网格工作群", 7002), "zh_CN", NOW)
        assert again.id == first.id and again.display_name == "一网格工作群" and not again.unreachable
        assert session.scalars(select(Person).where(Person.external_id == "-1001")).all() == [first]

    await database.run(scenario)


async def test_one_group_per_unit_and_one_unit_per_group(database: Database) -> None:
    def scenario(session: Session) -> None:
        org = make_small_org(session)
        wang = staff(session, 7001, "Wang", Role.WORKER, org.grid, "en")
        session.add(StaffRole(person_id=wang.id, role=Role.WORKER, unit_id=org.empty_grid))
        session.flush()
        session.expire_all()
        wang = session.get_one(Person, wang.id)
        one = team_chats.group_person(session, sender_in("-1001", "A"), "zh_CN", NOW)
        two = team_chats.group_person(session, sender_in("-1002", "B"), "zh_CN", NOW)
        team_chats.link(session, wang, one, "DG-JS-01", NOW)
        team_chats.link(session, wang, two, "DG-JS-01", NOW)  # the grid's chat is now the second group
        team_chats.link(session, wang, two, "DG-JS-02", NOW)  # and that group moves to the other grid
        session.flush()
        links = {(row.level, row.unit_id, row.chat_person_id) for row in session.scalars(select(TeamChat))}
        assert links == {(Level.GRID, org.empty_grid, two.id)}
        assert team_chats.unit_of_chat(session, two) == Unit(Level.GRID, org.empty_grid)
        assert team_chats.unit_of_chat(session, one) is None

    await database.run(scenario)


async def test_no_cards_for_a_group_the_bot_was_removed_from(database: Database) -> None:
    def scenario(session: Session) -> None:
        org = make_small_org(session)
        wang = staff(session, 7001, "Wang", Role.WORKER, org.grid, "en")
        resident = Person(channel="telegram", external_id="1001", chat_id="1001", display_name="Ann", locale="en",
                          state_data={}, created_at=NOW, building_id=org.building)
        session.add(resident)
        session.flush()
        session.expire_all()
        group = team_chats.group_person(session, sender_in("-1001", "A"), "zh_CN", NOW)
        team_chats.link(session, session.get_one(Person, wang.id), group, "DG-JS-01", NOW)
        request = core.file_request(session, resident, core.Draft(1, "楼道里堆满了纸箱"), NOW).request
        assert team_chats.chats_of_holder(session, request) == [group]
        group.unreachable = True
        assert team_chats.chats_of_holder(session, request) == []

    await database.run(scenario)
