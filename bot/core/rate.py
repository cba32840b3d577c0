"""One sending rate for every process on PostgreSQL: a shared schedule of sending slots in one row.

Telegram's bulk limit (about 30 messages/s) is per bot, not per process. Each process reserves slots with one
atomic statement on ``send_rate`` (``next_slot = GREATEST(next_slot, now) + count * interval``, in the database's
clock): as many as it has sends waiting or asked for lately, up to ``BATCH_SECONDS`` of the rate, and gives them
out one by one (``bot.core.outbox.Pacer`` gives each to the most urgent message of its process). The statement
runs on one connection the limiter keeps in autocommit: a batch of slots is then one round trip, where a pooled
transaction took six (the pool's ping is BEGIN, a query and ROLLBACK; then BEGIN, the statement and COMMIT).

This is the generic cell rate algorithm with the row as the shared state: no lock is held while waiting, a 429
pushes the row forward for every process at once (and drops the slots a process still holds), and a process that
dies holds at most ``BATCH_SECONDS`` of slots, which simply go unused.

Advisory locks were the alternative; they serialise the processes around every send and a crashed holder's
session must time out first, so the row won. On SQLite (one process) the in-process ``RateLimiter`` is used.
If the database cannot be reached the process falls back to its own limiter rather than stop sending.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.core.outbox import CATCH_UP, RATE_HEADROOM, RateLimiter
from storage.database import Database

log = logging.getLogger(__name__)

# One round trip reserves as many slots as the process has sends waiting or asked for in the last ``BATCH_SECONDS``
# (what it sends next is most likely what it just sent), and at most ``BATCH_SECONDS`` of the rate. Under a crowd
# (about 800 sends a second in the benchmark's filing conversation with an unlimited rate) that is a round trip
# per batch instead of one per message; at Telegram's 30/s a process holds at most two slots ahead of the others.
BATCH_SECONDS = 0.1

_RESERVE = text(
    """
    UPDATE send_rate
       SET next_slot = GREATEST(next_slot, EXTRACT(EPOCH FROM clock_timestamp()) - :catch_up) + :span
     WHERE channel = :channel
    RETURNING next_slot - :span, EXTRACT(EPOCH FROM clock_timestamp())
    """
)
_PAUSE = text(
    """
    UPDATE send_rate
       SET next_slot = GREATEST(next_slot, EXTRACT(EPOCH FROM clock_timestamp()) + :seconds)
     WHERE channel = :channel
    """
)
_CREATE = text(
    "INSERT INTO send_rate (channel, next_slot) VALUES (:channel, 0) ON CONFLICT (channel) DO NOTHING"
)


class SharedRateLimiter(RateLimiter):
    """``RateLimiter``'s interface, with the slots kept in the database so all processes share them."""

    def __init__(
        self, database: Database, rate: float, channel: str = "telegram",
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(rate)
        self.database = database
        self.channel = channel
        self.monotonic = monotonic
        self._connection: AsyncConnection | None = None
        # The rest of the last batch: when each slot comes, on ``monotonic``'s clock.
        self._ahead: deque[float] = deque()
        # When each slot of the last ``BATCH_SECONDS`` was asked for.
        self._asked: deque[float] = deque()
        self._pauses: set[asyncio.Task[None]] = set()
        database.before_dispose(self.close)

    async def reserve(self, wanted: int = 1) -> float:
        now = self.monotonic()
        demand = self._demand(now, wanted)
        while self._ahead:
            slot = self._ahead.popleft()
            # One missed by more than the catch-up (nobody was waiting, or the event loop was busy) has passed for
            # every process: sending on it now would crowd theirs.
            if slot >= now - CATCH_UP:
                return slot - now
        try:
            return await self._reserve(demand)
        except (DBAPIError, OSError) as error:
            log.warning("shared send rate unavailable (%s); pacing this process alone", error)
            return await super().reserve()

    def _demand(self, now: float, waiting: int) -> int:
        """How many slots the next batch takes: those waiting, or as many as were asked for in the last
        ``BATCH_SECONDS`` (this one included), at most ``BATCH_SECONDS`` of the rate."""
        self._asked.append(now)
        while self._asked[0] < now - BATCH_SECONDS:
            self._asked.popleft()
        return max(1, min(max(waiting, len(self._asked)), math.floor(self.rate * RATE_HEADROOM * BATCH_SECONDS)))

    def pause(self, seconds: float) -> None:
        super().pause(seconds)
        self._ahead.clear()
        task = asyncio.get_running_loop().create_task(self._pause(seconds))
        self._pauses.add(task)
        task.add_done_callback(self._pauses.discard)

    async def _reserve(self, count: int) -> float:
        connection = await self._held()
        parameters = {"channel": self.channel, "span": count * self.interval, "catch_up": CATCH_UP}
        try:
            row = (await connection.execute(_RESERVE, parameters)).one()
        except BaseException:
            # A lost connection or a statement cut short by cancellation: the next slot starts on a new one.
            await self._drop()
            raise
        first = float(row[0]) - float(row[1])
        # The rest of the batch follows the first slot, or now when the first was a late one caught up on (the
        # row's ``GREATEST``): later than the row says, never earlier, so they keep to the rate.
        start = self.monotonic() + max(first, 0.0)
        self._ahead.extend(start + index * self.interval for index in range(1, count))
        return first

    async def _held(self) -> AsyncConnection:
        if self._connection is None:
            connection = await self.database.async_engine.connect()
            try:
                await connection.execution_options(isolation_level="AUTOCOMMIT")
                await connection.execute(_CREATE, {"channel": self.channel})
            except BaseException:
                await connection.invalidate()
                await connection.close()
                raise
            self._connection = connection
        return self._connection

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.invalidate()
            await connection.close()

    async def close(self) -> None:
        """Give the held connection back to the pool (before the pool is disposed)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close()

    async def _pause(self, seconds: float) -> None:
        try:
            async with self.database.async_engine.begin() as connection:
                await connection.execute(_PAUSE, {"channel": self.channel, "seconds": seconds})
        except (DBAPIError, OSError) as error:
            log.warning("could not share a 429 pause: %s", error)
