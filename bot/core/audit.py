"""The audit log: every admin action, written in the transaction that performs it."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import AuditLog, Person


class AuditAction(enum.StrEnum):
    API_KEY_ISSUED = "api_key.issued"
    API_KEY_REVOKED = "api_key.revoked"
    BROADCAST_CREATED = "broadcast.created"
    BROADCAST_CANCELLED = "broadcast.cancelled"
    CATEGORY_CREATED = "category.created"
    CATEGORY_CHANGED = "category.changed"
    DESK_LINK_ISSUED = "desk.link_issued"
    DESK_SIGNED_IN = "desk.signed_in"
    DESK_SIGNED_OUT = "desk.signed_out"
    INVITE_CREATED = "invite.created"
    INVITE_USED = "invite.used"
    PERSONAL_DATA_EXPORTED = "requests.exported_personal"
    REQUESTS_IMPORTED = "requests.imported"
    STAFF_REMOVED = "staff.removed"
    TEAM_CHAT_LINKED = "team_chat.linked"
    TEAM_CHAT_UNLINKED = "team_chat.unlinked"


def record_action(
    session: Session, actor: Person | None, action: AuditAction, now: datetime, **details: Any
) -> AuditLog:
    """Add one audit entry; ``details`` must be JSON-serialisable."""
    entry = AuditLog(at=now, actor_id=actor.id if actor else None, action=action.value, details=details)
    session.add(entry)
    return entry


def recent_actions(session: Session, limit: int = 100) -> list[AuditLog]:
    """The newest ``limit`` entries, oldest first."""
    rows = list(session.scalars(select(AuditLog).order_by(AuditLog.id.desc()).limit(limit)))
    return rows[::-1]


def format_entry(entry: AuditLog) -> str:
    """One line for the command line: when, who, what, details."""
    actor = entry.actor
    who = f"{actor.display_name or '?'} ({actor.channel}:{actor.external_id})" if actor else "system"
    details = " ".join(f"{key}={value}" for key, value in sorted(entry.details.items()))
    return f"{entry.at:%Y-%m-%d %H:%M:%S} #{entry.id:<5} {entry.action:<20} {who}  {details}"
