"""What reaches the core from a chat (events) and what the core asks a chat to do (actions).

These are plain data: every engine translates its framework's objects into events and carries actions out.
Actions are stored in the outbox as JSON, so each one round-trips through ``to_json`` / ``action_from_json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

# Telegram's limits, which every channel's answers are kept within.
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_BYTES = 64


# --- incoming -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sender:
    channel: str
    external_id: str
    chat_id: str
    display_name: str = ""
    language_code: str | None = None
    # Set when the person writes in a group chat (a team chat): where answers go, while ``chat_id`` stays
    # the person's own chat.
    group_chat_id: str | None = None
    group_title: str = ""


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Command:
    name: str  # without the slash, lower case
    args: str = ""


@dataclass(frozen=True)
class ButtonPress:
    callback_id: str
    data: str
    message_id: int | None = None
    # The pressed message shows a photo or a file, so editing it means editing its caption.
    on_media: bool = False


@dataclass(frozen=True)
class Photo:
    file_id: str
    caption: str = ""


@dataclass(frozen=True)
class Location:
    latitude: float
    longitude: float


@dataclass(frozen=True)
class Contact:
    phone: str


@dataclass(frozen=True)
class Document:
    file_id: str
    file_name: str = ""


@dataclass(frozen=True)
class Unsupported:
    """Anything the bot does not understand (stickers, voice, edits...)."""

    kind: str = ""


Event = Text | Command | ButtonPress | Photo | Location | Contact | Document | Unsupported


@dataclass(frozen=True)
class Incoming:
    """One update from a channel: who sent what. ``update_id`` is unique per channel."""

    channel: str
    update_id: int
    sender: Sender
    event: Event


def parse_command(text: str) -> Command | None:
    """``/new@gridbot args`` -> Command("new", "args"); anything else -> None."""
    if not text.startswith("/") or len(text) < 2:
        return None
    head, _, args = text.partition(" ")
    name = head[1:].split("@", 1)[0].lower()
    if not name or not all(ch.isascii() and (ch.isalnum() or ch == "_") for ch in name):
        return None
    return Command(name=name, args=args.strip())


# --- outgoing -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Button:
    text: str
    data: str = ""  # callback data (inline keyboards)
    url: str = ""

    def __post_init__(self) -> None:
        if self.data and len(self.data.encode()) > MAX_CALLBACK_BYTES:
            raise ValueError(f"callback data over {MAX_CALLBACK_BYTES} bytes: {self.data!r}")


@dataclass(frozen=True)
class InlineKeyboard:
    rows: tuple[tuple[Button, ...], ...]


@dataclass(frozen=True)
class ReplyKeyboard:
    """Buttons that send their text; ``location_button`` asks the chat client for the person's location."""

    rows: tuple[tuple[str, ...], ...]
    location_button: str = ""
    one_time: bool = False


@dataclass(frozen=True)
class RemoveKeyboard:
    pass


Keyboard = InlineKeyboard | ReplyKeyboard | RemoveKeyboard


def inline(*rows: list[Button] | tuple[Button, ...]) -> InlineKeyboard:
    return InlineKeyboard(tuple(tuple(row) for row in rows if row))


@dataclass(frozen=True)
class SendText:
    text: str
    keyboard: Keyboard | None = None
    # The request this message shows, so that it is edited whenever the request changes.
    shows_request: int | None = None


@dataclass(frozen=True)
class SendPhoto:
    photo: str  # a file id the channel knows
    caption: str = ""
    keyboard: Keyboard | None = None
    shows_request: int | None = None


@dataclass(frozen=True)
class SendDocument:
    file_name: str
    content_hex: str  # bytes as hex, so the action stays JSON
    caption: str = ""

    @property
    def content(self) -> bytes:
        return bytes.fromhex(self.content_hex)


@dataclass(frozen=True)
class EditText:
    """Replace what a sent message says: its text, or its caption when it shows a photo or file (``media``).

    An edit answering the person (the default) arrives as a new message when the platform refuses it, so the
    answer is never lost. A ``quiet`` edit only keeps an old message up to date: a refused one is dropped, and
    a channel that cannot edit leaves it out rather than sending it anew.
    """

    message_id: int
    text: str
    keyboard: InlineKeyboard | None = None
    media: bool = False
    quiet: bool = False


