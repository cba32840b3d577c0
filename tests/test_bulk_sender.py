"""The broadcaster's fast path to the Bot API, against the simulator: a message encoded once reaches each chat,
and every answer reads as the delivery the engines' clients would report (sent, blocked, refused for good,
429 with its pause, 5xx and a dropped connection to try again), never with the token in it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from bot.core.messages import EditText, InlineKeyboard, SendDocument, SendPhoto, SendText
from bot.engines.bulk import BulkSender, delivery_of
from bot.engines.telegram import ApiCall, TelegramChannel, api_call
from bot.simulator import BotApiSimulator

TOKEN = "123456:BULK-secret-token"


@pytest.fixture
async def simulator() -> AsyncIterator[tuple[BotApiSimulator, BulkSender]]:
    sim = BotApiSimulator(token=TOKEN)
    url = await sim.start("127.0.0.1", 0)
    sender = BulkSender(url, TOKEN)
    try:
        yield sim, sender
    finally:
        await sender.close()
        await sim.stop()


async def test_one_prepared_message_reaches_each_chat_with_its_own_id(
    simulator: tuple[BotApiSimulator, BulkSender],
) -> None:
    sim, sender = simulator
    users = [sim.user(user_id, "Resident") for user_id in (501, 502, 503)]
    for user in users:
        user.started = True  # they opened the bot once, so it may write to them
    call = sender.prepare(api_call(0, SendText("停水通知：明天 8:00-12:00 \"检修\"")))
    deliveries = [await sender.send(call, user.id) for user in users]
    assert all(delivery.ok and delivery.message_id is not None for delivery in deliveries)
    assert [[message.text for message in user.messages] for user in users] == [
        ['停水通知：明天 8:00-12:00 "检修"']] * 3


def test_the_chat_id_is_spliced_into_a_body_encoded_once() -> None:
    sender = BulkSender("http://127.0.0.1:9", TOKEN)
    photo = sender.prepare(api_call(0, SendPhoto("AgACfile", "停水")))
    assert photo.url == f"http://127.0.0.1:9/bot{TOKEN}/sendPhoto"
    assert json.loads(photo.body(42)) == {"chat_id": 42, "photo": "AgACfile", "caption": "停水"}
    bare = sender.prepare(ApiCall("getChat", {"chat_id": 0}))
    assert json.loads(bare.body(-1001)) == {"chat_id": -1001}


async def test_answers_read_as_the_engines_read_them(simulator: tuple[BotApiSimulator, BulkSender]) -> None:
    sim, sender = simulator
    user = sim.user(701, "Resident")
    user.started = True
    call = sender.prepare(api_call(0, SendText("Notice")))
    user.blocked = True
    blocked = await sender.send(call, user.id)
    assert (blocked.ok, blocked.blocked) == (False, True)
    user.blocked = False
    sim.inject_failure("sendMessage", status=429, retry_after=7)
    paused = await sender.send(call, user.id)
    assert (paused.ok, paused.retry_after) == (False, 7.0)
    sim.inject_failure("sendMessage", status=400, description="Bad Request: chat not found")
    refused = await sender.send(call, user.id)
    assert (refused.ok, refused.permanent, refused.error) == (False, True, "Bad Request: chat not found")
    for status in (500, 502):  # 502 is an HTML page from Telegram's proxy
        sim.inject_failure("sendMessage", status=status)
        failed = await sender.send(call, user.id)
        assert (failed.ok, failed.permanent, failed.blocked, failed.outcome_unknown) == (False, False, False, False)
    sim.inject_failure("sendMessage", drop_connection=True)
    dropped = await sender.send(call, user.id)
    assert (dropped.ok, dropped.outcome_unknown) == (False, True)
    assert TOKEN not in dropped.error
    assert (await sender.send(call, user.id)).ok  # the failures were one call each
    unreadable = delivery_of(200, b"<html>not the Bot API</html>")  # it may have gone
    assert (unreadable.ok, unreadable.outcome_unknown, unreadable.permanent) == (False, True, False)


async def test_an_unreachable_api_is_an_unknown_outcome_without_the_token() -> None:
    sender = BulkSender("http://127.0.0.1:9", TOKEN)
    try:
        delivery = await sender.send(sender.prepare(ApiCall("sendMessage", {"text": "x"})), 42)
    finally:
        await sender.close()
    assert (delivery.ok, delivery.outcome_unknown) == (False, True)
    assert TOKEN not in delivery.error and "BULK-secret" not in delivery.error


def test_only_sends_take_the_bulk_path_and_uploads_are_refused() -> None:
    channel = TelegramChannel(client=None, bulk_sender=BulkSender("http://127.0.0.1:9", TOKEN))  # type: ignore[arg-type]
    assert channel.bulk(SendText("x")) is not None
    assert channel.bulk(EditText(1, "x", InlineKeyboard(()))) is None
    assert TelegramChannel(client=None).bulk(SendText("x")) is None  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no upload"):
        BulkSender("http://127.0.0.1:9", TOKEN).prepare(api_call(0, SendDocument("a.pdf", b"%PDF".hex())))
