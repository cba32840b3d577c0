"""The python-telegram-bot 22 engine: PTB's ``Bot`` carries the Bot API calls of ``bot.engines.telegram``.

Only PTB's HTTP layer is used: its ``Updater`` (polling) and tornado webhook server confirm an update before
its handler finishes, so a crash would lose it; updates come in through ``UpdateIntake`` instead.
"""

from __future__ import annotations

import asyncio
import warnings
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from telegram import Bot as PtbBot
from telegram import InputFile
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.request import BaseRequest
from telegram.warnings import PTBDeprecationWarning, PTBUserWarning

from bot.core.messages import Delivery
from bot.engines.telegram import ApiCall
from bot.engines.telegram_intake import serve_telegram

if TYPE_CHECKING:
    from bot.service import Service


def make_bot(token: str, api_url: str, request: BaseRequest | None = None) -> PtbBot:
    base = api_url.rstrip("/")
    return PtbBot(token, base_url=f"{base}/bot", base_file_url=f"{base}/file/bot", request=request)


def retry_after_seconds(error: RetryAfter) -> float:
    """``retry_after`` is an int or a timedelta depending on the PTB version and ``PTB_TIMEDELTA``."""
    with warnings.catch_warnings():
        # PTB 22 warns that the int form is going away; both forms are handled here.
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value: int | float | timedelta = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class PtbClient:
    """Bot API calls through a PTB ``Bot``; PTB's errors read as deliveries."""

    def __init__(self, bot: PtbBot) -> None:
        self.bot = bot
        # PTB asks to use its typed method when one exists; the calls here are Bot API JSON on purpose.
        warnings.filterwarnings("ignore", message="Please use 'Bot.", category=PTBUserWarning)

    async def call(self, call: ApiCall, timeout: float | None = None) -> Any:
        params: dict[str, Any] = dict(call.params)
        if call.upload is not None:
            params[call.upload.parameter] = InputFile(call.upload.content, filename=call.upload.file_name)
        if timeout is None:
            return await self.bot.do_api_request(call.method, api_kwargs=params)
        return await self.bot.do_api_request(call.method, api_kwargs=params, read_timeout=timeout)

    def failure(self, error: Exception) -> Delivery | None:
        if isinstance(error, RetryAfter):
            return Delivery(ok=False, retry_after=retry_after_seconds(error), error="429")
        if isinstance(error, Forbidden):
            return Delivery(ok=False, blocked=True, error=error.message)
        if isinstance(error, BadRequest):  # before NetworkError, of which PTB makes it a kind
            return Delivery(ok=False, permanent=True, error=error.message)
        if isinstance(error, NetworkError | TimeoutError | OSError):
            # PTB reports 5xx answers as NetworkError too, so those count as "maybe sent".
            return Delivery(ok=False, outcome_unknown=True, error=f"{type(error).__name__}: {error}")
        if isinstance(error, TelegramError):
            return Delivery(ok=False, permanent=True, error=error.message)
        return None

    async def close(self) -> None:
        await self.bot.shutdown()


async def serve(service: Service, stop: asyncio.Event, request: BaseRequest | None = None) -> None:
    """Run the bot with PTB until ``stop`` is set: polling, or a webhook server if a URL is configured."""
    token = service.settings.token_value
    if not token:
        raise ValueError("no token configured")
    bot = make_bot(token, service.settings.api_url, request)
    await bot.initialize()  # getMe, and PTB's HTTP clients
    client = PtbClient(bot)
    try:
        await serve_telegram(service, stop, client)
    finally:
        await client.close()
