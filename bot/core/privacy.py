"""A person's data rights: the privacy notice, seeing and exporting what is stored, erasing it, and retention.

Erasure keeps the person's requests for the statistics (category, building, dates, status, stars) and removes
everything that says who filed them or in their own words: the person row becomes an anonymous tombstone, so
every foreign key still holds and the bulletin still counts the requests, and the chat starts afresh.

Retention deletes what the bot keeps only to run: handled updates (the raw messages people sent, with their
names, usernames and locations) and outgoing messages that were sent or failed. Both are pruned in small
batches along an index, each batch its own transaction, so pruning never holds the database for long.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import CursorResult, delete, func, select, tuple_, update
from sqlalchemy.orm import Session

from bot.core.roles import is_admin
from storage.models import (
    OPEN_STATUSES,
    EventKind,
    InboxUpdate,
    OutboxMessage,
    OutboxStatus,
    Person,
    Rating,
    Request,
    RequestEvent,
    RequestPhoto,
    RequestSupporter,
    WeChatChat,
)

# The channel of erased people: no engine serves it, so nothing is ever sent to a tombstone.
ERASED_CHANNEL = "erased"
# What an erased request's description becomes: the column may not be empty, and a dash reads the same in
# every language.
ERASED_TEXT = "—"
# A confirmation to erase is valid this long after it was asked for, and while the person stays at its step.
CONFIRMATION_VALID = timedelta(minutes=15)
CONFIRMATION_STATE = "privacy.erase"
PRUNE_BATCH = 500


class ErasureRefused(Exception):
    """Erasing is not allowed for this person (they hold a staff role)."""


# --- who sees residents' personal data -------------------------------------------------------------------


def may_see_personal_data(person: Person) -> bool:
    """Whether ``person`` may have residents' names and phones in a list of many requests (an export): the
    admins who answer for an area, not grid workers, departments or anyone outside the organisation. A
    resident who asked to stay anonymous is left out for everyone."""
    return is_admin(person)


# --- the notice -------------------------------------------------------------------------------------------


def needs_notice(person: Person) -> bool:
    return person.privacy_notice_at is None


def mark_notice_shown(person: Person, now: datetime) -> None:
    person.privacy_notice_at = now


# --- what is stored ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredData:
    """Counts of what is stored about one person, for the summary shown in the chat."""

    requests: int
    open_requests: int
    ratings: int
    supports: int


def stored_data(session: Session, person: Person) -> StoredData:
    own = select(func.count(Request.id)).where(Request.resident_id == person.id)
    rated = (
        select(func.count(Rating.request_id))
        .join(Request, Request.id == Rating.request_id)
        .where(Request.resident_id == person.id)
    )
    supports = select(func.count()).select_from(RequestSupporter).where(RequestSupporter.person_id == person.id)
    return StoredData(
        requests=session.scalar(own) or 0,
        open_requests=session.scalar(own.where(Request.status.in_(OPEN_STATUSES))) or 0,
        ratings=session.scalar(rated) or 0,
        supports=session.scalar(supports) or 0,
    )


def _when(moment: datetime | None, zone: ZoneInfo) -> str | None:
    return moment.astimezone(zone).isoformat(timespec="seconds") if moment is not None else None


def _actor(event: RequestEvent, person: Person) -> str:
    """Who acted, as the resident may know it: themselves, staff by name, the system, or an unnamed neighbour."""
    if event.actor_id is None:
        return "system"
    if event.actor_id == person.id:
        return "you"
    actor = event.actor
    if actor is not None and actor.roles:
        return f"staff: {actor.display_name}"
    return "another resident"


def _request_export(session: Session, request: Request, person: Person, locale: str, zone: ZoneInfo) -> dict[str, Any]:
    # Staff notes are internal to staff, as on the resident's own timeline, and may name other people.
    events = session.scalars(
        select(RequestEvent)
        .where(RequestEvent.request_id == request.id, RequestEvent.kind != EventKind.NOTE)
        .order_by(RequestEvent.at, RequestEvent.id)
    )
    rating = session.get(Rating, request.id)
    return {
        "code": request.code,
        "category": request.category.name(locale),
        "building": request.building.name if request.building is not None else None,
        "place": request.place.name if request.place is not None else None,
        "description": request.description,
        "latitude": request.latitude,
        "longitude": request.longitude,
        "name_hidden_from_handler": request.hide_identity,
        "status": request.status.value,
        "filed_at": _when(request.created_at, zone),
        "due_at": _when(request.due_at, zone),
        "accepted_at": _when(request.accepted_at, zone),
        "resolved_at": _when(request.resolved_at, zone),
        "closed_at": _when(request.closed_at, zone),
        "supporters": request.supporters,
        "photos": [
            {"file_id": photo.file_id, "sent_by": "handler" if photo.from_handler else "you"}
            for photo in request.photos
        ],
        "events": [
            {"at": _when(event.at, zone), "what": event.kind.value, "by": _actor(event, person), "text": event.text}
            for event in events
        ],
        "rating": None if rating is None else {
            "outcome": rating.outcome, "stars": rating.stars, "comment": rating.comment,
            "at": _when(rating.at, zone),
        },
    }


def export_data(session: Session, person: Person, now: datetime, locale: str, timezone: str) -> dict[str, Any]:
    """Everything stored about ``person``, as plain JSON-ready data (category names in ``locale``); nothing
    about other residents.

    Requests the person joined ("me too") appear by code, category and status only: their words are another
    resident's.
    """
    zone = ZoneInfo(timezone)
    building = person.building
    own = session.scalars(
        select(Request).where(Request.resident_id == person.id).order_by(Request.created_at, Request.id)
    )
    supported = session.execute(
        select(Request, RequestSupporter.created_at)
        .join(RequestSupporter, RequestSupporter.request_id == Request.id)
        .where(RequestSupporter.person_id == person.id)
        .order_by(RequestSupporter.created_at)
    )
    return {
        "exported_at": _when(now, zone),
        "person": {
            "channel": person.channel,
            "user_id": person.external_id,
            "chat_id": person.chat_id,
            "name": person.display_name,
            "language": person.locale,
            "phone": person.phone,
            "building": None if building is None else {
                "code": building.code, "name": building.name, "address": building.address,
            },
            "staff_roles": [{"role": role.role.value, "unit_id": role.unit_id} for role in person.roles],
            "first_contact_at": _when(person.created_at, zone),
            "privacy_notice_shown_at": _when(person.privacy_notice_at, zone),
            "current_step": person.state,
            "current_step_data": person.state_data or {},
        },
        "requests": [_request_export(session, request, person, locale, zone) for request in own],
        "supported_requests": [
            {"code": request.code, "category": request.category.name(locale), "status": request.status.value,
             "joined_at": _when(joined_at, zone)}
            for request, joined_at in supported
        ],
    }


# --- erasure ----------------------------------------------------------------------------------------------


def ask_for_confirmation(person: Person, now: datetime) -> str:
    """Put the person in the confirmation step and return the one-time token their confirm button carries."""
    token = secrets.token_hex(8)
    person.state = CONFIRMATION_STATE
    person.state_data = {"erase_token": token, "erase_asked_at": now.isoformat()}
    return token


def confirmation_is_valid(person: Person, token: str, now: datetime) -> bool:
    """The token this person was given when they asked to erase, pressed in time and while still at that step.

    Anyone else pressing (or forging) the button has no such token, and a second press finds the step over.
    """
    data = person.state_data or {}
    expected, asked_at = data.get("erase_token"), data.get("erase_asked_at")
    if person.state != CONFIRMATION_STATE or not isinstance(expected, str) or not isinstance(asked_at, str):
        return False
    if not secrets.compare_digest(expected, token):
        return False
    try:
        asked = datetime.fromisoformat(asked_at)
    except ValueError:
        return False
    return asked.tzinfo is not None and timedelta() <= now - asked <= CONFIRMATION_VALID


def _updated(session: Session, statement: Any) -> int:
    return cast(CursorResult[Any], session.execute(statement.execution_options(synchronize_session=False))).rowcount


def erase_person(session: Session, person: Person, now: datetime) -> Person:
    """Anonymise the person's requests, turn the person into a tombstone, and return the fresh person the
    chat continues with (only the chat's address and language, shown the notice again at the next message).

    Raises ``ErasureRefused`` while the person holds a staff role: their name is part of the record of what
    their unit did, and an administrator removes the role first.
    """
    if person.roles:
        raise ErasureRefused
    own = select(Request.id).where(Request.resident_id == person.id)
    # Hidden identity: staff views then say the resident stays anonymous instead of showing an empty name.
    _updated(session, update(Request).where(Request.resident_id == person.id)
             .values(description=ERASED_TEXT, latitude=None, longitude=None, hide_identity=True))
    resident_photos = (RequestPhoto.request_id.in_(own), RequestPhoto.from_handler.is_(False))
    _updated(session, delete(RequestPhoto).where(*resident_photos))
    _updated(session, update(Rating).where(Rating.request_id.in_(own)).values(comment=None))
    # What the person wrote anywhere (reasons for reopening, chasing...); staff entries stay with their work.
    _updated(session, update(RequestEvent).where(RequestEvent.actor_id == person.id).values(text=""))
    _remove_supports(session, person)
    # Pending messages to the person are never sent; sent ones hold texts about them and go too.
    _updated(session, delete(OutboxMessage).where(OutboxMessage.person_id == person.id))
    if person.channel == "wechat":
        _updated(session, delete(WeChatChat).where(WeChatChat.openid == person.external_id))
    channel, external_id, chat_id, locale = person.channel, person.external_id, person.chat_id, person.locale
    person.channel, person.external_id, person.chat_id = ERASED_CHANNEL, str(person.id), ""
    person.display_name, person.phone, person.locale, person.building = "", None, None, None
    person.state, person.state_data, person.unreachable = None, {}, True
    # The tombstone gives up the chat's address before the fresh person takes it (a unique key).
    session.flush()
    fresh = Person(channel=channel, external_id=external_id, chat_id=chat_id, display_name="", locale=locale,
                   state_data={}, created_at=now)
    session.add(fresh)
    session.flush()
    return fresh


def _remove_supports(session: Session, person: Person) -> None:
    joined = list(session.scalars(select(RequestSupporter.request_id).where(RequestSupporter.person_id == person.id)))
    if not joined:
        return
    _updated(session, delete(RequestSupporter).where(RequestSupporter.person_id == person.id))
    # The count is what cards and the bulletin show; it follows the rows it counts.
    _updated(session, update(Request).where(Request.id.in_(joined), Request.supporters > 0)
             .values(supporters=Request.supporters - 1))


# --- retention --------------------------------------------------------------------------------------------


def retention_cutoff(now: datetime, days: int) -> datetime:
    return now - timedelta(days=days)


def prune_inbox_batch(session: Session, cutoff: datetime, limit: int = PRUNE_BATCH) -> int:
    """Delete up to ``limit`` updates handled before ``cutoff``; returns how many.

    The whole row goes, key included: de-duplication needs the key only while the platform may still
    redeliver the update (hours at most), and an update never handled is never pruned.
    """
    oldest = (
        select(InboxUpdate.channel, InboxUpdate.update_id)
        .where(InboxUpdate.handled_at < cutoff)
        .order_by(InboxUpdate.handled_at)
        .limit(limit)
    )
    # One statement: the database walks the index for the keys and deletes them by primary key.
    return _updated(session, delete(InboxUpdate).where(tuple_(InboxUpdate.channel, InboxUpdate.update_id).in_(oldest)))


PRUNED_STATUSES = (OutboxStatus.SENT, OutboxStatus.FAILED, OutboxStatus.HELD)


def prune_outbox_batch(session: Session, cutoff: datetime, limit: int = PRUNE_BATCH) -> int:
    """Delete up to ``limit`` sent, failed or held messages due before ``cutoff``; returns how many.

    Held messages wait for a person who has not written yet (staff added before they opened the bot, a
    partner filing through Open311, who never will): past the retention they are dropped like the rest, or they
    would pile up for ever.

    ``not_before`` is never earlier than the row's creation, so the ``(status, not_before)`` index finds old
    rows without reading the recent ones.
    """
    old = (
        select(OutboxMessage.id)
        .where(OutboxMessage.status.in_(PRUNED_STATUSES), OutboxMessage.not_before < cutoff)
        .limit(limit)
    )
    return _updated(session, delete(OutboxMessage).where(OutboxMessage.id.in_(old)))
