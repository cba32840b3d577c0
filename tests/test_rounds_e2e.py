"""A grid worker's rounds through a real engine against the Bot API simulator: leads solved on the spot or
reported up, a visit whose issue becomes a lead, and a night patrol with its checkpoints."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core import rounds
from bot.core.binding import EARTH_RADIUS_M
from bot.core.scheduler import SchedulerConfig
from bot.scheduler import run_due_jobs
from bot.simulator import BotApiSimulator, SimMessage, SimUser
from storage.models import Building, Category, Grid, Patrol, Person, Request, RequestStatus, Role, Visit
from tests.e2e import RunningBot, running_bot
from tests.org_fixture import NOW, make_small_org, staff

JPEG = b"\xff\xd8\xff\xe0" + b"wires over the lane" * 20 + b"\xff\xd9"


def button(message: SimMessage, prefix: str) -> str:
    for _text, data in message.buttons():
        if data and data.startswith(prefix):
            return data
    raise AssertionError(f"no {prefix!r} button on {message.text or message.caption!r}: {message.buttons()}")


def has_button(prefix: str) -> object:
    return lambda m: any(data and data.startswith(prefix) for _text, data in m.buttons())


def org_with_staff(session: Session) -> None:
    org = make_small_org(session)
    staff(session, 7001, "Wang Worker", Role.WORKER, org.grid, "en")
    staff(session, 7002, "陈社区", Role.COMMUNITY, org.community, "zh_CN")
    session.add(Person(channel="telegram", external_id="1001", chat_id="1001", display_name="Li Resident",
                       locale="en", phone="13800000001", building_id=org.building, state_data={},
                       created_at=NOW))


async def started(simulator: BotApiSimulator, user_id: int, name: str, language: str) -> SimUser:
    user = simulator.user(user_id, name, language_code=language)
    await user.send_text("/start")
    await user.wait_for(lambda m: m.text is not None)
    return user


async def lead_up_to_outcome(wang: SimUser, description: str, resident: str | None) -> SimMessage:
    """/lead for the grid's first building, first category, a description; the outcome question."""
    await wang.send_text("/lead")
    choose = await wang.wait_for(has_button("ro:b:"))
    await wang.press(choose, button(choose, "ro:b:"))
    categories = await wang.wait_for(has_button("ro:c:"))
    await wang.press(categories, button(categories, "ro:c:"))
    await wang.wait_for_text("Describe what you found")
    await wang.send_text(description)
    asked = await wang.wait_for(has_button("ro:skip"))
    if resident is None:
        await wang.press(asked, button(asked, "ro:skip"))
    else:
        await wang.send_text(resident)
    return await wang.wait_for(has_button("ro:o:"))


async def request_one(bot: RunningBot) -> Request:
    return await bot.service.database.run(lambda s: s.scalars(select(Request)).one())


async def test_a_lead_solved_on_the_spot_is_closed_and_the_resident_named_hears_of_it(
    sim: tuple[BotApiSimulator, str], database_url: str, engine: str
) -> None:
    simulator, url = sim
    async with running_bot(simulator, url, database_url, engine=engine) as bot:
        await bot.service.database.run(org_with_staff)
        wang = await started(simulator, 7001, "Wang", "en")
        li = await started(simulator, 1001, "Li", "en")

        outcome = await lead_up_to_outcome(wang, "Cartons block the stairs of unit 2", "13800000001")
        assert "Li Resident" in (outcome.text or "")
        await wang.press(outcome, button(outcome, "ro:o:spot:"))
        await wang.wait_for_text("What did you do?")
        mark = simulator.seq
        await wang.send_text("Moved the cartons with the owner")
        await wang.wait_for_text("closed as solved on the spot")
        news = await li.wait_for_text("solved it on the spot", since=mark)
        assert "R-000001" in (news.text or "") and "Moved the cartons" in (news.text or "")

        request = await request_one(bot)
        assert request.status is RequestStatus.CLOSED and request.on_the_spot
        assert request.lead_by_id is not None and request.assignee_id == request.lead_by_id
        # The resident follows it as their own: it is in /my.
        await li.send_text("/my")
        await li.wait_for_text("R-000001")


