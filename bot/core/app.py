"""The channel-neutral application: one incoming update in, one transaction, messages out.

Every update is handled in a single unit of work that also records the update as handled and writes every
message it causes to the outbox. Delivery happens after commit, so a crash can neither half-apply an update
nor lose a message it caused, and a redelivered update is skipped by its id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from bot.core.claims import OUTBOX_LEASE, claim_update, insert_ignoring_duplicates
from bot.core.clock import Clock, system_clock
from bot.core.context import Context, CoreConfig, write_state
from bot.core.messages import (
    Action,
    AnswerButton,
    ButtonPress,
    Incoming,
    Sender,
    SendText,
    action_from_json,
    action_to_json,
)
from bot.core.people import find_or_register_person
from bot.core.router import Router
from bot.core.team_chats import group_person
from bot.core.throttle import Throttle
from bot.i18n import negotiate_locale, translator
from storage.database import Database
from storage.models import InboxUpdate, OutboxMessage, OutboxStatus, Person, Priority, table_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PendingDelivery:
    """An outbox row ready to send right after the transaction that wrote it."""

    outbox_id: int
    person_id: int
    channel: str
    chat_id: str
    action: Action
    # When the row may be sent; later than now for a resident's message written during their quiet hours.
    not_before: datetime | None = None
    priority: int = Priority.NOTICE


class Core:
    def __init__(
        self, database: Database, router: Router, config: CoreConfig, clock: Clock = system_clock
    ) -> None:
        self.database = database
        self.router = router
        self.config = config
        self.clock = clock
        # Set by the service for live bots; tests driving the core directly usually leave it off.
        self.throttle: Throttle | None = None

    async def handle(self, incoming: Incoming) -> list[PendingDelivery]:
        """Handle one update exactly once; returns the messages to deliver now."""
        try:
            return await self.database.run(partial(self.handle_in_session, incoming=incoming))
        except HandlerFailed:
            # Its transaction was rolled back whole, so nothing of the failed handler remains; a second, small
            # one marks the update handled and tells the person.
            return await self.database.run(partial(self.handle_in_session, incoming=incoming, failed=True))

    def handle_in_session(self, session: Session, incoming: Incoming, failed: bool = False) -> list[PendingDelivery]:
        now = self.clock()
        if not claim_update(session, incoming.channel, incoming.update_id, now):
            log.info("update %s/%s already handled", incoming.channel, incoming.update_id)
            return []
        if incoming.sender.group_chat_id is not None:
            return self._handle_in_group(session, incoming, now, failed)
        person = find_or_register_person(session, incoming.sender, self.config.default_locale, now)
        ctx = Context(session=session, person=person, event=incoming.event, now=now, config=self.config)
        if failed:
            _apologise(ctx)
        elif self.throttle is None or not self.throttle.holds_back(ctx):
            self._dispatch(ctx)
        held = release_held(session, person, ctx, now) if person.awaiting_first_message else []
        return write_outbox(session, ctx.outgoing, now, sender=person) + held

    def _handle_in_group(
        self, session: Session, incoming: Incoming, now: datetime, failed: bool
    ) -> list[PendingDelivery]:
        """A command or button press in a group: only the group router's routes are answered, in the group;
        the rest is the members' own conversation and is left unanswered."""
        group_router = self.router.group
        if group_router is None or not group_router.routes(incoming.event):
            return []
        person = find_or_register_person(session, incoming.sender, self.config.default_locale, now)
        group = group_person(session, incoming.sender, self.config.default_locale, now)
        ctx = Context(session=session, person=person, event=incoming.event, now=now, config=self.config,
                      group=group)
        if failed:
            _apologise(ctx)
        else:
            self._dispatch(ctx, group_router)
        return write_outbox(session, ctx.outgoing, now, sender=group)

    def _dispatch(self, ctx: Context, router: Router | None = None) -> None:
        handler = (router or self.router).resolve(ctx)
        try:
            if handler is not None:
                handler(ctx)
            # The handler's changes are written here, so a change the database refuses counts as its failure.
            write_state(ctx.session)
            ctx.session.flush()
        except Exception as error:
            log.exception("handler failed for person %s on %r", ctx.person.id, ctx.event)
            raise HandlerFailed from error
        _answer_button(ctx)


class HandlerFailed(Exception):
    """A handler raised: its update's transaction is rolled back and handled again as failed (an apology)."""


def _apologise(ctx: Context) -> None:
    ctx.reply(ctx.t._("Sorry, something went wrong on our side. Please try again."))
    _answer_button(ctx)


def _answer_button(ctx: Context) -> None:
    """A pressed button always gets its answer, which stops the spinner in the person's app."""
    if isinstance(ctx.event, ButtonPress) and not any(
        isinstance(action, AnswerButton) for _person, action in ctx.outgoing
    ):
        ctx.answer()


