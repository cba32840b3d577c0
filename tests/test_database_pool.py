"""A process keeps a fixed pool of PostgreSQL connections: a crowd of units of work shares them instead of
opening (and closing again) a connection each."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.orm import Session

from storage.database import Database, is_sqlite


async def test_a_crowd_of_units_of_work_shares_the_pool_without_opening_more(database_url: str) -> None:
    if is_sqlite(database_url):
        pytest.skip("SQLite has one connection in its own thread; the PostgreSQL pass runs this")
    database = Database(database_url, pool_size=3)
    opened: list[Any] = []
    event.listen(database.async_engine.sync_engine, "connect", lambda connection, _record: opened.append(connection))

    def slow_unit(session: Session) -> int:
        return int(session.scalar(text("SELECT 1 FROM pg_sleep(0.05)")) or 0)

    try:
        results = await asyncio.gather(*(database.run(slow_unit) for _ in range(15)))
    finally:
        await database.dispose()

    assert results == [1] * 15
    assert len(opened) == 3
