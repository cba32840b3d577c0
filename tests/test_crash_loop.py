"""SIGKILL at random moments while residents file requests and the grid worker accepts them.

The bot runs as a real ``gridbot run`` subprocess (long polling) against the simulator in this process and is
killed with SIGKILL every couple of seconds, then started again. Scripted residents retry a step when no answer
comes, as a person would. At the end no update is lost, nothing is half-applied, every request reached the
worker who holds it, and nothing is left in the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import signal
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.service import prepare_database
from bot.simulator import BotApiSimulator, SimMessage, SimUser
from storage.database import Database
from storage.models import OPEN_STATUSES, Request, RequestStatus, Role
from tests.e2e import TOKEN
from tests.invariants import check_invariants
from tests.org_fixture import make_small_org, staff
from tests.reliability import outbox_counts, report, start_bot_process

RESIDENTS = 4
REQUESTS_EACH = 2
WORKER = 7001
KILL_EVERY = (0.3, 2.0)  # seconds a started process runs before it is killed
TIME_LIMIT = 45.0
MIN_KILLS = 3  # residents keep filing until the bot has been killed this often
RECEIPT_CODE = re.compile(r"R-\d{6}")


def setup(session: Session) -> None:
    org = make_small_org(session)
    staff(session, WORKER, "Wang Worker", Role.WORKER, org.grid, "en")


def has_button(prefix: str) -> object:
    return lambda m: any(data and data.startswith(prefix) for _text, data in m.buttons())


def button(message: SimMessage, prefix: str) -> str:
    for _text, data in message.buttons():
        if data and data.startswith(prefix):
            return data
    raise AssertionError(f"no {prefix} button")


def receipt_code(message: SimMessage) -> str | None:
    found = RECEIPT_CODE.search(message.text or "")
    return found.group(0) if found else None


async def file_request(user: SimUser, number: int, seen: set[str]) -> str:
    """One filing from /new to the receipt, returning its code; raises AssertionError when the bot does not
    answer in time. A receipt already ``seen`` does not count: after a kill an old one may be delivered again."""
    wait = 4.0
    await user.send_text("/new")
    categories = await user.wait_for(has_button("fl:cat:"), wait)  # type: ignore[arg-type]
    choices = [data for _t, data in categories.buttons() if data and data.startswith("fl:cat:")]
    mark = user._sim.seq
    await user.press(categories, choices[number % len(choices)])
    step = await user.wait_for(lambda m: has_button("fl:fresh")(m) or "fl:" not in str(m.buttons()), wait)  # type: ignore[operator]
    if has_button("fl:fresh")(step):  # type: ignore[operator]
        await user.press(step, button(step, "fl:fresh"))
        await user.wait_for(lambda m: m.seq > mark, wait)
    await user.send_text(f"Crash-loop request {user.id}-{number}: boxes in the stairwell")
    photos = await user.wait_for(has_button("fl:photos"), wait)  # type: ignore[arg-type]
    await user.press(photos, button(photos, "fl:photos"))
    where = await user.wait_for(has_button("fl:loc:"), wait)  # type: ignore[arg-type]
    await user.press(where, button(where, "fl:loc:"))
    hide = await user.wait_for(has_button("fl:hide:0"), wait)  # type: ignore[arg-type]
    await user.press(hide, button(hide, "fl:hide:0"))
    summary = await user.wait_for(has_button("fl:ok:"), wait)  # type: ignore[arg-type]
    await user.press(summary, button(summary, "fl:ok:"))
    receipt = await user.wait_for(lambda m: receipt_code(m) not in (None, *seen), wait)
    code = receipt_code(receipt)
    assert code is not None
    return code


async def resident(user: SimUser, done: set[str], deadline: float, more: Callable[[], bool]) -> None:
    loop = asyncio.get_running_loop()
    await user.send_text("/start b_DG-JS-01-B1")
    with contextlib.suppress(AssertionError):
        await user.wait_for_text("建设路12号院1号楼", 5)
    number = 0
    while (number < REQUESTS_EACH or more()) and loop.time() < deadline:
        try:
            code = await file_request(user, number, done)
        except (AssertionError, RuntimeError):
            continue  # killed mid-step: start the filing again
        number += 1
        done.add(code)


async def worker(user: SimUser, stop: asyncio.Event) -> None:
    """Accepts every new request card it sees."""
    pressed: set[str] = set()
    while not stop.is_set():
        for message in list(user.messages):
            for _text, data in message.buttons():
                if data and data.startswith("rq:acc:") and data not in pressed:
                    pressed.add(data)
                    with contextlib.suppress(Exception):
                        await user.press(message, data)
        await asyncio.sleep(0.2)


async def test_sigkill_loop_loses_nothing(database_url: str) -> None:
    database = Database(database_url)
    await prepare_database(database)
    await database.run(setup)
    sim = BotApiSimulator(token=TOKEN)
    api_url = await sim.start("127.0.0.1", 0)
    env = {
        "GRIDBOT_TOKEN": TOKEN, "GRIDBOT_API_URL": api_url, "GRIDBOT_DATABASE_URL": database_url,
        "GRIDBOT_THROTTLE_MESSAGES": "0", "GRIDBOT_OUTBOX_LEASE_SECONDS": "2", "GRIDBOT_SEND_RATE": "100",
    }
    rng = random.Random(20261201)
    kills = 0
    process = await start_bot_process(env)
    wang = sim.user(WORKER, "Wang", language_code="en")
    residents = [sim.user(2000 + n, f"R{n}", language_code="zh-hans") for n in range(RESIDENTS)]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIME_LIMIT
    filed: set[str] = set()

    async def killer() -> None:
        nonlocal process, kills
        while not stop.is_set():
            # Kill only a process that is up (it polls): start-up alone takes seconds on a loaded machine.
            polls = sim._poll_generation
            while sim._poll_generation == polls and not stop.is_set():
                await asyncio.sleep(0.05)
            await asyncio.sleep(rng.uniform(*KILL_EVERY))
            if stop.is_set():
                return
            process.send_signal(signal.SIGKILL)
            await process.wait()
            kills += 1
            process = await start_bot_process(env)

    try:
        await wang.send_text("/start")
        killing = asyncio.create_task(killer())
        accepting = asyncio.create_task(worker(wang, stop))
        await asyncio.gather(*(resident(user, filed, deadline, lambda: kills < MIN_KILLS) for user in residents))
        stop.set()
        await killing
        # The last process runs undisturbed (and is past start-up before it is asked to stop): everything
        # recorded must now reach everyone.
        await asyncio.sleep(3)

        def state(session: Session) -> tuple[dict[str, int], list[Request]]:
            return outbox_counts(session), list(session.scalars(select(Request)))

        settle_deadline = loop.time() + 30
        while True:
            counts, requests = await database.run(state)
            worker_text = " ".join((m.text or m.caption or "") for m in wang.messages)
            unseen = [r.code for r in requests if r.code not in worker_text]
            if not counts.get("pending") and not counts["inbox_unhandled"] and not unseen:
                break
            if loop.time() > settle_deadline:
                break  # reported below, with the counts
            await asyncio.sleep(0.3)
        accepting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await accepting
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 20)
    finally:
        stop.set()
        if process.returncode is None:
            process.kill()
            await process.wait()
        await sim.stop()

    problems = await database.run(check_invariants)
    counts, requests = await database.run(state)
    await database.dispose()
    updates = sim._next_update_id - 1
    report("SIGKILL loop", database_url, {
        "kills_survived": kills, "updates": updates, "updates_recorded": counts["inbox"],
        "requests": len(requests), "receipts": len(filed),
        "accepted": sum(1 for r in requests if r.status == RequestStatus.ACCEPTED),
        "messages_sent": sim.sent_count, "outbox_messages": counts["sent_messages"],
        "messages_repeated_after_kill": max(0, sim.sent_count - counts["sent_messages"]),
        "outbox_failed": counts.get("failed", 0), "outbox_pending": counts.get("pending", 0),
        "requests_the_worker_never_saw": len(unseen),
    })
    assert unseen == [], f"the worker never saw {unseen}"
    assert not counts.get("pending") and not counts["inbox_unhandled"], counts
    assert problems == []
    # How many filings get through depends on how fast this machine starts a process; none may be lost.
    assert filed, "no filing got through between the kills"
    # Every receipt a resident saw names a request that exists; retried steps may have filed extra ones.
    assert filed <= {request.code for request in requests}
    assert all(r.status in (*OPEN_STATUSES, RequestStatus.RESOLVED) for r in requests)
    assert counts["inbox"] == updates, "an update the platform handed out was never recorded"
