"""Start-up: from launching ``gridbot run`` (a fresh interpreter, as an operator would) to the Bot API simulator
seeing the bot's first getUpdates, on a database that is already upgraded and holds an organisation.

    python -m bench.startup [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness import TOKEN, bench_settings, seed_people, sqlite_url
from bot.service import Service, prepare_database
from bot.simulator import BotApiSimulator

TARGET_SECONDS = 2.0
ROOT = Path(__file__).resolve().parent.parent
# The console script ``gridbot`` is ``bot.cli:main``; calling it this way needs no installed entry point.
CLI = [sys.executable, "-c", "import sys; from bot.cli import main; sys.exit(main())"]


@dataclass(frozen=True)
class StartupResult:
    seconds: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


class _FirstPoll:
    """Notes when the simulator answers its first getUpdates (the simulator has no hook for it, so its method
    table entry is wrapped)."""

    def __init__(self, sim: BotApiSimulator) -> None:
        self.seen = asyncio.Event()
        self.at = 0.0
        methods: dict[str, Any] = sim._methods
        original = methods["getupdates"]

        async def get_updates(params: Any) -> Any:
            if not self.seen.is_set():
                self.at = time.perf_counter()
                self.seen.set()
            return await original(params)

        methods["getupdates"] = get_updates


async def _one_start(database_url: str) -> float:
    async with BotApiSimulator(TOKEN) as sim:
        first_poll = _FirstPoll(sim)
        env = os.environ | {"GRIDBOT_DATABASE_URL": database_url, "PYTHONPATH": str(ROOT)}
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            *CLI, "run", "--token", TOKEN, "--api-url", str(sim.base_url), cwd=str(ROOT), env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )
        try:
            await asyncio.wait_for(first_poll.seen.wait(), 30)
            return first_poll.at - started
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 20)
            except TimeoutError:
                process.kill()
                await process.wait()


async def measure(runs: int) -> StartupResult:
    with tempfile.TemporaryDirectory(prefix="gridbot-bench-") as directory:
        url = sqlite_url(Path(directory), "startup.db")
        service = Service.from_settings(bench_settings(url))
        await prepare_database(service.database)
        await service.database.run(lambda session: seed_people(session, 1000))
        await service.database.dispose()
        seconds = [await _one_start(url) for _ in range(runs)]
    return StartupResult(seconds)


def describe(result: StartupResult) -> str:
    runs = ", ".join(f"{s:.2f}" for s in result.seconds)
    return (
        f"gridbot run -> first getUpdates: median {result.median:.2f} s (target < {TARGET_SECONDS:.0f} s); "
        f"runs: {runs} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(describe(asyncio.run(measure(args.runs))))


if __name__ == "__main__":
    main()
