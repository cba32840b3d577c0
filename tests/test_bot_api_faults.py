"""Bot API faults met by a real engine: the reply still arrives, once (or, after a reset, at most twice).

Every test runs the bot through each engine against the simulator, which answers the next calls of a method
with a scripted failure. The outbox retries transient failures after a back-off of a couple of seconds, so
the waits below are as long as one retry needs and no longer; database state is polled with ``eventually``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.runtime import Runtime
from bot.simulator import BotApiSimulator, SimMessage, SimUser
from storage.models import OutboxMessage, OutboxStatus, Person, Role
from tests.e2e import RunningBot, eventually, running_bot
from tests.org_fixture import SmallOrg, make_small_org, staff

# One failed attempt waits 2 s before the outbox loop (polling every second) tries again.
RETRY_WAIT = 8.0


def button(message: SimMessage, prefix: str) -> str:
    for _text, data in message.buttons():
        if data and data.startswith(prefix):
            return data
    raise AssertionError(f"no {prefix!r} button on {message.text or message.caption!r}: {message.buttons()}")


def has_button(prefix: str) -> Callable[[SimMessage], bool]:
    return lambda message: any(data and data.startswith(prefix) for _text, data in message.buttons())


async def outbox_rows(bot: RunningBot) -> list[OutboxMessage]:
    return await bot.service.database.run(lambda s: list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))))


def dee_has_seen_the_privacy_notice(session: Session) -> None:
    shown = datetime(2026, 11, 1, tzinfo=UTC)
    session.add(Person(channel="telegram", external_id="2005", chat_id="2005", display_name="Dee", locale="en",
                       state_data={}, created_at=shown, privacy_notice_at=shown))


async def help_answered(simulator: BotApiSimulator, bot: RunningBot) -> tuple[SimUser, SimMessage, OutboxMessage]:
    """Ask for /help and wait until its answer is recorded as sent; returns the user, the answer and its row.

    Dee has written before, so the answer is the only reply (no privacy notice first)."""
    await bot.service.database.run(dee_has_seen_the_privacy_notice)
    dee = simulator.user(2005, "Dee", language_code="en")
    await dee.send_text("/help")
    answer = await dee.wait_for_text("/new", timeout=RETRY_WAIT)

    async def reply_sent() -> OutboxMessage | None:
        replies = [row for row in await outbox_rows(bot) if row.action.get("type") == "SendText"]
        return replies[0] if len(replies) == 1 and replies[0].status is OutboxStatus.SENT else None

    row = await eventually(reply_sent, timeout=RETRY_WAIT)
    assert row is not None
    return dee, answer, row


def copies(user: SimUser, answer: SimMessage) -> int:
    return sum(1 for message in user.messages if message.text == answer.text)


@pytest.mark.parametrize("status", [500, 502])
async def test_server_error_is_retried_and_arrives_once(
    sim: tuple[BotApiSimulator, str], database_url: str, engine: str, status: int
) -> None:
    simulator, url = sim
    async with running_bot(simulator, url, database_url, engine) as bot:
        simulator.inject_failure("sendMessage", status=status)
        dee, answer, row = await help_answered(simulator, bot)
        assert row.attempts == 2, "the first attempt met the injected error"
        assert copies(dee, answer) == 1


async def test_dropped_connection_arrives_at_most_once_more(
    sim: tuple[BotApiSimulator, str], database_url: str, engine: str
) -> None:
    simulator, url = sim
    runtimes: list[Runtime] = []
    async with running_bot(simulator, url, database_url, engine) as bot:
        # Registered before the engine task first runs, so it sees the runtime the engine builds.
        bot.service.runtime_listeners.append(runtimes.append)
        simulator.inject_failure("sendMessage", drop_connection=True)
        dee, answer, row = await help_answered(simulator, bot)
        assert row.attempts == 2
        # A reset leaves the outcome unknown: the retry may duplicate the message, and that is counted.
        assert 1 <= copies(dee, answer) <= 2
        assert [runtime.outbox.maybe_duplicated for runtime in runtimes] == [1]


async def test_429_waits_and_then_arrives(sim: tuple[BotApiSimulator, str], database_url: str, engine: str) -> None:
    simulator, url = sim
    async with running_bot(simulator, url, database_url, engine) as bot:
        simulator.inject_failure("sendMessage", status=429, retry_after=2)
        dee, answer, row = await help_answered(simulator, bot)
        assert row.attempts == 2
        assert row.sent_at is not None and row.sent_at - row.created_at >= timedelta(seconds=2)
        assert copies(dee, answer) == 1


def org_with_two_workers(session: Session) -> SmallOrg:
    org = make_small_org(session)
    staff(session, 7001, "Wang Worker", Role.WORKER, org.grid, "en")
    staff(session, 7004, "Liu Worker", Role.WORKER, org.grid, "en")
    return org


async def file_through_chat(resident: SimUser) -> None:
    await resident.send_text("/start b_DG-JS-01-B1")
    await resident.wait_for_text("建设路12号院1号楼")
    await resident.send_text("/new")
    categories = await resident.wait_for(has_button("fl:cat:"))
    await resident.press(categories, button(categories, "fl:cat:1"))
    await resident.wait_for(lambda m: m.edit_count > 0 or "描述" in (m.text or ""))
    await resident.send_text("楼道里堆满了纸箱，挡住了消防通道")
    photos = await resident.wait_for(has_button("fl:photos"))
    await resident.press(photos, button(photos, "fl:photos"))
    where = await resident.wait_for(has_button("fl:loc:b"))
    await resident.press(where, button(where, "fl:loc:b"))
    hide = await resident.wait_for(has_button("fl:hide:0"))
    await resident.press(hide, button(hide, "fl:hide:0"))
    summary = await resident.wait_for(has_button("fl:ok:"))
    await resident.press(summary, button(summary, "fl:ok:"))


async def test_blocked_worker_is_marked_and_the_others_still_hear(
    sim: tuple[BotApiSimulator, str], database_url: str, engine: str
) -> None:
    simulator, url = sim
    async with running_bot(simulator, url, database_url, engine) as bot:
        await bot.service.database.run(org_with_two_workers)
        wang = simulator.user(7001, "Wang", language_code="en")
        liu = simulator.user(7004, "Liu", language_code="en")
        for worker in (wang, liu):  # staff must have written to the bot once to be reachable
            await worker.send_text("/start")
            await worker.wait_for(lambda m: m.text is not None)
        wang.block()
        li = simulator.user(1001, "李", language_code="zh-hans")
        mark = simulator.seq
        await file_through_chat(li)

        await li.wait_for_text("R-000001", since=mark)
        await liu.wait_for(lambda m: "R-000001" in (m.caption or m.text or ""), since=mark)

        def wang_state(session: Session) -> tuple[bool, list[tuple[OutboxStatus, str | None]]]:
            person = session.scalars(select(Person).where(Person.external_id == "7001")).one()
            rows = session.scalars(select(OutboxMessage).where(OutboxMessage.person_id == person.id))
            # His answer to /start went out before he blocked the bot; only the card failed.
            return person.unreachable, [(row.status, row.error) for row in rows if row.status is not OutboxStatus.SENT]

        async def wang_marked() -> tuple[bool, list[tuple[OutboxStatus, str | None]]] | None:
            unreachable, failed = await bot.service.database.run(wang_state)
            return (unreachable, failed) if unreachable and failed else None

        marked = await eventually(wang_marked, timeout=RETRY_WAIT)
        assert marked is not None
        unreachable, failed = marked
        assert unreachable
        assert failed == [(OutboxStatus.FAILED, "blocked")]
        assert not any("R-000001" in (m.caption or m.text or "") for m in wang.messages)

