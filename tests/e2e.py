"""Running the real bot, through a real engine, against the Bot API simulator over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from pydantic import SecretStr

from bot.config import Settings
from bot.core.clock import Clock
from bot.service import Service, prepare_database
from bot.simulator import BotApiSimulator

TOKEN = "123456:TEST-token"
T = TypeVar("T")

# Thursday 08:10 in Nanyang: after the residents' quiet hours, before the day's digest, outside the weekly
# status's and the monthly bulletin's catch-up windows. A bot started here meets no periodic job, whatever day
# the suite runs on.
QUIET_MORNING = datetime(2026, 11, 26, 0, 10, tzinfo=UTC)


class TickingClock:
    """A clock that starts at a fixed instant and then runs at real time's pace (timeouts and retries still
    see time pass)."""

    def __init__(self, start: datetime = QUIET_MORNING) -> None:
        self.start = start
        self.origin = time.monotonic()

    def __call__(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self.origin)


@dataclass
class RunningBot:
    sim: BotApiSimulator
    service: Service
    task: asyncio.Task[None]
    stop: asyncio.Event

    async def drain(self) -> None:
        """Let updates in flight finish (the engine handles them in background tasks)."""
        await asyncio.sleep(0.3)

    async def shutdown(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 15)


def engine_serve(engine: str) -> Callable[..., Any]:
    if engine == "ptb":
        from bot.engines import ptb_engine

        return ptb_engine.serve
    from bot.engines import aiogram_engine

    return aiogram_engine.serve


@contextlib.asynccontextmanager
async def running_bot(
    sim: BotApiSimulator,
    api_url: str,
    database_url: str,
    engine: str = "aiogram",
    clock: Clock | None = None,
    **settings: Any,
) -> AsyncIterator[RunningBot]:
    """The bot serving the simulator until the block ends (polling unless a webhook URL is given); its clock
    starts on a quiet Thursday morning unless the test gives one."""
    config = Settings(
        token=SecretStr(TOKEN), api_url=api_url, database_url=database_url,
        engine=engine, _env_file=None, **settings,  # type: ignore[arg-type, call-arg]
    )
    service = Service.from_settings(config, clock=clock or TickingClock())
    await prepare_database(service.database)
    stop = asyncio.Event()
    task = asyncio.create_task(engine_serve(engine)(service, stop))
    bot = RunningBot(sim, service, task, stop)
    try:
        yield bot
    finally:
        await bot.shutdown()
        await service.database.dispose()


async def eventually(probe: Callable[[], Awaitable[T]], timeout: float = 5.0) -> T:
    """Poll ``probe`` until it returns something truthy (the bot works in background tasks)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await probe()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {probe.__name__}")
        await asyncio.sleep(0.05)
