"""PostgreSQL throughput against SQLite, and two processes against one, measured in one run.

    python -m bench.postgres [--postgres URL] [--conversations 600] [--lanes 50] [--runs 3] [--pool 20]
                             [--also-pools 5,10,50]

Each turn serves the filing conversations of ``bench.conversation`` (``conversations`` residents file one
request each in seven steps, ``lanes`` of them at once, through the real aiogram engine with the null network of
``bench.harness``) from a fresh database, seeded by this process with ``bench.harness.deployment``. The turns of
one repetition:

- **SQLite**: one process serves every resident from a SQLite file;
- **PostgreSQL, one process**: the same on a new scratch PostgreSQL database, with a pool of ``--pool``
  connections (``GRIDBOT_DATABASE_POOL_SIZE``); one more such turn for each size in ``--also-pools``;
- **PostgreSQL, two processes**: two processes at once against one scratch database, each serving half the
  residents (disjoint) with half the lanes, so as many residents type at once as in the other turns.

Every serving process is a fresh interpreter (``python -m bench.postgres --serve JOB``). It warms up on
``--warmup`` conversations of residents of its own, says it is ready, and starts its measured conversations
when this process tells all of them to go. Each reports its updates, the monotonic clock at its start and end
and its CPU time (``time.process_time``: event loop and database thread; the PostgreSQL server's CPU is not
in it) over the measured conversations. A turn's rate is all updates over the wall time from the first start
to the last end; its CPU per update is the processes' CPU summed over all updates. After each turn every
seeded resident's request must exist in the database, or the run fails.

When the PostgreSQL server runs on this machine, a turn also notes the CPU its processes spent from the go to
the end (read from ``/proc``): the bot's processes and the server share the machine's cores, so two processes
can reach at most ``cores / (bot CPU + server CPU per update)``, and that ceiling, from the one-process turns'
figures, is printed beside the ratio two processes / one.

Turns alternate (repetition 1 in the order above, repetition 2 the other way round, and so on), as the load
of a shared machine drifts. Printed: each turn, the median rate and CPU per update of each setup, and the
ratios PostgreSQL / SQLite (one process, pool ``--pool``) and two processes / one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.conversation import count_requests, in_lanes
from bench.harness import (
    Conversation,
    bench_settings,
    deployment,
    gridbot_under_test,
    number_updates_from,
    postgres_url,
    run_scripted,
    sqlite_url,
)
from bench.startup import process_cpu
from bot.service import Service
from storage.database import DEFAULT_POOL_SIZE, Database

DEFAULT_POSTGRES = "postgresql+asyncpg://root@127.0.0.1:5432/test"
# The targets.
TARGET_OF_SQLITE = 0.8
TARGET_OF_ONE = 1.6
SQLITE = "SQLite"
TWO = "PostgreSQL, two processes"
# Apart enough that the update ids of two serving processes never meet in the shared inbox.
UPDATE_IDS_PER_PROCESS = 100_000_000


def one_process(pool: int) -> str:
    return f"PostgreSQL, one process, pool {pool}"


# --- one serving process ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """What one serving process is told: where, whom and how."""

    url: str
    warmup: list[int]
    measured: list[int]
    lanes: int
    pool: int
    index: int


@dataclass(frozen=True)
class Share:
    """What one serving process measured over its measured conversations."""

    updates: int
    started: float  # time.monotonic(), the same clock in every process of the machine
    finished: float
    cpu: float  # seconds of process CPU


async def serve(job: Job) -> Share:
    number_updates_from(1 + job.index * UPDATE_IDS_PER_PROCESS)
    service = Service.from_settings(bench_settings(job.url, database_pool_size=job.pool))
    try:
        under_test = gridbot_under_test(service)

        def scripts(residents: list[int], lanes: int) -> list[Any]:
            people = [Conversation(user_id, under_test.session) for user_id in residents]
            return in_lanes(people, lanes, [[] for _ in range(lanes)])

        await run_scripted(under_test, scripts(job.warmup, min(job.lanes, len(job.warmup))))
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        started, cpu = time.monotonic(), time.process_time()
        stats = await run_scripted(under_test, scripts(job.measured, job.lanes))
        return Share(stats.steps, started, time.monotonic(), time.process_time() - cpu)
    finally:
        await service.database.dispose()


# --- a turn: fresh database, serving processes started together ----------------------------------------------


@dataclass(frozen=True)
class Turn:
    setup: str
    shares: list[Share]
    filed: int
    residents: int
    load: float  # 1-minute load average when the turn started
    server_cpu: float | None = None  # seconds of the PostgreSQL server's CPU, when it runs on this machine

    @property
    def updates(self) -> int:
        return sum(share.updates for share in self.shares)

    @property
    def rate(self) -> float:
        wall = max(share.finished for share in self.shares) - min(share.started for share in self.shares)
        return self.updates / wall

    @property
    def cpu_ms(self) -> float:
        return 1000 * sum(share.cpu for share in self.shares) / self.updates

    @property
    def server_cpu_ms(self) -> float | None:
        return None if self.server_cpu is None else 1000 * self.server_cpu / self.updates


def postgres_server_cpu(proc: Path = Path("/proc")) -> float | None:
    """Seconds of CPU (user and system) of every process named ``postgres`` on this machine and of their
    children that ended, None if none can be seen (the server runs elsewhere). A connection's backend ends with
    it, and its CPU then counts in the postmaster's children's time: the sum only grows."""
    seconds, seen = 0.0, False
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
            seconds += process_cpu(entry / "stat", with_ended_children=True)
        except OSError:  # the process ended while being read
            continue
        seen = True
    return seconds if seen else None


def _split(items: list[int], parts: int) -> list[list[int]]:
    return [items[index::parts] for index in range(parts)]


def _serving(jobs: list[Job], log: Path) -> tuple[list[Share], float | None]:
    """Start a fresh interpreter per job, let all of them go at once when all are warm, collect their shares
    and the PostgreSQL server's CPU from the go to the end."""
    command = [sys.executable, "-m", "bench.postgres", "--serve"]
    with log.open("w") as errors:
        processes = [
            subprocess.Popen([*command, json.dumps(vars(job))], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=errors, text=True)
            for job in jobs
        ]
        for process in processes:
            assert process.stdout is not None
            if process.stdout.readline().strip() != "ready":
                for started in processes:
                    started.kill()
                    started.wait()
                raise RuntimeError(f"a serving process did not get ready:\n{log.read_text()[-4000:]}")
        server_before = postgres_server_cpu()
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        outputs = [process.communicate(timeout=1800)[0] for process in processes]
        server_after = postgres_server_cpu()
    if any(process.returncode for process in processes):
        raise RuntimeError(f"a serving process failed:\n{log.read_text()[-4000:]}")
    shares = [Share(**json.loads(output.strip().splitlines()[-1])) for output in outputs]
    server = None if server_before is None or server_after is None else server_after - server_before
    return shares, server


