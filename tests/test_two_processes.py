"""Two webhook processes on one PostgreSQL: every update POSTed to both is handled once, every message sent once.

The processes are real ``gridbot run`` subprocesses. Every update goes to both at the same moment (as when a
load balancer retries on the other worker); the Bot API simulator fails some sends so that both processes'
outbox loops compete for the same retries, and answers 429 a few times so the shared rate pauses everyone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections import Counter
from collections.abc import AsyncIterator

import aiohttp
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from bot.service import prepare_database
from bot.simulator import BotApiSimulator
from storage.database import Database
from storage.models import InboxUpdate, OutboxMessage, OutboxStatus, Person
from tests.e2e import TOKEN
from tests.reliability import SENT_KINDS, UpdateMaker, free_port, outbox_counts, report, start_bot_process

USERS = 20
SCRIPT = ("/start", "hello", "/help", "what is this")
BASELINE_USER = 999  # gets the same script through one process only: what "handled once" looks like
SECRET = "two-process-secret"

pytestmark = pytest.mark.skipif(
    not os.environ.get("GRIDBOT_TEST_POSTGRES"), reason="several writer processes need PostgreSQL"
)


@contextlib.asynccontextmanager
async def webhook_processes(api_url: str, database_url: str, count: int) -> AsyncIterator[list[str]]:
    ports = [free_port() for _ in range(count)]
    processes = [
        await start_bot_process({
            "GRIDBOT_TOKEN": TOKEN, "GRIDBOT_API_URL": api_url, "GRIDBOT_DATABASE_URL": database_url,
            "GRIDBOT_WEBHOOK_URL": f"http://127.0.0.1:{port}/hook", "GRIDBOT_WEBHOOK_LISTEN": f"127.0.0.1:{port}",
            "GRIDBOT_WEBHOOK_SECRET": SECRET, "GRIDBOT_THROTTLE_MESSAGES": "0", "GRIDBOT_SEND_RATE": "40",
            "GRIDBOT_OUTBOX_LEASE_SECONDS": "5",
        })
        for port in ports
    ]
    urls = [f"http://127.0.0.1:{port}/hook" for port in ports]
    try:
        async with aiohttp.ClientSession() as http:
            for url, process in zip(urls, processes, strict=True):
                await wait_until_listening(http, url, process)
        yield urls
    finally:
        for process in processes:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                await asyncio.wait_for(process.wait(), 20)
            except TimeoutError:
                process.kill()
                await process.wait()


async def wait_until_listening(http: aiohttp.ClientSession, url: str, process: asyncio.subprocess.Process) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while True:
        if process.returncode is not None:
            assert process.stderr is not None
            raise AssertionError(f"bot process exited: {(await process.stderr.read()).decode()[-3000:]}")
        with contextlib.suppress(aiohttp.ClientError):
            async with http.get(url) as response:
                if response.status == 405:  # the webhook route answers POST only: the server is up
                    return
        assert loop.time() < deadline, "the bot process did not start listening"
        await asyncio.sleep(0.2)


async def post(http: aiohttp.ClientSession, url: str, update: dict[str, object]) -> int:
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    async with http.post(url, json=update, headers=headers) as response:
        return response.status


async def handled(database: Database, update_id: int) -> None:
    def probe(session: Session) -> bool:
        row = session.get(InboxUpdate, ("telegram", update_id))
        return row is not None and row.handled_at is not None

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    while not await database.run(probe):
        assert loop.time() < deadline, f"update {update_id} was not handled"
        await asyncio.sleep(0.02)


async def settled(database: Database, expected_updates: int) -> bool:
    counts = await database.run(outbox_counts)
    return counts["inbox"] >= expected_updates and counts["inbox_unhandled"] == 0 and not counts.get("pending")


async def test_two_webhook_processes_share_the_work(database_url: str) -> None:
    assert make_url(database_url).get_backend_name() == "postgresql"
    database = Database(database_url)
    await prepare_database(database)  # migrations run once, before the workers start (see docs/deploy.md)
    sim = BotApiSimulator(token=TOKEN, flood_limit=40)
    api_url = await sim.start("127.0.0.1", 0)
    users = [100 + n for n in range(USERS)]
    for user_id in [*users, BASELINE_USER]:
        sim.user(user_id, f"U{user_id}", language_code="en").started = True
    maker = UpdateMaker()
    statuses: Counter[int] = Counter()
    try:
        async with webhook_processes(api_url, database_url, 2) as urls, aiohttp.ClientSession() as http:
            # Failures the outbox loops of both processes have to retry, competing for the same rows.
            sim.inject_failure("sendMessage", 500, count=8)
            sim.inject_failure("sendMessage", 429, count=3, retry_after=1)

            async def play(user_id: int, targets: list[str]) -> None:
                for text in SCRIPT:
                    update = maker.text(user_id, text)
                    for status in await asyncio.gather(*(post(http, url, update) for url in targets)):
                        statuses[status] += 1
                    # The next message of this chat waits until this one is handled, as a person waits for the
                    # answer; otherwise the two workers could take one chat's messages in either order.
                    await handled(database, int(str(update["update_id"])))

            await asyncio.gather(*(play(user_id, urls) for user_id in users), play(BASELINE_USER, urls[:1]))
            total_updates = len(SCRIPT) * (USERS + 1)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 40
            while not await settled(database, total_updates):
                assert loop.time() < deadline, f"not settled: {await database.run(outbox_counts)}"
                await asyncio.sleep(0.3)
            await asyncio.sleep(0.5)  # anything still in flight would show up as an extra message now
    finally:
        await sim.stop()

    def rows_per_user(session: Session) -> dict[int, tuple[int, int]]:
        result: dict[int, tuple[int, int]] = {}
        for person in session.scalars(select(Person)):
            rows = list(session.scalars(select(OutboxMessage).where(OutboxMessage.person_id == person.id)))
            sent = sum(1 for r in rows if r.status == OutboxStatus.SENT and r.action.get("type") in SENT_KINDS)
            result[int(person.external_id)] = (len(rows), sent)
        return result

    per_user = await database.run(rows_per_user)
    counts = await database.run(outbox_counts)
    await database.dispose()
    baseline_rows, _baseline_sent = per_user[BASELINE_USER]
    for user_id in users:
        rows, sent = per_user[user_id]
        assert rows == baseline_rows, f"user {user_id}: {rows} outbox rows, one handling makes {baseline_rows}"
        shown = len(sim.user(user_id).messages)
        assert shown == sent, f"user {user_id} saw {shown} messages for {sent} sent outbox rows"
    assert counts["inbox"] == total_updates and counts["inbox_unhandled"] == 0
    assert counts.get("failed", 0) == 0
    assert sim.sent_count == counts["sent_messages"]
    posts = len(SCRIPT) * (2 * USERS + 1)
    report("two webhook processes", database_url, {
        "processes": 2, "updates": total_updates, "posts": posts, "duplicates_prevented": posts - total_updates,
        "http_statuses": dict(statuses), "messages_sent": sim.sent_count,
        "outbox_rows": sum(v for k, v in counts.items() if k in ("sent", "failed", "pending")),
        "messages_sent_twice": 0,
    })
