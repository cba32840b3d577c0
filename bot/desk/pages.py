"""The desk's pages as HTML: plain server-rendered markup, every text in the reader's language.

Every value shown is escaped (``_e``); every form that posts carries the session's CSRF token (``_csrf``).
Sections marked ``data-live`` are replaced in place by ``static/desk.js`` when the server says something changed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape
from urllib.parse import urlencode

from bot.core import requests as core
from bot.core.context import Context
from bot.core.desk_requests import MAP_REQUESTS, SEARCH_WINDOW, Filters, MapPoint, Page, Sort
from bot.core.request_export import may_import_history
from bot.core.requests import Transition
from bot.core.units import Unit
from bot.desk.actions import ACTION_OF, DeskAction
from bot.i18n import N_, Translator
from bot.wording import holder_text, status_text, timeline_text, where_line
from storage.models import Category, Level, Person, Request, RequestStatus

STATUS_FILTERS = {
    RequestStatus.NEW: N_("waiting to be accepted"),
    RequestStatus.ACCEPTED: N_("being handled"),
    RequestStatus.RESOLVED: N_("resolved, waiting for the resident"),
    RequestStatus.CLOSED: N_("closed"),
    RequestStatus.WITHDRAWN: N_("withdrawn"),
}
LEVEL_NAMES = {
    Level.DISTRICT: N_("district"),
    Level.STREET: N_("street"),
    Level.COMMUNITY: N_("community"),
    Level.GRID: N_("grid"),
    Level.DEPARTMENT: N_("department"),
}
SORT_NAMES = {
    Sort.NEWEST: N_("newest first"),
    Sort.OLDEST: N_("oldest first"),
    Sort.DUE: N_("nearest due date first"),
}
# What each action's form asks for, and its button.
ACTION_LABELS = {
    DeskAction.ACCEPT: N_("Accept"),
    DeskAction.REASSIGN: N_("Hand over"),
    DeskAction.DISPATCH: N_("Hand to the department"),
    DeskAction.ESCALATE: N_("Escalate"),
    DeskAction.RETURN: N_("Return with instruction"),
    DeskAction.NOTE: N_("Add note"),
    DeskAction.RESOLVE: N_("Resolve"),
}
TEXT_LABELS = {
    DeskAction.DISPATCH: N_("Instruction for the department"),
    DeskAction.ESCALATE: N_("Why it needs the level above"),
    DeskAction.RETURN: N_("Instruction for the level below"),
    DeskAction.NOTE: N_("Note"),
    DeskAction.RESOLVE: N_("What was done"),
}


@dataclass(frozen=True)
class Viewer:
    """Who reads the page: their name, translator and the CSRF token of their session."""

    person: Person
    t: Translator
    csrf: str


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _csrf(viewer: Viewer) -> str:
    return f'<input type="hidden" name="csrf" value="{_e(viewer.csrf)}">'


def document(t: Translator, title: str, body: str, viewer: Viewer | None = None, live: str = "") -> str:
    """A whole page: the header (with sign-out when signed in) around ``body``."""
    nav = ""
    if viewer is not None:
        requests, map_link, sign_out = t._("Requests"), t._("Map"), t._("Sign out")
        overview, evaluation = t._("Overview"), t._("Evaluation")
        history = t._("Import") if may_import_history(viewer.person) else ""
        nav = (f'<nav><a href="/overview">{_e(overview)}</a><a href="/requests">{_e(requests)}</a>'
               f'<a href="/map">{_e(map_link)}</a><a href="/evaluation">{_e(evaluation)}</a>'
               + (f'<a href="/import">{_e(history)}</a>' if history else "")
               + f'<span class="who">{_e(viewer.person.display_name)}</span>'
               f'<form method="post" action="/signout">{_csrf(viewer)}'
               f'<button type="submit">{_e(sign_out)}</button></form></nav>')
    lang = "zh-CN" if t.locale.startswith("zh") else "en"
    live_attribute = f' data-watch="{_e(live)}"' if live else ""
    desk, heading = t._("Desk"), t._("District grid service center desk")
    return (f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{_e(title)} · {_e(desk)}</title>'
            f'<link rel="stylesheet" href="/static/desk.css"><script src="/static/desk.js" defer></script></head>'
            f'<body{live_attribute}><header><h1>{_e(heading)}</h1>{nav}</header>'
            f'<main>{body}</main></body></html>')


def message_page(t: Translator, title: str, text: str, viewer: Viewer | None = None) -> str:
    """A page that only says something: a refused link, an ended session, a refused form."""
    return document(t, title, f'<section class="notice"><h2>{_e(title)}</h2><p>{_e(text)}</p></section>', viewer)


def sign_in_page(t: Translator, token: str) -> str:
    """The page a sign-in link opens: a button that uses the link, so a link preview fetching it does not."""
    title = t._("Sign in to the desk")
    explained = t._("This link signs you in once. Press the button to open the desk.")
    button = t._("Sign in")
    body = (f'<section class="notice"><h2>{_e(title)}</h2><p>{_e(explained)}</p>'
            f'<form method="post" action="/signin"><input type="hidden" name="token" value="{_e(token)}">'
            f'<button type="submit" class="primary">{_e(button)}</button></form></section>')
    return document(t, title, body)


# --- the list -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ListChoices:
    """What the filter form offers: the viewer's units and the categories."""

    units: Sequence[tuple[Unit, str]]
    categories: Sequence[Category]


