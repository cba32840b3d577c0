"""The foundation through each chat engine against the Bot API simulator over HTTP."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
from sqlalchemy import func, select

from bot.simulator import BotApiSimulator, SimMessage
from storage.models import InboxUpdate, OutboxMessage, OutboxStatus, Person
from tests.e2e import eventually, running_bot
from tests.org_fixture import make_small_org


async def test_deep_link_binding(sim: tuple[BotApiSimulator, str], database_url: str, engine: str) -> None:
    simulator, url = sim
    async with running_bot(simulator, url, database_url, engine) as bot:
        await bot.service.database.run(make_small_org)
        li = simulator.user(2001, "李", language_code="zh-hans")
        await li.send_text("/start b_DG-JS-01-B1")
        reply = await li.wait_for_text("建设路12号院1号楼")
        assert reply.reply_markup is not None  # the main menu came with it
        person = await bot.service.database.run(
            lambda s: s.scalars(select(Person).where(Person.external_id == "2001")).one()
        )
        assert person.building is not None and person.building.code == "DG-JS-01-B1"
        assert simulator.get_commands(language_code="zh"), "command menu registered for Chinese"


async def test_guided_and_location_binding_and_unknown_code(
    sim: tuple[BotApiSimulator, str], database_url: str, engine: str
) -> None:
    simulator, url = sim
    async with running_bot(simulator, url, database_url, engine) as bot:
        await bot.service.database.run(make_small_org)
        ann = simulator.user(2002, "Ann", language_code="en")
        await ann.send_text("/start b_NO-SUCH")
        await ann.wait_for_text("NO-SUCH")
        choice = await ann.wait_for_text("Choose your street")
        await ann.press(choice, choice_data(choice, "新华街道"))
        await ann.wait_for_text("Choose your community")
        await ann.press(choice, choice_data(choice, "人民社区"))
        await ann.wait_for_text("Choose your building")
        await ann.press(choice, choice_data(choice, "人民路8号院2号楼"))
        await ann.wait_for_text("Your building is now 人民路8号院2号楼")

        bo = simulator.user(2003, "Bo", language_code="en")
        await bo.send_text("/building")
        await bo.wait_for_text("send your location")
        await bo.send_location(32.9986, 112.5284)
        offer = await bo.wait_for_text("Which of these")
        await bo.press(offer, choice_data(offer, "建设路12号院1号楼"))
        await bo.wait_for_text("Your building is now 建设路12号院1号楼")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_webhook_refuses_bad_secret_and_processes_a_duplicate_once(
    sim: tuple[BotApiSimulator, str], database_url: str, engine: str
) -> None:
    simulator, url = sim
    port = free_port()
    hook = f"http://127.0.0.1:{port}/telegram"
    async with running_bot(
        simulator, url, database_url, engine, webhook_url=hook, webhook_secret="s3cret-Token",
        webhook_listen=f"127.0.0.1:{port}",
    ) as bot:
        await bot.service.database.run(make_small_org)
        cy = simulator.user(2004, "Cy", language_code="en")
        await _wait_for_webhook(simulator)
        await cy.send_text("/help")
        await cy.wait_for_text("/new")
        handled = await bot.service.database.run(lambda s: s.scalars(select(InboxUpdate)).one())
        replies = len(cy.messages)
        update = {
            "update_id": handled.update_id,
            "message": {
                "message_id": 1, "date": 0, "chat": {"id": 2004, "type": "private"},
                "from": {"id": 2004, "is_bot": False, "first_name": "Cy", "language_code": "en"}, "text": "/help",
            },
        }
        async with aiohttp.ClientSession() as http:
            for secret in (None, "wrong"):
                headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret else {}
                async with http.post(hook, json=update, headers=headers) as response:
                    assert response.status in (401, 403)
            headers = {"X-Telegram-Bot-Api-Secret-Token": "s3cret-Token"}
            async with http.post(hook, json=update, headers=headers) as response:
                assert response.status == 200
        await bot.drain()
        assert len(cy.messages) == replies, "a redelivered update must not be answered again"
        count = await bot.service.database.run(lambda s: s.scalar(select(func.count()).select_from(InboxUpdate)))
        assert count == 1


async def _wait_for_webhook(simulator: BotApiSimulator) -> None:
    for _ in range(100):
        if simulator.webhook.get("url"):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the bot never set its webhook")


async def test_reply_is_delivered_after_a_429(
    sim: tuple[BotApiSimulator, str], database_url: str, engine: str
) -> None:
    simulator, url = sim
    async with running_bot(simulator, url, database_url, engine) as bot:
        await bot.service.database.run(make_small_org)
        dee = simulator.user(2005, "Dee", language_code="en")
        simulator.inject_failure("sendMessage", status=429, retry_after=1)
        await dee.send_text("/help")
        message = await dee.wait_for_text("/new", timeout=8)
        assert message.text is not None

        async def replies_recorded_sent() -> list[OutboxMessage]:
            rows = await bot.service.database.run(lambda s: s.scalars(select(OutboxMessage)).all())
            replies = [r for r in rows if r.action.get("type") == "SendText"]
            return replies if replies and all(r.status == OutboxStatus.SENT for r in replies) else []

        sent = await eventually(replies_recorded_sent)
        assert any(r.attempts == 2 for r in sent), "the first attempt met the 429"


def choice_data(message: SimMessage, label: str) -> str:
    for row in message.inline_keyboard:
        for button in row:
            if label in button["text"]:
                return str(button["callback_data"])
    raise AssertionError(f"no button {label!r}")
