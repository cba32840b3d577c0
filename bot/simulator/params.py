"""Decoding of Bot API request parameters.

Telegram accepts the same parameters as a query string, a JSON body,
``application/x-www-form-urlencoded`` or ``multipart/form-data``.  In the form
encodings every value arrives as a string and structured values (reply
markups, command lists, scopes) are JSON-encoded strings, so each accessor
converts to the type the method expects, just as the real server does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .errors import bad_request

#: Telegram limits ``callback_data`` by encoded size, not by characters.
MAX_CALLBACK_DATA_BYTES = 64


@dataclass(frozen=True, slots=True)
class UploadedFile:
    """A file part received in a multipart request."""

    filename: str
    content_type: str
    data: bytes


class Params:
    """Typed read access to the merged parameters of one API call."""

    def __init__(self, values: dict[str, Any], files: dict[str, UploadedFile] | None = None) -> None:
        self._values = values
        self._files = files or {}

    def __contains__(self, name: str) -> bool:
        return self._values.get(name) not in (None, "")

    def raw(self, name: str) -> Any:
        """Return the value as received, or ``None`` when absent."""
        return self._values.get(name)

    def get_str(self, name: str, default: str | None = None) -> str | None:
        value = self._values.get(name)
        if value is None:
            return default
        if isinstance(value, UploadedFile):
            raise bad_request(f"wrong parameter {name} specified")
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    def get_int(self, name: str, default: int | None = None) -> int | None:
        value = self._values.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise bad_request(f"wrong parameter {name} specified")

    def get_float(self, name: str, default: float | None = None) -> float | None:
        value = self._values.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise bad_request(f"wrong parameter {name} specified")

    def get_bool(self, name: str, default: bool = False) -> bool:
        value = self._values.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return value != 0
        if isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in ("true", "1"):
                return True
            if lowered in ("false", "0"):
                return False
        raise bad_request(f"wrong parameter {name} specified")

    def get_json(self, name: str) -> Any:
        """Return a structured value, decoding it when it arrived as a JSON string."""
        value = self._values.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError as exc:
                raise bad_request(f"can't parse {name} JSON object") from exc
        return value

    def get_input_file(self, name: str) -> UploadedFile | str | None:
        """Return an uploaded file, or the ``file_id``/URL string that refers to one.

        Uploads arrive either directly under the parameter name (python-telegram-bot)
        or as an ``attach://<part>`` reference to another multipart part (aiogram).
        """
        value = self._values.get(name)
        if isinstance(value, UploadedFile):
            return value
        if name in self._files:
            return self._files[name]
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise bad_request(f"wrong type of the {name} parameter")
        if value.startswith("attach://"):
            part = value.removeprefix("attach://")
            attached = self._files.get(part)
            if attached is None:
                attached_value = self._values.get(part)
                if isinstance(attached_value, UploadedFile):
                    return attached_value
                raise bad_request(f"wrong remote file identifier specified: can't find attached file {part}")
            return attached
        return value


def parse_chat_id(params: Params) -> int:
    """Resolve ``chat_id``; usernames cannot address private chats, so they never resolve."""
    value = params.raw("chat_id")
    if value is None or value == "":
        raise bad_request("chat_id is empty")
    if isinstance(value, bool):
        raise bad_request("chat not found")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            raise bad_request("chat not found") from None
    raise bad_request("chat not found")


def _require_list_of_lists(rows: Any, field: str) -> list[list[Any]]:
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request(f'can\'t parse reply keyboard markup JSON object: field "{field}" must be an Array')
    return rows


_INLINE_ACTION_FIELDS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)


def _validate_inline_button(button: Any) -> dict[str, Any]:
    if not isinstance(button, dict):
        raise bad_request("can't parse inline keyboard button: InlineKeyboardButton must be an Object")
    text = button.get("text")
    if not isinstance(text, str) or not text:
        raise bad_request("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
    actions = [field for field in _INLINE_ACTION_FIELDS if field in button]
    if not actions:
        raise bad_request("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
    if "callback_data" in button:
        data = button["callback_data"]
        if not isinstance(data, str):
            raise bad_request("BUTTON_DATA_INVALID")
        size = len(data.encode("utf-8"))
        if size < 1 or size > MAX_CALLBACK_DATA_BYTES:
            raise bad_request("BUTTON_DATA_INVALID")
    if "url" in button:
        url = button["url"]
        if not isinstance(url, str) or not url.startswith(("http://", "https://", "tg://")):
            raise bad_request("BUTTON_URL_INVALID")
    return dict(button)


def _validate_reply_button(button: Any) -> dict[str, Any]:
    if isinstance(button, str):
        button = {"text": button}
    if not isinstance(button, dict):
        raise bad_request("can't parse keyboard button: KeyboardButton must be a String or an Object")
    text = button.get("text")
    if not isinstance(text, str) or not text:
        raise bad_request('can\'t parse keyboard button: Field "text" must be of type String')
    return dict(button)


def validate_reply_markup(markup: Any, *, inline_only: bool = False) -> dict[str, Any] | None:
    """Check a reply markup the way Telegram does and return its normalised form.

    ``inline_only`` is used by the edit methods, which only accept inline keyboards.
    """
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        rows = _require_list_of_lists(markup["inline_keyboard"], "inline_keyboard")
        return {"inline_keyboard": [[_validate_inline_button(b) for b in row] for row in rows]}
    if inline_only:
        raise bad_request("inline keyboard expected")
    if "keyboard" in markup:
        rows = _require_list_of_lists(markup["keyboard"], "keyboard")
        normalised = dict(markup)
        normalised["keyboard"] = [[_validate_reply_button(b) for b in row] for row in rows]
        return normalised
    if markup.get("remove_keyboard") is True:
        return dict(markup)
    if markup.get("force_reply") is True:
        return dict(markup)
    raise bad_request("can't parse reply keyboard markup JSON object")
