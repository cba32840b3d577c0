"""Updates recorded in the inbox but never handled are picked up by the periodic sweep, once.

The database may go away between recording an update (which confirms it to Telegram) and handling it; without
the sweep such an update would wait for the next process start.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from sqlalchemy import select

from bot.core.app import Core, store_updates
from bot.core.clock import FrozenClock
from bot.core.context import CoreConfig
from bot.core.messages import Action, Delivery, Incoming, Sender, Text, parse_command
from bot.core.outbox import OutboxSender
from bot.engines.telegram import CHANNEL
from bot.engines.telegram_intake import SWEEP_MIN_AGE, UpdateIntake
from bot.runtime import Runtime
from handlers import build_router
from storage.database import Database
from storage.models import InboxUpdate


class RecordingChannel:
    name = CHANNEL

    def __init__(self) -> None:
        self.sent: list[tuple[str, Action]] = []

    async def perform(self, chat_id: str, action: Action) -> Delivery:
        self.sent.append((chat_id, action))
        return Delivery(ok=True, message_id=len(self.sent))


def payload(update_id: int, user_id: int = 3001) -> dict[str, Any]:
    return {"update_id": update_id, "message": {"from": {"id": user_id, "first_name": "Ann"}, "text": "/help"}}


class Intake:
    """An ``UpdateIntake`` over the core with a minimal engine: a payload's text becomes a ``Text`` event."""

    def __init__(self, database: Database, clock: FrozenClock) -> None:
        self.channel = RecordingChannel()
        core = Core(database, build_router(), CoreConfig(bot_username="gridbot_test"), clock)
        self.runtime = Runtime(core, OutboxSender(database, {CHANNEL: self.channel}, clock=clock))
        self.fed: list[int] = []
        self.intake = UpdateIntake(self.runtime, self.feed)

    async def feed(self, raw: dict[str, Any]) -> None:
        self.fed.append(raw["update_id"])
        sender_id = str(raw["message"]["from"]["id"])
        sender = Sender(CHANNEL, sender_id, sender_id, raw["message"]["from"]["first_name"], "en")
        words = raw["message"]["text"]
        await self.runtime.process(Incoming(CHANNEL, raw["update_id"], sender, parse_command(words) or Text(words)))

    async def sweep(self) -> int:
        swept = await self.intake.sweep_unhandled()
        await self.runtime.drain()
        return swept


async def record(database: Database, clock: FrozenClock, *update_ids: int) -> None:
    updates = [(update_id, payload(update_id, 3000 + update_id)) for update_id in update_ids]
    await database.run(partial(store_updates, channel=CHANNEL, updates=updates, now=clock()))


async def handled(database: Database) -> dict[int, bool]:
    rows = await database.run(lambda s: s.scalars(select(InboxUpdate)).all())
    return {row.update_id: row.handled_at is not None for row in rows}


async def test_sweep_handles_an_old_unhandled_update_once(database: Database, clock: FrozenClock) -> None:
    bot = Intake(database, clock)
    await record(database, clock, 7)  # recorded, then the database went away before it was handled

    clock.advance(seconds=30)
    assert await bot.sweep() == 0, "a young update may still be on its way through this process"
    assert await handled(database) == {7: False}

    clock.advance(seconds=SWEEP_MIN_AGE.total_seconds())
    assert await bot.sweep() == 1
    assert await handled(database) == {7: True}
    assert bot.fed == [7]
    answered = len(bot.channel.sent)
    assert answered >= 1, "the /help answer went out"

    clock.advance(minutes=5)
    assert await bot.sweep() == 0
    assert bot.fed == [7]
    assert len(bot.channel.sent) == answered


async def test_sweep_skips_an_update_being_handled(database: Database, clock: FrozenClock) -> None:
    """A row locked by a handling transaction (PostgreSQL) or queued in this process is left to its handler."""
    bot = Intake(database, clock)
    await record(database, clock, 8, 9)
    clock.advance(minutes=2)

    if database.dialect == "postgresql":
        async with database.async_engine.connect() as other:
            # Another process is handling update 8 right now: it holds the row as lock_inbox_row does.
            await other.execute(select(InboxUpdate.update_id).where(InboxUpdate.update_id == 8).with_for_update())
            assert await bot.sweep() == 1
            assert bot.fed == [9]
            await other.rollback()
    else:
        # SQLite has one writer and no row locks; an update already handed over in this process stands in.
        bot.intake._in_flight.add(8)
        assert await bot.sweep() == 1
        assert bot.fed == [9]
        bot.intake._in_flight.discard(8)

    assert await bot.sweep() == 1
    assert bot.fed == [9, 8]
    assert await handled(database) == {8: True, 9: True}
