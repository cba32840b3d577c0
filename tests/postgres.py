"""Scratch PostgreSQL databases for tests: created empty, dropped afterwards."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

import asyncpg
from sqlalchemy.engine import make_url


@contextlib.asynccontextmanager
async def scratch_postgres_database(server_url: str) -> AsyncIterator[str]:
    """``server_url`` names any database on the server (``postgresql+asyncpg://user@host:port/test``)."""
    url = make_url(server_url)
    name = f"gridbot_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(
        user=url.username, password=url.password, host=url.host, port=url.port or 5432, database=url.database
    )
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
