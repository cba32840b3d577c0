from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.core.app import Core
from bot.core.clock import FrozenClock
from bot.core.context import CoreConfig
from bot.simulator import BotApiSimulator
from handlers import build_router
from storage.database import Database
from storage.models import Base
from tests.e2e import TOKEN
from tests.harness import CoreChat
from tests.postgres import scratch_postgres_database


@pytest.fixture
async def database_url(tmp_path: Path) -> AsyncIterator[str]:
    """A new empty database: a SQLite file, or a PostgreSQL database when GRIDBOT_TEST_POSTGRES is set."""
    server = os.environ.get("GRIDBOT_TEST_POSTGRES")
    if not server:
        yield f"sqlite+aiosqlite:///{tmp_path}/gridbot.db"
        return
    async with scratch_postgres_database(server) as url:
        yield url


@pytest.fixture(params=["aiogram", "ptb"])
def engine(request: pytest.FixtureRequest) -> str:
    """The chat engine an end-to-end test runs through: every such test runs once per engine."""
    engine_name: str = request.param
    return engine_name


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    async with db.async_engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    yield db
    await db.dispose()


@pytest.fixture
def clock() -> FrozenClock:
    # A Wednesday morning in Nanyang.
    return FrozenClock(datetime(2026, 11, 25, 2, 0, tzinfo=UTC))


@pytest.fixture
def chat(database: Database, clock: FrozenClock) -> CoreChat:
    core = Core(database, build_router(), CoreConfig(bot_username="gridbot_test"), clock)
    return CoreChat(database, core, clock)


@pytest.fixture
async def sim() -> AsyncIterator[tuple[BotApiSimulator, str]]:
    """A Bot API simulator on a free port, and its base URL, for tests that run the real bot against it."""
    simulator = BotApiSimulator(token=TOKEN)
    url = await simulator.start("127.0.0.1", 0)
    yield simulator, url
    await simulator.stop()
