"""Volunteers on a request through a real engine against the Bot API simulator: the grid worker holding a
request asks the community's volunteers to help, one answers, the worker hears of it and the resident's
timeline shows who helped; a volunteer of another community is not asked."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.simulator import BotApiSimulator
from storage.models import EventKind, Person, RequestEvent, Role
from tests.e2e import running_bot
from tests.org_fixture import SmallOrg, make_small_org, staff
from tests.test_lifecycle_e2e import button
from tests.test_resident_views_e2e import file_request, text_of
from tests.volunteer_fixture import approved_volunteer

# The volunteers' notices are written for the outbox loop, which sends them at the send rate.
SLOW = 15.0


def org_with_worker(session: Session) -> SmallOrg:
    org = make_small_org(session)
    staff(session, 7001, "Wang Worker", Role.WORKER, org.grid, "en")
    return org


def volunteers_of_both_communities(org: SmallOrg) -> object:
    def enrol(session: Session) -> None:
        people = {p.external_id: p for p in session.scalars(select(Person))}
        approved_volunteer(session, people["8001"], org.community, "Zhao Helper")
        approved_volunteer(session, people["8002"], org.community2, "Qian Elsewhere")

    return enrol


async def test_worker_asks_volunteers_and_the_timeline_shows_who_helped(
    sim: tuple[BotApiSimulator, str], database_url: str, engine: str
) -> None:
    simulator, url = sim
    async with running_bot(simulator, url, database_url, engine=engine) as bot:
        org = await bot.service.database.run(org_with_worker)
        li = simulator.user(1001, "Li", language_code="en")
        wang = simulator.user(7001, "Wang", language_code="en")
        zhao = simulator.user(8001, "Zhao", language_code="en")
        qian = simulator.user(8002, "Qian", language_code="en")
        for person in (wang, zhao, qian):
            await person.send_text("/start")
            await person.wait_for(lambda m: m.text is not None)
        await bot.service.database.run(volunteers_of_both_communities(org))

        await li.send_text("/start b_DG-JS-01-B1")
        await li.wait_for_text("建设路12号院1号楼")
        await file_request(li, "Boxes block the stairwell of unit 2", hide=False)
        card = await wang.wait_for(lambda m: "R-000001" in text_of(m) and any(
            d.startswith("rq:help:") for _t, d in m.buttons()))

        await wang.press(card, button(card, "rq:help:"))
        await wang.wait_for_text("What should volunteers help with")
        await wang.send_text("Carry the boxes down to the yard")
        await wang.wait_for_text("1 volunteer was asked to help")

        call = await zhao.wait_for_text("asks volunteers to help with R-000001", SLOW)
        assert "Carry the boxes down" in text_of(call) and "Boxes block" not in text_of(call)
        assert not any("R-000001" in text_of(m) for m in qian.messages)
        help_data = button(call, "vl:hp:")
        await zhao.press(call, help_data)
        await zhao.wait_for_text("Thank you for helping with R-000001")
        await wang.wait_for_text("Volunteer Zhao Helper will help with R-000001")

        await li.send_text("/my")
        mine = await li.wait_for_text("Your requests")
        await li.press(mine, button(mine, "my:open:"))
        view = await li.wait_for_text("Timeline of R-000001")
        assert "volunteers asked to help" in text_of(view) and "a volunteer came to help: Zhao Helper" in text_of(view)

        helped = await bot.service.database.run(lambda s: [
            (e.kind, e.text) for e in s.scalars(select(RequestEvent).where(RequestEvent.kind == EventKind.HELPED))])
        assert helped == [(EventKind.HELPED, "Zhao Helper")]
