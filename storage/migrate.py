"""Schema migrations with Alembic, run programmatically (``gridbot db upgrade`` and at start-up).

Start-up only needs to know whether the database is at this code's head. That is answered without Alembic:
the migration chain is read from the files' ``revision`` and ``down_revision`` lines, and the database's
revision from Alembic's version table. Importing Alembic (and the Mako templates it loads) and running every
migration module took about a tenth of a second of every start-up; Alembic is imported when a migration runs.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Column, Connection, MetaData, String, Table, inspect, select

from storage.database import Database

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = "alembic_version"
_VERSION = Table(VERSION_TABLE, MetaData(), Column("version_num", String(32), primary_key=True))
_ASSIGNMENT = re.compile(r"^(revision|down_revision)\s*(?::[^=\n]*)?=\s*(.+?)\s*$", re.MULTILINE)


def alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


@cache
def migration_chain() -> dict[str, tuple[str, ...]]:
    """Each migration's revision id and the ids it revises, as its file says them."""
    chain: dict[str, tuple[str, ...]] = {}
    for path in sorted((MIGRATIONS / "versions").glob("*.py")):
        values = {name: ast.literal_eval(value) for name, value in _ASSIGNMENT.findall(path.read_text("utf-8"))}
        down = values.get("down_revision")
        chain[values["revision"]] = () if down is None else (down,) if isinstance(down, str) else tuple(down)
    return chain


def head_revision() -> str | None:
    """The revision no migration revises: the schema this code expects."""
    chain = migration_chain()
    revised = {down for downs in chain.values() for down in downs}
    heads = [revision for revision in chain if revision not in revised]
    if len(heads) == 1:
        return heads[0]
    # None or several: Alembic says what is wrong with the chain.
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def revisions() -> list[str]:
    """Every migration's revision id: schemas built from two chains that end in the same head differ here."""
    return sorted(migration_chain())


def _upgrade(connection: Connection, revision: str) -> None:
    from alembic import command

    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def _current(connection: Connection) -> str | None:
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    versions = list(connection.scalars(select(_VERSION.c.version_num)))
    if len(versions) > 1:
        raise RuntimeError(f"the database is at several revisions at once: {', '.join(sorted(versions))}")
    return versions[0] if versions else None


async def upgrade(database: Database, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (an empty database gets every table)."""
    async with database.async_engine.begin() as connection:
        await connection.run_sync(_upgrade, revision)


async def current_revision(database: Database) -> str | None:
    async with database.async_engine.connect() as connection:
        return await connection.run_sync(_current)


async def is_up_to_date(database: Database) -> bool:
    return await current_revision(database) == head_revision()
