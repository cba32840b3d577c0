"""The Telegram channel in Bot API JSON, whichever client library carries the HTTP calls.

Both Telegram engines share this translation: an update's JSON becomes a core ``Incoming``, a core action
becomes one Bot API call. An engine supplies only a ``BotApiClient``: its HTTP client, and what its errors
mean as a ``Delivery``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from bot.core.messages import (
    MAX_CAPTION,
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
    SendStartCode,
    SendText,
    SetCommands,
    Text,
    Unsupported,
    clip,
    parse_command,
)
from bot.qr import qr_png

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from bot.core.outbox import BulkSend
    from bot.engines.bulk import BulkSender

CHANNEL = "telegram"
ALLOWED_UPDATES = ["message", "callback_query"]
GROUP_CHATS = ("group", "supergroup")
# Message contents the bot does not understand, named as Bot API messages name them.
OTHER_CONTENT = (
    "sticker", "voice", "video", "video_note", "audio", "animation", "dice", "poll", "venue", "game", "story",
    "invoice", "successful_payment", "new_chat_members", "left_chat_member", "pinned_message",
)
# Messages whose words are a caption: editing them is editMessageCaption.
MEDIA_CONTENT = ("photo", "document", "video", "animation", "audio", "voice")
NOT_MODIFIED = "message is not modified"


class NotAnUpdate(ValueError):
    """JSON that does not have the shape of a Telegram update."""


# --- Bot API JSON -> core -------------------------------------------------------------------------------


def incoming_from_update(update: dict[str, Any]) -> Incoming | None:
    """The core's view of an update; None for updates from no person (channel posts, group messages...)."""
    try:
        update_id = update["update_id"]
        if not is_update_id(update_id):
            raise NotAnUpdate(f"update_id {update_id!r} is not a Telegram update id")
        return _incoming(update_id, update)
    except NotAnUpdate:
        raise
    except (KeyError, TypeError, AttributeError) as error:
        raise NotAnUpdate(f"{type(error).__name__}: {error}") from error
    except ValueError as error:
        raise NotAnUpdate(str(error)) from error


# The inbox stores update ids as a signed 64-bit integer; Telegram's are far smaller.
MAX_UPDATE_ID = 2**63 - 1


def is_update_id(value: object) -> bool:
    """An integer (not a float, string or bool) the inbox can hold."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_UPDATE_ID


def _incoming(update_id: int, update: dict[str, Any]) -> Incoming | None:
    message = update.get("message")
    if message is not None and message.get("from") is not None:
        chat = message["chat"]
        if chat["type"] in GROUP_CHATS:
            return _group_message(update_id, message)
        if chat["type"] != "private":
            return None
        return Incoming(CHANNEL, update_id, _sender(message["from"], chat["id"]), message_event(message))
    query = update.get("callback_query")
    if query is not None:
        shown = query.get("message")
        chat = shown["chat"] if shown is not None else {"id": query["from"]["id"], "type": "private"}
        message_id = _integer(shown["message_id"]) if shown is not None else None
        on_media = shown is not None and any(kind in shown for kind in MEDIA_CONTENT)
        event = ButtonPress(callback_id=_text(query["id"]), data=_text(query.get("data", "")), message_id=message_id,
                            on_media=on_media)
        group = chat if chat["type"] in GROUP_CHATS else None
        return Incoming(CHANNEL, update_id, _sender(query["from"], chat["id"], group), event)
    return None


def _group_message(update_id: int, message: dict[str, Any]) -> Incoming | None:
    """A command in a group becomes an event from its sender in that group; anything else said there is the
    members' own conversation, which the bot does not see (as in privacy mode), even when Telegram delivers it
    (to a bot that is an admin of the group)."""
    text = message.get("text")
    command = parse_command(_text(text)) if text is not None else None
    if command is None:
        return None
    return Incoming(CHANNEL, update_id, _sender(message["from"], message["chat"]["id"], message["chat"]), command)


def _sender(user: dict[str, Any], chat_id: object, group: dict[str, Any] | None = None) -> Sender:
    name = " ".join(_text(part) for part in (user.get("first_name"), user.get("last_name")) if part)
    language = user.get("language_code")
    user_id = str(_integer(user["id"]))
    return Sender(
        channel=CHANNEL,
        external_id=user_id,
        # In a group the person's own chat is their private chat with the bot, whose id is their user id.
        chat_id=user_id if group is not None else str(_integer(chat_id)),
        display_name=name,
        language_code=_text(language) if language is not None else None,
        group_chat_id=str(_integer(group["id"])) if group is not None else None,
        group_title=_text(group.get("title", "")) if group is not None else "",
    )


def message_event(message: dict[str, Any]) -> Event:
    if (text := message.get("text")) is not None:
        return parse_command(_text(text)) or Text(_text(text))
    if photos := message.get("photo"):
        return Photo(file_id=_text(photos[-1]["file_id"]), caption=_text(message.get("caption", "")))
    if (place := message.get("location")) is not None:
        return Location(_number(place["latitude"]), _number(place["longitude"]))
    if (contact := message.get("contact")) is not None:
        return Contact(_text(contact["phone_number"]))
    if (document := message.get("document")) is not None:
        return Document(_text(document["file_id"]), _text(document.get("file_name", "")))
    return Unsupported(next((kind for kind in OTHER_CONTENT if kind in message), "unknown"))


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise NotAnUpdate(f"expected a string, got {type(value).__name__}")
    return value


def _integer(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise NotAnUpdate(f"expected an integer, got {type(value).__name__}")
    return value


def _number(value: object) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise NotAnUpdate(f"expected a number, got {type(value).__name__}")
    return float(value)


def reply_address(update: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(chat id, callback query id, language code) of whoever sent ``update``, as far as its JSON tells.

    For answering updates that cannot be recorded or handled, so it never raises.
    """
    for key in ("message", "callback_query"):
        body = update.get(key)
        if not isinstance(body, dict):
            continue
        given = body.get("from")
        sender: dict[str, Any] = given if isinstance(given, dict) else {}
        shown = body.get("message") if key == "callback_query" else body
        chat = shown.get("chat") if isinstance(shown, dict) else None
        chat_id = chat.get("id") if isinstance(chat, dict) and chat.get("type", "private") == "private" else None
        if chat_id is None and key == "callback_query":
            chat_id = sender.get("id")
        callback_id = body.get("id") if key == "callback_query" else None
        language = sender.get("language_code")
        return (
            str(chat_id) if isinstance(chat_id, int) and not isinstance(chat_id, bool) else None,
            callback_id if isinstance(callback_id, str) else None,
            language if isinstance(language, str) else None,
        )
    return None, None, None


