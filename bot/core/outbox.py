"""Delivering the outbox through the channels, with retries, 429 back-off and blocked recipients.

Messages caused by an update are sent right after its transaction commits; whatever could not be sent then
(a 429, a network error, a process that died) is picked up by the background loop from the database.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Protocol

from sqlalchemy import Table, bindparam, or_, select, update
from sqlalchemy.orm import Session

from bot.core.app import PendingDelivery
from bot.core.claims import OUTBOX_LEASE
from bot.core.clock import Clock, system_clock
from bot.core.messages import Action, Delivery, action_from_json
from storage.database import Database, DatabaseUnavailable
from storage.models import OutboxMessage, OutboxStatus, Person

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
MAX_BACKOFF = timedelta(minutes=10)


class Channel(Protocol):
    """A chat platform as the core sees it: it carries out actions for one chat."""

    name: str

    async def perform(self, chat_id: str, action: Action) -> Delivery: ...


class RateLimiter:
    """Spaces sends evenly at ``rate`` per second (shared by everything one process sends on its own)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            now = time.monotonic()
            delay = self._next - now
            self._next = max(now, self._next) + self.interval
        if delay > 0:
            await asyncio.sleep(delay)

    def pause(self, seconds: float) -> None:
        """The platform said 429: nobody in this process sends until it has waited."""
        self._next = max(self._next, time.monotonic() + seconds)


