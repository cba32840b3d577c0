"""Broadcasts: an admin's notice to everyone in an audience inside their own area.

Creating one materialises its recipients with a single INSERT ... SELECT in the confirming transaction; the
broadcast worker (``bot.broadcaster``) then streams them from the database in small batches, recording each
batch's outcome before it fetches the next, so a restart resumes with whoever has not been sent to yet.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, insert, literal, or_, select, update
from sqlalchemy.orm import Session

from bot.core.areas import admin_areas, in_admin_area, staff_condition
from bot.core.audit import AuditAction, record_action
from bot.core.messages import MAX_CAPTION, MAX_TEXT
from bot.core.units import LEVELS, Unit, area_name, contains, holder_name, ids_within, parent
from bot.i18n import Translator
from storage.models import (
    Broadcast,
    BroadcastRecipient,
    BroadcastStatus,
    Level,
    Person,
    RecipientStatus,
    StaffRole,
)

# Callback prefix of the Cancel button on a broadcast's progress message.
CANCEL_PREFIX = "bcx"


class Who(enum.StrEnum):
    RESIDENTS = "r"
    STAFF = "s"
    EVERYONE = "a"


# Stored audiences name a level by its initial ("c" for a community), as they always have.
_LEVEL_OF_INITIAL = {level.value[0]: level for level in LEVELS}
assert len(_LEVEL_OF_INITIAL) == len(LEVELS), "a stored audience needs a distinct initial for every level"


@dataclass(frozen=True)
class Audience:
    """Who a broadcast goes to: residents, staff or both, of one unit."""

    unit: Unit
    who: Who

    def to_json(self) -> dict[str, Any]:
        return {"scope": self.unit.level.value[0], "unit_id": self.unit.id, "who": self.who.value}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Audience:
        return cls(Unit(_LEVEL_OF_INITIAL[data["scope"]], int(data["unit_id"])), Who(data["who"]))


class BroadcastNotAllowed(Exception):
    """The audience lies outside the admin's area, or the person is no admin."""


class BroadcastEmpty(Exception):
    """Nobody would receive the broadcast."""


def may_address(session: Session, admin: Person, unit: Unit) -> bool:
    """Whether ``admin`` may send a notice to ``unit`` (it must lie inside one of their areas)."""
    return in_admin_area(session, admin, unit)


def _staff_area(session: Session, unit: Unit) -> Unit:
    # A building has no staff of its own: its grid's workers answer for it.
    if unit.level is Level.BUILDING:
        return parent(session, unit) or Unit(Level.GRID, 0)
    return unit


def recipient_condition(session: Session, audience: Audience) -> ColumnElement[bool]:
    """A condition on ``Person``: in the audience and not known to have blocked the bot."""
    parts: list[ColumnElement[bool]] = []
    if audience.who in (Who.RESIDENTS, Who.EVERYONE):
        buildings = ids_within(Level.BUILDING, audience.unit)
        if buildings is not None:
            parts.append(Person.building_id.in_(buildings))
    if audience.who in (Who.STAFF, Who.EVERYONE):
        staff = select(StaffRole.person_id).where(staff_condition(_staff_area(session, audience.unit)))
        parts.append(Person.id.in_(staff))
    return and_(or_(false(), *parts), Person.unreachable.is_(False))


def count_recipients(session: Session, audience: Audience) -> int:
    """How many people the broadcast would reach now (the preview's number)."""
    query = select(func.count()).select_from(Person).where(recipient_condition(session, audience))
    return int(session.scalar(query) or 0)


def with_header(session: Session, t: Translator, author: Person, audience: Audience, text: str) -> str:
    """The notice as residents receive it: a line saying which office sends it ("孔明社区通知"), then the text.

    The office is the author's own area that holds the audience, named in the author's language, which is
    the language the notice is written in.
    """
    office = next((area for area in admin_areas(author) if contains(session, area, audience.unit)), audience.unit)
    header = t._("📢 Notice from {office}").format(office=holder_name(session, t, office))
    return f"{header}\n\n{text}" if text.strip() else header


def check_text(text: str, photo: str | None) -> bool:
    """Whether the text fits one message (a photo's caption is shorter)."""
    limit = MAX_CAPTION if photo else MAX_TEXT
    return len(text) <= limit and bool(text.strip() or photo)


