"""Delivering the outbox through the channels, with retries, 429 back-off and blocked recipients.

Messages caused by an update are sent right after its transaction commits; whatever could not be sent then
(a 429, a network error, a process that died) is picked up by the background loop from the database.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Generic, Protocol, TypeVar, runtime_checkable

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.orm import Session

from bot.core.app import PendingDelivery
from bot.core.claims import OUTBOX_LEASE
from bot.core.clock import Clock, system_clock
from bot.core.messages import Action, Delivery, action_from_json
from storage.database import Database, DatabaseUnavailable
from storage.models import OutboxMessage, OutboxStatus, Person, table_of

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_ATTEMPTS = 8
MAX_BACKOFF = timedelta(minutes=10)


class Channel(Protocol):
    """A chat platform as the core sees it: it carries out actions for one chat."""

    name: str

    async def perform(self, chat_id: str, action: Action) -> Delivery: ...


# One action, prepared once, carried out in the chat given.
BulkSend = Callable[[str], Awaitable[Delivery]]


@runtime_checkable
class BulkChannel(Protocol):
    """A channel with a faster way to carry out one action in many chats (a broadcast)."""

    def bulk(self, action: Action) -> BulkSend | None:
        """``action`` prepared for many chats, or None when it has no such way for this action."""


# Platforms count arrivals in a one-second sliding window, and lateness (a busy event loop, the network, the
# catch-up below) bunches sends that left evenly spaced. Aiming a little below the limit, one second's slots fit
# in about 1.03 s, so sends a little late do not cause 429s (and their whole-second pauses) the way aiming at the
# limit does; ``Pacer`` also counts what it gave out in the last second.
RATE_HEADROOM = 0.97
# A slot taken late (the event loop was busy, a sleep overslept, a commit was slow) may be caught up on by this
# many seconds, so short delays do not lower the rate; ``Pacer`` still never gives out more in a second than the
# rate allows.
CATCH_UP = 0.05


class RateLimiter:
    """Sending slots evenly spaced a little below ``rate`` per second, for this process alone."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.interval = 1.0 / (rate * RATE_HEADROOM)
        self._next = 0.0

    async def reserve(self, wanted: int = 1) -> float:
        """Take the next slot; returns the seconds until it comes. ``wanted`` is how many sends are waiting: a
        limiter for which a slot costs a round trip (``bot.core.rate``) takes several at once; this one takes
        one, as its slots cost nothing."""
        now = time.monotonic()
        slot = max(self._next, now - CATCH_UP)
        self._next = slot + self.interval
        return slot - now

    def pause(self, seconds: float) -> None:
        """The platform said 429: no slot until it has waited."""
        self._next = max(self._next, time.monotonic() + seconds)


class Slot:
    """One sending slot given by ``Pacer``: it counts in the pacer's sliding second from when it was given until
    a second after the call it was used for came back (``sent``)."""

    __slots__ = ("counted_at",)

    def __init__(self, given_at: float) -> None:
        self.counted_at = given_at

    def sent(self) -> None:
        """The call this slot was used for has been answered."""
        self.counted_at = time.monotonic()


