"""Volunteers through a real engine against the Bot API simulator: a party member checks in and is approved,
a post with two slots is published and claimed until full, reminded, checked in and out, a no-show is marked,
the service is rated and /myservice holds the hours."""

from __future__ import annotations

import time
from datetime import datetime

from sqlalchemy import select

from bot.core.scheduler import SchedulerConfig
from bot.scheduler import run_due_jobs
from bot.simulator import BotApiSimulator, SimMessage, SimUser
from storage.models import ClaimStatus, SlotClaim
from tests.e2e import TickingClock, running_bot
from tests.test_lifecycle_e2e import button
from tests.volunteer_fixture import local, org_with_community_staff, volunteer_sheet

# Outbox rows written for its loop wait for its next poll; the post's announcements go at the send rate.
SLOW = 15.0


def move_to(clock: TickingClock, moment: datetime) -> None:
    clock.start, clock.origin = moment, time.monotonic()


async def check_in(volunteer: SimUser, chen: SimUser, name: str) -> None:
    await volunteer.send_text("/start v_DG-JS")
    await volunteer.wait_for_text("建设社区")
    await volunteer.send_text(name)
    units = await volunteer.wait_for_text("联建单位")
    await volunteer.press_text(units, "市供电公司")
    party = await volunteer.wait_for_text("党员")
    await volunteer.press(party, button(party, "vl:pm:1"))
    await volunteer.wait_for_text("将确认您的报到")
    card = await chen.wait_for_text(f"报到：{name}")
    assert "党员：是" in (card.text or "")
    await chen.press(card, button(card, "vl:ok:"))
    await volunteer.wait_for_text("报到已通过")


def claim_data(message: SimMessage, index: int) -> str:
    return [data for _text, data in message.buttons() if data and data.startswith("vl:cl:")][index]


async def test_volunteer_checks_in_claims_serves_and_is_rated(
    sim: tuple[BotApiSimulator, str], database_url: str, engine: str
) -> None:
    simulator, url = sim
    clock = TickingClock()
    async with running_bot(simulator, url, database_url, engine=engine, clock=clock) as bot:
        org = await bot.service.database.run(org_with_community_staff)
        chen = simulator.user(3001, "陈", language_code="zh-hans")
        li = simulator.user(8001, "李", language_code="zh-hans")
        wang = simulator.user(8002, "王", language_code="zh-hans")
        zhao = simulator.user(8003, "赵", language_code="zh-hans")
        await chen.send_text("/start")
        await chen.wait_for_text("建设社区工作人员")
        for volunteer, name in ((li, "李党员"), (wang, "王志愿"), (zhao, "赵志愿")):
            await check_in(volunteer, chen, name)

        await chen.send_text("/post")
        for prompt, answer in (("岗位名称", "楼道清理"), ("做什么", "清理楼道杂物"), ("在哪里", "建设路12号院"),
                               ("时段", "2026-11-28 09:00-11:00\n2026-11-28 14:00-16:00")):
            await chen.wait_for_text(prompt)
            await chen.send_text(answer)
        await chen.wait_for_text("几个名额")
        await chen.send_text("2")
        await chen.wait_for_text("将通知3名志愿者")

        posts = {person.id: await person.wait_for_text("新的志愿岗位", SLOW) for person in (li, wang, zhao)}
        for person in (li, wang):
            await person.press(posts[person.id], claim_data(posts[person.id], 0))
            await person.wait_for_text("您已认领")
        await zhao.press(posts[zhao.id], claim_data(posts[zhao.id], 0))
        full = await zhao.wait_for_answer()
        assert full.show_alert and "该时段已满" in full.text

        config = SchedulerConfig()
        await run_due_jobs(bot.service.database, local(2026, 11, 27, 20, 1), config, send_from=clock())
        for person in (li, wang):
            await person.wait_for_text("明天您在", SLOW)
        move_to(clock, local(2026, 11, 28, 8, 1))
        await run_due_jobs(bot.service.database, clock(), config)
        reminder = await li.wait_for_text("一小时后", SLOW)

        move_to(clock, local(2026, 11, 28, 8, 50))
        await li.press(reminder, button(reminder, "vl:in:"))
        checked_in = await li.wait_for_text("已签到")
        move_to(clock, local(2026, 11, 28, 10, 30))
        await li.press(checked_in, button(checked_in, "vl:out:"))
        await li.wait_for_text("已签退")

        move_to(clock, local(2026, 11, 28, 11, 1))
        await run_due_jobs(bot.service.database, clock(), config)
        over = await chen.wait_for_text("1人服务，1人未到岗", SLOW)
        await chen.press(over, button(over, "vl:rt:"))
        stars = await chen.wait_for_text("服务如何")
        await chen.press_text(stars, "★★★★")
        await chen.wait_for_text("已评价李党员")
        await chen.send_text("认真负责")
        await chen.wait_for_text("已保存")

        await li.send_text("/myservice")
        mine = await li.wait_for_text("您的志愿服务")
        assert "1.5小时" in (mine.text or "") and "★★★★" in (mine.text or "")
        await chen.send_text("/myservice")
        summary = await chen.wait_for_text("建设社区的志愿服务")
        assert "李党员：1.5小时" in (summary.text or "") and "缺岗1次" in (summary.text or "")

        claims = await bot.service.database.run(
            lambda s: {c.volunteer.name: c.status for c in s.scalars(select(SlotClaim))})
        assert claims == {"李党员": ClaimStatus.CLAIMED, "王志愿": ClaimStatus.NO_SHOW}
        sheet = await bot.service.database.run(lambda s: volunteer_sheet(s, org.community, "2026-11"))
        assert sheet == [
            ("By", "Name", "Hours", "Slots served", "No-shows", "Ratings", "Average rating", "Residents' ratings",
             "Residents' average"),
            ("Volunteer", "李党员", 1.5, 1, 0, 1, 4, 0, None),
            ("Volunteer", "王志愿", 0, 0, 1, 0, None, 0, None),
            ("Partner unit", "市供电公司", 1.5, 1, 1, 1, 4, 0, None),
        ]