def _option(value: str, label: str, selected: bool) -> str:
    return f'<option value="{_e(value)}"{" selected" if selected else ""}>{_e(label)}</option>'


def _select(name: str, label: str, options: Iterable[str], any_label: str = "", required: bool = False) -> str:
    """A labelled select; labelled by ``for``, so its name is the label alone, not the options' text too."""
    first = f'<option value="">{_e(any_label)}</option>' if any_label else ""
    return (f'<span class="field"><label for="field-{name}">{_e(label)}</label><select id="field-{name}" '
            f'name="{name}"{" required" if required else ""}>{first}{"".join(options)}</select></span>')


def unit_value(unit: Unit) -> str:
    return f"{unit.level.value}:{unit.id}"


def filter_query(filters: Filters) -> dict[str, str]:
    """The filters as the list page's query parameters (without the page's cursor)."""
    query = {
        "status": filters.status.value if filters.status else "",
        "level": filters.level.value if filters.level else "",
        "unit": unit_value(filters.unit) if filters.unit else "",
        "category": str(filters.category_id or ""),
        "overdue": "1" if filters.overdue else "",
        "photos": "1" if filters.photos else "",
        "place": filters.place,
        "q": filters.text,
        "spot": f"building:{filters.building_id}" if filters.building_id is not None else
        f"place:{filters.place_id}" if filters.place_id is not None else "",
        "sort": filters.sort.value if filters.sort is not Sort.NEWEST else "",
    }
    return {name: value for name, value in query.items() if value}


def _filter_form(t: Translator, filters: Filters, choices: ListChoices, dates: tuple[str, str],
                 action: str = "/requests") -> str:
    statuses = [_option(status.value, t._(label), filters.status is status) for status, label in STATUS_FILTERS.items()]
    levels = [_option(level.value, t._(label), filters.level is level) for level, label in LEVEL_NAMES.items()]
    units = [_option(unit_value(unit), f"{t._(LEVEL_NAMES[unit.level])} · {name}", filters.unit == unit)
             for unit, name in choices.units]
    categories = [_option(str(category.id), category.name(t.locale), filters.category_id == category.id)
                  for category in choices.categories]
    sorts = [_option(sort.value, t._(label), filters.sort is sort) for sort, label in SORT_NAMES.items()]
    checked = {True: " checked", False: ""}
    since, until = dates
    label = {
        "q": t._("Search descriptions"), "place": t._("Place or building"), "since": t._("Filed from"),
        "until": t._("Filed until"), "overdue": t._("Overdue only"), "photos": t._("With photos"),
        "sort": t._("Sort"), "show": t._("Show"), "clear": t._("Clear filters"),
    }
    return (
        f'<form class="filters" method="get" action="{action}">'
        f'<label class="wide">{_e(label["q"])}<input type="search" name="q" value="{_e(filters.text)}"></label>'
        + _select("status", t._("Status"), statuses, t._("any"))
        + _select("level", t._("Held at"), levels, t._("any level"))
        + _select("unit", t._("Area"), units, t._("all of my area"))
        + _select("category", t._("Category"), categories, t._("any"))
        + f'<label>{_e(label["place"])}<input name="place" value="{_e(filters.place)}"></label>'
        f'<label>{_e(label["since"])}<input type="date" name="since" value="{_e(since)}"></label>'
        f'<label>{_e(label["until"])}<input type="date" name="until" value="{_e(until)}"></label>'
        f'<label class="check"><input type="checkbox" name="overdue" value="1"{checked[filters.overdue]}>'
        f'{_e(label["overdue"])}</label>'
        f'<label class="check"><input type="checkbox" name="photos" value="1"{checked[filters.photos]}>'
        f'{_e(label["photos"])}</label>'
        + _select("sort", label["sort"], sorts)
        + _spot_input(filters)
        + f'<button type="submit" class="primary">{_e(label["show"])}</button>'
        f'<a class="reset" href="{action}">{_e(label["clear"])}</a></form>'
    )


