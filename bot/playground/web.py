"""The playground's HTTP side: the page, its JSON API and a server-sent event stream of chat changes.

API (all JSON unless said otherwise):

- ``GET /api/state``: personas with their chats, the simulated clock, location presets
- ``GET /api/events``: ``text/event-stream``; each ``data:`` line is a message, answer, language or clock event
- ``POST /api/personas/{key}/text`` ``{"text"}``, ``/press`` ``{"message_id", "data"}``,
  ``/location`` ``{"latitude", "longitude"}``, ``/language`` ``{"language": "zh"|"en"}``,
  ``/photo`` (multipart: ``photo`` file, optional ``caption``)
- ``POST /api/clock`` ``{"days"}``
- ``GET /api/files/{file_id}``: a photo or document from a chat

Every request must name this playground as its Host (127.0.0.1, localhost or [::1] with its port) and, if
it says where it comes from, come from that origin; every API call carries the run's token, which only the
page served here knows: ``X-Playground-Token``, or ``?token=`` for what a browser fetches by URL (the event
stream, images, downloads). JSON bodies must be sent as ``application/json``, photos as multipart.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import mimetypes
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiohttp import web

from bot.playground.personas import LANGUAGE_CODES, Persona, UnknownPersona
from bot.simulator import SimUser

if TYPE_CHECKING:
    from bot.playground.app import Playground

STATIC_DIR = Path(__file__).resolve().parent / "static"
MAX_PHOTO_SIZE = 10 * 1024 * 1024  # Telegram's limit for photos
# What the simulator keeps of uploaded and sent files; beyond it the oldest are dropped. Each photo is kept
# in three sizes that share their bytes but count three times here: about 40 MB of real photos.
MAX_KEPT_FILE_BYTES = 3 * 40 * 1024 * 1024
TOKEN_HEADER = "X-Playground-Token"
TOKEN_PLACEHOLDER = "__PLAYGROUND_TOKEN__"
MAX_TEXT_LENGTH = 4096
MAX_CLOCK_DAYS = 366
HEARTBEAT_SECONDS = 15.0

PLAYGROUND_KEY: web.AppKey[Playground] = web.AppKey("playground")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def make_app(playground: Playground) -> web.Application:
    app = web.Application(client_max_size=MAX_PHOTO_SIZE + 64 * 1024, middlewares=[same_origin_only, errors_as_json])
    app[PLAYGROUND_KEY] = playground
    app.router.add_get("/", index)
    app.router.add_static("/static/", STATIC_DIR)
    app.router.add_get("/api/state", state)
    app.router.add_get("/api/events", events)
    app.router.add_get("/api/files/{file_id}", file)
    app.router.add_post("/api/clock", move_clock)
    for action, handler in PERSONA_ACTIONS.items():
        app.router.add_post(f"/api/personas/{{key}}/{action}", handler)
    return app


class BadInput(Exception):
    """The page sent something the API cannot use; the message says what."""


@web.middleware
async def same_origin_only(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse what did not come from the page this process served (another site, a rebound DNS name)."""
    playground = playground_of(request)
    refusal = refusal_of(request, playground.allowed_hosts, playground.api_token)
    if refusal is not None:
        return web.json_response({"error": refusal}, status=403)
    return await handler(request)


def refusal_of(request: web.Request, allowed_hosts: frozenset[str], token: str) -> str | None:
    """Why the request is refused, or None when it may go through."""
    if request.host not in allowed_hosts:
        return "unknown Host: open the playground at the address it printed"
    origin = request.headers.get("Origin")
    if origin is not None and origin.removeprefix("http://") not in allowed_hosts:
        return "requests from other sites are refused"
    if not request.path.startswith("/api/"):
        return None
    given = request.headers.get(TOKEN_HEADER) or (request.query.get("token", "") if request.method == "GET" else "")
    if not hmac.compare_digest(given.encode(), token.encode()):
        return "missing or wrong playground token: reload the page"
    return None


@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except UnknownPersona as error:
        return web.json_response({"error": f"no persona {error.args[0]!r}"}, status=404)
    except BadInput as error:
        return web.json_response({"error": str(error)}, status=400)
    except ValueError as error:
        # The simulator refuses what Telegram would refuse, such as a button no longer on the message.
        return web.json_response({"error": str(error)}, status=409)


def playground_of(request: web.Request) -> Playground:
    return request.app[PLAYGROUND_KEY]


async def index(request: web.Request) -> web.StreamResponse:
    page = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    return web.Response(
        text=page.replace(TOKEN_PLACEHOLDER, playground_of(request).api_token),
        content_type="text/html",
        headers={"Cache-Control": "no-store"},
    )


async def state(request: web.Request) -> web.StreamResponse:
    return web.json_response(await playground_of(request).state(), dumps=_dumps)


async def events(request: web.Request) -> web.StreamResponse:
    """Chat changes as server-sent events until the page goes away or the playground stops."""
    fanout = playground_of(request).fanout
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    queue = fanout.connect()
    try:
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
            except TimeoutError:
                await response.write(b": keep-alive\n\n")  # lets proxies and browsers see the stream is alive
                continue
            if event is None:
                break
            await response.write(f"data: {_dumps(event)}\n\n".encode())
    except ConnectionResetError:
        pass
    finally:
        fanout.disconnect(queue)
    return response


