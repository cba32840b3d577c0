"""The python-telegram-bot 22 engine: translates between PTB and the core, runs polling or a webhook server.

PTB's own ``Updater`` (polling) and tornado webhook server confirm an update before its handler finishes, so
a crash would lose it; updates come in through ``UpdateIntake`` instead, which records them first, and are
then run through the ``Application`` with ``process_update``.
"""

from __future__ import annotations

import asyncio
import warnings
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeAlias

from telegram import Bot as PtbBot
from telegram import (
    BotCommand,
    BotCommandScopeChat,
    Chat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
    User,
)
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import Application, ApplicationBuilder, ContextTypes, TypeHandler
from telegram.helpers import effective_message_type
from telegram.request import BaseRequest
from telegram.warnings import PTBDeprecationWarning

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

# The bot, context, data and job-queue types are PTB's defaults; spelling them out adds nothing here.
PtbApplication: TypeAlias = Application[Any, Any, Any, Any, Any, Any]


def make_application(token: str, api_url: str, request: BaseRequest | None = None) -> PtbApplication:
    """An Application for ``api_url`` without PTB's Updater (updates are fetched by ``UpdateIntake``)."""
    base = api_url.rstrip("/")
    builder = ApplicationBuilder().token(token).base_url(f"{base}/bot").base_file_url(f"{base}/file/bot")
    if request is not None:
        builder = builder.request(request)
    application: PtbApplication = builder.updater(None).build()
    return application


# --- framework -> core ----------------------------------------------------------------------------------


def _sender(user: User, chat_id: int) -> Sender:
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
    return Unsupported(effective_message_type(message) or "unknown")


def to_incoming(update: Update) -> Incoming | None:
    """The core's view of an update; None for updates from no person (channel posts, polls...)."""
    message = update.message
    if message is not None and message.from_user is not None:
        if message.chat.type != Chat.PRIVATE:
            return None
        return Incoming(CHANNEL, update.update_id, _sender(message.from_user, message.chat.id), message_event(message))
    query = update.callback_query
    if query is not None:
        chat_id = query.message.chat.id if query.message is not None else query.from_user.id
        message_id = query.message.message_id if query.message is not None else None
        event = ButtonPress(callback_id=query.id, data=query.data or "", message_id=message_id)
        return Incoming(CHANNEL, update.update_id, _sender(query.from_user, chat_id), event)
    return None


# --- core -> framework ----------------------------------------------------------------------------------


def _inline_markup(keyboard: InlineKeyboard) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(b.text, url=b.url) if b.url else InlineKeyboardButton(b.text, callback_data=b.data)
                for b in row
            ]
            for row in keyboard.rows
        ]
    )


def reply_markup(keyboard: Keyboard | None) -> InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | None:
    if keyboard is None:
        return None
    if isinstance(keyboard, InlineKeyboard):
        return _inline_markup(keyboard)
    if isinstance(keyboard, ReplyKeyboard):
        rows = [[KeyboardButton(label) for label in row] for row in keyboard.rows]
        if keyboard.location_button:
            rows.append([KeyboardButton(keyboard.location_button, request_location=True)])
        return ReplyKeyboardMarkup(rows, resize_keyboard=True, one_time_keyboard=keyboard.one_time)
    return ReplyKeyboardRemove()


