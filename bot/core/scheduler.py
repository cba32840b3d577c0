"""When the scheduler acts, and how it makes sure it acts once.

Nothing here keeps time in memory: every due time is a column of the row it concerns or follows from the
calendar, so a restarted process finds exactly what is still due.

* Per request (checked every minute): ``Request.remind_at`` / ``escalate_at`` (set by the lifecycle whenever a
  request reaches a new holder), ``overdue_check_at`` (the due date until the overdue escalation clears it), and
  ``resolved_at`` with the ``reasked_at`` marker. Each scan is a range over one of the ``(status, column)`` indexes.
* Per period (daily digest, weekly feedback, monthly bulletin): one ``JobRun`` row per recipient and one for
  the finished period, under a unique key.

Claiming is what makes two processes on one database safe. A request is claimed by locking it with
``FOR UPDATE SKIP LOCKED`` (PostgreSQL; SQLite has a single writer) and then clearing or setting its marker with
an ``UPDATE`` that still requires the request to be due: the process that loses the race updates no row and
does nothing. A periodic piece is claimed by inserting its ``JobRun``; the unique key refuses a second one.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, CursorResult, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.core.meetings import MeetingDefaults
from storage.models import OPEN_STATUSES, JobRun, Level, Request, RequestStatus

# A resolution the resident has not answered is asked about once more, then closed.
REASK_AFTER = timedelta(days=3)
CLOSE_AFTER = timedelta(days=7)
# How many due requests of one kind a single run takes on; the next run continues with the rest.
BATCH_LIMIT = 500
WHOLE_PERIOD = ""


class JobKind(enum.StrEnum):
    REMIND = "remind"  # nobody accepted a new request in time: remind its holders
    ESCALATE_UNANSWERED = "escalate_unanswered"  # still nobody: up one level, reason "no response"
    ESCALATE_OVERDUE = "escalate_overdue"  # not resolved by its due date: up one level, the resident is told
    CLOSE_UNANSWERED = "close_unanswered"  # the resident never answered a resolution
    REASK = "reask"  # ask the resident once more whether it is fixed
    DAILY_DIGEST = "daily_digest"
    WEEKLY_FEEDBACK = "weekly_feedback"
    MONTHLY_BULLETIN = "monthly_bulletin"
    VOLUNTEER_REMIND = "volunteer_remind"  # the evening before and an hour before a claimed slot
    VOLUNTEER_CLOSE = "volunteer_close"  # a slot ended: mark its no-shows, ask its community's staff to rate
    MEETING_AGENDA = "meeting_agenda"  # the day before a community's three-party meeting: its agenda
    MEETING_REMIND = "meeting_remind"  # the day before a meeting decision's deadline: remind its owner
    RETENTION = "retention"  # once a day: delete handled updates and sent messages older than the retention
    CLOSE_PATROLS = "close_patrols"  # a night patrol still open at the end of the night window
    END_CAMPAIGNS = "end_campaigns"  # a focused campaign's last day is over: its owner gets the progress
    DEPARTMENT_OVERDUE = "dept_overdue"  # a department's deadline passed: remind it, tell its dispatcher


# Closing comes first so an old resolution is closed rather than asked about; escalating before reminding so
# a request that waited past both deadlines (the bot was down) is escalated rather than reminded.
REQUEST_JOBS = (
    JobKind.CLOSE_UNANSWERED,
    JobKind.REASK,
    JobKind.ESCALATE_UNANSWERED,
    JobKind.REMIND,
    JobKind.ESCALATE_OVERDUE,
    JobKind.DEPARTMENT_OVERDUE,
)
PERIODIC_JOBS = (JobKind.DAILY_DIGEST, JobKind.WEEKLY_FEEDBACK, JobKind.MONTHLY_BULLETIN)


@dataclass(frozen=True)
class SchedulerConfig:
    """Deployment facts the scheduler needs; built from ``bot.config.Settings``."""

    timezone: str = "Asia/Shanghai"
    default_locale: str = "zh_CN"
    quiet_hours_start: time = time(22, 0)
    quiet_hours_end: time = time(8, 0)
    digest_time: time = time(9, 0)
    # A periodic job missed for longer than this (the bot was down) is skipped rather than sent late and stale.
    daily_catch_up: timedelta = timedelta(hours=12)
    weekly_catch_up: timedelta = timedelta(days=2)
    monthly_catch_up: timedelta = timedelta(days=7)
    # Days handled updates and sent or failed messages are kept (bot.core.privacy).
    retention_days: int = 30
    # Local end of the night window: patrols still open then are closed (bot.core.rounds).
    night_end: time = time(6, 0)
    # Visits per grid worker per day where the grid sets no target (the day's collection in the digest).
    visit_target: int = 8
    meetings: MeetingDefaults = field(default_factory=MeetingDefaults)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class JobDescription:
    """One thing that is due: a request to act on (``request_id``) or a period of a periodic job."""

    kind: JobKind
    due_at: datetime
    request_id: int | None = None
    period: str = ""

    def __str__(self) -> str:
        subject = f"R-{self.request_id:06d}" if self.request_id is not None else self.period
        return f"{self.kind.value:<20} {subject:<12} due since {self.due_at:%Y-%m-%d %H:%M} UTC"


# --- quiet hours ----------------------------------------------------------------------------------------


def quiet_hours_end_after(moment: datetime, config: SchedulerConfig) -> datetime | None:
    """If ``moment`` falls in the residents' quiet hours, the instant they end; otherwise None."""
    local = moment.astimezone(config.zone)
    start, end = config.quiet_hours_start, config.quiet_hours_end
    clock_time = local.time().replace(tzinfo=None)
    if start == end:
        return None
    wraps_midnight = start > end
    quiet = (clock_time >= start or clock_time < end) if wraps_midnight else start <= clock_time < end
    if not quiet:
        return None
    end_day = local.date() + timedelta(days=1) if wraps_midnight and clock_time >= start else local.date()
    return datetime.combine(end_day, end, tzinfo=config.zone).astimezone(UTC)


