"""Residents rate a volunteer's service through a real engine against the Bot API simulator: the community's
staff publish a post and let the residents it serves rate it, a volunteer serves a slot, a resident of the
community opens the post's rating link and gives stars and a comment once, a resident of another community is
refused, and /myservice and the bulletin's volunteer sheet count the residents' rating beside the staff's."""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.simulator import BotApiSimulator, SimUser
from storage.models import Person, ResidentRating
from tests.e2e import TickingClock, running_bot
from tests.test_lifecycle_e2e import button
from tests.test_resident_views_e2e import text_of
from tests.test_volunteers_e2e import SLOW, move_to
from tests.volunteer_fixture import approved_volunteer, local, org_with_community_staff, volunteer_sheet


def enrol(community_id: int) -> Callable[[Session], None]:
    def run(session: Session) -> None:
        li = session.scalars(select(Person).where(Person.external_id == "8001")).one()
        approved_volunteer(session, li, community_id, "Li Volunteer")

    return run


async def bind(resident: SimUser, code: str, building: str) -> None:
    await resident.send_text(f"/start b_{code}")
    await resident.wait_for_text(building)


async def test_a_served_resident_rates_a_volunteer_once(
    sim: tuple[BotApiSimulator, str], database_url: str, engine: str
) -> None:
    simulator, url = sim
    clock = TickingClock()
    async with running_bot(simulator, url, database_url, engine=engine, clock=clock) as bot:
        org = await bot.service.database.run(org_with_community_staff)
        chen = simulator.user(3001, "陈", language_code="zh-hans")
        li = simulator.user(8001, "Li", language_code="en")
        ma = simulator.user(1002, "Ma", language_code="en")
        he = simulator.user(1003, "He", language_code="en")
        for person in (chen, li):
            await person.send_text("/start")
            await person.wait_for(lambda m: m.text is not None)
        await bot.service.database.run(enrol(org.community))
        await bind(ma, "DG-JS-01-B1", "建设路12号院1号楼")
        await bind(he, "XH-RM-01-B1", "人民路8号院2号楼")

        await chen.send_text("/post")
        for prompt, answer in (("岗位名称", "楼道清理"), ("做什么", "清理楼道杂物"), ("在哪里", "建设路12号院"),
                               ("时段", "2026-11-28 09:00-11:00")):
            await chen.wait_for_text(prompt)
            await chen.send_text(answer)
        await chen.wait_for_text("几个名额")
        await chen.send_text("2")
        published = await chen.wait_for_text("将通知1名志愿者")
        await chen.press(published, button(published, "vl:rr:"))
        marked = await chen.wait_for(lambda m: "?start=vr_" in text_of(m))
        found = re.search(r"\?start=(vr_\d+)", text_of(marked))
        assert found is not None and "受服务的居民" in text_of(marked)
        link = f"/start {found.group(1)}"

        post = await li.wait_for_text("New volunteer post", SLOW)
        await li.press(post, button(post, "vl:cl:"))
        await li.wait_for_text("You claimed")
        await ma.send_text(link)
        await ma.wait_for_text("There is no service to rate here yet")

        move_to(clock, local(2026, 11, 28, 8, 50))
        await li.send_text("/myservice")
        mine = await li.wait_for(lambda m: any((d or "").startswith("vl:in:") for _t, d in m.buttons()))
        await li.press(mine, button(mine, "vl:in:"))
        checked_in = await li.wait_for(lambda m: any((d or "").startswith("vl:out:") for _t, d in m.buttons()))
        move_to(clock, local(2026, 11, 28, 10, 20))
        await li.press(checked_in, button(checked_in, "vl:out:"))
        await li.wait_for_text("Checked out, thank you")

        move_to(clock, local(2026, 11, 28, 11, 5))
        await he.send_text(link)
        await he.wait_for_text("Only residents of 建设社区")
        await ma.send_text(link)
        choose = await ma.wait_for_text("Whom will you rate?")
        await ma.press(choose, button(choose, "vl:rs:"))
        stars = await ma.wait_for_text("How did Li Volunteer serve you")
        five = button(stars, "vl:rv:")[:-1] + "5"
        await ma.press(stars, five)
        await ma.wait_for_text("You rated Li Volunteer: ★★★★★")
        await ma.send_text("Quick and careful")
        await ma.wait_for_text("your comment on Li Volunteer is saved")
        await ma.press(choose, button(choose, "vl:rs:"))  # the list's button, pressed a second time
        again = await ma.wait_for_answer()
        assert again.show_alert and "already rated" in again.text

        await li.send_text("/myservice")
        await li.wait_for_text("Residents' rating: 5 of 5 (1 rating(s))")
        await chen.send_text("/myservice")
        summary = await chen.wait_for_text("建设社区的志愿服务")
        assert "Li Volunteer：1.3小时" in text_of(summary) and "居民评分5" in text_of(summary)

        ratings = await bot.service.database.run(
            lambda s: [(r.stars, r.comment) for r in s.scalars(select(ResidentRating))])
        assert ratings == [(5, "Quick and careful")]
        sheet = await bot.service.database.run(lambda s: volunteer_sheet(s, org.community, "2026-11"))
        assert sheet[1] == ("Volunteer", "Li Volunteer", 1.33, 1, 0, 0, None, 1, 5)
