"""The WeChat server API the channel calls: the shared access token, customer-service and template messages.

Fetching an access token invalidates the previous one, so every process of a deployment must share one
token: it lives in the database with its expiry, and a short lease in the same row lets exactly one process
fetch a new one while the others wait for it. Within a process an asyncio lock makes the tasks share one
refresh.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import aiohttp
from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.core.clock import Clock, system_clock
from storage.database import Database
from storage.models import WeChatAccessToken

log = logging.getLogger(__name__)

# Refresh this long before the token expires, so a token is never used in its last minutes.
REFRESH_EARLY = timedelta(minutes=5)
# How long a process may take to fetch a token before another process may try.
LEASE = timedelta(seconds=15)
# errcodes meaning the token we sent is not (or no longer) valid: fetch a new one and try once more.
TOKEN_ERRORS = frozenset({40001, 40014, 42001})
# errcodes meaning the customer-service window is closed or used up.
WINDOW_CLOSED = frozenset({45015, 45047})
TIMEOUT = aiohttp.ClientTimeout(total=10)
# The longest a temporary QR code lives.
MAX_QR_SECONDS = 30 * 24 * 3600


class WeChatApiError(Exception):
    """The API answered with an error code (or not at all)."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"{errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


@dataclass(frozen=True)
class Claim:
    """The database's answer to "may I use or fetch the token?"."""

    token: str = ""  # a valid token another process (or an earlier run) fetched
    expires_at: datetime | None = None
    fetch: bool = False  # this process holds the lease and must fetch


def claim_token(session: Session, app_id: str, now: datetime) -> Claim:
    """A valid stored token, or the lease to fetch one, or neither (someone else is fetching)."""
    row = session.get(WeChatAccessToken, app_id)
    if row is None:
        try:
            with session.begin_nested():
                session.add(WeChatAccessToken(app_id=app_id, token="", expires_at=now, lease_until=now + LEASE))
            return Claim(fetch=True)
        except IntegrityError:  # another process created the row at the same moment and holds the lease
            return Claim()
    if row.token and row.expires_at - REFRESH_EARLY > now:
        return Claim(row.token, row.expires_at)
    # A conditional update, so of two processes seeing an expired lease only one takes it; and none takes it
    # if another process stored a fresh token since this one read the row (it would fetch a second one).
    taken = session.execute(
        update(WeChatAccessToken)
        .where(
            WeChatAccessToken.app_id == app_id,
            WeChatAccessToken.token == row.token,
            or_(WeChatAccessToken.lease_until.is_(None), WeChatAccessToken.lease_until <= now),
        )
        .values(lease_until=now + LEASE)
        .execution_options(synchronize_session=False)
    )
    return Claim(fetch=getattr(taken, "rowcount", 0) == 1)


def store_token(session: Session, app_id: str, token: str, expires_at: datetime) -> None:
    session.execute(
        update(WeChatAccessToken)
        .where(WeChatAccessToken.app_id == app_id)
        .values(token=token, expires_at=expires_at, lease_until=None)
        .execution_options(synchronize_session=False)
    )


def forget_token(session: Session, app_id: str, token: str, now: datetime) -> None:
    """Mark ``token`` expired (WeChat rejected it), unless another process already replaced it."""
    session.execute(
        update(WeChatAccessToken)
        .where(WeChatAccessToken.app_id == app_id, WeChatAccessToken.token == token)
        .values(expires_at=now)
        .execution_options(synchronize_session=False)
    )


class AccessTokens:
    """The account's access token, fetched once for all tasks and processes and reused until it expires."""

    def __init__(
        self, api: WeChatApi, database: Database, app_id: str, app_secret: str, clock: Clock = system_clock
    ) -> None:
        self.api = api
        self.database = database
        self.app_id = app_id
        self.app_secret = app_secret
        self.clock = clock
        self._token = ""
        self._expires_at: datetime | None = None
        self._lock = asyncio.Lock()

    def _cached(self) -> str | None:
        if self._token and self._expires_at is not None and self._expires_at - REFRESH_EARLY > self.clock():
            return self._token
        return None

    async def get(self) -> str:
        cached = self._cached()
        if cached:
            return cached
        async with self._lock:
            # Tasks that waited for the lock find the token the first one fetched.
            cached = self._cached()
            if cached:
                return cached
            return await self._from_database_or_fetch()

    async def _from_database_or_fetch(self) -> str:
        deadline = asyncio.get_running_loop().time() + LEASE.total_seconds() * 2
        while True:
            claim = await self.database.run(partial(claim_token, app_id=self.app_id, now=self.clock()))
            if claim.token:
                self._token, self._expires_at = claim.token, claim.expires_at
                return claim.token
            if claim.fetch:
                return await self._fetch()
            if asyncio.get_running_loop().time() > deadline:
                raise WeChatApiError(-1, "another process is still fetching the access token")
            await asyncio.sleep(0.2)

    async def _fetch(self) -> str:
        params = {"grant_type": "client_credential", "appid": self.app_id, "secret": self.app_secret}
        answer = await self.api.get("/cgi-bin/token", params)
        token = str(answer["access_token"])
        expires_at = self.clock() + timedelta(seconds=int(answer.get("expires_in", 7200)))
        await self.database.run(partial(store_token, app_id=self.app_id, token=token, expires_at=expires_at))
        self._token, self._expires_at = token, expires_at
        log.info("fetched a new WeChat access token")
        return token

    async def invalidate(self, token: str) -> None:
        if self._token == token:
            self._token, self._expires_at = "", None
        await self.database.run(partial(forget_token, app_id=self.app_id, token=token, now=self.clock()))


class WeChatApi:
    """A small async client of ``api.weixin.qq.com`` (or a simulator at ``base_url``)."""

    def __init__(
        self,
        base_url: str,
        app_id: str,
        app_secret: str,
        database: Database,
        clock: Clock = system_clock,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = session
        self._own_session = session is None
        self.tokens = AccessTokens(self, database, app_id, app_secret, clock)

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=TIMEOUT)
        return self._session

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        async with self.session.get(self.base_url + path, params=params) as response:
            return checked(await response.json(content_type=None))

    async def post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST JSON with the access token; a rejected token is replaced once and the call repeated."""
        return await self._with_token(partial(self._call, "POST", path, {}, payload))

    async def get_with_token(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        return await self._with_token(partial(self._call, "GET", path, params, None))

    async def _with_token(self, call: Callable[[str], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        for attempt in range(2):
            token = await self.tokens.get()
            try:
                return await call(token)
            except WeChatApiError as error:
                if error.errcode not in TOKEN_ERRORS or attempt == 1:
                    raise
                await self.tokens.invalidate(token)
        raise AssertionError("unreachable")

    async def _call(
        self, method: str, path: str, params: dict[str, str], payload: dict[str, Any] | None, token: str
    ) -> dict[str, Any]:
        async with self.session.request(
            method, self.base_url + path, params={**params, "access_token": token}, json=payload
        ) as response:
            return checked(await response.json(content_type=None))

    async def _upload(
        self, path: str, params: dict[str, str], file_name: str, content: bytes, token: str
    ) -> dict[str, Any]:
        form = aiohttp.FormData()
        form.add_field("media", content, filename=file_name, content_type="image/png")
        async with self.session.post(
            self.base_url + path, params={**params, "access_token": token}, data=form
        ) as response:
            return checked(await response.json(content_type=None))

    async def send_text(self, openid: str, text: str) -> dict[str, Any]:
        """A customer-service text message (only inside the 48-hour window)."""
        return await self.post(
            "/cgi-bin/message/custom/send", {"touser": openid, "msgtype": "text", "text": {"content": text}}
        )

    async def send_image(self, openid: str, file_name: str, png: bytes) -> dict[str, Any]:
        """A customer-service image message: the picture is uploaded as temporary media (kept 3 days) first."""
        uploaded = await self._with_token(partial(self._upload, "/cgi-bin/media/upload", {"type": "image"},
                                                  file_name, png))
        payload = {"touser": openid, "msgtype": "image", "image": {"media_id": str(uploaded["media_id"])}}
        return await self.post("/cgi-bin/message/custom/send", payload)

    async def create_qr(self, scene: str, expire_seconds: int | None) -> str:
        """A parametric QR code for ``scene`` (its scan sends ``qrscene_<scene>`` or ``SCAN``); returns what the
        code encodes, to draw it ourselves. ``expire_seconds`` None: a permanent code (at most 100,000 per account),
        else a temporary one (at most 30 days)."""
        payload: dict[str, Any] = {"action_info": {"scene": {"scene_str": scene}}}
        if expire_seconds is None:
            payload["action_name"] = "QR_LIMIT_STR_SCENE"
        else:
            payload.update(action_name="QR_STR_SCENE", expire_seconds=min(expire_seconds, MAX_QR_SECONDS))
        answer = await self.post("/cgi-bin/qrcode/create", payload)
        return str(answer["url"])

    async def user_language(self, openid: str) -> str | None:
        """The follower's language as the user-info API gives it (``zh_CN``, ``en``, ...), or None."""
        answer = await self.get_with_token("/cgi-bin/user/info", {"openid": openid, "lang": "zh_CN"})
        language = answer.get("language")
        return str(language) if language else None

    async def send_template(self, openid: str, template_id: str, data: dict[str, str]) -> dict[str, Any]:
        payload = {
            "touser": openid,
            "template_id": template_id,
            "data": {name: {"value": value} for name, value in data.items()},
        }
        return await self.post("/cgi-bin/message/template/send", payload)


def checked(answer: Any) -> dict[str, Any]:
    """The API's JSON answer, or ``WeChatApiError`` for a non-zero ``errcode``."""
    if not isinstance(answer, dict):
        raise WeChatApiError(-1, f"unexpected answer {answer!r}"[:200])
    errcode = int(answer.get("errcode", 0) or 0)
    if errcode:
        raise WeChatApiError(errcode, str(answer.get("errmsg", "")))
    return answer
