"""What every Telegram engine shares: taking updates in durably and in chat order, and running the bot.

An engine only translates between its framework and the core. ``UpdateIntake`` records each raw update before
it is confirmed to the platform (by the next getUpdates offset, or by the webhook's 200), hands fresh updates to
the engine's ``feed`` in per-chat order, and replays updates recorded but never handled before a crash.
``run_engine`` starts the outbox, broadcast and scheduler loops and takes updates in until ``stop`` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from aiohttp import web

from bot.broadcaster import BroadcastWorker
from bot.core.claims import stale_unhandled_updates
from bot.core.messages import SetCommands
from bot.runtime import Runtime
from bot.scheduler import scheduler_loop
from storage.database import DatabaseUnavailable

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.service import Service

log = logging.getLogger(__name__)

CHANNEL = "telegram"
ALLOWED_UPDATES = ["message", "callback_query"]
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
POLL_TIMEOUT = 25  # seconds a getUpdates call waits for updates
# Updates recorded but left unhandled while the process kept running (the database went away between recording
# and handling) are picked up this often; younger ones may still be on their way through this process.
SWEEP_INTERVAL = 30.0
SWEEP_MIN_AGE = timedelta(minutes=1)

RawUpdate = tuple[int, dict[str, Any]]
FeedUpdate = Callable[[dict[str, Any]], Awaitable[None]]


class PollPaused(Exception):
    """getUpdates failed; poll again after ``seconds`` (the platform's retry_after, or a short back-off)."""

    def __init__(self, seconds: float, reason: str = "") -> None:
        super().__init__(reason or f"retry in {seconds}s")
        self.seconds = seconds


class TelegramEngine(Protocol):
    """The framework-specific half of an engine."""

    async def feed(self, payload: dict[str, Any]) -> None:
        """Run one raw update through the framework and the core (in the caller's task)."""

    async def fetch_updates(self, offset: int | None, timeout: int) -> list[RawUpdate]:
        """One getUpdates call; raises ``PollPaused`` when it failed."""

    async def set_webhook(self, url: str, secret: str | None) -> None: ...

    async def delete_webhook(self) -> None: ...


class UpdateIntake:
    """Records raw updates, then hands the fresh ones to ``feed`` in background tasks, in per-chat order."""

    def __init__(self, runtime: Runtime, feed: FeedUpdate) -> None:
        self.runtime = runtime
        self.feed = feed
        # Updates handed to ``feed`` and not finished, so a sweep does not queue them a second time behind a
        # slow chat (handling one twice would be skipped anyway, but only after waiting its turn).
        self._in_flight: set[int] = set()

    def feed_in_background(self, payload: dict[str, Any]) -> None:
        update_id = int(payload.get("update_id", 0))
        self._in_flight.add(update_id)

        async def work() -> None:
            try:
                await self.feed(payload)
            finally:
                self._in_flight.discard(update_id)

        self.runtime.spawn_in_chat_order(chat_key(payload), work)

    async def replay_unhandled(self) -> None:
        for payload in await self.runtime.replay(CHANNEL):
            self.feed_in_background(payload)

    async def sweep_unhandled(self) -> int:
        """Hand over updates recorded over ``SWEEP_MIN_AGE`` ago and still not handled; returns how many."""
        before = self.runtime.core.clock() - SWEEP_MIN_AGE
        payloads: list[dict[str, Any]] = await self.runtime.database.run(
            partial(stale_unhandled_updates, channel=CHANNEL, received_before=before)
        )
        fresh = [payload for payload in payloads if payload.get("update_id") not in self._in_flight]
        for payload in fresh:
            self.feed_in_background(payload)
        return len(fresh)

    async def sweep(self, stop: asyncio.Event, interval: float = SWEEP_INTERVAL) -> None:
        """Run ``sweep_unhandled`` every ``interval`` seconds until ``stop`` is set."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
            if stop.is_set():
                return
            try:
                if swept := await self.sweep_unhandled():
                    log.warning("picked up %d update(s) recorded but never handled", swept)
            except DatabaseUnavailable:
                log.warning("inbox sweep: database unavailable, trying again later")
            except Exception:  # a bug here must not stop the sweeps for good
                log.exception("inbox sweep failed")

    async def take(self, updates: list[RawUpdate]) -> None:
        """Record ``updates`` and start the fresh ones; raises ``DatabaseUnavailable`` if nothing was recorded."""
        fresh = await self.runtime.record(CHANNEL, updates)
        for update_id, payload in updates:
            if update_id in fresh:
                self.feed_in_background(payload)

    async def poll(
        self, stop: asyncio.Event, fetch: Callable[[int | None, int], Awaitable[list[RawUpdate]]]
    ) -> None:
        """Long polling that records each batch durably before confirming it with the next offset."""
        await self.replay_unhandled()
        offset: int | None = None
        while not stop.is_set():
            try:
                updates = await fetch(offset, POLL_TIMEOUT)
            except PollPaused as pause:
                log.warning("getUpdates failed: %s", pause)
                await asyncio.sleep(pause.seconds)
                continue
            if not updates:
                continue
            try:
                await self.take(updates)
            except DatabaseUnavailable:
                # Not confirmed: the platform keeps the updates and hands them out again.
                await asyncio.sleep(1)
                continue
            offset = updates[-1][0] + 1

    async def serve_webhook(
        self,
        stop: asyncio.Event,
        url: str,
        secret: str | None,
        listen: str,
        set_webhook: Callable[[str, str | None], Awaitable[None]],
    ) -> None:
        """Serve the webhook until ``stop``; registers it (with the secret) with the Bot API first."""
        host, _, port = listen.rpartition(":")
        runner = web.AppRunner(self.webhook_app(urlsplit(url).path or "/", secret))
        await runner.setup()
        await web.TCPSite(runner, host or "127.0.0.1", int(port)).start()
        try:
            await self.replay_unhandled()
            await set_webhook(url, secret)
            await stop.wait()
        finally:
            await runner.cleanup()

    def webhook_app(self, path: str, secret: str | None) -> web.Application:
        """An aiohttp app that records each update, answers 200, then handles it."""

        async def receive(request: web.Request) -> web.Response:
            if secret is not None and not _secret_matches(request, secret):
                return web.Response(status=401, text="bad secret token")
            try:
                payload = await request.json()
                update_id = int(payload["update_id"])
            except (ValueError, KeyError, TypeError):
                return web.Response(status=400, text="not an update")
            try:
                await self.take([(update_id, payload)])
            except DatabaseUnavailable:
                return web.Response(status=503, text="try again")  # the platform redelivers
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_post(path, receive)
        return app


def _secret_matches(request: web.Request, secret: str) -> bool:
    given = request.headers.get(SECRET_HEADER, "")
    return hmac.compare_digest(given.encode(), secret.encode())


def chat_key(payload: dict[str, Any]) -> str:
    """The person an update comes from: their updates are handled one after another."""
    for key in ("message", "callback_query"):
        body = payload.get(key)
        if isinstance(body, dict):
            sender = body.get("from") or body.get("chat") or {}
            return str(sender.get("id", ""))
    return ""


def default_command_menus(service: Service, default_locale: str) -> Iterator[tuple[str | None, SetCommands]]:
    """(language code, menu) pairs for setMyCommands; None is the menu for languages without their own."""
    for locale, menu in service.default_command_menus().items():
        yield locale.split("_", 1)[0], menu
        if locale == default_locale:
            yield None, menu


async def run_until(stop: asyncio.Event, work: Coroutine[Any, Any, None]) -> None:
    """Run ``work`` until it ends or ``stop`` is set, whichever comes first."""
    task = asyncio.create_task(work)
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    for pending in (task, stopper):
        pending.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    with contextlib.suppress(asyncio.CancelledError):
        await stopper


def start_background_loops(settings: Settings, runtime: Runtime, stop: asyncio.Event) -> list[asyncio.Task[None]]:
    """What every channel's process runs beside taking updates in: the outbox, broadcasts and the scheduler."""
    return [
        asyncio.create_task(runtime.outbox.run(stop)),
        asyncio.create_task(BroadcastWorker.for_runtime(runtime).run(stop)),
        asyncio.create_task(scheduler_loop(settings, runtime, stop)),
    ]


async def cancel_loops(loops: list[asyncio.Task[None]]) -> None:
    """Stop loops still running (start-up failed, or shutdown): they must not outlive the engine."""
    for loop in loops:
        loop.cancel()
    await asyncio.gather(*loops, return_exceptions=True)


async def run_engine(settings: Settings, runtime: Runtime, engine: TelegramEngine, stop: asyncio.Event) -> None:
    """Take updates in (webhook if a URL is configured, else polling) and send until ``stop`` is set."""
    intake = UpdateIntake(runtime, engine.feed)
    loops = [*start_background_loops(settings, runtime, stop), asyncio.create_task(intake.sweep(stop))]
    try:
        if settings.webhook_url:
            await intake.serve_webhook(
                stop, settings.webhook_url, settings.webhook_secret_value, settings.webhook_listen,
                engine.set_webhook,
            )
        else:
            await engine.delete_webhook()
            await run_until(stop, intake.poll(stop, engine.fetch_updates))
        await runtime.drain()
        await asyncio.gather(*loops)
    finally:
        await cancel_loops(loops)