async def test_a_lead_reported_up_at_once_reaches_the_community(
    sim: tuple[BotApiSimulator, str], database_url: str, engine: str
) -> None:
    simulator, url = sim
    async with running_bot(simulator, url, database_url, engine=engine) as bot:
        await bot.service.database.run(org_with_staff)
        wang = await started(simulator, 7001, "Wang", "en")
        chen = await started(simulator, 7002, "陈", "zh-hans")

        outcome = await lead_up_to_outcome(wang, "Illegal shed on the roof", None)
        await wang.press(outcome, button(outcome, "ro:o:up:"))
        await wang.wait_for_text("Why does it need the level above?")
        mark = simulator.seq
        await wang.send_text("Needs the urban management team")
        done = await wang.wait_for_text("was reported up to")
        assert "建设社区" in (done.text or "")
        card = await chen.wait_for(lambda m: "R-000001" in (m.caption or m.text or ""), since=mark)
        assert "Needs the urban management team" in (card.text or card.caption or "")
        assert any(data and data.startswith("rq:acc:") for _t, data in card.buttons())

        request = await request_one(bot)
        assert request.status is RequestStatus.NEW and request.level.value == "community"
        # Nobody named: the worker who found it follows it, and was not sent a card about their own lead.
        assert request.resident_id == request.lead_by_id
        assert not [m for m in wang.messages if m.seq > mark and "rq:acc:" in str(m.buttons())]


async def test_a_visit_with_an_issue_found_becomes_a_lead(
    sim: tuple[BotApiSimulator, str], database_url: str, engine: str
) -> None:
    simulator, url = sim
    async with running_bot(simulator, url, database_url, engine=engine) as bot:
        await bot.service.database.run(org_with_staff)
        wang = await started(simulator, 7001, "Wang", "en")

        await wang.send_text("/visit")
        choose = await wang.wait_for(has_button("ro:b:"))
        assert "Visits today: 0 of 8" in (choose.text or "")
        await wang.press(choose, button(choose, "ro:b:"))
        await wang.wait_for_text("Which room")
        await wang.send_text("2-301")
        await wang.wait_for_text("Whom did you meet")
        await wang.send_text("Mrs Zhang")
        await wang.wait_for_text("A short note")
        await wang.send_photo(JPEG, caption="Wires hang from the balcony to charge a scooter")
        recorded = await wang.wait_for(has_button("ro:vl:"))
        assert "Visits today: 1 of 8" in (recorded.text or "")

        await wang.press(recorded, button(recorded, "ro:vl:"))
        categories = await wang.wait_for(has_button("ro:c:"))
        await wang.press(categories, button(categories, "ro:c:2"))
        await wang.wait_for_text("Describe what you found")
        await wang.send_text("Flying wire charging on the balcony of 2-301")
        asked = await wang.wait_for(has_button("ro:skip"))
        await wang.press(asked, button(asked, "ro:skip"))
        outcome = await wang.wait_for(has_button("ro:o:"))
        await wang.press(outcome, button(outcome, "ro:o:take:"))
        await wang.wait_for_text("is yours")

        def visit_and_lead(session: Session) -> tuple[Visit, Request]:
            return session.scalars(select(Visit)).one(), session.scalars(select(Request)).one()

        visit, request = await bot.service.database.run(visit_and_lead)
        assert (visit.room, visit.met, visit.photo is not None) == ("2-301", "Mrs Zhang", True)
        assert visit.request_id == request.id and request.building_id == visit.building_id
        assert request.status is RequestStatus.ACCEPTED and request.assignee_id == request.lead_by_id


def hand_distance(points: list[tuple[float, float]]) -> float:
    """Metres along the points, each leg as the arc along a meridian and then a parallel (legs here are one or
    the other)."""
    total = 0.0
    for (lat1, lon1), (lat2, lon2) in itertools.pairwise(points):
        north = math.radians(lat2 - lat1) * EARTH_RADIUS_M
        east = math.radians(lon2 - lon1) * EARTH_RADIUS_M * math.cos(math.radians(lat1))
        total += math.hypot(north, east)
    return total