async def file(request: web.Request) -> web.StreamResponse:
    sim_file = playground_of(request).sim.file(request.match_info["file_id"])
    if sim_file is None:
        raise web.HTTPNotFound(text="no such file")
    content_type = sim_file.mime_type or mimetypes.guess_type(sim_file.file_path)[0] or "application/octet-stream"
    headers = {"Cache-Control": "max-age=3600"}
    if sim_file.name:
        headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{_quoted(sim_file.name)}"
    return web.Response(body=sim_file.data, content_type=content_type, headers=headers)


async def move_clock(request: web.Request) -> web.StreamResponse:
    days = _int_field(await _json_body(request), "days")
    if not 1 <= days <= MAX_CLOCK_DAYS:
        raise BadInput(f"days must be between 1 and {MAX_CLOCK_DAYS}")
    playground = playground_of(request)
    await playground.move_clock(days)
    return web.json_response(playground.clock_json())


# --- acting as a persona -----------------------------------------------------------------------------------


async def send_text(request: web.Request) -> web.StreamResponse:
    persona, body = await _persona_and_body(request)
    text = body.get("text")
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT_LENGTH:
        raise BadInput(f"text must be 1 to {MAX_TEXT_LENGTH} characters")
    user = playground_of(request).user(persona)
    _hide_used_keyboard(user, text)
    await user.send_text(text)
    return _done()


async def press(request: web.Request) -> web.StreamResponse:
    persona, body = await _persona_and_body(request)
    data = body.get("data")
    if not isinstance(data, str):
        raise BadInput("data must be the button's callback data")
    user = playground_of(request).user(persona)
    message = user.find_message(_int_field(body, "message_id"))
    if message is None:
        raise BadInput("no such message in this chat")
    await user.press(message, data)
    return _done()


async def send_location(request: web.Request) -> web.StreamResponse:
    persona, body = await _persona_and_body(request)
    latitude, longitude = body.get("latitude"), body.get("longitude")
    if not isinstance(latitude, int | float) or not isinstance(longitude, int | float):
        raise BadInput("latitude and longitude must be numbers")
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise BadInput("latitude or longitude is out of range")
    user = playground_of(request).user(persona)
    _hide_used_keyboard(user, None)
    await user.send_location(float(latitude), float(longitude))
    return _done()


async def send_photo(request: web.Request) -> web.StreamResponse:
    persona = playground_of(request).persona(request.match_info["key"])
    if request.content_type != "multipart/form-data":
        raise web.HTTPUnsupportedMediaType(text="send the photo as multipart/form-data")
    form = await request.post()
    photo = form.get("photo")
    if not isinstance(photo, web.FileField):
        raise BadInput("photo must be an uploaded file")
    data = photo.file.read(MAX_PHOTO_SIZE + 1)
    if not data:
        raise BadInput("the photo is empty")
    if len(data) > MAX_PHOTO_SIZE:
        raise BadInput(f"a photo may have at most {MAX_PHOTO_SIZE // (1024 * 1024)} MB")
    caption = form.get("caption")
    await playground_of(request).user(persona).send_photo(data, caption if isinstance(caption, str) else "")
    return _done()


async def set_language(request: web.Request) -> web.StreamResponse:
    persona, body = await _persona_and_body(request)
    language = body.get("language")
    if language not in LANGUAGE_CODES:
        raise BadInput(f"language must be one of {sorted(LANGUAGE_CODES)}")
    await playground_of(request).set_language(persona, str(language))
    return _done()


PERSONA_ACTIONS: dict[str, Handler] = {
    "text": send_text,
    "press": press,
    "location": send_location,
    "photo": send_photo,
    "language": set_language,
}


# --- helpers -----------------------------------------------------------------------------------------------


def _hide_used_keyboard(user: SimUser, text: str | None) -> None:
    """A one-time keyboard goes away once one of its buttons is used, as in Telegram's apps (``text`` None:
    the location button)."""
    keyboard = user.reply_keyboard
    if keyboard is None or not keyboard.get("one_time_keyboard"):
        return
    for row in keyboard.get("keyboard", []):
        for button in row:
            if (text is None and button.get("request_location")) or button.get("text") == text:
                user.reply_keyboard = None
                return


async def _persona_and_body(request: web.Request) -> tuple[Persona, dict[str, Any]]:
    persona = playground_of(request).persona(request.match_info["key"])
    return persona, await _json_body(request)


async def _json_body(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(text="the body must be sent as application/json")
    try:
        body = await request.json()
    except ValueError:
        raise BadInput("the body must be JSON") from None
    if not isinstance(body, dict):
        raise BadInput("the body must be a JSON object")
    return body


def _int_field(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadInput(f"{name} must be an integer")
    return value


def _done() -> web.Response:
    return web.json_response({"ok": True})


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _quoted(name: str) -> str:
    return quote(name, safe="")
