"""The aiogram 3 engine: aiogram's HTTP session carries the Bot API calls of ``bot.engines.telegram``."""

from __future__ import annotations

import asyncio
from functools import cache
from typing import TYPE_CHECKING, Any

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.session.base import BaseSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods.base import Response, TelegramMethod
from aiogram.types import BufferedInputFile

from bot.core.messages import Delivery
from bot.engines.telegram import ApiCall
from bot.engines.telegram_intake import serve_telegram

if TYPE_CHECKING:
    from bot.service import Service


def make_bot(token: str, api_url: str, session: BaseSession | None = None) -> Bot:
    if session is None:
        session = AiohttpSession(api=TelegramAPIServer.from_base(api_url.rstrip("/")))
    return Bot(token, session=session)


class _BotApiMethod(TelegramMethod[Any]):
    """Any Bot API method, its parameters passed as they are and its result returned as JSON."""

    __returning__ = Any
    __api_method__ = ""


# aiogram parses every answer with ``Response[method.__returning__]``; pydantic keeps such a generic class only as
# long as something refers to it, so after each full garbage collection the next call built it again. Every
# call here returns ``Any``: holding that one class keeps it built (and frozen with the start-up objects).
_RESPONSE = Response[Any]


@cache
def _method(name: str) -> type[_BotApiMethod]:
    method: type[_BotApiMethod] = type(name, (_BotApiMethod,), {"__api_method__": name})
    return method


class AiogramClient:
    """Bot API calls through an aiogram ``Bot``; aiogram's errors read as deliveries."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def call(self, call: ApiCall, timeout: float | None = None) -> Any:
        params = dict(call.params)
        if call.upload is not None:
            params[call.upload.parameter] = BufferedInputFile(call.upload.content, filename=call.upload.file_name)
        request_timeout = int(timeout) if timeout is not None else None
        return await self.bot(_method(call.method)(**params), request_timeout=request_timeout)

    def failure(self, error: Exception) -> Delivery | None:
        if isinstance(error, TelegramRetryAfter):
            return Delivery(ok=False, retry_after=float(error.retry_after), error="429")
        if isinstance(error, TelegramForbiddenError):
            return Delivery(ok=False, blocked=True, error=error.message)
        if isinstance(error, TelegramBadRequest):
            return Delivery(ok=False, permanent=True, error=error.message)
        if isinstance(error, TimeoutError | TelegramNetworkError | OSError):
            return Delivery(ok=False, outcome_unknown=True, error=f"{type(error).__name__}: {error}")
        if isinstance(error, TelegramServerError):  # Telegram answered: it did not carry the call out
            return Delivery(ok=False, error=f"{type(error).__name__}: {error}")
        if isinstance(error, TelegramAPIError):
            return Delivery(ok=False, permanent=True, error=error.message)
        return None

    async def close(self) -> None:
        await self.bot.session.close()


async def serve(service: Service, stop: asyncio.Event, session: BaseSession | None = None) -> None:
    """Run the bot with aiogram until ``stop`` is set: polling, or a webhook server if a URL is configured."""
    token = service.settings.token_value
    if not token:
        raise ValueError("no token configured")
    client = AiogramClient(make_bot(token, service.settings.api_url, session))
    try:
        await serve_telegram(service, stop, client)
    finally:
        await client.close()