def _spot_input(filters: Filters) -> str:
    """The building or place the list is narrowed to, kept when other filters change."""
    spot = filter_query(filters).get("spot", "")
    return f'<input type="hidden" name="spot" value="{_e(spot)}">' if spot else ""


def _row(ctx: Context, t: Translator, request: Request) -> str:
    overdue = core.is_overdue(request, ctx.now)
    late = t._("overdue")
    mark = f'<span class="overdue">{_e(late)}</span> ' if overdue else ""
    return (f'<tr class="{"late" if overdue else ""}"><td><a href="/requests/{request.id}">{_e(request.code)}</a></td>'
            f'<td>{mark}{_e(status_text(t, request))}</td><td>{_e(request.category.name(t.locale))}</td>'
            f'<td>{_e(core.where_name(request))}</td><td>{_e(holder_text(ctx, t, request))}</td>'
            f'<td>{_e(t.date(request.created_at))}</td><td>{_e(t.date(request.due_at))}</td>'
            f'<td class="description">{_e(request.description[:120])}</td></tr>')


def list_page(ctx: Context, viewer: Viewer, filters: Filters, choices: ListChoices, page: Page,
              dates: tuple[str, str], extras: str = "") -> str:
    """The list; ``extras`` (HTML: downloads, buildings that match) goes below the filters."""
    t = viewer.t
    headings = [t._("Code"), t._("Status"), t._("Category"), t._("Where"), t._("Held by"), t._("Filed"),
                t._("Due"), t._("Description")]
    head = "".join(f"<th>{_e(heading)}</th>" for heading in headings)
    rows = "".join(_row(ctx, t, request) for request in page.requests)
    if not rows:
        nothing = t._("No request matches these filters.")
        rows = f'<tr><td colspan="{len(headings)}">{_e(nothing)}</td></tr>'
    more = ""
    if page.next is not None:
        query = {**filter_query(filters), "since": dates[0], "until": dates[1], "after": page.next.encode()}
        query = {name: value for name, value in query.items() if value}
        next_page = t._("Next page")
        more = f'<p class="more"><a href="/requests?{_e(urlencode(query))}">{_e(next_page)}</a></p>'
    first = ""
    if filters.after is not None:
        query = {name: value for name, value in {**filter_query(filters), "since": dates[0],
                                                  "until": dates[1]}.items() if value}
        first_page = t._("First page")
        first = f'<p class="more"><a href="/requests?{_e(urlencode(query))}">{_e(first_page)}</a></p>'
    title = t._("Requests")
    hint = ""
    if filters.text.strip():
        window = t._("Words are looked for in the newest {count} requests that pass the other filters; choose "
                     "dates to search further back.").format(count=t.number(SEARCH_WINDOW))
        hint = f'<p class="hint">{_e(window)}</p>'
    body = (f'<h2>{_e(title)}</h2>{_filter_form(t, filters, choices, dates)}{extras}{hint}'
            f'<section id="results" data-live><div class="table"><table><thead><tr>{head}</tr></thead>'
            f'<tbody>{rows}</tbody></table></div>{first}{more}</section>')
    return document(t, title, body, viewer, live="list")


# --- one request ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestChoices:
    """What the action forms offer: the actions the viewer may take, units to hand it to, departments."""

    actions: Sequence[DeskAction]
    targets: Sequence[tuple[Unit, str]]
    departments: Sequence[tuple[int, str]]


def desk_actions(transitions: Iterable[Transition]) -> list[DeskAction]:
    return [ACTION_OF[transition] for transition in transitions if transition in ACTION_OF]


