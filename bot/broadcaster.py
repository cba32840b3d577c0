"""The broadcast worker: delivers confirmed broadcasts in the background at the configured rate.

It takes one broadcast at a time (they share the rate anyway), streams its pending recipients from the
database in small batches and records each batch before fetching the next: after a crash only the batch in
flight can be sent twice. A 429 pauses every send of the process, a 403 marks the recipient blocked, network
errors and 5xx are retried with back-off. The author sees one progress message, edited every few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from functools import partial

from sqlalchemy.orm import Session

from bot.core import broadcasts
from bot.core.app import PendingDelivery, write_outbox
from bot.core.broadcasts import CANCEL_PREFIX, BroadcastJob, Outcome, Progress, Target
from bot.core.clock import Clock, system_clock
from bot.core.context import CoreConfig
from bot.core.messages import Action, Button, Delivery, EditText, InlineKeyboard, SendPhoto, SendText, inline
from bot.core.outbox import Channel, OutboxSender, RateLimiter
from bot.core.router import callback
from bot.i18n import Translator, translator
from bot.runtime import Runtime
from storage.database import Database, DatabaseUnavailable
from storage.models import Broadcast, BroadcastStatus, Person, RecipientStatus

log = logging.getLogger(__name__)

# Recipients sent to between two database writes: small, because a crash can repeat the two batches that are
# not recorded yet (the one being sent and the one before it, recorded meanwhile).
DEFAULT_BATCH_SIZE = 10
# Platforms count arrivals in a sliding window, and network jitter bunches sends that left evenly spaced:
# aiming a little below the limit avoids the 429s (and their whole-second pauses) that aiming at it causes.
RATE_HEADROOM = 0.97


@dataclass
class WorkerStats:
    """What the worker has done since it started (for tests and the benchmark)."""

    sent: int = 0
    retry_after_answers: int = 0
    transient_errors: int = 0
    progress_edits: int = 0


class BroadcastWorker:
    def __init__(
        self,
        database: Database,
        outbox: OutboxSender,
        config: CoreConfig,
        clock: Clock = system_clock,
        batch_size: int = DEFAULT_BATCH_SIZE,
        progress_interval: float = 3.0,
        poll_interval: float = 1.0,
        max_attempts: int = 5,
        retry_delay: float = 0.5,
    ) -> None:
        self.database = database
        self.outbox = outbox
        self.config = config
        self.clock = clock
        self.batch_size = batch_size
        self.progress_interval = progress_interval
        self.poll_interval = poll_interval
        self.max_attempts = max_attempts
        self.retry_delay = retry_delay
        # The outbox's limiter is shared so that broadcasts and everything else together keep to the rate.
        self.rate = 1.0 / outbox.limiter.interval
        self._own_pace = RateLimiter(self.rate * RATE_HEADROOM)
        self._paused_until = 0.0
        self.stats = WorkerStats()

    @classmethod
    def for_runtime(cls, runtime: Runtime) -> BroadcastWorker:
        """A worker sharing the runtime's database, channels and send rate."""
        return cls(runtime.core.database, runtime.outbox, runtime.core.config, runtime.core.clock)

    # --- the loop ---------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver broadcasts until ``stop`` is set; unfinished ones are resumed first."""
        while not stop.is_set():
            try:
                worked = await self.deliver_next(stop)
            except DatabaseUnavailable:
                log.warning("broadcasts: database unavailable, retrying")
                worked = False
            if not worked:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.poll_interval)

    async def deliver_next(self, stop: asyncio.Event | None = None) -> bool:
        """Deliver (or resume) the oldest unfinished broadcast; False when there is none."""
        broadcast_id = await self.database.run(broadcasts.next_broadcast)
        if broadcast_id is None:
            return False
        job = await self.database.run(partial(self._load_job, broadcast_id=broadcast_id))
        job = await self._ensure_progress_message(job)
        progress = await self._deliver_batches(job, stop)
        if stop is not None and stop.is_set() and progress.status is BroadcastStatus.SENDING:
            return True  # shutting down: resumed at the next start
        await self._finish(job)
        return True

    def _load_job(self, session: Session, broadcast_id: int) -> BroadcastJob:
        author_locale = session.get_one(Broadcast, broadcast_id).author.locale
        return broadcasts.load_job(session, broadcast_id, self._translator(author_locale))

    async def _deliver_batches(self, job: BroadcastJob, stop: asyncio.Event | None) -> Progress:
        progress, batch = await self._hop(job, [], after_id=0)
        previous: list[Outcome] = []
        last_progress = time.monotonic()
        while batch and not (stop is not None and stop.is_set()):
            sending = asyncio.ensure_future(self._send_batch(job, batch))
            # While this batch goes out, the one before is recorded and the next one fetched, so the sends
            # never wait for the database; the price is that a crash can repeat two batches instead of one.
            try:
                progress, next_batch = await self._hop(job, previous, after_id=batch[-1].recipient_id)
            finally:
                previous = await sending
            if time.monotonic() - last_progress >= self.progress_interval:
                last_progress = time.monotonic()
                await self._show_progress(job, progress, previous)
            batch = next_batch
        progress, _rest = await self._hop(job, previous, after_id=0, fetch=0)
        return progress

    async def _hop(
        self, job: BroadcastJob, outcomes: list[Outcome], after_id: int, fetch: int | None = None
    ) -> tuple[Progress, list[Target]]:
        limit = self.batch_size if fetch is None else fetch
        return await self.database.run(
            partial(broadcasts.record_and_fetch, broadcast_id=job.id, outcomes=outcomes, after_id=after_id, limit=limit)
        )

    async def _send_batch(self, job: BroadcastJob, batch: list[Target]) -> list[Outcome]:
        return list(await asyncio.gather(*(self._send_one(job, target) for target in batch)))

    # --- sending ----------------------------------------------------------------------------------------

    def _action(self, job: BroadcastJob) -> Action:
        if job.photo:
            return SendPhoto(job.photo, job.text)
        return SendText(job.text)

    async def _send_one(self, job: BroadcastJob, target: Target) -> Outcome:
        channel = self.outbox.channels.get(target.channel)
        if channel is None:
            return Outcome(target.recipient_id, RecipientStatus.FAILED, 0)
        attempts = 0
        while True:
            delivery = await self._perform(channel, target.chat_id, self._action(job))
            if delivery.retry_after:
                continue  # not the recipient's fault: try again once the pause is over
            attempts += 1
            if delivery.ok:
                self.stats.sent += 1
                return Outcome(target.recipient_id, RecipientStatus.SENT, attempts)
            if delivery.blocked:
                return Outcome(target.recipient_id, RecipientStatus.BLOCKED, attempts)
            if delivery.permanent or attempts >= self.max_attempts:
                log.info("broadcast %s: giving up on recipient %s: %s", job.id, target.recipient_id, delivery.error)
                return Outcome(target.recipient_id, RecipientStatus.FAILED, attempts)
            self.stats.transient_errors += 1
            await asyncio.sleep(self.retry_delay * 2 ** (attempts - 1))

    async def _perform(self, channel: Channel, chat_id: str, action: Action) -> Delivery:
        await self._pace()
        try:
            delivery = await channel.perform(chat_id, action)
        except Exception as error:  # a channel bug must not stop the broadcast
            log.exception("broadcast: channel %s failed", channel.name)
            delivery = Delivery(ok=False, error=repr(error)[:300])
        if delivery.retry_after:
            self.stats.retry_after_answers += 1
            self._paused_until = max(self._paused_until, time.monotonic() + delivery.retry_after)
            self.outbox.limiter.pause(delivery.retry_after)
        return delivery

    async def _pace(self) -> None:
        while True:
            await self._own_pace.wait()
            await self.outbox.limiter.wait()
            # Slots handed out before a 429 arrived must not be used: wait the pause out and queue again.
            remaining = self._paused_until - time.monotonic()
            if remaining <= 0:
                return
            await asyncio.sleep(remaining)

    # --- the author's progress message ------------------------------------------------------------------

    def _translator(self, locale: str | None) -> Translator:
        return translator(locale or self.config.default_locale, self.config.timezone)

    def _cancel_keyboard(self, job: BroadcastJob) -> InlineKeyboard:
        t = self._translator(job.author_locale)
        return inline([Button(t._("⏹ Cancel sending"), callback(CANCEL_PREFIX, job.id))])

    def _progress_text(self, job: BroadcastJob, progress: Progress) -> str:
        t = self._translator(job.author_locale)
        return broadcasts.progress_text(t, job.id, job.audience_label, progress, self.rate)

    async def _ensure_progress_message(self, job: BroadcastJob) -> BroadcastJob:
        """Show the progress once as sending starts, however few the recipients; a broadcast created without
        a chat (e.g. from a script) gets its progress message now."""
        channel = self.outbox.channels.get(job.author_channel)
        if channel is None:
            return job
        progress = await self.database.run(partial(broadcasts.progress_of, broadcast_id=job.id))
        text = self._progress_text(job, progress)
        if job.progress_message_id is not None:
            edit = EditText(job.progress_message_id, text, self._cancel_keyboard(job))
            if (await self._perform(channel, job.author_chat_id, edit)).ok:
                self.stats.progress_edits += 1
            return job
        delivery = await self._perform(channel, job.author_chat_id, SendText(text, self._cancel_keyboard(job)))
        if not delivery.ok or delivery.message_id is None:
            return job
        await self.database.run(
            partial(broadcasts.set_progress_message, broadcast_id=job.id, message_id=delivery.message_id)
        )
        return BroadcastJob(**{**job.__dict__, "progress_message_id": delivery.message_id})

    async def _show_progress(self, job: BroadcastJob, before: Progress, batch: list[Outcome]) -> None:
        channel = self.outbox.channels.get(job.author_channel)
        if channel is None or job.progress_message_id is None:
            return
        # ``before`` was read before this batch went out; count the batch in so the numbers are current.
        progress = Progress(
            before.status, before.total,
            before.sent + sum(1 for o in batch if o.status is RecipientStatus.SENT),
            before.failed + sum(1 for o in batch if o.status is RecipientStatus.FAILED),
            before.blocked + sum(1 for o in batch if o.status is RecipientStatus.BLOCKED),
        )
        text = self._progress_text(job, progress)
        edit = EditText(job.progress_message_id, text, self._cancel_keyboard(job))
        if (await self._perform(channel, job.author_chat_id, edit)).ok:
            self.stats.progress_edits += 1

    async def _finish(self, job: BroadcastJob) -> None:
        """Mark the broadcast done and turn the progress message into the summary (sent anew without one)."""
        deliveries = await self.database.run(partial(self._finish_in_session, job=job))
        await self.outbox.deliver(deliveries, limited=True)

    def _finish_in_session(self, session: Session, job: BroadcastJob) -> list[PendingDelivery]:
        now = self.clock()
        progress = broadcasts.finish_broadcast(session, job.id, now)
        author = session.get_one(Person, job.author_id)
        text = broadcasts.summary_text(self._translator(author.locale), job.id, job.audience_label, progress)
        summary = SendText(text) if job.progress_message_id is None else EditText(job.progress_message_id, text)
        return write_outbox(session, [(author, summary)], now)
