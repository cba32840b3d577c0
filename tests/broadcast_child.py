"""Runs the bot (aiogram engine, broadcast worker) as its own process, for tests that kill it.

Usage: python -m tests.broadcast_child API_URL DATABASE_URL
"""

from __future__ import annotations

import asyncio
import sys
from functools import partial

from pydantic import SecretStr

from bot.config import Settings
from bot.engines.aiogram_engine import serve
from bot.service import Service, prepare_database, run_until_stopped

TOKEN = "123:ABC"
RATE = 100


async def main(api_url: str, database_url: str) -> None:
    settings = Settings(
        token=SecretStr(TOKEN), api_url=api_url, database_url=database_url, send_rate=RATE,
        _env_file=None,  # type: ignore[call-arg]
    )
    service = Service.from_settings(settings)
    await prepare_database(service.database)
    try:
        await run_until_stopped(partial(serve, service))
    finally:
        await service.database.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