def resident_not_before(moment: datetime, config: SchedulerConfig) -> datetime:
    """When a message to a resident written at ``moment`` may be sent."""
    return quiet_hours_end_after(moment, config) or moment


# --- periods --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """One occurrence of a periodic job: its key (``2026-11-25``, ``2026-W48``, ``2026-11``) and start."""

    kind: JobKind
    key: str
    starts_at: datetime


def _at_digest_time(day: date, config: SchedulerConfig) -> datetime:
    return datetime.combine(day, config.digest_time, tzinfo=config.zone).astimezone(UTC)


def _latest_start(now: datetime, config: SchedulerConfig, candidates: Sequence[date]) -> date:
    """The latest of ``candidates`` (newest first) whose digest time has passed at ``now``."""
    return next(day for day in candidates if _at_digest_time(day, config) <= now)


def current_period(kind: JobKind, now: datetime, config: SchedulerConfig) -> Period:
    """The latest occurrence of a periodic job that has started at ``now``."""
    today = now.astimezone(config.zone).date()
    if kind is JobKind.DAILY_DIGEST:
        day = _latest_start(now, config, [today, today - timedelta(days=1)])
        return Period(kind, day.isoformat(), _at_digest_time(day, config))
    if kind is JobKind.WEEKLY_FEEDBACK:
        monday = today - timedelta(days=today.weekday())
        day = _latest_start(now, config, [monday, monday - timedelta(days=7)])
        year, week, _weekday = day.isocalendar()
        return Period(kind, f"{year}-W{week:02d}", _at_digest_time(day, config))
    first = today.replace(day=1)
    previous_first = (first - timedelta(days=1)).replace(day=1)
    day = _latest_start(now, config, [first, previous_first])
    return Period(kind, f"{day.year:04d}-{day.month:02d}", _at_digest_time(day, config))


def _catch_up(kind: JobKind, config: SchedulerConfig) -> timedelta:
    return {
        JobKind.DAILY_DIGEST: config.daily_catch_up,
        JobKind.WEEKLY_FEEDBACK: config.weekly_catch_up,
        JobKind.MONTHLY_BULLETIN: config.monthly_catch_up,
    }[kind]


def due_period(session: Session, kind: JobKind, now: datetime, config: SchedulerConfig) -> Period | None:
    """The period of ``kind`` to run now: started, within its catch-up window, and not finished yet."""
    period = current_period(kind, now, config)
    if now >= period.starts_at + _catch_up(kind, config) or period_piece_done(session, period, WHOLE_PERIOD):
        return None
    return period


def period_piece_done(session: Session, period: Period, subject: str) -> bool:
    query = select(JobRun.id).where(
        JobRun.job == period.kind.value, JobRun.period == period.key, JobRun.subject == subject
    )
    return session.scalar(query) is not None


def claim_period_piece(session: Session, period: Period, subject: str, now: datetime) -> bool:
    """Take on one piece of a period (a recipient, or ``WHOLE_PERIOD``); False when it is done or taken."""
    if period_piece_done(session, period, subject):
        return False
    try:
        # A savepoint, so a concurrent process's row (the unique key) costs this piece only, not the transaction.
        with session.begin_nested():
            session.add(JobRun(job=period.kind.value, period=period.key, subject=subject, done_at=now))
            session.flush()
    except IntegrityError:
        return False
    return True


def retention_period(now: datetime, config: SchedulerConfig) -> Period:
    """Today's retention run: it may happen any time of the local day, and once."""
    today = now.astimezone(config.zone).date()
    return Period(JobKind.RETENTION, today.isoformat(), datetime.combine(today, time(0, 0), tzinfo=config.zone))


def due_retention(session: Session, now: datetime, config: SchedulerConfig) -> Period | None:
    period = retention_period(now, config)
    return None if period_piece_done(session, period, WHOLE_PERIOD) else period


# --- per-request jobs -----------------------------------------------------------------------------------


