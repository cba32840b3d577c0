"""Who may use the desk (the district center's web view) and how they sign in without a password.

A staff member sends ``/desk`` to the bot and gets a link holding a random token, valid ``LINK_LIFETIME`` and
good for one sign-in. Opening it starts a browser session whose cookie holds another random token. Only the
SHA-256 of either token is stored, so a copy of the database signs nobody in. Every page checks the session
here (``person_of_session``): it ends after ``IDLE_TIMEOUT`` without use, after ``SESSION_LIFETIME`` in any
case, on sign-out, and as soon as the person no longer holds an admin role.

The desk is for the admins of a community, a street or the district, each limited to their area
(``bot.core.areas``); grid workers and departments are refused: their work is the requests their own unit
holds, which ``/tasks`` in the chat already lists.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.core.audit import AuditAction, record_action
from bot.core.roles import is_admin
from bot.i18n import N_
from storage.models import DeskLink, DeskSession, Person

LINK_LIFETIME = timedelta(minutes=10)
IDLE_TIMEOUT = timedelta(hours=2)
SESSION_LIFETIME = timedelta(hours=12)
# A session's last use is written at most this often, so reading pages does not write on every request.
SEEN_GRANULARITY = timedelta(minutes=1)
TOKEN_BYTES = 32


class DeskRefused(Exception):
    """Signing in or using the desk is refused; ``reason`` is an English message id."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


NOT_FOR_YOU = N_("The desk is for the staff of a community, a street or the district center.")
LINK_UNKNOWN = N_("This sign-in link is not valid. Send /desk to the bot for a new one.")
LINK_USED = N_("This sign-in link was used already. Each link signs in once: send /desk to the bot for a new one.")
LINK_EXPIRED = N_(
    "This sign-in link has expired (links are valid for 10 minutes). Send /desk to the bot for a new one.")


def may_use_desk(person: Person) -> bool:
    return is_admin(person)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_link(session: Session, person: Person, now: datetime) -> str:
    """A new single-use sign-in token for ``person``; audited (without the token)."""
    if not may_use_desk(person):
        raise DeskRefused(NOT_FOR_YOU)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    link = DeskLink(token_hash=token_hash(token), person_id=person.id, created_at=now,
                    expires_at=now + LINK_LIFETIME)
    session.add(link)
    session.flush()
    record_action(session, person, AuditAction.DESK_LINK_ISSUED, now, link=link.id)
    return token


def open_link(session: Session, token: str, now: datetime) -> tuple[str, Person]:
    """Use a sign-in token once: a new session's token and whose session it is."""
    link = session.scalar(select(DeskLink).where(DeskLink.token_hash == token_hash(token)))
    if link is None:
        raise DeskRefused(LINK_UNKNOWN)
    # Marking it used is a conditional UPDATE, so two browsers opening the same link at once get one session.
    claimed = session.execute(
        update(DeskLink).where(DeskLink.id == link.id, DeskLink.used_at.is_(None)).values(used_at=now))
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise DeskRefused(LINK_USED)
    if now >= link.expires_at:
        raise DeskRefused(LINK_EXPIRED)
    person = session.get(Person, link.person_id)
    if person is None or not may_use_desk(person):
        raise DeskRefused(NOT_FOR_YOU)
    session_token = secrets.token_urlsafe(TOKEN_BYTES)
    desk_session = DeskSession(token_hash=token_hash(session_token), person_id=person.id, created_at=now,
                               last_seen_at=now)
    session.add(desk_session)
    session.flush()
    record_action(session, person, AuditAction.DESK_SIGNED_IN, now, link=link.id, desk_session=desk_session.id)
    return session_token, person


def _live_session(session: Session, token: str, now: datetime) -> DeskSession | None:
    found = session.scalar(select(DeskSession).where(DeskSession.token_hash == token_hash(token)))
    if found is None or found.ended_at is not None:
        return None
    if now - found.last_seen_at >= IDLE_TIMEOUT or now - found.created_at >= SESSION_LIFETIME:
        return None
    return found


def person_of_session(session: Session, token: str, now: datetime) -> Person | None:
    """The person signed in with this session token, or None when it is unknown, ended or expired, or the
    person may no longer use the desk."""
    found = _live_session(session, token, now)
    if found is None or not may_use_desk(found.person):
        return None
    if now - found.last_seen_at >= SEEN_GRANULARITY:
        found.last_seen_at = now
    return found.person


def live_person(session: Session, token: str, now: datetime) -> Person | None:
    """``person_of_session`` without counting this as a use (a page's live stream asks)."""
    found = _live_session(session, token, now)
    return found.person if found is not None and may_use_desk(found.person) else None


def sign_out(session: Session, token: str, now: datetime) -> None:
    found = _live_session(session, token, now)
    if found is not None:
        found.ended_at = now
        record_action(session, found.person, AuditAction.DESK_SIGNED_OUT, now, desk_session=found.id)


def csrf_token(session_token: str) -> str:
    """The token every form of this session carries: derived from the session's secret, so it needs no storage
    and a page of another session (or another site) cannot know it."""
    return hmac.new(session_token.encode(), b"desk-csrf", hashlib.sha256).hexdigest()


def csrf_matches(session_token: str, given: str) -> bool:
    return hmac.compare_digest(csrf_token(session_token).encode(), given.encode())
