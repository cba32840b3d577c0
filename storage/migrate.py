"""Schema migrations with Alembic, run programmatically (``gridbot db upgrade`` and at start-up)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from storage.database import Database

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _upgrade(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def revisions() -> list[str]:
    """Every migration's revision id: schemas built from two chains that end in the same head differ here."""
    return sorted(script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions())


async def upgrade(database: Database, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (an empty database gets every table)."""
    async with database.async_engine.begin() as connection:
        await connection.run_sync(_upgrade, revision)


async def current_revision(database: Database) -> str | None:
    async with database.async_engine.connect() as connection:
        return await connection.run_sync(_current)


async def is_up_to_date(database: Database) -> bool:
    return await current_revision(database) == head_revision()
