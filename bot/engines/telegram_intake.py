"""Taking Telegram updates in durably and in chat order, and running a Telegram engine.

``UpdateIntake`` records each raw update before it is confirmed to the platform (by the next getUpdates offset,
or by the webhook's 200), hands fresh updates to ``feed`` in per-chat order, and replays updates recorded but
never handled before a crash. An update that cannot be recorded in time gets a "busy, try again" answer and
is left unconfirmed, so Telegram hands it out again; one whose handling keeps failing becomes a dead letter
(see ``bot.core.inbox``) and is answered once. ``serve_telegram`` runs all of it over an engine's client.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiohttp import web
from sqlalchemy.exc import StatementError

from bot.core.app import try_again_later
from bot.core.claims import stale_unhandled_updates
from bot.core.inbox import mark_ignored, record_failure
from bot.core.messages import Action, AnswerButton, Sender, SendText, SetCommands
from bot.engines.background import cancel_loops, start_background_loops
from bot.engines.bulk import BulkSender
from bot.engines.telegram import (
    ALLOWED_UPDATES,
    CHANNEL,
    ApiCall,
    BotApiClient,
    NotAnUpdate,
    TelegramChannel,
    chat_key,
    incoming_from_update,
    is_update_id,
    reply_address,
    set_commands_call,
)
from bot.i18n import negotiate_locale, translator
from bot.logs import redact
from bot.monitoring import Monitor
from bot.runtime import Runtime
from storage.database import DatabaseUnavailable

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.service import Service

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
POLL_TIMEOUT = 25  # seconds a getUpdates call waits for updates
# Updates recorded but left unhandled while the process kept running (the database went away between recording
# and handling) are picked up this often; younger ones may still be on their way through this process.
SWEEP_INTERVAL = 30.0
SWEEP_MIN_AGE = timedelta(minutes=1)
# How long recording an update may take before the person is told the bot is busy (it keeps trying after).
RECORD_PATIENCE = 3.0

RawUpdate = tuple[int, dict[str, Any]]
FeedUpdate = Callable[[dict[str, Any]], Awaitable[None]]
# An answer given without the database: (sender, default locale, time zone) -> the message.
Reply = Callable[[Sender, str, str], SendText]


class PollPaused(Exception):
    """getUpdates failed; poll again after ``seconds`` (the platform's retry_after, or a short back-off)."""

    def __init__(self, seconds: float, reason: str = "") -> None:
        super().__init__(reason or f"retry in {seconds}s")
        self.seconds = seconds


class UpdateIntake:
    """Records raw updates, then hands the fresh ones to ``feed`` in background tasks, in per-chat order."""

    def __init__(self, runtime: Runtime, feed: FeedUpdate) -> None:
        self.runtime = runtime
        self.feed = feed
        # Updates handed to ``feed`` and not finished, so a sweep does not queue them a second time behind a
        # slow chat (handling one twice would be skipped anyway, but only after waiting its turn).
        self._in_flight: set[int] = set()
        # Updates whose sender was told the bot is busy, so a redelivery of the same update is not told again.
        self._told_busy: set[int] = set()

    def feed_in_background(self, payload: dict[str, Any]) -> None:
        update_id = int(payload.get("update_id", 0))
        self._in_flight.add(update_id)

        async def work() -> None:
            try:
                await self.feed(payload)
            except DatabaseUnavailable:
                log.warning("update %s: database unavailable, left for the sweep", update_id)
            except Exception as error:
                await self._failed(update_id, payload, error)
            finally:
                self._in_flight.discard(update_id)

        self.runtime.spawn_in_chat_order(chat_key(payload), work)

    async def _failed(self, update_id: int, payload: dict[str, Any], error: Exception) -> None:
        """Count a failed attempt; a dead update's sender is told once that it could not be handled."""
        hopeless = isinstance(error, NotAnUpdate)
        if hopeless:
            log.warning("update %s is not a Telegram update: %s", update_id, error)
        else:
            log.exception("update %s could not be handled", update_id)
        try:
            dead = await self.runtime.database.run(partial(
                record_failure, channel=CHANNEL, update_id=update_id, error=describe_failure(error),
                now=self.runtime.core.clock(), hopeless=hopeless,
            ))
        except DatabaseUnavailable:
            return  # counted next time
        if dead:
            log.warning("update %s is dead: it is not tried again (gridbot inbox dead lists it)", update_id)
            await self._answer(payload, could_not_handle)

    async def _answer(self, payload: dict[str, Any], reply: Reply) -> None:
        """Tell whoever sent ``payload`` something, without the database; a button's spinner stops too."""
        channel = self.runtime.outbox.channels.get(CHANNEL)
        chat_id, callback_id, language = reply_address(payload)
        if channel is None or chat_id is None:
            return
        config = self.runtime.core.config
        sender = Sender(CHANNEL, external_id=chat_id, chat_id=chat_id, language_code=language)
        actions: list[Action] = [AnswerButton(callback_id)] if callback_id else []
        actions.append(reply(sender, config.default_locale, config.timezone))
        for action in actions:
            try:
                await channel.perform(chat_id, action)
            except Exception:
                log.exception("could not answer chat %s", chat_id)

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
        """Record ``updates`` and start the fresh ones; raises ``DatabaseUnavailable`` if nothing was recorded.

        If recording takes longer than ``RECORD_PATIENCE``, the senders are told the bot is busy (once per
        update) while it goes on trying: a person pressing a button hears something within seconds.
        """
        recording = asyncio.ensure_future(self.runtime.record(CHANNEL, updates))
        done, _pending = await asyncio.wait({recording}, timeout=RECORD_PATIENCE)
        if not done:
            await self._tell_busy(updates)
        try:
            fresh = await recording
        except DatabaseUnavailable:
            await self._tell_busy(updates)
            raise
        for update_id, payload in updates:
            self._told_busy.discard(update_id)
            if update_id in fresh:
                self.feed_in_background(payload)

    async def _tell_busy(self, updates: list[RawUpdate]) -> None:
        if len(self._told_busy) > 10_000:  # ids of updates that never came back
            self._told_busy.clear()
        for update_id, payload in updates:
            if update_id in self._told_busy:
                continue
            self._told_busy.add(update_id)
            await self._answer(payload, try_again_later)

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
        secret: str,
        listen: str,
        set_webhook: Callable[[str, str], Awaitable[None]],
        monitor: Monitor | None = None,
    ) -> None:
        """Serve the webhook (and ``monitor``'s routes) until ``stop``; registers it (with the secret) with the
        Bot API first."""
        host, _, port = listen.rpartition(":")
        app = self.webhook_app(urlsplit(url).path or "/", secret)
        if monitor is not None:
            monitor.mount(app)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, host or "127.0.0.1", int(port)).start()
        try:
            await self.replay_unhandled()
            await set_webhook(url, secret)
            await stop.wait()
        finally:
            await runner.cleanup()

    def webhook_app(self, path: str, secret: str) -> web.Application:
        """An aiohttp app that records each update signed with ``secret``, answers 200, then handles it."""
        if not secret:
            raise ValueError("a webhook needs a secret token")  # see Settings: unsigned updates are refused

        async def receive(request: web.Request) -> web.Response:
            if not _secret_matches(request, secret):
                return web.Response(status=401, text="bad secret token")
            try:
                payload = await request.json()
            except ValueError:
                return web.Response(status=400, text="not JSON")
            if not isinstance(payload, dict) or not is_update_id(payload.get("update_id")):
                return web.Response(status=400, text="not an update")
            try:
                await self.take([(payload["update_id"], payload)])
            except DatabaseUnavailable:
                return web.Response(status=503, text="try again")  # the platform redelivers
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_post(path, receive)
        return app


