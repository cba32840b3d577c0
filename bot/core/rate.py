"""One sending rate for every process on PostgreSQL: a shared schedule of sending slots in one row.

Telegram's bulk limit (about 30 messages/s) is per bot, not per process. Each process reserves its next slot with
one atomic statement on ``send_rate`` (``next_slot = GREATEST(next_slot, now) + interval``, in the database's
clock) and waits until the slot it got (``bot.core.outbox.Pacer`` takes one slot at a time and gives it to the
most urgent message of its process). The statement runs on one connection the limiter keeps in autocommit: a
slot is then one round trip, where a pooled transaction took six (the pool's ping is BEGIN, a query and
ROLLBACK; then BEGIN, the statement and COMMIT), and slots come one after another.

This is the generic cell rate algorithm with the row as the shared state: no lock is held while waiting, a 429
pushes the row forward for every process at once, and a process that dies holds nothing. A row update costs
well under a millisecond, far below the 33 ms between slots at 30/s.

Advisory locks were the alternative; they serialise the processes around every send and a crashed holder's
session must time out first, so the row won. On SQLite (one process) the in-process ``RateLimiter`` is used.
If the database cannot be reached the process falls back to its own limiter rather than stop sending.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.core.outbox import CATCH_UP, RateLimiter
from storage.database import Database

log = logging.getLogger(__name__)

_RESERVE = text(
    """
    UPDATE send_rate
       SET next_slot = GREATEST(next_slot, EXTRACT(EPOCH FROM clock_timestamp()) - :catch_up) + :interval
     WHERE channel = :channel
    RETURNING next_slot - :interval, EXTRACT(EPOCH FROM clock_timestamp())
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

    # Each slot is one round trip to the database (well under 1 ms), taken one at a time by ``Pacer``: ample for
    # Telegram's free 30/s, and the bound on one process's rate on PostgreSQL.

    def __init__(self, database: Database, rate: float, channel: str = "telegram") -> None:
        super().__init__(rate)
        self.database = database
        self.channel = channel
        self._connection: AsyncConnection | None = None
        self._pauses: set[asyncio.Task[None]] = set()
        database.before_dispose(self.close)

    async def reserve(self) -> float:
        try:
            return await self._reserve()
        except (DBAPIError, OSError) as error:
            log.warning("shared send rate unavailable (%s); pacing this process alone", error)
            return await super().reserve()

    def pause(self, seconds: float) -> None:
        super().pause(seconds)
        task = asyncio.get_running_loop().create_task(self._pause(seconds))
        self._pauses.add(task)
        task.add_done_callback(self._pauses.discard)

    async def _reserve(self) -> float:
        connection = await self._held()
        parameters = {"channel": self.channel, "interval": self.interval, "catch_up": CATCH_UP}
        try:
            row = (await connection.execute(_RESERVE, parameters)).one()
        except BaseException:
            # A lost connection or a statement cut short by cancellation: the next slot starts on a new one.
            await self._drop()
            raise
        slot, server_now = float(row[0]), float(row[1])
        return slot - server_now

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
