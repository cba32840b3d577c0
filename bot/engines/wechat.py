"""The WeChat Official Account (公众号) channel: WeChat's callback endpoint in, the server API out.

Incoming: WeChat POSTs each message as XML to ``/wechat`` and retries (three times in all) when no answer
comes within 5 seconds. The endpoint checks the signature, records the message in the inbox (deduplicated by
``MsgId``, events by sender and time) and answers ``success`` at once; the core handles the message in the
background and its answers go out through the customer-service API. Waiting for the core to reply passively
would tie the 5-second limit to the database's speed and allow only one answer per message, while the core
often answers with several.

Outgoing: WeChat allows a few customer-service messages within 48 hours of the follower's last message; the
channel counts them per follower and sends anything outside that window as a template message. Chats have
no buttons, so keyboards become numbered lists; the follower's number is turned back into the button press
(or reply-keyboard text) it stands for, using the last keyboard the channel sent, kept in the database.

QR codes with the scene ``b_<building code>`` bind a building like the Telegram deep link does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from hashlib import sha1, sha256
from typing import TYPE_CHECKING, Any

from aiohttp import web
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.core.clock import Clock, system_clock
from bot.core.geo import gcj02_to_wgs84
from bot.core.messages import (
    MAX_TEXT,
    Action,
    AnswerButton,
    ButtonPress,
    Command,
    Delivery,
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
    Text,
    Unsupported,
    clip,
    parse_command,
)
from bot.engines.background import cancel_loops, start_background_loops
from bot.engines.wechat_api import WINDOW_CLOSED, WeChatApi, WeChatApiError
from bot.engines.wechat_protocol import (
    WeChatCrypto,
    WeChatProtocolError,
    WeChatSignatureError,
    parse_xml,
    signature_matches,
)
from bot.i18n import Translator, translator
from bot.logs import QueryFreeAccessLogger
from bot.monitoring import Monitor
from bot.qr import qr_png
from bot.runtime import Runtime
from storage.database import Database, DatabaseUnavailable
from storage.models import InboxUpdate, Person, WeChatChat, WeChatNonce

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.service import Service

log = logging.getLogger(__name__)

CHANNEL = "wechat"
PATH = "/wechat"
WINDOW = timedelta(hours=48)
# A minute's margin, so a message is not sent as customer-service message just as the window closes.
WINDOW_MARGIN = timedelta(minutes=1)
WINDOW_MESSAGES = 5
# How long the endpoint waits for the inbox write before answering anyway; well inside WeChat's 5 seconds.
RECORD_WAIT = 3.0
RECENT_IDS = 10_000
# A signed callback is accepted only this close to its timestamp; its nonce is remembered as long.
REPLAY_WINDOW = timedelta(minutes=5)
MAX_NONCE = 64
TEMPLATE_BODY_LIMIT = 600

PRESS = "press"  # a numbered choice standing for an inline button's callback data
SAY = "say"  # a numbered choice standing for a reply-keyboard button, which sends its own text


# --- rendering the core's actions as WeChat text ----------------------------------------------------------


@dataclass(frozen=True)
class Outgoing:
    """One WeChat message; ``choices`` replaces the follower's stored choices unless it is None."""

    text: str
    choices: list[list[str]] | None = None


def render_keyboard(keyboard: Keyboard | None, t: Translator) -> tuple[list[str], list[list[str]] | None]:
    """The lines to append to a message and the numbered choices they offer (None: keep the old ones)."""
    choices: list[list[str]] = []
    extra: list[str] = []
    if isinstance(keyboard, InlineKeyboard):
        for button in (button for row in keyboard.rows for button in row):
            if button.url:
                extra.append(f"{button.text}: {button.url}")
            elif button.data:
                choices.append([PRESS, button.text, button.data])
    elif isinstance(keyboard, ReplyKeyboard):
        choices = [[SAY, label, label] for row in keyboard.rows for label in row]
        if keyboard.location_button:
            extra.append(t._("To send your location, tap + and choose Location."))
    if not choices:
        # A keyboard with nothing to number (a location request, a removal) leaves earlier choices usable.
        return extra, None
    lines = [t._("Reply with a number to choose:")]
    lines += [f"{number}. {label}" for number, (_kind, label, _value) in enumerate(choices, 1)]
    return lines + extra, choices


