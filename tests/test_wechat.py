"""The WeChat Official Account channel against the WeChat simulator: signatures, the 5-second rule, numbered
choices, the customer-service window and template messages, safe mode, the shared access token, and a request
crossing from a WeChat resident to a Telegram worker and back."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import re
import socket
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.config import Settings
from bot.core.clock import Clock, FrozenClock
from bot.core.messages import AnswerButton, ButtonPress, EditText, InlineKeyboard, SendText, Text, inline
from bot.core.messages import Button as CoreButton
from bot.engines.wechat import (
    CHANNEL,
    PRESS,
    WeChatChannel,
    WeChatServer,
    event_update_id,
    make_channel,
    prepare_inbound,
    render_action,
)
from bot.engines.wechat_api import AccessTokens, WeChatApi, WeChatApiError
from bot.engines.wechat_protocol import WeChatCrypto, WeChatProtocolError, build_xml, parse_xml, signature
from bot.i18n import translator
from bot.runtime import Runtime
from bot.service import Service, prepare_database
from bot.simulator import BotApiSimulator
from bot.simulator.wechat import WeChatSimulator, WxMessage
from storage.database import Database
from storage.models import InboxUpdate, Request, RequestStatus, Role, WeChatChat, WeChatNonce
from tests.e2e import TOKEN
from tests.org_fixture import SmallOrg, make_small_org, staff

T = TypeVar("T")
APP_ID, APP_SECRET, CALLBACK_TOKEN = "wx0123456789abcdef", "app-secret", "callback-token"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
TEMPLATE = "TPL-notice"
LI = "oLi-resident-openid"


def wechat_settings(database_url: str, wechat_api: str, listen: str = "127.0.0.1:0", **extra: Any) -> Settings:
    return Settings(
        database_url=database_url, wechat_token=SecretStr(CALLBACK_TOKEN), wechat_app_id=APP_ID,
        wechat_app_secret=SecretStr(APP_SECRET),
        wechat_api_url=wechat_api, wechat_listen=listen, wechat_template_id=TEMPLATE,
        _env_file=None, **extra,  # type: ignore[call-arg]
    )


class SlowDatabase(Database):
    """A database whose every unit of work first waits ``delay`` seconds (an overloaded server)."""

    delay = 0.0

    async def run(self, unit_of_work: Callable[[Session], T]) -> T:
        if self.delay:
            await asyncio.sleep(self.delay)
        return await super().run(unit_of_work)


@dataclass
class WeChatBot:
    sim: WeChatSimulator
    service: Service
    runtime: Runtime
    channel: WeChatChannel
    server: WeChatServer


@contextlib.asynccontextmanager
async def wechat_bot(
    database_url: str, clock: Clock, aes_key: str | None = None, database: Database | None = None,
    setup: Callable[[Session], object] | None = None, bot_username: str = "",
) -> AsyncIterator[WeChatBot]:
    """The WeChat channel alone, serving the simulator; the org (``setup``, else ``with_org``) has a Telegram
    grid worker."""
    sim = WeChatSimulator(APP_ID, APP_SECRET, CALLBACK_TOKEN, aes_key=aes_key, clock=clock)
    api_url = await sim.start()
    settings = wechat_settings(database_url, api_url, wechat_aes_key=aes_key)
    service = Service(settings=settings, database=database or Database(database_url), clock=clock)
    await prepare_database(service.database)
    await service.database.run(setup or with_org)
    channel = make_channel(service)
    runtime = service.runtime({CHANNEL: channel}, bot_username)
    server = WeChatServer(settings, runtime, channel)
    sim.callback_url = await server.start()
    try:
        yield WeChatBot(sim, service, runtime, channel, server)
    finally:
        await server.stop()
        await runtime.drain()
        await channel.api.close()
        await sim.stop()
        await service.database.dispose()


def with_org(session: Session) -> SmallOrg:
    org = make_small_org(session)
    staff(session, 7001, "Wang Worker", Role.WORKER, org.grid, "en")
    return org


@pytest.fixture
def now_clock() -> FrozenClock:
    """The clock of the bot and of the simulated WeChat, which signs its callbacks with it."""
    return FrozenClock(datetime(2026, 11, 25, 2, 0, tzinfo=UTC))


async def settle(bot: WeChatBot) -> None:
    """Wait until every message taken in has been handled and its answers sent."""
    await bot.server.intake.drain()
    await bot.runtime.drain()


async def choices_of(database: Database, openid: str) -> list[Any]:
    chat = await database.run(lambda s: s.get(WeChatChat, openid))
    return list(chat.choices) if chat is not None else []


async def number_for(bot: WeChatBot, openid: str, prefix: str) -> str:
    """The number the resident replies with to press the button whose data starts with ``prefix``; checks
    that the last message shows it with that number."""
    choices = await choices_of(bot.service.database, openid)
    for number, (kind, label, value) in sorted(enumerate(choices, 1), key=lambda item: item[1][2] != prefix):
        if kind == PRESS and value.startswith(prefix):
            assert re.search(rf"^{number}\. {re.escape(label)}$", bot.sim.messages(openid)[-1].content, re.M)
            return str(number)
    raise AssertionError(f"no {prefix!r} among {choices}")


async def reply(bot: WeChatBot, openid: str, text: str) -> list[WxMessage]:
    """Send a text and return what the resident received in answer."""
    before = len(bot.sim.messages(openid))
    posted = await bot.sim.text(openid, text)
    assert (posted.status, posted.body) == (200, "success")
    await settle(bot)
    return bot.sim.messages(openid)[before:]


async def file_by_numbers(bot: WeChatBot, openid: str) -> None:
    """Bind by QR code and file a clutter request, answering every question with a number."""
    await bot.sim.subscribe(openid, "b_DG-JS-01-B1")
    await settle(bot)
    assert "建设路12号院1号楼" in bot.sim.messages(openid)[-1].content
    await reply(bot, openid, "/new")
    await reply(bot, openid, await number_for(bot, openid, "fl:cat:1"))
    await reply(bot, openid, "楼道里堆满了纸箱，挡住了消防通道")
    await reply(bot, openid, await number_for(bot, openid, "fl:photos"))
    await reply(bot, openid, await number_for(bot, openid, "fl:loc:b"))
    await reply(bot, openid, await number_for(bot, openid, "fl:hide:0"))
    receipt = await reply(bot, openid, await number_for(bot, openid, "fl:ok:"))
    assert any("R-000001" in message.content for message in receipt)


# --- the wire: signatures, the URL check, safe mode --------------------------------------------------------


async def test_url_check_echoes_only_with_a_valid_signature(database_url: str, now_clock: FrozenClock) -> None:
    async with wechat_bot(database_url, now_clock) as bot:
        assert await bot.sim.verify_url("echo-1234") == (200, "echo-1234")
        status, _body = await bot.sim.verify_url("echo-1234", valid=False)
        assert status == 403


async def test_messages_with_a_bad_signature_are_refused_and_never_recorded(
    database_url: str, now_clock: FrozenClock
) -> None:
    async with wechat_bot(database_url, now_clock) as bot:
        xml = build_xml(bot.sim.message(LI, "text", Content="/help"))
        forged = {**bot.sim.signed_query(), "signature": signature("wrong-token", "1", "2")}
        assert (await bot.sim.post_raw(forged, xml.encode())).status == 403
        unsigned = {"timestamp": "1", "nonce": "2"}
        assert (await bot.sim.post_raw(unsigned, xml.encode())).status == 403
        await settle(bot)
        assert await bot.service.database.run(lambda s: s.scalar(select(func.count()).select_from(InboxUpdate))) == 0
        assert bot.sim.messages(LI) == []

        answers = await reply(bot, LI, "/help")  # the same message, signed, goes through
        assert any("/new" in message.content for message in answers)


async def test_safe_mode_round_trip(database_url: str, now_clock: FrozenClock) -> None:
    crypto = WeChatCrypto(CALLBACK_TOKEN, AES_KEY, APP_ID)
    xml = build_xml({"FromUserName": LI, "Content": "楼道有飞线 ]]> <b>"})
    encrypted = crypto.encrypt(xml)
    assert "飞线".encode() not in encrypted.encode() and crypto.decrypt(encrypted) == xml
    assert parse_xml(crypto.decrypt(encrypted).encode())["Content"] == "楼道有飞线 ]]> <b>"
    with pytest.raises(WeChatProtocolError):
        WeChatCrypto(CALLBACK_TOKEN, AES_KEY, "wx-another-app").decrypt(encrypted)

    async with wechat_bot(database_url, now_clock, aes_key=AES_KEY) as bot:
        posted = await bot.sim.subscribe(LI, "b_DG-JS-01-B1")
        assert posted.query["encrypt_type"] == "aes" and "<Encrypt>" in (await _body_of(bot, posted))
        await settle(bot)
        assert "建设路12号院1号楼" in bot.sim.messages(LI)[-1].content

        # A ciphertext signed with the wrong msg_signature is refused.
        envelope, _good = bot.sim.crypto.wrap(xml, posted.query["timestamp"], posted.query["nonce"])  # type: ignore[union-attr]
        tampered = {**bot.sim.signed_query(), "encrypt_type": "aes", "msg_signature": "0" * 40}
        assert (await bot.sim.post_raw(tampered, envelope.encode())).status == 403


async def _body_of(bot: WeChatBot, posted: Any) -> str:
    envelope, _signature = bot.sim.crypto.wrap(posted.xml, posted.query["timestamp"], posted.query["nonce"])  # type: ignore[union-attr]
    return envelope


# --- the 5-second rule and retries ------------------------------------------------------------------------


async def test_answer_comes_within_five_seconds_even_when_the_database_is_slow(
    database_url: str, now_clock: FrozenClock
) -> None:
    database = SlowDatabase(database_url)
    async with wechat_bot(database_url, now_clock, database=database) as bot:
        database.delay = 6.0
        posted = await bot.sim.text(LI, "/help")
        assert (posted.status, posted.body) == (200, "success")
        assert posted.seconds < 5.0
        # WeChat's retry of the same message, while the first is still being recorded, is answered at once.
        retry = await bot.sim.post_raw(posted.query, posted.xml.encode())
        assert (retry.status, retry.body) == (200, "success") and retry.seconds < 1.0
        database.delay = 0.0
        answer = await bot.sim.wait_for(LI, "/new", timeout=15)
        await settle(bot)
        assert bot.sim.messages(LI).count(answer) == 1


async def test_a_retried_message_is_handled_once_even_by_a_restarted_server(
    database_url: str, now_clock: FrozenClock
) -> None:
    async with wechat_bot(database_url, now_clock) as bot:
        first = await bot.sim.text(LI, "/help")
        await settle(bot)
        answered = len(bot.sim.messages(LI))
        assert answered >= 1
        for _retry in range(2):
            assert (await bot.sim.post_raw(first.query, first.xml.encode())).body == "success"
        # A new server (another process, or after a restart) knows the message from the inbox.
        await bot.server.stop()
        bot.server = WeChatServer(bot.service.settings, bot.runtime, bot.channel)
        bot.sim.callback_url = await bot.server.start()
        assert (await bot.sim.post_raw(first.query, first.xml.encode())).body == "success"
        await settle(bot)
        assert len(bot.sim.messages(LI)) == answered
        rows = await bot.service.database.run(
            lambda s: s.scalar(select(func.count()).select_from(InboxUpdate).where(InboxUpdate.channel == CHANNEL))
        )
        assert rows == 1


def test_events_are_deduplicated_by_sender_and_time() -> None:
    assert event_update_id("o1", "1700000000") == event_update_id("o1", "1700000000") < 0
    assert event_update_id("o1", "1700000000") != event_update_id("o2", "1700000000")
    assert event_update_id("o1", "1700000000") != event_update_id("o1", "1700000001")


# --- numbered choices ------------------------------------------------------------------------------------


def test_keyboards_become_numbered_choices() -> None:
    t = translator("en")
    keyboard = inline([CoreButton("违章建筑", "fl:cat:1"), CoreButton("飞线充电", "fl:cat:2")],
                      [CoreButton("Map", url="https://example.org/map")])
    outgoing = render_action(SendText("What is it about?", keyboard), t)
    assert outgoing is not None
    assert outgoing.text.splitlines()[2:5] == ["Reply with a number to choose:", "1. 违章建筑", "2. 飞线充电"]
    assert "Map: https://example.org/map" in outgoing.text
    assert outgoing.choices == [[PRESS, "违章建筑", "fl:cat:1"], [PRESS, "飞线充电", "fl:cat:2"]]
    assert render_action(SendText("notice"), t) == render_action(SendText("notice"), t)
    assert render_action(SendText("notice"), t).choices is None  # type: ignore[union-attr]
    edited = render_action(EditText(7, "Describe it"), t)
    assert edited is not None and edited.choices == []
    assert render_action(AnswerButton("q"), t) is None
    assert render_action(AnswerButton("q", "Done"), t) is not None


async def test_numbers_map_back_to_the_last_keyboard_and_unknown_numbers_are_answered(
    database_url: str, now_clock: FrozenClock
) -> None:
    async with wechat_bot(database_url, now_clock) as bot:
        await bot.sim.subscribe(LI, "b_DG-JS-01-B1")
        await settle(bot)
        await reply(bot, LI, "/new")
        choices = await choices_of(bot.service.database, LI)
        # The categories, and last "it is somewhere else".
        assert len(choices) >= 3 and all(value.startswith("fl:cat:") for _kind, _label, value in choices[:-1])
        assert choices[-1][2] == "fl:else"

        answers = await reply(bot, LI, "99")
        assert len(answers) == 1 and "99" in answers[0].content and str(len(choices)) in answers[0].content
        assert await choices_of(bot.service.database, LI) == choices  # still usable

        event = await bot.service.database.run(
            lambda s: prepare_inbound(s, openid=LI, update_id=1, event=Text("１"), now=now_clock())
        )
        assert isinstance(event, ButtonPress) and event.data == choices[0][2]
        assert event.message_id is not None


async def test_filing_by_numbered_replies(database_url: str, now_clock: FrozenClock) -> None:
    async with wechat_bot(database_url, now_clock) as bot:
        await file_by_numbers(bot, LI)
        request = await bot.service.database.run(lambda s: s.get(Request, 1))
        assert request is not None and request.status is RequestStatus.NEW
        assert request.resident.channel == CHANNEL and request.resident.external_id == LI
        assert request.latitude is not None  # "use my building's location" was chosen by number
        assert all(message.kind == "custom" for message in bot.sim.messages(LI))


# --- the customer-service window --------------------------------------------------------------------------


async def test_window_allows_five_messages_then_templates(database_url: str, now_clock: FrozenClock) -> None:
    async with wechat_bot(database_url, now_clock) as bot:
        await bot.sim.subscribe(LI)
        await settle(bot)
        sent_for_follow = len(bot.sim.messages(LI))
        for number in range(6):
            assert (await bot.channel.perform(LI, SendText(f"notice {number}"))).ok
        kinds = [message.kind for message in bot.sim.messages(LI)]
        assert kinds.count("custom") == 5 and kinds[-1] == "template"
        assert sent_for_follow <= 5 and bot.sim.rejected == []  # the channel counted; WeChat never said 45015
        assert "notice 5" in bot.sim.messages(LI)[-1].content

        now_clock.advance(hours=49)
        await reply(bot, LI, "/help")  # a new message opens a new window
        assert bot.sim.messages(LI)[-1].kind == "custom"


async def test_template_with_keyboard_keeps_the_choices(database_url: str, now_clock: FrozenClock) -> None:
    async with wechat_bot(database_url, now_clock) as bot:
        await bot.sim.subscribe(LI)
        await settle(bot)
        now_clock.advance(hours=49)
        keyboard = InlineKeyboard(((CoreButton("Fixed", "my:ok:1:fixed"), CoreButton("Not fixed", "my:ok:1:no")),))
        assert (await bot.channel.perform(LI, SendText("R-000001 was resolved", keyboard))).ok
        notice = bot.sim.messages(LI)[-1]
        assert notice.kind == "template" and set(notice.data) == {"first", "keyword1", "keyword2", "remark"}
        assert "1. Fixed" in notice.data["keyword1"] or "1. Fixed" in notice.content
        assert [value for _k, _l, value in await choices_of(bot.service.database, LI)] == [
            "my:ok:1:fixed", "my:ok:1:no",
        ]


# --- the access token -------------------------------------------------------------------------------------


async def test_access_token_is_fetched_once_and_shared(database_url: str, now_clock: FrozenClock) -> None:
    sim = WeChatSimulator(APP_ID, APP_SECRET, CALLBACK_TOKEN, clock=now_clock, token_delay=0.2)
    api_url = await sim.start()
    database = Database(database_url)
    await prepare_database(database)
    first = WeChatApi(api_url, APP_ID, APP_SECRET, database, now_clock)
    second = WeChatApi(api_url, APP_ID, APP_SECRET, database, now_clock)  # another process
    try:
        tokens = await asyncio.gather(*(api.tokens.get() for api in [first, second] * 10))
        assert len(set(tokens)) == 1 and sim.token_fetches == 1

        now_clock.advance(seconds=7200 - 200)  # within the early-refresh margin
        tokens = await asyncio.gather(*(api.tokens.get() for api in [first, second] * 10))
        assert len(set(tokens)) == 1 and sim.token_fetches == 2

        # Someone fetched a token behind our back: the rejected call fetches a new one and is repeated once.
        await AccessTokens(first, Database(database_url), APP_ID, APP_SECRET, now_clock)._fetch()
        assert sim.token_fetches == 3
        with pytest.raises(WeChatApiError) as refused:
            await second.send_text(LI, "hello")  # reaches WeChat with a valid token: refused for the window
        assert refused.value.errcode == 45015
    finally:
        await first.close()
        await second.close()
        await sim.stop()
        await database.dispose()


# --- WeChat resident, Telegram worker, one process ------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def telegram_and_wechat(
    database_url: str, clock: FrozenClock, setup: Callable[[Session], object] = with_org
) -> AsyncIterator[tuple[BotApiSimulator, WeChatSimulator, Service]]:
    """Both channels served by one process, as ``gridbot run`` serves them, against both simulators."""
    from bot.cli import channels_to_serve

    telegram = BotApiSimulator(token=TOKEN)
    telegram_url = await telegram.start("127.0.0.1", 0)
    wechat = WeChatSimulator(APP_ID, APP_SECRET, CALLBACK_TOKEN, clock=clock)
    wechat_url = await wechat.start()
    port = free_port()
    settings = wechat_settings(database_url, wechat_url, f"127.0.0.1:{port}", token=TOKEN, api_url=telegram_url)
    service = Service.from_settings(settings, clock=clock)
    await prepare_database(service.database)
    await service.database.run(setup)
    stop = asyncio.Event()
    task = asyncio.create_task(channels_to_serve(service)(stop))
    wechat.callback_url = f"http://127.0.0.1:{port}/wechat"
    try:
        await eventually_up(wechat)
        yield telegram, wechat, service
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
        await service.database.dispose()
        await telegram.stop()
        await wechat.stop()


async def test_request_crosses_from_wechat_to_telegram_and_back(
    database_url: str, now_clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with telegram_and_wechat(database_url, now_clock) as (telegram, wechat, service):
        wang = telegram.user(7001, "Wang", language_code="en")
        await wang.send_text("/start")
        await wang.wait_for(lambda m: m.text is not None)

        # The resident binds by QR code and files by numbered replies.
        await wechat.subscribe(LI, "b_DG-JS-01-B1")
        await wechat.wait_for(LI, "建设路12号院1号楼")
        for step in ("/new", "fl:cat:1", "楼道里堆满了纸箱", "fl:photos", "fl:loc:b", "fl:hide:0", "fl:ok:"):
            await wechat_step(wechat, service.database, step)
        await wechat.wait_for(LI, "R-000001")

        # The worker on Telegram gets the card and accepts: the resident hears it inside the window.
        card = await wang.wait_for(lambda m: "R-000001" in (m.text or m.caption or ""))
        mark = len(wechat.messages(LI))
        await wang.press(card, next(d for _t, d in card.buttons() if d and d.startswith("rq:acc:")))
        accepted = await wechat.wait_for(LI, "Wang Worker", since=mark)
        assert accepted.kind == "custom"

        # Two days later the worker resolves it: outside the window, the news comes as a template message.
        now_clock.advance(hours=50)
        after = await wang.wait_for(lambda m: any((d or "").startswith("rq:res:") for _t, d in m.buttons()))
        await wang.press(after, next(d for _t, d in after.buttons() if d and d.startswith("rq:res:")))
        await wang.wait_for(lambda m: "R-000001" in (m.text or "") and not m.buttons())
        mark = len(wechat.messages(LI))
        await wang.send_text("Boxes removed, passage clear")
        verdict = await wechat.wait_for(LI, "Boxes removed", since=mark)
        assert verdict.kind == "template" and verdict.data["first"]

        # The resident answers the template by number: the window opens again and the worker hears back.
        mark = len(wechat.messages(LI))
        await wechat_step(wechat, service.database, "my:ok:1:fixed")
        await wang.wait_for(lambda m: "confirmed R-000001" in (m.text or ""))
        # The worker's notice and the resident's answer are separate sends: wait for the resident's own.
        answer = await wechat.wait_for(LI, "R-000001", since=mark)
        assert answer.kind == "custom"
        assert any("plain mode" in record.getMessage() for record in caplog.records)  # safe mode is advised


async def eventually_up(sim: WeChatSimulator) -> None:
    for _attempt in range(100):
        with contextlib.suppress(OSError):
            if (await sim.verify_url("ping"))[0] == 200:
                return
        await asyncio.sleep(0.05)
    raise AssertionError("the WeChat server did not come up")


async def wechat_step(sim: WeChatSimulator, database: Database, step: str) -> None:
    """Send ``step`` as text, or, when it names button data, the number that stands for it."""
    if ":" not in step:
        await sim.text(LI, step)
        await asyncio.sleep(0.3)
        return
    for _attempt in range(100):
        choices = await choices_of(database, LI)
        numbers = [n for n, (_k, _l, value) in enumerate(choices, 1) if value == step]
        numbers += [n for n, (_k, _l, value) in enumerate(choices, 1) if value.startswith(step)]
        if numbers:
            await sim.text(LI, str(numbers[0]))
            await asyncio.sleep(0.3)
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no choice for {step!r}")


# --- replayed signatures -----------------------------------------------------------------------------------


def signed_at(moment: float, nonce: str) -> dict[str, str]:
    timestamp = str(int(moment))
    return {"timestamp": timestamp, "nonce": nonce, "signature": signature(CALLBACK_TOKEN, timestamp, nonce)}


async def inbox_count(bot: WeChatBot) -> int:
    def counting(session: Session) -> int:
        query = select(func.count()).select_from(InboxUpdate).where(InboxUpdate.channel == CHANNEL)
        return session.scalar(query) or 0

    return await bot.service.database.run(counting)


async def test_a_signature_is_accepted_only_within_five_minutes_of_the_bots_clock(
    database_url: str, now_clock: FrozenClock
) -> None:
    async with wechat_bot(database_url, now_clock) as bot:
        xml = build_xml(bot.sim.message(LI, "text", Content="/help")).encode()
        now = now_clock().timestamp()
        for moment in (978307200, now - 301, now + 301):  # 2001, and just outside the window either side
            assert (await bot.sim.post_raw(signed_at(moment, f"n{moment}"), xml)).status == 403
        status, _body = await bot.sim.verify_url("echo")
        assert status == 200
        now_clock.advance(minutes=6)  # the bot's clock, not the machine's, decides
        stale = await bot.sim.post_raw(signed_at(now, "late"), xml)
        assert stale.status == 403
        await settle(bot)
        assert await inbox_count(bot) == 0 and bot.sim.messages(LI) == []
        assert (await bot.sim.post_raw(signed_at(now_clock().timestamp() - 240, "fresh"), xml)).status == 200


async def test_a_signed_query_is_refused_with_another_body_even_by_another_process(
    database_url: str, now_clock: FrozenClock
) -> None:
    async with wechat_bot(database_url, now_clock) as bot:
        first = await bot.sim.text(LI, "/help")
        assert first.status == 200
        forged = build_xml(bot.sim.message("oAttacker", "text", Content="/start b_DG-JS-01-B1")).encode()
        assert (await bot.sim.post_raw(first.query, forged)).status == 403
        # Another process serving the same account knows the nonce from the database.
        own_url = bot.sim.callback_url
        other = WeChatServer(bot.service.settings, bot.runtime, bot.channel)
        bot.sim.callback_url = await other.start()
        try:
            assert (await bot.sim.post_raw(first.query, forged)).status == 403
            retry = await bot.sim.post_raw(first.query, first.xml.encode())  # WeChat's own retry still passes
            assert (retry.status, retry.body) == (200, "success")
        finally:
            await other.stop()
        await settle(bot)
        assert await inbox_count(bot) == 1 and bot.sim.messages("oAttacker") == []

        nonces = await bot.service.database.run(lambda s: s.scalar(select(func.count()).select_from(WeChatNonce)))
        assert nonces == 1
        now_clock.advance(minutes=11)
        bot.sim.callback_url = own_url
        later = await bot.sim.text(LI, "/help")
        assert later.status == 200
        remaining = await bot.service.database.run(lambda s: list(s.scalars(select(WeChatNonce.nonce))))
        assert remaining == [later.query["nonce"]]  # the first one was pruned once its window was over


async def test_the_access_log_never_shows_the_signed_query(
    database_url: str, now_clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    async with wechat_bot(database_url, now_clock) as bot:
        posted = await bot.sim.text(LI, "/help")
        await settle(bot)
    access = [record.getMessage() for record in caplog.records if record.name == "aiohttp.access"]
    assert any("POST /wechat" in line for line in access)
    assert not any(posted.query["signature"] in line or posted.query["nonce"] in line for line in access)


# --- hostile XML and ciphertexts ---------------------------------------------------------------------------

BOMB = (
    '<!DOCTYPE xml [<!ENTITY a "' + "x" * 100 + '">'
    '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(f'<?xml version="1.0" encoding="UTF-16"?>{BOMB}<xml><FromUserName>o1</FromUserName>'
                     "<MsgType>text</MsgType><Content>&c;</Content><MsgId>7</MsgId></xml>".encode("utf-16"),
                     id="utf16-entities"),
        pytest.param(f"{BOMB}<xml><FromUserName>o1</FromUserName><MsgType>text</MsgType>"
                     "<Content>&c;</Content><MsgId>7</MsgId></xml>".encode(), id="utf8-entities"),
        pytest.param(b'<?xml version="1.0" encoding="UTF-16-LE"?><xml><MsgId>7</MsgId></xml>',
                     id="declares-utf16"),
        pytest.param(b"<xml><FromUserName>o1</FromUserName><Content>\xff\xfe</Content></xml>", id="not-utf8"),
        pytest.param(b"<xml><FromUserName>o1</FromUserName>", id="unclosed"),
        pytest.param(f"<xml><FromUserName>o1</FromUserName><MsgType>text</MsgType><Content>{'长' * 9000}"
                     "</Content><MsgId>7</MsgId></xml>".encode(), id="long-field"),
        pytest.param(b"<xml><FromUserName>o1</FromUserName><MsgType>text</MsgType><Content>hi</Content>"
                     b"<MsgId>\xc2\xb2</MsgId></xml>", id="superscript-msgid"),
    ],
)
async def test_malformed_xml_is_answered_400_and_never_stored(
    database_url: str, now_clock: FrozenClock, body: bytes
) -> None:
    async with wechat_bot(database_url, now_clock) as bot:
        posted = await bot.sim.post_raw(bot.sim.signed_query(), body, xml="-")
        assert posted.status == 400
        await settle(bot)
        assert await inbox_count(bot) == 0


def encrypted_with_padding(crypto: WeChatCrypto, xml: bytes, padding: bytes) -> str:
    """A safe-mode ciphertext of ``xml`` padded with exactly ``padding`` (a correct one or a tampered one)."""
    plain = bytes(16) + struct.pack(">I", len(xml)) + xml + APP_ID.encode() + padding
    assert len(plain) % 32 == 0
    encryptor = Cipher(algorithms.AES(crypto.key), modes.CBC(crypto.iv)).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()


async def post_encrypted(bot: WeChatBot, encrypted: str) -> int:
    query = bot.sim.signed_query()
    msg_signature = signature(CALLBACK_TOKEN, query["timestamp"], query["nonce"], encrypted)
    envelope = build_xml({"ToUserName": "", "Encrypt": encrypted}).encode()
    query = {**query, "encrypt_type": "aes", "msg_signature": msg_signature}
    return (await bot.sim.post_raw(query, envelope)).status


async def test_safe_mode_refuses_tampered_padding_and_bad_utf8_with_400(
    database_url: str, now_clock: FrozenClock
) -> None:
    crypto = WeChatCrypto(CALLBACK_TOKEN, AES_KEY, APP_ID)
    async with wechat_bot(database_url, now_clock, aes_key=AES_KEY) as bot:
        xml = build_xml(bot.sim.message(LI, "text", Content="/help")).encode()
        pad = 32 - (20 + len(xml) + len(APP_ID)) % 32
        assert pad > 1
        tampered = bytes([0xAA]) * (pad - 1) + bytes([pad])
        assert await post_encrypted(bot, encrypted_with_padding(crypto, xml, tampered)) == 400
        assert await post_encrypted(bot, crypto.encrypt_bytes(b"<xml><Content>\xff</Content></xml>")) == 400
        assert await post_encrypted(bot, "not base64!") == 400
        await settle(bot)
        assert await inbox_count(bot) == 0
        assert await post_encrypted(bot, encrypted_with_padding(crypto, xml, bytes([pad]) * pad)) == 200


# --- poison messages ---------------------------------------------------------------------------------------


async def test_an_unreadable_location_is_answered_once_and_never_replayed(
    database_url: str, now_clock: FrozenClock
) -> None:
    async with wechat_bot(database_url, now_clock) as bot:
        fields = bot.sim.message(LI, "location", Location_X="abc", Location_Y="112.5", Scale=15, Label="")
        assert (await bot.sim.post(fields)).status == 200
        await settle(bot)
        expected = translator("zh_CN")._("That location could not be read. Please share your location again.")
        assert expected != translator("en")._("That location could not be read. Please share your location again.")
        assert [message.content for message in bot.sim.messages(LI)] == [expected]
        handled = await bot.service.database.run(lambda s: s.scalar(select(InboxUpdate.handled_at)))
        assert handled is not None

        await bot.server.stop()  # a restart replays what was never handled: this is not among it
        bot.server = WeChatServer(bot.service.settings, bot.runtime, bot.channel)
        bot.sim.callback_url = await bot.server.start()
        await settle(bot)
        assert len(bot.sim.messages(LI)) == 1
        answers = await reply(bot, LI, "/help")  # the follower is not stuck
        assert any("/new" in message.content for message in answers)
