"""The broadcast worker: delivers confirmed broadcasts in the background at the configured rate.

It takes one broadcast at a time (they share the rate anyway) and streams its pending recipients from the
database in batches. Each of a few concurrent senders records the result of its send (group-committed with the
others') before it sends again, so after a crash each sender repeats at most its one message in flight: one
sender up to ``SENDER_RATE``, which covers Telegram's free 30/s; above it (paid broadcasts, up to 1,000/s) as
many as keep the rate full while a send and its commit take ``LOADED_ROUND_TRIP``, 25 at 1,000/s, so a crash
then repeats up to that many messages. Broadcasts have the lowest priority of the
outbox's pacer, so answers to residents overtake them. A 429 pauses every send of the process, a 403 marks the
recipient blocked, network errors and 5xx are retried with back-off. The author sees one progress message,
edited every few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial

from sqlalchemy.orm import Session

from bot.core import broadcasts
from bot.core.app import PendingDelivery, write_outbox
from bot.core.broadcasts import CANCEL_PREFIX, BroadcastJob, Outcome, Progress, Target
from bot.core.clock import Clock, system_clock
from bot.core.context import CoreConfig
from bot.core.messages import Action, Button, Delivery, EditText, InlineKeyboard, SendPhoto, SendText, inline
from bot.core.outbox import BulkChannel, BulkSend, Channel, GroupCommit, OutboxSender, Slot
from bot.core.router import callback
from bot.i18n import Translator, translator
from bot.runtime import Runtime
from storage.database import Database, DatabaseUnavailable
from storage.models import Broadcast, BroadcastStatus, Person, Priority, RecipientStatus

log = logging.getLogger(__name__)

# What one sender keeps up with: a send and the commit of its result, one after the other, take 2-5 ms here.
SENDER_RATE = 150.0
# How long a send and its commit take on a loaded machine (load average 5 on two cores, the Bot API answering
# from the same machine): the senders above ``SENDER_RATE`` are counted for it. Counted for 2-5 ms, 1,000/s
# reached 0.68 of the rate there; for this, 0.92.
LOADED_ROUND_TRIP = 0.025
# Recipients read per database hop: about half a second of sending, so a cancel takes effect that soon.
BATCH_SECONDS = 0.5


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
        batch_size: int | None = None,
        senders: int | None = None,
        progress_interval: float = 3.0,
        poll_interval: float = 1.0,
        max_attempts: int = 5,
        retry_delay: float = 0.5,
    ) -> None:
        self.database = database
        self.outbox = outbox
        self.config = config
        self.clock = clock
        self.progress_interval = progress_interval
        self.poll_interval = poll_interval
        self.max_attempts = max_attempts
        self.retry_delay = retry_delay
        # The outbox's pacer is shared so that broadcasts and everything else together keep to the rate.
        self.rate = outbox.limiter.rate
        self.senders = senders or (1 if self.rate <= SENDER_RATE else math.ceil(self.rate * LOADED_ROUND_TRIP))
        self.batch_size = batch_size or max(10, self.senders, int(self.rate * BATCH_SECONDS))
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
        results: GroupCommit[Outcome] = GroupCommit(self.database, partial(self._record, broadcast_id=job.id))
        recipients = _Recipients(partial(self._fetch, job), partial(self._progress_shown, job), self.progress_interval)
        sends = self._sends(job)
        try:
            await asyncio.gather(*(self._sender(job, sends, recipients, results, stop) for _ in range(self.senders)))
        finally:
            recipients.close()
        return await self._progress(job)

    async def _sender(
        self, job: BroadcastJob, sends: dict[str, BulkSend], recipients: _Recipients, results: GroupCommit[Outcome],
        stop: asyncio.Event | None,
    ) -> None:
        slot: asyncio.Future[Slot] | None = None
        try:
            while not (stop is not None and stop.is_set()) and (target := await recipients.next()) is not None:
                outcome = await self._send_one(job, sends, target, slot)
                # The next slot is waited for while the result is committed, but used only after the commit: a
                # crash repeats at most this sender's one message in flight.
                slot = asyncio.ensure_future(self.outbox.pacer.wait(Priority.BROADCAST))
                await results.record([outcome])
        finally:
            if slot is not None:
                slot.cancel()

    async def _progress_shown(self, job: BroadcastJob, progress: Progress) -> None:
        await self._show_progress(job, progress, [])

    @staticmethod
    def _record(session: Session, items: list[Outcome], broadcast_id: int) -> None:
        broadcasts.record_outcomes(session, broadcast_id, items)

    async def _fetch(self, job: BroadcastJob, after_id: int) -> tuple[Progress, list[Target]]:
        """The broadcast's progress (cancelled?) and its next pending recipients after ``after_id``."""
        return await self.database.run(
            partial(broadcasts.record_and_fetch, broadcast_id=job.id, outcomes=[], after_id=after_id,
                    limit=self.batch_size)
        )

    async def _progress(self, job: BroadcastJob) -> Progress:
        return await self.database.run(partial(broadcasts.progress_of, broadcast_id=job.id))

    # --- sending ----------------------------------------------------------------------------------------

    def _action(self, job: BroadcastJob) -> Action:
        if job.photo:
            return SendPhoto(job.photo, job.text)
        return SendText(job.text)

    def _sends(self, job: BroadcastJob) -> dict[str, BulkSend]:
        """How each channel sends the broadcast's message to one recipient: its bulk way if it has one."""
        action = self._action(job)
        sends: dict[str, BulkSend] = {}
        for name, channel in self.outbox.channels.items():
            bulk = channel.bulk(action) if isinstance(channel, BulkChannel) else None
            sends[name] = bulk or partial(_perform_action, channel, action)
        return sends

    async def _send_one(
        self, job: BroadcastJob, sends: dict[str, BulkSend], target: Target, slot: asyncio.Future[Slot] | None
    ) -> Outcome:
        send = sends.get(target.channel)
        if send is None:
            return Outcome(target.recipient_id, RecipientStatus.FAILED, 0)
        attempts = 0
        while True:
            delivery = await self._perform(send, target.chat_id, slot)
            slot = None
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

    async def _perform(self, send: BulkSend, chat_id: str, slot: asyncio.Future[Slot] | None = None) -> Delivery:
        """Send once a slot of the rate is given (``slot``, when one was asked for already)."""
        pacer = self.outbox.pacer
        given = await slot if slot is not None else None
        if given is None or pacer.paused:  # a slot given just before a 429 came back is not used
            given = await pacer.wait(Priority.BROADCAST)
        try:
            delivery = await send(chat_id)
        except Exception as error:  # a channel bug must not stop the broadcast
            log.exception("broadcast: a channel failed")
            delivery = Delivery(ok=False, error=repr(error)[:300])
        given.sent()
        if delivery.retry_after:
            self.stats.retry_after_answers += 1
            self.outbox.pacer.pause(delivery.retry_after)
        return delivery

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
            if (await self._perform(partial(_perform_action, channel, edit), job.author_chat_id)).ok:
                self.stats.progress_edits += 1
            return job
        delivery = await self._perform(
            partial(_perform_action, channel, SendText(text, self._cancel_keyboard(job))), job.author_chat_id)
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
        if (await self._perform(partial(_perform_action, channel, edit), job.author_chat_id)).ok:
            self.stats.progress_edits += 1

    async def _finish(self, job: BroadcastJob) -> None:
        """Mark the broadcast done and turn the progress message into the summary (sent anew without one)."""
        deliveries = await self.database.run(partial(self._finish_in_session, job=job))
        await self.outbox.deliver(deliveries)

    def _finish_in_session(self, session: Session, job: BroadcastJob) -> list[PendingDelivery]:
        now = self.clock()
        progress = broadcasts.finish_broadcast(session, job.id, now)
        author = session.get_one(Person, job.author_id)
        text = broadcasts.summary_text(self._translator(author.locale), job.id, job.audience_label, progress)
        summary = SendText(text) if job.progress_message_id is None else EditText(job.progress_message_id, text)
        return write_outbox(session, [(author, summary)], now)


