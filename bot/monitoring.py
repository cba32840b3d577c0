"""Health checks and Prometheus metrics of one running process.

``/healthz`` answers 200 while the process runs. ``/readyz`` answers 200 only when the database answers, its
schema is the code's (or a newer version's), and the engine takes updates in (polling started or webhook
registered); otherwise 503 with the failing checks named. ``/metrics`` is the Prometheus text format. They are
served on the webhook server, or in polling mode on ``GRIDBOT_METRICS_LISTEN``. None of them shows a token, a
secret, a URL with a password or anything a person sent; still, only /healthz is meant for the outside (see
docs/deploy.md).

Counts this process sees as they happen (updates, 429s) are counted here; what several processes share (the
outbox, broadcasts, the scheduler's backlog) is read from the database at each scrape.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from bot.core.messages import Action, Delivery
from bot.core.scheduler import REQUEST_JOBS, due_requests
from storage.migrate import current_revision, head_revision, migration_chain
from storage.models import Broadcast, BroadcastStatus, OutboxMessage, OutboxStatus

if TYPE_CHECKING:
    from bot.core.outbox import Channel
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

Feed = Callable[[dict[str, Any]], Awaitable[None]]
# A scrape or readiness check gives up on a database that does not answer within this many seconds.
PROBE_TIMEOUT = 3.0


@dataclass(frozen=True)
class SharedState:
    """What the database says about work shared by every process, read at each scrape."""

    outbox_pending: int
    outbox_failed: int
    broadcasts_sending: int
    broadcast_total: int
    broadcast_done: int
    oldest_due: datetime | None


def shared_state(session: Session, now: datetime) -> SharedState:
    # Sent rows are the bulk of the table and are not counted: the others are few and found by the index.
    statuses = (
        select(OutboxMessage.status, func.count())
        .where(OutboxMessage.status.in_((OutboxStatus.PENDING, OutboxStatus.FAILED)))
        .group_by(OutboxMessage.status)
    )
    outbox = {status: count for status, count in session.execute(statuses)}
    sending = session.execute(
        select(func.count(), func.coalesce(func.sum(Broadcast.total), 0),
               func.coalesce(func.sum(Broadcast.sent + Broadcast.failed + Broadcast.blocked), 0))
        .where(Broadcast.status == BroadcastStatus.SENDING)
    ).one()
    due = [job.due_at for kind in REQUEST_JOBS for job in due_requests(session, kind, now, limit=1)]
    return SharedState(
        outbox_pending=outbox.get(OutboxStatus.PENDING, 0), outbox_failed=outbox.get(OutboxStatus.FAILED, 0),
        broadcasts_sending=int(sending[0]), broadcast_total=int(sending[1]), broadcast_done=int(sending[2]),
        oldest_due=min(due, default=None),
    )


def database_answers(session: Session) -> bool:
    return session.execute(text("SELECT 1")).scalar() == 1


def schema_serves_this_code(revision: str | None) -> bool:
    """At this code's head, or at a revision it does not know: a newer version migrated the database, and
    migrations only add, so this code keeps working during a rolling upgrade (docs/deploy.md)."""
    if revision == head_revision():
        return True
    if revision is None:
        return False
    return revision not in migration_chain()


class CountedChannel:
    """A channel whose 429 answers are counted; everything else passes through."""

    def __init__(self, inner: Channel, monitor: Monitor) -> None:
        self.inner = inner
        self.name = inner.name
        self.monitor = monitor

    async def perform(self, chat_id: str, action: Action) -> Delivery:
        delivery = await self.inner.perform(chat_id, action)
        if delivery.retry_after:
            self.monitor.rate_limited.inc()
            self.monitor.retry_after_waited.inc(delivery.retry_after)
        return delivery

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class Monitor:
    """The health and metrics of one process, over its runtime; each has its own registry."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        # Set once the engine takes updates in: polling started, or the webhook registered.
        self.engine_ready = False
        self.registry = registry = CollectorRegistry()
        self.received = Counter("gridbot_updates_received", "Updates handed to the core", registry=registry)
        self.handled = Counter("gridbot_updates_handled", "Updates handled to the end", registry=registry)
        self.failed = Counter("gridbot_updates_failed", "Attempts at an update that raised", registry=registry)
        self.handling_time = Histogram(
            "gridbot_update_handling_seconds", "Time from taking an update to having sent its replies",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=registry,
        )
        self.rate_limited = Counter("gridbot_rate_limited", "429 answers from the platform", registry=registry)
        self.retry_after_waited = Counter(
            "gridbot_retry_after_seconds", "Seconds the platform asked to wait in its 429 answers", registry=registry
        )
        self.maybe_duplicated = Gauge(
            "gridbot_outbox_maybe_duplicated", "Sends whose outcome is unknown (may show twice), this process",
            registry=registry,
        )
        self.outbox_pending = Gauge("gridbot_outbox_pending", "Outgoing messages not sent yet", registry=registry)
        self.outbox_failed = Gauge("gridbot_outbox_failed", "Outgoing messages given up on", registry=registry)
        self.broadcasts_sending = Gauge("gridbot_broadcasts_sending", "Broadcasts being sent", registry=registry)
        self.broadcast_recipients = Gauge(
            "gridbot_broadcast_recipients", "Recipients of the broadcasts being sent", ["state"], registry=registry
        )
        self.scheduler_lag = Gauge(
            "gridbot_scheduler_lag_seconds", "How long the oldest due reminder or escalation has waited",
            registry=registry,
        )
        self.database_up = Gauge("gridbot_database_up", "1 if the database answered the last check", registry=registry)
        self.database_unavailable = Counter(
            "gridbot_database_unavailable", "Checks the database did not answer", registry=registry
        )
        self.ready = Gauge("gridbot_engine_ready", "1 once polling or the webhook is running", registry=registry)

    # --- counting as it happens -------------------------------------------------------------------------

    def count_channels(self) -> None:
        """Count the 429s of every channel the outbox (and so the broadcaster) sends through."""
        channels = self.runtime.outbox.channels
        for name, channel in list(channels.items()):
            if not isinstance(channel, CountedChannel):
                channels[name] = CountedChannel(channel, self)

    def timed(self, feed: Feed) -> Feed:
        """``feed`` counted and timed."""

        async def counted(payload: dict[str, Any]) -> None:
            self.received.inc()
            started = time.perf_counter()
            try:
                await feed(payload)
            except Exception:
                self.failed.inc()
                raise
            self.handled.inc()
            self.handling_time.observe(time.perf_counter() - started)

        return counted

    # --- checks -----------------------------------------------------------------------------------------

    async def _probe(self, work: Callable[[], Awaitable[Any]]) -> Any:
        """``work()``'s result, or None when the database does not answer (counted as unavailable)."""
        try:
            result = await asyncio.wait_for(work(), PROBE_TIMEOUT)
        except Exception as error:  # any failure to reach the database counts, whatever the driver raises
            log.warning("health check: database unavailable (%s)", type(error).__name__)
            self.database_up.set(0)
            self.database_unavailable.inc()
            return None
        self.database_up.set(1)
        return result

    async def readiness(self) -> dict[str, bool]:
        """Each readiness check by name, True when it passes."""
        database = self.runtime.database
        answers = await self._probe(lambda: database.run(database_answers)) is True
        revision = await self._probe(lambda: current_revision(database)) if answers else None
        current = answers and schema_serves_this_code(revision)
        return {"database": answers, "schema": current, "engine": self.engine_ready}

    async def refresh(self) -> None:
        """Read what the database knows into the gauges."""
        self.maybe_duplicated.set(self.runtime.outbox.maybe_duplicated)
        self.ready.set(1 if self.engine_ready else 0)
        now = self.runtime.core.clock()
        state: SharedState | None = await self._probe(
            lambda: self.runtime.database.run(partial(shared_state, now=now))
        )
        if state is None:
            return
        self.outbox_pending.set(state.outbox_pending)
        self.outbox_failed.set(state.outbox_failed)
        self.broadcasts_sending.set(state.broadcasts_sending)
        self.broadcast_recipients.labels("total").set(state.broadcast_total)
        self.broadcast_recipients.labels("done").set(state.broadcast_done)
        lag = (now - state.oldest_due).total_seconds() if state.oldest_due else 0.0
        self.scheduler_lag.set(max(lag, 0.0))

    # --- serving ----------------------------------------------------------------------------------------

    def mount(self, app: web.Application) -> None:
        """Add /healthz, /readyz and /metrics to ``app``."""

        async def healthz(_request: web.Request) -> web.Response:
            return web.Response(text="ok")

        async def readyz(_request: web.Request) -> web.Response:
            checks = await self.readiness()
            body = "\n".join(f"{name} {'ok' if passed else 'failing'}" for name, passed in checks.items())
            return web.Response(status=200 if all(checks.values()) else 503, text=body + "\n")

        async def metrics(_request: web.Request) -> web.Response:
            await self.refresh()
            return web.Response(body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

        app.router.add_get("/healthz", healthz)
        app.router.add_get("/readyz", readyz)
        app.router.add_get("/metrics", metrics)

    async def serve(self, listen: str, stop: asyncio.Event) -> None:
        """Serve the three routes alone on ``listen`` (host:port) until ``stop`` is set (polling mode)."""
        app = web.Application()
        self.mount(app)
        runner = web.AppRunner(app)
        await runner.setup()
        host, _, port = listen.rpartition(":")
        try:
            await web.TCPSite(runner, host or "127.0.0.1", int(port)).start()
            await stop.wait()
        finally:
            await runner.cleanup()
