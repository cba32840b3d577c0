"""Team chats through a real engine against the Bot API simulator: staff link their grid's group with /link,
the grid's new requests appear there as cards, staff in the group act on them and everyone else is refused,
a hidden resident stays hidden, and the group's own conversation gets no answer."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.simulator import BotApiSimulator, SimGroup, SimMessage, SimUser
from storage.models import AuditLog, Person, Request, Role, TeamChat
from tests.e2e import eventually, running_bot
from tests.org_fixture import SmallOrg, make_small_org, staff
from tests.test_lifecycle_e2e import button
from tests.test_request_cards_e2e import has_button, meet
from tests.test_resident_views_e2e import file_request, text_of

GROUP_ID = -1001234567


def with_grid_staff(session: Session) -> SmallOrg:
    org = make_small_org(session)
    staff(session, 7001, "Wang Worker", Role.WORKER, org.grid, "en")
    staff(session, 7004, "Qian Worker", Role.WORKER, org.grid, "en")
    staff(session, 7002, "Chen Community", Role.COMMUNITY, org.community, "en")
    return org


def bot_texts(group: SimGroup) -> list[str]:
    return [text_of(message) for message in group.messages]


async def linked_group(simulator: BotApiSimulator, wang: SimUser, *others: SimUser) -> SimGroup:
    group = simulator.group(GROUP_ID, "建设一网格工作群")
    group.add_bot()
    for member in (wang, *others):
        group.add_member(member)
    await group.say(wang, "/link@gridbot_test DG-JS-01")
    await group.wait_for_text("team chat of 建设一网格")
    return group


async def test_staff_link_their_group_and_others_are_refused(
    sim: tuple[BotApiSimulator, str], database_url: str, engine: str
) -> None:
    simulator, url = sim
    async with running_bot(simulator, url, database_url, engine=engine) as bot:
        await bot.service.database.run(with_grid_staff)
        wang = simulator.user(7001, "Wang", language_code="en")
        chen = simulator.user(7002, "Chen", language_code="en")
        zhao = simulator.user(1005, "Zhao", language_code="en")
        group = simulator.group(GROUP_ID, "建设一网格工作群")
        group.add_bot()
        for member in (wang, chen, zhao):
            group.add_member(member)

        await group.say(zhao, "/link DG-JS-01")
        await group.wait_for_text("Only staff of 建设一网格 can link")
        # Staff of the community above are not staff of the grid.
        await group.say(chen, "/link DG-JS-01")
        await group.wait_for_text("Only staff of 建设一网格 can link")
        await group.say(wang, "/link NO-SUCH")
        await group.wait_for_text("no grid or community with the code NO-SUCH")

        # Chatter first, then a command from the same member (handled in order): only the command is answered.
        await group.say(wang, "who is on duty today?")
        await group.say(wang, "/start")
        await group.say(wang, "/link DG-JS-01")
        await group.wait_for_text("team chat of 建设一网格")
        assert len(group.messages) == 4, bot_texts(group)

        def recorded(session: Session) -> tuple[list[tuple[str, int]], list[str]]:
            links = [(row.level.value, row.unit_id) for row in session.scalars(select(TeamChat))]
            return links, [row.action for row in session.scalars(select(AuditLog))]

        links, actions = await bot.service.database.run(recorded)
        assert links == [("grid", 1)]
        assert "team_chat.linked" in actions

        await group.say(zhao, "/unlink")
        await group.wait_for_text("Only staff of 建设一网格 can unlink")
        await group.say(wang, "/unlink")
        await group.wait_for_text("no longer the team chat of 建设一网格")
        links, actions = await bot.service.database.run(recorded)
        assert links == [] and "team_chat.unlinked" in actions


async def test_a_new_request_is_posted_to_the_group_and_only_staff_act_on_it(
    sim: tuple[BotApiSimulator, str], database_url: str, engine: str
) -> None:
    simulator, url = sim
    async with running_bot(simulator, url, database_url, engine=engine) as bot:
        await bot.service.database.run(with_grid_staff)
        ann = simulator.user(1001, "Ann Lee", language_code="en")
        wang = simulator.user(7001, "Wang", language_code="en")
        qian = simulator.user(7004, "Qian", language_code="en")
        zhao = simulator.user(1005, "Zhao", language_code="en")
        await meet(wang, qian)
        group = await linked_group(simulator, wang, qian, zhao)

        await ann.send_text("/start b_DG-JS-01-B1")
        await ann.wait_for_text("Your building")
        await file_request(ann, "Boxes block the stairwell", hide=True)
        card = await group.wait_for(lambda m: "New request R-000001" in text_of(m) and has_button(m, "rq:acc:"))
        assert "Boxes block the stairwell" in text_of(card)
        assert "Ann" not in text_of(card) and "anonymous" in text_of(card)

        # A member who is not staff presses Accept: refused, and nothing changes.
        await group.press_as(zhao, card, button(card, "rq:acc:"))
        refusal = await zhao.wait_for_answer()
        assert refusal.show_alert and refusal.text
        assert await bot.service.database.run(lambda s: s.scalars(select(Request)).one().assignee_id) is None

        # A worker of the grid accepts from the group: the group's card says who, Ann hears of it.
        await group.press_as(qian, card, button(card, "rq:acc:"))
        assert "You accepted R-000001" in ((await qian.wait_for_answer()).text or "")
        accepted = await group.wait_for(lambda m: "Qian Worker accepted R-000001" in text_of(m))
        assert not has_button(accepted, "rq:acc:") and has_button(accepted, "rq:res:")
        await ann.wait_for_text("R-000001 was accepted by Qian")

        def assignee(session: Session) -> str | None:
            request = session.scalars(select(Request)).one()
            return session.get(Person, request.assignee_id).external_id if request.assignee_id else None

        assert await bot.service.database.run(assignee) == "7004"

        # Resolving from the group asks for the text in the worker's own chat, where they can write it.
        await group.press_as(qian, accepted, button(accepted, "rq:res:"))
        await qian.wait_for_text("What was done for R-000001")
        await qian.send_text("Boxes removed")
        await ann.wait_for(lambda m: has_button(m, "my:ok:"))

        async def group_card_resolved() -> SimMessage | None:
            shown = group.find_message(card.message_id)
            return shown if shown is not None and "Boxes block" in text_of(shown) and not has_button(
                shown, "rq:res:") else None

        await eventually(group_card_resolved)
        assert all("Ann" not in text for text in bot_texts(group))
