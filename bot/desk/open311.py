"""Open311 GeoReport v2 over HTTP, for partner apps and FixMyStreet-style clients: an aiohttp sub-application
that the desk mounts at ``/open311/v2/`` and ``gridbot open311`` serves on its own.

Every resource answers in JSON or XML after its suffix (``services.json``, ``requests.xml``), errors too, as
the specification's list of errors (``[{"code": 400, "description": "..."}]``). Reading needs no key and shows
only the public record (``bot.core.open311``); filing (``POST requests``) needs a partner's ``api_key``
(``gridbot apikey add``). Texts are in the deployment's language, or the ``locale`` a call names.

A filed request's cards are written to the outbox like a background job's: the running bot's outbox loop
sends them to the grid worker (and the unit's team chat) within about a second.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial
from typing import Any
from xml.etree.ElementTree import Element, SubElement, tostring
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy.orm import Session

from bot.core import open311 as core
from bot.core.app import write_outbox
from bot.core.clock import Clock
from bot.core.context import Context, CoreConfig
from bot.core.messages import Unsupported
from bot.core.requests import RequestRefused
from bot.core.units import Unit, holder_name
from bot.i18n import N_, Translator, available_locales, negotiate_locale, translator
from bot.wording import due_text, post_to_team_chat, refusal_text, send_cards
from storage.database import Database, DatabaseUnavailable
from storage.models import Priority

PREFIX = "/open311/v2"
FORMATS = ("json", "xml")
CONTENT_TYPES = {"json": "application/json", "xml": "text/xml"}
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
# When the resources last changed shape (the discovery file's changeset).
CHANGESET = "2026-12-01T00:00:00Z"
# A form holds a description and a few short fields; anything larger is not a partner's request.
MAX_BODY = 64 * 1024
NEW_REQUEST_HEADLINE = N_("📥 New request {code}")
CONFIG_KEY = web.AppKey("open311_config", CoreConfig)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def open311_app(database: Database, clock: Clock, config: CoreConfig) -> web.Application:
    """The GeoReport v2 resources, relative to where the application is mounted."""
    api = Open311(database, clock, config)
    app = web.Application(middlewares=[spec_errors])
    app[CONFIG_KEY] = config
    formats = "{format:json|xml}"
    app.router.add_get(f"/discovery.{formats}", api.discovery)
    app.router.add_get(f"/services.{formats}", api.services)
    app.router.add_get(f"/services/{{code}}.{formats}", api.service_definition)
    app.router.add_get(f"/requests.{formats}", api.requests)
    app.router.add_post(f"/requests.{formats}", api.file_request)
    app.router.add_get(f"/requests/{{id}}.{formats}", api.one_request)
    return app


def standalone_app(database: Database, clock: Clock, config: CoreConfig) -> web.Application:
    """Open311 under ``/open311/v2/``, as the desk serves it, for ``gridbot open311``."""
    root = web.Application(client_max_size=MAX_BODY)
    root.add_subapp(PREFIX, open311_app(database, clock, config))
    return root


# --- answers ----------------------------------------------------------------------------------------------


def format_of(request: web.Request) -> str:
    """The format the path asks for; JSON for a path with none we know (the error must say something)."""
    wanted = request.match_info.get("format") or request.path.rpartition(".")[2]
    return wanted if wanted in FORMATS else "json"


def answer(request: web.Request, root: str, item: str, rows: list[dict[str, Any]], status: int = 200) -> web.Response:
    """A list of ``rows`` as a JSON array, or as XML: ``<root><item>…</item>…</root>``."""
    return document(request, rows, root, {root: [{item: row} for row in rows]}, status)


def document(request: web.Request, body: object, root: str, xml: dict[str, Any], status: int = 200) -> web.Response:
    """``body`` as JSON, or ``xml`` (one root element holding fields) as XML, after the path's format."""
    fmt = format_of(request)
    if fmt == "json":
        text = json.dumps(body, ensure_ascii=False)
    else:
        top = Element(root)
        xml_fields(top, xml[root])
        text = '<?xml version="1.0" encoding="utf-8"?>' + tostring(top, encoding="unicode")
    return web.Response(text=text, status=status, content_type=CONTENT_TYPES[fmt], charset="utf-8")


def xml_fields(parent: Element, value: Any) -> None:
    """A dict's items as child elements, a list's entries one after the other, anything else as text."""
    if isinstance(value, dict):
        for name, inner in value.items():
            xml_fields(SubElement(parent, name), inner)
    elif isinstance(value, list):
        for entry in value:
            xml_fields(parent, entry)
    elif value is not None:
        parent.text = str(value).lower() if isinstance(value, bool) else str(value)


