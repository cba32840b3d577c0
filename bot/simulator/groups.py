"""Simulated group chats: a team's group with the bot in it, and its members talking and pressing buttons.

A group is a chat of its own (a negative id, type ``group`` or ``supergroup``); what a member says there
arrives as a message whose ``chat`` is the group and whose ``from`` is the member, and a button pressed on a
bot message in the group arrives from the member with that message, as Telegram sends them.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from .models import SimMessage, command_entities
from .users import SimUser

if TYPE_CHECKING:
    from .server import BotApiSimulator


class SimGroup(SimUser):
    """A group chat the bot can be added to. ``privacy_mode`` (Telegram's default for bots that are not
    admins) delivers only commands; without it (an admin bot) every member's message reaches the bot."""

    def __init__(
        self, sim: BotApiSimulator, group_id: int, *, title: str, kind: str = "supergroup",
        privacy_mode: bool = False, history_limit: int = 1000,
    ) -> None:
        if group_id >= 0:
            raise ValueError("group chat ids are negative")
        if kind not in ("group", "supergroup"):
            raise ValueError(f"not a group chat type: {kind!r}")
        super().__init__(sim, group_id, first_name=title, history_limit=history_limit)
        self.title = title
        self.kind = kind
        self.privacy_mode = privacy_mode
        self.members: dict[int, SimUser] = {}

    def chat(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.kind, "title": self.title}

    def add_bot(self) -> None:
        """A member adds the bot: from now on it may post here."""
        self.started = True

    def add_member(self, user: SimUser) -> None:
        self.members[user.id] = user

    def _member(self, user: SimUser) -> None:
        if user.id not in self.members:
            raise ValueError(f"user {user.id} is not a member of group {self.id}")
        if not self.started:
            raise RuntimeError(f"the bot is not in group {self.id}; call add_bot() first")

    async def say(self, user: SimUser, text: str) -> SimMessage:
        """``user`` writes ``text`` in the group; commands get ``bot_command`` entities."""
        self._member(user)
        self._mark = self._sim.seq
        entities = command_entities(text)
        message = self._sim._add_message(self, from_bot=False, sender=user.to_api(), text=text,
                                         entities=entities or None)
        if not self.privacy_mode or text.startswith("/"):
            self._sim._enqueue_update("message", message.to_api())
        self._sim._emit({"type": "user_message", "chat_id": self.id, "message": message.to_api()})
        await asyncio.sleep(0)
        return message

    async def press_as(self, user: SimUser, message: SimMessage, data: str) -> str:
        """``user`` presses the button carrying ``data`` on a bot message in the group; the bot's answer
        goes to ``user`` (``user.wait_for_answer()``). Returns the callback query id."""
        self._member(user)
        current = self.find_message(message.message_id)
        if current is None or current.deleted or not current.from_bot:
            raise ValueError(f"message #{message.message_id} is not a bot message in group {self.id}")
        if not any(cb == data for _text, cb in current.buttons()):
            raise ValueError(f"message #{message.message_id} has no button {data!r}; buttons: {current.buttons()!r}")
        self._mark = self._sim.seq
        user._mark = self._sim.seq
        query_id = self._sim._register_callback_query(user, current, data)
        user._last_query_id = query_id
        query = {
            "id": query_id, "from": user.to_api(), "message": current.to_api(),
            "chat_instance": str(self._sim._chat_instance(self)), "data": data,
        }
        self._sim._enqueue_update("callback_query", query)
        self._sim._emit({"type": "callback_query", "chat_id": self.id, "callback_query": query})
        await asyncio.sleep(0)
        return query_id
