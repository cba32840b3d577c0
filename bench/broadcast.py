"""Broadcast benchmark: achieved send rate against the Bot API simulator's flood limit, and the bot's peak
memory for large audiences.

The bot runs as its own process (the real aiogram engine and broadcast worker), the simulator in this one,
so the two do not share a CPU core and the bot's memory is measured alone.

    python bench/broadcast.py                 # rate at 100/s and 300/s, then 100,000 recipients at 1,000/s
    python bench/broadcast.py --rate-only     # just the rates
    python bench/broadcast.py --paid-only --profile bot.prof   # 100,000 at 1,000/s, the bot under cProfile
    python bench/broadcast.py --compare 30000   # at 1,000/s: the bulk path against the engine's, interleaved

Broadcasts go through ``bot.engines.bulk``; ``--compare`` also runs the bot with every send through the
engine's client (aiogram), as everything else goes, to show what the bulk path saves. The bot's CPU time per
message is reported too: unlike the rate, it hardly depends on what else the machine is doing.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from bot.service import prepare_database  # noqa: E402
from bot.simulator import BotApiSimulator  # noqa: E402
from storage.database import Database  # noqa: E402
from storage.models import Broadcast  # noqa: E402
from tests.broadcast_setup import ADMIN_ID, make_deployment, open_chats, queue_broadcast  # noqa: E402

TOKEN = "123:ABC"


@dataclass
class Result:
    recipients: int
    flood_limit: float | None
    bot_rate: float
    seconds: float
    achieved_rate: float
    answered_429: int
    peak_rss_mb: float
    cpu_ms_per_message: float


async def run_bot_child(api_url: str, database_url: str, rate: float, engine_path: bool) -> None:
    from functools import partial

    from pydantic import SecretStr

    from bot.config import Settings
    from bot.engines.aiogram_engine import serve
    from bot.engines.telegram import TelegramChannel
    from bot.service import Service, run_until_stopped

    if engine_path:  # the comparison: no bulk path, so the broadcaster sends through aiogram
        TelegramChannel.bulk = lambda self, action: None  # type: ignore[method-assign]

    settings = Settings(
        token=SecretStr(TOKEN), api_url=api_url, database_url=database_url, send_rate=rate,
        _env_file=None,  # type: ignore[call-arg]
    )
    service = Service.from_settings(settings)
    try:
        await run_until_stopped(partial(serve, service))
    finally:
        await service.database.dispose()


async def measure(
    recipients: int, flood_limit: float | None, bot_rate: float, profile: str | None = None,
    engine_path: bool = False,
) -> Result:
    with tempfile.TemporaryDirectory() as folder:
        database_url = f"sqlite+aiosqlite:///{folder}/bench.db"
        database = Database(database_url)
        await prepare_database(database)
        deployment = await make_deployment(database, recipients)
        await queue_broadcast(database, deployment)
        sim = BotApiSimulator(token=TOKEN, flood_limit=flood_limit, history_limit=5)
        url = await sim.start("127.0.0.1", 0)
        open_chats(sim, [ADMIN_ID, *deployment.resident_ids])
        options = ["--profile", profile] if profile else []
        options += ["--engine-path"] if engine_path else []
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.broadcast", "--child", url, database_url, str(bot_rate), *options,
            cwd=ROOT,
        )
        process = psutil.Process(child.pid)
        peak_rss, first_at, last_at = 0, 0.0, 0.0
        cpu_at_first = cpu_at_last = 0.0
        try:
            while True:
                peak_rss = max(peak_rss, process.memory_info().rss)
                sent = sim.sent_count
                now = time.monotonic()
                if sent > 1 and not first_at:
                    first_at, cpu_at_first = now, _cpu_seconds(process)
                if sent >= recipients + 1:  # the progress message, then every recipient
                    if not last_at:
                        last_at, cpu_at_last = now, _cpu_seconds(process)
                    if await database.run(lambda s: s.scalars(select(Broadcast.finished_at)).one() is not None):
                        break
                await asyncio.sleep(0.05)
        finally:
            child.terminate()
            await child.wait()
            await sim.stop()
            await database.dispose()
    seconds = last_at - first_at
    return Result(
        recipients, flood_limit, bot_rate, seconds, recipients / seconds, sim.flood_refusals, peak_rss / 2**20,
        (cpu_at_last - cpu_at_first) * 1000 / recipients,
    )


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def report(label: str, result: Result) -> None:
    fraction = f" = {result.achieved_rate / result.flood_limit:.3f} of the limit" if result.flood_limit else ""
    print(
        f"{label}: {result.recipients:,} recipients in {result.seconds:.1f}s, {result.achieved_rate:.0f} msg/s"
        f"{fraction} (limit {result.flood_limit or 'none'}, bot rate {result.bot_rate:g}), "
        f"429 answered: {result.answered_429}, bot peak RSS {result.peak_rss_mb:.0f} MB, "
        f"bot CPU {result.cpu_ms_per_message:.2f} ms/message",
        flush=True,
    )


async def compare(recipients: int, repetitions: int = 2) -> None:
    """The bulk path and the engine's, one after the other, ``repetitions`` times, at 1,000/s."""
    for _ in range(repetitions):
        report("bulk path", await measure(recipients, flood_limit=1000, bot_rate=1000))
        report("engine path", await measure(recipients, flood_limit=1000, bot_rate=1000, engine_path=True))


async def main(rate_only: bool, paid_only: bool, limit: float, profile: str | None) -> None:
    if not paid_only:
        report("rate", await measure(3_000, flood_limit=100, bot_rate=100))  # the kill test's rate
        report("rate", await measure(10_000, flood_limit=limit, bot_rate=limit))
    if rate_only:
        return
    # Telegram's paid broadcasts allow 1,000 msg/s.
    report("paid limit", await measure(100_000, flood_limit=1000, bot_rate=1000, profile=profile))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate-only", action="store_true")
    parser.add_argument("--paid-only", action="store_true", help="only 100,000 recipients at 1,000/s")
    parser.add_argument("--profile", help="write the bot process's cProfile statistics to this file")
    parser.add_argument("--limit", type=float, default=300, help="the simulator's flood limit (msg/s)")
    parser.add_argument("--compare", type=int, metavar="RECIPIENTS",
                        help="the bulk path against the engine's at 1,000/s, twice each")
    parser.add_argument("--child", nargs=3, metavar=("API_URL", "DATABASE_URL", "RATE"), help=argparse.SUPPRESS)
    parser.add_argument("--engine-path", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child = run_bot_child(args.child[0], args.child[1], float(args.child[2]), args.engine_path)
        if args.profile:
            import cProfile

            cProfile.runctx("asyncio.run(child)", globals(), {"child": child}, args.profile)
        else:
            asyncio.run(child)
    elif args.compare:
        asyncio.run(compare(args.compare))
    else:
        asyncio.run(main(args.rate_only, args.paid_only, args.limit, args.profile))