@dataclass(frozen=True)
class AnswerButton:
    callback_id: str
    text: str = ""
    alert: bool = False


@dataclass(frozen=True)
class SetCommands:
    """The command menu this person sees (in their language, for their role)."""

    commands: tuple[tuple[str, str], ...]  # (command, description)


@dataclass(frozen=True)
class SendStartCode:
    """A QR code whose scan opens the bot with ``/start <payload>``, and a caption.

    Each platform makes its own code: Telegram's encodes the deep link ``link`` and is sent as a PNG file;
    WeChat's is a parametric QR code with the scene ``payload``, made through the QR-code API and living
    ``expire_seconds`` (0: a permanent code). A Telegram chat of a bot that serves WeChat too also gets
    WeChat's code, with ``wechat_caption`` (none without it).
    """

    payload: str
    link: str
    file_name: str
    caption: str = ""
    expire_seconds: int = 0
    wechat_caption: str = ""


Action = SendText | SendPhoto | SendDocument | SendStartCode | EditText | AnswerButton | SetCommands

_ACTIONS: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (SendText, SendPhoto, SendDocument, SendStartCode, EditText, AnswerButton, SetCommands)
}
_KEYBOARDS: dict[str, type[Any]] = {cls.__name__: cls for cls in (InlineKeyboard, ReplyKeyboard, RemoveKeyboard)}


def clip(text: str, limit: int = MAX_TEXT) -> str:
    """Keep a text within a platform limit, marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def action_to_json(action: Action) -> dict[str, Any]:
    data: dict[str, Any] = {"type": type(action).__name__}
    for name in _field_names(type(action)) or ():
        value = getattr(action, name)
        if name == "keyboard" and value is not None:
            data[name] = {"type": type(value).__name__, **_plain(value)}
        else:
            data[name] = _plain(value)
    return data


def _plain(value: Any) -> Any:
    """What ``dataclasses.asdict`` makes of an action, without its deep copy of every value: actions hold only
    immutable values, tuples and frozen dataclasses, and every update writes a few of them to the outbox."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if isinstance(value, tuple):
        return tuple(_plain(item) for item in value)
    names = _field_names(kind)
    if names is None:
        return value
    return {name: _plain(getattr(value, name)) for name in names}


# Most values of an action: returned as they are, before any other test.
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _field_names(kind: type) -> tuple[str, ...] | None:
    """The field names of a dataclass (None for other types), looked up once per type."""
    if kind not in _FIELD_NAMES:
        _FIELD_NAMES[kind] = tuple(field.name for field in fields(kind)) if is_dataclass(kind) else None
    return _FIELD_NAMES[kind]


_FIELD_NAMES: dict[type, tuple[str, ...] | None] = {}


def _keyboard_from_json(data: dict[str, Any] | None) -> Keyboard | None:
    if data is None:
        return None
    kind = data.pop("type")
    if kind == "InlineKeyboard":
        return InlineKeyboard(tuple(tuple(Button(**button) for button in row) for row in data["rows"]))
    if kind == "ReplyKeyboard":
        return ReplyKeyboard(
            rows=tuple(tuple(row) for row in data["rows"]),
            location_button=data.get("location_button", ""),
            one_time=data.get("one_time", False),
        )
    return RemoveKeyboard()


def action_from_json(data: dict[str, Any]) -> Action:
    data = dict(data)
    cls = _ACTIONS[data.pop("type")]
    if "keyboard" in data:
        data["keyboard"] = _keyboard_from_json(data["keyboard"])
    if "commands" in data:
        data["commands"] = tuple(tuple(pair) for pair in data["commands"])
    action: Action = cls(**data)
    return action


@dataclass
class Delivery:
    """What a channel reports after trying to carry out an action."""

    ok: bool
    message_id: int | None = None
    retry_after: float | None = None  # the platform asked to wait (429)
    blocked: bool = False  # the person blocked the bot (403)
    permanent: bool = False  # retrying will not help (bad request)
    # No answer came back (the connection broke or timed out mid-call): the platform may have carried the
    # action out, so a retry can show a message twice.
    outcome_unknown: bool = False
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
