"""The three-party meeting through a real engine against the Bot API simulator: community staff set the weekly
time and invite the property company; the day before, the agenda lists the community's open property requests;
after the meeting staff record attendance and a decision on a request owned by the property company with a
deadline; the day before the deadline it is reminded, reports the outcome, and the resident's timeline shows
both the decision and its outcome."""

from __future__ import annotations

import re
import time
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core import requests
from bot.core.meetings import MeetingDefaults
from bot.core.scheduler import SchedulerConfig
from bot.scheduler import run_due_jobs
from bot.simulator import BotApiSimulator
from storage.models import Category, Meeting, MeetingDecision, Person, Role
from tests.e2e import QUIET_MORNING, TickingClock, running_bot
from tests.org_fixture import make_small_org, staff
from tests.test_lifecycle_e2e import button
from tests.test_resident_views_e2e import text_of
from tests.volunteer_fixture import local

# Messages the scheduler writes wait for the outbox loop's next poll.
SLOW = 15.0
# In the small organisation "clutter" is the property company's category, "wires" is not.
CONFIG = SchedulerConfig(meetings=MeetingDefaults(property_categories=("clutter",)))


def move_to(clock: TickingClock, moment: datetime) -> None:
    clock.start, clock.origin = moment, time.monotonic()


def org_with_community_staff(session: Session) -> None:
    make_small_org(session)
    staff(session, 3001, "Chen Community", Role.COMMUNITY, 1, "en")


def file_two_requests(session: Session) -> None:
    li = session.scalars(select(Person).where(Person.external_id == "1001")).one()
    codes = {category.code: category.id for category in session.scalars(select(Category))}
    requests.file_request(session, li, requests.Draft(codes["clutter"], "Boxes block the stairwell"), QUIET_MORNING)
    requests.file_request(session, li, requests.Draft(codes["wires"], "A cable hangs from the window"), QUIET_MORNING)


async def test_agenda_decision_reminder_and_outcome_on_the_timeline(
    sim: tuple[BotApiSimulator, str], database_url: str, engine: str
) -> None:
    simulator, url = sim
    clock = TickingClock()
    async with running_bot(simulator, url, database_url, engine=engine, clock=clock,
                           meeting_categories="clutter") as bot:
        database = bot.service.database
        await database.run(org_with_community_staff)
        chen = simulator.user(3001, "Chen", language_code="en")
        pang = simulator.user(6001, "Pang", language_code="en")
        li = simulator.user(1001, "Li", language_code="en")
        await chen.send_text("/start")
        await chen.wait_for(lambda m: m.text is not None)
        await li.send_text("/start b_DG-JS-01-B1")
        await li.wait_for_text("建设路12号院1号楼")
        await database.run(file_two_requests)

        await chen.send_text("/meeting time 5 15:00")
        overview = await chen.wait_for_text("every Friday at 15:00")
        await chen.press(overview, button(overview, "mt:inv:property"))
        invitation = await chen.wait_for_text("representative of the property company")
        token = re.search(r"start=(m_[\w-]+)", text_of(invitation))
        assert token is not None
        await pang.send_text(f"/start {token.group(1)}")
        await pang.wait_for_text("You now represent the property company")

        # Thursday 15:01, the day before Friday's meeting: the agenda goes to the parties.
        await run_due_jobs(database, local(2026, 11, 26, 15, 1), CONFIG, send_from=clock())
        for person in (pang, chen):
            agenda = await person.wait_for_text("Agenda of the three-party meeting", SLOW)
            assert "R-000001" in text_of(agenda) and "R-000002" not in text_of(agenda)
            assert "Open decisions of earlier meetings:\n• none" in text_of(agenda)

        move_to(clock, local(2026, 11, 27, 16, 0))
        await chen.send_text("/meeting")
        overview = await chen.wait_for(lambda m: any(d.startswith("mt:rec:") for _label, d in m.buttons()))
        await chen.press(overview, button(overview, "mt:rec:"))
        sheet = await chen.wait_for_text("tap the parties that attended")
        await chen.press(sheet, button(sheet, "mt:att:") .rsplit(":", 1)[0] + ":property")
        await chen.wait_for(lambda m: any("✅" in label for label, _d in m.buttons()))
        await chen.press(sheet, button(sheet, "mt:dec:"))
        subjects = await chen.wait_for_text("What is the decision about?")
        assert next(label for label, _d in subjects.buttons()).startswith("R-000001")
        await chen.press(subjects, button(subjects, "mt:dr:"))
        await chen.wait_for_text("Write the decision")
        await chen.send_text("The property company clears the stairwell")
        owners = await chen.wait_for_text("Which party owns it?")
        await chen.press(owners, button(owners, "mt:ow:property"))
        await chen.wait_for_text("By when?")
        await chen.send_text("2026-12-03")
        await chen.wait_for_text("Decision recorded")
        await pang.wait_for_text("gave your party a decision")
        await li.wait_for_text("The three-party meeting decided on R-000001")

        # The day before the deadline the property company is reminded and reports the outcome.
        move_to(clock, local(2026, 12, 2, 18, 1))
        await run_due_jobs(database, clock(), CONFIG)
        reminder = await pang.wait_for_text("is due by", SLOW)
        assert "R-000001" in text_of(reminder)
        await pang.press(reminder, button(reminder, "mt:done:"))
        await pang.wait_for_text("What came of it?")
        await pang.send_text("Stairwell cleared, boxes taken away")
        await pang.wait_for_text("Outcome recorded")
        await li.wait_for_text("was carried out: Stairwell cleared")

        await li.send_text("/my")
        mine = await li.wait_for_text("Your requests")
        await li.press(mine, button(mine, "my:open:1"))
        view = await li.wait_for_text("Timeline of R-000001")
        assert "the three-party meeting decided: The property company clears the stairwell" in text_of(view)
        assert "decision was carried out: Stairwell cleared" in text_of(view)

        meeting, decision = await database.run(lambda s: (
            s.scalars(select(Meeting)).one().attended, s.scalars(select(MeetingDecision)).one().done_at))
        assert meeting == ["property"] and decision is not None
