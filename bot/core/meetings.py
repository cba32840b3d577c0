"""The weekly three-party meeting (三方联席会商) of a community: the residents' committee, the owners' committee
and the property company.

A community's staff invite each party's representatives (a ``MeetingMember`` row whose token a representative
opens); a community meets once any representative has joined. The meeting falls on the community's weekday and
time (``MeetingSchedule``, else the settings' default); the day before, the scheduler writes the ``Meeting`` row
(its unique key sends the agenda once) and sends the agenda: the community's open requests of property
categories and the open decisions of its earlier meetings. Afterwards staff record who attended and the
decisions, each about a request or standing alone, owned by one party with a deadline. The owner is reminded
the day before the deadline; its outcome, like the decision, is written on the request's timeline.

Every rule about who may do what is here: only the community's own staff invite, schedule and record; only the
owner party's representatives (or the community's staff) report an outcome. Refusals raise ``MeetingRefused``.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.core import requests
from bot.core.categories import PROPERTY_CATEGORY_CODES
from bot.core.volunteers import community_staff, is_community_staff
from bot.i18n import N_
from storage.models import (
    OPEN_STATUSES,
    Category,
    Community,
    EventKind,
    Grid,
    Meeting,
    MeetingDecision,
    MeetingMember,
    MeetingParty,
    MeetingSchedule,
    Person,
    Request,
)

DEEP_LINK_PREFIX = "m_"
AGENDA_BEFORE = timedelta(days=1)
REMIND_BEFORE = timedelta(days=1)
# A deadline given as a date means the end of the working day.
DEADLINE_TIME = time(18, 0)
MAX_TEXT = 1000
MAX_AGENDA = 30


class MeetingRefused(Exception):
    """A meeting use case that may not happen; ``reason`` is an English message id, ``params`` fill it in."""

    def __init__(self, reason: str, **params: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.params = params


NOT_COMMUNITY_STAFF = N_("Only the staff of this community may do that.")
NO_SUCH_THING = N_("This is no longer available.")
INVITE_USED = N_("This invitation was already used.")
BAD_SCHEDULE = N_("Give the weekday as 1 (Monday) to 7 (Sunday) and the time as HH:MM, like: /meeting time 4 15:00")
NOT_YET_HELD = N_("This meeting has not been held yet.")
BAD_DEADLINE = N_("The deadline must be a date after the meeting, like 2026-12-10.")
EMPTY_TEXT = N_("Please write it as text, at most {limit} characters.")
NOT_THE_OWNER = N_("Only the party owning this decision, or the community's staff, may report its outcome.")
ALREADY_DONE = N_("The outcome of this decision was already reported.")
NOT_ON_AGENDA = N_("This request is not of this community.")


@dataclass(frozen=True)
class MeetingDefaults:
    """The deployment's defaults (``bot.config.Settings``): the weekday (0 Monday), the local time, and the codes
    of the categories the property company answers for."""

    weekday: int = 3
    at: time = time(15, 0)
    property_categories: tuple[str, ...] = PROPERTY_CATEGORY_CODES
    timezone: str = "Asia/Shanghai"


def _require_staff(person: Person, community_id: int) -> None:
    if not is_community_staff(person, community_id):
        raise MeetingRefused(NOT_COMMUNITY_STAFF)


# --- the parties --------------------------------------------------------------------------------------------


def invite(session: Session, staff: Person, community_id: int, party: MeetingParty, now: datetime) -> MeetingMember:
    """An invitation for one representative of ``party``; whoever opens its link represents the party."""
    _require_staff(staff, community_id)
    member = MeetingMember(community_id=community_id, party=party, token=secrets.token_urlsafe(12),
                           invited_by_id=staff.id, created_at=now)
    session.add(member)
    session.flush()
    return member


def join(session: Session, person: Person, token: str, now: datetime) -> MeetingMember:
    member = session.scalars(select(MeetingMember).where(MeetingMember.token == token)).first()
    if member is None:
        raise MeetingRefused(NO_SUCH_THING)
    if member.person_id is not None:
        raise MeetingRefused(INVITE_USED)
    member.person_id, member.joined_at = person.id, now
    session.flush()
    session.refresh(member)
    return member


def members(session: Session, community_id: int) -> list[MeetingMember]:
    """The representatives who joined, by party."""
    return list(session.scalars(
        select(MeetingMember).where(MeetingMember.community_id == community_id, MeetingMember.person_id.is_not(None))
        .order_by(MeetingMember.party, MeetingMember.id)
    ))


def representatives(session: Session, community_id: int, party: MeetingParty) -> list[Person]:
    """Who speaks for ``party``; the community's staff speak for the residents' committee until it has its own."""
    people = [member.person for member in members(session, community_id)
              if member.party is party and member.person is not None]
    if not people and party is MeetingParty.RESIDENTS:
        return community_staff(session, community_id)
    return people


def parties_and_staff(session: Session, community_id: int) -> list[Person]:
    """Everyone the agenda goes to: every representative and the community's staff, each once."""
    people: dict[int, Person] = {}
    for person in [*community_staff(session, community_id),
                   *(member.person for member in members(session, community_id) if member.person is not None)]:
        people.setdefault(person.id, person)
    return list(people.values())