def chat_key(update: dict[str, Any]) -> str:
    """The person an update comes from: their updates are handled one after another."""
    for key in ("message", "callback_query"):
        body = update.get(key)
        if isinstance(body, dict):
            sender = body.get("from") or body.get("chat") or {}
            return str(sender.get("id", "")) if isinstance(sender, dict) else ""
    return ""


# --- core -> Bot API calls ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    """A file sent with a call: the parameter it fills, its name and its bytes."""

    parameter: str
    file_name: str
    content: bytes


@dataclass(frozen=True)
class ApiCall:
    """One Bot API method call: its name and its parameters as JSON."""

    method: str
    params: dict[str, Any] = field(default_factory=dict)
    upload: Upload | None = None


def api_call(chat_id: int, action: Action) -> ApiCall:
    """The Bot API call that carries out ``action`` in the chat ``chat_id``."""
    if isinstance(action, SendText):
        return ApiCall("sendMessage", _without_none(
            chat_id=chat_id, text=action.text, reply_markup=reply_markup(action.keyboard)
        ))
    if isinstance(action, EditText) and action.media:
        return ApiCall("editMessageCaption", _without_none(
            chat_id=chat_id, message_id=action.message_id, caption=clip(action.text, MAX_CAPTION),
            reply_markup=reply_markup(action.keyboard),
        ))
    if isinstance(action, EditText):
        return ApiCall("editMessageText", _without_none(
            chat_id=chat_id, message_id=action.message_id, text=action.text,
            reply_markup=reply_markup(action.keyboard),
        ))
    if isinstance(action, AnswerButton):
        return ApiCall("answerCallbackQuery", _without_none(
            callback_query_id=action.callback_id, text=action.text or None, show_alert=action.alert or None
        ))
    if isinstance(action, SendPhoto):
        return ApiCall("sendPhoto", _without_none(
            chat_id=chat_id, photo=action.photo, caption=action.caption or None,
            reply_markup=reply_markup(action.keyboard),
        ))
    if isinstance(action, SendStartCode):
        action = SendDocument(action.file_name, qr_png(action.link).hex(), action.caption)
    if isinstance(action, SendDocument):
        return ApiCall(
            "sendDocument", _without_none(chat_id=chat_id, caption=action.caption or None),
            Upload("document", action.file_name, action.content),
        )
    if isinstance(action, SetCommands):
        return set_commands_call(action, scope={"type": "chat", "chat_id": chat_id})
    raise TypeError(f"unknown action {action!r}")


def set_commands_call(menu: SetCommands, scope: dict[str, Any] | None = None, language: str | None = None) -> ApiCall:
    commands = [{"command": name, "description": text} for name, text in menu.commands]
    return ApiCall("setMyCommands", _without_none(commands=commands, scope=scope, language_code=language))