def could_not_handle(sender: Sender, default_locale: str, timezone: str) -> SendText:
    """The one answer to an update given up on."""
    t = translator(negotiate_locale(sender.language_code, default_locale), timezone)
    return SendText(t._("Sorry, this message could not be handled."))


def _secret_matches(request: web.Request, secret: str) -> bool:
    given = request.headers.get(SECRET_HEADER, "")
    return hmac.compare_digest(given.encode(), secret.encode())


def describe_failure(error: Exception) -> str:
    """An error as stored with a dead letter: its kind and message, without SQL parameters or secrets."""
    detail = error.orig if isinstance(error, StatementError) and error.orig is not None else error
    first_line = str(detail).splitlines()[0] if str(detail) else ""
    return redact(f"{type(error).__name__}: {first_line}")


# --- running an engine ----------------------------------------------------------------------------------


async def feed_update(runtime: Runtime, payload: dict[str, Any]) -> None:
    """Run one raw update through the core (in the caller's task); raises ``NotAnUpdate`` for bad JSON."""
    incoming = incoming_from_update(payload)
    if incoming is None:
        await runtime.database.run(
            partial(mark_ignored, channel=CHANNEL, update_id=payload["update_id"], now=runtime.core.clock())
        )
        return
    await runtime.process(incoming)