class OutboxSender:
    def __init__(
        self,
        database: Database,
        channels: dict[str, Channel],
        rate: float = 25.0,
        clock: Clock = system_clock,
        poll_interval: float = 1.0,
    ) -> None:
        self.database = database
        self.channels = channels
        self.limiter = RateLimiter(rate)
        self.clock = clock
        self.poll_interval = poll_interval
        self._in_flight: set[int] = set()
        self._wake = asyncio.Event()
        self.maybe_duplicated = 0
        self._results = DeliveryLog(database, clock)

    def wake(self) -> None:
        """Look at the outbox now instead of at the next poll."""
        self._wake.set()

    async def deliver(self, items: Sequence[PendingDelivery], limited: bool = False) -> None:
        """Send items in order; a chat whose message fails gets nothing more now, so order is kept."""
        results: list[tuple[int, Delivery]] = []
        stalled: set[int] = set()
        # Rows not sent now go back to the outbox at once instead of waiting for their claim to run out; past
        # half the lease another process may take the rows over, so the rest of a slow batch goes back too.
        released: list[int] = []
        use_until = time.monotonic() + OUTBOX_LEASE.total_seconds() / 2
        self._in_flight.update(item.outbox_id for item in items)
        try:
            for item in items:
                if item.person_id in stalled or time.monotonic() > use_until:
                    released.append(item.outbox_id)
                    continue
                delivery = await self._perform(item, limited)
                results.append((item.outbox_id, delivery))
                if not delivery.ok:
                    stalled.add(item.person_id)
            if results or released:
                await self._results.record(results, released)
        finally:
            self._in_flight.difference_update(item.outbox_id for item in items)
        if any(not delivery.ok and not delivery.permanent for _id, delivery in results):
            self.wake()

    async def _perform(self, item: PendingDelivery, limited: bool) -> Delivery:
        channel = self.channels.get(item.channel)
        if channel is None:
            return Delivery(ok=False, permanent=True, error=f"no channel {item.channel}")
        if limited:
            await self.limiter.wait()
        try:
            delivery = await channel.perform(item.chat_id, item.action)
        except Exception as error:  # a channel bug must not stop the outbox
            log.exception("channel %s failed", item.channel)
            delivery = Delivery(ok=False, error=repr(error)[:300])
        if delivery.retry_after:
            self.limiter.pause(delivery.retry_after)
        if not delivery.ok and delivery.outcome_unknown:
            # The request may have reached the platform before the connection failed; there is no way to
            # ask, so the retry can show the message twice. Counted so it can be watched.
            self.maybe_duplicated += 1
            log.warning("outbox %s: outcome unknown (%s); retrying may duplicate it", item.outbox_id, delivery.error)
        return delivery

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver what is due until ``stop`` is set."""
        while not stop.is_set():
            try:
                due = await self.database.run(
                    partial(due_deliveries, now=self.clock(), exclude=frozenset(self._in_flight))
                )
                if due:
                    await self.deliver(due, limited=True)
                    continue
            except DatabaseUnavailable:
                log.warning("outbox: database unavailable, retrying")
            self._wake.clear()
            waiter = asyncio.ensure_future(self._wake.wait())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({waiter, stopper}, timeout=self.poll_interval, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            stopper.cancel()


def due_deliveries(
    session: Session, now: datetime, exclude: frozenset[int] = frozenset(), limit: int = 100
) -> list[PendingDelivery]:
    """Claim the due rows nobody else is sending (see bot.core.claims) and return them, oldest first."""
    rows = session.execute(
        select(OutboxMessage, Person)
        .join(Person, Person.id == OutboxMessage.person_id)
        .where(
            OutboxMessage.status == OutboxStatus.PENDING,
            OutboxMessage.not_before <= now,
            or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until <= now),
        )
        .order_by(OutboxMessage.id)
        .limit(limit)
        # Rows another process is claiming right now are skipped rather than waited for.
        .with_for_update(of=OutboxMessage, skip_locked=True)
    ).all()
    claimed = [(row, person) for row, person in rows if row.id not in exclude]
    for row, _person in claimed:
        row.claimed_until = now + OUTBOX_LEASE
    return [
        PendingDelivery(row.id, person.id, person.channel, person.chat_id, action_from_json(row.action))
        for row, person in claimed
    ]


async def record_with_retries(
    database: Database, results: list[tuple[int, Delivery]], released: list[int], clock: Clock, tries: int = 5
) -> None:
    """Record delivery results, riding out a short database outage: a sent message left unrecorded would be
    sent again once its claim runs out."""
    for attempt in range(tries):
        try:
            await database.run(partial(record_deliveries, results=results, now=clock(), released=released))
            return
        except DatabaseUnavailable:
            if attempt == tries - 1:
                raise
            await asyncio.sleep(0.5 * 2**attempt)


class DeliveryLog:
    """Records the results of sends that finish together in one database hop (a group commit).

    Each update's messages are sent right after its own transaction; recording their results one update at a
    time would cost a second round trip to the database per update. Callers still wait until their results
    are committed, so nothing changes for them except that many share one transaction. A crash before the
    commit leaves every row of the group unrecorded, and they are sent again once their claim runs out
    (``OutboxSender.maybe_duplicated`` does not count these: the platform did answer).
    """

    def __init__(self, database: Database, clock: Clock) -> None:
        self.database = database
        self.clock = clock
        self._queued: list[tuple[list[tuple[int, Delivery]], Sequence[int], asyncio.Future[None]]] = []
        self._writing = asyncio.Lock()

    async def record(self, results: list[tuple[int, Delivery]], released: Sequence[int]) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queued.append((results, released, done))
        async with self._writing:
            if done.done():  # written by the caller that held the lock before this one
                return done.result()
            batch, self._queued = self._queued, []
            try:
                await record_with_retries(
                    self.database, [r for rs, _, _ in batch for r in rs], [i for _, ids, _ in batch for i in ids],
                    self.clock,
                )
            except asyncio.CancelledError:
                # This caller is going away; the others' results are written by whoever takes the lock next.
                self._queued[:0] = [entry for entry in batch if entry[2] is not done]
                raise
            except Exception as error:
                for _results, _released, other in batch:
                    if other is not done:
                        other.set_exception(error)
                raise
            for _results, _released, other in batch:
                other.set_result(None)


def record_deliveries(
    session: Session, results: list[tuple[int, Delivery]], now: datetime, released: Sequence[int] = ()
) -> None:
    """Write what happened to each outbox row in one transaction; ``released`` rows were not tried."""
    if released:
        session.execute(
            update(OutboxMessage).where(OutboxMessage.id.in_(list(released))).values(claimed_until=None)
        )
    sent = [{"sent_id": outbox_id, "sent_message": d.message_id} for outbox_id, d in results if d.ok]
    if sent:
        # Nearly every result is a success: one executemany instead of loading each row through the ORM.
        table = OutboxMessage.__table__
        assert isinstance(table, Table)
        session.execute(
            update(table)
            .where(table.c.id == bindparam("sent_id"))
            .values(status=OutboxStatus.SENT, sent_at=now, message_id=bindparam("sent_message"),
                    attempts=table.c.attempts + 1, claimed_until=None),
            sent,
        )
    for outbox_id, delivery in results:
        if delivery.ok:
            continue
        row = session.get(OutboxMessage, outbox_id)
        if row is None:
            continue
        row.attempts += 1
        row.claimed_until = None
        if delivery.blocked:
            row.status = OutboxStatus.FAILED
            row.error = "blocked"
            session.execute(update(Person).where(Person.id == row.person_id).values(unreachable=True))
        elif delivery.permanent or row.attempts >= MAX_ATTEMPTS:
            row.status = OutboxStatus.FAILED
            row.error = delivery.error[:400]
        else:
            wait = (
                timedelta(seconds=delivery.retry_after)
                if delivery.retry_after
                else min(MAX_BACKOFF, timedelta(seconds=2**row.attempts))
            )
            row.not_before = now + wait
            row.error = delivery.error[:400]
