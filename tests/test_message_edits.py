"""Edits fit the message they change: a photo's caption is edited as a caption, an answer whose edit is
refused arrives as a new message, and an edit that only keeps an old card current is never sent anew."""

from __future__ import annotations

from typing import Any

from bot.core.messages import MAX_CAPTION, Button, ButtonPress, Delivery, EditText, inline
from bot.engines.telegram import ApiCall, TelegramChannel, api_call, incoming_from_update
from bot.engines.wechat import render_action
from bot.i18n import translator

KEYBOARD = inline([Button("⭐", "my:star:1:1")])


class RefusingEdits:
    """A Bot API client that refuses every edit as Telegram refuses one of a deleted message."""

    def __init__(self) -> None:
        self.calls: list[ApiCall] = []

    async def call(self, call: ApiCall, timeout: float | None = None) -> Any:
        self.calls.append(call)
        if call.method.startswith("edit"):
            raise LookupError("Bad Request: message to edit not found")
        return {"message_id": 77}

    def failure(self, error: Exception) -> Delivery | None:
        return Delivery(ok=False, permanent=True, error=str(error))

    async def close(self) -> None:
        pass


def test_a_press_on_a_photo_is_known_and_its_edit_is_a_caption_edit() -> None:
    update = {"update_id": 9, "callback_query": {
        "id": "q1", "from": {"id": 42, "first_name": "Ann"}, "data": "my:ok:1:fixed", "chat_instance": "1",
        "message": {"message_id": 11, "date": 0, "chat": {"id": 42, "type": "private"},
                    "photo": [{"file_id": "p", "file_unique_id": "u", "width": 1, "height": 1}], "caption": "?"},
    }}
    incoming = incoming_from_update(update)
    assert incoming is not None and incoming.event == ButtonPress("q1", "my:ok:1:fixed", 11, on_media=True)
    edit = api_call(42, EditText(11, "x" * 2000, KEYBOARD, media=True))
    assert edit.method == "editMessageCaption" and len(edit.params["caption"]) == MAX_CAPTION
    assert "text" not in edit.params and edit.params["reply_markup"]["inline_keyboard"]


async def test_an_answer_whose_edit_is_refused_arrives_as_a_new_message() -> None:
    client = RefusingEdits()
    delivery = await TelegramChannel(client).perform("42", EditText(11, "How would you rate it?", KEYBOARD))
    assert delivery.ok and delivery.message_id == 77
    assert [call.method for call in client.calls] == ["editMessageText", "sendMessage"]
    assert client.calls[1].params["text"] == "How would you rate it?"
    assert client.calls[1].params["reply_markup"] == client.calls[0].params["reply_markup"]


async def test_a_refused_quiet_edit_is_dropped_and_wechat_leaves_it_out() -> None:
    client = RefusingEdits()
    delivery = await TelegramChannel(client).perform("42", EditText(11, "card", KEYBOARD, quiet=True))
    assert not delivery.ok and delivery.permanent and [call.method for call in client.calls] == ["editMessageText"]
    t = translator("en", "Asia/Shanghai")
    assert render_action(EditText(11, "card", quiet=True), t) is None
    assert render_action(EditText(11, "answer"), t) is not None
