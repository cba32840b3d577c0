"""Putting the pieces together for ``gridbot run``: database, core, engine, outbox, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bot.config import Settings, meeting_defaults
from bot.core.app import Core
from bot.core.clock import Clock, system_clock
from bot.core.context import CoreConfig
from bot.core.messages import SetCommands
from bot.core.outbox import Channel, OutboxSender
from bot.core.rate import SharedRateLimiter
from bot.core.router import Router
from bot.core.throttle import Throttle
from bot.engines.telegram import WeChatCodes
from bot.i18n import available_locales, translator
from bot.logs import protect_logs
from bot.runtime import Runtime
from handlers import build_router
from handlers.menu import command_menu
from storage.database import Database, is_sqlite
from storage.migrate import is_up_to_date, upgrade

log = logging.getLogger(__name__)


@dataclass
class Service:
    """Everything a running bot needs that does not depend on the chat engine."""

    settings: Settings
    database: Database
    router: Router = field(default_factory=build_router)
    clock: Clock = system_clock
    # Channels served beside the engine's own (WeChat next to Telegram), sharing its runtime and outbox.
    extra_channels: dict[str, Channel] = field(default_factory=dict)
    # WeChat's QR-code API when WeChat is served beside Telegram: Telegram chats get WeChat's invitation codes too.
    wechat_codes: WeChatCodes | None = None
    # Told about every runtime built, so a channel served beside an engine can feed the engine's runtime.
    runtime_listeners: list[Callable[[Runtime], object]] = field(default_factory=list)

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock = system_clock) -> Service:
        """The service of a running bot; from here on no log line shows one of its secrets."""
        protect_logs(settings)
        return cls(settings=settings, database=settings.database(), clock=clock)

    def core_config(self, bot_username: str) -> CoreConfig:
        return CoreConfig(
            timezone=self.settings.timezone,
            default_locale=self.settings.default_locale,
            bot_username=bot_username,
            daily_request_limit=self.settings.daily_request_limit,
            open311_daily_limit=self.settings.open311_daily_limit,
            retention_days=self.settings.retention_days,
            visit_target=self.settings.visit_target,
            meetings=meeting_defaults(self.settings),
            desk_url=self.settings.desk_base_url,
        )

    def default_command_menus(self) -> dict[str, SetCommands]:
        """The residents' command menu in every language, for chats that have no menu of their own."""
        return {
            locale: command_menu(translator(locale, self.settings.timezone), None)
            for locale in available_locales()
        }

    def runtime(self, channels: dict[str, Channel], bot_username: str) -> Runtime:
        core = Core(self.database, self.router, self.core_config(bot_username), self.clock)
        if self.settings.throttle_messages:
            core.throttle = Throttle(self.settings.throttle_messages, self.settings.throttle_seconds)
        channels = {**self.extra_channels, **channels}
        outbox = OutboxSender(self.database, channels, rate=self.settings.send_rate, clock=self.clock)
        if not is_sqlite(self.database.url):
            # Several processes may send at once: they share one rate through the database.
            outbox.limiter = SharedRateLimiter(self.database, self.settings.send_rate)
        runtime = Runtime(core, outbox)
        for listener in self.runtime_listeners:
            listener(runtime)
        return runtime


async def prepare_database(database: Database) -> None:
    """Create or upgrade the schema and seed what a new deployment needs."""
    if not await is_up_to_date(database):
        log.info("upgrading the database schema")
        await upgrade(database)
    from bot.core.categories import seed_categories

    await database.run(seed_categories)


def freeze_startup_objects() -> None:
    """Exempt everything loaded at start-up from garbage collection.

    aiogram's Bot API models alone are about 250,000 objects that live as long as the process; every full
    collection walks all of them, which stalls the event loop (and every update in flight) for 0.1-0.4 s on a
    small machine. Frozen objects are never freed, which is what happens to them anyway.

    Only the young generations are collected first: a full collection here takes 0.1-0.2 s of every start-up
    and finds nothing, since what the imports leave behind is referenced, not garbage.
    """
    gc.collect(1)
    gc.freeze()


async def run_until_stopped(work: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run ``work(stop)``; SIGINT / SIGTERM set ``stop`` for a clean shutdown."""
    freeze_startup_objects()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    await work(stop)
