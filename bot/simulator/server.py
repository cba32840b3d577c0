"""An in-process Telegram Bot API server for end-to-end tests.

The bot under test talks to :class:`BotApiSimulator` over real HTTP with its
real client library, so serialisation, retries and error handling are
exercised exactly as in production.  The simulator is deliberately as strict
as Telegram: mistakes that Telegram rejects (over-long texts, oversized
``callback_data``, no-op edits, writing to users who never started the bot)
fail here too, with Telegram's own descriptions.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import mimetypes
import re
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
from aiohttp import web

from .errors import ApiError, bad_request, forbidden
from .groups import SimGroup
from .models import PHOTO_SIZES, CallbackAnswer, SimFile, SimMessage, visible_text
from .params import Params, UploadedFile, parse_chat_id, validate_reply_markup
from .users import SimUser
from .webhook import SECRET_TOKEN_RE, WebhookConfig, deliver

logger = logging.getLogger(__name__)

EventCallback = Callable[[dict[str, Any]], Awaitable[None]]
MethodHandler = Callable[[Params], Awaitable[Any]]

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_ANSWER_LENGTH = 200
MAX_DOWNLOAD_SIZE = 20 * 1024 * 1024
MAX_UPLOAD_SIZE = 50 * 1024 * 1024

NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the same "
    "as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "query is too old and response timeout expired or query ID is invalid"
WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
)
POLLING_CONFLICT = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"

#: Methods that count against the flood limit: everything that puts content into a chat.
FLOOD_COUNTED = frozenset(
    {"sendmessage", "sendphoto", "senddocument", "editmessagetext", "editmessagereplymarkup", "editmessagecaption"}
)

#: Methods that do not count in the strict mode either: reading updates, files and settings.
FLOOD_EXEMPT_STRICT = frozenset(
    {"getupdates", "getme", "getfile", "getwebhookinfo", "setwebhook", "deletewebhook", "logout", "close"}
)

#: Update types delivered when ``allowed_updates`` is not specified.
DEFAULT_EXCLUDED_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})

CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)

_COMMAND_NAME_RE = re.compile(r"[a-z0-9_]{1,32}")
_LANGUAGE_CODE_RE = re.compile(r"[a-z]{2}")

_STATUS_TEXT = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass(slots=True)
class InjectedFailure:
    """A scripted failure answered instead of running the next matching call(s)."""

    method: str | None
    status: int
    remaining: int
    description: str | None = None
    drop_connection: bool = False
    retry_after: int | None = None

    def matches(self, method: str) -> bool:
        return self.remaining > 0 and (self.method is None or self.method == method)


@dataclass(slots=True)
class _PendingQuery:
    user_id: int
    message_id: int
    data: str


class BotApiSimulator:
    """A strict fake of the Telegram Bot API plus a driver for simulated users."""

    def __init__(
        self,
        token: str = "123:ABC",
        *,
        flood_limit: float | None = None,
        strict_flood: bool = False,
        bot_username: str = "gridbot_sim_bot",
        bot_first_name: str = "GridBot",
        history_limit: int = 1000,
        max_pending_updates: int = 10_000,
        max_files: int = 10_000,
        max_file_bytes: int | None = None,
        webhook_retries: int = 3,
        webhook_backoff: float = 0.05,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        bot_id, sep, _secret = token.partition(":")
        if not sep or not bot_id.isdigit():
            raise ValueError("token must look like '<bot id>:<secret>'")
        self.token = token
        #: Messages per second allowed over a sliding one-second window; ``None`` disables the limit.
        self.flood_limit = flood_limit
        #: Count every call that acts on a chat (answers to buttons, menus, ...) against the limit, not only
        #: the ones that put content into it: one global limit as strict as Telegram could be.
        self.strict_flood = strict_flood
        #: 429s answered because of the flood limit.
        self.flood_refusals = 0
        #: Messages sent by the bot (sendMessage, sendPhoto, sendDocument).
        self.sent_count = 0
        #: Commands stored by ``setMyCommands`` keyed by ``(scope key, language code)``.
        self.commands: dict[tuple[str, str], list[dict[str, str]]] = {}
        #: Menu buttons keyed by chat id (``None`` for the default button).
        self.menu_buttons: dict[int | None, dict[str, Any]] = {}
        self.base_url: str | None = None
        self.logged_out = False

        self._bot_id = int(bot_id)
        self._bot_username = bot_username
        self._bot_first_name = bot_first_name
        self._history_limit = history_limit
        self._max_files = max_files
        #: Bytes of stored files (each photo size counted) beyond which the oldest files are dropped.
        self._max_file_bytes = max_file_bytes
        self._file_bytes = 0
        self._webhook_retries = webhook_retries
        self._webhook_backoff = webhook_backoff

        self._users: dict[int, SimUser] = {}
        self._groups: dict[int, SimGroup] = {}
        self._updates: deque[dict[str, Any]] = deque(maxlen=max_pending_updates)
        self._next_update_id = 1
        # What message dates are taken from: the playground's simulated time, the system clock otherwise.
        self._clock = clock
        self._allowed_updates: list[str] | None = None
        self._seq = 0
        self._changed = asyncio.Event()
        self._poll_generation = 0
        self._files: OrderedDict[str, SimFile] = OrderedDict()
        self._files_by_path: dict[str, SimFile] = {}
        self._photo_groups: dict[str, list[SimFile]] = {}
        self._file_counter = 0
        self._queries: OrderedDict[str, _PendingQuery] = OrderedDict()
        self._flood_window: deque[float] = deque()
        self._failures: list[InjectedFailure] = []
        self._subscribers: list[EventCallback] = []
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=10_000)
        self._dispatcher: asyncio.Task[None] | None = None
        self._webhook: WebhookConfig | None = None
        self._webhook_task: asyncio.Task[None] | None = None
        self._http: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._closing = False
        self._methods: dict[str, MethodHandler] = {
            name.lower(): handler
            for name, handler in {
                "getMe": self._get_me,
                "getUpdates": self._get_updates,
                "setWebhook": self._set_webhook,
                "deleteWebhook": self._delete_webhook,
                "getWebhookInfo": self._get_webhook_info,
                "sendMessage": self._send_message,
                "editMessageText": self._edit_message_text,
                "editMessageReplyMarkup": self._edit_message_reply_markup,
                "editMessageCaption": self._edit_message_caption,
                "deleteMessage": self._delete_message,
                "answerCallbackQuery": self._answer_callback_query,
                "sendPhoto": self._send_photo,
                "sendDocument": self._send_document,
                "sendChatAction": self._send_chat_action,
                "getFile": self._get_file,
                "setMyCommands": self._set_my_commands,
                "getMyCommands": self._get_my_commands,
                "deleteMyCommands": self._delete_my_commands,
                "setChatMenuButton": self._set_chat_menu_button,
                "getChatMenuButton": self._get_chat_menu_button,
                "close": self._close,
                "logOut": self._log_out,
            }.items()
        }

    # ============================================================ lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Start serving; returns the base URL (``http://host:port``) for the clients."""
        if self._runner is not None:
            raise RuntimeError("simulator already started")
        self._closing = False
        app = web.Application(client_max_size=MAX_UPLOAD_SIZE + 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{file_path:.+}", self._handle_file)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        bound_port = int(runner.addresses[0][1])
        self.base_url = f"http://{host}:{bound_port}"
        return self.base_url

    async def stop(self) -> None:
        """Stop serving, ending pending long polls and background delivery."""
        self._closing = True
        self._signal()
        await self._stop_webhook_worker()
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
            self._dispatcher = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def __aenter__(self) -> BotApiSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # ============================================================ driver API

    def user(
        self,
        user_id: int,
        first_name: str = "User",
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
    ) -> SimUser:
        """Create a simulated user, or return the existing one with this id."""
        existing = self._users.get(user_id)
        if existing is not None:
            return existing
        created = SimUser(
            self,
            user_id,
            first_name=first_name,
            last_name=last_name,
            username=username,
            language_code=language_code,
            history_limit=self._history_limit,
        )
        self._users[user_id] = created
        return created

    def group(
        self, group_id: int, title: str = "Group", *, kind: str = "supergroup", privacy_mode: bool = False
    ) -> SimGroup:
        """Create a simulated group chat (a negative id), or return the existing one with this id."""
        existing = self._groups.get(group_id)
        if existing is not None:
            return existing
        created = SimGroup(self, group_id, title=title, kind=kind, privacy_mode=privacy_mode,
                           history_limit=self._history_limit)
        self._groups[group_id] = created
        return created

    @property
    def users(self) -> dict[int, SimUser]:
        return dict(self._users)

    @property
    def seq(self) -> int:
        """Monotonic counter of chat changes; pass to ``SimUser.wait_for(since=...)``."""
        return self._seq

    @property
    def webhook(self) -> dict[str, Any]:
        """The current ``WebhookInfo``, exactly as ``getWebhookInfo`` returns it."""
        return self._webhook_info()

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates not yet confirmed by getUpdates or delivered to the webhook."""
        return list(self._updates)

    def get_commands(self, scope: str = "default", language_code: str = "") -> list[dict[str, str]]:
        """Commands stored for a scope key (``"default"``, ``"chat:1001"``, ...) and language."""
        return list(self.commands.get((scope, language_code), []))

    def bot_user(self) -> dict[str, Any]:
        """The bot's ``User`` object."""
        return {
            "id": self._bot_id,
            "is_bot": True,
            "first_name": self._bot_first_name,
            "username": self._bot_username,
        }

    def inject_failure(
        self,
        method: str | None = None,
        status: int = 500,
        count: int = 1,
        *,
        drop_connection: bool = False,
        description: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        """Make the next ``count`` calls of ``method`` (any method if ``None``) fail.

        ``status=502`` answers with an HTML gateway page like Telegram's proxy,
        other statuses with a JSON error; ``drop_connection=True`` closes the
        socket without any response.
        """
        if count < 1:
            raise ValueError("count must be at least 1")
        self._failures.append(
            InjectedFailure(
                method=method.lower() if method is not None else None,
                status=status,
                remaining=count,
                description=description,
                drop_connection=drop_connection,
                retry_after=retry_after,
            )
        )

    def clear_failures(self) -> None:
        self._failures.clear()

    def subscribe(self, callback: EventCallback) -> Callable[[], None]:
        """Register an async callback for every chat event; returns an unsubscribe function.

        Events are dicts with a ``type`` of ``user_message``, ``bot_message``,
        ``bot_edit``, ``bot_delete``, ``callback_query``, ``callback_answer`` or
        ``chat_action`` plus ``chat_id`` and the Telegram-shaped payload.  They
        are delivered in order by a background task so a slow subscriber never
        delays the bot's API calls.
        """
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._subscribers.remove(callback)

        return unsubscribe

    # ===================================================== internal helpers used by SimUser

    def _signal(self) -> None:
        """Wake everything waiting for a change (long polls, webhook worker, test waits)."""
        self._changed.set()
        self._changed = asyncio.Event()

    def _change_event(self) -> asyncio.Event:
        return self._changed

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _add_message(
        self, user: SimUser, *, from_bot: bool, sender: dict[str, Any] | None = None, **content: Any
    ) -> SimMessage:
        message = SimMessage(
            message_id=user._allocate_message_id(),
            chat=user.chat(),
            sender=self.bot_user() if from_bot else sender or user.to_api(),
            from_bot=from_bot,
            date=self.now(),
            seq=self._next_seq(),
            **content,
        )
        user._store(message)
        self._signal()
        return message

    def now(self) -> int:
        """The current time as Telegram gives it, Unix seconds, from the simulator's clock."""
        return int(self._clock().timestamp()) if self._clock is not None else int(time.time())

    def continue_update_ids_after(self, last_update_id: int) -> None:
        """Number the next updates above ``last_update_id``: a bot that recorded updates of an earlier run
        skips ids it has seen as already handled, as it should with Telegram, whose ids only grow."""
        self._next_update_id = max(self._next_update_id, last_update_id + 1)

    def _enqueue_update(self, kind: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        allowed = self._allowed_updates
        if allowed is None:
            if kind in DEFAULT_EXCLUDED_UPDATES:
                return None
        elif kind not in allowed:
            return None
        update = {"update_id": self._next_update_id, kind: payload}
        self._next_update_id += 1
        self._updates.append(update)
        self._signal()
        return update

    def _emit(self, event: dict[str, Any]) -> None:
        if not self._subscribers:
            return
        try:
            self._events.put_nowait(event)
        except asyncio.QueueFull:
            logger.warning("dropping simulator event %s: subscribers are too slow", event.get("type"))
            return
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.get_running_loop().create_task(self._dispatch_events())

    async def _dispatch_events(self) -> None:
        while True:
            event = await self._events.get()
            for callback in list(self._subscribers):
                try:
                    await callback(event)
                except Exception:
                    logger.exception("simulator event subscriber failed")

    def _new_file(
        self,
        folder: str,
        data: bytes,
        *,
        name: str | None = None,
        mime_type: str | None = None,
        width: int | None = None,
        height: int | None = None,
        ext: str | None = None,
    ) -> SimFile:
        self._file_counter += 1
        if ext is None:
            ext = ""
            if name and "." in name:
                ext = "." + name.rsplit(".", 1)[1]
            elif mime_type:
                ext = mimetypes.guess_extension(mime_type) or ""
        sim_file = SimFile(
            file_id=f"{'AgAC' if folder == 'photos' else 'BQAC'}{self._file_counter:06d}" + secrets.token_urlsafe(18),
            file_unique_id=f"AQAD{self._file_counter:06d}" + secrets.token_urlsafe(6),
            data=data,
            file_path=f"{folder}/file_{self._file_counter}{ext}",
            name=name,
            mime_type=mime_type,
            width=width,
            height=height,
        )
        self._files[sim_file.file_id] = sim_file
        self._files_by_path[sim_file.file_path] = sim_file
        self._file_bytes += len(data)
        while len(self._files) > self._max_files or (
            self._max_file_bytes is not None and self._file_bytes > self._max_file_bytes and len(self._files) > 1
        ):
            _, evicted = self._files.popitem(last=False)
            self._file_bytes -= len(evicted.data)
            self._files_by_path.pop(evicted.file_path, None)
            self._photo_groups.pop(evicted.file_id, None)
        return sim_file

    def _new_photo_sizes(self, data: bytes) -> list[SimFile]:
        sizes = [self._new_file("photos", data, width=w, height=h, ext=".jpg") for w, h in PHOTO_SIZES]
        for size in sizes:
            self._photo_groups[size.file_id] = sizes
        return sizes

    def file(self, file_id: str) -> SimFile | None:
        """Look up a stored file by ``file_id``."""
        return self._files.get(file_id)

    def _register_callback_query(self, user: SimUser, message: SimMessage, data: str) -> str:
        query_id = str(secrets.randbits(62))
        self._queries[query_id] = _PendingQuery(user.id, message.message_id, data)
        while len(self._queries) > 10_000:
            self._queries.popitem(last=False)
        return query_id

    def _chat_instance(self, user: SimUser) -> int:
        # Stable per chat, opaque to the bot, as in Telegram.
        return (user.id * 2654435761 + self._bot_id) % (2**63)

    # ============================================================ HTTP layer

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return self._json(ApiError(401, "Unauthorized").to_payload(), 401)
        name = request.match_info["method"].lower()
        handler = self._methods.get(name)
        if handler is None:
            return self._json(ApiError(404, "Not Found: method not found").to_payload(), 404)
        failure = self._take_failure(name)
        if failure is not None:
            return self._failure_response(request, failure)
        try:
            params = await self._read_params(request)
            result = await self._call(name, handler, params)
        except ApiError as error:
            return self._json(error.to_payload(), error.error_code)
        return self._json({"ok": True, "result": result}, 200)

    async def _call(self, name: str, handler: MethodHandler, params: Params) -> Any:
        counted = name not in FLOOD_EXEMPT_STRICT if self.strict_flood else name in FLOOD_COUNTED
        if counted:
            self._check_flood()
        result = await handler(params)
        if counted:
            self._flood_window.append(time.monotonic())
        return result

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return self._json(ApiError(401, "Unauthorized").to_payload(), 401)
        sim_file = self._files_by_path.get(request.match_info["file_path"])
        if sim_file is None:
            return self._json(ApiError(404, "Not Found").to_payload(), 404)
        return web.Response(body=sim_file.data, content_type=sim_file.mime_type or "application/octet-stream")

    @staticmethod
    def _json(payload: dict[str, Any], status: int) -> web.Response:
        return web.Response(
            text=json.dumps(payload, ensure_ascii=False), status=status, content_type="application/json"
        )

    async def _read_params(self, request: web.Request) -> Params:
        values: dict[str, Any] = dict(request.query)
        files: dict[str, UploadedFile] = {}
        if request.can_read_body:
            content_type = request.content_type
            if content_type == "application/json":
                try:
                    body = await request.json()
                except ValueError:
                    raise bad_request("can't parse JSON object") from None
                if not isinstance(body, dict):
                    raise bad_request("can't parse JSON object")
                values.update(body)
            elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
                form = await request.post()
                for key, value in form.items():
                    if isinstance(value, web.FileField):
                        uploaded = UploadedFile(value.filename, value.content_type, value.file.read())
                        values[key] = uploaded
                        files[key] = uploaded
                    else:
                        values[key] = value
        return Params(values, files)

    def _take_failure(self, method: str) -> InjectedFailure | None:
        for failure in self._failures:
            if failure.matches(method):
                failure.remaining -= 1
                if failure.remaining <= 0:
                    self._failures.remove(failure)
                return failure
        return None

    def _failure_response(self, request: web.Request, failure: InjectedFailure) -> web.StreamResponse:
        if failure.drop_connection:
            # Abort the socket so the client sees a reset; the response below is never written.
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=500)
        reason = _STATUS_TEXT.get(failure.status, "Error")
        if failure.status == 502 and failure.description is None:
            page = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
            page += "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>"
            return web.Response(text=page, status=502, content_type="text/html")
        description = failure.description or reason
        retry_after = failure.retry_after
        if failure.status == 429:
            retry_after = retry_after or 1
            if failure.description is None:
                description = f"Too Many Requests: retry after {retry_after}"
        error = ApiError(failure.status, description, retry_after=retry_after)
        return self._json(error.to_payload(), failure.status)

    # ============================================================ shared checks

    def _check_flood(self) -> None:
        limit = self.flood_limit
        if limit is None:
            return
        now = time.monotonic()
        window = self._flood_window
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) >= limit:
            self.flood_refusals += 1
            retry_after = max(1, math.ceil(window[0] + 1.0 - now))
            raise ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after)

    def _chat_user(self, params: Params) -> SimUser:
        chat_id = parse_chat_id(params)
        user = self._users.get(chat_id) or self._groups.get(chat_id)
        if user is None or not user.started:
            raise bad_request("chat not found")
        if user.blocked:
            raise forbidden("bot was blocked by the user")
        return user

    @staticmethod
    def _text(params: Params, name: str = "text") -> str:
        raw = params.get_str(name)
        text = visible_text(raw or "", params.get_str("parse_mode"))
        if not text.strip():
            raise bad_request("message text is empty")
        if len(text) > MAX_TEXT_LENGTH:
            raise bad_request("message is too long")
        return text

    @staticmethod
    def _caption(params: Params) -> str | None:
        raw = params.get_str("caption")
        if raw is None:
            return None
        caption = visible_text(raw, params.get_str("parse_mode"))
        if len(caption) > MAX_CAPTION_LENGTH:
            raise bad_request("message caption is too long")
        return caption or None

    @staticmethod
    def _reply_target(params: Params, user: SimUser) -> SimMessage | None:
        reply_to_id = params.get_int("reply_to_message_id")
        allow_missing = params.get_bool("allow_sending_without_reply")
        reply_parameters = params.get_json("reply_parameters")
        if isinstance(reply_parameters, dict):
            raw_id = reply_parameters.get("message_id")
            reply_to_id = int(raw_id) if isinstance(raw_id, int | str) and str(raw_id).isdigit() else None
            allow_missing = bool(reply_parameters.get("allow_sending_without_reply", allow_missing))
        if reply_to_id is None:
            return None
        target = user.find_message(reply_to_id)
        if target is None or target.deleted:
            if allow_missing:
                return None
            raise bad_request("message to be replied not found")
        return target

    def _after_bot_send(self, user: SimUser, message: SimMessage, markup: dict[str, Any] | None) -> None:
        if markup is not None:
            if "keyboard" in markup:
                user.reply_keyboard = markup
            elif markup.get("remove_keyboard") is True:
                user.reply_keyboard = None
        self.sent_count += 1
        self._emit({"type": "bot_message", "chat_id": user.id, "message": message.to_api()})

    def _resolve_input_file(self, params: Params, name: str) -> UploadedFile | SimFile | list[SimFile]:
        value = params.get_input_file(name)
        if value is None:
            raise bad_request(f"there is no {name} in the request")
        if isinstance(value, UploadedFile):
            if not value.data:
                raise bad_request("file must be non-empty")
            return value
        if name == "photo" and value in self._photo_groups:
            return self._photo_groups[value]
        stored = self._files.get(value)
        if stored is not None:
            return stored
        if value.startswith(("http://", "https://")):
            return UploadedFile(value.rsplit("/", 1)[-1] or name, "application/octet-stream", b"")
        raise bad_request("wrong file identifier/HTTP URL specified")

    def _editable(self, params: Params) -> tuple[SimUser, SimMessage]:
        if "inline_message_id" in params:
            raise bad_request("MESSAGE_ID_INVALID")
        user = self._chat_user(params)
        message_id = params.get_int("message_id")
        if message_id is None:
            raise bad_request("message identifier is not specified")
        message = user.find_message(message_id)
        if message is None or message.deleted:
            raise bad_request("message to edit not found")
        if not message.from_bot:
            raise bad_request("message can't be edited")
        return user, message

    @staticmethod
    def _inline_markup(message: SimMessage) -> dict[str, Any] | None:
        markup = message.reply_markup
        return markup if markup is not None and "inline_keyboard" in markup else None

    def _apply_edit(
        self, user: SimUser, message: SimMessage, markup: dict[str, Any] | None, **changes: Any
    ) -> dict[str, Any]:
        message.history.append(message.snapshot())
        for key, value in changes.items():
            setattr(message, key, value)
        # Edits replace the inline keyboard (omitting it removes it); a reply keyboard is not
        # part of the message and survives.
        if markup is not None or self._inline_markup(message) is not None:
            message.reply_markup = markup
        message.edit_count += 1
        message.edit_date = self.now()
        message.seq = self._next_seq()
        self._signal()
        payload = message.to_api()
        self._emit({"type": "bot_edit", "chat_id": user.id, "message": payload})
        return payload

    def _webhook_info(self) -> dict[str, Any]:
        if self._webhook is None:
            return {"url": "", "has_custom_certificate": False, "pending_update_count": len(self._updates)}
        return self._webhook.info(len(self._updates))

    # ============================================================ methods

    async def _get_me(self, params: Params) -> dict[str, Any]:
        return {
            **self.bot_user(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _get_updates(self, params: Params) -> list[dict[str, Any]]:
        if self._webhook is not None:
            raise ApiError(409, WEBHOOK_CONFLICT)
        offset = params.get_int("offset")
        limit = min(100, max(1, params.get_int("limit", 100) or 100))
        timeout = max(0, params.get_int("timeout", 0) or 0)
        allowed = params.get_json("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = [str(kind) for kind in allowed] or None
        self._confirm(offset)
        # A newer poll terminates an older one, which is how Telegram reports two running instances.
        self._poll_generation += 1
        generation = self._poll_generation
        self._signal()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            changed = self._changed
            if generation != self._poll_generation:
                raise ApiError(409, POLLING_CONFLICT)
            if self._webhook is not None:
                raise ApiError(409, WEBHOOK_CONFLICT)
            remaining = deadline - loop.time()
            if self._updates or self._closing or remaining <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)
        return [dict(update) for update in list(self._updates)[:limit]]

    def _confirm(self, offset: int | None) -> None:
        if offset is None:
            return
        if offset < 0:
            while len(self._updates) > -offset:
                self._updates.popleft()
            return
        while self._updates and self._updates[0]["update_id"] < offset:
            self._updates.popleft()

    async def _set_webhook(self, params: Params) -> bool:
        url = params.get_str("url", "") or ""
        if not url:
            return await self._delete_webhook(params)
        if not url.startswith(("https://", "http://")):
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get_str("secret_token")
        if secret is not None and not SECRET_TOKEN_RE.fullmatch(secret):
            raise bad_request("secret token contains unallowed characters")
        max_connections = params.get_int("max_connections", 40) or 40
        if not 1 <= max_connections <= 100:
            raise bad_request("bad webhook: max_connections must be between 1 and 100")
        allowed = params.get_json("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = [str(kind) for kind in allowed] or None
        if params.get_bool("drop_pending_updates"):
            self._updates.clear()
        await self._stop_webhook_worker()
        self._webhook = WebhookConfig(
            url=url,
            secret_token=secret,
            max_connections=max_connections,
            ip_address=params.get_str("ip_address"),
            allowed_updates=self._allowed_updates,
        )
        self._webhook_task = asyncio.get_running_loop().create_task(self._webhook_worker())
        self._signal()
        return True

    async def _delete_webhook(self, params: Params) -> bool:
        if params.get_bool("drop_pending_updates"):
            self._updates.clear()
        await self._stop_webhook_worker()
        self._webhook = None
        self._signal()
        return True

    async def _stop_webhook_worker(self) -> None:
        task = self._webhook_task
        self._webhook_task = None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _webhook_worker(self) -> None:
        while not self._closing and self._webhook is not None:
            config = self._webhook
            changed = self._changed
            if not self._updates:
                await changed.wait()
                continue
            update = self._updates[0]
            if self._http is None or self._http.closed:
                self._http = aiohttp.ClientSession()
            delivered, reply = await deliver(
                self._http, config, update, retries=self._webhook_retries, backoff=self._webhook_backoff
            )
            if self._updates and self._updates[0] is update:
                self._updates.popleft()
            if delivered:
                config.last_error_date = None
                config.last_error_message = None
            if reply is not None:
                handler = self._methods.get(reply.method.lower())
                if handler is None:
                    logger.warning("webhook replied with unknown method %s", reply.method)
                    continue
                try:
                    await self._call(reply.method.lower(), handler, reply.params)
                except ApiError as error:
                    logger.warning("webhook reply %s failed: %s", reply.method, error.description)

    async def _get_webhook_info(self, params: Params) -> dict[str, Any]:
        return self._webhook_info()

    async def _send_message(self, params: Params) -> dict[str, Any]:
        user = self._chat_user(params)
        text = self._text(params)
        markup = validate_reply_markup(params.get_json("reply_markup"))
        reply_to = self._reply_target(params, user)
        message = self._add_message(user, from_bot=True, text=text, reply_markup=markup, reply_to=reply_to)
        self._after_bot_send(user, message, markup)
        return message.to_api()

    async def _send_photo(self, params: Params) -> dict[str, Any]:
        user = self._chat_user(params)
        source = self._resolve_input_file(params, "photo")
        caption = self._caption(params)
        markup = validate_reply_markup(params.get_json("reply_markup"))
        reply_to = self._reply_target(params, user)
        if isinstance(source, UploadedFile):
            sizes = self._new_photo_sizes(source.data)
        elif isinstance(source, SimFile):
            sizes = [source]
        else:
            sizes = source
        message = self._add_message(
            user, from_bot=True, photo_sizes=sizes, caption=caption, reply_markup=markup, reply_to=reply_to
        )
        self._after_bot_send(user, message, markup)
        return message.to_api()

    async def _send_document(self, params: Params) -> dict[str, Any]:
        user = self._chat_user(params)
        source = self._resolve_input_file(params, "document")
        caption = self._caption(params)
        markup = validate_reply_markup(params.get_json("reply_markup"))
        reply_to = self._reply_target(params, user)
        if isinstance(source, UploadedFile):
            mime = mimetypes.guess_type(source.filename)[0] or source.content_type or "application/octet-stream"
            document = self._new_file("documents", source.data, name=source.filename, mime_type=mime)
        elif isinstance(source, SimFile):
            document = source
        else:
            document = source[-1]
        message = self._add_message(
            user, from_bot=True, document=document, caption=caption, reply_markup=markup, reply_to=reply_to
        )
        self._after_bot_send(user, message, markup)
        return message.to_api()

    async def _edit_message_text(self, params: Params) -> dict[str, Any]:
        user, message = self._editable(params)
        text = self._text(params)
        markup = validate_reply_markup(params.get_json("reply_markup"), inline_only=True)
        if message.text is None:
            raise bad_request("there is no text in the message to edit")
        if text == message.text and markup == self._inline_markup(message):
            raise bad_request(NOT_MODIFIED)
        return self._apply_edit(user, message, markup, text=text)

    async def _edit_message_caption(self, params: Params) -> dict[str, Any]:
        user, message = self._editable(params)
        caption = self._caption(params)
        markup = validate_reply_markup(params.get_json("reply_markup"), inline_only=True)
        if not message.photo_sizes and message.document is None:
            raise bad_request("there is no caption in the message to edit")
        if caption == message.caption and markup == self._inline_markup(message):
            raise bad_request(NOT_MODIFIED)
        return self._apply_edit(user, message, markup, caption=caption)

    async def _edit_message_reply_markup(self, params: Params) -> dict[str, Any]:
        user, message = self._editable(params)
        markup = validate_reply_markup(params.get_json("reply_markup"), inline_only=True)
        if markup == self._inline_markup(message):
            raise bad_request(NOT_MODIFIED)
        return self._apply_edit(user, message, markup)

    async def _delete_message(self, params: Params) -> bool:
        user = self._chat_user(params)
        message_id = params.get_int("message_id")
        if message_id is None:
            raise bad_request("message identifier is not specified")
        message = user.find_message(message_id)
        if message is None or message.deleted:
            raise bad_request("message to delete not found")
        message.deleted = True
        message.seq = self._next_seq()
        self._signal()
        self._emit({"type": "bot_delete", "chat_id": user.id, "message_id": message_id})
        return True

    async def _answer_callback_query(self, params: Params) -> bool:
        query_id = params.get_str("callback_query_id") or ""
        text = params.get_str("text")
        if text is not None and len(text) > MAX_CALLBACK_ANSWER_LENGTH:
            raise bad_request("MESSAGE_TOO_LONG")
        pending = self._queries.pop(query_id, None)
        if pending is None:
            raise bad_request(QUERY_TOO_OLD)
        answer = CallbackAnswer(
            query_id=query_id,
            data=pending.data,
            message_id=pending.message_id,
            text=text or None,
            show_alert=params.get_bool("show_alert"),
            url=params.get_str("url"),
        )
        user = self._users.get(pending.user_id)
        if user is not None:
            user.callback_answers.append(answer)
            del user.callback_answers[: -self._history_limit]
            self._emit(
                {
                    "type": "callback_answer",
                    "chat_id": user.id,
                    "query_id": query_id,
                    "text": answer.text,
                    "show_alert": answer.show_alert,
                }
            )
        self._signal()
        return True

    async def _send_chat_action(self, params: Params) -> bool:
        user = self._chat_user(params)
        action = params.get_str("action")
        if action not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        user.chat_actions.append(action)
        self._emit({"type": "chat_action", "chat_id": user.id, "action": action})
        return True

    async def _get_file(self, params: Params) -> dict[str, Any]:
        sim_file = self._files.get(params.get_str("file_id") or "")
        if sim_file is None:
            raise bad_request("invalid file_id")
        if sim_file.file_size > MAX_DOWNLOAD_SIZE:
            raise bad_request("file is too big")
        return sim_file.to_file()

    def _command_key(self, params: Params) -> tuple[str, str]:
        language_code = params.get_str("language_code", "") or ""
        if language_code and not _LANGUAGE_CODE_RE.fullmatch(language_code):
            raise bad_request("LANG_CODE_INVALID")
        scope = params.get_json("scope")
        if scope is None:
            return "default", language_code
        if not isinstance(scope, dict):
            raise bad_request("can't parse BotCommandScope JSON object")
        kind = scope.get("type")
        if kind in ("default", "all_private_chats", "all_group_chats", "all_chat_administrators"):
            return str(kind), language_code
        if kind in ("chat", "chat_administrators", "chat_member"):
            chat_id = scope.get("chat_id")
            if chat_id is None:
                raise bad_request("chat_id is empty")
            key = f"{kind}:{chat_id}"
            if kind == "chat_member":
                user_id = scope.get("user_id")
                if user_id is None:
                    raise bad_request("user_id is empty")
                key += f":{user_id}"
            return key, language_code
        raise bad_request("unsupported bot command scope type")

    async def _set_my_commands(self, params: Params) -> bool:
        commands = params.get_json("commands")
        if not isinstance(commands, list):
            raise bad_request("can't parse commands JSON object")
        if len(commands) > 100:
            raise bad_request("too many commands specified")
        stored: list[dict[str, str]] = []
        for entry in commands:
            if not isinstance(entry, dict):
                raise bad_request("can't parse BotCommand JSON object")
            command = entry.get("command")
            description = entry.get("description")
            if not isinstance(command, str) or not _COMMAND_NAME_RE.fullmatch(command):
                raise bad_request("BOT_COMMAND_INVALID")
            if not isinstance(description, str) or not 1 <= len(description) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
            stored.append({"command": command, "description": description})
        key = self._command_key(params)
        if stored:
            self.commands[key] = stored
        else:
            self.commands.pop(key, None)
        return True

    async def _get_my_commands(self, params: Params) -> list[dict[str, str]]:
        return [dict(command) for command in self.commands.get(self._command_key(params), [])]

    async def _delete_my_commands(self, params: Params) -> bool:
        self.commands.pop(self._command_key(params), None)
        return True

    async def _set_chat_menu_button(self, params: Params) -> bool:
        chat_id: int | None = None
        if "chat_id" in params:
            chat_id = self._chat_user(params).id
        button = params.get_json("menu_button") or {"type": "default"}
        if not isinstance(button, dict) or button.get("type") not in ("commands", "web_app", "default"):
            raise bad_request("can't parse menu button JSON object")
        if button["type"] == "web_app":
            web_app = button.get("web_app")
            if not button.get("text") or not isinstance(web_app, dict) or not web_app.get("url"):
                raise bad_request("can't parse menu button JSON object")
        if button["type"] == "default":
            self.menu_buttons.pop(chat_id, None)
        else:
            self.menu_buttons[chat_id] = dict(button)
        return True

    async def _get_chat_menu_button(self, params: Params) -> dict[str, Any]:
        chat_id = self._chat_user(params).id if "chat_id" in params else None
        button = self.menu_buttons.get(chat_id) or self.menu_buttons.get(None) or {"type": "commands"}
        return dict(button)

    async def _close(self, params: Params) -> bool:
        return True

    async def _log_out(self, params: Params) -> bool:
        self.logged_out = True
        return True
