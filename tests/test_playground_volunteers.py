"""The playground's volunteer persona: a party member of a partner unit, approved in the community admin's
community, hears of the post the admin publishes there and claims it."""

from __future__ import annotations

from datetime import timedelta

from bot.playground.app import Playground
from tests.test_lifecycle_e2e import button
from tests.test_playground import playground  # noqa: F401  (the fixture)
from tests.volunteer_fixture import SHANGHAI

STARTUP = 30.0


async def test_community_admin_publishes_a_post_the_volunteer_claims(playground: Playground) -> None:  # noqa: F811
    admin = playground.user(playground.persona("community"))
    volunteer = playground.user(playground.persona("volunteer"))
    greeting = await volunteer.wait_for_text("您的志愿服务", STARTUP, since=0)
    assert "0小时" in (greeting.text or "")
    await admin.wait_for_text("孔明社区", STARTUP, since=0)

    day = (playground.clock() + timedelta(days=2)).astimezone(SHANGHAI).date().isoformat()
    await admin.send_text("/post")
    for prompt, answer in (("岗位名称", "敬老院陪护"), ("做什么", "陪老人聊天"), ("在哪里", "孔明路12号院"),
                           ("时段", f"{day} 09:00-11:00")):
        await admin.wait_for_text(prompt)
        await admin.send_text(answer)
    await admin.wait_for_text("几个名额")
    await admin.send_text("3")
    await admin.wait_for_text("将通知1名志愿者")

    post = await volunteer.wait_for_text("孔明社区发布了新的志愿岗位", STARTUP)
    await volunteer.press(post, button(post, "vl:cl:"))
    await volunteer.wait_for_text("您已认领")
