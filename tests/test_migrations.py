"""The Alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from storage.database import Database
from storage.migrate import alembic_config, current_revision, head_revision, is_up_to_date, migration_chain, upgrade
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


def test_the_chain_read_from_the_files_is_alembics() -> None:
    """Start-up reads the migration chain from the files' text; Alembic, running every module, agrees."""
    scripts = ScriptDirectory.from_config(alembic_config())
    assert head_revision() == scripts.get_current_head()
    assert migration_chain() == {
        script.revision: _as_tuple(script.down_revision) for script in scripts.walk_revisions()
    }


def _as_tuple(down_revision: str | tuple[str, ...] | None) -> tuple[str, ...]:
    return (down_revision,) if isinstance(down_revision, str) else tuple(down_revision or ())


async def test_a_database_behind_the_head_is_not_up_to_date(database_url: str) -> None:
    database = Database(database_url)
    try:
        assert await current_revision(database) is None
        assert not await is_up_to_date(database)
        await upgrade(database, "0018o_api_keys")
        assert await current_revision(database) == "0018o_api_keys"
        assert not await is_up_to_date(database)
        await upgrade(database)
        assert await is_up_to_date(database)
    finally:
        await database.dispose()


async def test_requests_filed_before_places_get_their_buildings_grid(database_url: str) -> None:
    """0016p_places: every request so far is about a building, and takes the building's grid."""
    database = Database(database_url)
    try:
        await upgrade(database, "0014r_rounds")
        async with database.async_engine.begin() as connection:
            for statement in (
                "INSERT INTO streets (id, code, name) VALUES (1, 'S', 'S')",
                "INSERT INTO communities (id, code, name, street_id) VALUES (1, 'C', 'C', 1)",
                "INSERT INTO grids (id, code, name, community_id) VALUES (1, 'G1', 'G1', 1), (2, 'G2', 'G2', 1)",
                "INSERT INTO buildings (id, code, name, address, grid_id, active) VALUES (1, 'B', 'B', '', 2, true)",
                "INSERT INTO categories (id, code, names, due_days, remind_after_hours, escalate_after_hours,"
                " sort_order, active) VALUES (1, 'c', '{}', 7, 24, 48, 0, true)",
                "INSERT INTO people (id, channel, external_id, chat_id, display_name, unreachable, state_data,"
                " created_at, awaiting_first_message) VALUES (1, 'telegram', '1', '1', '', false, '{}',"
                " '2026-11-01 00:00:00', false)",
                "INSERT INTO requests (id, resident_id, building_id, category_id, description, hide_identity,"
                " status, level, unit_id, created_at, due_at, supporters, on_the_spot) VALUES (1, 1, 1, 1, 'x',"
                " false, 'NEW', 'GRID', 1, '2026-11-01 00:00:00', '2026-11-08 00:00:00', 0, false)",
            ):
                await connection.exec_driver_sql(statement)
        await upgrade(database)
        async with database.async_engine.connect() as connection:
            grid = (await connection.exec_driver_sql("SELECT grid_id, place_id FROM requests")).all()
        assert [tuple(row) for row in grid] == [(2, None)]
    finally:
        await database.dispose()


async def test_requests_take_their_ratings_stars(database_url: str) -> None:
    """0019_request_rating_stars: each rated request's row gets its rating's stars; the others none."""
    database = Database(database_url)
    try:
        await upgrade(database, "0018f_desk_figures")
        async with database.async_engine.begin() as connection:
            for statement in (
                "INSERT INTO streets (id, code, name) VALUES (1, 'S', 'S')",
                "INSERT INTO communities (id, code, name, street_id) VALUES (1, 'C', 'C', 1)",
                "INSERT INTO grids (id, code, name, community_id) VALUES (1, 'G1', 'G1', 1)",
                "INSERT INTO categories (id, code, names, due_days, remind_after_hours, escalate_after_hours,"
                " sort_order, active) VALUES (1, 'c', '{}', 7, 24, 48, 0, true)",
                "INSERT INTO people (id, channel, external_id, chat_id, display_name, unreachable, state_data,"
                " created_at, awaiting_first_message) VALUES (1, 'telegram', '1', '1', '', false, '{}',"
                " '2026-11-01 00:00:00', false)",
                *(f"INSERT INTO requests (id, resident_id, grid_id, category_id, description, hide_identity,"
                  f" status, level, unit_id, created_at, due_at, supporters, on_the_spot) VALUES ({request_id}, 1,"
                  f" 1, 1, 'x', false, 'CLOSED', 'GRID', 1, '2026-11-01 00:00:00', '2026-11-08 00:00:00', 0, false)"
                  for request_id in (1, 2, 3)),
                "INSERT INTO ratings (request_id, outcome, stars, at) VALUES (1, 'fixed', 4, '2026-11-02 00:00:00'),"
                " (2, 'fixed', NULL, '2026-11-02 00:00:00')",
            ):
                await connection.exec_driver_sql(statement)
        await upgrade(database)
        async with database.async_engine.connect() as connection:
            stars = (await connection.exec_driver_sql("SELECT id, rating_stars FROM requests ORDER BY id")).all()
        assert [tuple(row) for row in stars] == [(1, 4), (2, None), (3, None)]
    finally:
        await database.dispose()
