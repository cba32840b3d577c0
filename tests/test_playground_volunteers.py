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


def _help_texts() -> dict[str, str]:
    """The page's help line in each language, as app.js spells it."""
    import re
    from pathlib import Path

    import bot.playground

    script = (Path(bot.playground.__file__).parent / "static" / "app.js").read_text(encoding="utf-8")
    texts = {}
    for language in ("zh", "en"):
        block = script[script.index(f"  {language}: {{"):]
        help_start = block.index("help:")
        lines = block[help_start:block.index("\n  },", help_start)]
        texts[language] = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', lines))
    return texts


def test_the_help_explains_volunteers_and_meetings_with_commands_the_bot_knows() -> None:
    import re

    from handlers import build_router

    known = set(build_router().commands)
    for language, text in _help_texts().items():
        named = set(re.findall(r"/([a-z]+)", text))
        assert {"post", "myservice", "volunteers", "meeting"} <= named, language
        assert named <= known, f"{language} help names unknown commands {named - known}"
