"""Broadcasts end to end: the real aiogram engine against the Bot API simulator over HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from bot.config import Settings
from bot.engines.aiogram_engine import serve
from bot.service import Service, prepare_database
from bot.simulator import BotApiSimulator, SimMessage
from storage.database import Database
from storage.models import Broadcast, BroadcastRecipient, BroadcastStatus, RecipientStatus
from tests.broadcast_setup import ADMIN_ID, copies_received, make_deployment, open_chats

TOKEN = "123:ABC"
RESIDENTS = 2_000
BLOCKED = 5
RATE = 100


@dataclass
class Running:
    """The simulator, and the bot's service, started by ``start`` once the test has loaded its data."""

    sim: BotApiSimulator
    service: Service
    stop: asyncio.Event
    task: asyncio.Task[None] | None = None

    @property
    def database(self) -> Database:
        return self.service.database

    def start(self) -> None:
        self.task = asyncio.create_task(serve(self.service, self.stop))


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    sim = BotApiSimulator(token=TOKEN, flood_limit=RATE)
    url = await sim.start("127.0.0.1", 0)
    settings = Settings(
        token=SecretStr(TOKEN), api_url=url, database_url=f"sqlite+aiosqlite:///{tmp_path}/bot.db", send_rate=RATE,
        _env_file=None,  # type: ignore[call-arg]
    )
    service = Service.from_settings(settings)
    await prepare_database(service.database)
    running = Running(sim, service, asyncio.Event())
    try:
        yield running
    finally:
        running.stop.set()
        if running.task is not None:
            await asyncio.wait_for(running.task, 30)
        await service.database.dispose()
        await sim.stop()


def button_data(message: SimMessage, label_part: str) -> str:
    for text, data in message.buttons():
        if label_part in text and data:
            return data
    raise AssertionError(f"no button {label_part!r} in {message.buttons()}")


async def test_broadcast_to_2000_residents_reaches_each_once(running: Running) -> None:
    sim, database = running.sim, running.database
    deployment = await make_deployment(database, RESIDENTS)
    open_chats(sim, deployment.resident_ids)
    blocked = deployment.resident_ids[100 : 100 + BLOCKED]
    for user_id in blocked:
        sim.user(user_id).blocked = True
    running.start()

    admin = sim.user(ADMIN_ID, first_name="Wang", language_code="en")
    await admin.send_text("/broadcast")
    choice = await admin.wait_for_text("Who should receive", timeout=10)
    await admin.press(choice, button_data(choice, "Everyone in"))
    who = await admin.wait_for_text("Who in", timeout=10)
    await admin.press(who, button_data(who, "Residents"))
    await admin.wait_for_text("Now write the notice", timeout=10)
    notice = "Water is off tomorrow 9:00-12:00."
    await admin.send_text(notice)
    question = await admin.wait_for_text("Send it now?", timeout=10)
    assert "2,000 people" in (question.text or "")
    started = time.monotonic()
    await admin.press(question, button_data(question, "Send"))
    await admin.wait_for_text("is done", timeout=60)
    elapsed = time.monotonic() - started

    copies = copies_received(sim, deployment.resident_ids, f"📢 Notice from 建设社区\n\n{notice}")
    assert {user_id for user_id, n in copies.items() if n != 1} == set(blocked)
    assert all(copies[user_id] == 0 for user_id in blocked)
    broadcast = await database.run(lambda s: s.scalars(select(Broadcast)).one())
    assert broadcast.status is BroadcastStatus.FINISHED
    counts = (broadcast.total, broadcast.sent, broadcast.blocked, broadcast.failed)
    assert counts == (RESIDENTS, RESIDENTS - BLOCKED, BLOCKED, 0)
    not_sent = select(BroadcastRecipient.status).where(BroadcastRecipient.status != RecipientStatus.SENT)
    unsent = await database.run(lambda s: set(s.scalars(not_sent)))
    assert unsent == {RecipientStatus.BLOCKED}
    progress = admin.find_message(question.message_id)
    assert progress is not None and progress.edit_count >= 3  # queued, several progress edits, the summary
    assert "Blocked the bot: 5" in (progress.text or "")
    rate = (RESIDENTS - BLOCKED) / elapsed
    print(f"\n{RESIDENTS:,} recipients in {elapsed:.1f}s ({rate:.0f}/s), progress edits {progress.edit_count}")
