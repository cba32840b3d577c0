"""Sending one message to many Telegram chats fast: the broadcaster's path to the Bot API.

At Telegram's paid broadcast limit (1,000 messages a second) an engine's client is what limits one process:
aiogram and python-telegram-bot build a method object, encode a form and parse the answer into models for
every call, about 0.6 ms of the event loop each. A broadcast sends the same message to every recipient, so
``BulkSender`` encodes its JSON body once and splices each chat id in, posts it over one pooled aiohttp
session, and reads the answer as the Bot API describes it: ``ok``, ``error_code``, ``description`` and
``parameters.retry_after``. Both engines use it for broadcasts; everything else goes through the engine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp

from bot.core.messages import Delivery
from bot.engines.telegram import ApiCall

# Connections kept open to the Bot API: enough for every sender the broadcaster runs at 1,000/s.
CONNECTIONS = 64
TIMEOUT_SECONDS = 30.0
JSON_HEADERS = {"Content-Type": "application/json"}


@dataclass(frozen=True, slots=True)
class PreparedCall:
    """A call whose every parameter but the chat is encoded already: ``{"chat_id":<id>,<rest>``."""

    url: str
    rest: bytes

    def body(self, chat_id: int) -> bytes:
        return b'{"chat_id":%d%s' % (chat_id, self.rest)


class BulkSender:
    """The same call to many chats over one aiohttp session, its answers read as deliveries."""

    def __init__(self, api_url: str, token: str) -> None:
        self._base = f"{api_url.rstrip('/')}/bot{token}/"
        self._token = token
        self._session: aiohttp.ClientSession | None = None

    def prepare(self, call: ApiCall) -> PreparedCall:
        """Encode ``call`` (made for any chat) once; uploads are not for bulk sends."""
        if call.upload is not None:
            raise ValueError("a bulk send carries no upload")
        params = {name: value for name, value in call.params.items() if name != "chat_id"}
        encoded = json.dumps(params, ensure_ascii=False, separators=(",", ":")).encode()
        rest = b"}" if encoded == b"{}" else b"," + encoded[1:]
        return PreparedCall(self._base + call.method, rest)

    async def send(self, call: PreparedCall, chat_id: int) -> Delivery:
        try:
            async with self._client().post(call.url, data=call.body(chat_id), headers=JSON_HEADERS) as response:
                answer = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            # The call may have reached Telegram before the connection failed.
            error_text = self._without_token(f"{type(error).__name__}: {error}")
            return Delivery(ok=False, outcome_unknown=True, error=error_text)
        return delivery_of(status, answer)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        # Made on first use: an aiohttp session belongs to the running event loop.
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=CONNECTIONS),
                timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS),
                raise_for_status=False,
            )
        return self._session

    def _without_token(self, text: str) -> str:
        return text.replace(self._token, "<token>")[:300]


def delivery_of(status: int, answer: bytes) -> Delivery:
    """What a Bot API answer means for the message: sent, blocked, refused for good, or to try again."""
    reply = _json(answer)
    if status == 200 and reply.get("ok") is True:
        result = reply.get("result")
        message_id = result.get("message_id") if isinstance(result, dict) else None
        return Delivery(ok=True, message_id=message_id if isinstance(message_id, int) else None)
    if status == 200:  # an answer that is not the Bot API's: the message may have gone
        return Delivery(ok=False, outcome_unknown=True, error="unreadable answer")
    description = str(reply.get("description") or f"HTTP {status}")[:300]
    parameters = reply.get("parameters")
    retry_after = parameters.get("retry_after") if isinstance(parameters, dict) else None
    if status == 429:
        return Delivery(ok=False, retry_after=float(retry_after) if isinstance(retry_after, int | float) else 1.0,
                        error="429")
    if status == 403:
        return Delivery(ok=False, blocked=True, error=description)
    if 400 <= status < 500:
        return Delivery(ok=False, permanent=True, error=description)
    return Delivery(ok=False, error=description)  # Telegram answered 5xx: it did not carry the call out


def _json(answer: bytes) -> dict[str, Any]:
    try:
        reply = json.loads(answer)
    except ValueError:  # a proxy's HTML error page
        return {}
    return reply if isinstance(reply, dict) else {}