def create_broadcast(
    session: Session,
    author: Person,
    audience: Audience,
    text: str,
    photo: str | None,
    now: datetime,
    progress_message_id: int | None = None,
) -> Broadcast:
    """Create a confirmed broadcast with its recipients, for the worker to deliver.

    Raises ``BroadcastNotAllowed`` outside the author's area, ``BroadcastEmpty`` when nobody would receive it,
    ``ValueError`` for a text that does not fit a message.
    """
    if not may_address(session, author, audience.unit):
        raise BroadcastNotAllowed(f"{audience} is outside the area of person {author.id}")
    if not check_text(text, photo):
        raise ValueError("broadcast text is empty or too long")
    broadcast = Broadcast(
        author_id=author.id, audience=audience.to_json(), text=text, photo=photo, status=BroadcastStatus.SENDING,
        total=0, sent=0, failed=0, blocked=0, progress_message_id=progress_message_id, created_at=now,
    )
    session.add(broadcast)
    session.flush()
    people = select(
        literal(broadcast.id), Person.id, literal(RecipientStatus.PENDING, BroadcastRecipient.status.type), literal(0)
    ).where(recipient_condition(session, audience))
    result = session.execute(
        insert(BroadcastRecipient).from_select(["broadcast_id", "person_id", "status", "attempt"], people)
    )
    total = int(getattr(result, "rowcount", 0) or 0)
    if total <= 0:
        raise BroadcastEmpty(str(audience))
    broadcast.total = total
    record_action(
        session, author, AuditAction.BROADCAST_CREATED, now, broadcast_id=broadcast.id, recipients=total,
        **audience.to_json(),
    )
    return broadcast


def cancel_broadcast(session: Session, admin: Person, broadcast_id: int, now: datetime) -> Broadcast | None:
    """Ask the worker to stop a broadcast (it checks between batches); None if it no longer runs.

    Its author or an admin whose area holds its audience may cancel it; others get ``BroadcastNotAllowed``.
    """
    broadcast = session.get(Broadcast, broadcast_id)
    if broadcast is None:
        return None
    audience = Audience.from_json(broadcast.audience)
    if broadcast.author_id != admin.id and not may_address(session, admin, audience.unit):
        raise BroadcastNotAllowed(f"person {admin.id} may not cancel broadcast {broadcast_id}")
    if broadcast.status is not BroadcastStatus.SENDING:
        return None
    broadcast.status = BroadcastStatus.CANCELLED
    record_action(session, admin, AuditAction.BROADCAST_CANCELLED, now, broadcast_id=broadcast.id)
    return broadcast


# --- what the worker does, one unit of work at a time ----------------------------------------------------


@dataclass(frozen=True)
class Progress:
    status: BroadcastStatus
    total: int
    sent: int
    failed: int
    blocked: int

    @property
    def remaining(self) -> int:
        return max(0, self.total - self.sent - self.failed - self.blocked)


@dataclass(frozen=True)
class BroadcastJob:
    """What the worker needs to deliver one broadcast, read once."""

    id: int
    text: str
    photo: str | None
    author_id: int
    author_channel: str
    author_chat_id: str
    author_locale: str | None
    audience_label: str  # in the author's language
    progress_message_id: int | None


@dataclass(frozen=True)
class Target:
    """One recipient as the worker sends to them."""

    recipient_id: int
    channel: str
    chat_id: str


@dataclass(frozen=True)
class Outcome:
    recipient_id: int
    status: RecipientStatus
    attempts: int


def next_broadcast(session: Session) -> int | None:
    """The oldest broadcast the worker has not wound up (sending, or cancelled but not yet summarised)."""
    return session.scalar(
        select(Broadcast.id)
        .where(Broadcast.finished_at.is_(None), Broadcast.status != BroadcastStatus.FINISHED)
        .order_by(Broadcast.id)
        .limit(1)
    )


def load_job(session: Session, broadcast_id: int, t: Translator) -> BroadcastJob:
    broadcast = session.get_one(Broadcast, broadcast_id)
    author = broadcast.author
    return BroadcastJob(
        id=broadcast.id, text=broadcast.text, photo=broadcast.photo, author_id=author.id,
        author_channel=author.channel, author_chat_id=author.chat_id, author_locale=author.locale,
        audience_label=describe_audience(session, t, Audience.from_json(broadcast.audience)),
        progress_message_id=broadcast.progress_message_id,
    )


def set_progress_message(session: Session, broadcast_id: int, message_id: int) -> None:
    session.execute(update(Broadcast).where(Broadcast.id == broadcast_id).values(progress_message_id=message_id))


def record_outcomes(session: Session, broadcast_id: int, outcomes: list[Outcome]) -> None:
    """Mark a batch's recipients and add them to the broadcast's counts; blocked people become unreachable."""
    if not outcomes:
        return
    session.execute(
        update(BroadcastRecipient),
        [{"id": o.recipient_id, "status": o.status, "attempt": o.attempts} for o in outcomes],
    )
    counts = {status: sum(1 for o in outcomes if o.status is status) for status in RecipientStatus}
    session.execute(
        update(Broadcast)
        .where(Broadcast.id == broadcast_id)
        .values(
            sent=Broadcast.sent + counts[RecipientStatus.SENT],
            failed=Broadcast.failed + counts[RecipientStatus.FAILED],
            blocked=Broadcast.blocked + counts[RecipientStatus.BLOCKED],
        )
    )
    blocked_ids = [o.recipient_id for o in outcomes if o.status is RecipientStatus.BLOCKED]
    if blocked_ids:
        people = select(BroadcastRecipient.person_id).where(BroadcastRecipient.id.in_(blocked_ids))
        session.execute(update(Person).where(Person.id.in_(people)).values(unreachable=True))