# --- the schedule -------------------------------------------------------------------------------------------


def set_schedule(session: Session, staff: Person, community_id: int, weekday: int, at: time) -> MeetingSchedule:
    _require_staff(staff, community_id)
    if not 0 <= weekday <= 6:
        raise MeetingRefused(BAD_SCHEDULE)
    schedule = session.get(MeetingSchedule, community_id)
    if schedule is None:
        schedule = MeetingSchedule(community_id=community_id)
        session.add(schedule)
    schedule.weekday, schedule.at = weekday, at.strftime("%H:%M")
    session.flush()
    return schedule


def schedule_of(session: Session, community_id: int, defaults: MeetingDefaults) -> tuple[int, time]:
    schedule = session.get(MeetingSchedule, community_id)
    if schedule is None:
        return defaults.weekday, defaults.at
    return schedule.weekday, time.fromisoformat(schedule.at)


def next_meeting(session: Session, community_id: int, now: datetime, defaults: MeetingDefaults) -> datetime:
    """The next meeting that has not started at ``now``."""
    weekday, at = schedule_of(session, community_id, defaults)
    zone = ZoneInfo(defaults.timezone)
    today = now.astimezone(zone).date()
    day = today + timedelta(days=(weekday - today.weekday()) % 7)
    moment = datetime.combine(day, at, tzinfo=zone)
    return moment if moment > now else moment + timedelta(days=7)


# --- the agenda ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Agenda:
    meeting: Meeting
    requests: tuple[Request, ...]
    open_decisions: tuple[MeetingDecision, ...]


def property_requests(session: Session, community_id: int, codes: Sequence[str]) -> list[Request]:
    """The community's open requests of the property categories, oldest first."""
    if not codes:
        return []
    query = (
        select(Request).join(Grid, Grid.id == Request.grid_id)
        .join(Category, Category.id == Request.category_id)
        .where(Grid.community_id == community_id, Request.status.in_(OPEN_STATUSES), Category.code.in_(codes))
        .order_by(Request.created_at, Request.id).limit(MAX_AGENDA)
    )
    return list(session.scalars(query))


def open_decisions(session: Session, community_id: int, before: datetime) -> list[MeetingDecision]:
    """Decisions of the community's meetings before ``before`` still without an outcome."""
    query = (
        select(MeetingDecision).join(Meeting, Meeting.id == MeetingDecision.meeting_id)
        .where(Meeting.community_id == community_id, Meeting.held_at < before, MeetingDecision.done_at.is_(None))
        .order_by(MeetingDecision.deadline, MeetingDecision.id)
    )
    return list(session.scalars(query))


def agenda_of(session: Session, meeting: Meeting, defaults: MeetingDefaults) -> Agenda:
    return Agenda(meeting, tuple(property_requests(session, meeting.community_id, defaults.property_categories)),
                  tuple(open_decisions(session, meeting.community_id, meeting.held_at)))


def meeting_communities(session: Session) -> list[int]:
    """Communities with at least one representative: the ones that meet."""
    query = select(MeetingMember.community_id).where(MeetingMember.person_id.is_not(None)).distinct()
    return sorted(session.scalars(query))


def claim_agenda(session: Session, community_id: int, now: datetime, defaults: MeetingDefaults) -> Meeting | None:
    """The community's next meeting when its agenda is due (the day before) and this process is the one to send
    it; None otherwise."""
    held_at = next_meeting(session, community_id, now, defaults)
    if now < held_at - AGENDA_BEFORE:
        return None
    try:
        # A savepoint, so a concurrent process's row (the unique key) costs this community only.
        with session.begin_nested():
            meeting = Meeting(community_id=community_id, held_at=held_at, agenda_sent_at=now, attended=[])
            session.add(meeting)
            session.flush()
    except IntegrityError:
        return None
    session.refresh(meeting)
    return meeting


# --- after the meeting --------------------------------------------------------------------------------------


