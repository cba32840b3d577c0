"""An in-process WeChat Official Account platform for tests: the server API and the followers' side.

The bot calls it as it would call ``api.weixin.qq.com`` (token, customer-service text and image messages,
template messages, uploading an image, parametric QR codes, a follower's user info) and
the simulator posts followers' messages to the bot's callback URL exactly as WeChat does: signed XML, in safe
mode encrypted. It keeps WeChat's rules that matter to the bot: a new access token invalidates the old one,
and customer-service messages are refused with 45015 outside 48 hours of the follower's last message or after
five of them.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from aiohttp import web

from bot.core.clock import Clock, system_clock
from bot.engines.wechat_protocol import WeChatCrypto, build_xml, signature

WINDOW = timedelta(hours=48)
WINDOW_MESSAGES = 5
OUT_OF_WINDOW = "response out of time limit or subscription is canceled"
INVALID_TOKEN = {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid"}


@dataclass(frozen=True)
class WxMessage:
    """What a follower received: a customer-service text or a template message."""

    kind: str  # "custom" | "template" | "image" (its ``data`` holds the ``media_id``)
    text: str
    data: dict[str, str] = field(default_factory=dict)

    @property
    def content(self) -> str:
        """The readable text: the message itself, or a template's fields one a line."""
        return self.text if self.kind != "template" else "\n".join(self.data.values())


@dataclass(frozen=True)
class QrCode:
    """A parametric QR code the bot created: what it encodes, its scene, and how long it lives (None: forever)."""

    url: str
    scene: str
    expire_seconds: int | None


@dataclass(frozen=True)
class Posted:
    """The bot's answer to a message the simulator posted."""

    status: int
    body: str
    seconds: float
    query: dict[str, str]
    xml: str