async def test_a_patrol_with_three_checkpoints_ends_with_its_distance(
    sim: tuple[BotApiSimulator, str], database_url: str, engine: str
) -> None:
    simulator, url = sim
    points = [(32.9987, 112.5283), (32.9997, 112.5283), (32.9997, 112.5295)]
    async with running_bot(simulator, url, database_url, engine=engine) as bot:
        await bot.service.database.run(org_with_staff)
        wang = await started(simulator, 7001, "Wang", "en")

        await wang.send_text("/patrol")
        start = await wang.wait_for(has_button("ro:pe"))
        assert "Patrol started" in (start.text or "")
        for number, (latitude, longitude) in enumerate(points, start=1):
            await wang.send_location(latitude, longitude)
            await wang.wait_for_text(f"Checkpoint {number} recorded")
        await wang.press(start, button(start, "ro:pe"))
        summary = await wang.wait_for_text("Patrol summary")

        expected = hand_distance(points)
        assert f"{round(expected)} m" in (summary.text or "") and "3 points" in (summary.text or "")
        patrol = await bot.service.database.run(lambda s: s.scalars(select(Patrol)).one())
        assert patrol.ended_at is not None and not patrol.auto_closed
        assert abs(patrol.distance_m - expected) < 0.5


YESTERDAY = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # Wednesday 10:00 in Nanyang
DIGEST_TIME = datetime(2026, 11, 26, 1, 5, tzinfo=UTC)  # Thursday 09:05


def yesterdays_rounds(session: Session) -> None:
    """Wednesday's rounds of the one worker of 建设一网格, and some on other days that do not count."""
    org_with_staff(session)
    org = session.scalars(select(Grid).where(Grid.code == "DG-JS-01")).one()
    lin = staff(session, 7004, "Lin Community", Role.COMMUNITY, org.community_id, "en")
    session.flush()
    session.expire_all()
    wang, lin = session.get_one(Person, 1), session.get_one(Person, lin.id)
    building = session.scalars(select(Building).where(Building.grid_id == org.id)).first()
    assert building is not None and wang.display_name == "Wang Worker"
    rounds.set_visit_target(session, lin, "DG-JS-01", 5)

    codes = {category.code: category.id for category in session.scalars(select(Category))}

    def lead(code: str, outcome: rounds.LeadOutcome, at: datetime) -> None:
        category = codes[code]
        text = "" if outcome is rounds.LeadOutcome.TAKE else "已处理"
        rounds.file_lead(session, wang, rounds.LeadDraft(building.id, category, "楼道堆物"), outcome, text, at)

    lead("clutter", rounds.LeadOutcome.SPOT, YESTERDAY)
    lead("clutter", rounds.LeadOutcome.TAKE, YESTERDAY + timedelta(hours=1))
    lead("wires", rounds.LeadOutcome.UP, YESTERDAY + timedelta(hours=2))
    lead("wires", rounds.LeadOutcome.SPOT, YESTERDAY - timedelta(days=1))  # Tuesday
    for hours in (0, 3):
        rounds.record_visit(session, wang, rounds.VisitDraft(building.id), YESTERDAY + timedelta(hours=hours))
    rounds.record_visit(session, wang, rounds.VisitDraft(building.id), DIGEST_TIME - timedelta(minutes=10))  # today
    rounds.start_patrol(session, wang, YESTERDAY + timedelta(hours=11))


async def test_the_communitys_digest_reports_yesterdays_collection(
    sim: tuple[BotApiSimulator, str], database_url: str, engine: str
) -> None:
    simulator, url = sim
    async with running_bot(simulator, url, database_url, engine=engine) as bot:
        await bot.service.database.run(yesterdays_rounds)
        lin = await started(simulator, 7004, "Lin", "en")
        mark = simulator.seq

        # The digest as of Thursday 09:05, sent now by the running bot's outbox.
        await run_due_jobs(bot.service.database, DIGEST_TIME, SchedulerConfig(), send_from=bot.service.clock())

        digest = await lin.wait_for_text("Yesterday's collection in 建设社区", since=mark)
        text = digest.text or ""
        assert "Leads: 3 (Clutter in common areas 2, Dangling wires 1)" in text
        assert "Solved on the spot: 1; handed on: 2" in text
        assert "Visits: 2 of 5" in text and "Night patrols: 1" in text
