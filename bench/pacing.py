"""Pacing benchmark: many residents write /start at once, alone and while a broadcast goes out, against a Bot
API simulator that enforces one strict global limit on every call (``strict_flood``). Counts the 429s it
answered, checks every reply was delivered and prints the reply latency (from sending /start to the first
answer arriving).

    python -m bench.pacing [--residents 500] [--broadcast 2000] [--rate 30]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from bench.harness import percentile
from bot.service import prepare_database
from bot.simulator import BotApiSimulator, SimUser
from storage.database import Database
from storage.models import Broadcast, OutboxMessage, OutboxStatus
from tests.broadcast_setup import ADMIN_ID, make_deployment, open_chats, queue_broadcast
from tests.e2e import TOKEN, running_bot

FIRST_WRITER = 5_000_000
REPLY_TIMEOUT = 600.0


@dataclass(frozen=True)
class Wave:
    label: str
    latencies: list[float]
    undelivered: int

    @property
    def p50(self) -> float:
        return percentile(self.latencies, 0.50)

    @property
    def p99(self) -> float:
        return percentile(self.latencies, 0.99)


@dataclass(frozen=True)
class PacingResult:
    rate: float
    waves: list[Wave]
    refusals: int
    broadcast_sent: int


async def _answered_after(user: SimUser) -> float:
    started = time.perf_counter()
    await user.send_text("/start")
    await user.wait_for(lambda _message: True, timeout=REPLY_TIMEOUT)
    return time.perf_counter() - started


async def _wave(sim: BotApiSimulator, database: Database, label: str, first_id: int, count: int) -> Wave:
    users = [sim.user(first_id + n, first_name=f"w{first_id + n}") for n in range(count)]
    latencies = list(await asyncio.gather(*(_answered_after(user) for user in users)))
    undelivered = await _undelivered(database)
    return Wave(label, latencies, undelivered)


async def _undelivered(database: Database, timeout: float = REPLY_TIMEOUT) -> int:
    """Outbox rows not sent yet, once the bot has had time to send what it wrote (0 is the aim)."""

    def count(session: object) -> int:
        query = select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status != OutboxStatus.SENT)
        return int(session.scalar(query))  # type: ignore[attr-defined]

    deadline = time.perf_counter() + timeout
    while (left := await database.run(count)) and time.perf_counter() < deadline:
        await asyncio.sleep(0.2)
    return left


async def measure(database_url: str, residents: int, broadcast_to: int, rate: float) -> PacingResult:
    """Two waves of ``residents`` writing /start at once: alone, then during a broadcast to ``broadcast_to``."""
    setup = Database(database_url)
    await prepare_database(setup)
    deployment = await make_deployment(setup, broadcast_to)
    await setup.dispose()
    async with BotApiSimulator(TOKEN, flood_limit=rate, strict_flood=True, history_limit=20) as sim:
        url = sim.base_url
        assert url is not None
        open_chats(sim, [ADMIN_ID, *deployment.resident_ids])
        async with running_bot(sim, url, database_url, send_rate=rate) as bot:
            database = bot.service.database
            # The command menus set at start-up (a few calls, not paced) leave the simulator's window first.
            while not sim.commands:
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.1)
            waves = [await _wave(sim, database, "alone", FIRST_WRITER, residents)]
            await queue_broadcast(database, deployment)
            started = sim.sent_count
            while sim.sent_count < started + min(20, broadcast_to):  # the broadcast is under way
                await asyncio.sleep(0.05)
            waves.append(await _wave(sim, database, "during a broadcast", FIRST_WRITER + residents, residents))
            sent = await database.run(lambda session: session.scalars(select(Broadcast.sent)).one())
        return PacingResult(rate, waves, sim.flood_refusals, sent)


def describe(result: PacingResult, residents: int, broadcast_to: int) -> str:
    lines = [
        f"{wave.label}: {residents} residents wrote /start at once: p50 {wave.p50:.2f} s, p99 {wave.p99:.2f} s "
        f"to the first answer, {len(wave.latencies)} answered, {wave.undelivered} outbox rows left unsent"
        for wave in result.waves
    ]
    lines.append(
        f"strict simulator limit {result.rate:g} calls/s on every call, bot rate {result.rate:g}: "
        f"{result.refusals} answered 429; broadcast to {broadcast_to:,}: {result.broadcast_sent:,} sent meanwhile"
    )
    return "\n".join(lines)


async def main(residents: int, broadcast_to: int, rate: float) -> None:
    with tempfile.TemporaryDirectory(prefix="gridbot-bench-") as directory:
        url = f"sqlite+aiosqlite:///{Path(directory) / 'pacing.db'}"
        result = await measure(url, residents, broadcast_to, rate)
    print(describe(result, residents, broadcast_to), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--residents", type=int, default=500)
    parser.add_argument("--broadcast", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=30)
    args = parser.parse_args()
    asyncio.run(main(args.residents, args.broadcast, args.rate))