class WeChatSimulator:
    def __init__(
        self,
        app_id: str = "wx0123456789abcdef",
        app_secret: str = "app-secret",
        token: str = "callback-token",
        aes_key: str | None = None,
        clock: Clock = system_clock,
        token_delay: float = 0.0,
    ) -> None:
        self.app_id = app_id
        self.app_secret = app_secret
        self.token = token
        self.crypto = WeChatCrypto(token, aes_key, app_id) if aes_key else None
        self.clock = clock
        self.token_delay = token_delay  # makes the token endpoint slow, to show concurrent callers share a fetch
        self.account = "gh_gridbot"
        self.callback_url = ""
        self.token_fetches = 0
        self.received: dict[str, list[WxMessage]] = defaultdict(list)
        self.rejected: list[tuple[str, int]] = []  # (openid, errcode) of refused sends
        self.languages: dict[str, str] = {}  # what the user-info API says of a follower's language
        self.user_info_calls = 0
        self.qr_codes: list[QrCode] = []
        self.media: dict[str, bytes] = {}  # uploaded images by media_id
        self._access_token = ""
        self._last_inbound: dict[str, datetime] = {}
        self._window_sent: dict[str, int] = defaultdict(int)
        self._msg_ids = iter(range(24_000_000_000_000_000, 25_000_000_000_000_000))
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None

    # --- lifecycle -------------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve the API; returns its base URL (what GRIDBOT_WECHAT_API_URL points to)."""
        app = web.Application()
        app.router.add_get("/cgi-bin/token", self._token)
        app.router.add_post("/cgi-bin/message/custom/send", self._custom_send)
        app.router.add_post("/cgi-bin/message/template/send", self._template_send)
        app.router.add_post("/cgi-bin/media/upload", self._media_upload)
        app.router.add_post("/cgi-bin/qrcode/create", self._qrcode_create)
        app.router.add_get("/cgi-bin/user/info", self._user_info)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        bound = self._runner.addresses[0]
        self._http = aiohttp.ClientSession()
        return f"http://{bound[0]}:{bound[1]}"

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # --- the server API --------------------------------------------------------------------------------

    async def _token(self, request: web.Request) -> web.Response:
        query = request.query
        if query.get("appid") != self.app_id or query.get("secret") != self.app_secret:
            return web.json_response({"errcode": 40013, "errmsg": "invalid appid or secret"})
        self.token_fetches += 1
        if self.token_delay:
            await asyncio.sleep(self.token_delay)
        self._access_token = secrets.token_hex(16)  # the previous token stops working
        return web.json_response({"access_token": self._access_token, "expires_in": 7200})

    def _token_valid(self, request: web.Request) -> bool:
        given = request.query.get("access_token", "")
        return bool(given) and given == self._access_token

    async def _authorised(self, request: web.Request) -> dict[str, Any] | None:
        return dict(await request.json()) if self._token_valid(request) else None

    async def _custom_send(self, request: web.Request) -> web.Response:
        payload = await self._authorised(request)
        if payload is None:
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential, access_token is invalid"})
        openid = str(payload.get("touser", ""))
        last = self._last_inbound.get(openid)
        if last is None or self.clock() - last > WINDOW or self._window_sent[openid] >= WINDOW_MESSAGES:
            self.rejected.append((openid, 45015))
            return web.json_response({"errcode": 45015, "errmsg": OUT_OF_WINDOW})
        if payload.get("msgtype") == "image":
            media_id = str(payload.get("image", {}).get("media_id", ""))
            if media_id not in self.media:
                return web.json_response({"errcode": 40007, "errmsg": "invalid media_id"})
            message = WxMessage("image", "", {"media_id": media_id})
        else:
            message = WxMessage("custom", str(payload["text"]["content"]))
        self._window_sent[openid] += 1
        self.received[openid].append(message)
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def _media_upload(self, request: web.Request) -> web.Response:
        if not self._token_valid(request):
            return web.json_response(INVALID_TOKEN)
        if request.query.get("type") != "image":
            return web.json_response({"errcode": 40004, "errmsg": "invalid media type"})
        form = await request.post()
        upload = form.get("media")
        if not isinstance(upload, web.FileField):
            return web.json_response({"errcode": 41005, "errmsg": "media data missing"})
        media_id = secrets.token_hex(12)
        self.media[media_id] = upload.file.read()
        return web.json_response({"type": "image", "media_id": media_id, "created_at": int(self.clock().timestamp())})

    async def _qrcode_create(self, request: web.Request) -> web.Response:
        payload = await self._authorised(request)
        if payload is None:
            return web.json_response(INVALID_TOKEN)
        scene = str(payload.get("action_info", {}).get("scene", {}).get("scene_str", ""))
        action = payload.get("action_name")
        if not 1 <= len(scene) <= 64 or action not in ("QR_STR_SCENE", "QR_LIMIT_STR_SCENE"):
            return web.json_response({"errcode": 40053, "errmsg": "invalid action info"})
        expire = None if action == "QR_LIMIT_STR_SCENE" else int(payload.get("expire_seconds", 60))
        if expire is not None and not 60 <= expire <= 2_592_000:
            return web.json_response({"errcode": 40009, "errmsg": "invalid expire_seconds"})
        code = QrCode(f"http://weixin.qq.com/q/{secrets.token_urlsafe(16)}", scene, expire)
        self.qr_codes.append(code)
        return web.json_response({"ticket": secrets.token_urlsafe(32), "expire_seconds": expire, "url": code.url})

    async def _user_info(self, request: web.Request) -> web.Response:
        if not self._token_valid(request):
            return web.json_response(INVALID_TOKEN)
        self.user_info_calls += 1
        openid = request.query.get("openid", "")
        # Since 2021 WeChat no longer gives nickname or picture; the language is still given.
        info: dict[str, Any] = {"subscribe": 1, "openid": openid}
        if openid in self.languages:
            info["language"] = self.languages[openid]
        return web.json_response(info)

    async def _template_send(self, request: web.Request) -> web.Response:
        payload = await self._authorised(request)
        if payload is None:
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential, access_token is invalid"})
        if not payload.get("template_id"):
            return web.json_response({"errcode": 40037, "errmsg": "invalid template_id"})
        data = {name: str(value.get("value", "")) for name, value in dict(payload.get("data", {})).items()}
        self.received[str(payload["touser"])].append(WxMessage("template", "", data))
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": next(self._msg_ids)})

    # --- the followers' side ---------------------------------------------------------------------------

    def signed_query(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        # WeChat's clock, which the bot's must agree with to within five minutes.
        timestamp, nonce = str(int(self.clock().timestamp())), secrets.token_hex(5)
        query = {"timestamp": timestamp, "nonce": nonce, "signature": signature(self.token, timestamp, nonce)}
        return {**query, **(extra or {})}

    def message(self, openid: str, msg_type: str, **fields: str | int | float) -> dict[str, str | int | float]:
        base: dict[str, str | int | float] = {
            "ToUserName": self.account, "FromUserName": openid, "CreateTime": int(self.clock().timestamp()),
            "MsgType": msg_type,
        }
        if msg_type != "event":
            base["MsgId"] = next(self._msg_ids)
        return {**base, **fields}

    async def post(self, fields: dict[str, str | int | float], query: dict[str, str] | None = None) -> Posted:
        """Post a message as WeChat would (encrypted in safe mode); ``query`` overrides the signed query."""
        xml = build_xml(fields)
        self._last_inbound[str(fields["FromUserName"])] = self.clock()
        self._window_sent[str(fields["FromUserName"])] = 0
        query = query or self.signed_query()
        body = xml
        if self.crypto is not None:
            body, msg_signature = self.crypto.wrap(xml, query["timestamp"], query["nonce"])
            query = {**query, "encrypt_type": "aes", "msg_signature": msg_signature}
        return await self.post_raw(query, body.encode(), xml)

    async def post_raw(self, query: dict[str, str], body: bytes, xml: str = "") -> Posted:
        """Post exactly this (a retry of an earlier delivery, a forged signature)."""
        assert self._http is not None and self.callback_url, "start() and set callback_url first"
        started = time.monotonic()
        async with self._http.post(self.callback_url, params=query, data=body) as response:
            text = await response.text()
        return Posted(response.status, text, time.monotonic() - started, query, xml or body.decode())

    async def text(self, openid: str, content: str) -> Posted:
        return await self.post(self.message(openid, "text", Content=content))

    async def subscribe(self, openid: str, scene: str = "") -> Posted:
        key = f"qrscene_{scene}" if scene else ""
        return await self.post(self.message(openid, "event", Event="subscribe", EventKey=key))

    async def scan(self, openid: str, scene: str) -> Posted:
        return await self.post(self.message(openid, "event", Event="SCAN", EventKey=scene))

    async def click(self, openid: str, key: str) -> Posted:
        return await self.post(self.message(openid, "event", Event="CLICK", EventKey=key))

    async def location(self, openid: str, latitude: float, longitude: float) -> Posted:
        return await self.post(
            self.message(openid, "location", Location_X=latitude, Location_Y=longitude, Scale=15, Label="")
        )

    async def verify_url(self, echostr: str, valid: bool = True) -> tuple[int, str]:
        """WeChat's URL check when the callback URL is configured."""
        assert self._http is not None
        query = self.signed_query({"echostr": echostr})
        if not valid:
            query["signature"] = "0" * 40
        async with self._http.get(self.callback_url, params=query) as response:
            return response.status, await response.text()

    def code_for(self, scene_prefix: str) -> QrCode:
        """The last QR code the bot created whose scene starts with ``scene_prefix``."""
        return next(code for code in reversed(self.qr_codes) if code.scene.startswith(scene_prefix))

    def messages(self, openid: str) -> list[WxMessage]:
        return list(self.received.get(openid, []))

    async def wait_for(self, openid: str, needle: str, since: int = 0, timeout: float = 10.0) -> WxMessage:
        """The first message (from index ``since``) whose content contains ``needle``."""
        deadline = time.monotonic() + timeout
        while True:
            for message in self.received.get(openid, [])[since:]:
                if needle in message.content:
                    return message
            if time.monotonic() > deadline:
                seen = [m.content for m in self.received.get(openid, [])]
                raise AssertionError(f"{openid} got no message with {needle!r}; got {seen}")
            await asyncio.sleep(0.05)