def with_keyboard(text: str, keyboard: Keyboard | None, t: Translator, clears: bool) -> Outgoing:
    lines, choices = render_keyboard(keyboard, t)
    body = "\n\n".join(part for part in (text, "\n".join(lines)) if part)
    # An edited message that lost its buttons means those choices are gone (the next step asks for text).
    return Outgoing(clip(body, MAX_TEXT), [] if choices is None and clears else choices)


def render_action(action: Action, t: Translator) -> Outgoing | None:
    """The WeChat message for a core action; None when the action shows nothing in WeChat."""
    if isinstance(action, SendText):
        return with_keyboard(action.text, action.keyboard, t, clears=False)
    if isinstance(action, EditText) and action.quiet:
        return None  # keeping an old card up to date is not worth a message in a chat that cannot edit
    if isinstance(action, EditText):
        # WeChat cannot edit a sent message: the new version arrives as a new message.
        return with_keyboard(action.text, action.keyboard, t, clears=True)
    if isinstance(action, SendPhoto):
        shown = action.photo if action.photo.startswith(("http://", "https://")) else t._("(a photo)")
        return with_keyboard("\n".join(p for p in (action.caption, shown) if p), action.keyboard, t, clears=False)
    if isinstance(action, SendDocument):
        note = t._("(a file: {name}; files cannot be shown here)").format(name=action.file_name)
        return Outgoing("\n".join(p for p in (action.caption, note) if p))
    if isinstance(action, AnswerButton):
        return Outgoing(action.text) if action.text else None
    return None  # SetCommands: WeChat's menu is configured for the whole account, not per chat


# --- what the channel remembers per follower --------------------------------------------------------------


@dataclass(frozen=True)
class ChatView:
    locale: str | None
    window_open: bool


@dataclass(frozen=True)
class UnknownChoice:
    number: int
    count: int


def window_is_open(chat: WeChatChat | None, now: datetime) -> bool:
    if chat is None or chat.last_inbound_at is None:
        return False
    return now < chat.last_inbound_at + WINDOW - WINDOW_MARGIN and chat.sent_in_window < WINDOW_MESSAGES


def _chat(session: Session, openid: str) -> WeChatChat:
    chat = session.get(WeChatChat, openid)
    if chat is None:
        chat = WeChatChat(openid=openid, sent_in_window=0, choices=[], message_seq=0)
        session.add(chat)
    return chat


def load_chat(session: Session, openid: str, now: datetime) -> ChatView:
    locale = session.scalar(select(Person.locale).where(Person.channel == CHANNEL, Person.external_id == openid))
    return ChatView(locale, window_is_open(session.get(WeChatChat, openid), now))


def record_sent(session: Session, openid: str, in_window: bool, choices: list[list[str]] | None) -> int:
    """Count a sent message against the window and keep its choices; returns the message's number."""
    chat = _chat(session, openid)
    chat.message_seq = (chat.message_seq or 0) + 1
    if in_window:
        chat.sent_in_window = (chat.sent_in_window or 0) + 1
    if choices is not None:
        chat.choices = choices
        chat.choices_message_id = chat.message_seq if choices else None
    return chat.message_seq


def choice_number(text: str) -> int | None:
    """The number a follower replied with (full-width digits too), or None for any other text."""
    normal = unicodedata.normalize("NFKC", text).strip().rstrip(".、")
    return int(normal) if normal.isascii() and normal.isdigit() and len(normal) <= 3 else None


