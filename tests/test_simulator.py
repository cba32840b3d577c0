"""End-to-end checks of the Bot API simulator with the real aiogram and PTB clients.

The simulator is only useful if both client libraries accept its responses
and raise their usual exceptions for its errors, so every test here goes
through real HTTP with a real client rather than calling handlers directly.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import warnings
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import telegram
import telegram.error
from aiogram import Bot as AiogramBot
from aiogram import Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.filters import CommandObject, CommandStart
from aiogram.types import (
    BotCommand,
    BotCommandScopeChat,
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web
from telegram.ext import ApplicationBuilder, CommandHandler, ContextTypes
from telegram.warnings import PTBDeprecationWarning

from bot.simulator import BotApiSimulator

TOKEN = "123456:TEST-simulator_token"
JPEG = b"\xff\xd8\xff\xe0" + b"fake-jpeg-payload" * 10


@pytest.fixture
async def sim() -> AsyncIterator[BotApiSimulator]:
    simulator = BotApiSimulator(token=TOKEN, webhook_backoff=0.01)
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def abot(sim: BotApiSimulator) -> AsyncIterator[AiogramBot]:
    assert sim.base_url is not None
    bot = AiogramBot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(sim.base_url)))
    yield bot
    await bot.session.close()


@pytest.fixture
async def pbot(sim: BotApiSimulator) -> AsyncIterator[telegram.Bot]:
    assert sim.base_url is not None
    bot = telegram.Bot(TOKEN, base_url=sim.base_url + "/bot", base_file_url=sim.base_url + "/file/bot")
    await bot.initialize()
    yield bot
    await bot.shutdown()


def _seconds(value: int | dtm.timedelta) -> float:
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


async def _raw(sim: BotApiSimulator, method: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    """Call the simulator without a client library to inspect the exact wire format."""
    async with aiohttp.ClientSession() as session, session.post(f"{sim.base_url}{method}", **kwargs) as resp:
        return resp.status, await resp.json()


# ----------------------------------------------------------------- basics


async def test_get_me_with_both_clients(abot: AiogramBot, pbot: telegram.Bot) -> None:
    me = await abot.get_me()
    assert me.id == 123456
    assert me.is_bot
    assert me.username == "gridbot_sim_bot"
    assert pbot.bot.id == 123456
    assert pbot.username == "gridbot_sim_bot"


async def test_http_surface_auth_routing_and_encodings(sim: BotApiSimulator) -> None:
    status, body = await _raw(sim, "/bot999:WRONG/getMe")
    assert (status, body) == (401, {"ok": False, "error_code": 401, "description": "Unauthorized"})

    status, body = await _raw(sim, f"/bot{TOKEN}/noSuchMethod")
    assert status == 404
    assert body["description"] == "Not Found: method not found"

    user = sim.user(1001, first_name="Li")
    await user.send_text("hi")
    # Method names are case-insensitive; parameters may come in the query string...
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{sim.base_url}/bot{TOKEN}/SENDMESSAGE", params={"chat_id": "1001", "text": "q"}) as resp,
    ):
        assert resp.status == 200
        assert (await resp.json())["result"]["text"] == "q"
    # ...a JSON body...
    status, body = await _raw(sim, f"/bot{TOKEN}/sendMessage", json={"chat_id": 1001, "text": "j"})
    assert status == 200 and body["ok"] is True
    assert body["result"]["chat"] == {"id": 1001, "type": "private", "first_name": "Li"}
    # ...or a urlencoded form with JSON-encoded structured fields.
    markup = '{"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}'
    status, body = await _raw(
        sim, f"/bot{TOKEN}/sendMessage", data={"chat_id": "1001", "text": "f", "reply_markup": markup}
    )
    assert status == 200
    assert body["result"]["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "a"
    assert [m.text for m in user.messages] == ["q", "j", "f"]
    assert [m.message_id for m in user.history] == [1, 2, 3, 4]

    status, body = await _raw(sim, f"/bot{TOKEN}/sendMessage", json={"chat_id": 1001, "text": "   "})
    assert (status, body["description"]) == (400, "Bad Request: message text is empty")


# ----------------------------------------------------------------- updates


async def test_get_updates_offset_semantics(sim: BotApiSimulator, abot: AiogramBot) -> None:
    user = sim.user(1001, first_name="Li", language_code="zh-hans")
    sent = await user.send_text("/start b_A1")
    await user.send_text("hello")

    updates = await abot.get_updates()
    assert [u.update_id for u in updates] == [1, 2]
    first = updates[0].message
    assert first is not None and first.text == "/start b_A1"
    assert first.message_id == sent.message_id
    assert first.from_user is not None and first.from_user.language_code == "zh-hans"
    assert first.entities is not None
    assert (first.entities[0].type, first.entities[0].offset, first.entities[0].length) == ("bot_command", 0, 6)

    # Re-reading without an offset returns the same updates: nothing is confirmed yet.
    assert [u.update_id for u in await abot.get_updates()] == [1, 2]
    assert [u.update_id for u in await abot.get_updates(offset=2)] == [2]
    assert await abot.get_updates(offset=3) == []
    assert sim.pending_updates == []

    await user.send_text("again")
    assert [u.update_id for u in await abot.get_updates(offset=3, limit=1)] == [3]


async def test_update_ids_continue_above_a_recorded_id_and_dates_follow_the_clock() -> None:
    moment = dtm.datetime(2030, 1, 3, 6, 0, tzinfo=dtm.UTC)
    sim = BotApiSimulator("1:clocked", clock=lambda: moment)
    sim.continue_update_ids_after(41)
    sim.continue_update_ids_after(7)  # ids never go back
    sent = await sim.user(1001, "Li").send_text("hello")
    assert [update["update_id"] for update in sim.pending_updates] == [42]
    assert sent.date == int(moment.timestamp())


async def test_long_poll_returns_as_soon_as_user_sends(sim: BotApiSimulator, abot: AiogramBot) -> None:
    user = sim.user(1001, first_name="Li")
    loop = asyncio.get_running_loop()
    started = loop.time()
    poll = asyncio.create_task(abot.get_updates(timeout=10))
    await asyncio.sleep(0.2)
    assert not poll.done(), "long poll must wait while there are no updates"
    await user.send_text("wake up")
    updates = await asyncio.wait_for(poll, 2)
    assert loop.time() - started < 2
    assert [u.message.text for u in updates if u.message] == ["wake up"]


async def test_second_poller_terminates_the_first(sim: BotApiSimulator, abot: AiogramBot) -> None:
    first = asyncio.create_task(abot.get_updates(timeout=5))
    await asyncio.sleep(0.1)
    second = asyncio.create_task(abot.get_updates(timeout=5))
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates request"):
        await asyncio.wait_for(first, 2)
    await sim.user(1001, first_name="Li").send_text("for the survivor")
    assert len(await asyncio.wait_for(second, 2)) == 1


async def test_long_poll_with_ptb(sim: BotApiSimulator, pbot: telegram.Bot) -> None:
    user = sim.user(1002, first_name="Ana")
    poll = asyncio.create_task(pbot.get_updates(timeout=10))
    await asyncio.sleep(0.2)
    assert not poll.done()
    await user.send_text("/help")
    updates = await asyncio.wait_for(poll, 2)
    assert len(updates) == 1
    message = updates[0].message
    assert message is not None and message.text == "/help"
    assert message.chat.id == 1002 and message.chat.type == "private"


# ----------------------------------------------------------------- keyboards


async def test_inline_keyboard_press_and_answer_aiogram(sim: BotApiSimulator, abot: AiogramBot) -> None:
    user = sim.user(1001, first_name="Li")
    await user.send_text("/start")
    markup = InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text="Yes", callback_data="vote:yes")],
            [InlineKeyboardButton(text="Site", url="https://example.org")],
        ]
    )
    sent = await abot.send_message(1001, "Agree?", reply_markup=markup)
    assert sent.reply_markup is not None
    bot_message = user.messages[-1]
    assert bot_message.message_id == sent.message_id
    assert bot_message.buttons() == [("Yes", "vote:yes"), ("Site", None)]

    with pytest.raises(ValueError, match="no button"):
        await user.press(bot_message, "vote:no")

    updates = await abot.get_updates(offset=2)
    assert updates == []
    query_id = await user.press(bot_message, "vote:yes")
    (update,) = await abot.get_updates(offset=2)
    query = update.callback_query
    assert query is not None
    assert (query.id, query.data, query.from_user.id) == (query_id, "vote:yes", 1001)
    assert query.message is not None and query.message.message_id == sent.message_id

    assert await abot.answer_callback_query(query.id, text="Counted", show_alert=True)
    answer = await user.wait_for_answer()
    assert (answer.text, answer.show_alert, answer.data) == ("Counted", True, "vote:yes")
    assert user.callback_answers == [answer]

    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await abot.answer_callback_query(query.id)
    with pytest.raises(TelegramBadRequest, match="query ID is invalid"):
        await abot.answer_callback_query("123")


async def test_inline_keyboard_press_and_answer_ptb(sim: BotApiSimulator, pbot: telegram.Bot) -> None:
    user = sim.user(1002, first_name="Ana")
    await user.send_text("hi")
    markup = telegram.InlineKeyboardMarkup([[telegram.InlineKeyboardButton("Go", callback_data="go")]])
    sent = await pbot.send_message(1002, "Ready?", reply_markup=markup)
    assert sent.reply_markup == markup
    await user.press(user.messages[-1], "go")
    updates = await pbot.get_updates(offset=2)
    assert len(updates) == 1 and updates[0].callback_query is not None
    assert updates[0].callback_query.data == "go"
    assert await pbot.answer_callback_query(updates[0].callback_query.id, text="Gone")
    assert [a.text for a in user.callback_answers] == ["Gone"]


async def test_reply_keyboard_with_location_request(sim: BotApiSimulator, abot: AiogramBot) -> None:
    user = sim.user(1001, first_name="Li")
    await user.send_text("/start")
    keyboard = ReplyKeyboardMarkup(
        keyboard=[[KeyboardButton(text="Send location", request_location=True), KeyboardButton(text="Skip")]],
        resize_keyboard=True,
    )
    sent = await abot.send_message(1001, "Where are you?", reply_markup=keyboard)
    assert sent.reply_markup is None, "reply keyboards are not part of the returned Message"
    assert user.messages[-1].reply_buttons() == ["Send location", "Skip"]
    assert user.reply_keyboard is not None
    assert user.reply_keyboard["keyboard"][0][0]["request_location"] is True

    await user.send_location(32.99, 112.53)
    updates = await abot.get_updates(offset=2)
    location = updates[-1].message.location if updates[-1].message else None
    assert location is not None and (location.latitude, location.longitude) == (32.99, 112.53)

    await user.send_contact("+8613800000000")
    updates = await abot.get_updates(offset=updates[-1].update_id + 1)
    contact = updates[0].message.contact if updates[0].message else None
    assert contact is not None and (contact.phone_number, contact.user_id) == ("+8613800000000", 1001)

    await abot.send_message(1001, "Thanks", reply_markup=ReplyKeyboardRemove())
    assert user.reply_keyboard is None


async def test_callback_data_limit_is_in_bytes(sim: BotApiSimulator, abot: AiogramBot) -> None:
    user = sim.user(1001, first_name="Li")
    await user.send_text("/start")

    def markup(data: str) -> InlineKeyboardMarkup:
        return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="x", callback_data=data)]])

    await abot.send_message(1001, "ok", reply_markup=markup("a" * 64))
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await abot.send_message(1001, "too big", reply_markup=markup("a" * 65))
    # 33 two-byte characters: only 33 characters, but 66 bytes.
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await abot.send_message(1001, "too big", reply_markup=markup("é" * 33))
    assert [m.text for m in user.messages] == ["ok"]


# ----------------------------------------------------------------- edits & errors


async def test_edit_and_not_modified(sim: BotApiSimulator, abot: AiogramBot) -> None:
    user = sim.user(1001, first_name="Li")
    await user.send_text("/start")
    markup = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="A", callback_data="a")]])
    sent = await abot.send_message(1001, "v1", reply_markup=markup)
    tracked = user.messages[-1]

    await user.press(tracked, "a")
    edited = await abot.edit_message_text(text="v2", chat_id=1001, message_id=sent.message_id, reply_markup=markup)
    assert isinstance(edited, Message) and edited.text == "v2" and edited.edit_date is not None
    seen = await user.wait_for_text("v2")
    assert seen is tracked
    assert (tracked.text, tracked.edit_count, tracked.history[0]["text"]) == ("v2", 1, "v1")

    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await abot.edit_message_text(text="v2", chat_id=1001, message_id=sent.message_id, reply_markup=markup)
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await abot.edit_message_reply_markup(chat_id=1001, message_id=sent.message_id, reply_markup=markup)

    # Omitting reply_markup on a text edit removes the inline keyboard, as in Telegram.
    await abot.edit_message_text(text="v2", chat_id=1001, message_id=sent.message_id)
    assert tracked.buttons() == [] and tracked.edit_count == 2
    with pytest.raises(ValueError):
        await user.press(tracked, "a")

    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await abot.edit_message_text(text="x", chat_id=1001, message_id=999)

    assert await abot.delete_message(1001, sent.message_id)
    assert user.messages == []
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await abot.delete_message(1001, sent.message_id)


async def test_chat_not_found(sim: BotApiSimulator, abot: AiogramBot, pbot: telegram.Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await abot.send_message(555, "hello?")
    sim.user(556, first_name="Silent")  # exists but never wrote to the bot
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await abot.send_message(556, "hello?")
    with pytest.raises(telegram.error.BadRequest, match=r"(?i)chat not found"):
        await pbot.send_message(556, "hello?")


async def test_blocked_user_is_forbidden(sim: BotApiSimulator, abot: AiogramBot, pbot: telegram.Bot) -> None:
    user = sim.user(1001, first_name="Li")
    await user.send_text("/start")
    await abot.get_updates(offset=-1)
    user.block()
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await abot.send_message(1001, "still there?")
    with pytest.raises(telegram.error.Forbidden):
        await pbot.send_message(1001, "still there?")
    (update,) = await abot.get_updates(offset=2)
    assert update.my_chat_member is not None
    assert update.my_chat_member.new_chat_member.status == "kicked"
    user.unblock()
    await abot.send_message(1001, "welcome back")
    assert [m.text for m in user.messages] == ["welcome back"]


async def test_text_and_caption_length_limits(sim: BotApiSimulator, abot: AiogramBot) -> None:
    user = sim.user(1001, first_name="Li")
    await user.send_text("/start")
    await abot.send_message(1001, "x" * 4096)
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await abot.send_message(1001, "x" * 4097)
    photo = BufferedInputFile(JPEG, filename="p.jpg")
    with pytest.raises(TelegramBadRequest, match="message caption is too long"):
        await abot.send_photo(1001, photo, caption="c" * 1025)
    # HTML markup does not count towards the limit, as in Telegram.
    await abot.send_message(1001, "<b>" + "y" * 4096 + "</b>", parse_mode="HTML")
    assert user.messages[-1].text == "y" * 4096
    assert len(user.messages) == 2


async def test_flood_limit_surfaces_retry_after(sim: BotApiSimulator, abot: AiogramBot, pbot: telegram.Bot) -> None:
    user = sim.user(1001, first_name="Li")
    await user.send_text("/start")
    sim.flood_limit = 3
    for i in range(3):
        await abot.send_message(1001, f"m{i}")
    with pytest.raises(TelegramRetryAfter) as aiogram_error:
        await abot.send_message(1001, "m3")
    assert aiogram_error.value.retry_after >= 1
    # PTB warns about the future type of ``retry_after`` whenever it builds the error.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        with pytest.raises(telegram.error.RetryAfter) as ptb_error:
            await pbot.send_message(1001, "m3")
        assert _seconds(ptb_error.value.retry_after) >= 1

    status, body = await _raw(sim, f"/bot{TOKEN}/sendMessage", json={"chat_id": 1001, "text": "m3"})
    assert status == 429
    retry_after = body["parameters"]["retry_after"]
    assert isinstance(retry_after, int) and retry_after >= 1
    assert body["description"] == f"Too Many Requests: retry after {retry_after}"
    assert sim.sent_count == 3

    await asyncio.sleep(1.05)
    await abot.send_message(1001, "after the window")
    assert sim.sent_count == 4


# ----------------------------------------------------------------- files


async def test_user_photo_downloadable_with_both_clients(
    sim: BotApiSimulator, abot: AiogramBot, pbot: telegram.Bot
) -> None:
    user = sim.user(1001, first_name="Li")
    await user.send_photo(JPEG, caption="pothole")
    (update,) = await abot.get_updates()
    assert update.message is not None and update.message.photo is not None
    assert update.message.caption == "pothole"
    largest = update.message.photo[-1]
    assert len(update.message.photo) == 3 and largest.width > update.message.photo[0].width

    file = await abot.get_file(largest.file_id)
    assert file.file_path is not None
    downloaded = await abot.download_file(file.file_path)
    assert downloaded is not None and downloaded.read() == JPEG

    ptb_file = await pbot.get_file(largest.file_id)
    assert bytes(await ptb_file.download_as_bytearray()) == JPEG

    with pytest.raises(TelegramBadRequest, match="invalid file_id"):
        await abot.get_file("nonsense")


async def test_send_document_and_photo_uploads(sim: BotApiSimulator, abot: AiogramBot, pbot: telegram.Bot) -> None:
    user = sim.user(1001, first_name="Li")
    await user.send_document("a.xlsx", b"PK\x03\x04sheet")
    (update,) = await abot.get_updates()
    assert update.message is not None and update.message.document is not None
    assert update.message.document.file_name == "a.xlsx"
    assert update.message.document.mime_type is not None and "spreadsheet" in update.message.document.mime_type

    sent = await abot.send_document(
        1001, BufferedInputFile(b"ward,count\nA1,3\n", filename="report.csv"), caption="Weekly report"
    )
    assert sent.document is not None and sent.document.file_name == "report.csv"
    document = user.messages[-1].document
    assert document is not None
    assert (document.name, document.data) == ("report.csv", b"ward,count\nA1,3\n")
    assert user.messages[-1].caption == "Weekly report"

    # PTB uploads as multipart with a JSON-encoded reply_markup string.
    markup = telegram.InlineKeyboardMarkup([[telegram.InlineKeyboardButton("Done", callback_data="done")]])
    photo_msg = await pbot.send_photo(1001, JPEG, caption="proof", reply_markup=markup)
    assert photo_msg.photo and photo_msg.caption == "proof"
    assert user.messages[-1].buttons() == [("Done", "done")]
    stored = sim.file(photo_msg.photo[-1].file_id)
    assert stored is not None and stored.data == JPEG

    # Re-sending by file_id reuses the stored file.
    again = await abot.send_photo(1001, photo_msg.photo[-1].file_id)
    assert again.photo is not None and again.photo[-1].file_id == photo_msg.photo[-1].file_id
    with pytest.raises(TelegramBadRequest, match="wrong file identifier"):
        await abot.send_photo(1001, "no-such-file-id")
    assert sim.sent_count == 3


# ----------------------------------------------------------------- webhook


async def test_webhook_delivery_with_secret_and_retry(sim: BotApiSimulator, abot: AiogramBot) -> None:
    received: list[tuple[str | None, dict[str, Any]]] = []
    statuses = [500]  # first delivery fails, the retry succeeds

    async def handle(request: web.Request) -> web.Response:
        received.append((request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json()))
        return web.Response(status=statuses.pop(0) if statuses else 200)

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        with pytest.raises(TelegramBadRequest):
            await abot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="not valid!")
        assert await abot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="s3cr_et-X")
        info = await abot.get_webhook_info()
        assert info.url == f"http://127.0.0.1:{port}/hook"
        assert sim.webhook["url"] == info.url
        with pytest.raises(TelegramConflictError, match="webhook is active"):
            await abot.get_updates()

        user = sim.user(1001, first_name="Li")
        await user.send_text("/start")
        for _ in range(200):
            if len(received) >= 2:
                break
            await asyncio.sleep(0.01)
        assert len(received) == 2, received
        assert all(secret == "s3cr_et-X" for secret, _ in received)
        assert received[-1][1]["update_id"] == 1
        assert received[-1][1]["message"]["text"] == "/start"
        assert sim.webhook["pending_update_count"] == 0

        assert await abot.delete_webhook()
        assert (await abot.get_webhook_info()).url == ""
        await user.send_text("polling again")
        assert [u.message.text for u in await abot.get_updates() if u.message] == ["polling again"]
    finally:
        await runner.cleanup()


async def test_webhook_gives_up_after_retries(sim: BotApiSimulator, abot: AiogramBot) -> None:
    attempts: list[int] = []

    async def handle(request: web.Request) -> web.Response:
        attempts.append((await request.json())["update_id"])
        return web.Response(status=502)

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        await abot.set_webhook(f"http://127.0.0.1:{runner.addresses[0][1]}/hook")
        await sim.user(1001, first_name="Li").send_text("lost")
        for _ in range(200):
            if sim.webhook["pending_update_count"] == 0 and attempts:
                break
            await asyncio.sleep(0.01)
        assert attempts == [1, 1, 1, 1]  # first try + 3 retries, then dropped
        info = await abot.get_webhook_info()
        assert info.pending_update_count == 0
        assert info.last_error_message is not None and "502" in info.last_error_message
    finally:
        await runner.cleanup()


async def test_webhook_reply_method_is_executed(sim: BotApiSimulator, abot: AiogramBot) -> None:
    """aiogram can answer a webhook request with a method call in a multipart body."""
    dp = Dispatcher()

    @dp.message()
    async def echo(message: Message) -> Any:
        return message.answer(f"echo: {message.text}")

    app = web.Application()
    SimpleRequestHandler(dispatcher=dp, bot=abot, handle_in_background=False, secret_token="tok").register(
        app, path="/hook"
    )
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        await abot.set_webhook(f"http://127.0.0.1:{runner.addresses[0][1]}/hook", secret_token="tok")
        user = sim.user(1001, first_name="Li")
        await user.send_text("ping")
        assert (await user.wait_for_text("echo: ping")).from_bot
        assert sim.sent_count == 1
    finally:
        await runner.cleanup()


# ----------------------------------------------------------------- fault injection


async def test_injected_failures_surface_as_errors(sim: BotApiSimulator, abot: AiogramBot, pbot: telegram.Bot) -> None:
    user = sim.user(1001, first_name="Li")
    await user.send_text("/start")

    sim.inject_failure(method="sendMessage", status=500, count=1)
    with pytest.raises(TelegramServerError):
        await abot.send_message(1001, "first try")
    await abot.send_message(1001, "second try")
    assert [m.text for m in user.messages] == ["second try"]

    sim.inject_failure(method="sendmessage", status=502)
    with pytest.raises(telegram.error.NetworkError):
        await pbot.send_message(1001, "through the gateway")

    sim.inject_failure(method="sendMessage", drop_connection=True)
    with pytest.raises(TelegramNetworkError):
        await abot.send_message(1001, "dropped")

    sim.inject_failure(method="getMe", status=500, count=2)
    with pytest.raises(TelegramServerError):
        await abot.get_me()
    with pytest.raises(TelegramServerError):
        await abot.get_me()
    assert (await abot.get_me()).id == 123456
    assert [m.text for m in user.messages] == ["second try"]


# ----------------------------------------------------------------- commands & driver


async def test_commands_are_stored_per_scope_and_language(sim: BotApiSimulator, abot: AiogramBot) -> None:
    user = sim.user(1001, first_name="Li")
    await user.send_text("/start")
    await abot.set_my_commands(
        [BotCommand(command="start", description="Start"), BotCommand(command="help", description="Help")]
    )
    await abot.set_my_commands([BotCommand(command="start", description="开始")], language_code="zh")
    await abot.set_my_commands(
        [BotCommand(command="admin", description="Admin")], scope=BotCommandScopeChat(chat_id=1001)
    )
    assert [c["command"] for c in sim.get_commands()] == ["start", "help"]
    assert sim.get_commands(language_code="zh") == [{"command": "start", "description": "开始"}]
    assert sim.commands[("chat:1001", "")] == [{"command": "admin", "description": "Admin"}]
    assert [c.command for c in await abot.get_my_commands(language_code="zh")] == ["start"]

    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await abot.set_my_commands([BotCommand(command="Bad-Command", description="x")])
    await abot.delete_my_commands(language_code="zh")
    assert await abot.get_my_commands(language_code="zh") == []
    assert await abot.send_chat_action(1001, "typing")
    assert list(user.chat_actions) == ["typing"]


async def test_wait_for_timeout_reports_transcript_and_events_are_published(
    sim: BotApiSimulator, abot: AiogramBot
) -> None:
    events: list[dict[str, Any]] = []

    async def collect(event: dict[str, Any]) -> None:
        events.append(event)

    unsubscribe = sim.subscribe(collect)
    user = sim.user(1001, first_name="Li")
    await user.send_text("/start")
    sent = await abot.send_message(1001, "Welcome")
    await abot.edit_message_text(text="Welcome!", chat_id=1001, message_id=sent.message_id)
    assert (await user.wait_for_text("Welcome!")).message_id == sent.message_id

    await user.send_text("next")
    with pytest.raises(AssertionError, match=r"(?s)transcript:.*'/start'.*'Welcome!'.*'next'"):
        await user.wait_for_text("Welcome", timeout=0.2)  # only output after the last action counts
    assert (await user.wait_for_text("Welcome", since=0)).message_id == sent.message_id

    for _ in range(100):
        if len(events) >= 4:
            break
        await asyncio.sleep(0.01)
    assert [e["type"] for e in events] == ["user_message", "bot_message", "bot_edit", "user_message"]
    assert events[2]["message"]["text"] == "Welcome!"
    unsubscribe()
    await user.send_text("unobserved")
    await asyncio.sleep(0.05)
    assert len(events) == 4


# ----------------------------------------------------------------- full frameworks


async def test_aiogram_dispatcher_polling_end_to_end(sim: BotApiSimulator, abot: AiogramBot) -> None:
    dp = Dispatcher()

    @dp.message(CommandStart(deep_link=True))
    async def start(message: Message, command: CommandObject) -> None:
        markup = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="OK", callback_data="ok")]])
        await message.answer(f"Grid {command.args}", reply_markup=markup)

    @dp.callback_query()
    async def pressed(query: CallbackQuery) -> None:
        await query.answer("noted")
        if isinstance(query.message, Message):
            await query.message.edit_text("Confirmed")

    polling = asyncio.create_task(dp.start_polling(abot, handle_signals=False, polling_timeout=1))
    try:
        user = sim.user(1001, first_name="Li")
        await user.send_text("/start b_A1")
        reply = await user.wait_for_text("Grid b_A1")
        await user.press(reply, "ok")
        assert (await user.wait_for_text("Confirmed")) is reply
        assert (await user.wait_for_answer()).text == "noted"
    finally:
        await dp.stop_polling()
        await asyncio.wait_for(polling, 5)


async def test_ptb_application_polling_end_to_end(sim: BotApiSimulator) -> None:
    assert sim.base_url is not None

    async def start(update: telegram.Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text(f"Hello {' '.join(context.args or [])}")

    app = (
        ApplicationBuilder()
        .token(TOKEN)
        .base_url(sim.base_url + "/bot")
        .base_file_url(sim.base_url + "/file/bot")
        .build()
    )
    app.add_handler(CommandHandler("start", start))
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=1)
        try:
            user = sim.user(1002, first_name="Ana")
            await user.send_text("/start b_A1")
            assert (await user.wait_for_text("Hello b_A1")).text == "Hello b_A1"
        finally:
            await app.updater.stop()
            await app.stop()


# ----------------------------------------------------------------- group chats


async def test_group_chat_messages_presses_and_privacy_mode(
    sim: BotApiSimulator, abot: AiogramBot, pbot: telegram.Bot
) -> None:
    li, wang, outsider = sim.user(1001, "Li"), sim.user(1002, "Wang"), sim.user(1003, "Zhao")
    group = sim.group(-1001, "建设一网格", privacy_mode=True)
    group.add_member(li)
    group.add_member(wang)
    with pytest.raises(RuntimeError):
        await group.say(li, "/link A")  # the bot is not in the group yet
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await abot.send_message(group.id, "hello")
    group.add_bot()
    with pytest.raises(ValueError):
        await group.say(outsider, "hi")
    await group.say(li, "good morning")  # privacy mode: the bot never sees it
    await group.say(li, "/link A")
    updates = await abot.get_updates()
    assert len(updates) == 1
    received = updates[0].message
    assert received is not None and received.text == "/link A"
    assert (received.chat.id, received.chat.type, received.chat.title) == (-1001, "supergroup", "建设一网格")
    assert received.from_user is not None and received.from_user.id == li.id

    card = await pbot.send_message(group.id, "R-1", reply_markup=telegram.InlineKeyboardMarkup(
        [[telegram.InlineKeyboardButton("Accept", callback_data="rq:acc:1")]]))
    shown = await group.wait_for_text("R-1")
    assert shown.message_id == card.message_id and li.messages == []
    await group.press_as(wang, shown, "rq:acc:1")
    pressed = (await pbot.get_updates(offset=updates[0].update_id + 1))[-1].callback_query
    assert pressed is not None and pressed.from_user.id == wang.id
    assert pressed.message is not None and pressed.message.chat.id == group.id
    await pbot.answer_callback_query(pressed.id, text="refused", show_alert=True)
    answer = await wang.wait_for_answer()
    assert answer.text == "refused" and answer.show_alert
    await abot.edit_message_text("R-1 accepted", chat_id=group.id, message_id=shown.message_id)
    assert (await group.wait_for_text("accepted")).edit_count == 1
