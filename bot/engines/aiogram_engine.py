"""The aiogram 3 engine: translates between aiogram and the core, runs polling or a webhook server."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import Coroutine
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiogram import Bot, Dispatcher, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.session.base import BaseSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import GetUpdates
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
    Update,
)
from aiohttp import web

from bot.core.messages import (
    Action,
    AnswerButton,
    ButtonPress,
    Contact,
    Delivery,
    Document,
    EditText,
    Event,
    Incoming,
    InlineKeyboard,
    Keyboard,
    Location,
    Photo,
    ReplyKeyboard,
    SendDocument,
    Sender,
    SendPhoto,
    SendText,
    SetCommands,
    Text,
    Unsupported,
    parse_command,
)
from bot.runtime import Runtime
from storage.database import DatabaseUnavailable

if TYPE_CHECKING:
    from bot.service import Service

log = logging.getLogger(__name__)

CHANNEL = "telegram"
ALLOWED_UPDATES = ["message", "callback_query"]


def make_bot(token: str, api_url: str, session: BaseSession | None = None) -> Bot:
    if session is None:
        session = AiohttpSession(api=TelegramAPIServer.from_base(api_url.rstrip("/")))
    return Bot(token, session=session)


# --- framework -> core ----------------------------------------------------------------------------------


def _sender(user: Any, chat_id: int) -> Sender:
    name = " ".join(part for part in (user.first_name, user.last_name) if part)
    return Sender(
        channel=CHANNEL,
        external_id=str(user.id),
        chat_id=str(chat_id),
        display_name=name,
        language_code=user.language_code,
    )


def message_event(message: Message) -> Event:
    if message.text is not None:
        return parse_command(message.text) or Text(message.text)
    if message.photo:
        return Photo(file_id=message.photo[-1].file_id, caption=message.caption or "")
    if message.location is not None:
        return Location(message.location.latitude, message.location.longitude)
    if message.contact is not None:
        return Contact(message.contact.phone_number)
    if message.document is not None:
        return Document(message.document.file_id, message.document.file_name or "")
    return Unsupported(message.content_type)


def to_incoming(update: Update) -> Incoming | None:
    """The core's view of an update; None for updates from no person (channel posts, polls...)."""
    if update.message is not None and update.message.from_user is not None:
        message = update.message
        if message.chat.type != "private":
            return None
        assert message.from_user is not None
        return Incoming(CHANNEL, update.update_id, _sender(message.from_user, message.chat.id), message_event(message))
    if update.callback_query is not None:
        query: CallbackQuery = update.callback_query
        chat_id = query.message.chat.id if query.message is not None else query.from_user.id
        message_id = query.message.message_id if query.message is not None else None
        event = ButtonPress(callback_id=query.id, data=query.data or "", message_id=message_id)
        return Incoming(CHANNEL, update.update_id, _sender(query.from_user, chat_id), event)
    return None


# --- core -> framework ----------------------------------------------------------------------------------


def reply_markup(keyboard: Keyboard | None) -> Any:
    if keyboard is None:
        return None
    if isinstance(keyboard, InlineKeyboard):
        return InlineKeyboardMarkup(
            inline_keyboard=[
                [
                    InlineKeyboardButton(text=b.text, url=b.url) if b.url
                    else InlineKeyboardButton(text=b.text, callback_data=b.data)
                    for b in row
                ]
                for row in keyboard.rows
            ]
        )
    if isinstance(keyboard, ReplyKeyboard):
        rows = [[KeyboardButton(text=label) for label in row] for row in keyboard.rows]
        if keyboard.location_button:
            rows.append([KeyboardButton(text=keyboard.location_button, request_location=True)])
        return ReplyKeyboardMarkup(keyboard=rows, resize_keyboard=True, one_time_keyboard=keyboard.one_time)
    return ReplyKeyboardRemove()


