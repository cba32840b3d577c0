"""The aiogram 3 engine: translates between aiogram and the core, runs polling or a webhook server."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

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
from bot.engines.common import ALLOWED_UPDATES, CHANNEL, PollPaused, RawUpdate, default_command_menus, run_engine
from bot.runtime import Runtime

if TYPE_CHECKING:
    from bot.service import Service


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

    async def fetch_updates(self, offset: int | None, timeout: int) -> list[RawUpdate]:
        try:
            updates = await self.bot(
                GetUpdates(offset=offset, timeout=timeout, allowed_updates=ALLOWED_UPDATES),
                request_timeout=timeout + 10,
            )
        except TelegramRetryAfter as error:
            raise PollPaused(float(error.retry_after), error.message) from error
        except (TimeoutError, TelegramNetworkError, TelegramServerError, OSError) as error:
            raise PollPaused(1.0, f"{type(error).__name__}: {error}") from error
        return [(u.update_id, u.model_dump(mode="json", exclude_none=True)) for u in updates]

    async def set_webhook(self, url: str, secret: str | None) -> None:
        await self.bot.set_webhook(url, secret_token=secret, allowed_updates=ALLOWED_UPDATES)

    async def delete_webhook(self) -> None:
        await self.bot.delete_webhook(drop_pending_updates=False)


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
        await register_command_menus(bot, service, settings.default_locale)
        await run_engine(settings, runtime, AiogramEngine(runtime, bot), stop)
    finally:
        await bot.session.close()


async def register_command_menus(bot: Bot, service: Service, default_locale: str) -> None:
    for language, menu in default_command_menus(service, default_locale):
        commands = [BotCommand(command=name, description=text) for name, text in menu.commands]
        await bot.set_my_commands(commands, language_code=language)
