"""The shared send rate takes its slots on one connection it holds, replaces it when the server drops it, and
gives it back when the database is disposed."""

from __future__ import annotations

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
    limiter = SharedRateLimiter(database, rate=1000.0)
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
