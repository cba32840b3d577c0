"""The residents' photos of a request, fetched from the channel they were sent through, for the desk to show.

The chat keeps only the channel's file ids; a photo is fetched when a signed-in page shows it (the desk checks
the session and the viewer's right to the request first) and is not stored. Telegram's photos come through the
Bot API (``getFile``, then the file's URL, which holds the bot token and is never logged or shown).
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from typing import Protocol

import aiohttp

MAX_PHOTO_BYTES = 20 * 1024 * 1024  # the Bot API serves files up to 20 MB
FETCH_TIMEOUT = aiohttp.ClientTimeout(total=20)


@dataclass(frozen=True)
class FetchedPhoto:
    data: bytes
    content_type: str


class PhotoSource(Protocol):
    async def fetch(self, file_id: str) -> FetchedPhoto | None:
        """The photo's bytes, or None when the channel does not have it (any more) or cannot be reached."""


class TelegramPhotos:
    """Photos sent to the bot on Telegram."""

    def __init__(self, api_url: str, token: str) -> None:
        self._api = api_url.rstrip("/")
        self._token = token

    async def fetch(self, file_id: str) -> FetchedPhoto | None:
        try:
            async with aiohttp.ClientSession(timeout=FETCH_TIMEOUT) as http:
                async with http.post(f"{self._api}/bot{self._token}/getFile", json={"file_id": file_id}) as answer:
                    body = await answer.json(content_type=None)
                path = body.get("result", {}).get("file_path") if isinstance(body, dict) and body.get("ok") else None
                if not isinstance(path, str):
                    return None
                async with http.get(f"{self._api}/file/bot{self._token}/{path}") as download:
                    if download.status != 200:
                        return None
                    data = await download.content.read(MAX_PHOTO_BYTES + 1)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None  # the error's text would hold the URL, and with it the token
        if len(data) > MAX_PHOTO_BYTES:
            return None
        return FetchedPhoto(data, mimetypes.guess_type(path)[0] or "image/jpeg")
