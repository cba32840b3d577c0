"""What a newcomer meets in the chat, through a real engine against the Bot API simulator: careless input,
bad building links, finished steps, notices, invites and the monthly report."""

from __future__ import annotations

import re

from bot.simulator import BotApiSimulator, SimMessage, SimUser
from tests.e2e import running_bot
from tests.test_lifecycle_e2e import JPEG, button, with_org_and_staff

MAIN_MENU = "📝 New request"


def bot_messages_since(user: SimUser, mark: int) -> list[SimMessage]:
    return [message for message in user.messages if message.from_bot and message.seq > mark]


async def test_careless_resident_keeps_building_menu_and_photo(
    sim: tuple[BotApiSimulator, str], database_url: str, engine: str
) -> None:
    simulator, url = sim
    # A careless resident sends much, quickly: the flood throttle is not what this test is about.
    async with running_bot(simulator, url, database_url, engine=engine, throttle_messages=0) as bot:
        await bot.service.database.run(with_org_and_staff)
        ann = simulator.user(1101, "Ann", language_code="en")
        await ann.send_text("/start b_DG-JS-01-B1")
        await ann.wait_for_text("Your building is now 建设路12号院1号楼")

        # A bad building link leaves a bound resident's building and menu alone, in one sentence.
        for link in ("/start b_NOPE-999", "/start b_", "/start b_DG-JS-01-B1 and more words"):
            mark = simulator.seq
            await ann.send_text(link)
            reply = await ann.wait_for_text("Your building is still 建设路12号院1号楼")
            await bot.drain()
            assert bot_messages_since(ann, mark) == [reply]
            assert MAIN_MENU in reply.reply_buttons()
            assert "“”" not in (reply.text or "")

        # A photo sent outside any step is offered as the first photo of a new request.
        await ann.send_photo(JPEG)
        offer = await ann.wait_for_text("File a request with this photo?")
        await ann.press(offer, button(offer, "fl:with"))
        categories = await ann.wait_for(lambda m: any(d and d.startswith("fl:cat:") for _t, d in m.buttons()))
        await ann.press(categories, button(categories, "fl:cat:1"))
        await ann.wait_for_text("Describe the problem")
        assert ann.find_message(categories.message_id).buttons() == []  # type: ignore[union-attr]
        assert "Clutter in common areas" in (ann.find_message(categories.message_id).text or "")  # type: ignore[union-attr]

        # Emoji alone is no description; the words that follow find the photo kept.
        await ann.send_text("😡😡😡 !!")
        await ann.wait_for_text("describe the problem in words")
        await ann.send_text("Boxes block the stairs")
        await ann.wait_for_text("Photo 1 of 3 received")
        await ann.send_photo(JPEG)  # answering by sending takes the buttons off the prompt too
        done = await ann.wait_for_text("Photo 2 of 3 received")
        await ann.press(done, button(done, "fl:photos"))
        where = await ann.wait_for(lambda m: any(d and d.startswith("fl:loc:b") for _t, d in m.buttons()))
        assert "📍" in (where.text or "") and "📎" not in (where.text or "")
        await ann.send_location(32.9987, 112.5283)
        hide = await ann.wait_for(lambda m: any(d and d.startswith("fl:hide:0") for _t, d in m.buttons()))
        await ann.press(hide, button(hide, "fl:hide:0"))
        summary = await ann.wait_for(lambda m: any(d and d.startswith("fl:ok:") for _t, d in m.buttons()))
        assert "Photos: 2" in (summary.text or "") and "Location: shared" in (summary.text or "")
        await ann.press(summary, button(summary, "fl:ok:"))
        await ann.wait_for_text("Filed as R-000001")
        await bot.drain()
        # Every finished filing step has lost its buttons.
        assert [m.text for m in ann.messages if any(d and d.startswith("fl:") for _t, d in m.buttons())] == []

        # A location sent outside any step is offered too.
        await ann.send_location(32.9987, 112.5283)
        await ann.wait_for_text("File a request at this place?")

        # The language menu names the languages plainly.
        await ann.send_text("/lang")
        languages = await ann.wait_for_text("Choose your language")
        assert [label for label, _data in languages.buttons()] == ["English", "中文"]