def retry_after_seconds(error: RetryAfter) -> float:
    """``retry_after`` is an int or a timedelta depending on the PTB version and ``PTB_TIMEDELTA``."""
    with warnings.catch_warnings():
        # PTB 22 warns that the int form is going away; both forms are handled here.
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value: int | float | timedelta = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class PtbChannel:
    """Carries out core actions with a PTB ``Bot`` and reports how it went."""

    name = CHANNEL

    def __init__(self, bot: PtbBot) -> None:
        self.bot = bot

    async def perform(self, chat_id: str, action: Action) -> Delivery:
        try:
            message_id = await self._call(int(chat_id), action)
        except RetryAfter as error:
            return Delivery(ok=False, retry_after=retry_after_seconds(error), error="429")
        except Forbidden as error:
            return Delivery(ok=False, blocked=True, error=error.message)
        except BadRequest as error:
            # PTB capitalises the API's description ("Message is not modified: ...").
            if "message is not modified" in error.message.lower():
                return Delivery(ok=True)
            return Delivery(ok=False, permanent=True, error=error.message)
        except (TimedOut, NetworkError, TimeoutError, OSError) as error:
            return Delivery(ok=False, error=f"{type(error).__name__}: {error}")
        except TelegramError as error:
            return Delivery(ok=False, permanent=True, error=error.message)
        return Delivery(ok=True, message_id=message_id)

    async def _call(self, chat_id: int, action: Action) -> int | None:
        bot = self.bot
        if isinstance(action, SendText):
            sent = await bot.send_message(chat_id, action.text, reply_markup=reply_markup(action.keyboard))
            return sent.message_id
        if isinstance(action, EditText):
            await bot.edit_message_text(
                action.text, chat_id=chat_id, message_id=action.message_id,
                reply_markup=_inline_markup(action.keyboard) if action.keyboard is not None else None,
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
            document = InputFile(action.content, filename=action.file_name)
            sent = await bot.send_document(chat_id, document, caption=action.caption or None)
            return sent.message_id
        if isinstance(action, SetCommands):
            await bot.set_my_commands(bot_commands(action), scope=BotCommandScopeChat(chat_id))
            return None
        raise TypeError(f"unknown action {action!r}")


def bot_commands(menu: SetCommands) -> list[BotCommand]:
    return [BotCommand(name, text) for name, text in menu.commands]


# --- running --------------------------------------------------------------------------------------------


class PtbEngine:
    """Feeds updates through a PTB ``Application`` whose only handler hands them to the core."""

    def __init__(self, runtime: Runtime, application: PtbApplication) -> None:
        self.runtime = runtime
        self.application = application
        application.add_handler(TypeHandler(Update, self._on_update))

    @property
    def bot(self) -> PtbBot:
        bot: PtbBot = self.application.bot
        return bot

    async def _on_update(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        incoming = to_incoming(update)
        if incoming is not None:
            await self.runtime.process(incoming)

    async def feed(self, payload: dict[str, Any]) -> None:
        """Run one raw update through the application and the core (in the caller's task)."""
        await self.application.process_update(Update.de_json(payload, self.bot))

    async def fetch_updates(self, offset: int | None, timeout: int) -> list[RawUpdate]:
        try:
            updates = await self.bot.get_updates(
                offset=offset, timeout=timeout, allowed_updates=ALLOWED_UPDATES, read_timeout=10
            )
        except RetryAfter as error:
            raise PollPaused(retry_after_seconds(error), error.message) from error
        except BadRequest:
            raise  # a broken request does not mend by waiting
        except (TimedOut, NetworkError, OSError) as error:
            raise PollPaused(1.0, f"{type(error).__name__}: {error}") from error
        return [(update.update_id, update.to_dict()) for update in updates]

    async def set_webhook(self, url: str, secret: str | None) -> None:
        await self.bot.set_webhook(url, secret_token=secret, allowed_updates=ALLOWED_UPDATES)

    async def delete_webhook(self) -> None:
        await self.bot.delete_webhook(drop_pending_updates=False)


async def serve(service: Service, stop: asyncio.Event, request: BaseRequest | None = None) -> None:
    """Run the bot with PTB until ``stop`` is set: polling, or a webhook server if a URL is configured."""
    settings = service.settings
    token = settings.token_value
    if not token:
        raise ValueError("no token configured")
    application = make_application(token, settings.api_url, request)
    await application.initialize()  # getMe
    try:
        runtime = service.runtime({CHANNEL: PtbChannel(application.bot)}, application.bot.username or "")
        engine = PtbEngine(runtime, application)
        await register_command_menus(engine.bot, service, settings.default_locale)
        await run_engine(settings, runtime, engine, stop)
    finally:
        await application.shutdown()


async def register_command_menus(bot: PtbBot, service: Service, default_locale: str) -> None:
    for language, menu in default_command_menus(service, default_locale):
        await bot.set_my_commands(bot_commands(menu), language_code=language)
