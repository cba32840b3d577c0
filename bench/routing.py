"""Routing latency: from a resident pressing Confirm to the grid worker's notification being sent, through the
real bot (aiogram engine, long polling) and the Bot API simulator over loopback HTTP, one filing at a time.

    python -m bench.routing [--filings 30]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from bench.harness import FIRST_WORKER, bench_settings, percentile, seed_people, sqlite_url
from bot.service import Service, prepare_database
from bot.simulator import BotApiSimulator, SimMessage, SimUser
from storage.models import Building, Person, StaffRole
from tests.e2e import TOKEN, running_bot

TARGET_P99 = 0.250


@dataclass(frozen=True)
class RoutingResult:
    filings: int
    latencies: list[float]

    @property
    def p50(self) -> float:
        return percentile(self.latencies, 0.50)

    @property
    def p99(self) -> float:
        return percentile(self.latencies, 0.99)


def _with(part: str) -> Callable[[SimMessage], bool]:
    return lambda message: any(data and data.startswith(part) for _text, data in message.buttons())


async def _file_one(sim: SimUser, worker: SimUser, bot_sim: BotApiSimulator) -> float:
    """Walk one filing conversation; returns seconds from pressing Confirm to the worker's notification."""
    await sim.send_text("/new")
    shown = await sim.wait_for(_with("fl:cat:"))
    await sim.press(shown, next(d for _t, d in shown.buttons() if d and d.startswith("fl:cat:")))
    await sim.wait_for_text("")
    await sim.send_text("楼道里堆了杂物")
    shown = await sim.wait_for(_with("fl:photos"))
    await sim.press(shown, "fl:photos")
    shown = await sim.wait_for(_with("fl:loc:-"))
    await sim.press(shown, "fl:loc:-")
    shown = await sim.wait_for(_with("fl:hide:0"))
    await sim.press(shown, "fl:hide:0")
    shown = await sim.wait_for(_with("fl:ok:"))
    confirm = next(d for _t, d in shown.buttons() if d and d.startswith("fl:ok:"))
    since = bot_sim.seq
    started = time.perf_counter()
    await sim.press(shown, confirm)
    await worker.wait_for(lambda message: True, since=since)
    elapsed = time.perf_counter() - started
    await sim.wait_for_text("", since=since)  # the receipt, so the next filing starts from a quiet chat
    return elapsed


async def measure(filings: int, warmup: int = 3) -> RoutingResult:
    with tempfile.TemporaryDirectory(prefix="gridbot-bench-") as directory:
        url = sqlite_url(Path(directory), "routing.db")
        service = Service.from_settings(bench_settings(url))
        await prepare_database(service.database)
        residents = await service.database.run(lambda session: seed_people(session, warmup + filings))
        workers = await service.database.run(_worker_of_each_resident)
        await service.database.dispose()
        latencies: list[float] = []
        async with BotApiSimulator(TOKEN) as sim:
            assert sim.base_url is not None
            async with running_bot(sim, sim.base_url, url, daily_request_limit=1000, throttle_messages=0):
                for index, user_id in enumerate(residents):
                    resident = sim.user(user_id, f"R{user_id}", language_code="zh-hans")
                    worker = sim.user(workers[user_id], "网格员", language_code="zh-hans")
                    worker.started = True  # the worker has written to the bot before
                    elapsed = await _file_one(resident, worker, sim)
                    if index >= warmup:
                        latencies.append(elapsed)
        return RoutingResult(filings, latencies)


def _worker_of_each_resident(session: Session) -> dict[int, int]:
    """Telegram id of each resident -> Telegram id of the worker on their building's grid."""
    worker = select(Person.external_id, StaffRole.unit_id).join(StaffRole, StaffRole.person_id == Person.id)
    worker_of_grid = {grid: int(external) for external, grid in session.execute(worker)}
    rows = session.execute(
        select(Person.external_id, Building.grid_id).join(Building, Building.id == Person.building_id)
    )
    return {int(external): worker_of_grid[grid] for external, grid in rows if int(external) < FIRST_WORKER}


def describe(result: RoutingResult) -> str:
    return (
        f"confirm -> worker notified over HTTP: p50 {result.p50 * 1000:.1f} ms, p99 {result.p99 * 1000:.1f} ms "
        f"(target p99 <= {TARGET_P99 * 1000:.0f} ms), {result.filings} filings one at a time"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--filings", type=int, default=30)
    args = parser.parse_args()
    print(describe(asyncio.run(measure(args.filings))))


if __name__ == "__main__":
    main()
