"""The scheduler's volunteer work: reminders before a claimed slot, and closing a slot once it is over.

Each slot carries its due times (``PostSlot.remind_evening_at``, ``remind_hour_at``, ``close_at``); a piece
is claimed by clearing its column with a conditional ``UPDATE`` (``bot.core.volunteers.claim_slot_timer``),
so two processes never send a reminder twice. Closing marks who never checked in as a no-show and asks the
community's staff to rate those who served.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from bot.core import volunteers as core
from bot.core.app import PendingDelivery, write_outbox
from bot.core.messages import SendText, inline
from bot.core.scheduler import JobKind, SchedulerConfig
from bot.i18n import Translator, translator
from bot.volunteer_wording import claim_actions, rate_button, reminder_text, slot_time
from storage.database import Database
from storage.models import Person, PostSlot

if TYPE_CHECKING:
    from bot.scheduler import RunReport

Written = list[PendingDelivery]
Isolated = Callable[[Database, Callable[[Session], Written | None], str], Awaitable[Written | None]]

PIECES: tuple[tuple[str, JobKind], ...] = (
    ("close_at", JobKind.VOLUNTEER_CLOSE),
    ("remind_hour_at", JobKind.VOLUNTEER_REMIND),
    ("remind_evening_at", JobKind.VOLUNTEER_REMIND),
)


def _remind(session: Session, slot: PostSlot, column: str, now: datetime, config: SchedulerConfig,
            out: list[tuple[Person, SendText]]) -> None:
    evening = column == "remind_evening_at"
    # An evening reminder the bot was too late for is dropped once the hour reminder is near or sent.
    if evening and (slot.remind_hour_at is None or slot.starts_at - now <= core.HOUR_REMINDER):
        return
    if not evening and slot.ends_at <= now:
        return
    for claim in core.active_claims(session, slot.id):
        person = claim.volunteer.person
        t = _translator(person, config)
        out.append((person, SendText(reminder_text(t, claim, evening), inline(claim_actions(t, claim)))))


def _close(session: Session, slot: PostSlot, now: datetime, config: SchedulerConfig,
           out: list[tuple[Person, SendText]]) -> None:
    claims = core.active_claims(session, slot.id)
    served = core.mark_no_shows(session, slot, now)
    missed = len(claims) - len(served)
    for staff in core.community_staff(session, slot.post.community_id):
        t = _translator(staff, config)
        text = t._("Volunteer slot over: {title}, {time}. {served} served, {missed} did not come.").format(
            title=slot.post.title, time=slot_time(t, slot), served=t.number(len(served)), missed=t.number(missed))
        if served:
            text += "\n" + t._("Rate their service:")
        out.append((staff, SendText(text, inline(*[[rate_button(t, claim)] for claim in served]))))


def _translator(person: Person, config: SchedulerConfig) -> Translator:
    return translator(person.locale or config.default_locale, config.timezone)


def run_slot_piece(session: Session, column: str, slot_id: int, now: datetime, config: SchedulerConfig,
                   send_from: datetime) -> list[PendingDelivery] | None:
    slot = core.claim_slot_timer(session, column, slot_id, now)
    if slot is None:
        return None
    out: list[tuple[Person, SendText]] = []
    if column == "close_at":
        _close(session, slot, now, config, out)
    else:
        _remind(session, slot, column, now, config, out)
    sendable: Callable[[Person], datetime] = lambda _person: send_from  # noqa: E731
    return write_outbox(session, list(out), send_from, not_before=sendable)


async def run_volunteer_jobs(database: Database, now: datetime, config: SchedulerConfig, report: RunReport,
                             send_from: datetime, isolated: Isolated) -> None:
    """Every slot due for a reminder or its close, batch after batch, each in its own transaction."""
    for column, kind in PIECES:
        while True:
            due = await database.run(partial(core.due_slots, column=column, now=now))
            claimed = 0
            for slot_id in due:
                work = partial(run_slot_piece, column=column, slot_id=slot_id, now=now, config=config,
                               send_from=send_from)
                result = await isolated(database, work, f"{column} of slot {slot_id}")
                if result is not None:
                    claimed += 1
                    report.add(kind, result, send_from)
            if claimed == 0:
                break
