from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.core.app import Core
from bot.core.clock import FrozenClock
from bot.core.context import CoreConfig
from handlers import build_router
from storage.database import Database
from storage.models import Base
from tests.harness import CoreChat


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/gridbot.db")
    assert db.sync_engine is not None
    Base.metadata.create_all(db.sync_engine)
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