class Pacer:
    """Every send of the process waits here; each slot of the rate goes to the most urgent waiter.

    Slots are given one at a time and only while someone waits, so a message that arrives now waits behind at
    most the one slot already given, whatever is queued below it. With several processes the limiter is shared
    (``bot.core.rate``) and each reserves at most as many slots as it has sends waiting and a tenth of a second's
    worth, so a broadcast in one process delays an answer in another by a few slots at most.
    """

    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter
        self._waiting: list[tuple[int, int, asyncio.Future[Slot]]] = []
        self._order = itertools.count()
        self._granter: asyncio.Task[None] | None = None
        self._paused_until = 0.0
        self._given: deque[Slot] = deque()

    async def wait(self, priority: int) -> Slot:
        """A slot to send now; call its ``sent`` when the platform has answered the call."""
        # A slot given just before a 429 came back is given up: the waiter queues again.
        while True:
            future: asyncio.Future[Slot] = asyncio.get_running_loop().create_future()
            heapq.heappush(self._waiting, (priority, next(self._order), future))
            if self._granter is None or self._granter.done():
                self._granter = asyncio.get_running_loop().create_task(self._grant())
            slot = await future
            if not self.paused:
                return slot

    @property
    def paused(self) -> bool:
        """A 429's pause is running: a slot given before it came back must not be used."""
        return time.monotonic() < self._paused_until

    async def _keep_to_window(self) -> None:
        """Slots are evenly spaced, but a busy machine delays some calls more than others on their way, and the
        platform counts what reaches it in a sliding second. A call reaches it after its slot was given and
        before its answer came back, so counting each slot until a second after its answer (``Slot.sent``)
        counts everything the platform can still see: this process never gives out more than the rate allows
        in that window, however the calls were bunched on the way."""
        most = max(1, math.floor(self.limiter.rate * RATE_HEADROOM))
        while True:
            now = time.monotonic()
            # Oldest given first; one answered later than slots given after it keeps them counted a little
            # longer, which only errs on the safe side.
            while self._given and self._given[0].counted_at <= now - 1.0:
                self._given.popleft()
            if len(self._given) < most:
                return
            await asyncio.sleep(max(0.001, self._given[0].counted_at + 1.0 - now))

    def pause(self, seconds: float) -> None:
        """The platform said 429: nobody sends until it has waited, whatever slot they were given."""
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)
        self.limiter.pause(seconds)

    async def _grant(self) -> None:
        while self._waiting:
            try:
                delay = await self.limiter.reserve(len(self._waiting))
            except Exception:  # the shared limiter falls back by itself; anything else must not stall sending
                log.exception("send rate: could not take a slot")
                delay = self.limiter.interval
            if delay > 0:
                await asyncio.sleep(delay)
            await self._keep_to_window()
            # A slot taken before a 429 arrived must not be used: wait the pause out and take a new one.
            remaining = self._paused_until - time.monotonic()
            if remaining > 0:
                await asyncio.sleep(remaining)
                continue
            slot = Slot(time.monotonic())
            self._given.append(slot)
            while self._waiting:
                _priority, _order, future = heapq.heappop(self._waiting)
                if not future.done():  # a waiter that went away gives its place up
                    future.set_result(slot)
                    break


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
        self.pacer = Pacer(RateLimiter(rate))
        self.clock = clock
        self.poll_interval = poll_interval
        self._in_flight: set[int] = set()
        self._wake = asyncio.Event()
        self.maybe_duplicated = 0
        self._results = DeliveryLog(database, clock)

    @property
    def limiter(self) -> RateLimiter:
        """The rate every send of this process keeps to (replaced by a shared one on PostgreSQL)."""
        return self.pacer.limiter

    @limiter.setter
    def limiter(self, limiter: RateLimiter) -> None:
        self.pacer.limiter = limiter

    def wake(self) -> None:
        """Look at the outbox now instead of at the next poll."""
        self._wake.set()

    async def deliver(self, items: Sequence[PendingDelivery]) -> None:
        """Send items in order, each at its priority; a chat whose message fails gets nothing more now, so order
        is kept."""
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
                delivery = await self._perform(item)
                results.append((item.outbox_id, delivery))
                if not delivery.ok:
                    stalled.add(item.person_id)
            if results or released:
                await self._results.record([*results, *((outbox_id, None) for outbox_id in released)])
        finally:
            self._in_flight.difference_update(item.outbox_id for item in items)
        if any(not delivery.ok and not delivery.permanent for _id, delivery in results):
            self.wake()

    async def _perform(self, item: PendingDelivery) -> Delivery:
        channel = self.channels.get(item.channel)
        if channel is None:
            return Delivery(ok=False, permanent=True, error=f"no channel {item.channel}")
        slot = await self.pacer.wait(item.priority)
        try:
            delivery = await channel.perform(item.chat_id, item.action)
        except Exception as error:  # a channel bug must not stop the outbox
            log.exception("channel %s failed", item.channel)
            delivery = Delivery(ok=False, error=repr(error)[:300])
        slot.sent()
        if delivery.retry_after:
            self.pacer.pause(delivery.retry_after)
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
                    await self.deliver(due)
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
        .order_by(OutboxMessage.priority, OutboxMessage.id)
        .limit(limit)
        # Rows another process is claiming right now are skipped rather than waited for.
        .with_for_update(of=OutboxMessage, skip_locked=True)
    ).all()
    claimed = [(row, person) for row, person in rows if row.id not in exclude]
    for row, _person in claimed:
        row.claimed_until = now + OUTBOX_LEASE
    return [
        PendingDelivery(
            row.id, person.id, person.channel, person.chat_id, action_from_json(row.action), priority=row.priority
        )
        for row, person in claimed
    ]


class GroupCommit(Generic[T]):
    """Writes the items that callers hand in at about the same time in one database hop (a group commit).

    Each caller waits until its items are committed, so nothing changes for it except that many share one
    transaction; a crash before the commit loses the whole group's items. A short database outage is ridden
    out with a few retries.
    """

    def __init__(self, database: Database, write: Callable[[Session, list[T]], None], tries: int = 5) -> None:
        self.database = database
        self.write = write
        self.tries = tries
        self._queued: list[tuple[Sequence[T], asyncio.Future[None]]] = []
        self._writing = asyncio.Lock()

    async def record(self, items: Sequence[T]) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queued.append((items, done))
        async with self._writing:
            if done.done():  # written by the caller that held the lock before this one
                return done.result()
            batch, self._queued = self._queued, []
            try:
                await self._write_with_retries([item for items, _done in batch for item in items])
            except asyncio.CancelledError:
                # This caller is going away; the others' items are written by whoever takes the lock next.
                self._queued[:0] = [entry for entry in batch if entry[1] is not done]
                raise
            except Exception as error:
                for _items, other in batch:
                    if other is not done:
                        other.set_exception(error)
                raise
            for _items, other in batch:
                if other is not done:
                    other.set_result(None)

    async def _write_with_retries(self, items: list[T]) -> None:
        for attempt in range(self.tries):
            try:
                await self.database.run(lambda session: self.write(session, items))
                return
            except DatabaseUnavailable:
                if attempt == self.tries - 1:
                    raise
                await asyncio.sleep(0.5 * 2**attempt)


class DeliveryLog(GroupCommit[tuple[int, Delivery | None]]):
    """The outbox's delivery results, group-committed: each update's messages are sent right after its own
    transaction, and recording them one update at a time would cost a second round trip per update.

    A crash before the commit leaves every row of the group unrecorded, and they are sent again once their
    claim runs out (``OutboxSender.maybe_duplicated`` does not count these: the platform did answer).
    """

    def __init__(self, database: Database, clock: Clock) -> None:
        super().__init__(database, self._write)
        self.clock = clock

    def _write(self, session: Session, items: list[tuple[int, Delivery | None]]) -> None:
        results = [(outbox_id, delivery) for outbox_id, delivery in items if delivery is not None]
        released = [outbox_id for outbox_id, delivery in items if delivery is None]
        record_deliveries(session, results, now=self.clock(), released=released)


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
        table = table_of(OutboxMessage)
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