async def fetch_updates(client: BotApiClient, offset: int | None, timeout: int) -> list[RawUpdate]:
    """One getUpdates call, as raw JSON (an update no library can parse is still recorded and dealt with)."""
    call = ApiCall("getUpdates", {"timeout": timeout, "allowed_updates": ALLOWED_UPDATES})
    if offset is not None:
        call.params["offset"] = offset
    try:
        updates = await client.call(call, timeout=timeout + 10)
    except Exception as error:
        failure = client.failure(error)
        if failure is None or failure.permanent or failure.blocked:
            raise  # a broken request or a revoked token does not mend by waiting
        raise PollPaused(failure.retry_after or 1.0, failure.error) from error
    return [
        (update["update_id"], update)
        for update in updates
        if isinstance(update, dict) and is_update_id(update.get("update_id"))
    ]


async def serve_telegram(service: Service, stop: asyncio.Event, client: BotApiClient) -> None:
    """Run the bot over ``client`` until ``stop`` is set: polling, or a webhook server if a URL is configured."""
    me = await client.call(ApiCall("getMe"))
    bulk_sender = BulkSender(service.settings.api_url, service.settings.token_value or "")
    channel = TelegramChannel(client, service.wechat_codes, bulk_sender)
    runtime = service.runtime({CHANNEL: channel}, me.get("username") or "")
    try:
        for language, menu in default_command_menus(service):
            await client.call(set_commands_call(menu, language=language))
        await run_intake(service.settings, runtime, client, stop)
    finally:
        await bulk_sender.close()


def default_command_menus(service: Service) -> Iterator[tuple[str | None, SetCommands]]:
    """(language code, menu) pairs for setMyCommands; None is the menu for languages without their own."""
    default_locale = service.settings.default_locale
    for locale, menu in service.default_command_menus().items():
        yield locale.split("_", 1)[0], menu
        if locale == default_locale:
            yield None, menu


async def run_intake(settings: Settings, runtime: Runtime, client: BotApiClient, stop: asyncio.Event) -> None:
    """Take updates in (webhook if a URL is configured, else polling) and send until ``stop`` is set."""
    monitor = Monitor(runtime)
    monitor.count_channels()
    intake = UpdateIntake(runtime, monitor.timed(partial(feed_update, runtime)))
    loops = [*start_background_loops(settings, runtime, stop), asyncio.create_task(intake.sweep(stop))]
    if settings.metrics_listen:
        loops.append(asyncio.create_task(monitor.serve(settings.metrics_listen, stop)))
    try:
        if settings.webhook_url:
            secret = settings.webhook_secret_value or ""

            async def set_webhook(url: str, token: str) -> None:
                params = {"url": url, "secret_token": token, "allowed_updates": ALLOWED_UPDATES}
                await client.call(ApiCall("setWebhook", params))
                monitor.engine_ready = True

            await intake.serve_webhook(
                stop, settings.webhook_url, secret, settings.webhook_listen, set_webhook, monitor
            )
        else:
            await client.call(ApiCall("deleteWebhook", {"drop_pending_updates": False}))
            monitor.engine_ready = True
            await run_until(stop, intake.poll(stop, partial(fetch_updates, client)))
        await runtime.drain()
        await asyncio.gather(*loops)
    finally:
        await cancel_loops(loops)


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