def _details(ctx: Context, t: Translator, request: Request, shown_photos: int) -> str:
    resident = t._("(hidden by the resident)") if request.hide_identity else request.resident.display_name
    location = ""
    if request.latitude is not None and request.longitude is not None:
        location = f"{request.latitude:.5f}, {request.longitude:.5f}"
    rows = [
        (t._("Status"), status_text(t, request)),
        (t._("Category"), request.category.name(t.locale)),
        (t._("Held by"), holder_text(ctx, t, request)),
        (t._("Filed"), t.datetime(request.created_at)),
        (t._("Due"), t.date(request.due_at)),
        (t._("Resident"), resident),
        (t._("Where"), where_line(t, request)),
    ]
    if location:
        rows.append((t._("Location"), location))
    photos = [photo for photo in request.photos if not photo.from_handler]
    if photos and not shown_photos:
        rows.append((t._("Photos"), t.n_("{count} photo, in the chat", "{count} photos, in the chat",
                                          len(photos)).format(count=t.number(len(photos)))))
    late, description = t._("Overdue"), t._("Description")
    overdue = f'<p class="overdue">{_e(late)}</p>' if core.is_overdue(request, ctx.now) else ""
    cells = "".join(f"<dt>{_e(name)}</dt><dd>{_e(value)}</dd>" for name, value in rows)
    alt = t._("Photo {number} of {code}")
    images = "".join(
        f'<a href="/requests/{request.id}/photos/{number}"><img src="/requests/{request.id}/photos/{number}" '
        f'alt="{_e(alt.format(number=number, code=request.code))}" loading="lazy"></a>'
        for number in range(1, shown_photos + 1))
    gallery = f'<div class="photos">{images}</div>' if images else ""
    return (f'<section id="details" data-live>{overdue}<dl>{cells}</dl>'
            f'<h3>{_e(description)}</h3><p class="text">{_e(request.description)}</p>{gallery}</section>')


def _timeline(ctx: Context, t: Translator, request: Request) -> str:
    # The chat's timeline text, one line per event, so both say the same.
    lines = timeline_text(ctx, t, request, for_staff=True).splitlines()[1:]
    items = "".join(f"<li>{_e(line.removeprefix('• '))}</li>" for line in lines)
    heading = t._("Timeline")
    return f'<section id="timeline" data-live><h3>{_e(heading)}</h3><ol>{items}</ol></section>'


def _action_form(viewer: Viewer, request: Request, action: DeskAction, choices: RequestChoices) -> str:
    t = viewer.t
    fields = ""
    if action is DeskAction.REASSIGN:
        if not choices.targets:
            return ""
        options = "".join(_option(unit_value(unit), f"{t._(LEVEL_NAMES[unit.level])} · {name}", False)
                          for unit, name in choices.targets)
        fields = _select("target", t._("Hand over to"), [options], required=True)
    if action is DeskAction.DISPATCH:
        if not choices.departments:
            return ""
        options = "".join(_option(str(department_id), name, False) for department_id, name in choices.departments)
        fields = _select("department", t._("Department"), [options], required=True)
    if action in TEXT_LABELS:
        fields += (f'<label>{_e(t._(TEXT_LABELS[action]))}<textarea name="text" rows="2" maxlength="1000" required>'
                   f'</textarea></label>')
    return (f'<form class="action" method="post" action="/requests/{request.id}/{action.value}">{_csrf(viewer)}'
            f'{fields}<button type="submit">{_e(t._(ACTION_LABELS[action]))}</button></form>')


def request_page(ctx: Context, viewer: Viewer, request: Request, choices: RequestChoices, shown_photos: int,
                 said: str = "", refused: str = "") -> str:
    """The request's details, its photos (``shown_photos`` of them, served by the desk), timeline and actions."""
    t = viewer.t
    forms = "".join(_action_form(viewer, request, action, choices) for action in choices.actions)
    if not forms:
        nothing = t._("Your unit does not hold this request, so there is nothing for you to do on it.")
        forms = f'<p>{_e(nothing)}</p>'
    banner = ""
    if said:
        banner = f'<p class="said" role="status">{_e(said)}</p>'
    if refused:
        banner = f'<p class="refused" role="alert">{_e(refused)}</p>'
    back, actions = t._("Requests"), t._("Actions")
    body = (f'<p><a href="/requests">← {_e(back)}</a></p><h2>{_e(request.code)}</h2>{banner}'
            f'<div class="request">{_details(ctx, t, request, shown_photos)}<div>{_timeline(ctx, t, request)}'
            f'<section id="actions" data-live><h3>{_e(actions)}</h3>{forms}</section></div></div>')
    return document(t, request.code, body, viewer, live=f"request:{request.id}")


# --- the map ----------------------------------------------------------------------------------------------------

