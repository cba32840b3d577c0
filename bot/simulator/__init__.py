"""A strict, in-process Telegram Bot API simulator for end-to-end tests and demos.

Start :class:`BotApiSimulator`, point the real aiogram or python-telegram-bot
client at its base URL, and act as users through :class:`SimUser` (in group chats through :class:`SimGroup`).
"""

from .errors import ApiError
from .groups import SimGroup
from .models import CallbackAnswer, SimFile, SimMessage
from .server import BotApiSimulator, EventCallback
from .users import SimUser

__all__ = [
    "ApiError",
    "BotApiSimulator",
    "CallbackAnswer",
    "EventCallback",
    "SimFile",
    "SimGroup",
    "SimMessage",
    "SimUser",
]