async def test_notice_says_who_sends_it_and_the_summary_comes_once(
    sim: tuple[BotApiSimulator, str], database_url: str, engine: str
) -> None:
    simulator, url = sim
    async with running_bot(simulator, url, database_url, engine=engine) as bot:
        await bot.service.database.run(with_org_and_staff)
        li = simulator.user(1001, "李", language_code="zh-hans")
        chen = simulator.user(7002, "陈", language_code="zh-hans")
        await li.send_text("/start b_DG-JS-01-B1")
        await li.wait_for_text("建设路12号院1号楼")
        await chen.send_text("/start")
        await chen.wait_for(lambda m: m.text is not None)

        await chen.send_text("/broadcast")
        choice = await chen.wait_for(lambda m: any(d and d.startswith("bc:u:") for _t, d in m.buttons()))
        await chen.press(choice, button(choice, "bc:u:"))
        who = await chen.wait_for(lambda m: any(d == "bc:w:r" for _t, d in m.buttons()))
        await chen.press(who, "bc:w:r")
        await chen.wait_for(lambda m: m.message_id == who.message_id and not m.buttons())
        await chen.send_text("明天9点至12点停水")
        question = await chen.wait_for(lambda m: any(d == "bc:go" for _t, d in m.buttons()))
        assert "将发送给1人" in (question.text or "")
        mark = simulator.seq
        await chen.press(question, "bc:go")

        notice = await li.wait_for_text("明天9点至12点停水", timeout=10, since=mark)
        assert notice.text == "📢 建设社区通知\n\n明天9点至12点停水"
        summary = await chen.wait_for_text("已发送完毕", timeout=10, since=mark)
        await bot.drain()
        assert summary.message_id == question.message_id  # the progress message became the summary
        assert [m for m in bot_messages_since(chen, mark) if "已发送完毕" in (m.text or "")] == [summary]
        shown = [version.get("text") or "" for version in summary.history]
        assert any("正在发送" in text for text in shown), shown  # one recipient still sees progress
        assert "的居民的" not in (summary.text or "")


async def test_invite_by_buttons_and_chinese_words_and_report_months(
    sim: tuple[BotApiSimulator, str], database_url: str, engine: str
) -> None:
    simulator, url = sim
    async with running_bot(simulator, url, database_url, engine=engine) as bot:
        await bot.service.database.run(with_org_and_staff)
        chen = simulator.user(7002, "陈", language_code="zh-hans")
        await chen.send_text("/invite")
        roles = await chen.wait_for_text("邀请哪类工作人员")
        assert [label for label, _data in roles.buttons()] == ["网格员", "社区工作人员"]
        await chen.press(roles, button(roles, "iv:u:worker:"))
        units = await chen.wait_for(lambda m: any(d and d.startswith("iv:m:") for _t, d in m.buttons()))
        assert [label for label, _data in units.buttons()] == ["建设一网格", "建设二网格"]
        await chen.press(units, button(units, "iv:m:worker:"))
        invitation = await chen.wait_for_text("/start inv_")
        command = re.search(r"/start inv_[A-Za-z0-9_-]+", invitation.text or "")
        assert command is not None and (invitation.text or "").startswith("邀请新成员担任")

        zhou = simulator.user(7101, "周", language_code="zh-hans")
        await zhou.send_text(command.group(0))
        await zhou.wait_for_text("建设一网格")

        # Chinese role words work as the usage says.
        await chen.send_text("/invite 网格员 DG-JS-02")
        await chen.wait_for_text("建设二网格")

        # /report offers this month so far and the last one.
        await chen.send_text("/report")
        months = await chen.wait_for(lambda m: any(d and d.startswith("rp:") for _t, d in m.buttons()))
        assert [data for _label, data in months.buttons()] == ["rp:2026-11", "rp:2026-10"]
        await chen.press(months, "rp:2026-11")
        await chen.wait_for_text("2026年11月", timeout=20)
