"""The scheduler: reminders, automatic escalation, the daily digest, weekly feedback and the monthly bulletin.

``run_due_jobs(database, now)`` does whatever is due at ``now`` and nothing twice: each request or recipient
is claimed and handled in its own transaction (see ``bot.core.scheduler``), together with the messages it
causes, which go to the outbox. Messages to residents that fall in the quiet hours wait there (``not_before``)
until the morning; staff are told at any hour, since escalations and reminders are work they are on duty for.

``run_scheduler`` repeats that every minute in a running bot; ``gridbot jobs run --at`` and the playground
call ``run_due_jobs`` directly with the instant they want (the playground at each digest time its clock
moved past), which is how tests travel in time. What a run writes may be sent from ``send_from`` on (the real
now for ``jobs run --at``, so a run "as of tomorrow" is not held until tomorrow); it defaults to ``now``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.core import campaigns, rounds
from bot.core import requests as core
from bot.core.app import PendingDelivery, write_outbox
from bot.core.areas import admin_areas
from bot.core.bulletin import Bulletin, Month, bulletin_recipients, compute_bulletin
from bot.core.bulletin_render import BulletinDocuments, bulletin_documents
from bot.core.clock import Clock, system_clock
from bot.core.context import Context, CoreConfig
from bot.core.messages import Button, SendDocument, SendText, Unsupported, clip, inline
from bot.core.outbox import OutboxSender
from bot.core.privacy import prune_inbox_batch, prune_outbox_batch, retention_cutoff
from bot.core.router import callback
from bot.core.scheduler import (
    CLOSE_AFTER,
    PERIODIC_JOBS,
    REQUEST_JOBS,
    WHOLE_PERIOD,
    JobKind,
    Period,
    SchedulerConfig,
    claim_period_piece,
    claim_request,
    due_period,
    due_requests,
    due_retention,
    period_piece_done,
    resident_not_before,
)
from bot.core.units import LEVEL_OF_ROLE, Unit, own_name
from bot.i18n import N_, Translator, translator
from bot.meeting_jobs import run_meeting_jobs
from bot.rounds_wording import (
    campaign_progress_text,
    collection_text,
    overdue_text,
    patrol_summary_text,
)
from bot.volunteer_jobs import run_volunteer_jobs
from bot.wording import (
    RESIDENT_PREFIX,
    announce_move,
    event_label,
    holder_text,
    notify_staff_text,
    open_button,
    refresh_cards,
    request_line,
    send_cards,
    status_text,
    tell,
    tell_resident,
    verdict_keyboard,
)
from storage.database import Database, DatabaseUnavailable
from storage.models import OPEN_STATUSES, Campaign, EventKind, Level, Person, Request, RequestEvent, Role, StaffRole

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

DIGEST_OLDEST = 5
# The weekly feedback lists at most this many of a resident's open requests.
FEEDBACK_LIMIT = 10


@dataclass
class RunReport:
    """What one run did: pieces of work per job, how many messages it wrote and those sendable now."""

    done: Counter[JobKind] = field(default_factory=Counter)
    messages: int = 0
    deliveries: list[PendingDelivery] = field(default_factory=list)

    def add(self, kind: JobKind, written: list[PendingDelivery], now: datetime) -> None:
        self.done[kind] += 1
        self.messages += len(written)
        self.deliveries += [delivery for delivery in written if (delivery.not_before or now) <= now]

    def __str__(self) -> str:
        jobs = ", ".join(f"{kind.value} {count}" for kind, count in sorted(self.done.items())) or "nothing was due"
        return f"{jobs}; {self.messages} message(s) written"


# --- writing the messages -------------------------------------------------------------------------------


def system_context(session: Session, now: datetime, config: SchedulerConfig) -> Context:
    """A context for the shared renderers when nobody sent anything: the scheduler acts for the system.

    Its ``person`` is a placeholder that is never stored and never written to; every message goes to named
    recipients through ``send``.
    """
    placeholder = Person(channel="system", external_id="", chat_id="", display_name="", locale=None)
    core_config = CoreConfig(timezone=config.timezone, default_locale=config.default_locale,
                             visit_target=config.visit_target)
    return Context(session=session, person=placeholder, event=Unsupported("scheduler"), now=now, config=core_config)


def sendable_from(now: datetime, config: SchedulerConfig) -> Callable[[Person], datetime]:
    """When a message the scheduler writes at ``now`` may go: staff at once, residents after their quiet hours."""

    def not_before(person: Person) -> datetime:
        return now if person.roles else resident_not_before(now, config)

    return not_before


# --- per-request jobs -----------------------------------------------------------------------------------


def remind_holders(ctx: Context, request: Request) -> None:
    change = core.remind_by_system(ctx.session, request, ctx.now)
    if request.level is Level.DEPARTMENT:
        headline = N_("⏰ Reminder: nobody has accepted {code} yet. Please accept it, or give it back saying why.")
    elif request.level is Level.DISTRICT:
        # Nothing is above the district center: it can only take the request on or hand it to a street.
        headline = N_("⏰ Reminder: nobody has accepted {code} yet. Please accept it or hand it to a street.")
    else:
        headline = N_("⏰ Reminder: nobody has accepted {code} yet. Please accept it, or escalate it if your unit "
                      "cannot handle it.")
    send_cards(ctx, change.notify, request, headline)


def escalate_unanswered(ctx: Context, request: Request) -> None:
    change = core.escalate_by_system(ctx.session, request, core.NO_RESPONSE, ctx.now)
    if change is None:
        return
    announce_move(ctx, change, N_(
        "⬆️ {code} came up to you automatically: nobody at the level below accepted it in time."), N_(
        "Nobody took up {code} in time, so it was passed up to {holder}."))


def escalate_overdue(ctx: Context, request: Request) -> None:
    change = core.escalate_by_system(ctx.session, request, core.OVERDUE, ctx.now)
    if change is None:
        notify_staff_text(ctx, core.holder_staff(ctx.session, request), request, N_(
            "⚠️ {code} is overdue and the district center holds it. Please resolve it."))
        return
    announce_move(ctx, change, N_(
        "⬆️ {code} came up to you automatically: it was not resolved by its due date."), N_(
        "{code} was not resolved by {due}, so it was passed up to {holder}, who will handle it now."))


def reask_resident(ctx: Context, request: Request) -> None:
    core.remind_by_system(ctx.session, request, ctx.now)
    assert request.resolved_at is not None  # the claim only takes resolved requests
    t = ctx.translator_for(request.resident)
    text = t._("{code} ({category}) was resolved on {resolved}. Is it fixed? Please answer with one tap; "
               "without an answer it will be closed on {closing}.").format(
        code=request.code, category=request.category.name(t.locale), resolved=t.date(request.resolved_at),
        closing=t.date(request.resolved_at + CLOSE_AFTER))
    ctx.send(request.resident, SendText(clip(text), verdict_keyboard(t, request)))


def close_unanswered(ctx: Context, request: Request) -> None:
    change = core.close_unanswered(ctx.session, request, ctx.now)
    refresh_cards(ctx, request)
    tell_resident(ctx, request, lambda tr: tr._(
        "{code} was closed because we did not hear back from you. If the problem is back, please file a new "
        "request with /new.").format(code=request.code))
    notify_staff_text(ctx, change.notify, request, N_("{code} was closed: the resident did not answer in time."))


def remind_late_department(ctx: Context, request: Request) -> None:
    change = core.remind_department(ctx.session, request, ctx.now)
    send_cards(ctx, change.notify, request, N_(
        "⏰ {code} was due back from your department. Please finish it, or give it back saying why."))
    notify_staff_text(ctx, change.informed, request, N_(
        "⚠️ {department} has not finished {code} by its deadline; they were reminded."),
        department=own_name(ctx.session, Unit(request.level, request.unit_id)))


REQUEST_ACTIONS: dict[JobKind, Callable[[Context, Request], None]] = {
    JobKind.DEPARTMENT_OVERDUE: remind_late_department,
    JobKind.REMIND: remind_holders,
    JobKind.ESCALATE_UNANSWERED: escalate_unanswered,
    JobKind.ESCALATE_OVERDUE: escalate_overdue,
    JobKind.REASK: reask_resident,
    JobKind.CLOSE_UNANSWERED: close_unanswered,
}


def run_request_job(
    session: Session, kind: JobKind, request_id: int, now: datetime, config: SchedulerConfig,
    send_from: datetime | None = None,
) -> list[PendingDelivery] | None:
    """Claim one request for ``kind`` and act on it, returning the messages written (sendable from
    ``send_from``, by default ``now``); None when it was not (or no longer) due."""
    request = claim_request(session, kind, request_id, now)
    if request is None:
        return None
    ctx = system_context(session, now, config)
    REQUEST_ACTIONS[kind](ctx, request)
    written_at = send_from or now
    return write_outbox(session, ctx.outgoing, written_at, not_before=sendable_from(written_at, config))


# --- the daily digest for staff -------------------------------------------------------------------------


def digest_recipients(session: Session, period: Period) -> list[str]:
    query = select(Person.id).join(StaffRole, StaffRole.person_id == Person.id).where(Person.unreachable.is_(False))
    return [f"person:{person_id}" for person_id in sorted(set(session.scalars(query)))]


def _count(session: Session, *conditions: Any) -> int:
    return session.scalar(select(func.count(Request.id)).where(*conditions)) or 0


def send_digest(ctx: Context, person: Person, period: Period) -> None:
    """One message with what the person's units hold, or none when they hold nothing open.

    "New since yesterday" counts what was filed since yesterday's digest time, whenever this digest goes: a
    digest sent late (the bot was down, the playground's clock moved) still counts what its list shows.
    """
    held = core.held_by(person)
    if held is None:
        return
    session, now = ctx.session, ctx.now
    open_held = (Request.status.in_(OPEN_STATUSES), held, Request.created_at <= now)
    waiting = _count(session, *open_held)
    t = ctx.translator_for(person)
    collected = collection_lines(ctx, t, person)
    if waiting == 0:
        if collected:
            ctx.send(person, SendText(clip("\n".join(
                [t._("☀️ Your daily digest for {date}").format(date=t.date(now)), *collected]))))
        return
    fresh = _count(session, *open_held, Request.created_at > period.starts_at - timedelta(days=1))
    overdue = _count(session, *open_held, Request.due_at < now)
    oldest = session.scalars(select(Request).where(*open_held).order_by(Request.created_at, Request.id)
                             .limit(DIGEST_OLDEST)).all()
    lines = [
        t._("☀️ Your daily digest for {date}").format(date=t.date(now)),
        t.n_("{count} new request since yesterday", "{count} new requests since yesterday", fresh).format(count=fresh),
        t.n_("{count} open request", "{count} open requests", waiting).format(count=waiting),
        t.n_("{count} overdue", "{count} overdue", overdue).format(count=overdue),
        t._("The oldest:"),
    ]
    lines += [request_line(t, request, now) for request in oldest]
    lines += collected
    ctx.send(person, SendText(clip("\n".join(lines)), inline(*([open_button(t, request)] for request in oldest))))


def collection_lines(ctx: Context, t: Translator, person: Person) -> list[str]:
    """日收集: what the workers of the person's communities and streets collected yesterday (local day)."""
    end = rounds.local_day_start(ctx.now, ctx.config.timezone)
    start = end - timedelta(days=1)
    lines: list[str] = []
    for role in person.roles:
        if role.role not in (Role.COMMUNITY, Role.STREET):
            continue
        area = Unit(LEVEL_OF_ROLE[role.role], role.unit_id)
        collected = rounds.collection(ctx.session, area, start, end, ctx.config.visit_target)
        if not collected.empty:
            lines.append(collection_text(ctx.session, t, own_name(ctx.session, area), collected))
    return lines + overdue_lines(ctx, t, person)


def overdue_lines(ctx: Context, t: Translator, person: Person) -> list[str]:
    """Focused campaigns past their last day with targets in the person's areas not rectified."""
    overdue = [row for area in admin_areas(person)
               for row in campaigns.overdue_targets(ctx.session, area, ctx.now, ctx.config.timezone)]
    return [overdue_text(t, overdue)] if overdue else []


# --- the weekly feedback for residents ------------------------------------------------------------------


def _reported_requests(period: Period) -> Any:
    # Requests filed after the week started are reported next week: they are hardly a few days old.
    return select(Request).where(Request.status.in_(OPEN_STATUSES), Request.created_at < period.starts_at)


def feedback_recipients(session: Session, period: Period) -> list[str]:
    query = _reported_requests(period).with_only_columns(Request.resident_id).distinct()
    return [f"person:{person_id}" for person_id in sorted(session.scalars(query))]


def send_feedback(ctx: Context, person: Person, period: Period) -> None:
    """Each open request of the resident: its status, who holds it, the last thing that happened, the due date."""
    query = _reported_requests(period).where(Request.resident_id == person.id).order_by(Request.created_at)
    requests = ctx.session.scalars(query.limit(FEEDBACK_LIMIT)).all()
    if not requests:
        return
    t = ctx.translator_for(person)
    lines = [t._("📋 This week's news on your requests:")]
    for request in requests:
        lines.append(t._("{code} · {category}: {status}, with {holder}. Last: {last}. Due by {due}.").format(
            code=request.code, category=request.category.name(t.locale), status=status_text(t, request),
            holder=holder_text(ctx, t, request), last=_last_action(ctx, t, request), due=t.date(request.due_at)))
    buttons = [[Button(request.code, callback(RESIDENT_PREFIX, "open", request.id))] for request in requests]
    ctx.send(person, SendText(clip("\n".join(lines)), inline(*buttons)))


def _last_action(ctx: Context, t: Translator, request: Request) -> str:
    # Staff notes stay among staff, as on the resident's timeline.
    query = select(RequestEvent).where(RequestEvent.request_id == request.id, RequestEvent.kind != EventKind.NOTE)
    event = ctx.session.scalars(query.order_by(RequestEvent.at.desc(), RequestEvent.id.desc()).limit(1)).first()
    if event is None:
        return "-"
    label = event_label(ctx, t, event.level, event.unit_id, event.kind)
    return t._("{what} on {date}").format(what=label, date=t.date(event.at))


# --- the monthly bulletin for community, street and district staff --------------------------------------


def bulletin_subject(person_id: int, area: Unit) -> str:
    return f"person:{person_id}:{area.level.value}:{area.id}"


def bulletin_area(subject: str) -> Unit:
    _person, _id, level, unit_id = subject.split(":")
    return Unit(Level(level), int(unit_id))


def bulletin_pieces(session: Session, period: Period) -> list[str]:
    return [bulletin_subject(person.id, area) for person, area in bulletin_recipients(session)]


@dataclass
class BulletinCache:
    """A period's bulletins, computed once per area and rendered once per area and language.

    ``prepare_bulletins`` fills it before the recipients are served: the figures come from the database, the
    chart and the workbook are drawn in a worker thread, because matplotlib and openpyxl take a good part of
    a second per area and the database thread (on SQLite the one every resident's answer waits for) must not
    be held by them.
    """

    bulletins: dict[Unit, Bulletin] = field(default_factory=dict)
    documents: dict[tuple[Unit, str], BulletinDocuments] = field(default_factory=dict)

    def documents_for(self, ctx: Context, area: Unit, month: Month, t: Translator) -> BulletinDocuments:
        if area not in self.bulletins:
            self.bulletins[area] = compute_bulletin(ctx.session, area, month, ctx.config.timezone)
        key = (area, t.locale)
        if key not in self.documents:
            self.documents[key] = bulletin_documents(t, self.bulletins[area])
        return self.documents[key]


def bulletins_to_draw(
    session: Session, period: Period, subjects: list[str], config: SchedulerConfig
) -> tuple[dict[Unit, Bulletin], set[tuple[Unit, str]]]:
    """The figures of every area the pending recipients read, and the (area, language) pairs to draw."""
    month = Month.previous(period.starts_at, config.timezone)
    bulletins: dict[Unit, Bulletin] = {}
    wanted: set[tuple[Unit, str]] = set()
    for subject in subjects:
        person = _subject_person(session, subject)
        if person is None:
            continue
        area = bulletin_area(subject)
        if area not in bulletins:
            bulletins[area] = compute_bulletin(session, area, month, config.timezone)
        wanted.add((area, person.locale or config.default_locale))
    return bulletins, wanted


async def prepare_bulletins(
    database: Database, period: Period, subjects: list[str], config: SchedulerConfig
) -> BulletinCache:
    bulletins, wanted = await database.run(
        partial(bulletins_to_draw, period=period, subjects=subjects, config=config)
    )
    cache = BulletinCache(bulletins=bulletins)
    for area, locale in sorted(wanted):
        t = translator(locale, config.timezone)
        cache.documents[(area, t.locale)] = await asyncio.to_thread(bulletin_documents, t, bulletins[area])
    return cache


def send_bulletin(ctx: Context, person: Person, area: Unit, period: Period, cache: BulletinCache) -> None:
    """Last month's bulletin of the area: the summary, then the chart and the workbook as documents."""
    month = Month.previous(period.starts_at, ctx.config.timezone)
    documents = cache.documents_for(ctx, area, month, ctx.translator_for(person))
    ctx.send(person, SendText(clip(documents.summary)))
    for document in (documents.chart, documents.workbook):
        ctx.send(person, SendDocument(document.file_name, document.content.hex()))


# --- running a period -----------------------------------------------------------------------------------


def _subject_person(session: Session, subject: str) -> Person | None:
    return session.get(Person, int(subject.split(":")[1]))


def run_period_piece(
    session: Session, period: Period, subject: str, now: datetime, config: SchedulerConfig, cache: BulletinCache,
    send_from: datetime | None = None,
) -> list[PendingDelivery] | None:
    """Claim one recipient of a period and send them their part; None when it was done already."""
    if not claim_period_piece(session, period, subject, now):
        return None
    person = _subject_person(session, subject)
    if person is None:
        return []
    ctx = system_context(session, now, config)
    if period.kind is JobKind.DAILY_DIGEST:
        send_digest(ctx, person, period)
    elif period.kind is JobKind.WEEKLY_FEEDBACK:
        send_feedback(ctx, person, period)
    else:
        send_bulletin(ctx, person, bulletin_area(subject), period, cache)
    written_at = send_from or now
    return write_outbox(session, ctx.outgoing, written_at, not_before=sendable_from(written_at, config))


PERIOD_PIECES: dict[JobKind, Callable[[Session, Period], list[str]]] = {
    JobKind.DAILY_DIGEST: digest_recipients,
    JobKind.WEEKLY_FEEDBACK: feedback_recipients,
    JobKind.MONTHLY_BULLETIN: bulletin_pieces,
}


def pending_pieces(session: Session, period: Period) -> list[str]:
    return [subject for subject in PERIOD_PIECES[period.kind](session, period)
            if not period_piece_done(session, period, subject)]


# --- a run ----------------------------------------------------------------------------------------------


async def run_request_jobs(database: Database, kind: JobKind, now: datetime, config: SchedulerConfig,
                           report: RunReport, send_from: datetime) -> None:
    """Every request due for ``kind``, batch after batch, until a batch yields nothing this process can claim."""
    while True:
        due = await database.run(partial(due_requests, kind=kind, now=now))
        claimed = 0
        for job in due:
            assert job.request_id is not None
            work = partial(run_request_job, kind=kind, request_id=job.request_id, now=now, config=config,
                           send_from=send_from)
            result = await _isolated(database, work, f"{kind.value} of R-{job.request_id:06d}")
            if result is not None:
                claimed += 1
                report.add(kind, result, send_from)
        if claimed == 0:
            return


Written = list[PendingDelivery]


async def _isolated(database: Database, work: Callable[[Session], Written | None], what: str) -> Written | None:
    """Run one piece in its own transaction; a bug in it is logged and leaves it due, the others go on."""
    try:
        return await database.run(work)
    except DatabaseUnavailable:
        raise
    except Exception:
        log.exception("scheduler: %s failed", what)
        return None


async def run_period(database: Database, period: Period, now: datetime, config: SchedulerConfig,
                     report: RunReport, send_from: datetime) -> None:
    """Every recipient of the period not served yet, then the mark that the period is finished."""
    subjects = await database.run(partial(pending_pieces, period=period))
    cache = BulletinCache()
    if period.kind is JobKind.MONTHLY_BULLETIN and subjects:
        cache = await prepare_bulletins(database, period, subjects, config)
    for subject in subjects:
        work = partial(run_period_piece, period=period, subject=subject, now=now, config=config, cache=cache,
                       send_from=send_from)
        result = await _isolated(database, work, f"{period.kind.value} {period.key} for {subject}")
        if result is not None:
            report.add(period.kind, result, send_from)
    await database.run(partial(claim_period_piece, period=period, subject=WHOLE_PERIOD, now=now))


async def run_due_jobs(
    database: Database, now: datetime, config: SchedulerConfig | None = None, send_from: datetime | None = None
) -> RunReport:
    """Do everything due at ``now``; running again at the same instant does nothing.

    The messages written may go from ``send_from`` on (default ``now``), residents' after their quiet hours.
    Requests first, so that the digests written afterwards show where requests stand after escalation.
    """
    config = config or SchedulerConfig()
    send_from = send_from or now
    report = RunReport()
    for kind in REQUEST_JOBS:
        await run_request_jobs(database, kind, now, config, report, send_from)
    await run_volunteer_jobs(database, now, config, report, send_from, _isolated)
    await run_meeting_jobs(database, now, config, report, send_from, _isolated)
    for kind in PERIODIC_JOBS:
        period = await database.run(partial(due_period, kind=kind, now=now, config=config))
        if period is not None:
            await run_period(database, period, now, config, report, send_from)
    await run_retention(database, now, config, report)
    await run_patrol_closing(database, now, config, report)
    await run_campaign_endings(database, now, config, report, send_from)
    return report


async def run_campaign_endings(database: Database, now: datetime, config: SchedulerConfig,
                               report: RunReport, send_from: datetime) -> None:
    """Send each campaign's owner its progress by grid once its last day is over, at the digest's time of day
    (never at midnight)."""
    if now.astimezone(config.zone).time() < config.digest_time:
        return
    work = partial(end_campaigns, now=now, config=config, send_from=send_from)
    written = await _isolated(database, work, "ending campaigns")
    if written:
        report.add(JobKind.END_CAMPAIGNS, written, send_from)


def _campaign_ended_text(tr: Translator, campaign: Campaign, grids: list[campaigns.GridProgress]) -> str:
    return tr._("🏁 The campaign has ended.") + "\n" + campaign_progress_text(tr, campaign, grids)


def end_campaigns(session: Session, now: datetime, config: SchedulerConfig, send_from: datetime) -> Written:
    ctx = system_context(session, now, config)
    for campaign in campaigns.campaigns_ended(session, now, config.timezone):
        grids = campaigns.progress(session, campaign)
        owner = session.get_one(Person, campaign.owner_id)
        tell(ctx, [owner], partial(_campaign_ended_text, campaign=campaign, grids=grids))
        campaign.final_report_at = now
    return write_outbox(session, ctx.outgoing, send_from, not_before=sendable_from(send_from, config))


async def run_patrol_closing(database: Database, now: datetime, config: SchedulerConfig, report: RunReport) -> None:
    """Close the patrols left open past the end of their night window, and tell each worker the summary."""
    written = await _isolated(database, partial(close_patrols, now=now, config=config), "closing patrols")
    if written:
        report.add(JobKind.CLOSE_PATROLS, written, now)


def _patrol_closed_text(tr: Translator, summary: rounds.PatrolSummary) -> str:
    return tr._("🌙 Your patrol was closed at the end of the night. {summary}").format(
        summary=patrol_summary_text(tr, summary))


def close_patrols(session: Session, now: datetime, config: SchedulerConfig) -> Written:
    ctx = system_context(session, now, config)
    for patrol in rounds.patrols_to_close(session, now, config.timezone, config.night_end):
        summary = rounds.close_by_system(session, patrol, config.timezone, config.night_end)
        worker = session.get_one(Person, patrol.worker_id)
        tell(ctx, [worker], partial(_patrol_closed_text, summary=summary))
    return write_outbox(session, ctx.outgoing, now, not_before=sendable_from(now, config))


async def run_retention(database: Database, now: datetime, config: SchedulerConfig, report: RunReport) -> None:
    """Once a day, prune what is older than the retention, one short transaction per batch.

    Pruning twice does no harm, so the day is marked done only at the end: a run cut short resumes next time.
    """
    period = await database.run(partial(due_retention, now=now, config=config))
    if period is None:
        return
    cutoff = retention_cutoff(now, config.retention_days)
    for prune in (prune_inbox_batch, prune_outbox_batch):
        while pruned := await database.run(partial(prune, cutoff=cutoff)):
            report.done[JobKind.RETENTION] += pruned
    await database.run(partial(claim_period_piece, period=period, subject=WHOLE_PERIOD, now=now))


# --- in a running bot -----------------------------------------------------------------------------------


def scheduler_config(settings: Settings) -> SchedulerConfig:
    from bot.config import meeting_defaults

    return SchedulerConfig(
        timezone=settings.timezone, default_locale=settings.default_locale,
        quiet_hours_start=settings.quiet_hours_start, quiet_hours_end=settings.quiet_hours_end,
        digest_time=settings.digest_time, retention_days=settings.retention_days, night_end=settings.night_end,
        visit_target=settings.visit_target,
        meetings=meeting_defaults(settings),
    )


@dataclass
class Scheduler:
    """The scheduler of one deployment: its database, settings and clock (an ``OffsetClock`` in the playground)."""

    database: Database
    config: SchedulerConfig
    clock: Clock = system_clock

    @classmethod
    def from_settings(cls, settings: Settings, database: Database, clock: Clock = system_clock) -> Scheduler:
        return cls(database, scheduler_config(settings), clock)

    async def run_due(self, outbox: OutboxSender | None = None) -> RunReport:
        """Run what is due by the clock now and wake the outbox for what it wrote."""
        report = await run_due_jobs(self.database, self.clock(), self.config)
        if outbox is not None and report.deliveries:
            # The outbox loop picks the rows up itself; sending them here as well could send them twice.
            outbox.wake()
        return report


async def run_scheduler(
    scheduler: Scheduler, outbox: OutboxSender | None, stop: asyncio.Event, interval: float = 60.0
) -> None:
    """Run due jobs every ``interval`` seconds until ``stop`` is set."""
    while not stop.is_set():
        try:
            report = await scheduler.run_due(outbox)
            if report.done:
                log.info("scheduler: %s", report)
        except DatabaseUnavailable:
            log.warning("scheduler: database unavailable, trying again later")
        except Exception:  # a bug in one job must not stop reminders for good
            log.exception("scheduler run failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)


async def scheduler_loop(settings: Settings, runtime: Runtime, stop: asyncio.Event) -> None:
    """What an engine starts beside its outbox loop."""
    scheduler = Scheduler.from_settings(settings, runtime.core.database, runtime.core.clock)
    await run_scheduler(scheduler, runtime.outbox, stop)
