"""What a restarted playground takes up from its own database: update ids above those it recorded, and its
clock no earlier than it was."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bot.engines.telegram import CHANNEL
from storage.models import InboxUpdate, PlaygroundMarker


def last_update_id(session: Session) -> int:
    """The highest Telegram update id the inbox holds, 0 when it holds none."""
    return int(session.scalar(select(func.max(InboxUpdate.update_id)).where(InboxUpdate.channel == CHANNEL)) or 0)


def saved_clock_offset(session: Session, real_now: datetime) -> timedelta:
    """How far ahead of ``real_now`` the clock starts: as far as it was moved, and at least as far as the
    latest update received, so nothing recorded lies in the future (the system clock may have gone back)."""
    saved = timedelta(seconds=session.scalar(select(func.max(PlaygroundMarker.clock_offset_seconds))) or 0)
    latest = session.scalar(select(func.max(InboxUpdate.received_at)))
    return max(saved, latest - real_now if latest is not None else timedelta())


def save_clock_offset(session: Session, offset: timedelta) -> None:
    session.execute(update(PlaygroundMarker).values(clock_offset_seconds=int(offset.total_seconds())))
