"""The desk's HTTP side: sign-in by link, the requests list, a request's page and its actions, live updates.

Routes:

- ``GET /signin/{token}``: a page with a button; ``POST /signin`` (``token``) uses the link once and starts a
  session (cookie ``HttpOnly``, ``SameSite=Strict``, ``Secure`` when ``GRIDBOT_DESK_URL`` is https)
- ``GET /requests``: the list (filters in the query, ``after`` the keyset cursor of the next page); ``GET /map``:
  the same requests on a map of the area's buildings
- ``GET /requests/{id}``: one request; ``POST /requests/{id}/{action}``: an action (``bot.desk.actions``)
- ``GET /events?watch=list|request:{id}``: ``text/event-stream``, an ``update`` event whenever what the page
  shows may have changed, ``ended`` when the session ends; ``POST /signout``
- ``GET /overview?area=level:id``: the landing page, the area's figures (``bot.desk.overview_pages``);
  ``GET /evaluation?month=YYYY-MM&area=level:id``: the month's ranking (考评), last month by default;
  ``GET /evaluation/bulletin.xlsx`` (same query): that month's bulletin workbook
- ``/open311/v2/``: Open311 GeoReport v2 for partner apps (``bot.desk.open311``), mounted as a sub-application;
  none of the desk's checks apply to it (no session, no CSRF token, any Host or Origin): it has its own rule,
  a partner's ``api_key`` to file

Every request must name the desk as its Host and, if it says where it comes from, come from the desk's origin
(as the playground checks, ``bot.playground.web``). Every page but the sign-in ones needs a live session, checked
in the core (``bot.core.desk_access``), and every POST the session's CSRF token. Which requests a person sees and
what they may do is decided by the core (``bot.core.desk_requests``, ``bot.core.requests``), never by the page.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.config import Settings
from bot.core import desk_access, desk_figures, desk_requests
from bot.core import requests as core
from bot.core.areas import admin_areas
from bot.core.bulletin import BadMonth, Bulletin, Month
from bot.core.bulletin_render import file_stem, render_workbook
from bot.core.clock import Clock, system_clock
from bot.core.context import CoreConfig
from bot.core.desk_access import DeskRefused
from bot.core.desk_figures import DEFAULT_SATISFACTION_TARGET, TrendCache
from bot.core.desk_requests import Cursor, Filters, Sort, SpotKind
from bot.core.requests import RequestRefused
from bot.core.units import DISTRICT, Unit, own_name
from bot.desk import export_pages, overview_pages, pages
from bot.desk.actions import DONE, DeskAction, Form, desk_context, parse_target, perform
from bot.desk.open311 import PREFIX as OPEN311_PREFIX
from bot.desk.open311 import open311_app
from bot.desk.overview_pages import AreaChoices
from bot.desk.pages import ListChoices, RequestChoices, Viewer
from bot.desk.photos import PhotoSource, TelegramPhotos
from bot.i18n import N_, Translator, translator
from bot.wording import holder_text, refusal_text
from storage.database import Database
from storage.models import Category, DeskLink, Level, Person, Request, RequestStatus

STATIC_DIR = Path(__file__).resolve().parent / "static"
COOKIE = "gridbot_desk"
MAX_FORM_SIZE = 64 * 1024
HEARTBEAT_SECONDS = 15.0
DEFAULT_LISTEN = "127.0.0.1:8083"
LANDING = "/overview"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SESSION_ENDED = N_("Your desk session has ended (signed out, or unused for too long). Send /desk to the bot for a "
                   "new sign-in link.")
FORM_EXPIRED = N_("This form was not sent from a page of your desk session. Reload the page and try again.")
NO_SUCH_PAGE = N_("There is no such page on the desk.")


@dataclass(frozen=True)
class DeskConfig:
    """What the desk needs to know of the deployment."""

    core: CoreConfig
    # GRIDBOT_DESK_URL: the address people open; its host is the one the desk answers to.
    public_url: str
    # GRIDBOT_DESK_LISTEN: where the server listens, also accepted as a Host (for a proxy on the same machine).
    listen: str = DEFAULT_LISTEN
    # How often a live page's stream looks for changes (one indexed query per page each time).
    poll_seconds: float = 2.0
    # GRIDBOT_SATISFACTION_TARGET: the residents' satisfaction the overview and the evaluation hold areas to.
    satisfaction_target: float = DEFAULT_SATISFACTION_TARGET

    @property
    def secure(self) -> bool:
        return self.public_url.startswith("https://")

    @property
    def allowed_hosts(self) -> frozenset[str]:
        host, _, port = self.listen.rpartition(":")
        local = {self.listen, f"localhost:{port}", f"127.0.0.1:{port}"} if host in ("127.0.0.1", "localhost") else {
            self.listen}
        return frozenset({urlsplit(self.public_url).netloc, *local})

    @property
    def allowed_origins(self) -> frozenset[str]:
        scheme = urlsplit(self.public_url).scheme or "http"
        return frozenset({f"{scheme}://{host}" for host in self.allowed_hosts} | {
            f"http://{host}" for host in self.allowed_hosts})


DESK_KEY: web.AppKey[Desk] = web.AppKey("desk")


class Desk:
    """The desk's database, settings, clock and where photos come from, shared by its handlers."""

    def __init__(self, database: Database, config: DeskConfig, clock: Clock,
                 photos: Mapping[str, PhotoSource]) -> None:
        self.database = database
        self.config = config
        self.clock = clock
        self.photos = photos
        # The overview's earlier months, shared by every page of this desk (read again every ten minutes).
        self.trends = TrendCache()

    def translator_for(self, person: Person | None) -> Translator:
        locale = (person.locale if person is not None else None) or self.config.core.default_locale
        return translator(locale, self.config.core.timezone)