def language_unknown(session: Session, openid: str) -> bool:
    """Whether the follower is new or has no language yet (staff added by OpenID before they wrote)."""
    locale = session.execute(
        select(Person.locale).where(Person.channel == CHANNEL, Person.external_id == openid)
    ).first()
    return locale is None or locale[0] is None


def prepare_new_inbound(
    session: Session, openid: str, update_id: int, event: Event, now: datetime
) -> tuple[Event | UnknownChoice, bool]:
    """``prepare_inbound``, and whether the follower's language is still to be asked of the user-info API."""
    return prepare_inbound(session, openid, update_id, event, now), language_unknown(session, openid)


def open_window(session: Session, openid: str, now: datetime) -> WeChatChat:
    chat = _chat(session, openid)
    chat.last_inbound_at, chat.sent_in_window = now, 0
    return chat


def prepare_inbound(
    session: Session, openid: str, update_id: int, event: Event, now: datetime
) -> Event | UnknownChoice:
    """Open a new customer-service window and turn a numbered reply into what it stands for."""
    chat = open_window(session, openid, now)
    number = choice_number(event.text) if isinstance(event, Text) and chat.choices else None
    if number is None:
        return event
    if not 1 <= number <= len(chat.choices):
        # Answered by the channel itself: the update never reaches the core, so it is marked handled here.
        mark_handled(session, update_id, now)
        return UnknownChoice(number, len(chat.choices))
    kind, _label, value = chat.choices[number - 1]
    if kind == PRESS:
        return ButtonPress(callback_id=f"wx{update_id}", data=value, message_id=chat.choices_message_id)
    return parse_command(value) or Text(value)


# --- the channel ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TemplateConfig:
    template_id: str | None
    # Field names for the title, body, time and remark; an empty name leaves that part out.
    fields: tuple[str, str, str, str] = ("first", "keyword1", "keyword2", "remark")

    @classmethod
    def parse(cls, template_id: str | None, fields: str) -> TemplateConfig:
        names = [name.strip() for name in fields.split(",")] + ["", "", "", ""]
        return cls(template_id or None, (names[0], names[1], names[2], names[3]))