def due_condition(kind: JobKind, now: datetime) -> list[ColumnElement[bool]]:
    """What makes a request due for ``kind`` at ``now``."""
    if kind is JobKind.REMIND:
        return [Request.status == RequestStatus.NEW, Request.remind_at <= now]
    if kind is JobKind.ESCALATE_UNANSWERED:
        return [Request.status == RequestStatus.NEW, Request.escalate_at <= now]
    if kind is JobKind.ESCALATE_OVERDUE:
        # Reopening sets a new due date and with it a new check: a reopened request may go up again. A
        # department is not escalated; the check waits until the request is back with its dispatcher.
        return [Request.status.in_(OPEN_STATUSES), Request.overdue_check_at <= now,
                Request.level != Level.DEPARTMENT]
    if kind is JobKind.DEPARTMENT_OVERDUE:
        return [Request.status.in_(OPEN_STATUSES), Request.department_check_at <= now]
    if kind is JobKind.CLOSE_UNANSWERED:
        return [Request.status == RequestStatus.RESOLVED, Request.resolved_at <= now - CLOSE_AFTER]
    if kind is JobKind.REASK:
        return [
            Request.status == RequestStatus.RESOLVED, Request.resolved_at <= now - REASK_AFTER,
            Request.resolved_at > now - CLOSE_AFTER,
            or_(Request.reasked_at.is_(None), Request.reasked_at < Request.resolved_at),
        ]
    raise ValueError(f"{kind} is not a per-request job")


# What claiming a request for a job writes: the marker that makes the request no longer due for it.
def _claim_values(kind: JobKind, now: datetime) -> dict[str, Any]:
    values: dict[JobKind, dict[str, Any]] = {
        JobKind.REMIND: {"remind_at": None},
        JobKind.ESCALATE_UNANSWERED: {"escalate_at": None},
        JobKind.ESCALATE_OVERDUE: {"overdue_check_at": None, "overdue_escalated_at": now},
        JobKind.REASK: {"reasked_at": now},
        JobKind.DEPARTMENT_OVERDUE: {"department_check_at": None},
        # Closing changes the status itself (through the lifecycle), which is its own marker.
        JobKind.CLOSE_UNANSWERED: {},
    }
    return values[kind]


def _due_at_column(kind: JobKind) -> Any:
    return {
        JobKind.REMIND: Request.remind_at,
        JobKind.ESCALATE_UNANSWERED: Request.escalate_at,
        JobKind.ESCALATE_OVERDUE: Request.overdue_check_at,
        JobKind.CLOSE_UNANSWERED: Request.resolved_at,
        JobKind.REASK: Request.resolved_at,
        JobKind.DEPARTMENT_OVERDUE: Request.department_check_at,
    }[kind]


def _due_offset(kind: JobKind) -> timedelta:
    return {JobKind.CLOSE_UNANSWERED: CLOSE_AFTER, JobKind.REASK: REASK_AFTER}.get(kind, timedelta())


def due_requests(session: Session, kind: JobKind, now: datetime, limit: int = BATCH_LIMIT) -> list[JobDescription]:
    """Requests due for ``kind``, the longest waiting first (reads ids and times only)."""
    column = _due_at_column(kind)
    query = select(Request.id, column).where(*due_condition(kind, now)).order_by(column, Request.id).limit(limit)
    offset = _due_offset(kind)
    return [JobDescription(kind, due + offset, request_id=request_id) for request_id, due in session.execute(query)]


def claim_request(session: Session, kind: JobKind, request_id: int, now: datetime) -> Request | None:
    """Lock a request that is still due for ``kind`` and mark it taken; None if another process has it or it
    is no longer due. The claim holds until the transaction ends."""
    locked = select(Request.id).where(Request.id == request_id, *due_condition(kind, now))
    if session.scalar(locked.with_for_update(skip_locked=True)) is None:
        return None
    values = _claim_values(kind, now)
    if values:
        statement = (
            update(Request).where(Request.id == request_id, *due_condition(kind, now)).values(**values)
            .execution_options(synchronize_session=False)
        )
        if cast(CursorResult[Any], session.execute(statement)).rowcount != 1:
            return None
    request = session.get(Request, request_id, populate_existing=True)
    return request


# --- what is due ----------------------------------------------------------------------------------------


def due_jobs(session: Session, now: datetime, config: SchedulerConfig | None = None) -> list[JobDescription]:
    """Everything due at ``now``: periods of periodic jobs, then requests, per kind in the order they run."""
    config = config or SchedulerConfig()
    periods = [due_period(session, kind, now, config) for kind in PERIODIC_JOBS]
    jobs = [JobDescription(p.kind, p.starts_at, period=p.key) for p in periods if p is not None]
    retention = due_retention(session, now, config)
    if retention is not None:
        jobs.append(JobDescription(retention.kind, retention.starts_at, period=retention.key))
    for kind in REQUEST_JOBS:
        jobs += due_requests(session, kind, now)
    return jobs
