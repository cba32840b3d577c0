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

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.core.app import PendingDelivery
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

    def wake(self) -> None:
        """Look at the outbox now instead of at the next poll."""
        self._wake.set()

    async def deliver(self, items: Sequence[PendingDelivery], limited: bool = False) -> None:
        """Send items in order; a chat whose message fails gets nothing more now, so order is kept."""
        results: list[tuple[int, Delivery]] = []
        stalled: set[int] = set()
        self._in_flight.update(item.outbox_id for item in items)
        try:
            for item in items:
                if item.person_id in stalled:
                    continue
                delivery = await self._perform(item, limited)
                results.append((item.outbox_id, delivery))
                if not delivery.ok:
                    stalled.add(item.person_id)
            if results:
                await self.database.run(partial(record_deliveries, results=results, now=self.clock()))
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
    session: Session, now: datetime, exclude: frozenset[int] = frozenset(), limit: int = 200
) -> list[PendingDelivery]:
    rows = session.execute(
        select(OutboxMessage, Person)
        .join(Person, Person.id == OutboxMessage.person_id)
        .where(OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.not_before <= now)
        .order_by(OutboxMessage.id)
        .limit(limit)
    ).all()
    return [
        PendingDelivery(row.id, person.id, person.channel, person.chat_id, action_from_json(row.action))
        for row, person in rows
        if row.id not in exclude
    ]


def record_deliveries(session: Session, results: list[tuple[int, Delivery]], now: datetime) -> None:
    """Write what happened to each outbox row in one transaction."""
    for outbox_id, delivery in results:
        row = session.get(OutboxMessage, outbox_id)
        if row is None:
            continue
        row.attempts += 1
        if delivery.ok:
            row.status = OutboxStatus.SENT
            row.sent_at = now
            row.message_id = delivery.message_id
        elif delivery.blocked:
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
