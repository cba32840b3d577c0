"""Running the real bot, through a real engine, against the Bot API simulator over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from bot.config import Settings
from bot.core.clock import Clock, system_clock
from bot.service import Service, prepare_database
from bot.simulator import BotApiSimulator

TOKEN = "123456:TEST-token"
T = TypeVar("T")


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
        from bot.engines.ptb_engine import serve
    else:
        from bot.engines.aiogram_engine import serve
    return serve


@contextlib.asynccontextmanager
async def running_bot(
    sim: BotApiSimulator,
    api_url: str,
    database_url: str,
    engine: str = "aiogram",
    clock: Clock = system_clock,
    **settings: Any,
) -> AsyncIterator[RunningBot]:
    """The bot serving the simulator until the block ends (polling unless a webhook URL is given)."""
    config = Settings(
        token=TOKEN, api_url=api_url, database_url=database_url, engine=engine,
        _env_file=None, **settings,  # type: ignore[call-arg]
    )
    service = Service.from_settings(config, clock=clock)
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