class AiogramChannel:
    """Carries out core actions with an aiogram ``Bot`` and reports how it went."""

    name = CHANNEL

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def perform(self, chat_id: str, action: Action) -> Delivery:
        try:
            message_id = await self._call(int(chat_id), action)
        except TelegramRetryAfter as error:
            return Delivery(ok=False, retry_after=float(error.retry_after), error="429")
        except TelegramForbiddenError as error:
            return Delivery(ok=False, blocked=True, error=error.message)
        except TelegramBadRequest as error:
            if "message is not modified" in error.message:
                return Delivery(ok=True)
            return Delivery(ok=False, permanent=True, error=error.message)
        except (TimeoutError, TelegramServerError, TelegramNetworkError, OSError) as error:
            return Delivery(ok=False, error=f"{type(error).__name__}: {error}")
        except TelegramAPIError as error:
            return Delivery(ok=False, permanent=True, error=error.message)
        return Delivery(ok=True, message_id=message_id)

    async def _call(self, chat_id: int, action: Action) -> int | None:
        bot = self.bot
        if isinstance(action, SendText):
            sent = await bot.send_message(chat_id, action.text, reply_markup=reply_markup(action.keyboard))
            return sent.message_id
        if isinstance(action, EditText):
            await bot.edit_message_text(
                text=action.text, chat_id=chat_id, message_id=action.message_id,
                reply_markup=reply_markup(action.keyboard),
            )
            return action.message_id
        if isinstance(action, AnswerButton):
            await bot.answer_callback_query(action.callback_id, text=action.text or None, show_alert=action.alert)
            return None
        if isinstance(action, SendPhoto):
            sent = await bot.send_photo(
                chat_id, action.photo, caption=action.caption or None, reply_markup=reply_markup(action.keyboard)
            )
            return sent.message_id
        if isinstance(action, SendDocument):
            document = BufferedInputFile(action.content, filename=action.file_name)
            sent = await bot.send_document(chat_id, document, caption=action.caption or None)
            return sent.message_id
        if isinstance(action, SetCommands):
            commands = [BotCommand(command=name, description=text) for name, text in action.commands]
            await bot.set_my_commands(commands, scope=BotCommandScopeChat(chat_id=chat_id))
            return None
        raise TypeError(f"unknown action {action!r}")


# --- running --------------------------------------------------------------------------------------------


