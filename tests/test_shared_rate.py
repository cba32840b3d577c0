"""The shared send rate takes its slots on one connection it holds, replaces it when the server drops it, and
gives it back when the database is disposed."""

from __future__ import annotations

import itertools
import os
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event, select
from sqlalchemy.engine import make_url

from bot.core.rate import SharedRateLimiter
from storage.database import Database
from storage.models import Base, SendRateBucket

pytestmark = pytest.mark.skipif(
    not os.environ.get("GRIDBOT_TEST_POSTGRES"), reason="the shared send rate is kept in PostgreSQL"
)


async def _drop_every_connection(database_url: str) -> None:
    url = make_url(database_url)
    admin = await asyncpg.connect(user=url.username, host=url.host, port=url.port or 5432, database=url.database)
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            url.database,
        )
    finally:
        await admin.close()


async def test_slots_share_one_held_connection_which_is_replaced_when_lost(database_url: str) -> None:
    database = Database(database_url, pool_size=3)
    opened: list[Any] = []
    event.listen(database.async_engine.sync_engine, "connect", lambda connection, _record: opened.append(connection))
    async with database.async_engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    pool = database.async_engine.pool
    limiter = SharedRateLimiter(database, rate=10.0)  # a slot per round trip: batches hold at most 0.1 s
    try:
        for _ in range(5):
            await limiter.reserve()
        assert len(opened) == 1  # the schema's connection, then held for every slot
        assert pool.checkedout() == 1  # held between slots
        next_slot = (await database.run(lambda s: s.scalar(select(SendRateBucket.next_slot)))) or 0.0

        await _drop_every_connection(database_url)
        await limiter.reserve()  # the held connection is gone: this slot is the process's own
        await limiter.reserve()  # and the next one is shared again, on a new connection

        assert pool.checkedout() == 1
        later = (await database.run(lambda s: s.scalar(select(SendRateBucket.next_slot)))) or 0.0
        assert later > next_slot
    finally:
        await database.dispose()
    assert pool.checkedout() == 0


class _StoppedClock:
    """A monotonic clock that moves only when told: which slots are stale or recent is then up to the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _count_reservations(database: Database) -> list[str]:
    statements: list[str] = []

    def note(_connection: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().startswith("UPDATE send_rate"):
            statements.append(statement)

    event.listen(database.async_engine.sync_engine, "before_cursor_execute", note)
    return statements


async def test_a_crowd_takes_its_slots_in_one_round_trip_and_a_pause_drops_them(database: Database) -> None:
    reservations = _count_reservations(database)
    clock = _StoppedClock()
    limiter = SharedRateLimiter(database, rate=100.0, monotonic=clock)  # at most 9 slots per round trip
    delays = [await limiter.reserve(wanted=5)]
    delays += [await limiter.reserve() for _ in range(4)]
    assert len(reservations) == 1
    # The first slot may be a late one caught up on; the batch's others follow it a slot apart.
    gaps = [later - earlier for earlier, later in itertools.pairwise(delays[1:])]
    assert gaps == pytest.approx([limiter.interval] * 3)

    await limiter.reserve(wanted=500)
    for _ in range(8):
        await limiter.reserve()
    assert len(reservations) == 2  # nine slots, not five hundred
    await limiter.reserve()
    assert len(reservations) == 3

    limiter.pause(0.5)
    await limiter.reserve()  # the slots still held were taken before the 429: a new round trip
    assert len(reservations) == 4


async def test_a_process_sending_steadily_reserves_what_it_asked_for_lately(database: Database) -> None:
    reservations = _count_reservations(database)
    clock = _StoppedClock()
    limiter = SharedRateLimiter(database, rate=1000.0, monotonic=clock)
    # One send every 30 ms. Asked for lately: 1, 2, 3, then 4 (the last tenth of a second) from then on. The
    # first two sends take a round trip each; from the fourth on every other send takes a batch of 4 and the
    # next uses its second slot, the rest having passed (more than 50 ms late) before anyone asked.
    for _ in range(12):
        await limiter.reserve()
        clock.now += 0.03
    assert len(reservations) == 7
    clock.now += 1.0
    await limiter.reserve()  # quiet for a second: a single slot, the held ones long past
    await limiter.reserve()  # two asked for lately: a batch of two
    await limiter.reserve()
    assert len(reservations) == 9