def make_app(database: Database, config: DeskConfig, clock: Clock = system_clock,
             photos: Mapping[str, PhotoSource] | None = None) -> web.Application:
    """The desk; ``photos`` fetch residents' photos by the channel they came through (none: not shown)."""
    app = web.Application(client_max_size=MAX_FORM_SIZE, middlewares=[same_origin_only, safe_headers])
    app[DESK_KEY] = Desk(database, config, clock, photos or {})
    app.router.add_get("/", home)
    app.router.add_static("/static/", STATIC_DIR)
    app.router.add_get("/signin/{token}", sign_in_page)
    app.router.add_post("/signin", sign_in)
    app.router.add_post("/signout", sign_out)
    app.router.add_get("/requests", request_list)
    app.router.add_get("/map", request_map)
    app.router.add_get("/requests/{request_id:\\d+}", request_page)
    app.router.add_post("/requests/{request_id:\\d+}/{action}", request_action)
    app.router.add_get("/requests/{request_id:\\d+}/photos/{number:\\d+}", photo)
    app.router.add_get("/events", events)
    export_pages.add_routes(app)
    app.router.add_get("/overview", overview)
    app.router.add_get("/evaluation", evaluation)
    app.router.add_get("/evaluation/bulletin.xlsx", bulletin_workbook)
    app.add_subapp(OPEN311_PREFIX, open311_app(database, clock, config.core))
    return app


def for_partners(request: web.Request) -> bool:
    """Whether the request is Open311's, which partners' servers and apps call from their own origins."""
    return request.path.startswith(OPEN311_PREFIX + "/")


def desk_of(request: web.Request) -> Desk:
    return request.app[DESK_KEY]


# --- checks on every request ------------------------------------------------------------------------------


@web.middleware
async def same_origin_only(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse what did not come from the desk's own pages (another site, a rebound DNS name)."""
    if for_partners(request):
        return await handler(request)
    desk = desk_of(request)
    origin = request.headers.get("Origin")
    if request.host not in desk.config.allowed_hosts or (
            origin is not None and origin not in desk.config.allowed_origins):
        t = desk.translator_for(None)
        return _html(pages.message_page(t, t._("Not allowed"), t._("Open the desk at its own address.")), 403)
    return await handler(request)


@web.middleware
async def safe_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """No other site may frame the desk or run scripts in it; no address (with a sign-in token) leaks to
    another site. (With ``no-referrer`` browsers send ``Origin: null`` on the desk's own forms.) Open311
    answers its errors itself, in the specification's shape."""
    if for_partners(request):
        return await handler(request)
    try:
        response = await handler(request)
    except web.HTTPNotFound:
        t = desk_of(request).translator_for(None)
        response = _html(pages.message_page(t, t._("Not found"), t._(NO_SUCH_PAGE)), 404)
    if not response.prepared:
        response.headers.setdefault("Content-Security-Policy",
                                    "default-src 'self'; frame-ancestors 'none'; form-action 'self'")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, content_type="text/html", status=status, headers={"Cache-Control": "no-store"})


