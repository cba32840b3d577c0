"""Start-up: from launching ``gridbot run`` (a fresh interpreter, as an operator would) to the Bot API simulator
seeing the bot's first getUpdates, on a database that is already upgraded and holds an organisation; against
the yardstick of a fresh interpreter running ``import aiogram`` (the engine's own import, which nothing in
gridbot can make faster), measured in turns with it. The CPU time each process has used by then is reported too:
on a shared machine it moves far less than the wall time does.

    python -m bench.startup [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
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

# gridbot's own share of start-up: imports besides the engine, the schema check, getMe and the command menus.
TARGET_BEYOND_ENGINE = 0.5
# ``import aiogram`` takes 2.1-2.7 s on this machine when it is quiet. On a busy machine start-up and the import
# stretch together (4.7 s and 1.2 s beyond it in one CI run), so ``--quick`` guards the share of start-up beyond
# the import, two figures of one run, rather than seconds.
QUIET_ENGINE_IMPORT = 2.5
TARGET_SHARE_BEYOND_ENGINE = TARGET_BEYOND_ENGINE / QUIET_ENGINE_IMPORT
ROOT = Path(__file__).resolve().parent.parent
# The console script ``gridbot`` is ``bot.cli:main``; calling it this way needs no installed entry point.
CLI = [sys.executable, "-c", "import sys; from bot.cli import main; sys.exit(main())"]


@dataclass(frozen=True)
class StartupResult:
    seconds: list[float]
    engine_import_seconds: list[float]
    # CPU time (user + system) of each process by the same moments.
    cpu_seconds: list[float]
    engine_import_cpu_seconds: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def engine_import_median(self) -> float:
        return statistics.median(self.engine_import_seconds)

    @property
    def beyond_engine(self) -> float:
        """How much longer start-up takes than importing the engine alone."""
        return self.median - self.engine_import_median

    @property
    def share_beyond_engine(self) -> float:
        """Start-up beyond the engine's import as a share of the import: 0.2 is 0.5 s beyond a 2.5 s import."""
        return self.beyond_engine / self.engine_import_median

    @property
    def cpu_beyond_engine(self) -> float:
        return statistics.median(self.cpu_seconds) - statistics.median(self.engine_import_cpu_seconds)


def process_cpu(stat: Path, with_ended_children: bool = False) -> float:
    """CPU time a running process has used so far, from its ``/proc/<pid>/stat`` (utime and stime), and with
    ``with_ended_children`` that of its children it has waited for (cutime and cstime)."""
    # The fields after the command, which may itself hold ``)``: utime is the 14th of proc(5), cstime the 17th.
    fields = stat.read_text().rsplit(")", 1)[1].split()
    ticks = fields[11:15] if with_ended_children else fields[11:13]
    return sum(int(field) for field in ticks) / os.sysconf("SC_CLK_TCK")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class _FirstPoll:
    """Notes when the simulator answers its first getUpdates (the simulator has no hook for it, so its method
    table entry is wrapped)."""

    def __init__(self, sim: BotApiSimulator) -> None:
        self.seen = asyncio.Event()
        self.at = 0.0
        self.cpu = 0.0
        self.pid = 0
        methods: dict[str, Any] = sim._methods
        original = methods["getupdates"]

        async def get_updates(params: Any) -> Any:
            if not self.seen.is_set():
                self.at = time.perf_counter()
                self.cpu = process_cpu(Path(f"/proc/{self.pid}/stat"))
                self.seen.set()
            return await original(params)

        methods["getupdates"] = get_updates


async def _one_start(database_url: str) -> tuple[float, float]:
    async with BotApiSimulator(TOKEN) as sim:
        first_poll = _FirstPoll(sim)
        env = os.environ | {"GRIDBOT_DATABASE_URL": database_url, "PYTHONPATH": str(ROOT)}
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            *CLI, "run", "--token", TOKEN, "--api-url", str(sim.base_url), cwd=str(ROOT), env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )
        first_poll.pid = process.pid
        try:
            await asyncio.wait_for(first_poll.seen.wait(), 30)
            return first_poll.at - started, first_poll.cpu
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 20)
            except TimeoutError:
                process.kill()
                await process.wait()


async def _engine_import() -> tuple[float, float]:
    started, cpu_before = time.perf_counter(), _children_cpu()
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", "import aiogram", cwd=str(ROOT))
    if await process.wait() != 0:
        raise RuntimeError("python -c 'import aiogram' failed")
    # The only child that ends while this one runs, so the children's usage grew by its CPU time alone.
    return time.perf_counter() - started, _children_cpu() - cpu_before


async def measure(runs: int) -> StartupResult:
    with tempfile.TemporaryDirectory(prefix="gridbot-bench-") as directory:
        url = sqlite_url(Path(directory), "startup.db")
        service = Service.from_settings(bench_settings(url))
        await prepare_database(service.database)
        await service.database.run(lambda session: seed_people(session, 1000))
        await service.database.dispose()
        engine_import = []
        starts = []
        for _ in range(runs):  # in turns, so both see the machine in the same state
            engine_import.append(await _engine_import())
            starts.append(await _one_start(url))
    return StartupResult(
        [wall for wall, _cpu in starts], [wall for wall, _cpu in engine_import],
        [cpu for _wall, cpu in starts], [cpu for _wall, cpu in engine_import],
    )


def describe(result: StartupResult) -> str:
    runs = ", ".join(f"{s:.2f}" for s in result.seconds)
    imports = ", ".join(f"{s:.2f}" for s in result.engine_import_seconds)
    return (
        f"gridbot run -> first getUpdates: median {result.median:.2f} s; runs: {runs} s\n"
        f"python -c 'import aiogram': median {result.engine_import_median:.2f} s; runs: {imports} s\n"
        f"start-up beyond the engine's import: {result.beyond_engine:.2f} s (target <= {TARGET_BEYOND_ENGINE} s), "
        f"{result.share_beyond_engine:.2f} of the import (target <= {TARGET_SHARE_BEYOND_ENGINE:.2f})\n"
        f"CPU time by then: gridbot run {_seconds(result.cpu_seconds)}, import aiogram "
        f"{_seconds(result.engine_import_cpu_seconds)}; beyond: {result.cpu_beyond_engine:.2f} s"
    )


def _seconds(values: list[float]) -> str:
    return f"median {statistics.median(values):.2f} s ({', '.join(f'{v:.2f}' for v in values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(describe(asyncio.run(measure(args.runs))))


if __name__ == "__main__":
    main()
