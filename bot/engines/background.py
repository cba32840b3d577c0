"""The loops every engine starts beside taking updates in; they know no channel."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from bot.broadcaster import BroadcastWorker
from bot.scheduler import scheduler_loop

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.runtime import Runtime


def start_background_loops(settings: Settings, runtime: Runtime, stop: asyncio.Event) -> list[asyncio.Task[None]]:
    """The outbox, broadcasts and (unless ``GRIDBOT_SCHEDULER=off``) the scheduler, until ``stop`` is set."""
    loops = [
        asyncio.create_task(runtime.outbox.run(stop)),
        asyncio.create_task(BroadcastWorker.for_runtime(runtime).run(stop)),
    ]
    if settings.scheduler == "on":
        loops.append(asyncio.create_task(scheduler_loop(settings, runtime, stop)))
    return loops


async def cancel_loops(loops: list[asyncio.Task[None]]) -> None:
    """Stop loops still running (start-up failed, or shutdown): they must not outlive the process's work."""
    for loop in loops:
        loop.cancel()
    await asyncio.gather(*loops, return_exceptions=True)

