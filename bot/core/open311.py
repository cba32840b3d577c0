"""Open311 GeoReport v2 as use cases: the services (our categories), the public view of requests, and a partner
app filing one (the HTTP side, formats and errors are ``bot.desk.open311``).

What anyone may read is the public record of a problem: its code, category, status, the unit holding it, when
it was filed, last changed and is due, and where it is (a building's or place's address, its coordinates).
Nobody's name, phone or chat id is part of it, nor the resident's own words: a description is shown only to the
partner that filed it (as the chat never shows one resident's words to a neighbour). A hidden resident is thus
as hidden here as in the chat.

A partner's request is filed exactly like a chat one (``requests.file_request``): located by ``places.locate``
or by a building's or place's code, checked like the chat's description, routed to the grid's worker.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, lazyload

from bot.core import places
from bot.core import requests as core
from bot.core.api_keys import partner_of_key
from bot.core.binding import building_by_code
from bot.core.units import DISTRICT, Unit, holder_name, own_names
from bot.i18n import N_, Translator
from storage.models import OPEN_STATUSES, Category, Person, Request, RequestEvent, RequestStatus

# The specification's defaults: a search spans at most 90 days (the latest 90 when none is given) and
# answers at most 1000 requests.
MAX_SPAN = timedelta(days=90)
MAX_RESULTS = 1000
# A code quoted back in an error is cut to this length (it is whatever the caller sent).
MAX_CODE = 60


class PublicStatus(enum.StrEnum):
    """The specification's two statuses: a resolution waiting for the resident's answer is closed for the
    public, as it is done as far as the units are concerned."""

    OPEN = "open"
    CLOSED = "closed"


STATUSES_OF: dict[PublicStatus, tuple[RequestStatus, ...]] = {
    PublicStatus.OPEN: OPEN_STATUSES,
    PublicStatus.CLOSED: (RequestStatus.RESOLVED, RequestStatus.CLOSED, RequestStatus.WITHDRAWN),
}

STATUS_NOTES = {
    RequestStatus.NEW: N_("waiting to be accepted"),
    RequestStatus.ACCEPTED: N_("being handled"),
    RequestStatus.RESOLVED: N_("resolved, waiting for the resident's confirmation"),
    RequestStatus.CLOSED: N_("closed"),
    RequestStatus.WITHDRAWN: N_("withdrawn"),
}


class Open311Refused(Exception):
    """A call the specification answers with an error: ``status`` is its HTTP code (400, 403, 404),
    ``reason`` an English message id that ``params`` fill in."""

    def __init__(self, status: int, reason: str, **params: Any) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.params = params


@dataclass(frozen=True)
class Service:
    code: str
    name: str


@dataclass(frozen=True)
class PublicRequest:
    """A request as the public sees it (see the module's docstring for what is left out)."""

    service_request_id: str
    status: PublicStatus
    status_notes: str
    service_name: str
    service_code: str
    description: str
    agency_responsible: str
    requested_datetime: datetime
    updated_datetime: datetime
    expected_datetime: datetime
    address: str
    address_id: str
    latitude: float | None
    longitude: float | None


@dataclass(frozen=True)
class Search:
    """The filters of ``GET requests``; ``ids`` (request ids) override all the others, as the spec says."""

    ids: tuple[int, ...] = ()
    service_codes: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    statuses: tuple[PublicStatus, ...] = ()


@dataclass(frozen=True)
class Filing:
    """What a partner posts: the service (a category's code), a description, and where: ``latitude`` and
    ``longitude``, or ``address_id`` (a building's or place's code)."""

    service_code: str
    description: str
    latitude: float | None = None
    longitude: float | None = None
    address_id: str = ""


# --- services ---------------------------------------------------------------------------------------------


def services(session: Session, locale: str) -> list[Service]:
    """The categories residents may file under now, in the chat's order."""
    return [Service(category.code, category.name(locale)) for category in core.categories_for_filing(session)]


def service(session: Session, code: str, locale: str) -> Service:
    category = active_category(session, code)
    if category is None:
        raise Open311Refused(404, N_("There is no service {code}."), code=code[:MAX_CODE])
    return Service(category.code, category.name(locale))


def active_category(session: Session, code: str) -> Category | None:
    return session.scalars(select(Category).where(Category.code == code, Category.active.is_(True))).first()


# --- reading requests -------------------------------------------------------------------------------------


def request_id_of(text: str) -> int | None:
    """The request a ``service_request_id`` names: our code (``R-000123``) or its bare number."""
    text = text.strip()
    if text.isascii() and text.isdigit() and len(text) <= 9:
        return int(text)
    return core.parse_code(text)


def search_requests(
    session: Session, search: Search, now: datetime, t: Translator, partner: Person | None = None
) -> list[PublicRequest]:
    """The requests matching ``search``, newest first, at most ``MAX_RESULTS``; ``partner`` (from a valid
    key) also sees the descriptions of what it filed."""
    query = select(Request).options(*PUBLIC_LOADING)
    if search.ids:
        query = query.where(Request.id.in_(search.ids))
    else:
        start, end = search_range(search, now)
        query = query.where(Request.created_at >= start, Request.created_at <= end)
        if search.service_codes:
            query = query.join(Category, Category.id == Request.category_id).where(
                Category.code.in_(search.service_codes))
        if search.statuses:
            query = query.where(Request.status.in_([s for status in search.statuses for s in STATUSES_OF[status]]))
    found = list(session.scalars(query.order_by(Request.created_at.desc(), Request.id.desc()).limit(MAX_RESULTS)))
    return public_views(session, found, t, partner)


# The public view shows neither the resident, nor who accepted it, nor photos: they are not loaded.
PUBLIC_LOADING = (lazyload(Request.resident), lazyload(Request.assignee), lazyload(Request.photos))


def search_range(search: Search, now: datetime) -> tuple[datetime, datetime]:
    """From ``start`` to ``end``: the latest 90 days when neither is given, 90 days from the one given;
    refused when they span more or end before they start."""
    start, end = search.start, search.end
    if start is None and end is None:
        return now - MAX_SPAN, now
    if start is None:
        assert end is not None
        return end - MAX_SPAN, end
    if end is None:
        return start, start + MAX_SPAN
    if end < start:
        raise Open311Refused(400, N_("end_date is before start_date."))
    if end - start > MAX_SPAN:
        raise Open311Refused(400, N_("start_date and end_date may be at most {days} days apart."),
                             days=MAX_SPAN.days)
    return start, end


def public_request(
    session: Session, request_id: int | None, t: Translator, partner: Person | None = None
) -> PublicRequest:
    request = session.get(Request, request_id) if request_id is not None else None
    if request is None:
        raise Open311Refused(404, N_("There is no such request."))
    return public_views(session, [request], t, partner)[0]


def public_views(
    session: Session, found: Sequence[Request], t: Translator, partner: Person | None
) -> list[PublicRequest]:
    updated = last_changes(session, [request.id for request in found])
    units = {Unit(request.level, request.unit_id) for request in found}
    names = own_names(session, units)
    district = holder_name(session, t, DISTRICT)
    holders = {unit: district if unit == DISTRICT else names.get(unit, "?") for unit in units}
    return [public_view(request, t, partner, updated.get(request.id), holders[Unit(request.level, request.unit_id)])
            for request in found]


def last_changes(session: Session, request_ids: list[int]) -> dict[int, datetime]:
    """When each request last changed: its latest event (one grouped query for the whole page)."""
    if not request_ids:
        return {}
    rows = session.execute(
        select(RequestEvent.request_id, func.max(RequestEvent.at))
        .where(RequestEvent.request_id.in_(request_ids)).group_by(RequestEvent.request_id)
    )
    return {int(request_id): at for request_id, at in rows}


def public_view(
    request: Request, t: Translator, partner: Person | None, updated: datetime | None, holder: str
) -> PublicRequest:
    unit = request.building or request.place
    latitude, longitude = (request.latitude, request.longitude) if request.latitude is not None else (
        (unit.latitude, unit.longitude) if unit is not None else (None, None))
    closed = request.status in STATUSES_OF[PublicStatus.CLOSED]
    own = partner is not None and request.resident_id == partner.id
    return PublicRequest(
        service_request_id=request.code,
        status=PublicStatus.CLOSED if closed else PublicStatus.OPEN,
        status_notes=t._(STATUS_NOTES[request.status]),
        service_name=request.category.name(t.locale),
        service_code=request.category.code,
        description=request.description if own else "",
        agency_responsible=holder,
        requested_datetime=request.created_at,
        updated_datetime=max(updated or request.created_at, request.created_at),
        expected_datetime=request.due_at,
        address=(unit.address or unit.name) if unit is not None else "",
        address_id=unit.code if unit is not None else "",
        latitude=latitude,
        longitude=longitude,
    )


# --- filing -----------------------------------------------------------------------------------------------


def partner_or_refuse(session: Session, api_key: str) -> Person:
    partner = partner_of_key(session, api_key)
    if partner is None:
        raise Open311Refused(403, N_("The api_key is missing, unknown or revoked."))
    return partner


def reader_of_key(session: Session, api_key: str) -> Person | None:
    """Who reads: anyone (None) without a key, the partner with a valid one; a wrong key is refused rather
    than read as no key, so a partner is not left wondering where its descriptions went."""
    return partner_or_refuse(session, api_key) if api_key else None


def file_for_partner(session: Session, api_key: str, filing: Filing, now: datetime,
                     daily_limit: int) -> core.Change:
    """File the partner's request as the person its key files as; it goes where a chat request about the same
    spot goes. Partners are not held to the residents' daily limit, since a partner files for many people,
    but to ``daily_limit`` in 24 hours (429 beyond it), so a runaway client cannot flood the workers' chats;
    a key that misbehaves is revoked."""
    partner = partner_or_refuse(session, api_key)
    filed = session.scalar(select(func.count(Request.id)).where(
        Request.resident_id == partner.id, Request.created_at > now - timedelta(days=1)))
    if (filed or 0) >= daily_limit:
        raise Open311Refused(429, N_("This api_key filed {limit} requests in the last 24 hours, as many as it may. "
                                     "Try again later."), limit=daily_limit)
    category = active_category(session, filing.service_code)
    if category is None:
        raise Open311Refused(400, N_("service_code {code} is not one of our services."),
                             code=filing.service_code[:MAX_CODE])
    spot = spot_of_filing(session, filing)
    draft = core.Draft(category_id=category.id, description=filing.description, latitude=filing.latitude,
                       longitude=filing.longitude)
    return core.file_request(session, partner, draft, now, None, spot=spot)


def spot_of_filing(session: Session, filing: Filing) -> places.Spot:
    """Where the filing is about: its ``address_id``, else its coordinates."""
    if filing.address_id:
        building = building_by_code(session, filing.address_id)
        if building is not None and building.active:
            return places.spot_of_building(building)
        place = places.place_by_code(session, filing.address_id)
        if place is not None:
            return places.spot_of_place(place)
        raise Open311Refused(400, N_("address_id {code} is none of our buildings or places."),
                             code=filing.address_id[:MAX_CODE])
    if filing.latitude is None or filing.longitude is None:
        raise Open311Refused(400, N_("Say where the problem is: lat and long, or address_id."))
    spot = places.locate(session, filing.latitude, filing.longitude)
    if spot is None:
        raise Open311Refused(400, N_("This location is in none of our grids."))
    return spot