def error_answer(request: web.Request, status: int, description: str) -> web.Response:
    return answer(request, "errors", "error", [{"code": status, "description": description}], status)


@web.middleware
async def spec_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every refusal as the specification's error list, in the format asked for: what the core refused, a
    path we do not serve (404), a method it does not take (405), a body too large (413), a database that does
    not answer (503)."""
    t = reader(request)
    try:
        return await handler(request)
    except core.Open311Refused as error:
        return error_answer(request, error.status, t._(error.reason).format(**error.params))
    except RequestRefused as error:
        return error_answer(request, 400, refusal_text(t, error))
    except DatabaseUnavailable:
        return error_answer(request, 503, t._(HTTP_REASONS[503]))
    except web.HTTPException as error:
        if error.status < 400:
            raise
        return error_answer(request, error.status, t._(HTTP_REASONS.get(error.status, HTTP_OTHER)))


HTTP_REASONS = {
    404: N_("There is no such resource."),
    405: N_("This resource does not take that method."),
    413: N_("The request is too large."),
    503: N_("The service is busy right now. Please try again in a moment."),
}
HTTP_OTHER = N_("The request cannot be served.")


def reader(request: web.Request) -> Translator:
    """The caller's translator: the ``locale`` it names (``zh_CN``, ``en``), else the deployment's."""
    config: CoreConfig = request.config_dict[CONFIG_KEY]
    wanted = request.query.get("locale")
    locale = negotiate_locale(wanted, config.default_locale) if wanted else config.default_locale
    return translator(locale if locale in available_locales() else config.default_locale, config.timezone)


# --- reading the form and the query -----------------------------------------------------------------------


def moment(value: str, name: str) -> datetime | None:
    """An ISO 8601 date-time with its offset (``2026-11-25T10:00:00+08:00`` or ``…Z``); None when empty."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise core.Open311Refused(400, N_("{name} must be an ISO 8601 date and time with its offset."), name=name)
    return parsed


def coordinate(value: str, name: str, limit: float) -> float | None:
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or abs(number) > limit:
        raise core.Open311Refused(400, N_("{name} must be a number of degrees (WGS-84)."), name=name)
    return number


