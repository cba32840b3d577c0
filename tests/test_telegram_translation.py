"""The one translation between Bot API JSON and the core that both Telegram engines use."""

from __future__ import annotations

from typing import Any

import pytest

from bot.core.messages import (
    AnswerButton,
    Button,
    ButtonPress,
    Command,
    Contact,
    Document,
    EditText,
    Location,
    Photo,
    RemoveKeyboard,
    ReplyKeyboard,
    SendDocument,
    SendText,
    SetCommands,
    Text,
    Unsupported,
    inline,
)
from bot.engines.telegram import NotAnUpdate, api_call, incoming_from_update, reply_address

ANN = {"id": 42, "is_bot": False, "first_name": "Ann", "last_name": "Lee", "language_code": "en"}


def message(**content: Any) -> dict[str, Any]:
    return {"update_id": 7, "message": {
        "message_id": 3, "date": 0, "chat": {"id": 42, "type": "private"}, "from": ANN, **content,
    }}


@pytest.mark.parametrize(("content", "event"), [
    ({"text": "hello"}, Text("hello")),
    ({"text": "/start@gridbot b_X"}, Command("start", "b_X")),
    ({"photo": [{"file_id": "small"}, {"file_id": "big"}], "caption": "cable"}, Photo("big", "cable")),
    ({"location": {"latitude": 32.5, "longitude": 112}}, Location(32.5, 112.0)),
    ({"contact": {"phone_number": "+86 1"}}, Contact("+86 1")),
    ({"document": {"file_id": "f", "file_name": "a.pdf"}}, Document("f", "a.pdf")),
    ({"sticker": {"file_id": "s"}}, Unsupported("sticker")),
    ({}, Unsupported("unknown")),
])
def test_messages_become_core_events(content: dict[str, Any], event: Any) -> None:
    incoming = incoming_from_update(message(**content))
    assert incoming is not None
    assert incoming.event == event
    assert (incoming.update_id, incoming.sender.chat_id, incoming.sender.external_id) == (7, "42", "42")
    assert (incoming.sender.display_name, incoming.sender.language_code) == ("Ann Lee", "en")


def test_a_button_press_becomes_a_core_event() -> None:
    update = {"update_id": 8, "callback_query": {
        "id": "q1", "from": ANN, "data": "r:ok:5", "chat_instance": "1",
        "message": {"message_id": 11, "date": 0, "chat": {"id": 42, "type": "private"}},
    }}
    incoming = incoming_from_update(update)
    assert incoming is not None and incoming.event == ButtonPress("q1", "r:ok:5", 11)
    assert reply_address(update) == ("42", "q1", "en")


def test_updates_from_nobody_the_bot_talks_to_are_none() -> None:
    group = message(text="hi")
    group["message"]["chat"] = {"id": -100, "type": "group"}
    assert incoming_from_update(group) is None
    assert incoming_from_update({"update_id": 9, "channel_post": {"text": "news"}}) is None


@pytest.mark.parametrize("kind", ["group", "supergroup"])
def test_a_command_in_a_group_comes_from_its_sender_in_that_group(kind: str) -> None:
    update = message(text="/link@gridbot DG-JS-01")
    update["message"]["chat"] = {"id": -1005, "type": kind, "title": "建设一网格"}
    incoming = incoming_from_update(update)
    assert incoming is not None and incoming.event == Command("link", "DG-JS-01")
    sender = incoming.sender
    assert (sender.external_id, sender.chat_id, sender.group_chat_id, sender.group_title) == (
        "42", "42", "-1005", "建设一网格")
    chatter = message(photo=[{"file_id": "p"}])
    chatter["message"]["chat"] = {"id": -1005, "type": kind, "title": "建设一网格"}
    assert incoming_from_update(chatter) is None


def test_a_button_pressed_in_a_group_keeps_the_presser_and_the_group_apart() -> None:
    update = {"update_id": 8, "callback_query": {
        "id": "q1", "from": ANN, "data": "rq:acc:5", "chat_instance": "1",
        "message": {"message_id": 11, "date": 0, "chat": {"id": -1005, "type": "supergroup", "title": "T"}},
    }}
    incoming = incoming_from_update(update)
    assert incoming is not None and incoming.event == ButtonPress("q1", "rq:acc:5", 11)
    assert (incoming.sender.chat_id, incoming.sender.group_chat_id) == ("42", "-1005")
    private = incoming_from_update({**update, "callback_query": {
        **update["callback_query"], "message": {"message_id": 11, "date": 0, "chat": {"id": 42, "type": "private"}}}})
    assert private is not None and private.sender.group_chat_id is None


@pytest.mark.parametrize("update", [
    {"update_id": 1.9, "message": {}},
    {"update_id": "1"},
    {"update_id": 10**30},
    message(text=5),
    {"update_id": 7, "message": {"from": ANN, "text": "no chat"}},
    {"update_id": 7, "message": {"chat": {"id": "42", "type": "private"}, "from": ANN, "text": "x"}},
    message(location={"latitude": "abc", "longitude": 1}),
])
def test_json_of_the_wrong_shape_is_not_an_update(update: dict[str, Any]) -> None:
    with pytest.raises(NotAnUpdate):
        incoming_from_update(update)


def test_core_actions_become_bot_api_calls() -> None:
    keyboard = inline([Button("Yes", data="y"), Button("Site", url="https://example.org")])
    assert api_call(42, SendText("hi", keyboard)).params == {"chat_id": 42, "text": "hi", "reply_markup": {
        "inline_keyboard": [[{"text": "Yes", "callback_data": "y"}, {"text": "Site", "url": "https://example.org"}]]
    }}
    reply = api_call(42, SendText("where?", ReplyKeyboard((("A",),), location_button="Here", one_time=True)))
    assert reply.params["reply_markup"] == {
        "keyboard": [[{"text": "A"}], [{"text": "Here", "request_location": True}]],
        "resize_keyboard": True, "one_time_keyboard": True,
    }
    assert api_call(42, SendText("bye", RemoveKeyboard())).params["reply_markup"] == {"remove_keyboard": True}
    edit = api_call(42, EditText(9, "done"))
    assert (edit.method, edit.params) == ("editMessageText", {"chat_id": 42, "message_id": 9, "text": "done"})
    answer = api_call(42, AnswerButton("q1"))
    assert (answer.method, answer.params) == ("answerCallbackQuery", {"callback_query_id": "q1"})
    document = api_call(42, SendDocument("r.xlsx", b"PK".hex()))
    assert document.upload is not None and (document.upload.file_name, document.upload.content) == ("r.xlsx", b"PK")
    menu = api_call(42, SetCommands((("new", "File a request"),)))
    assert menu.params == {
        "commands": [{"command": "new", "description": "File a request"}], "scope": {"type": "chat", "chat_id": 42},
    }
