"""Every person is answered in their own language, chosen at first contact and changed with /lang."""

from __future__ import annotations

from bot.simulator import BotApiSimulator, SimMessage
from tests.e2e import running_bot
from tests.org_fixture import make_small_org


def labels(message: SimMessage) -> list[str]:
    return [text for text, _data in message.buttons()]


async def test_same_flow_in_chinese_and_english_and_a_switch_with_lang(
    sim: tuple[BotApiSimulator, str], database_url: str, engine: str
) -> None:
    simulator, url = sim
    async with running_bot(simulator, url, database_url, engine=engine) as bot:
        await bot.service.database.run(make_small_org)
        li = simulator.user(3001, "李", language_code="zh-hans")
        ann = simulator.user(3002, "Ann", language_code="en")
        for user in (li, ann):
            await user.send_text("/start b_DG-JS-01-B1")
        assert "您的楼栋" in (await li.wait_for_text("建设路12号院1号楼")).text
        assert "Your building is now" in (await ann.wait_for_text("建设路12号院1号楼")).text

        await li.send_text("/new")
        await ann.send_text("/new")
        li_categories = await li.wait_for(lambda m: bool(m.buttons()))
        ann_categories = await ann.wait_for(lambda m: bool(m.buttons()))
        assert "楼道杂物堆积" in labels(li_categories)
        assert "Clutter in common areas" in labels(ann_categories)

        await ann.send_text("/cancel")
        await ann.wait_for_text("Cancelled")
        await ann.send_text("/lang")
        choice = await ann.wait_for(lambda m: bool(m.buttons()))
        chinese = next(data for text, data in choice.buttons() if "中文" in text)
        await ann.press(choice, chinese)
        await ann.wait_for_text("中文")
        await ann.send_text("/new")
        switched = await ann.wait_for(lambda m: bool(m.buttons()))
        assert "楼道杂物堆积" in labels(switched), "the next message after /lang is in Chinese"
        assert simulator.get_commands(language_code="en") and simulator.get_commands(language_code="zh")
