"""Driving the core directly, without a chat engine: fast tests of conversations and use cases.

``CoreChat`` plays several people talking to the core and keeps, per person, the messages the core sent them
(with edits applied), as a chat client would show them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from bot.core.app import Core
from bot.core.clock import FrozenClock
from bot.core.context import CoreConfig
from bot.core.messages import (
    Action,
    AnswerButton,
    ButtonPress,
    Contact,
    EditText,
    Event,
    Incoming,
    InlineKeyboard,
    Location,
    Photo,
    SendDocument,
    Sender,
    SendPhoto,
    SendStartCode,
    SendText,
    SetCommands,
    Text,
    parse_command,
)
from storage.database import Database


@dataclass
class ShownMessage:
    message_id: int
    text: str
    keyboard: Any = None
    photo: str | None = None
    document: str | None = None

    def buttons(self) -> list[tuple[str, str]]:
        if not isinstance(self.keyboard, InlineKeyboard):
            return []
        return [(b.text, b.data) for row in self.keyboard.rows for b in row]

    def button(self, label_part: str) -> str:
        """The callback data of the first button whose label contains ``label_part``."""
        for text, data in self.buttons():
            if label_part in text:
                return data
        raise AssertionError(f"no button {label_part!r} in {self.buttons()} of {self.text!r}")


@dataclass
class FakePerson:
    user_id: int
    name: str
    language: str | None
    messages: list[ShownMessage] = field(default_factory=list)
    answers: list[AnswerButton] = field(default_factory=list)
    commands: list[SetCommands] = field(default_factory=list)

    @property
    def sender(self) -> Sender:
        return Sender("telegram", str(self.user_id), str(self.user_id), self.name, self.language)

    @property
    def last(self) -> ShownMessage:
        assert self.messages, f"{self.name} received nothing"
        return self.messages[-1]

    def texts(self) -> list[str]:
        return [m.text for m in self.messages]

    def find(self, part: str) -> ShownMessage:
        for message in reversed(self.messages):
            if part in message.text:
                return message
        raise AssertionError(f"{self.name} never saw {part!r}; saw {self.texts()}")


class CoreChat:
    def __init__(self, database: Database, core: Core, clock: FrozenClock) -> None:
        self.database = database
        self.core = core
        self.clock = clock
        self.people: dict[str, FakePerson] = {}
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1000)

    def person(self, user_id: int, name: str = "", language: str | None = "zh-hans") -> FakePerson:
        person = FakePerson(user_id, name or f"user{user_id}", language)
        self.people[str(user_id)] = person
        return person

    async def send(self, person: FakePerson, event: Event) -> None:
        incoming = Incoming("telegram", next(self._update_ids), person.sender, event)
        await self.deliver_all(await self.core.handle(incoming))

    async def deliver_all(self, deliveries: list[Any]) -> None:
        for delivery in deliveries:
            self._show(delivery.chat_id, delivery.action)

    async def text(self, person: FakePerson, text: str) -> None:
        await self.send(person, parse_command(text) or Text(text))

    async def press(self, person: FakePerson, data: str, message: ShownMessage | None = None) -> None:
        message = message or person.last
        await self.send(person, ButtonPress(f"cb{next(self._update_ids)}", data, message.message_id))

    async def photo(self, person: FakePerson, file_id: str) -> None:
        await self.send(person, Photo(file_id))

    async def location(self, person: FakePerson, latitude: float, longitude: float) -> None:
        await self.send(person, Location(latitude, longitude))

    async def contact(self, person: FakePerson, phone: str) -> None:
        await self.send(person, Contact(phone))

    def _show(self, chat_id: str, action: Action) -> None:
        person = self.people.get(chat_id)
        if person is None:
            return
        if isinstance(action, SendText):
            person.messages.append(ShownMessage(next(self._message_ids), action.text, action.keyboard))
        elif isinstance(action, SendPhoto):
            person.messages.append(
                ShownMessage(next(self._message_ids), action.caption, action.keyboard, photo=action.photo)
            )
        elif isinstance(action, SendDocument | SendStartCode):
            person.messages.append(
                ShownMessage(next(self._message_ids), action.caption, document=action.file_name)
            )
        elif isinstance(action, EditText):
            for message in person.messages:
                if message.message_id == action.message_id:
                    message.text, message.keyboard = action.text, action.keyboard
        elif isinstance(action, AnswerButton):
            person.answers.append(action)
        elif isinstance(action, SetCommands):
            person.commands.append(action)


def core_config(**overrides: Any) -> CoreConfig:
    return CoreConfig(**overrides)
