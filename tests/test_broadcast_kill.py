"""A broadcasting process killed with SIGKILL part-way resumes after a restart without losing anyone."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from sqlalchemy import select

from bot.service import prepare_database
from bot.simulator import BotApiSimulator
from storage.database import Database
from storage.models import Broadcast
from tests.broadcast_child import RATE, TOKEN
from tests.broadcast_setup import ADMIN_ID, copies_received, make_deployment, open_chats, queue_broadcast

ROOT = Path(__file__).resolve().parent.parent
RESIDENTS = 1_000
KILL_AT = (250, 600)  # messages the simulator has accepted when each kill happens
# A kill can only repeat what was sent but not yet recorded: at this rate one sender records each result
# before its next send, so that is the one message in flight.
MAX_DUPLICATES_PER_KILL = 1


async def start_bot(api_url: str, database_url: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.broadcast_child", api_url, database_url, cwd=ROOT
    )


async def wait_for_sent(sim: BotApiSimulator, count: int, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while sim.sent_count < count:
        assert loop.time() < deadline, f"the bot sent {sim.sent_count} messages, expected {count}"
        await asyncio.sleep(0.005)


async def finished(database: Database) -> bool:
    return await database.run(lambda s: s.scalars(select(Broadcast.finished_at)).one() is not None)


async def test_killed_broadcast_resumes_with_at_most_the_message_in_flight_repeated(database_url: str) -> None:
    database = Database(database_url)
    await prepare_database(database)
    deployment = await make_deployment(database, RESIDENTS)
    await queue_broadcast(database, deployment)
    sim = BotApiSimulator(token=TOKEN, flood_limit=RATE)
    url = await sim.start("127.0.0.1", 0)
    open_chats(sim, [ADMIN_ID, *deployment.resident_ids])
    try:
        for kill_at in KILL_AT:
            bot = await start_bot(url, database_url)
            await wait_for_sent(sim, kill_at, 60)
            bot.send_signal(signal.SIGKILL)
            await bot.wait()
            assert not await finished(database)
        bot = await start_bot(url, database_url)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while not await finished(database):
            assert loop.time() < deadline, "the restarted bot did not finish the broadcast"
            await asyncio.sleep(0.2)
        bot.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(bot.wait(), 30) == 0
    finally:
        await sim.stop()

    copies = copies_received(sim, deployment.resident_ids)
    missing = [user_id for user_id, n in copies.items() if n == 0]
    duplicates = sum(n - 1 for n in copies.values() if n > 1)
    print(f"\n{len(KILL_AT)} kills: {duplicates} duplicate(s), {len(missing)} missing")
    assert missing == []
    assert max(copies.values()) <= 1 + len(KILL_AT)
    assert duplicates <= len(KILL_AT) * MAX_DUPLICATES_PER_KILL
    broadcast = await database.run(lambda s: s.scalars(select(Broadcast)).one())
    assert broadcast.sent == RESIDENTS
    await database.dispose()