def reply_markup(keyboard: Keyboard | None) -> dict[str, Any] | None:
    if keyboard is None:
        return None
    if isinstance(keyboard, InlineKeyboard):
        return {"inline_keyboard": [
            [{"text": b.text, "url": b.url} if b.url else {"text": b.text, "callback_data": b.data} for b in row]
            for row in keyboard.rows
        ]}
    if isinstance(keyboard, ReplyKeyboard):
        rows: list[list[dict[str, Any]]] = [[{"text": label} for label in row] for row in keyboard.rows]
        if keyboard.location_button:
            rows.append([{"text": keyboard.location_button, "request_location": True}])
        return {"keyboard": rows, "resize_keyboard": True, "one_time_keyboard": keyboard.one_time}
    return {"remove_keyboard": True}


def _without_none(**params: Any) -> dict[str, Any]:
    return {name: value for name, value in params.items() if value is not None}


# --- carrying actions out -------------------------------------------------------------------------------


class BotApiClient(Protocol):
    """What an engine supplies: its HTTP client for the Bot API and the meaning of its errors."""

    async def call(self, call: ApiCall, timeout: float | None = None) -> Any:
        """Make ``call``; returns its JSON result, raises the client's own errors."""

    def failure(self, error: Exception) -> Delivery | None:
        """What an error raised by ``call`` means; None when it is no error of the client's (a bug)."""

    async def close(self) -> None: ...


class WeChatCodes(Protocol):
    """WeChat's QR-code API, for a Telegram chat of a bot that serves WeChat too."""

    async def create_qr(self, scene: str, expire_seconds: int | None) -> str:
        """What a parametric QR code with ``scene`` encodes."""


class TelegramChannel:
    """Carries out core actions through a ``BotApiClient`` and reports how it went.

    With ``wechat_codes`` (WeChat served beside Telegram), a start code (an invitation) goes with WeChat's QR
    code too, so an admin on Telegram can invite a colleague who is on WeChat. With a ``BulkSender``, broadcasts
    go through it (``bot.engines.bulk``).
    """

    name = CHANNEL

    def __init__(
        self, client: BotApiClient, wechat_codes: WeChatCodes | None = None, bulk_sender: BulkSender | None = None
    ) -> None:
        self.client = client
        self.wechat_codes = wechat_codes
        self.bulk_sender = bulk_sender

    def bulk(self, action: Action) -> BulkSend | None:
        if self.bulk_sender is None or not isinstance(action, SendText | SendPhoto):
            return None
        sender, call = self.bulk_sender, self.bulk_sender.prepare(api_call(0, action))
        return lambda chat_id: sender.send(call, int(chat_id))

    async def perform(self, chat_id: str, action: Action) -> Delivery:
        if isinstance(action, SendStartCode) and action.wechat_caption and self.wechat_codes is not None:
            return await self._send_both_codes(chat_id, action)
        delivery = await self._perform(chat_id, action)
        if isinstance(action, EditText) and delivery.permanent and not action.quiet:
            # The message cannot be edited (deleted, or not what the edit expected): the answer goes anew.
            return await self._perform(chat_id, SendText(action.text, action.keyboard))
        return delivery

    async def _send_both_codes(self, chat_id: str, action: SendStartCode) -> Delivery:
        """Telegram's code, then WeChat's; WeChat's failing is logged and leaves Telegram's as it was sent (a
        retry would send Telegram's twice)."""
        assert self.wechat_codes is not None
        delivery = await self._perform(chat_id, action)
        if not delivery.ok:
            return delivery
        try:
            url = await self.wechat_codes.create_qr(action.payload, action.expire_seconds or None)
        except Exception as error:  # whatever WeChat's side raises, Telegram's code has gone out
            log.warning("could not make the WeChat QR code of a start code: %s", error)
            return delivery
        wechat = SendDocument(f"wechat-{action.file_name}", qr_png(url).hex(), action.wechat_caption)
        await self._perform(chat_id, wechat)
        return delivery

    async def _perform(self, chat_id: str, action: Action) -> Delivery:
        try:
            result = await self.client.call(api_call(int(chat_id), action))
        except Exception as error:
            delivery = self.client.failure(error)
            if delivery is None:
                raise
            if delivery.permanent and NOT_MODIFIED in delivery.error.lower():
                return Delivery(ok=True)  # an edit to what the message already says
            return delivery
        if isinstance(action, EditText):
            return Delivery(ok=True, message_id=action.message_id)
        message_id = result.get("message_id") if isinstance(result, dict) else None
        return Delivery(ok=True, message_id=message_id if isinstance(message_id, int) else None)