class WeChatChannel:
    """Carries out core actions for WeChat followers: customer-service messages, else template messages."""

    name = CHANNEL

    def __init__(
        self,
        api: WeChatApi,
        database: Database,
        template: TemplateConfig,
        default_locale: str = "zh_CN",
        timezone: str = "Asia/Shanghai",
        clock: Clock = system_clock,
    ) -> None:
        self.api = api
        self.database = database
        self.template = template
        self.default_locale = default_locale
        self.timezone = timezone
        self.clock = clock

    async def perform(self, chat_id: str, action: Action) -> Delivery:
        if isinstance(action, SendStartCode):
            return await self.send_start_code(chat_id, action)
        return await self.send(chat_id, partial(render_action, action))

    async def send_start_code(self, openid: str, action: SendStartCode) -> Delivery:
        """A parametric QR code for the action's payload, sent as a picture, then its caption.

        A picture can only go as a customer-service message; a start code is an answer to what the follower
        just sent, so the window is open.
        """
        try:
            url = await self.api.create_qr(action.payload, action.expire_seconds or None)
            await self.api.send_image(openid, action.file_name, qr_png(url))
            await self.database.run(partial(record_sent, openid=openid, in_window=True, choices=None))
        except WeChatApiError as error:
            return failed(error)
        except (TimeoutError, OSError) as error:
            return Delivery(ok=False, outcome_unknown=True, error=f"{type(error).__name__}: {error}")
        if not action.caption:
            return Delivery(ok=True)
        return await self.send(openid, lambda _t: Outgoing(action.caption))

    async def send(self, openid: str, render: Callable[[Translator], Outgoing | None]) -> Delivery:
        """Render a message in the follower's language and send it the way the window allows."""
        try:
            view = await self.database.run(partial(load_chat, openid=openid, now=self.clock()))
            outgoing = render(translator(view.locale or self.default_locale, self.timezone))
            if outgoing is None:
                return Delivery(ok=True)
            in_window = await self._send(openid, outgoing, view)
            number = await self.database.run(
                partial(record_sent, openid=openid, in_window=in_window, choices=outgoing.choices)
            )
        except WeChatApiError as error:
            return failed(error)
        except (TimeoutError, OSError) as error:  # aiohttp's connection errors are OSErrors
            return Delivery(ok=False, outcome_unknown=True, error=f"{type(error).__name__}: {error}")
        return Delivery(ok=True, message_id=number)

    async def _send(self, openid: str, outgoing: Outgoing, view: ChatView) -> bool:
        """Send as a customer-service message if the window allows, else as a template; True for the former."""
        if view.window_open:
            try:
                await self.api.send_text(openid, outgoing.text)
                return True
            except WeChatApiError as error:
                # Our count can lag behind WeChat's (another process sent meanwhile): fall back to the template.
                if error.errcode not in WINDOW_CLOSED:
                    raise
        await self._send_template(openid, outgoing.text, translator(view.locale or self.default_locale, self.timezone))
        return False

    async def _send_template(self, openid: str, text: str, t: Translator) -> None:
        if not self.template.template_id:
            raise WeChatApiError(45015, "outside the customer-service window and no template configured")
        title, body, moment, remark = self.template.fields
        parts = {
            title: t._("Notice from the community service"),
            body: clip(text, TEMPLATE_BODY_LIMIT),
            moment: t.datetime(self.clock()),
            remark: t._("Reply to this account to answer or to see more."),
        }
        await self.api.send_template(openid, self.template.template_id, {k: v for k, v in parts.items() if k})

    async def language_of(self, openid: str) -> str | None:
        """The follower's language from the user-info API; None when it is not given or the API fails (the
        default locale is used, and the follower can change it with /lang)."""
        try:
            return await self.api.user_language(openid)
        except (WeChatApiError, TimeoutError, OSError) as error:
            log.warning("could not ask WeChat for a follower's language: %s", error)
            return None

    async def tell_unknown_choice(self, openid: str, choice: UnknownChoice) -> Delivery:
        def render(t: Translator) -> Outgoing:
            text = t._("There is no choice {number}. Please reply with a number from 1 to {count}.")
            return Outgoing(text.format(number=choice.number, count=choice.count))

        return await self.send(openid, render)

    async def tell_unreadable_location(self, openid: str) -> Delivery:
        def render(t: Translator) -> Outgoing:
            return Outgoing(t._("That location could not be read. Please share your location again."))

        return await self.send(openid, render)


def failed(error: WeChatApiError) -> Delivery:
    """How the outbox should treat an API error: retry server trouble and rate limits, give up on the rest."""
    if error.errcode in (-1, 45009, 45011):  # system busy, API quota, too frequent
        return Delivery(ok=False, retry_after=5.0 if error.errcode != -1 else None, error=str(error))
    if error.errcode == 43004:  # the follower unsubscribed
        return Delivery(ok=False, blocked=True, error=str(error))
    return Delivery(ok=False, permanent=True, error=str(error))


# --- incoming ------------------------------------------------------------------------------------------


def event_update_id(openid: str, create_time: str) -> int:
    """Events carry no MsgId: their id is derived from sender and time, kept negative so it never meets one."""
    digest = sha1(f"{openid}:{create_time}".encode()).digest()
    return -(1 + int.from_bytes(digest[:8], "big") % 2**62)


