"""The Alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection

from storage.database import Database
from storage.migrate import current_revision, head_revision, upgrade
from storage.models import Base


def schema_differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_upgrade_from_empty_matches_the_models(database_url: str) -> None:
    database = Database(database_url)
    try:
        await upgrade(database)
        assert await current_revision(database) == head_revision()
        async with database.async_engine.connect() as connection:
            differences = await connection.run_sync(schema_differences)
        assert differences == [], "run `alembic revision --autogenerate` for the model changes"
        await upgrade(database)  # a second upgrade is a no-op
    finally:
        await database.dispose()
