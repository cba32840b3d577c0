"""What the playground page sees of the simulator: chats as JSON, and a fan-out of chat events to the page."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from bot.simulator import SimMessage, SimUser

# A page that falls this far behind is dropped; its EventSource reconnects and reloads the whole state.
CLIENT_QUEUE_SIZE = 1000


def message_json(message: SimMessage) -> dict[str, Any]:
    """A chat message as the page draws it; edits change the message in place, so this is always current."""
    document = message.document
    return {
        "id": message.message_id,
        "from_bot": message.from_bot,
        "date": message.date,
        "text": message.text,
        "caption": message.caption,
        "photo": message.photo,
        "document": None if document is None else {
            "file_id": document.file_id, "name": document.name or "file", "size": document.file_size,
        },
        "location": message.location,
        "contact": message.contact,
        "buttons": [
            [{"text": str(b["text"]), "data": b.get("callback_data"), "url": b.get("url")} for b in row]
            for row in message.inline_keyboard
        ],
        "edited": message.edit_count > 0,
        "deleted": message.deleted,
    }


def keyboard_json(user: SimUser) -> dict[str, Any] | None:
    """The reply keyboard under the input field, if the bot left one there."""
    markup = user.reply_keyboard
    if markup is None:
        return None
    rows = [
        [{"text": str(button["text"]), "location": bool(button.get("request_location"))} for button in row]
        for row in markup.get("keyboard", [])
    ]
    return {"rows": rows, "one_time": bool(markup.get("one_time_keyboard"))}


def chat_json(user: SimUser) -> dict[str, Any]:
    return {"messages": [message_json(m) for m in user.history], "keyboard": keyboard_json(user)}


def event_json(user: SimUser, event: dict[str, Any]) -> dict[str, Any] | None:
    """The page's view of one simulator event; None for events the page does not show."""
    kind = event.get("type")
    if kind == "callback_answer":
        if not event.get("text"):
            return None
        return {"type": "answer", "chat": user.id, "text": event["text"], "alert": bool(event.get("show_alert"))}
    if kind in ("user_message", "bot_message", "bot_edit", "bot_delete"):
        message_id = event.get("message_id") or event.get("message", {}).get("message_id")
        message = user.find_message(int(message_id or 0))
        if message is None:
            return None
        return {"type": "message", "chat": user.id, "message": message_json(message), "keyboard": keyboard_json(user)}
    return None


class Fanout:
    """Hands every published event to each connected page; a page that cannot keep up is dropped."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[dict[str, Any] | None]] = set()

    def connect(self) -> asyncio.Queue[dict[str, Any] | None]:
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=CLIENT_QUEUE_SIZE)
        self._queues.add(queue)
        return queue

    def disconnect(self, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        self._queues.discard(queue)

    def publish(self, event: dict[str, Any]) -> None:
        for queue in list(self._queues):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                self._close(queue)

    def close_all(self) -> None:
        """End every open stream (None tells the stream to finish), so shutdown does not wait for pages."""
        for queue in list(self._queues):
            self._close(queue)

    def _close(self, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        self._queues.discard(queue)
        with contextlib.suppress(asyncio.QueueEmpty):
            while True:
                queue.get_nowait()
        queue.put_nowait(None)
