"""Objects the simulator stores and their Telegram JSON shapes.

The same objects are handed to tests, so they carry both the wire
representation (``to_api``) and convenient accessors (``buttons``,
``reply_buttons``) that make assertions about conversations short.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

#: Sizes reported for every photo; Telegram always offers several thumbnails
#: and bots conventionally pick the last (largest) one.
PHOTO_SIZES: tuple[tuple[int, int], ...] = ((90, 68), (320, 240), (800, 600))

_COMMAND_RE = re.compile(r"(?:(?<=\s)|^)/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?(?![A-Za-z0-9_@])")
_TAG_RE = re.compile(r"<[^>]*>")


def utf16_len(text: str) -> int:
    """Entity offsets and lengths are measured in UTF-16 code units by Telegram."""
    return len(text.encode("utf-16-le")) // 2


def command_entities(text: str) -> list[dict[str, Any]]:
    """Return ``bot_command`` entities so client command filters recognise commands."""
    entities: list[dict[str, Any]] = []
    for match in _COMMAND_RE.finditer(text):
        entities.append(
            {
                "type": "bot_command",
                "offset": utf16_len(text[: match.start()]),
                "length": utf16_len(match.group(0)),
            }
        )
    return entities


def visible_text(text: str, parse_mode: str | None) -> str:
    """Return the text a user would see.

    Telegram strips HTML markup before storing and measuring a message, so
    doing the same keeps length checks and text assertions faithful for bots
    that format with ``parse_mode=HTML``.  Other modes are kept verbatim.
    """
    if parse_mode is not None and parse_mode.upper() == "HTML":
        return html.unescape(_TAG_RE.sub("", text))
    return text


@dataclass(slots=True)
class SimFile:
    """A stored file: anything a user sent or the bot uploaded."""

    file_id: str
    file_unique_id: str
    data: bytes
    file_path: str
    name: str | None = None
    mime_type: str | None = None
    width: int | None = None
    height: int | None = None

    @property
    def file_size(self) -> int:
        return len(self.data)

    def to_file(self) -> dict[str, Any]:
        """The ``File`` object returned by ``getFile``."""
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": self.file_size,
            "file_path": self.file_path,
        }

    def to_photo_size(self) -> dict[str, Any]:
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "width": self.width or 0,
            "height": self.height or 0,
            "file_size": self.file_size,
        }

    def to_document(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": self.file_size,
        }
        if self.name is not None:
            result["file_name"] = self.name
        if self.mime_type is not None:
            result["mime_type"] = self.mime_type
        return result


@dataclass(slots=True)
class SimMessage:
    """A message in a private chat, sent either by the user or by the bot.

    Bot messages are mutated in place by edits, so a reference held by a test
    always shows the current content; ``edit_count`` and ``history`` keep what
    it looked like before.
    """

    message_id: int
    chat: dict[str, Any]
    sender: dict[str, Any]
    from_bot: bool
    date: int
    seq: int
    text: str | None = None
    entities: list[dict[str, Any]] | None = None
    caption: str | None = None
    photo_sizes: list[SimFile] = field(default_factory=list)
    document: SimFile | None = None
    location: dict[str, Any] | None = None
    contact: dict[str, Any] | None = None
    reply_markup: dict[str, Any] | None = None
    reply_to: SimMessage | None = None
    edit_date: int | None = None
    edit_count: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    deleted: bool = False

    @property
    def chat_id(self) -> int:
        return int(self.chat["id"])

    @property
    def photo(self) -> str | None:
        """``file_id`` of the largest photo size, or ``None`` for non-photo messages."""
        return self.photo_sizes[-1].file_id if self.photo_sizes else None

    @property
    def inline_keyboard(self) -> list[list[dict[str, Any]]]:
        if self.reply_markup is None:
            return []
        rows = self.reply_markup.get("inline_keyboard")
        return rows if isinstance(rows, list) else []

    def buttons(self) -> list[tuple[str, str | None]]:
        """Inline buttons as ``(text, callback_data)`` in reading order."""
        return [(str(b["text"]), b.get("callback_data")) for row in self.inline_keyboard for b in row]

    def reply_buttons(self) -> list[str]:
        """Texts of the reply-keyboard buttons attached to this message."""
        if self.reply_markup is None:
            return []
        rows = self.reply_markup.get("keyboard")
        if not isinstance(rows, list):
            return []
        return [str(b["text"]) for row in rows for b in row]

    def snapshot(self) -> dict[str, Any]:
        """Content fields compared by the edit methods and kept in ``history``."""
        return {"text": self.text, "caption": self.caption, "reply_markup": self.reply_markup}

    def to_api(self, *, with_reply: bool = True) -> dict[str, Any]:
        """The ``Message`` object as Telegram serialises it."""
        result: dict[str, Any] = {
            "message_id": self.message_id,
            "from": dict(self.sender),
            "chat": dict(self.chat),
            "date": self.date,
        }
        if self.edit_date is not None:
            result["edit_date"] = self.edit_date
        if with_reply and self.reply_to is not None:
            result["reply_to_message"] = self.reply_to.to_api(with_reply=False)
        if self.text is not None:
            result["text"] = self.text
            if self.entities:
                result["entities"] = list(self.entities)
        if self.photo_sizes:
            result["photo"] = [size.to_photo_size() for size in self.photo_sizes]
        if self.document is not None:
            result["document"] = self.document.to_document()
        if self.caption:
            result["caption"] = self.caption
        if self.location is not None:
            result["location"] = dict(self.location)
        if self.contact is not None:
            result["contact"] = dict(self.contact)
        # Only inline keyboards are part of a Message; reply keyboards live on the client.
        if self.reply_markup is not None and "inline_keyboard" in self.reply_markup:
            result["reply_markup"] = self.reply_markup
        return result

    def describe(self) -> str:
        """One transcript line, used in assertion messages."""
        who = "bot" if self.from_bot else "user"
        parts: list[str] = []
        if self.text is not None:
            parts.append(repr(self.text))
        if self.photo_sizes:
            parts.append("[photo]")
        if self.document is not None:
            parts.append(f"[document {self.document.name!r}]")
        if self.location is not None:
            parts.append(f"[location {self.location['latitude']},{self.location['longitude']}]")
        if self.contact is not None:
            parts.append(f"[contact {self.contact['phone_number']}]")
        if self.caption:
            parts.append(f"caption={self.caption!r}")
        if self.buttons():
            parts.append(f"buttons={self.buttons()!r}")
        if self.reply_buttons():
            parts.append(f"keyboard={self.reply_buttons()!r}")
        if self.edit_count:
            parts.append(f"(edited x{self.edit_count})")
        if self.deleted:
            parts.append("(deleted)")
        return f"#{self.message_id} {who}: " + " ".join(parts)


@dataclass(frozen=True, slots=True)
class CallbackAnswer:
    """What the bot answered to one button press."""

    query_id: str
    data: str | None
    message_id: int | None
    text: str | None
    show_alert: bool
    url: str | None