# --- signing in and out -----------------------------------------------------------------------------------


async def home(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther(LANDING)


async def sign_in_page(request: web.Request) -> web.StreamResponse:
    desk = desk_of(request)
    token = request.match_info["token"]
    person = await desk.database.run(lambda session: _link_owner(session, token))
    return _html(pages.sign_in_page(desk.translator_for(person), token))


def _link_owner(session: Session, token: str) -> Person | None:
    """Whose link it is, used or not, to speak their language on its pages."""
    link = session.scalar(select(DeskLink).where(DeskLink.token_hash == desk_access.token_hash(token)))
    return session.get(Person, link.person_id) if link is not None else None


async def sign_in(request: web.Request) -> web.StreamResponse:
    desk = desk_of(request)
    form = await request.post()
    token = str(form.get("token", ""))
    now = desk.clock()
    try:
        session_token, _person = await desk.database.run(lambda session: desk_access.open_link(session, token, now))
    except DeskRefused as error:
        owner = await desk.database.run(lambda session: _link_owner(session, token))
        t = desk.translator_for(owner)
        return _html(pages.message_page(t, t._("Sign-in link refused"), t._(error.reason)), 403)
    response = web.Response(status=303, headers={"Location": LANDING})
    response.set_cookie(COOKIE, session_token, httponly=True, samesite="Strict", secure=desk.config.secure, path="/",
                        max_age=int(desk_access.SESSION_LIFETIME.total_seconds()))
    return response


async def sign_out(request: web.Request) -> web.StreamResponse:
    desk = desk_of(request)
    token = await _checked_form_token(request)
    if isinstance(token, web.Response):
        return token
    now = desk.clock()
    await desk.database.run(lambda session: desk_access.sign_out(session, token, now))
    t = desk.translator_for(None)
    response = _html(pages.message_page(t, t._("Signed out"), t._("You are signed out of the desk.")))
    response.del_cookie(COOKIE, path="/")
    return response


def _ended(desk: Desk) -> web.Response:
    t = desk.translator_for(None)
    return _html(pages.message_page(t, t._("Signed out"), t._(SESSION_ENDED)), 401)


async def _checked_form_token(request: web.Request) -> str | web.Response:
    """The session token of a POST whose form carries that session's CSRF token; a 403 page otherwise."""
    token = request.cookies.get(COOKIE, "")
    form = await request.post()
    if not token or not desk_access.csrf_matches(token, str(form.get("csrf", ""))):
        t = desk_of(request).translator_for(None)
        return _html(pages.message_page(t, t._("Not allowed"), t._(FORM_EXPIRED)), 403)
    return token


SignedInWork = Callable[[Session, Person, Viewer], T]


async def _as_signed_in(request: web.Request, token: str, work: SignedInWork[T]) -> T | None:
    """Run ``work`` for the person of the session in one unit of work; None when the session is not live."""
    desk = desk_of(request)
    now = desk.clock()

    def unit_of_work(session: Session) -> T | None:
        person = desk_access.person_of_session(session, token, now)
        if person is None:
            return None
        return work(session, person, Viewer(person, desk.translator_for(person), desk_access.csrf_token(token)))

    return await desk.database.run(unit_of_work)


async def _signed_in_page(request: web.Request, render: SignedInWork[tuple[str, int]]) -> web.StreamResponse:
    """The page ``render`` writes (its HTML and status) for the person of the request's session."""
    token = request.cookies.get(COOKIE, "")
    rendered = await _as_signed_in(request, token, render) if token else None
    if rendered is None:
        return _ended(desk_of(request))
    return _html(*rendered)


# --- the list -----------------------------------------------------------------------------------------------


class BadFilter(Exception):
    """A filter the list cannot use: silently dropped would show more than asked, so it is said."""


def _enum_or_none(kind: type[RequestStatus] | type[Level], value: str) -> RequestStatus | Level | None:
    if not value:
        return None
    try:
        return kind(value)
    except ValueError:
        raise BadFilter(value) from None


def _day(value: str, t: Translator, days: int = 0) -> datetime | None:
    """A date input's day, as the start of that local day (plus ``days``)."""
    if not value:
        return None
    try:
        day = datetime.fromisoformat(value).date()
    except ValueError:
        raise BadFilter(value) from None
    return datetime(day.year, day.month, day.day, tzinfo=t.tz) + timedelta(days=days)


def filters_from(query: dict[str, str], t: Translator) -> Filters:
    status = _enum_or_none(RequestStatus, query.get("status", ""))
    level = _enum_or_none(Level, query.get("level", ""))
    unit = parse_target(query["unit"]) if query.get("unit") else None
    if query.get("unit") and unit is None:
        raise BadFilter(query["unit"])
    category = query.get("category", "")
    if category and not category.isdigit():
        raise BadFilter(category)
    sort = query.get("sort") or Sort.NEWEST.value
    if sort not in {member.value for member in Sort}:
        raise BadFilter(sort)
    spot_kind, _, spot_id = query.get("spot", "").partition(":")
    if query.get("spot") and (spot_kind not in {kind.value for kind in SpotKind} or not spot_id.isdigit()):
        raise BadFilter(query["spot"])
    after = Cursor.decode(query["after"]) if query.get("after") else None
    if query.get("after") and after is None:
        raise BadFilter(query["after"])
    return Filters(
        status=status if isinstance(status, RequestStatus) else None,
        level=level if isinstance(level, Level) else None,
        unit=unit, category_id=int(category) if category else None, overdue=query.get("overdue") == "1",
        since=_day(query.get("since", ""), t), until=_day(query.get("until", ""), t, days=1),
        photos=query.get("photos") == "1", place=query.get("place", "")[:100], text=query.get("q", "")[:100],
        building_id=int(spot_id) if spot_kind == SpotKind.BUILDING else None,
        place_id=int(spot_id) if spot_kind == SpotKind.PLACE else None, sort=Sort(sort), after=after,
    )


BAD_FILTER = N_("One of the filters is not valid. Clear the filters and choose again.")


def filtered_page(title: str, render: SignedInWork[T]) -> SignedInWork[T | tuple[str, int]]:
    """``render`` with its refusals said on the page: a filter the list cannot use (400), requests the person
    may not read (403)."""

    def page(session: Session, person: Person, viewer: Viewer) -> T | tuple[str, int]:
        t = viewer.t
        try:
            return render(session, person, viewer)
        except BadFilter:
            return pages.message_page(t, t._(title), t._(BAD_FILTER), viewer), 400
        except RequestRefused as error:
            return pages.message_page(t, t._(title), refusal_text(t, error), viewer), 403

    return page


def _list_choices(session: Session, person: Person) -> ListChoices:
    """What the filter form offers: the units of the person's area and every category."""
    categories = list(session.scalars(select(Category).order_by(Category.code)))
    return ListChoices(desk_requests.area_units(session, person), categories)


def _dates(query: dict[str, str]) -> tuple[str, str]:
    """The date filters as the form shows them again."""
    return query.get("since", "")[:10], query.get("until", "")[:10]


async def request_list(request: web.Request) -> web.StreamResponse:
    desk = desk_of(request)
    query = dict(request.query)

    def render(session: Session, person: Person, viewer: Viewer) -> tuple[str, int]:
        ctx = desk_context(session, person, desk.clock(), desk.config.core)
        filters = filters_from(query, viewer.t)
        page = desk_requests.request_page(session, person, filters, ctx.now)
        dates = _dates(query)
        extras = export_pages.list_extras(session, viewer, filters, dates)
        return pages.list_page(ctx, viewer, filters, _list_choices(session, person), page, dates, extras), 200

    return await _signed_in_page(request, filtered_page(N_("Requests"), render))


async def request_map(request: web.Request) -> web.StreamResponse:
    desk = desk_of(request)
    query = dict(request.query)

    def render(session: Session, person: Person, viewer: Viewer) -> tuple[str, int]:
        filters = filters_from(query, viewer.t)
        points = desk_requests.map_points(session, person, filters, desk.clock())
        buildings = desk_requests.area_buildings(session, person)
        choices = _list_choices(session, person)
        return pages.map_page(viewer, filters, choices, points, buildings, _dates(query)), 200

    return await _signed_in_page(request, filtered_page(N_("Map"), render))


# --- one request --------------------------------------------------------------------------------------------


def _request_choices(session: Session, person: Person, shown: Request) -> RequestChoices:
    """The actions the person may take on the request now, as the chat's card would offer them."""
    actions = pages.desk_actions(core.staff_actions(shown, person))
    targets = desk_requests.hand_over_targets(session, person, shown) if DeskAction.REASSIGN in actions else []
    departments = core.dispatch_targets(session, shown) if DeskAction.DISPATCH in actions else []
    return RequestChoices(actions, targets, departments)


def _render_request(session: Session, person: Person, viewer: Viewer, desk: Desk, request_id: int,
                    said: str = "", refused: str = "") -> tuple[str, int]:
    t = viewer.t
    ctx = desk_context(session, person, desk.clock(), desk.config.core)
    try:
        shown = desk_requests.request_for_viewer(session, person, request_id)
    except RequestRefused as error:
        return pages.message_page(t, t._("Not found"), refusal_text(t, error), viewer), 404
    choices = _request_choices(session, person, shown)
    photos = _sent_photos(session, shown) if _photo_channel(session, shown) in desk.photos else []
    return pages.request_page(ctx, viewer, shown, choices, len(photos), said, refused), 409 if refused else 200


async def request_page(request: web.Request) -> web.StreamResponse:
    desk = desk_of(request)
    request_id = int(request.match_info["request_id"])
    said = request.query.get("done", "")

    def render(session: Session, person: Person, viewer: Viewer) -> tuple[str, int]:
        done = DeskAction(said) if said in {action.value for action in DeskAction} else None
        shown = session.get(Request, request_id)
        text = ""
        if done is not None and shown is not None:
            text = viewer.t._(DONE[done]).format(code=shown.code, holder=holder_text(
                desk_context(session, person, desk.clock(), desk.config.core), viewer.t, shown))
        # A request the viewer may not open is refused there, before anything of it is shown.
        return _render_request(session, person, viewer, desk, request_id, said=text)

    return await _signed_in_page(request, render)


def _form_of(fields: dict[str, str]) -> Form:
    department = fields.get("department", "")
    return Form(text=fields.get("text", ""), target=parse_target(fields.get("target", "")),
                department_id=int(department) if department.isdigit() else None)


async def request_action(request: web.Request) -> web.StreamResponse:
    desk = desk_of(request)
    token = await _checked_form_token(request)
    if isinstance(token, web.Response):
        return token
    name = request.match_info["action"]
    if name not in {action.value for action in DeskAction}:
        raise web.HTTPNotFound()
    action, request_id = DeskAction(name), int(request.match_info["request_id"])
    form = _form_of({key: str(value) for key, value in (await request.post()).items()})

    def act(session: Session, person: Person, viewer: Viewer) -> tuple[str, int] | None:
        try:
            # A refused action leaves nothing behind; the session's last use stays recorded.
            with session.begin_nested():
                desk_requests.request_for_viewer(session, person, request_id)
                perform(desk_context(session, person, desk.clock(), desk.config.core), action, request_id, form)
        except RequestRefused as error:
            return _render_request(session, person, viewer, desk, request_id, refused=refusal_text(viewer.t, error))
        return None

    outcome = await _as_signed_in(request, token, act)
    if outcome is None:
        # Done (or the session ended, which the page it leads to says).
        raise web.HTTPSeeOther(f"/requests/{request_id}?done={action.value}")
    return _html(*outcome)


# --- photos -----------------------------------------------------------------------------------------------


def _sent_photos(session: Session, shown: Request) -> list[str]:
    """The file ids of the photos the filer sent, in order (a handler's photo of the work is not among them)."""
    return [sent.file_id for sent in shown.photos if not sent.from_handler]


def _photo_channel(session: Session, shown: Request) -> str:
    """The channel the photos came through: the filer's (the worker's, for a lead they found)."""
    sender = session.get(Person, shown.lead_by_id) if shown.lead_by_id is not None else shown.resident
    return sender.channel if sender is not None else ""


async def photo(request: web.Request) -> web.StreamResponse:
    """One of the filer's photos, for a viewer who may open the request."""
    desk = desk_of(request)
    token = request.cookies.get(COOKIE, "")
    request_id, number = int(request.match_info["request_id"]), int(request.match_info["number"])

    def find(session: Session, person: Person, _viewer: Viewer) -> tuple[str, str] | str:
        try:
            shown = desk_requests.request_for_viewer(session, person, request_id)
        except RequestRefused:
            return "missing"
        sent = _sent_photos(session, shown)
        return (_photo_channel(session, shown), sent[number - 1]) if 1 <= number <= len(sent) else "missing"

    found = await _as_signed_in(request, token, find) if token else None
    if found is None:
        return _ended(desk)
    source = desk.photos.get(found[0]) if isinstance(found, tuple) else None
    fetched = await source.fetch(found[1]) if source is not None and isinstance(found, tuple) else None
    if fetched is None:
        raise web.HTTPNotFound()
    return web.Response(body=fetched.data, content_type=fetched.content_type,
                        headers={"Cache-Control": "private, max-age=3600"})


# --- live updates -------------------------------------------------------------------------------------------


def _watched(watch: str) -> int | None:
    """``list`` -> 0 (every request); ``request:12`` -> 12; None for anything else."""
    if watch == "list":
        return 0
    kind, _, request_id = watch.partition(":")
    return int(request_id) if kind == "request" and request_id.isdigit() else None


async def events(request: web.Request) -> web.StreamResponse:
    """An ``update`` event whenever the watched requests changed, until the session ends or the page goes."""
    desk = desk_of(request)
    token = request.cookies.get(COOKIE, "")
    watched = _watched(request.query.get("watch", ""))
    if watched is None:
        raise web.HTTPNotFound()

    def look(session: Session) -> int | None:
        person = desk_access.live_person(session, token, desk.clock())
        if person is None:
            return None
        if not watched:
            return desk_requests.watermark(session)
        try:
            desk_requests.request_for_viewer(session, person, watched)
        except RequestRefused:
            return -1  # nothing to follow: the page says the request is not there
        return desk_requests.request_watermark(session, watched)

    seen = await desk.database.run(look) if token else None
    if seen is None:
        return _ended(desk)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    quiet = 0.0
    try:
        while True:
            await asyncio.sleep(desk.config.poll_seconds)
            mark = await desk.database.run(look)
            if mark is None:
                await response.write(b"event: ended\ndata: \n\n")
                break
            if mark != seen:
                seen, quiet = mark, 0.0
                await response.write(f"event: update\ndata: {mark}\n\n".encode())
                continue
            quiet += desk.config.poll_seconds
            if quiet >= HEARTBEAT_SECONDS:
                quiet = 0.0
                await response.write(b": keep-alive\n\n")  # lets proxies and browsers see the stream is alive
    except ConnectionResetError:
        pass
    return response


# --- the overview and the evaluation -----------------------------------------------------------------------

BAD_AREA = N_("There is no such area to show. Choose one of the areas offered.")
BAD_MONTH = N_("Write the month as YYYY-MM, for example 2026-10.")


def _area_of(query: Mapping[str, str], person: Person) -> Unit:
    """The area the page asks for, else the widest the person administers; whether they may read it is the
    core's to say (``desk_figures.require_area``)."""
    if not query.get("area"):
        areas = admin_areas(person)
        return areas[0] if areas else DISTRICT  # nobody's area: the core refuses it
    area = parse_target(query["area"])
    if area is None or area.level not in overview_pages.AREA_LEVELS:
        raise BadFilter(query["area"])
    return area


def _month_of(query: Mapping[str, str], desk: Desk) -> Month:
    """The month asked for, else last month (the bulletin's month) in the deployment's time zone."""
    text = query.get("month", "")
    return Month.parse(text) if text else Month.previous(desk.clock(), desk.config.core.timezone)


def _area_choices(session: Session, person: Person) -> AreaChoices:
    return AreaChoices(desk_figures.overview_areas(session, person))


def _figure_page(title: str, render: SignedInWork[T]) -> SignedInWork[T | tuple[str, int]]:
    """``render`` with its refusals said on the page: an area or month the page cannot show (400), an area
    the person does not administer (403)."""

    def page(session: Session, person: Person, viewer: Viewer) -> T | tuple[str, int]:
        t = viewer.t
        try:
            return render(session, person, viewer)
        except BadFilter:
            return pages.message_page(t, t._(title), t._(BAD_AREA), viewer), 400
        except BadMonth:
            return pages.message_page(t, t._(title), t._(BAD_MONTH), viewer), 400
        except desk_figures.DeskRefused as error:
            return pages.message_page(t, t._(title), t._(error.message), viewer), 403

    return page


async def overview(request: web.Request) -> web.StreamResponse:
    desk = desk_of(request)
    query = dict(request.query)

    def render(session: Session, person: Person, viewer: Viewer) -> tuple[str, int]:
        area = _area_of(query, person)
        figures = desk_figures.overview_for(session, person, area, desk.clock(), desk.config.core.timezone,
                                            desk.config.satisfaction_target, desk.trends)
        return overview_pages.overview_page(viewer, figures, _area_choices(session, person)), 200

    return await _signed_in_page(request, _figure_page(N_("Overview"), render))


async def evaluation(request: web.Request) -> web.StreamResponse:
    desk = desk_of(request)
    query = dict(request.query)

    def render(session: Session, person: Person, viewer: Viewer) -> tuple[str, int]:
        area, month = _area_of(query, person), _month_of(query, desk)
        ranked = desk_figures.evaluation_for(session, person, area, month, desk.config.core.timezone)
        return overview_pages.evaluation_page(viewer, ranked, own_name(session, area),
                                              desk.config.satisfaction_target, _area_choices(session, person)), 200

    return await _signed_in_page(request, _figure_page(N_("Evaluation"), render))


async def bulletin_workbook(request: web.Request) -> web.StreamResponse:
    """The month's bulletin workbook of the area, the one ``/report`` sends in the chat."""
    desk = desk_of(request)
    token = request.cookies.get(COOKIE, "")
    query = dict(request.query)

    def compute(session: Session, person: Person, viewer: Viewer) -> tuple[Bulletin, Translator]:
        area, month = _area_of(query, person), _month_of(query, desk)
        return desk_figures.bulletin_for(session, person, area, month, desk.config.core.timezone), viewer.t

    found = await _as_signed_in(request, token, _figure_page(N_("Evaluation"), compute)) if token else None
    if found is None:
        return _ended(desk)
    if isinstance(found[0], str):
        return _html(found[0], int(found[1]))  # refused
    bulletin, t = found
    # Drawn outside the unit of work, in a thread: a workbook of a district takes a moment to write.
    content = await asyncio.to_thread(render_workbook, t, bulletin)
    return web.Response(body=content, content_type=XLSX, headers={
        "Content-Disposition": f'attachment; filename="{file_stem(bulletin)}.xlsx"', "Cache-Control": "no-store"})


def desk_config(settings: Settings, core: CoreConfig) -> DeskConfig:
    listen = settings.desk_listen or DEFAULT_LISTEN
    return DeskConfig(core=core, public_url=settings.desk_base_url or f"http://{listen}", listen=listen,
                      satisfaction_target=settings.satisfaction_target)


def photo_sources(settings: Settings) -> dict[str, PhotoSource]:
    """Where the deployment's photos can be fetched from: Telegram's when a bot token is set."""
    token = settings.token_value
    return {"telegram": TelegramPhotos(settings.api_url, token)} if token else {}


async def serve(database: Database, config: DeskConfig, stop: asyncio.Event, clock: Clock = system_clock,
                photos: Mapping[str, PhotoSource] | None = None) -> None:
    """Serve the desk on ``config.listen`` until ``stop`` is set. No access log: a sign-in link's path holds
    its token."""
    runner = web.AppRunner(make_app(database, config, clock, photos), access_log=None)
    await runner.setup()
    host, _, port = config.listen.rpartition(":")
    site = web.TCPSite(runner, host or "127.0.0.1", int(port))
    await site.start()
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
