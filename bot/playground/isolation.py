"""The playground runs only on a database it created for itself.

It loads a demo organisation, makes made-up Telegram ids staff, and delivers whatever the outbox holds into
its simulator: on a real deployment's database that would hand out roles and swallow real messages. So it
runs on an empty database, which it marks as its own (``playground_marker``), or on one it marked before.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection, func, inspect, select, table
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from storage.database import Database, is_sqlite
from storage.models import Person, PlaygroundMarker, Street


class NotAPlaygroundDatabase(Exception):
    """The database holds a deployment; the message says what it holds and what to do instead."""


def shown_url(database_url: str) -> str:
    """The database URL as it may be printed: without its password."""
    return make_url(database_url).render_as_string(hide_password=True)


async def deployment_in(database_url: str) -> str | None:
    """What makes this database a real deployment ("12 people, 3 streets"), or None when it is empty, missing
    or the playground's own. Reads only: a missing SQLite file is not created."""
    url = make_url(database_url)
    if is_sqlite(url) and url.database not in (None, "", ":memory:") and not Path(url.database or "").exists():
        return None
    database = Database(database_url)
    try:
        async with database.async_engine.connect() as connection:
            return await connection.run_sync(_deployment)
    finally:
        await database.dispose()


def _deployment(connection: Connection) -> str | None:
    tables = set(inspect(connection).get_table_names())

    def rows(name: str) -> int:
        return int(connection.scalar(select(func.count()).select_from(table(name))) or 0) if name in tables else 0

    if rows("playground_marker"):
        return None
    counts = (("people", "person", "people"), ("streets", "street", "streets"))
    held = [f"{count} {one if count == 1 else many}" for name, one, many in counts if (count := rows(name))]
    return ", ".join(held) or None


def claim(session: Session, now: datetime) -> None:
    """Mark the database as the playground's; refuses one that gained a deployment meanwhile."""
    if session.scalar(select(PlaygroundMarker.id).limit(1)) is not None:
        return
    if session.scalar(select(Person.id).limit(1)) is not None or session.scalar(select(Street.id).limit(1)):
        raise NotAPlaygroundDatabase("the database is not empty")
    session.add(PlaygroundMarker(created_at=now))