def update_from_fields(fields: dict[str, str]) -> tuple[int, dict[str, str]] | None:
    """The inbox id and payload of a message; None for what the bot ignores (unsubscribe, location reports)."""
    openid = fields.get("FromUserName", "")
    if not openid:
        return None
    if fields.get("MsgType") == "event":
        if fields.get("Event", "").lower() not in ("subscribe", "scan", "click"):
            return None
        update_id = event_update_id(openid, fields.get("CreateTime", ""))
    else:
        msg_id = fields.get("MsgId", "")
        # str.isdigit() also accepts "²" and other digits int() refuses; WeChat's ids are 64-bit numbers.
        if not (msg_id.isascii() and msg_id.isdigit() and len(msg_id) <= 20):
            raise WeChatProtocolError("MsgId is not a number")
        update_id = int(msg_id) % 2**63  # the inbox id is a signed 64-bit column
    return update_id, {**fields, "UpdateId": str(update_id)}


def event_from_fields(fields: dict[str, str]) -> Event | UnreadableLocation:
    kind = fields.get("MsgType", "")
    if kind == "text":
        content = fields.get("Content", "")
        return parse_command(content) or Text(content)
    if kind == "image":
        # The picture's URL: staff on Telegram can be sent it directly (sendPhoto accepts URLs).
        return Photo(file_id=fields.get("PicUrl") or fields.get("MediaId", ""))
    if kind == "location":
        return location_of(fields.get("Location_X", ""), fields.get("Location_Y", ""))
    if kind == "event":
        return event_of(fields.get("Event", "").lower(), fields.get("EventKey", ""))
    return Unsupported(kind)


@dataclass(frozen=True)
class UnreadableLocation:
    """A location whose coordinates are not numbers on Earth: answered by the channel, never replayed."""


def location_of(latitude: str, longitude: str) -> Location | UnreadableLocation:
    """A location message's point in WGS-84, the datum gridbot stores: WeChat gives GCJ-02, the datum of
    Chinese maps, hundreds of metres off in a Chinese city."""
    try:
        point = Location(float(latitude), float(longitude))
    except ValueError:
        return UnreadableLocation()
    on_earth = math.isfinite(point.latitude) and math.isfinite(point.longitude)
    if not on_earth or abs(point.latitude) > 90 or abs(point.longitude) > 180:
        return UnreadableLocation()
    return Location(*gcj02_to_wgs84(point.latitude, point.longitude))


def mark_handled(session: Session, update_id: int, now: datetime) -> None:
    inbox = session.get(InboxUpdate, (CHANNEL, update_id))
    if inbox is not None:
        inbox.handled_at = now


def take_unreadable(session: Session, openid: str, update_id: int, now: datetime) -> None:
    """A message the channel answers itself: it opens the window like any other and is handled here."""
    open_window(session, openid, now)
    mark_handled(session, update_id, now)


def event_of(event: str, key: str) -> Event:
    """A follow, a QR-code scan or a menu click as the core sees it."""
    if event == "subscribe":
        # A follow through a parametrised QR code carries the scene as ``qrscene_<scene>``.
        return Command("start", key.removeprefix("qrscene_"))
    if event == "scan":
        return Command("start", key)
    # Menu buttons are configured with a command name as their key ("new", "my").
    return parse_command("/" + key.lstrip("/")) or Text(key)


@dataclass(frozen=True)
class SignedCall:
    """What a callback was signed with, and a digest of the body it came with."""

    timestamp: int
    nonce: str
    body_sha256: str


class ReplayRefused(Exception):
    """A signed query seen before with another body: someone replays WeChat's signature."""


def remember_call(session: Session, call: SignedCall, now: datetime) -> bool:
    """Remember a signed callback for the replay window; False when its query came before with another body.

    Expired entries are pruned here, so the table holds only the last few minutes.
    """
    session.execute(delete(WeChatNonce).where(WeChatNonce.expires_at < now))
    seen = session.get(WeChatNonce, (call.timestamp, call.nonce))
    if seen is None:
        try:
            # A savepoint: another process may record the same call at the same moment.
            with session.begin_nested():
                session.add(
                    WeChatNonce(
                        timestamp=call.timestamp, nonce=call.nonce, body_sha256=call.body_sha256,
                        expires_at=now + 2 * REPLAY_WINDOW,
                    )
                )
            return True
        except IntegrityError:
            seen = session.get(WeChatNonce, (call.timestamp, call.nonce))
    return seen is not None and seen.body_sha256 == call.body_sha256


