"""What every engine shares: handle an update through the core, deliver its messages, keep chats in order.

An engine turns its framework's updates into ``Incoming`` events and hands them to ``Runtime.process``; it
records raw updates with ``Runtime.record`` before confirming them to the platform, and replays what was
recorded but not handled with ``Runtime.replay`` at start-up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from bot.core.app import Core, store_updates, try_again_later, unhandled_updates
from bot.core.messages import Action, AnswerButton, ButtonPress, Incoming
from bot.core.outbox import Channel, OutboxSender
from storage.database import DatabaseUnavailable

log = logging.getLogger(__name__)

# Pauses between attempts at an update while the database is unavailable; then the person is told to try again.
RETRY_PAUSES: tuple[float | None, ...] = (0.2, 1.0, None)


class ChatOrder:
    """Serialises work per chat (asyncio locks wake waiters first-in, first-out) while chats run in parallel."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    async def run(self, chat: str, work: Callable[[], Awaitable[None]]) -> None:
        lock = self._locks.setdefault(chat, asyncio.Lock())
        self._users[chat] = self._users.get(chat, 0) + 1
        try:
            async with lock:
                await work()
        finally:
            self._users[chat] -= 1
            if self._users[chat] == 0:
                del self._users[chat]
                del self._locks[chat]


class Runtime:
    def __init__(self, core: Core, outbox: OutboxSender) -> None:
        self.core = core
        self.outbox = outbox
        self.chat_order = ChatOrder()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def database(self) -> Any:
        return self.core.database

    async def process(self, incoming: Incoming) -> None:
        """Handle one update and send what it caused; the database being down gets a polite answer."""
        for pause in RETRY_PAUSES:
            try:
                deliveries = await self.core.handle(incoming)
                break
            except DatabaseUnavailable:
                if pause is None:
                    await self._apologise(incoming)
                    return
                # A lock held a moment too long or a connection dropped: the unit of work was rolled back
                # whole, so trying again cannot apply anything twice.
                await asyncio.sleep(pause)
        if deliveries:
            await self.outbox.deliver(deliveries)

    async def _apologise(self, incoming: Incoming) -> None:
        channel: Channel | None = self.outbox.channels.get(incoming.channel)
        if channel is None:
            return
        config = self.core.config
        actions: list[Action] = [try_again_later(incoming.sender, config.default_locale, config.timezone)]
        if isinstance(incoming.event, ButtonPress):
            actions.insert(0, AnswerButton(incoming.event.callback_id))  # stop the button's spinner too
        for action in actions:
            try:
                await channel.perform(incoming.sender.chat_id, action)
            except Exception:
                log.exception("could not tell %s to try again", incoming.sender.chat_id)

    def spawn_in_chat_order(self, chat: str, work: Callable[[], Awaitable[None]]) -> None:
        """Run ``work`` after earlier work of the same chat, without waiting for it."""
        task = asyncio.create_task(self.chat_order.run(chat, work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for every update in flight (used at shutdown and by tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def record(self, channel: str, updates: list[tuple[int, dict[str, Any]]]) -> set[int]:
        """Durably record raw updates; returns the ids seen for the first time."""
        fresh = await self.database.run(
            partial(store_updates, channel=channel, updates=updates, now=self.core.clock())
        )
        return set(fresh)

    async def replay(self, channel: str) -> list[dict[str, Any]]:
        """Raw updates recorded before a crash but never handled."""
        payloads: list[dict[str, Any]] = await self.database.run(partial(unhandled_updates, channel=channel))
        return payloads