def write_outbox(
    session: Session, outgoing: list[tuple[Person, Action]], now: datetime,
    not_before: Callable[[Person], datetime] | None = None, sender: Person | None = None,
    priority: Priority | None = None,
) -> list[PendingDelivery]:
    """Write messages to the outbox in the current transaction.

    Without ``not_before`` (an update being handled) the rows are claimed by the caller, which sends them right
    after commit: the answer to ``sender`` first, then notices to others. With it (a background job) each row
    waits until ``not_before(recipient)`` for the outbox loop, and people who blocked the bot are left out.
    ``priority`` overrides both. Messages to someone who has not written to the bot yet are held for them.
    Returns the rows to send.
    """
    if not_before is not None:
        outgoing = [(person, action) for person, action in outgoing if not person.unreachable]
    if not outgoing:
        return []
    rows: list[dict[str, Any]] = [
        # Claimed by the writer, which sends them right after commit; another process's outbox loop leaves
        # them alone unless this one dies before recording the result (see bot.core.claims).
        {
            "person_id": person.id, "action": action_to_json(action), "created_at": now,
            "not_before": now if not_before is None else not_before(person),
            "claimed_until": now + OUTBOX_LEASE if not_before is None and not person.awaiting_first_message else None,
            "status": OutboxStatus.HELD if person.awaiting_first_message else OutboxStatus.PENDING,
            "priority": priority if priority is not None else _priority(person, sender, not_before is not None),
            "request_id": getattr(action, "shows_request", None), "attempts": 0,
        }
        for person, action in outgoing
    ]
    ids = _insert_outbox_rows(session, rows)
    return [
        PendingDelivery(row_id, person.id, person.channel, person.chat_id, action, row["not_before"], row["priority"])
        for row_id, row, (person, action) in zip(ids, rows, outgoing, strict=True)
        if row["status"] is OutboxStatus.PENDING
    ]


def _insert_outbox_rows(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    """Multi-row ``INSERT``s (one for an update's messages); the new ids in the order of ``rows``."""
    # A table-level INSERT does not autoflush: what the caller changed before (a person) is written first, as
    # adding ORM rows used to.
    session.flush()
    # The rows as parameters of one fixed statement, not as values written into it: SQLAlchemy renders them as
    # multi-row INSERTs of up to 1,000 rows ("insertmanyvalues") from a compiled form it caches, where
    # ``.values(rows)`` would be compiled afresh on every update. Both SQLite (the rowid) and PostgreSQL (the
    # sequence) number the rows of one INSERT in the order given, and each INSERT's after the one before. On the
    # session's connection: a table INSERT needs none of the ORM's handling of an execution.
    return sorted(session.connection().execute(_INSERT_OUTBOX, rows).scalars())


_OUTBOX = table_of(OutboxMessage)
_INSERT_OUTBOX = insert(_OUTBOX).returning(_OUTBOX.c.id)


def _priority(person: Person, sender: Person | None, scheduled: bool) -> Priority:
    if scheduled:
        return Priority.SCHEDULED
    return Priority.REPLY if person is sender else Priority.NOTICE


def release_held(session: Session, person: Person, ctx: Context, now: datetime) -> list[PendingDelivery]:
    """The person has written for the first time: what was held for them goes out now, after one line saying
    how much arrived while they were away."""
    person.awaiting_first_message = False
    held = list(session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.person_id == person.id, OutboxMessage.status == OutboxStatus.HELD)
        .order_by(OutboxMessage.id)
    ))
    if not held:
        return []
    t = ctx.t
    line = t.n_("While you were away: {count} message", "While you were away: {count} messages", len(held))
    away = write_outbox(session, [(person, SendText(line.format(count=t.number(len(held)))))], now, sender=person)
    for row in held:
        row.status, row.not_before, row.claimed_until = OutboxStatus.PENDING, now, now + OUTBOX_LEASE
    return away + [
        PendingDelivery(row.id, person.id, person.channel, person.chat_id, action_from_json(row.action), now,
                        row.priority)
        for row in held
    ]


def not_opened_yet(session: Session) -> set[str]:
    """The ids (Telegram user ids, WeChat OpenIDs) of people added by staff who have not written to the bot yet."""
    return set(session.scalars(
        select(Person.external_id).where(Person.awaiting_first_message)
    ))


def store_updates(session: Session, channel: str, updates: list[tuple[int, dict[str, Any]]], now: Any) -> list[int]:
    """Record raw updates before they are confirmed to the platform; returns the ids not seen before."""
    if not updates:
        return []
    table = table_of(InboxUpdate)
    rows = [
        {"channel": channel, "update_id": update_id, "payload": payload, "received_at": now}
        for update_id, payload in updates
    ]
    # A duplicate is skipped by the database itself, so two processes recording the same update at once
    # cannot both see it as fresh; RETURNING names the rows this transaction actually inserted.
    inserted = set(session.execute(
        insert_ignoring_duplicates(session, table).returning(table.c.update_id), rows
    ).scalars())
    return [update_id for update_id, _payload in updates if update_id in inserted]


def unhandled_updates(session: Session, channel: str) -> list[dict[str, Any]]:
    """Updates recorded but not handled (the process died in between), oldest first."""
    rows = session.scalars(
        select(InboxUpdate)
        .where(InboxUpdate.channel == channel, InboxUpdate.handled_at.is_(None))
        .order_by(InboxUpdate.update_id)
    )
    return [row.payload for row in rows]


def try_again_later(sender: Sender, default_locale: str, timezone: str) -> SendText:
    """The answer when the database is unavailable, in the sender's language (no database needed)."""
    t = translator(negotiate_locale(sender.language_code, default_locale), timezone)
    return SendText(t._("The service is busy right now. Please try again in a moment."))
