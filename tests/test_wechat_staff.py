"""WeChat staff through the WeChat simulator: a worker added by OpenID handles requests by numbered replies,
a resident cannot act as a worker by typing numbers, invitations are parametric QR codes, and followers' language
comes from the user-info API."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.clock import FrozenClock
from bot.core.messages import Delivery, SendStartCode, action_from_json, action_to_json
from bot.core.staff import WECHAT, add_staff, recent_followers
from bot.engines.telegram import ApiCall, TelegramChannel, api_call
from bot.engines.wechat import CHANNEL, PRESS
from bot.engines.wechat_api import WeChatApiError
from bot.qr import qr_png
from bot.simulator.wechat import WxMessage
from storage.models import Level, Person, Request, RequestStatus, Role, StaffRole, WeChatChat
from tests.org_fixture import make_small_org, staff
from tests.test_wechat import (
    WeChatBot,
    choices_of,
    file_by_numbers,
    reply,
    settle,
    telegram_and_wechat,
    wechat_bot,
)

WORKER = "oWorker-wang-0123456789abcd"
ADMIN = "oAdmin-chen-0123456789abcde"
LI = "oLi-resident-openid"
NEWCOMER = "oNewcomer-zhou-0123456789ab"
NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


def wechat_org(session: Session) -> None:
    """The small organisation with a grid worker and a community admin who are on WeChat only."""
    make_small_org(session)
    add_staff(session, WORKER, Role.WORKER, "DG-JS-01", "王网格", NOW, channel=WECHAT)
    add_staff(session, ADMIN, Role.COMMUNITY, "DG-JS", "陈社区", NOW, channel=WECHAT)


@pytest.fixture
def now_clock() -> FrozenClock:
    return FrozenClock(NOW)


@contextlib.asynccontextmanager
async def wechat_staff_bot(database_url: str, clock: FrozenClock) -> AsyncIterator[WeChatBot]:
    async with wechat_bot(database_url, clock, setup=wechat_org, bot_username="gridbot_test") as bot:
        bot.sim.languages.update({WORKER: "en", ADMIN: "zh_CN", LI: "zh_CN", NEWCOMER: "en"})
        yield bot


async def choices(bot: WeChatBot, openid: str) -> list[Any]:
    return await choices_of(bot.service.database, openid)


async def press(bot: WeChatBot, openid: str, prefix: str) -> list[WxMessage]:
    """Reply with the number the last numbered list shows for the button whose data starts with ``prefix``."""
    for number, (kind, label, value) in enumerate(await choices(bot, openid), 1):
        if kind == PRESS and value.startswith(prefix):
            shown = [m.content for m in bot.sim.messages(openid) if "Reply with a number" in m.content
                     or "回复数字" in m.content]
            assert shown and re.search(rf"^{number}\. {re.escape(label)}$", shown[-1], re.M)
            return await reply(bot, openid, str(number))
    raise AssertionError(f"no {prefix!r} among {await choices(bot, openid)}")


async def request_one(bot: WeChatBot) -> Request:
    request = await bot.service.database.run(lambda s: s.get(Request, 1))
    assert request is not None
    return request


async def follow(bot: WeChatBot, openid: str, scene: str = "") -> list[WxMessage]:
    before = len(bot.sim.messages(openid))
    await bot.sim.subscribe(openid, scene)
    await settle(bot)
    return bot.sim.messages(openid)[before:]


# --- a worker added by OpenID ---------------------------------------------------------------------------------


async def test_a_wechat_worker_accepts_notes_and_resolves_by_numbered_replies(
    database_url: str, now_clock: FrozenClock
) -> None:
    async with wechat_staff_bot(database_url, now_clock) as bot:
        greeting = await follow(bot, WORKER)
        assert any("grid worker of 建设一网格" in m.content for m in greeting)  # in English, from user info

        await file_by_numbers(bot, LI)
        card = await bot.sim.wait_for(WORKER, "R-000001")
        assert "Reply with a number to choose:" in card.content and "✅ Accept" in card.content

        accepted = await press(bot, WORKER, "rq:acc:1")
        assert any("You accepted R-000001" in m.content for m in accepted)
        assert (await request_one(bot)).status is RequestStatus.ACCEPTED
        await bot.sim.wait_for(LI, "王网格")  # the resident hears who took it, in Chinese

        prompt = await press(bot, WORKER, "rq:note:1")
        assert any("Write the note for R-000001" in m.content for m in prompt)
        await reply(bot, WORKER, "Called the property office")
        resolving = await press(bot, WORKER, "rq:res:1")
        assert any("What was done for R-000001" in m.content for m in resolving)
        await reply(bot, WORKER, "Boxes removed, passage clear")
        request = await request_one(bot)
        assert request.status is RequestStatus.RESOLVED
        verdict = await bot.sim.wait_for(LI, "Boxes removed")
        assert verdict.kind == "custom"


async def test_a_wechat_worker_escalates_by_numbered_replies(database_url: str, now_clock: FrozenClock) -> None:
    async with wechat_staff_bot(database_url, now_clock) as bot:
        await follow(bot, WORKER)
        await follow(bot, ADMIN)
        await file_by_numbers(bot, LI)
        await bot.sim.wait_for(WORKER, "R-000001")
        await press(bot, WORKER, "rq:esc:1")
        await reply(bot, WORKER, "Needs the property company")
        request = await request_one(bot)
        assert (request.status, request.level) == (RequestStatus.NEW, Level.COMMUNITY)
        await bot.sim.wait_for(ADMIN, "R-000001")  # the community's staff on WeChat get the card


async def test_a_resident_cannot_act_as_a_worker_by_typing_numbers(database_url: str, now_clock: FrozenClock) -> None:
    async with wechat_staff_bot(database_url, now_clock) as bot:
        await follow(bot, WORKER)
        await file_by_numbers(bot, LI)
        await bot.sim.wait_for(WORKER, "R-000001")
        worker_numbers = [str(n) for n, (_k, _l, value) in enumerate(await choices(bot, WORKER), 1)
                          if value.startswith("rq:")]
        assert worker_numbers
        for number in worker_numbers:  # the resident's numbers are the resident's own choices
            await reply(bot, LI, number)
        assert (await request_one(bot)).status is RequestStatus.NEW

        # Even a forged choice standing for the worker's button is refused by the core.
        def forge(session: Session) -> None:
            chat = session.get_one(WeChatChat, LI)
            chat.choices = [[PRESS, "✅ Accept", "rq:acc:1"]]

        await bot.service.database.run(forge)
        answers = await reply(bot, LI, "1")
        assert answers and (await request_one(bot)).status is RequestStatus.NEW
        assert not any("accepted" in m.content or "已受理" in m.content for m in answers)


async def test_cards_wait_for_a_worker_added_by_openid_until_they_follow(
    database_url: str, now_clock: FrozenClock
) -> None:
    async with wechat_staff_bot(database_url, now_clock) as bot:
        await file_by_numbers(bot, LI)
        await settle(bot)
        assert bot.sim.messages(WORKER) == [] and bot.sim.rejected == []  # held, never tried outside the window
        arrived = await follow(bot, WORKER)
        assert any("While you were away: 1 message" in m.content for m in arrived)
        assert any("R-000001" in m.content for m in arrived)
        await press(bot, WORKER, "rq:acc:1")
        assert (await request_one(bot)).status is RequestStatus.ACCEPTED


# --- invitations --------------------------------------------------------------------------------------------


def test_a_start_code_is_a_png_of_the_deep_link_on_telegram_and_survives_the_outbox() -> None:
    action = SendStartCode("inv_abc", "https://t.me/gridbot_test?start=inv_abc", "invite-1.png", "Scan", 604800)
    call = api_call(42, action)
    assert call.method == "sendDocument" and call.params["caption"] == "Scan"
    assert call.upload is not None and call.upload.file_name == "invite-1.png"
    assert call.upload.content == qr_png("https://t.me/gridbot_test?start=inv_abc")
    assert action_from_json(action_to_json(action)) == action


async def test_an_invitation_is_a_wechat_qr_code_whose_scan_makes_the_scanner_staff(
    database_url: str, now_clock: FrozenClock
) -> None:
    async with wechat_staff_bot(database_url, now_clock) as bot:
        await follow(bot, ADMIN)
        await reply(bot, ADMIN, "/invite")
        await press(bot, ADMIN, "iv:u:worker:")
        found = await reply(bot, ADMIN, "建设路20")  # typed: the grid of 建设路20号院3号楼
        assert any("1. 建设二网格 · 建设路20号院3号楼" in m.content for m in found)
        await press(bot, ADMIN, "iv:m:worker:")
        code = bot.sim.code_for("inv_")
        assert code.expire_seconds == 7 * 24 * 3600  # a temporary code, as long as the invite lives
        received = bot.sim.messages(ADMIN)
        text = next(m.content for m in received if "/start inv_" in m.content)
        assert "https://t.me/" not in text and "微信" in text
        image = next(m for m in received if m.kind == "image")
        assert bot.sim.media[image.data["media_id"]] == qr_png(code.url)  # the code WeChat made, drawn

        asked = await follow(bot, NEWCOMER, code.scene)  # scanned by someone not yet following
        # WeChat gives no follower's name, so the newcomer is asked for it (in English, from user info).
        assert any("What name should colleagues and residents see?" in m.content for m in asked)
        welcome = await reply(bot, NEWCOMER, "Zhou Ming")
        assert any("Welcome aboard" in m.content and "建设二网格" in m.content for m in welcome)

        def roles(session: Session) -> list[tuple[Role, str]]:
            query = select(StaffRole.role, Person.channel).join(Person).where(Person.external_id == NEWCOMER)
            return [(role, channel) for role, channel in session.execute(query)]

        assert await bot.service.database.run(roles) == [(Role.WORKER, CHANNEL)]
        await bot.sim.wait_for(ADMIN, "Zhou Ming已接受您的邀请")

        # The same code scanned again (by someone already following) is used up.
        again = await bot.sim.scan("oSomeone-else-0123456789abc", code.scene)
        assert again.status == 200
        await settle(bot)
        assert "already been used" in bot.sim.messages("oSomeone-else-0123456789abc")[-1].content or \
            "已被使用" in bot.sim.messages("oSomeone-else-0123456789abc")[-1].content


# --- language -----------------------------------------------------------------------------------------------


async def test_a_followers_language_comes_from_user_info_once(database_url: str, now_clock: FrozenClock) -> None:
    async with wechat_staff_bot(database_url, now_clock) as bot:
        bot.sim.languages["oTourist-en-0123456789abcde"] = "en"
        answers = await follow(bot, "oTourist-en-0123456789abcde")
        assert any("Welcome to the community service bot" in m.content for m in answers)
        calls = bot.sim.user_info_calls
        await reply(bot, "oTourist-en-0123456789abcde", "/help")
        assert bot.sim.user_info_calls == calls  # asked once, at the first message

        answers = await follow(bot, "oNo-language-0123456789abcd")  # no language given: the default
        assert any("欢迎" in m.content for m in answers)

        query = select(Person.external_id, Person.locale).where(Person.channel == CHANNEL)
        locales = await bot.service.database.run(lambda s: {openid: locale for openid, locale in s.execute(query)})
        assert locales["oTourist-en-0123456789abcde"] == "en" and locales["oNo-language-0123456789abcd"] == "zh_CN"

        # How an operator finds a follower's OpenID to make them staff: newest first.
        followers = await bot.service.database.run(lambda s: recent_followers(s, limit=2))
        assert [(f.openid, f.locale, f.is_staff) for f in followers] == [
            ("oNo-language-0123456789abcd", "zh_CN", False), ("oTourist-en-0123456789abcde", "en", False)]


class RecordingClient:
    """A Bot API client that records its calls and answers each with a message."""

    def __init__(self) -> None:
        self.calls: list[ApiCall] = []

    async def call(self, call: ApiCall, timeout: float | None = None) -> Any:
        self.calls.append(call)
        return {"message_id": len(self.calls)}

    def failure(self, error: Exception) -> Delivery | None:
        return None

    async def close(self) -> None:
        return None


class WeChatCodesStub:
    def __init__(self, fails: bool = False) -> None:
        self.fails = fails
        self.made: list[tuple[str, int | None]] = []

    async def create_qr(self, scene: str, expire_seconds: int | None) -> str:
        if self.fails:
            raise WeChatApiError(-1, "system busy")
        self.made.append((scene, expire_seconds))
        return f"http://weixin.qq.com/q/{scene}"


async def test_an_admin_on_telegram_also_gets_the_wechat_code_when_wechat_is_served_beside() -> None:
    action = SendStartCode("inv_abc", "https://t.me/gridbot_test?start=inv_abc", "invite-1.png", "Scan", 604800,
                           "For a colleague on WeChat")
    client, codes = RecordingClient(), WeChatCodesStub()
    assert (await TelegramChannel(client, codes).perform("42", action)).ok
    assert [call.method for call in client.calls] == ["sendDocument", "sendDocument"]
    wechat = client.calls[1]
    assert wechat.params["caption"] == "For a colleague on WeChat" and wechat.upload is not None
    assert wechat.upload.content == qr_png("http://weixin.qq.com/q/inv_abc")
    assert codes.made == [("inv_abc", 604800)]

    alone = RecordingClient()  # Telegram alone: the deep link's code only
    assert (await TelegramChannel(alone).perform("42", action)).ok and len(alone.calls) == 1

    failing = RecordingClient()  # WeChat failing leaves Telegram's code sent and the delivery done
    assert (await TelegramChannel(failing, WeChatCodesStub(fails=True)).perform("42", action)).ok
    assert len(failing.calls) == 1


def org_with_a_telegram_admin(session: Session) -> None:
    org = make_small_org(session)
    staff(session, 7002, "Chen", Role.COMMUNITY, org.community, "en")


async def test_an_admin_on_telegram_invites_a_colleague_on_wechat(database_url: str, now_clock: FrozenClock) -> None:
    async with telegram_and_wechat(database_url, now_clock, org_with_a_telegram_admin) as (telegram, wechat, _):
        chen = telegram.user(7002, "Chen", language_code="en")
        await chen.send_text("/invite worker DG-JS-02")
        await chen.wait_for(lambda m: (m.caption or "").startswith("For a colleague on WeChat"))
        documents = [m for m in chen.messages if m.from_bot and m.document is not None]
        assert [m.document.name for m in documents if m.document] == ["invite-1.png", "wechat-invite-1.png"]
        code = wechat.code_for("inv_")
        wechat.languages[NEWCOMER] = "en"
        await wechat.subscribe(NEWCOMER, code.scene)
        await wechat.wait_for(NEWCOMER, "What name should colleagues")
        await wechat.text(NEWCOMER, "Zhou Ming")
        await wechat.wait_for(NEWCOMER, "Welcome aboard")
        await chen.wait_for_text("Zhou Ming accepted your invitation")
