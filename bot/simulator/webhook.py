"""Webhook delivery, kept apart from the request handling it feeds.

Telegram POSTs each update as JSON to the webhook URL, adds the secret token
header when one was configured, retries failed deliveries for a while and then
gives up.  The simulator does the same with short, test-friendly back-off.
A webhook may also answer with a method call in its response body (aiogram
does this with a multipart form); that reply is parsed here and executed by
the server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from .params import Params, UploadedFile

logger = logging.getLogger(__name__)

SECRET_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


@dataclass(slots=True)
class WebhookConfig:
    """The webhook as set by ``setWebhook`` plus the delivery error bookkeeping."""

    url: str
    secret_token: str | None = None
    max_connections: int = 40
    ip_address: str | None = None
    allowed_updates: list[str] | None = None
    last_error_date: int | None = None
    last_error_message: str | None = None

    def info(self, pending_update_count: int) -> dict[str, Any]:
        """The ``WebhookInfo`` object returned by ``getWebhookInfo``."""
        result: dict[str, Any] = {
            "url": self.url,
            "has_custom_certificate": False,
            "pending_update_count": pending_update_count,
            "max_connections": self.max_connections,
        }
        if self.ip_address:
            result["ip_address"] = self.ip_address
        if self.allowed_updates is not None:
            result["allowed_updates"] = list(self.allowed_updates)
        if self.last_error_date is not None:
            result["last_error_date"] = self.last_error_date
            result["last_error_message"] = self.last_error_message or ""
        return result


@dataclass(frozen=True, slots=True)
class WebhookReply:
    """A Bot API call returned in a webhook response body."""

    method: str
    params: Params


async def _parse_reply(response: aiohttp.ClientResponse) -> WebhookReply | None:
    content_type = response.content_type
    values: dict[str, Any] = {}
    if content_type == "application/json":
        text = await response.text()
        if not text.strip():
            return None
        try:
            body = json.loads(text)
        except ValueError:
            return None
        if not isinstance(body, dict):
            return None
        values = body
    elif content_type == "multipart/form-data":
        reader = aiohttp.MultipartReader.from_response(response)
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, aiohttp.BodyPartReader) or part.name is None:
                continue
            if part.filename is not None:
                values[part.name] = UploadedFile(
                    part.filename,
                    part.headers.get("Content-Type", "application/octet-stream"),
                    bytes(await part.read()),
                )
            else:
                values[part.name] = await part.text()
    else:
        return None
    method = values.pop("method", None)
    if not isinstance(method, str) or not method:
        return None
    return WebhookReply(method, Params(values))


async def deliver(
    session: aiohttp.ClientSession,
    config: WebhookConfig,
    update: dict[str, Any],
    *,
    retries: int,
    backoff: float,
) -> tuple[bool, WebhookReply | None]:
    """POST one update, retrying on failure; returns ``(delivered, reply)``.

    Failures are recorded on ``config`` so ``getWebhookInfo`` shows them, as
    Telegram does, which is how operators notice a broken webhook.
    """
    headers = {"Content-Type": "application/json"}
    if config.secret_token:
        headers[SECRET_HEADER] = config.secret_token
    body = json.dumps(update, ensure_ascii=False).encode("utf-8")
    for attempt in range(retries + 1):
        try:
            async with session.post(
                config.url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=10)
            ) as response:
                if 200 <= response.status < 300:
                    return True, await _parse_reply(response)
                error = f"Wrong response from the webhook: {response.status} {response.reason or ''}".strip()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            error = f"Connection failed: {type(exc).__name__}"
        config.last_error_date = int(time.time())
        config.last_error_message = error
        logger.debug("webhook delivery of update %s failed: %s", update.get("update_id"), error)
        if attempt < retries:
            await asyncio.sleep(backoff * (2**attempt))
    logger.warning("dropping update %s after %d failed webhook deliveries", update.get("update_id"), retries + 1)
    return False, None