async def _seeded(url: str, residents: int) -> list[int]:
    async with deployment(url, residents) as deployed:
        return deployed.residents


async def _filed(url: str) -> int:
    database = Database(url)
    try:
        return await database.run(count_requests)
    finally:
        await database.dispose()


async def turn(setup: str, url: str, processes: int, pool: int, sizes: Sizes, scratch: Path) -> Turn:
    load = os.getloadavg()[0]
    residents = await _seeded(url, sizes.conversations + processes * sizes.warmup)
    warmups = _split(residents[: processes * sizes.warmup], processes)
    measured = _split(residents[processes * sizes.warmup :], processes)
    jobs = [Job(url, warmups[i], measured[i], max(1, sizes.lanes // processes), pool, i) for i in range(processes)]
    shares, server_cpu = await asyncio.to_thread(_serving, jobs, scratch / "serving.log")
    measured_turn = Turn(setup, shares, await _filed(url), len(residents), load,
                         None if setup == SQLITE else server_cpu)
    # A bot that quickly answers "sorry, something went wrong" would make a worthless benchmark.
    if measured_turn.filed != measured_turn.residents:
        raise AssertionError(f"{setup}: {measured_turn.filed} requests filed by {measured_turn.residents} residents")
    return measured_turn


# --- the run ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    conversations: int
    lanes: int
    warmup: int


@dataclass(frozen=True)
class Result:
    turns: list[Turn]
    pool: int

    def median_rate(self, setup: str) -> float:
        return statistics.median(t.rate for t in self.turns if t.setup == setup)

    def median_cpu(self, setup: str) -> float:
        return statistics.median(t.cpu_ms for t in self.turns if t.setup == setup)

    def median_server_cpu(self, setup: str) -> float | None:
        figures = [t.server_cpu_ms for t in self.turns if t.setup == setup]
        known = [figure for figure in figures if figure is not None]
        return statistics.median(known) if known and len(known) == len(figures) else None

    def two_ceiling(self, cores: int) -> float | None:
        """The most two processes / one can be on ``cores`` cores shared with the server: the updates per second
        the cores give at the one-process turns' CPU per update (bot and server), over the one process's rate."""
        one = one_process(self.pool)
        server = self.median_server_cpu(one)
        if server is None:
            return None
        return cores * 1000 / (self.median_cpu(one) + server) / self.median_rate(one)

    @property
    def of_sqlite(self) -> float:
        return self.median_rate(one_process(self.pool)) / self.median_rate(SQLITE)

    @property
    def two_of_one(self) -> float:
        return self.median_rate(TWO) / self.median_rate(one_process(self.pool))


def setups(pool: int, also_pools: list[int]) -> list[tuple[str, int, int]]:
    """(setup, processes, pool) of one repetition, in the order of the first."""
    extra = [(one_process(size), 1, size) for size in also_pools if size != pool]
    return [(SQLITE, 1, pool), (one_process(pool), 1, pool), *extra, (TWO, 2, pool)]


def repetitions(order: list[tuple[str, int, int]], runs: int) -> Iterator[tuple[str, int, int]]:
    for run in range(runs):
        yield from order if run % 2 == 0 else order[::-1]


async def measure(server_url: str, sizes: Sizes, runs: int, pool: int = DEFAULT_POOL_SIZE,
                  also_pools: tuple[int, ...] = ()) -> Result:
    turns: list[Turn] = []
    for setup, processes, size in repetitions(setups(pool, list(also_pools)), runs):
        with tempfile.TemporaryDirectory(prefix="gridbot-bench-") as directory:
            if setup == SQLITE:
                url = sqlite_url(Path(directory), "conversation.db")
                turns.append(await turn(setup, url, processes, size, sizes, Path(directory)))
            else:
                async with postgres_url(server_url) as url:
                    turns.append(await turn(setup, url, processes, size, sizes, Path(directory)))
        print(f"{setup}: {turns[-1].rate:,.0f} updates/s, {turns[-1].cpu_ms:.2f} ms CPU/update", flush=True)
    return Result(turns, pool)


def describe(result: Result, cores: int | None = None) -> str:
    lines = [f"{'turn':<4} {'setup':<36} {'updates/s':>9} {'CPU ms/update':>13} {'server ms':>9} {'filed':>11} "
             f"{'load':>5}"]
    for index, t in enumerate(result.turns, start=1):
        lines.append(f"{index:<4} {t.setup:<36} {t.rate:>9,.1f} {t.cpu_ms:>13.2f} {_ms(t.server_cpu_ms):>9} "
                     f"{f'{t.filed}/{t.residents}':>11} {t.load:>5.2f}")
    lines.append("median of each setup:")
    for setup in dict.fromkeys(t.setup for t in result.turns):
        server = result.median_server_cpu(setup)
        lines.append(f"  {setup:<36} {result.median_rate(setup):>9,.1f} updates/s "
                     f"{result.median_cpu(setup):>6.2f} ms CPU/update"
                     + ("" if server is None else f", server {server:.2f} ms"))
    one, sqlite, two = (result.median_rate(s) for s in (one_process(result.pool), SQLITE, TWO))
    lines.append(_ratio_line("PostgreSQL / SQLite", one, sqlite, result.of_sqlite, TARGET_OF_SQLITE))
    lines.append(_ratio_line("two processes / one", two, one, result.two_of_one, TARGET_OF_ONE))
    cores = cores or os.cpu_count() or 1
    ceiling = result.two_ceiling(cores)
    if ceiling is not None:
        lines.append(f"two processes / one can be at most {ceiling:.2f} on {cores} cores shared with the server "
                     f"(bot and server CPU per update of one process)")
    return "\n".join(lines)


def _ms(figure: float | None) -> str:
    return "-" if figure is None else f"{figure:.2f}"


def _ratio_line(name: str, top: float, bottom: float, ratio: float, target: float) -> str:
    state = "met" if ratio >= target else "not met"
    return f"{name}: {top:,.1f} / {bottom:,.1f} = {ratio:.3f} (target >= {target}: {state})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="a PostgreSQL server URL (any database)")
    parser.add_argument("--conversations", type=int, default=600)
    parser.add_argument("--lanes", type=int, default=50, help="residents typing at once, over all processes")
    parser.add_argument("--warmup", type=int, default=20, help="conversations each process files before measuring")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pool", type=int, default=DEFAULT_POOL_SIZE, help="connections per process")
    parser.add_argument("--also-pools", default="", help="more pool sizes to measure one process with: 5,10,50")
    parser.add_argument("--serve", help=argparse.SUPPRESS)  # a serving process, started by this command
    args = parser.parse_args()
    if args.serve:
        share = asyncio.run(serve(Job(**json.loads(args.serve))))
        print(json.dumps(vars(share)), flush=True)
        return
    also = tuple(int(size) for size in args.also_pools.split(",") if size)
    sizes = Sizes(args.conversations, args.lanes, args.warmup)
    print(describe(asyncio.run(measure(args.postgres, sizes, args.runs, args.pool, also))))


if __name__ == "__main__":
    main()