async def _perform_action(channel: Channel, action: Action, chat_id: str) -> Delivery:
    return await channel.perform(chat_id, action)


class _Recipients:
    """A broadcast's pending recipients in id order, shared by its senders and read one batch ahead, so the
    senders never stop for the database between batches."""

    def __init__(
        self,
        fetch: Callable[[int], Awaitable[tuple[Progress, list[Target]]]],
        show_progress: Callable[[Progress], Awaitable[None]],
        progress_interval: float,
    ) -> None:
        self._fetch = fetch
        self._show_progress = show_progress
        self._progress_interval = progress_interval
        self._queue: deque[Target] = deque()
        self._next_batch: asyncio.Future[tuple[Progress, list[Target]]] | None = None
        self._after_id = 0
        self._done = False
        self._refilling = asyncio.Lock()
        self._progress_at = time.monotonic()

    def close(self) -> None:
        if self._next_batch is not None:
            self._next_batch.cancel()

    async def next(self) -> Target | None:
        """The next recipient, or None once all are taken or the broadcast was cancelled."""
        async with self._refilling:
            if not self._queue and not self._done:
                await self._refill()
            return self._queue.popleft() if self._queue else None

    async def _refill(self) -> None:
        progress, batch = await (self._next_batch or self._fetch(self._after_id))
        self._next_batch = None
        if progress.status is not BroadcastStatus.SENDING or not batch:
            self._done = True
            return
        self._queue.extend(batch)
        self._after_id = batch[-1].recipient_id
        self._next_batch = asyncio.ensure_future(self._fetch(self._after_id))
        if time.monotonic() - self._progress_at >= self._progress_interval:
            self._progress_at = time.monotonic()
            await self._show_progress(progress)