class AiogramEngine:
    """Feeds updates through an aiogram ``Dispatcher`` whose only handlers hand them to the core."""

    def __init__(self, runtime: Runtime, bot: Bot) -> None:
        self.runtime = runtime
        self.bot = bot
        self.dispatcher = Dispatcher()
        router = Router(name=__name__)
        router.message()(self._on_update)
        router.callback_query()(self._on_update)
        self.dispatcher.include_router(router)

    async def _on_update(self, _event: Message | CallbackQuery, event_update: Update) -> None:
        incoming = to_incoming(event_update)
        if incoming is not None:
            await self.runtime.process(incoming)

    async def feed(self, payload: dict[str, Any]) -> None:
        """Run one raw update through the dispatcher and the core (in the caller's task)."""
        update = Update.model_validate(payload, context={"bot": self.bot})
        await self.dispatcher.feed_update(self.bot, update)

    def feed_in_background(self, payload: dict[str, Any]) -> None:
        self.runtime.spawn_in_chat_order(_chat_key(payload), partial(self.feed, payload))

    async def replay_unhandled(self) -> None:
        for payload in await self.runtime.replay(CHANNEL):
            self.feed_in_background(payload)

    async def poll(self, stop: asyncio.Event, timeout: int = 25) -> None:
        """Long polling that records each batch durably before confirming it with the next offset."""
        await self.bot.delete_webhook(drop_pending_updates=False)
        await self.replay_unhandled()
        offset: int | None = None
        while not stop.is_set():
            try:
                updates = await self.bot(
                    GetUpdates(offset=offset, timeout=timeout, allowed_updates=ALLOWED_UPDATES),
                    request_timeout=timeout + 10,
                )
            except TelegramRetryAfter as error:
                await asyncio.sleep(error.retry_after)
                continue
            except (TimeoutError, TelegramNetworkError, TelegramServerError, OSError) as error:
                log.warning("getUpdates failed: %s", error)
                await asyncio.sleep(1)
                continue
            if not updates:
                continue
            payloads = [(u.update_id, u.model_dump(mode="json", exclude_none=True)) for u in updates]
            try:
                fresh = await self.runtime.record(CHANNEL, payloads)
            except DatabaseUnavailable:
                # Not confirmed: the platform keeps the updates and hands them out again.
                await asyncio.sleep(1)
                continue
            offset = updates[-1].update_id + 1
            for update_id, payload in payloads:
                if update_id in fresh:
                    self.feed_in_background(payload)

    async def serve_webhook(self, stop: asyncio.Event, url: str, secret: str | None, listen: str) -> None:
        """Serve the webhook until ``stop``; registers it (with the secret) with the Bot API first."""
        host, _, port = listen.rpartition(":")
        runner = web.AppRunner(self.webhook_app(urlsplit(url).path or "/", secret))
        await runner.setup()
        await web.TCPSite(runner, host or "127.0.0.1", int(port)).start()
        try:
            await self.replay_unhandled()
            await self.bot.set_webhook(url, secret_token=secret, allowed_updates=ALLOWED_UPDATES)
            await stop.wait()
        finally:
            await runner.cleanup()

    def webhook_app(self, path: str, secret: str | None) -> web.Application:
        """An aiohttp app that records each update, answers 200, then handles it."""

        async def receive(request: web.Request) -> web.Response:
            if secret is not None:
                given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
                if not hmac.compare_digest(given.encode(), secret.encode()):
                    return web.Response(status=401, text="bad secret token")
            try:
                payload = await request.json()
                update_id = int(payload["update_id"])
            except (ValueError, KeyError, TypeError):
                return web.Response(status=400, text="not an update")
            try:
                fresh = await self.runtime.record(CHANNEL, [(update_id, payload)])
            except DatabaseUnavailable:
                return web.Response(status=503, text="try again")  # the platform redelivers
            if update_id in fresh:
                self.feed_in_background(payload)
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_post(path, receive)
        return app


def _chat_key(payload: dict[str, Any]) -> str:
    for key in ("message", "callback_query"):
        body = payload.get(key)
        if isinstance(body, dict):
            sender = body.get("from") or body.get("chat") or {}
            return str(sender.get("id", ""))
    return ""


async def serve(service: Service, stop: asyncio.Event, session: BaseSession | None = None) -> None:
    """Run the bot with aiogram until ``stop`` is set: polling, or a webhook server if a URL is configured."""
    settings = service.settings
    token = settings.token_value
    if not token:
        raise ValueError("no token configured")
    bot = make_bot(token, settings.api_url, session)
    try:
        me = await bot.get_me()
        runtime = service.runtime({CHANNEL: AiogramChannel(bot)}, me.username or "")
        engine = AiogramEngine(runtime, bot)
        await register_command_menus(bot, service, settings.default_locale)
        outbox = asyncio.create_task(runtime.outbox.run(stop))
        if settings.webhook_url:
            await engine.serve_webhook(
                stop, settings.webhook_url, settings.webhook_secret_value, settings.webhook_listen
            )
        else:
            await run_until(stop, engine.poll(stop))
        await runtime.drain()
        await outbox
    finally:
        await bot.session.close()


async def run_until(stop: asyncio.Event, work: Coroutine[Any, Any, None]) -> None:
    """Run ``work`` until it ends or ``stop`` is set, whichever comes first."""
    task = asyncio.create_task(work)
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    for pending in (task, stopper):
        pending.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def register_command_menus(bot: Bot, service: Service, default_locale: str) -> None:
    for locale, menu in service.default_command_menus().items():
        commands = [BotCommand(command=name, description=text) for name, text in menu.commands]
        language = locale.split("_", 1)[0]
        await bot.set_my_commands(commands, language_code=language)
        if locale == default_locale:
            await bot.set_my_commands(commands)
