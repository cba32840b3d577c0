"""Both chat engines must look the same to the people using the bot.

One script of user actions runs on each engine against its own fresh simulator and database; every bot
message (text, inline buttons, reply keyboard), edit and button answer that each person saw is recorded in
order, and the two engines' transcripts must be equal message by message, as must the command menus.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bot.core.clock import FrozenClock
from bot.simulator import BotApiSimulator, SimMessage, SimUser
from storage.models import InboxUpdate, OutboxMessage, OutboxStatus
from tests.e2e import TOKEN, RunningBot, eventually, running_bot
from tests.org_fixture import make_small_org
from tests.postgres import scratch_postgres_database

ENGINES = ("aiogram", "ptb")
JPEG = b"\xff\xd8\xff\xe0" + b"a photo instead of words" * 20 + b"\xff\xd9"
# Both runs see the same time, so dates and deadlines in the texts are equal.
START = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)

Entry = tuple[Any, ...]


@dataclass
class Transcript:
    """What each person saw, in order: ("message" | "edit" | "answer", ...) entries keyed by chat id."""

    simulator: BotApiSimulator
    entries: dict[int, list[Entry]] = field(default_factory=dict)

    async def record(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        chat = int(event["chat_id"])
        if kind == "bot_message":
            self._add(chat, ("message", *self._content(event["message"]), self._reply_keyboard(chat, event)))
        elif kind == "bot_edit":
            self._add(chat, ("edit", *self._content(event["message"])))
        elif kind == "callback_answer":
            self._add(chat, ("answer", event["text"], event["show_alert"]))

    def _add(self, chat: int, entry: Entry) -> None:
        self.entries.setdefault(chat, []).append(entry)

    @staticmethod
    def _content(message: dict[str, Any]) -> Entry:
        rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
        buttons = tuple(tuple((b["text"], b.get("callback_data"), b.get("url")) for b in row) for row in rows)
        return message["message_id"], message.get("text") or message.get("caption"), "photo" in message, buttons

    def _reply_keyboard(self, chat: int, event: dict[str, Any]) -> Any:
        # Reply keyboards are not part of the Message object; the simulator keeps them on its copy.
        sent = self.simulator.users[chat].find_message(event["message"]["message_id"])
        markup = sent.reply_markup if sent is not None else None
        return None if markup is None or "inline_keyboard" in markup else markup


async def quiet(bot: RunningBot, actions: int) -> None:
    """Wait until the bot has handled ``actions`` updates and sent everything they caused."""

    async def settled() -> bool:
        handled = await bot.service.database.run(
            lambda s: s.scalar(select(func.count()).select_from(InboxUpdate).where(InboxUpdate.handled_at.is_not(None)))
        )
        pending = await bot.service.database.run(
            lambda s: s.scalar(
                select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == OutboxStatus.PENDING)
            )
        )
        return bool(handled == actions and pending == 0)

    await eventually(settled, timeout=10)


def button_with(message: SimMessage, part: str) -> str:
    for text, data in message.buttons():
        if data is not None and (part in text or data == part):
            return data
    raise AssertionError(f"no button {part!r} in {message.buttons()}")


def last_with_buttons(user: SimUser) -> SimMessage:
    for message in reversed(user.messages):
        if message.buttons():
            return message
    raise AssertionError(f"{user.first_name} has no message with buttons:\n{user.transcript}")


class Script:
    """The people's side of the conversation; each action waits until the bot is done with it."""

    def __init__(self, simulator: BotApiSimulator, bot: RunningBot) -> None:
        self.simulator = simulator
        self.bot = bot
        self.actions = 0

    async def act(self, action: Awaitable[object]) -> None:
        await action
        self.actions += 1
        await quiet(self.bot, self.actions)

    async def press(self, user: SimUser, part: str) -> None:
        message = last_with_buttons(user)
        await self.act(user.press(message, button_with(message, part)))

    async def run(self) -> None:
        li = self.simulator.user(3001, "李", language_code="zh-hans")
        ann = self.simulator.user(3002, "Ann", language_code="en")
        bo = self.simulator.user(3003, "Bo", language_code="en")

        await self.act(li.send_text("/start b_DG-JS-01-B1"))  # bound by deep link
        await self.act(li.send_text("/help"))
        await self.act(li.send_text("随便说点什么"))  # text the bot has no use for

        await self.act(ann.send_text("/start"))
        await self.act(ann.send_text("/building"))  # guided binding, button by button
        await self.press(ann, "新华街道")
        await self.press(ann, "人民社区")
        await self.press(ann, "人民路8号院2号楼")
        await self.act(ann.send_text("/lang"))
        await self.press(ann, "lang:zh_CN")
        await self.act(ann.send_text("/help"))

        await self.act(bo.send_text("/building"))
        await self.act(bo.send_location(32.9986, 112.5284))
        await self.press(bo, "建设路12号院1号楼")
        await self.act(bo.send_text("/new"))
        await self.press(bo, "Clutter")
        await self.act(bo.send_photo(JPEG))  # a photo where a description is expected
        await self.act(bo.send_text("/cancel"))


@contextlib.asynccontextmanager
async def fresh_database(tmp_path: Path, name: str) -> AsyncIterator[str]:
    server = os.environ.get("GRIDBOT_TEST_POSTGRES")
    if not server:
        yield f"sqlite+aiosqlite:///{tmp_path}/{name}.db"
        return
    async with scratch_postgres_database(server) as url:
        yield url


async def run_script_on(engine: str, tmp_path: Path) -> tuple[dict[int, list[Entry]], dict[Any, Any]]:
    """The transcripts and command menus one engine produces for the script."""
    simulator = BotApiSimulator(token=TOKEN)
    url = await simulator.start("127.0.0.1", 0)
    transcript = Transcript(simulator)
    simulator.subscribe(transcript.record)
    try:
        async with (
            fresh_database(tmp_path, engine) as database_url,
            running_bot(simulator, url, database_url, engine, clock=FrozenClock(START)) as bot,
        ):
            await bot.service.database.run(make_small_org)
            await Script(simulator, bot).run()
        await asyncio.sleep(0.1)  # the simulator hands events to subscribers in a background task
        return transcript.entries, dict(simulator.commands)
    finally:
        await simulator.stop()


async def test_both_engines_show_people_the_same_conversation(tmp_path: Path) -> None:
    results = {engine: await run_script_on(engine, tmp_path) for engine in ENGINES}
    (reference, reference_menus), (other, other_menus) = results["aiogram"], results["ptb"]

    assert sorted(reference) == sorted(other) == [3001, 3002, 3003]
    for chat, entries in reference.items():
        assert len(entries) >= 3, f"chat {chat} saw too little to compare: {entries}"
        for index, (expected, seen) in enumerate(zip(entries, other[chat], strict=False)):
            assert seen == expected, f"chat {chat}, entry {index}: aiogram showed {expected!r}, ptb {seen!r}"
        assert len(other[chat]) == len(entries), f"chat {chat}: aiogram {len(entries)} entries, ptb {len(other[chat])}"
    assert other_menus == reference_menus
    assert any(key != ("default", "") for key in reference_menus), "per-chat or per-language menus were set"
