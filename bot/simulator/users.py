"""Simulated Telegram users: the driver side of the simulator.

Tests act through :class:`SimUser` the way a person would act in a Telegram
client: typing, sharing a location, pressing inline buttons, blocking the bot.
Every action becomes the same update Telegram would deliver, so the bot under
test cannot tell the difference.
"""

from __future__ import annotations

import asyncio
import contextlib
import mimetypes
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .models import CallbackAnswer, SimMessage, command_entities

if TYPE_CHECKING:
    from .server import BotApiSimulator

MessagePredicate = Callable[[SimMessage], bool]


class SimUser:
    """One user and their private chat with the bot (chat id == user id)."""

    def __init__(
        self,
        sim: BotApiSimulator,
        user_id: int,
        *,
        first_name: str,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
        history_limit: int = 1000,
    ) -> None:
        self._sim = sim
        self.id = user_id
        self.first_name = first_name
        self.last_name = last_name
        self.username = username
        self.language_code = language_code
        #: True once the user has written to the bot; before that the bot gets "chat not found".
        self.started = False
        self.blocked = False
        self.callback_answers: list[CallbackAnswer] = []
        #: Recent ``sendChatAction`` actions, newest last.
        self.chat_actions: deque[str] = deque(maxlen=100)
        #: The reply keyboard currently shown under the input field, if any.
        self.reply_keyboard: dict[str, Any] | None = None
        self._history: OrderedDict[int, SimMessage] = OrderedDict()
        self._history_limit = history_limit
        self._next_message_id = 1
        self._mark = 0
        self._last_query_id: str | None = None

    # ----------------------------------------------------------------- shapes

    def to_api(self) -> dict[str, Any]:
        """The ``User`` object for ``from`` fields."""
        result: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            result["last_name"] = self.last_name
        if self.username:
            result["username"] = self.username
        if self.language_code:
            result["language_code"] = self.language_code
        return result

    def chat(self) -> dict[str, Any]:
        """The private ``Chat`` object shared by both sides of the conversation."""
        result: dict[str, Any] = {"id": self.id, "type": "private", "first_name": self.first_name}
        if self.last_name:
            result["last_name"] = self.last_name
        if self.username:
            result["username"] = self.username
        return result

    # --------------------------------------------------------------- history

    @property
    def messages(self) -> list[SimMessage]:
        """Messages the bot sent into this chat, in order, excluding deleted ones."""
        return [m for m in self._history.values() if m.from_bot and not m.deleted]

    @property
    def history(self) -> list[SimMessage]:
        """Every message of the chat from both sides, including deleted ones."""
        return list(self._history.values())

    @property
    def transcript(self) -> str:
        """Readable chat log, used when a wait times out."""
        lines = [m.describe() for m in self._history.values()]
        return "\n".join(lines) if lines else "(empty chat)"

    def find_message(self, message_id: int) -> SimMessage | None:
        return self._history.get(message_id)

    def _store(self, message: SimMessage) -> None:
        self._history[message.message_id] = message
        while len(self._history) > self._history_limit:
            self._history.popitem(last=False)

    def _allocate_message_id(self) -> int:
        message_id = self._next_message_id
        self._next_message_id += 1
        return message_id

    # --------------------------------------------------------------- actions

    def _begin_action(self) -> None:
        if self.blocked:
            raise RuntimeError(f"user {self.id} has blocked the bot; call unblock() before acting")
        self.started = True
        # Waits after this action only consider bot output produced from now on.
        self._mark = self._sim.seq

    async def _send(self, **content: Any) -> SimMessage:
        self._begin_action()
        message = self._sim._add_message(self, from_bot=False, **content)
        self._sim._enqueue_update("message", message.to_api())
        self._sim._emit({"type": "user_message", "chat_id": self.id, "message": message.to_api()})
        await asyncio.sleep(0)
        return message

    async def send_text(self, text: str, *, reply_to: SimMessage | None = None) -> SimMessage:
        """Send a text message; commands get ``bot_command`` entities like in real clients."""
        entities = command_entities(text)
        return await self._send(text=text, entities=entities or None, reply_to=reply_to)

    async def send_photo(self, data: bytes, caption: str = "") -> SimMessage:
        """Send a photo; Telegram stores it as several sizes, each with its own file_id."""
        sizes = self._sim._new_photo_sizes(data)
        return await self._send(photo_sizes=sizes, caption=caption or None)

    async def send_location(self, latitude: float, longitude: float) -> SimMessage:
        return await self._send(location={"latitude": latitude, "longitude": longitude})

    async def send_contact(
        self,
        phone_number: str,
        first_name: str | None = None,
        last_name: str | None = None,
        *,
        own: bool = True,
    ) -> SimMessage:
        """Share a contact; ``own=True`` mimics the "share my phone number" button."""
        contact: dict[str, Any] = {
            "phone_number": phone_number,
            "first_name": first_name or self.first_name,
        }
        if last_name or (own and self.last_name):
            contact["last_name"] = last_name or self.last_name
        if own:
            contact["user_id"] = self.id
        return await self._send(contact=contact)

    async def send_document(
        self,
        file_name: str,
        data: bytes,
        *,
        mime_type: str | None = None,
        caption: str = "",
    ) -> SimMessage:
        mime = mime_type or mimetypes.guess_type(file_name)[0] or "application/octet-stream"
        document = self._sim._new_file("documents", data, name=file_name, mime_type=mime)
        return await self._send(document=document, caption=caption or None)

    async def press(self, message: SimMessage, data: str) -> str:
        """Press the inline button carrying ``data``; returns the callback query id.

        Raises ``ValueError`` when the message's current keyboard has no such
        button, which catches tests pressing stale or mistyped buttons.
        """
        current = self._history.get(message.message_id)
        if current is None or current.deleted or not current.from_bot:
            raise ValueError(f"message #{message.message_id} is not a bot message in chat {self.id}")
        if not any(cb == data for _text, cb in current.buttons()):
            raise ValueError(
                f"message #{message.message_id} has no button with callback_data {data!r}; "
                f"buttons: {current.buttons()!r}"
            )
        self._begin_action()
        query_id = self._sim._register_callback_query(self, current, data)
        self._last_query_id = query_id
        query = {
            "id": query_id,
            "from": self.to_api(),
            "message": current.to_api(),
            "chat_instance": str(self._sim._chat_instance(self)),
            "data": data,
        }
        self._sim._enqueue_update("callback_query", query)
        self._sim._emit({"type": "callback_query", "chat_id": self.id, "callback_query": query})
        await asyncio.sleep(0)
        return query_id

    async def press_text(self, message: SimMessage, text: str) -> str:
        """Press the inline button whose label is ``text``."""
        for label, data in message.buttons():
            if label == text and data is not None:
                return await self.press(message, data)
        raise ValueError(f"message #{message.message_id} has no callback button labelled {text!r}")

    def block(self) -> None:
        """Block the bot: further sends fail with 403 and the bot gets a my_chat_member update."""
        if self.blocked:
            return
        self.blocked = True
        self._chat_member_update(old_status="member", new_status="kicked")

    def unblock(self) -> None:
        if not self.blocked:
            return
        self.blocked = False
        self._chat_member_update(old_status="kicked", new_status="member")

    def _chat_member_update(self, *, old_status: str, new_status: str) -> None:
        if not self.started:
            return
        bot_user = self._sim.bot_user()

        def member(status: str) -> dict[str, Any]:
            entry: dict[str, Any] = {"status": status, "user": bot_user}
            if status == "kicked":
                entry["until_date"] = 0
            return entry

        self._sim._enqueue_update(
            "my_chat_member",
            {
                "chat": self.chat(),
                "from": self.to_api(),
                "date": self._sim.now(),
                "old_chat_member": member(old_status),
                "new_chat_member": member(new_status),
            },
        )

    # ----------------------------------------------------------------- waits

    async def wait_for(
        self,
        predicate: MessagePredicate,
        timeout: float = 5.0,
        *,
        since: int | None = None,
    ) -> SimMessage:
        """Wait for a bot message, new or edited, that satisfies ``predicate``.

        Only output produced after this user's last action counts (or after
        ``since``, a value of :attr:`BotApiSimulator.seq`), so a reply that
        arrives before the wait starts is still found while stale messages
        from earlier steps are not.
        """
        mark = self._mark if since is None else since
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            changed = self._sim._change_event()
            for message in self.messages:
                if message.seq > mark and predicate(message):
                    return message
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(
                    f"no matching bot message in chat {self.id} within {timeout}s; transcript:\n{self.transcript}"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    async def wait_for_text(self, substring: str, timeout: float = 5.0, *, since: int | None = None) -> SimMessage:
        """Wait for a bot message whose text or caption contains ``substring``."""
        return await self.wait_for(
            lambda m: substring in (m.text or "") or substring in (m.caption or ""),
            timeout,
            since=since,
        )

    async def wait_for_answer(self, timeout: float = 5.0) -> CallbackAnswer:
        """Wait until the bot answers this user's most recent button press."""
        query_id = self._last_query_id
        if query_id is None:
            raise AssertionError(f"user {self.id} has not pressed any button")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            changed = self._sim._change_event()
            for answer in self.callback_answers:
                if answer.query_id == query_id:
                    return answer
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(
                    f"callback query {query_id} was not answered within {timeout}s; transcript:\n{self.transcript}"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)
