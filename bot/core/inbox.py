"""Updates that cannot be handled: counted, then given up on as dead letters instead of retried forever.

An update whose handling raised (not because the database was unavailable) stays in the inbox unhandled, and
the sweep tries it again; after ``MAX_ATTEMPTS`` failures, or at once when no attempt can ever succeed (JSON
that is not an update), it is marked dead: done with, never tried again, kept with its error for operators.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import InboxUpdate

MAX_ATTEMPTS = 3
ERROR_LENGTH = 500


@dataclass(frozen=True)
class DeadUpdate:
    dead_at: datetime
    channel: str
    update_id: int
    attempts: int
    error: str


def record_failure(
    session: Session, channel: str, update_id: int, error: str, now: datetime, hopeless: bool = False
) -> bool:
    """Count a failed attempt at an update; True if it is dead now (and so should be answered once)."""
    row = session.scalars(
        select(InboxUpdate)
        .where(InboxUpdate.channel == channel, InboxUpdate.update_id == update_id)
        .with_for_update()
    ).first()
    if row is None or row.handled_at is not None:
        return False
    row.attempts += 1
    row.error = error[:ERROR_LENGTH]
    if hopeless or row.attempts >= MAX_ATTEMPTS:
        row.dead_at = now
        row.handled_at = now
        return True
    return False


def mark_ignored(session: Session, channel: str, update_id: int, now: datetime) -> None:
    """An update from nobody the bot talks to (a channel post, a group message): done with, nothing to do."""
    row = session.get(InboxUpdate, (channel, update_id), with_for_update=True)
    if row is not None and row.handled_at is None:
        row.handled_at = now


def dead_updates(session: Session, limit: int = 50) -> list[DeadUpdate]:
    """The most recent dead letters, newest first."""
    rows = session.scalars(
        select(InboxUpdate).where(InboxUpdate.dead_at.is_not(None)).order_by(InboxUpdate.dead_at.desc()).limit(limit)
    )
    return [
        DeadUpdate(row.dead_at, row.channel, row.update_id, row.attempts, row.error or "")
        for row in rows
        if row.dead_at is not None
    ]
