"""Partner apps' keys for Open311 (``bot.desk.open311``): issued, listed and revoked from the command line.

A key is shown once, when issued; only its SHA-256 hash is stored, so a copy of the database does not let
anyone file as a partner. Each partner files as a ``Person`` of the ``open311`` channel named after it: the
staff's cards show that name, the request's timeline has it as the filer, and nothing is ever sent to it: the
background jobs leave it out as unreachable, and what the chat tells a filer is held, as for someone who has
not written yet (a partner follows its requests through Open311). Issuing and revoking are audited.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.audit import AuditAction, record_action
from storage.models import ApiKey, Person

CHANNEL = "open311"
MAX_NAME = 100
# 32 random bytes: guessing one is out of reach, and the hash needs no salt or slow function.
KEY_BYTES = 32


class ApiKeyError(Exception):
    """Why a key could not be issued or revoked, in English for the command line."""


@dataclass(frozen=True)
class IssuedKey:
    name: str
    key: str


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def issue_key(session: Session, name: str, now: datetime) -> IssuedKey:
    """A new key for the partner ``name`` (one active key per name); the key itself is returned only here."""
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise ApiKeyError(f"a partner's name is 1 to {MAX_NAME} characters")
    if active_keys(session, name):
        raise ApiKeyError(f"{name} already has a key; revoke it first with `gridbot apikey revoke --name {name}`")
    key = secrets.token_urlsafe(KEY_BYTES)
    session.add(ApiKey(name=name, key_hash=key_hash(key), person_id=partner_person(session, name, now).id,
                       created_at=now))
    record_action(session, None, AuditAction.API_KEY_ISSUED, now, partner=name)
    return IssuedKey(name, key)


def partner_person(session: Session, name: str, now: datetime) -> Person:
    """The person a partner files as: found again by its name when it gets a new key."""
    person = session.scalars(select(Person).where(Person.channel == CHANNEL, Person.external_id == name)).first()
    if person is None:
        person = Person(channel=CHANNEL, external_id=name, chat_id="", display_name=name, state_data={},
                        created_at=now, awaiting_first_message=True, unreachable=True)
        session.add(person)
        session.flush()
    return person


def active_keys(session: Session, name: str) -> list[ApiKey]:
    query = select(ApiKey).where(ApiKey.name == name, ApiKey.revoked_at.is_(None))
    return list(session.scalars(query))


def revoke_key(session: Session, name: str, now: datetime) -> None:
    """Revoke the partner's active key: from now on it is refused."""
    keys = active_keys(session, name.strip())
    if not keys:
        raise ApiKeyError(f"{name} has no active key")
    for key in keys:
        key.revoked_at = now
    record_action(session, None, AuditAction.API_KEY_REVOKED, now, partner=name.strip())


def list_keys(session: Session) -> list[ApiKey]:
    """Every key issued, by partner and then oldest first."""
    return list(session.scalars(select(ApiKey).order_by(ApiKey.name, ApiKey.id)))


def partner_of_key(session: Session, key: str) -> Person | None:
    """The person the partner holding ``key`` files as, or None for an unknown or revoked key."""
    if not key:
        return None
    found = session.scalars(select(ApiKey).where(ApiKey.key_hash == key_hash(key), ApiKey.revoked_at.is_(None)))
    api_key = found.first()
    return api_key.person if api_key is not None else None