MAP_WIDTH = 1000.0
MAP_MARGIN = 20.0
MAP_MIN_HEIGHT = 300.0
MAP_MIN_SPAN = 0.01  # degrees
MAP_STATUS_CLASSES = {
    RequestStatus.NEW: "new",
    RequestStatus.ACCEPTED: "accepted",
    RequestStatus.RESOLVED: "resolved",
    RequestStatus.CLOSED: "closed",
    RequestStatus.WITHDRAWN: "withdrawn",
}


@dataclass(frozen=True)
class Projection:
    """Latitude and longitude onto the map's pixels: a plain equirectangular projection around the middle of
    what is shown, fine over a district (no tiles, nothing fetched from elsewhere)."""

    latitude: float  # of the middle
    longitude: float
    scale: float  # pixels per degree of longitude
    stretch: float  # degrees of longitude per degree of latitude, here
    height: float

    @staticmethod
    def around(places: Sequence[tuple[float, float]]) -> Projection:
        latitudes = [latitude for latitude, _ in places] or [0.0]
        longitudes = [longitude for _, longitude in places] or [0.0]
        south, north, west, east = min(latitudes), max(latitudes), min(longitudes), max(longitudes)
        stretch = 1 / max(math.cos(math.radians((south + north) / 2)), 0.1)
        # At least about a kilometre across, so one building is shown in the middle of its street.
        span = max(east - west, (north - south) * stretch, MAP_MIN_SPAN)
        scale = (MAP_WIDTH - 2 * MAP_MARGIN) / span
        height = max((north - south) * stretch * scale + 2 * MAP_MARGIN, MAP_MIN_HEIGHT)
        return Projection((south + north) / 2, (west + east) / 2, scale, stretch, height)

    def point(self, latitude: float, longitude: float) -> tuple[float, float]:
        x = MAP_WIDTH / 2 + (longitude - self.longitude) * self.scale
        y = self.height / 2 - (latitude - self.latitude) * self.stretch * self.scale
        return round(x, 1), round(y, 1)


def _map_svg(t: Translator, points: Sequence[MapPoint], buildings: Sequence[tuple[float, float]]) -> str:
    projection = Projection.around([*buildings, *((point.latitude, point.longitude) for point in points)])
    dots = "".join(f'<circle class="building" cx="{x}" cy="{y}" r="2"/>'
                   for x, y in (projection.point(*building) for building in buildings))
    marks = []
    late = t._("overdue")
    for point in points:
        x, y = projection.point(point.latitude, point.longitude)
        label = f"{point.code} · {t._(STATUS_FILTERS[point.status])}" + (f" · {late}" if point.overdue else "")
        status = MAP_STATUS_CLASSES[point.status] + (" late" if point.overdue else "")
        marks.append(f'<a href="/requests/{point.request_id}"><circle class="request {status}" cx="{x}" cy="{y}" '
                     f'r="6"><title>{_e(label)}</title></circle></a>')
    title = t._("Map of the requests")
    return (f'<svg class="map" viewBox="0 0 {MAP_WIDTH:.0f} {projection.height:.0f}" role="img" '
            f'aria-label="{_e(title)}">{dots}{"".join(marks)}</svg>')


def _legend(t: Translator) -> str:
    items = "".join(f'<li><span class="swatch {MAP_STATUS_CLASSES[status]}"></span>{_e(t._(label))}</li>'
                    for status, label in STATUS_FILTERS.items())
    late, building = t._("overdue"), t._("building")
    return (f'<ul class="legend">{items}<li><span class="swatch late"></span>{_e(late)}</li>'
            f'<li><span class="swatch building"></span>{_e(building)}</li></ul>')


def map_page(viewer: Viewer, filters: Filters, choices: ListChoices, points: Sequence[MapPoint],
             buildings: Sequence[tuple[float, float]], dates: tuple[str, str]) -> str:
    """The requests that pass the filters on a map of the area's buildings, coloured by status."""
    t = viewer.t
    title = t._("Map")
    shown = t.n_("{count} request with a location is shown (at most {limit}, the newest).",
                 "{count} requests with a location are shown (at most {limit}, the newest).",
                 len(points)).format(count=t.number(len(points)), limit=t.number(MAP_REQUESTS))
    body = (f'<h2>{_e(title)}</h2>{_filter_form(t, filters, choices, dates, action="/map")}'
            f'<section id="map" data-live><p class="hint">{_e(shown)}</p>{_legend(t)}'
            f'{_map_svg(t, points, buildings)}</section>')
    return document(t, title, body, viewer, live="list")