def listed(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def search_of(query: Any) -> core.Search:
    ids = []
    for code in listed(query.get("service_request_id", "")):
        request_id = core.request_id_of(code)
        if request_id is None:
            raise core.Open311Refused(400, N_("service_request_id {code} is not a request code."), code=code[:20])
        ids.append(request_id)
    statuses = []
    for status in listed(query.get("status", "")):
        if status not in core.PublicStatus.__members__.values():
            raise core.Open311Refused(400, N_("status is open or closed."))
        statuses.append(core.PublicStatus(status))
    return core.Search(
        ids=tuple(ids), service_codes=tuple(listed(query.get("service_code", ""))),
        start=moment(query.get("start_date", ""), "start_date"), end=moment(query.get("end_date", ""), "end_date"),
        statuses=tuple(statuses),
    )


def filing_of(form: Any) -> core.Filing:
    # The description is checked by the chat's rule when filed; the body's size bounds it before that.
    return core.Filing(
        service_code=str(form.get("service_code", "")).strip(),
        description=str(form.get("description", "")),
        latitude=coordinate(str(form.get("lat", "")).strip(), "lat", 90.0),
        longitude=coordinate(str(form.get("long", "")).strip(), "long", 180.0),
        address_id=str(form.get("address_id", "")).strip(),
    )


def iso(moment: datetime, config: CoreConfig) -> str:
    """ISO 8601 with the deployment's offset, as the specification wants (``2026-11-25T10:00:00+08:00``)."""
    return moment.astimezone(ZoneInfo(config.timezone)).replace(microsecond=0).isoformat()


def request_row(view: core.PublicRequest, config: CoreConfig) -> dict[str, Any]:
    return {
        "service_request_id": view.service_request_id,
        "status": view.status.value,
        "status_notes": view.status_notes,
        "service_name": view.service_name,
        "service_code": view.service_code,
        "description": view.description,
        "agency_responsible": view.agency_responsible,
        "service_notice": "",
        "requested_datetime": iso(view.requested_datetime, config),
        "updated_datetime": iso(view.updated_datetime, config),
        "expected_datetime": iso(view.expected_datetime, config),
        "address": view.address,
        "address_id": view.address_id,
        "zipcode": "",
        "lat": view.latitude,
        "long": view.longitude,
        "media_url": "",
    }


# --- the resources ----------------------------------------------------------------------------------------


class Open311:
    def __init__(self, database: Database, clock: Clock, config: CoreConfig) -> None:
        self.database = database
        self.clock = clock
        self.config = config

    async def discovery(self, request: web.Request) -> web.Response:
        """Where the resources are and in which formats (the specification's service discovery)."""
        root = str(request.url.with_query(None).with_path(request.path.rpartition("/")[0] + "/"))
        endpoint = {"specification": SPECIFICATION, "url": root, "changeset": CHANGESET, "type": "production",
                    "formats": list(CONTENT_TYPES.values())}
        body = {"changeset": CHANGESET, "contact": "", "key_service": "gridbot apikey add", "endpoints": [endpoint]}
        xml_endpoint = {**endpoint, "formats": [{"format": value} for value in CONTENT_TYPES.values()]}
        return document(request, body, "discovery", {"discovery": {**body, "endpoints": {"endpoint": xml_endpoint}}})

    async def services(self, request: web.Request) -> web.Response:
        t = reader(request)
        found = await self.database.run(partial(core.services, locale=t.locale))
        rows = [{"service_code": item.code, "service_name": item.name, "description": item.name,
                 "metadata": False, "type": "realtime", "keywords": "", "group": ""} for item in found]
        return answer(request, "services", "service", rows)

    async def service_definition(self, request: web.Request) -> web.Response:
        t = reader(request)
        item = await self.database.run(partial(core.service, code=request.match_info["code"], locale=t.locale))
        # No service asks for attributes beyond the specification's own fields.
        row = {"service_code": item.code, "attributes": []}
        return document(request, row, "service_definition", {"service_definition": row})

    async def requests(self, request: web.Request) -> web.Response:
        search = search_of(request.query)
        api_key = request.query.get("api_key", "")
        work = partial(self._search, search=search, now=self.clock(), t=reader(request), api_key=api_key)
        found = await self.database.run(work)
        return answer(request, "service_requests", "request", [request_row(view, self.config) for view in found])

    async def one_request(self, request: web.Request) -> web.Response:
        request_id = core.request_id_of(request.match_info["id"])
        api_key = request.query.get("api_key", "")
        work = partial(self._one, request_id=request_id, t=reader(request), api_key=api_key)
        view = await self.database.run(work)
        return answer(request, "service_requests", "request", [request_row(view, self.config)])

    async def file_request(self, request: web.Request) -> web.Response:
        # The application that mounts this one sets the limit its reader enforces; a partner's form is small.
        if (request.content_length or 0) > MAX_BODY:
            raise web.HTTPRequestEntityTooLarge(MAX_BODY, request.content_length or 0)
        form = await request.post()
        t = reader(request)
        filing = filing_of(form)
        work = partial(self._file, api_key=str(form.get("api_key", "")), filing=filing, now=self.clock(), t=t)
        code, notice = await self.database.run(work)
        return answer(request, "service_requests", "request", [{"service_request_id": code, "service_notice": notice}])

    # --- units of work ---

    @staticmethod
    def _search(session: Session, search: core.Search, now: datetime, t: Translator,
                api_key: str) -> list[core.PublicRequest]:
        return core.search_requests(session, search, now, t, core.reader_of_key(session, api_key))

    @staticmethod
    def _one(session: Session, request_id: int | None, t: Translator, api_key: str) -> core.PublicRequest:
        return core.public_request(session, request_id, t, core.reader_of_key(session, api_key))

    def _file(self, session: Session, api_key: str, filing: core.Filing, now: datetime,
              t: Translator) -> tuple[str, str]:
        """File the request and write its cards for the holders, as the chat does after a resident confirms."""
        change = core.file_for_partner(session, api_key, filing, now, self.config.open311_daily_limit)
        filed = change.request
        ctx = Context(session=session, person=filed.resident, event=Unsupported("open311"), now=now,
                      config=self.config)
        send_cards(ctx, change.notify, filed, NEW_REQUEST_HEADLINE)
        post_to_team_chat(ctx, filed, NEW_REQUEST_HEADLINE)
        write_outbox(session, ctx.outgoing, now, not_before=lambda _person: now, priority=Priority.NOTICE)
        notice = t._("Filed as {code}, sent to {holder}; due by {due}.").format(
            code=filed.code, holder=holder_name(session, t, Unit(filed.level, filed.unit_id)),
            due=due_text(t, filed))
        return filed.code, notice
