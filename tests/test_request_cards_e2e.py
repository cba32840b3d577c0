"""The messages that show a request follow it, through a real engine against the Bot API simulator: a verdict
on a photo resolution, the cards colleagues hold after one accepts, the worker's cards after an escalation, the
resident's view after an acceptance, and what the worker hears of the resident's verdict, stars and comment."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.simulator import BotApiSimulator, SimMessage, SimUser
from storage.database import Database
from storage.models import OutboxMessage, OutboxStatus, Role
from tests.e2e import eventually, running_bot
from tests.org_fixture import SmallOrg, make_small_org, staff
from tests.test_lifecycle_e2e import JPEG, button
from tests.test_resident_views_e2e import file_request, text_of


def with_two_workers_and_community(session: Session) -> SmallOrg:
    org = make_small_org(session)
    staff(session, 7001, "Wang Worker", Role.WORKER, org.grid, "en")
    staff(session, 7004, "Qian Worker", Role.WORKER, org.grid, "en")
    staff(session, 7002, "Chen Community", Role.COMMUNITY, org.community, "en")
    return org


def has_button(message: SimMessage, prefix: str) -> bool:
    return any(data and data.startswith(prefix) for _text, data in message.buttons())


def cards_of(user: SimUser, code: str) -> list[SimMessage]:
    return [m for m in user.messages if code in text_of(m) and has_button(m, "rq:tl:")]


async def delivered_cards(database: Database, count: int) -> None:
    """Wait until ``count`` messages showing a request are recorded as delivered (so they can be edited)."""
    def recorded(session: Session) -> int:
        query = select(func.count(OutboxMessage.id)).where(
            OutboxMessage.request_id.is_not(None), OutboxMessage.status == OutboxStatus.SENT)
        return session.scalar(query) or 0

    async def enough() -> bool:
        return await database.run(recorded) >= count

    await eventually(enough)


async def meet(*users: SimUser) -> None:
    for user in users:  # staff must have written to the bot once to be reachable
        await user.send_text("/start")
        await user.wait_for(lambda m: m.text is not None)


async def resolve_with_photo(ann: SimUser, wang: SimUser) -> SimMessage:
    """Ann files, Wang accepts and resolves with a photo; returns Ann's "is it fixed?" photo message."""
    await ann.send_text("/start b_DG-JS-01-B1")
    await ann.wait_for_text("Your building")
    await file_request(ann, "Boxes block the stairwell", hide=False)
    card = await wang.wait_for(lambda m: has_button(m, "rq:acc:"))
    await wang.press(card, button(card, "rq:acc:"))
    accepted = await wang.wait_for(lambda m: has_button(m, "rq:res:"))
    await wang.press(accepted, button(accepted, "rq:res:"))
    await wang.wait_for_text("What was done")
    await wang.send_photo(JPEG, caption="Boxes removed, passage clear")
    question = await ann.wait_for(lambda m: m.photo is not None and has_button(m, "my:ok:"))
    assert "Boxes removed" in (question.caption or "")
    return question


async def test_a_resolution_with_a_photo_is_rated_and_the_worker_hears_the_stars_and_comment(
    sim: tuple[BotApiSimulator, str], database_url: str, engine: str
) -> None:
    simulator, url = sim
    async with running_bot(simulator, url, database_url, engine=engine) as bot:
        database = bot.service.database
        await database.run(with_two_workers_and_community)
        ann, wang = simulator.user(1001, "Ann", language_code="en"), simulator.user(7001, "Wang", language_code="en")
        await meet(wang, simulator.user(7004, "Qian", language_code="en"), simulator.user(7002, "Chen"))
        question = await resolve_with_photo(ann, wang)

        await ann.press(question, button(question, "my:ok:1:fixed"))
        stars = await ann.wait_for(lambda m: has_button(m, "my:star:1:4"))
        assert stars.message_id == question.message_id and "rate" in (stars.caption or "")
        await wang.wait_for_text("The resident confirmed R-000001")
        await ann.press(stars, button(stars, "my:star:1:4"))
        await wang.wait_for_text("4 of 5 stars")
        await ann.wait_for(lambda m: has_button(m, "my:skip:"))
        await ann.send_text("Quick and friendly")
        await wang.wait_for_text("Quick and friendly")


async def test_not_fixed_on_a_photo_tells_the_resident_what_next_and_the_staff_what_was_done(
    sim: tuple[BotApiSimulator, str], database_url: str, engine: str
) -> None:
    simulator, url = sim
    async with running_bot(simulator, url, database_url, engine=engine) as bot:
        database = bot.service.database
        await database.run(with_two_workers_and_community)
        ann, wang = simulator.user(1001, "Ann", language_code="en"), simulator.user(7001, "Wang", language_code="en")
        chen = simulator.user(7002, "Chen", language_code="en")
        await meet(wang, simulator.user(7004, "Qian", language_code="en"), chen)
        question = await resolve_with_photo(ann, wang)

        await ann.press(question, button(question, "my:ok:1:not_fixed"))
        answered = await ann.wait_for(lambda m: m.message_id == question.message_id and "hear back" in text_of(m))
        assert answered.buttons() == []
        await wang.wait_for_text("not fixed")
        reopened = await chen.wait_for(lambda m: "Reopened" in text_of(m))
        assert "Boxes removed, passage clear" in text_of(reopened) and "Wang Worker" in text_of(reopened)


async def test_cards_and_views_people_hold_follow_the_request(
    sim: tuple[BotApiSimulator, str], database_url: str, engine: str
) -> None:
    simulator, url = sim
    async with running_bot(simulator, url, database_url, engine=engine) as bot:
        database = bot.service.database
        await database.run(with_two_workers_and_community)
        ann = simulator.user(1001, "Ann", language_code="en")
        wang, qian = simulator.user(7001, "Wang", language_code="en"), simulator.user(7004, "Qian", language_code="en")
        await meet(wang, qian, simulator.user(7002, "Chen", language_code="en"))
        await ann.send_text("/start b_DG-JS-01-B1")
        await ann.wait_for_text("Your building")
        await file_request(ann, "Boxes block the stairwell", hide=False)
        card = await wang.wait_for(lambda m: has_button(m, "rq:acc:"))
        await qian.wait_for(lambda m: has_button(m, "rq:acc:"))
        await ann.send_text("/my")
        listed = await ann.wait_for(lambda m: has_button(m, "my:open:1"))
        await ann.press(listed, button(listed, "my:open:1"))
        view = await ann.wait_for(lambda m: has_button(m, "my:wd:1"))
        await delivered_cards(database, 3)

        # Wang accepts: his card becomes the accepted card, Qian's loses Accept, Ann's view loses Withdraw.
        await wang.press(card, button(card, "rq:acc:"))
        await qian.wait_for(lambda m: "being handled" in text_of(m) and not has_button(m, "rq:acc:"))
        await ann.wait_for(lambda m: m.message_id == view.message_id and not has_button(m, "my:wd:"))
        await wang.wait_for(lambda m: m.message_id == card.message_id and has_button(m, "rq:esc:"))
        assert len(cards_of(wang, "R-000001")) == 1, wang.transcript

        # Wang escalates: his card keeps only the timeline.
        await wang.press(card, button(card, "rq:esc:"))
        await wang.wait_for_text("Why does")
        await wang.send_text("Needs the property company")
        await wang.wait_for(lambda m: m.message_id == card.message_id and "reported up" not in text_of(m)
                            and [data for _t, data in m.buttons()] == ["rq:tl:1"])
