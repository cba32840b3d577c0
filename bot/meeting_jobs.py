"""The scheduler's meeting work: the agenda the day before each community's meeting, and the reminder the
day before a decision's deadline to the party that owns it.

An agenda is claimed by inserting its ``Meeting`` row (unique per community and time), a reminder by clearing
the decision's ``remind_at`` with a conditional ``UPDATE``, so two processes never send either twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from bot.core import meetings as core
from bot.core.app import PendingDelivery, write_outbox
from bot.core.messages import SendText, clip
from bot.core.scheduler import JobKind, SchedulerConfig
from bot.i18n import Translator, translator
from bot.meeting_wording import agenda_text, outcome_button, reminder_text
from storage.database import Database
from storage.models import Person

if TYPE_CHECKING:
    from bot.scheduler import RunReport

Written = list[PendingDelivery]
Isolated = Callable[[Database, Callable[[Session], Written | None], str], Awaitable[Written | None]]


def _translator(person: Person, config: SchedulerConfig) -> Translator:
    return translator(person.locale or config.default_locale, config.timezone)


def send_agenda(session: Session, community_id: int, now: datetime, config: SchedulerConfig,
                send_from: datetime) -> Written | None:
    meeting = core.claim_agenda(session, community_id, now, config.meetings)
    if meeting is None:
        return None
    agenda = core.agenda_of(session, meeting, config.meetings)
    out: list[tuple[Person, SendText]] = []
    for person in core.parties_and_staff(session, community_id):
        t = _translator(person, config)
        out.append((person, SendText(clip(agenda_text(t, meeting.community.name, agenda)))))
    return write_outbox(session, list(out), send_from, not_before=lambda _person: send_from)


def send_reminder(session: Session, decision_id: int, now: datetime, config: SchedulerConfig,
                  send_from: datetime) -> Written | None:
    decision = core.claim_reminder(session, decision_id, now)
    if decision is None or decision.done_at is not None:
        return None
    out: list[tuple[Person, SendText]] = []
    for person in core.representatives(session, decision.meeting.community_id, decision.owner):
        t = _translator(person, config)
        out.append((person, SendText(clip(reminder_text(t, decision)), outcome_button(t, decision))))
    return write_outbox(session, list(out), send_from, not_before=lambda _person: send_from)


async def run_meeting_jobs(database: Database, now: datetime, config: SchedulerConfig, report: RunReport,
                           send_from: datetime, isolated: Isolated) -> None:
    for community_id in await database.run(core.meeting_communities):
        work = partial(send_agenda, community_id=community_id, now=now, config=config, send_from=send_from)
        result = await isolated(database, work, f"meeting agenda of community {community_id}")
        if result is not None:
            report.add(JobKind.MEETING_AGENDA, result, send_from)
    while True:
        due = await database.run(partial(core.due_reminders, now=now))
        claimed = 0
        for decision_id in due:
            work = partial(send_reminder, decision_id=decision_id, now=now, config=config, send_from=send_from)
            result = await isolated(database, work, f"reminder of meeting decision {decision_id}")
            if result is not None:
                claimed += 1
                report.add(JobKind.MEETING_REMIND, result, send_from)
        if claimed == 0:
            break