class WeChatIntake:
    """Records incoming messages once each and hands them to the core in per-follower order."""

    def __init__(self, runtime: Runtime, channel: WeChatChannel, record_wait: float = RECORD_WAIT) -> None:
        self.runtime = runtime
        self.channel = channel
        self.record_wait = record_wait
        # Retries that arrive while the first delivery is still being recorded never reach the database.
        self._recent: OrderedDict[int, None] = OrderedDict()
        self._tasks: set[asyncio.Task[bool]] = set()

    def _seen(self, update_id: int) -> bool:
        if update_id in self._recent:
            return True
        self._recent[update_id] = None
        if len(self._recent) > RECENT_IDS:
            self._recent.popitem(last=False)
        return False

    async def accept(self, update_id: int, payload: dict[str, str], call: SignedCall) -> bool:
        """Take a message in; False when it could not be recorded (WeChat should retry).

        Raises ``ReplayRefused`` when its signed query came before with another body.
        """
        if self._seen(update_id):
            return True
        task = asyncio.create_task(self._record(update_id, payload, call))
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        # A slow database must not make WeChat wait past its 5 seconds: answer anyway, recording continues
        # (and a replay found late is still never recorded).
        done, _pending = await asyncio.wait({task}, timeout=self.record_wait)
        error = task.exception() if done else None
        if isinstance(error, ReplayRefused):
            raise error
        return error is None

    def _finished(self, task: asyncio.Task[bool]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if isinstance(error, ReplayRefused):
            log.warning("refused a WeChat callback whose signed query came before with another body")
        elif error is not None:
            log.error("could not record a WeChat message: %s", error)

    async def _record(self, update_id: int, payload: dict[str, str], call: SignedCall) -> bool:
        try:
            now = self.runtime.core.clock()
            if not await self.runtime.database.run(partial(remember_call, call=call, now=now)):
                raise ReplayRefused
            fresh = await self.runtime.record(CHANNEL, [(update_id, payload)])
        except Exception:
            self._recent.pop(update_id, None)  # let WeChat's retry try again
            raise
        if update_id in fresh:
            self.feed_in_background(payload)
        return bool(fresh)

    def feed_in_background(self, payload: dict[str, Any]) -> None:
        self.runtime.spawn_in_chat_order(str(payload.get("FromUserName", "")), partial(self.feed, payload))

    async def replay_unhandled(self) -> None:
        for payload in await self.runtime.replay(CHANNEL):
            self.feed_in_background(payload)

    async def feed(self, payload: dict[str, Any]) -> None:
        """Handle one recorded message through the core (in the caller's task)."""
        openid, update_id = str(payload["FromUserName"]), int(payload["UpdateId"])
        event = event_from_fields(payload)
        now = self.runtime.core.clock()
        try:
            prepared: Event | UnknownChoice | UnreadableLocation = event
            ask_language = False
            if isinstance(event, UnreadableLocation):
                # Marked handled before answering: a message that cannot be read is answered at most once.
                await self.runtime.database.run(partial(take_unreadable, openid=openid, update_id=update_id, now=now))
            else:
                prepared, ask_language = await self.runtime.database.run(
                    partial(prepare_new_inbound, openid=openid, update_id=update_id, event=event, now=now)
                )
        except DatabaseUnavailable:
            log.warning("database unavailable; WeChat message %s stays in the inbox for the next start", update_id)
            return
        if isinstance(prepared, UnreadableLocation):
            await self.channel.tell_unreadable_location(openid)
            return
        if isinstance(prepared, UnknownChoice):
            await self.channel.tell_unknown_choice(openid, prepared)
            return
        # WeChat messages carry no language: a new follower's comes from the user-info API, asked once.
        language = await self.channel.language_of(openid) if ask_language else None
        sender = Sender(channel=CHANNEL, external_id=openid, chat_id=openid, language_code=language)
        await self.runtime.process(Incoming(CHANNEL, update_id, sender, prepared))

    async def drain(self) -> None:
        """Wait for recordings in flight (used at shutdown and by tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


# --- the endpoint WeChat calls ---------------------------------------------------------------------------


class WeChatEndpoint:
    """``GET /wechat``: the URL check; ``POST /wechat``: messages, signed (and in safe mode encrypted).

    A signature is accepted within ``REPLAY_WINDOW`` of its timestamp, and its timestamp and nonce only with
    the body they first came with.
    """

    def __init__(self, token: str, crypto: WeChatCrypto | None, intake: WeChatIntake, clock: Clock) -> None:
        self.token = token
        self.crypto = crypto
        self.intake = intake
        self.clock = clock

    def app(self) -> web.Application:
        app = web.Application(client_max_size=256 * 1024)
        app.router.add_get(PATH, self.verify_url)
        app.router.add_post(PATH, self.receive)
        return app

    def _signed_call(self, request: web.Request, body: bytes) -> SignedCall:
        """The checked signature of a request; raises 403 for a bad or stale one."""
        query = request.query
        timestamp, nonce = query.get("timestamp", ""), query.get("nonce", "")
        if not signature_matches(query.get("signature", ""), self.token, timestamp, nonce):
            raise web.HTTPForbidden(text="bad signature")
        moment = int(timestamp) if timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12 else None
        if moment is None or abs(self.clock().timestamp() - moment) > REPLAY_WINDOW.total_seconds():
            raise web.HTTPForbidden(text="the timestamp is not within five minutes of now")
        if len(nonce) > MAX_NONCE:
            raise web.HTTPBadRequest(text="nonce too long")
        return SignedCall(moment, nonce, sha256(body).hexdigest())

    async def verify_url(self, request: web.Request) -> web.Response:
        self._signed_call(request, b"")
        return web.Response(text=request.query.get("echostr", ""))

    async def receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        call = self._signed_call(request, body)
        try:
            fields = self._fields(request.query, body)
            update = update_from_fields(fields)
        except WeChatSignatureError:
            raise web.HTTPForbidden(text="bad signature") from None
        except WeChatProtocolError as error:
            raise web.HTTPBadRequest(text=str(error)) from None
        try:
            if update is not None and not await self.intake.accept(*update, call):
                raise web.HTTPServiceUnavailable(text="try again")
        except ReplayRefused:
            raise web.HTTPForbidden(text="this signature was used for another message") from None
        # "success" tells WeChat the message arrived; the answers follow as customer-service messages.
        return web.Response(text="success")

    def _fields(self, query: Any, body: bytes) -> dict[str, str]:
        fields = parse_xml(body)
        if query.get("encrypt_type", "raw") != "aes":
            return fields
        if self.crypto is None:
            raise WeChatProtocolError("encrypted message but no GRIDBOT_WECHAT_AES_KEY configured")
        plain = self.crypto.unwrap(
            fields, query.get("msg_signature", ""), query.get("timestamp", ""), query.get("nonce", "")
        )
        return parse_xml(plain)


# --- running ---------------------------------------------------------------------------------------------


def make_api(settings: Settings, database: Database, clock: Clock = system_clock, session: Any = None) -> WeChatApi:
    """The WeChat server API of the account the settings configure."""
    app_id, secret = settings.wechat_app_id or "", _secret(settings.wechat_app_secret)
    return WeChatApi(settings.wechat_api_url, app_id, secret, database, clock, session)


def make_channel(service: Service, session: Any = None) -> WeChatChannel:
    """The WeChat channel configured by the service's settings."""
    settings = service.settings
    api = make_api(settings, service.database, service.clock, session)
    template = TemplateConfig.parse(settings.wechat_template_id, settings.wechat_template_fields)
    return WeChatChannel(
        api, service.database, template, settings.default_locale, settings.timezone, service.clock
    )


def _secret(value: Any) -> str:
    return value.get_secret_value() if value is not None else ""


def make_crypto(settings: Settings) -> WeChatCrypto | None:
    key = _secret(settings.wechat_aes_key)
    return WeChatCrypto(_secret(settings.wechat_token), key, settings.wechat_app_id or "") if key else None


class WeChatServer:
    """The aiohttp site WeChat calls, feeding one runtime."""

    def __init__(self, settings: Settings, runtime: Runtime, channel: WeChatChannel) -> None:
        self.intake = WeChatIntake(runtime, channel)
        self.endpoint = WeChatEndpoint(
            _secret(settings.wechat_token), make_crypto(settings), self.intake, runtime.core.clock
        )
        self.listen = settings.wechat_listen
        self._runner: web.AppRunner | None = None

    async def start(self) -> str:
        """Start serving and replay what was recorded but not handled; returns the callback URL."""
        host, _, port = self.listen.rpartition(":")
        self._runner = web.AppRunner(self.endpoint.app(), access_log_class=QueryFreeAccessLogger)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host or "0.0.0.0", int(port))
        await site.start()
        await self.intake.replay_unhandled()
        bound = self._runner.addresses[0]
        return f"http://{bound[0]}:{bound[1]}{PATH}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.intake.drain()