def get_meeting(session: Session, staff: Person, meeting_id: int, now: datetime) -> Meeting:
    meeting = session.get(Meeting, meeting_id)
    if meeting is None:
        raise MeetingRefused(NO_SUCH_THING)
    _require_staff(staff, meeting.community_id)
    if meeting.held_at > now:
        raise MeetingRefused(NOT_YET_HELD)
    return meeting


def last_meetings(session: Session, community_id: int, now: datetime, limit: int = 3) -> list[Meeting]:
    """The community's meetings already held, the latest first."""
    query = select(Meeting).where(Meeting.community_id == community_id, Meeting.held_at <= now)
    return list(session.scalars(query.order_by(Meeting.held_at.desc()).limit(limit)))


def toggle_attendance(session: Session, staff: Person, meeting_id: int, party: MeetingParty, now: datetime) -> Meeting:
    meeting = get_meeting(session, staff, meeting_id, now)
    present = [value for value in meeting.attended if value != party.value]
    if len(present) == len(meeting.attended):
        present.append(party.value)
    meeting.attended = sorted(present)
    meeting.recorded_at = now
    session.flush()
    return meeting


def add_decision(
    session: Session, staff: Person, meeting_id: int, request_id: int | None, text: str, owner: MeetingParty,
    deadline: datetime, now: datetime,
) -> MeetingDecision:
    """A decision of a held meeting; one about a request is written on the request's timeline."""
    meeting = get_meeting(session, staff, meeting_id, now)
    text = (text or "").strip()
    if not text or len(text) > MAX_TEXT:
        raise MeetingRefused(EMPTY_TEXT, limit=MAX_TEXT)
    if deadline <= meeting.held_at:
        raise MeetingRefused(BAD_DEADLINE)
    request = session.get(Request, request_id) if request_id else None
    if request_id and (request is None or requests.community_of(request) != meeting.community_id):
        raise MeetingRefused(NOT_ON_AGENDA)
    remind_at = deadline - REMIND_BEFORE
    decision = MeetingDecision(
        meeting_id=meeting.id, request_id=request.id if request is not None else None, text=text, owner=owner,
        deadline=deadline, remind_at=remind_at if remind_at > now else now, created_by_id=staff.id, created_at=now,
    )
    session.add(decision)
    meeting.recorded_at = now
    session.flush()
    if request is not None:
        requests.record_meeting_event(session, request, EventKind.MEETING_DECIDED, staff, text, now)
    session.refresh(decision)
    return decision


def may_report(session: Session, person: Person, decision: MeetingDecision) -> bool:
    community_id = decision.meeting.community_id
    owners = representatives(session, community_id, decision.owner)
    return is_community_staff(person, community_id) or any(owner.id == person.id for owner in owners)


def report_outcome(session: Session, person: Person, decision_id: int, outcome: str, now: datetime) -> MeetingDecision:
    """The owner party says what came of the decision; a linked request's timeline shows it."""
    decision = session.get(MeetingDecision, decision_id)
    if decision is None:
        raise MeetingRefused(NO_SUCH_THING)
    if not may_report(session, person, decision):
        raise MeetingRefused(NOT_THE_OWNER)
    if decision.done_at is not None:
        raise MeetingRefused(ALREADY_DONE)
    outcome = (outcome or "").strip()
    if not outcome or len(outcome) > MAX_TEXT:
        raise MeetingRefused(EMPTY_TEXT, limit=MAX_TEXT)
    decision.outcome, decision.done_at, decision.remind_at = outcome, now, None
    session.flush()
    if decision.request is not None:
        requests.record_meeting_event(session, decision.request, EventKind.MEETING_DONE, person, outcome, now)
    return decision


# --- the scheduler's reminders ------------------------------------------------------------------------------


def due_reminders(session: Session, now: datetime, limit: int = 200) -> list[int]:
    query = select(MeetingDecision.id).where(MeetingDecision.remind_at.is_not(None), MeetingDecision.remind_at <= now)
    return list(session.scalars(query.order_by(MeetingDecision.remind_at, MeetingDecision.id).limit(limit)))


def claim_reminder(session: Session, decision_id: int, now: datetime) -> MeetingDecision | None:
    """Clear a decision's due reminder; the decision when this process won it, None when another one did."""
    done = session.execute(
        update(MeetingDecision)
        .where(MeetingDecision.id == decision_id, MeetingDecision.remind_at.is_not(None),
               MeetingDecision.remind_at <= now)
        .values(remind_at=None).execution_options(synchronize_session=False)
    )
    if getattr(done, "rowcount", 0) != 1:
        return None
    decision = session.get(MeetingDecision, decision_id)
    if decision is not None:
        session.refresh(decision)
    return decision


def community_name(session: Session, community_id: int) -> str:
    return session.get_one(Community, community_id).name