def progress_of(session: Session, broadcast_id: int) -> Progress:
    row = session.execute(
        select(Broadcast.status, Broadcast.total, Broadcast.sent, Broadcast.failed, Broadcast.blocked).where(
            Broadcast.id == broadcast_id
        )
    ).one()
    return Progress(row.status, row.total, row.sent, row.failed, row.blocked)


def pending_batch(session: Session, broadcast_id: int, after_id: int, limit: int) -> list[Target]:
    """The next ``limit`` pending recipients after ``after_id``, in id order (keyset paging keeps it cheap)."""
    rows = session.execute(
        select(BroadcastRecipient.id, Person.channel, Person.chat_id)
        .join(Person, Person.id == BroadcastRecipient.person_id)
        .where(
            BroadcastRecipient.broadcast_id == broadcast_id,
            BroadcastRecipient.status == RecipientStatus.PENDING,
            BroadcastRecipient.id > after_id,
        )
        .order_by(BroadcastRecipient.id)
        .limit(limit)
    ).all()
    return [Target(row[0], row[1], row[2]) for row in rows]


def record_and_fetch(
    session: Session, broadcast_id: int, outcomes: list[Outcome], after_id: int, limit: int
) -> tuple[Progress, list[Target]]:
    """One hop per batch: record the last batch, read the status (cancelled?) and fetch the next batch."""
    record_outcomes(session, broadcast_id, outcomes)
    progress = progress_of(session, broadcast_id)
    if progress.status is not BroadcastStatus.SENDING or limit <= 0:
        return progress, []
    return progress, pending_batch(session, broadcast_id, after_id, limit)


def finish_broadcast(session: Session, broadcast_id: int, now: datetime) -> Progress:
    """Wind a broadcast up: finished (or left cancelled) with ``finished_at`` set."""
    broadcast = session.get_one(Broadcast, broadcast_id)
    if broadcast.status is BroadcastStatus.SENDING:
        broadcast.status = BroadcastStatus.FINISHED
    broadcast.finished_at = now
    return Progress(broadcast.status, broadcast.total, broadcast.sent, broadcast.failed, broadcast.blocked)


# --- texts for the author --------------------------------------------------------------------------------


def describe_audience(session: Session, t: Translator, audience: Audience) -> str:
    """"residents of 建设社区" and the like, in ``t``'s language."""
    unit = area_name(session, t, audience.unit)
    if audience.who is Who.RESIDENTS:
        return t._("residents of {unit}").format(unit=unit)
    if audience.who is Who.STAFF:
        return t._("staff of {unit}").format(unit=unit)
    return t._("residents and staff of {unit}").format(unit=unit)


def progress_text(t: Translator, broadcast_id: int, audience_label: str, progress: Progress, rate: float) -> str:
    """The progress message: counts so far and the time left at ``rate`` messages a second."""
    eta = t.duration(timedelta(seconds=max(1.0, progress.remaining / max(rate, 0.1))))
    return "\n".join(
        [
            t._("📣 Notice #{number} to {audience} is being sent.").format(
                number=broadcast_id, audience=audience_label
            ),
            counts_line(t, progress),
            t._("Remaining: {remaining} · about {eta} left").format(
                remaining=t.number(progress.remaining), eta=eta
            ),
        ]
    )


def counts_line(t: Translator, progress: Progress) -> str:
    return t._("Sent: {sent} · Failed: {failed} · Blocked the bot: {blocked}").format(
        sent=t.number(progress.sent), failed=t.number(progress.failed), blocked=t.number(progress.blocked)
    )


def summary_text(t: Translator, broadcast_id: int, audience_label: str, progress: Progress) -> str:
    """The final word on a broadcast: delivered, or stopped by the admin."""
    if progress.status is BroadcastStatus.CANCELLED:
        head = t._("⏹ Notice #{number} to {audience} was cancelled; {remaining} people did not get it.").format(
            number=broadcast_id, audience=audience_label, remaining=t.number(progress.remaining)
        )
    else:
        head = t._("✅ Notice #{number} to {audience} is done.").format(number=broadcast_id, audience=audience_label)
    return "\n".join([head, counts_line(t, progress)])


# --- the command line ------------------------------------------------------------------------------------


def recent_broadcasts(session: Session, limit: int = 50) -> list[Broadcast]:
    return list(session.scalars(select(Broadcast).order_by(Broadcast.id.desc()).limit(limit)))


def recipient_counts(session: Session, broadcast_id: int) -> dict[str, int]:
    """Recipients per status, counted from the recipient rows themselves."""
    rows = session.execute(
        select(BroadcastRecipient.status, func.count())
        .where(BroadcastRecipient.broadcast_id == broadcast_id)
        .group_by(BroadcastRecipient.status)
    ).all()
    return {str(status): int(count) for status, count in rows}


def audience_for_cli(session: Session, broadcast: Broadcast, t: Translator) -> str:
    try:
        return describe_audience(session, t, Audience.from_json(broadcast.audience))
    except (KeyError, ValueError):
        return str(broadcast.audience)