async def run_server(
    settings: Settings, runtime: Runtime, channel: WeChatChannel, stop: asyncio.Event, monitor: Monitor | None = None
) -> None:
    server = WeChatServer(settings, runtime, channel)
    url = await server.start()
    if monitor is not None:
        monitor.engine_ready = True
    log.info("serving WeChat at %s", url)
    if server.endpoint.crypto is None:
        log.warning(
            "WeChat runs in plain mode, whose signature does not cover the message: set GRIDBOT_WECHAT_AES_KEY"
            " and choose safe mode (安全模式) in the Official Account's console"
        )
    try:
        await stop.wait()
    finally:
        await server.stop()


async def serve(service: Service, stop: asyncio.Event) -> None:
    """Run WeChat alone until ``stop`` is set: the callback server, the outbox, broadcasts and the scheduler."""
    channel = make_channel(service)
    runtime = service.runtime({CHANNEL: channel}, "")
    monitor = Monitor(runtime)
    monitor.count_channels()
    loops = start_background_loops(service.settings, runtime, stop)
    if service.settings.metrics_listen:
        loops.append(asyncio.create_task(monitor.serve(service.settings.metrics_listen, stop)))
    try:
        await run_server(service.settings, runtime, channel, stop, monitor)
        await runtime.drain()
        await asyncio.gather(*loops)
    finally:
        await cancel_loops(loops)
        await channel.api.close()


EngineServe = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


def alongside(service: Service, telegram: EngineServe) -> EngineServe:
    """Serve WeChat beside a Telegram engine, sharing the runtime (and outbox) the engine builds."""

    async def run(stop: asyncio.Event) -> None:
        channel = make_channel(service)
        ready: asyncio.Future[Runtime] = asyncio.get_running_loop().create_future()
        service.extra_channels[CHANNEL] = channel
        service.wechat_codes = channel.api

        def runtime_built(runtime: Runtime) -> None:
            if not ready.done():
                ready.set_result(runtime)

        service.runtime_listeners.append(runtime_built)
        async def wechat_side() -> None:
            await run_server(service.settings, await ready, channel, stop)

        engine = asyncio.create_task(telegram(stop))
        side = asyncio.create_task(wechat_side())
        try:
            await engine  # raises if the Telegram engine failed to start
            if ready.done():
                await side
        finally:
            for task in (engine, side):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await channel.api.close()

    return run
