"""Hostile input (property-tested), abuse limits and database faults, through the core.

Hypothesis drives random people through ``CoreChat``: any text, captions, forged callback data, junk commands and
deep links, unknown update kinds. After every example no handler may have failed (the core would have apologised
with "something went wrong"), every answer must fit Telegram's limits, and the database must stay valid.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.core.app import Core
from bot.core.claims import OUTBOX_LEASE
from bot.core.clock import FrozenClock
from bot.core.context import CoreConfig
from bot.core.messages import (
    ButtonPress,
    Command,
    Event,
    Incoming,
    Photo,
    Sender,
    SendPhoto,
    SendText,
    Text,
    Unsupported,
    action_from_json,
)
from bot.core.outbox import due_deliveries
from bot.core.throttle import Throttle
from bot.runtime import Runtime
from handlers import build_router
from storage.database import Database, DatabaseUnavailable
from storage.models import InboxUpdate, OutboxMessage, Person, Request, Role
from tests.harness import CoreChat
from tests.invariants import check_invariants
from tests.org_fixture import make_small_org, staff

APOLOGY = "something went wrong"
MAX_TEXT, MAX_CAPTION, MAX_CALLBACK = 4096, 1024, 64

any_text = st.one_of(
    st.text(max_size=50),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=300),
    st.sampled_from(["\u202e\u05e9\u05dc\u05d5\u05dd", "👨‍👩‍👧‍👦" * 30, "\x00\x07\x1b[31m", "R-000001", "R-999999999"]),
    st.integers(4000, 10_000).map(lambda n: "长" * n),
)
forged_data = st.one_of(
    st.text(max_size=64),
    st.from_regex(r"(fl|rq|my|bc|lang|menu):[a-z]{0,6}(:-?[0-9]{0,12}){0,3}", fullmatch=True),
    st.sampled_from(["rq:acc:1", "rq:acc:999999", "rq:res:1", "my:ok:1:fixed", "my:star:1:9", "fl:ok:x", "rq:esc:-1"]),
)
commands = st.builds(
    Command,
    st.sampled_from(["start", "new", "my", "tasks", "help", "language", "cancel", "broadcast", "report", "x"]),
    st.one_of(st.just(""), any_text.map(lambda s: s[:200]), st.from_regex(r"[bi]_[A-Za-z0-9_-]{0,70}", fullmatch=True)),
)
events: st.SearchStrategy[Event] = st.one_of(
    any_text.map(Text),
    commands,
    st.builds(ButtonPress, st.text(min_size=1, max_size=10), forged_data, st.one_of(st.none(), st.integers(1, 2000))),
    st.builds(Photo, st.text(min_size=1, max_size=60), any_text.map(lambda s: s[:2000])),
    st.sampled_from([Unsupported("sticker"), Unsupported("edited_message"), Unsupported("voice"), Unsupported("")]),
)


def org(session: Session) -> None:
    small = make_small_org(session)
    staff(session, 7001, "Wang", Role.WORKER, small.grid, "en")
    staff(session, 7002, "Chen", Role.COMMUNITY, small.community)


def check_answers(session: Session) -> list[str]:
    problems = []
    for row in session.scalars(select(OutboxMessage)):
        action = action_from_json(dict(row.action))
        if isinstance(action, SendText) and not 1 <= len(action.text) <= MAX_TEXT:
            problems.append(f"text of {len(action.text)} characters")
        if isinstance(action, SendPhoto) and len(action.caption) > MAX_CAPTION:
            problems.append(f"caption of {len(action.caption)} characters")
        if APOLOGY in str(row.action).lower():
            problems.append(f"a handler failed: {row.action}")
        keyboard = getattr(action, "keyboard", None)
        for row_buttons in getattr(keyboard, "rows", []) or []:
            for button in row_buttons:
                data = getattr(button, "data", "")
                if data and len(data.encode()) > MAX_CALLBACK:
                    problems.append(f"callback data of {len(data.encode())} bytes: {data!r}")
    return problems


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(script=st.lists(st.tuples(st.sampled_from([1001, 1002, 7001, 7002]), events), min_size=1, max_size=6))
async def test_hostile_input_keeps_the_bot_sound(
    database: Database, clock: FrozenClock, script: list[tuple[int, Event]], caplog: pytest.LogCaptureFixture
) -> None:
    # One database for all examples (fixtures are per test): each example's damage must stay valid too.
    if not await database.run(lambda s: s.scalar(select(func.count()).select_from(Person))):
        await database.run(org)
    chat = CoreChat(database, Core(database, build_router(), CoreConfig(bot_username="gridbot_test"), clock), clock)
    caplog.set_level(logging.ERROR, logger="bot.core.app")
    for user_id, event in script:
        person = chat.people.get(str(user_id)) or chat.person(user_id, language="en" if user_id > 7000 else "zh-hans")
        await chat.send(person, event)
    assert [r.message for r in caplog.records if "handler failed" in r.message] == []
    assert await database.run(check_answers) == []
    assert await database.run(check_invariants) == []
    await database.run(lambda s: s.query(OutboxMessage).delete())  # only this example's answers are checked


# --- abuse limits ------------------------------------------------------------------------------------------


async def test_a_flood_is_held_back_with_one_notice_and_staff_are_exempt(database: Database, chat: CoreChat) -> None:
    await database.run(org)
    now = [0.0]
    chat.core.throttle = Throttle(limit=5, window=1.0, now=lambda: now[0])
    li = chat.person(1001, "Li", "en")
    for _ in range(12):
        await chat.text(li, "hello")
    notices = [t for t in li.texts() if "very quickly" in t]
    assert len(notices) == 1
    assert chat.core.throttle.held_back == 7
    now[0] += 5  # a quiet spell: served again
    before = len(li.messages)
    await chat.text(li, "/help")
    assert len(li.messages) > before and "very quickly" not in li.last.text
    wang = chat.person(7001, "Wang", "en")
    for _ in range(12):
        await chat.text(wang, "/tasks")
    assert not [t for t in wang.texts() if "very quickly" in t]


async def test_daily_request_limit_is_enforced(database: Database, clock: FrozenClock) -> None:
    from bot.core import requests as core_requests

    await database.run(org)

    def file_many(session: Session) -> tuple[int, str]:
        resident = Person(channel="telegram", external_id="1001", chat_id="1001", locale="en", state_data={},
                          created_at=clock(), building_id=1)
        session.add(resident)
        session.flush()
        filed, refusal = 0, ""
        for n in range(12):
            draft = core_requests.Draft(category_id=1 + n % 2, description=f"problem {n}")
            try:
                core_requests.file_request(session, resident, draft, clock(), 3)
                filed += 1
            except core_requests.RequestRefused as error:
                refusal = str(error)
        return filed, refusal

    filed, refusal = await database.run(file_many)
    assert filed == 3 and refusal


# --- database faults ---------------------------------------------------------------------------------------


class FlakyDatabase(Database):
    """A database that is unavailable for the next ``failures`` units of work (and counts what it let through)."""

    failures = 0

    async def run(self, unit_of_work: Any) -> Any:
        if self.failures:
            self.failures -= 1
            raise DatabaseUnavailable("simulated outage")
        return await super().run(unit_of_work)


class RecordingChannel:
    name = "telegram"

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []

    async def perform(self, chat_id: str, action: Any) -> Any:
        from bot.core.messages import Delivery

        self.sent.append((chat_id, action))
        return Delivery(ok=True, message_id=len(self.sent))


async def test_database_outage_gets_a_polite_answer_and_recovers(database_url: str, clock: FrozenClock) -> None:
    from bot.core.outbox import OutboxSender
    from storage.models import Base

    database = FlakyDatabase(database_url)
    async with database.async_engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    await database.run(org)
    channel = RecordingChannel()
    runtime = Runtime(Core(database, build_router(), CoreConfig(), clock),
                      OutboxSender(database, {"telegram": channel}, clock=clock))
    sender = Sender("telegram", "1001", "1001", "Li", "en")

    def people(session: Session) -> int:
        return int(session.scalar(select(func.count()).select_from(Person)) or 0)

    staff_only = await database.run(people)
    database.failures = 3  # longer than the runtime's retries
    await runtime.process(Incoming("telegram", 1, sender, Command("start")))
    assert len(channel.sent) == 1 and "try again in a moment" in channel.sent[0][1].text
    assert database.failures == 0
    assert await database.run(people) == staff_only  # nothing applied
    database.failures = 2  # a short blip: ridden out by the retries, the person never notices
    await runtime.process(Incoming("telegram", 2, sender, Command("start")))
    assert "try again" not in channel.sent[-1][1].text
    assert await database.run(people) == staff_only + 1
    await database.dispose()


async def test_sqlite_locked_longer_than_busy_timeout(tmp_path: Any, clock: FrozenClock) -> None:
    """Another connection holds an exclusive lock past busy_timeout: a polite answer, then recovery."""
    from bot.core.outbox import OutboxSender
    from storage.models import Base

    path = tmp_path / "locked.db"
    database = Database(f"sqlite+aiosqlite:///{path}")
    async with database.async_engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    channel = RecordingChannel()
    runtime = Runtime(Core(database, build_router(), CoreConfig(), clock),
                      OutboxSender(database, {"telegram": channel}, clock=clock))
    locked = threading.Event()

    def hold_lock() -> None:
        blocker = sqlite3.connect(path, timeout=1)
        blocker.execute("BEGIN EXCLUSIVE")
        locked.set()
        time.sleep(6)  # busy_timeout is 5 s
        blocker.rollback()
        blocker.close()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    locked.wait()
    sender = Sender("telegram", "1001", "1001", "Li", "en")
    with pytest.raises(DatabaseUnavailable):  # what makes the runtime retry and then apologise
        await runtime.core.handle(Incoming("telegram", 1, sender, Command("start")))
    holder.join()
    await runtime.process(Incoming("telegram", 2, sender, Command("start")))
    assert "try again" not in channel.sent[-1][1].text
    handled = await database.run(lambda s: s.scalars(select(InboxUpdate.update_id)).all())
    assert 2 in handled
    await database.dispose()


async def organised_postgres(database_url: str) -> Database:
    """A PostgreSQL database with the schema and the small organisation (the test is skipped on SQLite)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only")
    from storage.models import Base

    database = Database(database_url)
    async with database.async_engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    await database.run(org)
    return database


async def postgres_admin(database_url: str) -> Any:
    """A plain asyncpg connection to the same database, outside the pool under test."""
    import asyncpg
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    return await asyncpg.connect(user=url.username, host=url.host, port=url.port or 5432, database=url.database)


TERMINATE_THE_OTHERS = (
    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() "
    "AND pid <> pg_backend_pid()"
)


async def test_postgres_lock_and_terminated_connections(database_url: str, clock: FrozenClock) -> None:
    """PostgreSQL: a row lock past lock_timeout is an outage (not a hang); killed connections heal by themselves."""
    database = await organised_postgres(database_url)
    admin = await postgres_admin(database_url)
    transaction = admin.transaction()
    await transaction.start()
    await admin.execute("LOCK TABLE people IN ACCESS EXCLUSIVE MODE")
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable):
        await database.run(lambda s: s.scalars(select(Person)).all())
    assert time.monotonic() - started < 10
    await transaction.rollback()
    await admin.execute(TERMINATE_THE_OTHERS)
    await admin.close()
    assert len(await database.run(lambda s: s.scalars(select(Person)).all())) == 2
    await database.dispose()


async def test_postgres_units_of_work_survive_every_pooled_connection_dying(database_url: str) -> None:
    """No ping before each use of a pooled connection: after the server drops them all, units of work running
    at once each find theirs dead and run again on a new one; other database errors are not tried twice."""
    import asyncio

    from sqlalchemy import text
    from sqlalchemy.exc import ProgrammingError

    database = await organised_postgres(database_url)
    runs: list[int] = []

    def slow_count(session: Session) -> int:
        runs.append(1)
        session.execute(text("SELECT pg_sleep(0.1)"))
        return int(session.scalar(select(func.count()).select_from(Person)) or 0)

    assert await asyncio.gather(*(database.run(slow_count) for _ in range(4))) == [2] * 4
    admin = await postgres_admin(database_url)
    terminated = await admin.fetchval(TERMINATE_THE_OTHERS)
    await admin.close()
    assert terminated >= 4
    runs.clear()
    assert await asyncio.gather(*(database.run(slow_count) for _ in range(4))) == [2] * 4
    assert 4 < len(runs) <= 8  # the units that met a dead connection ran once more, none more often

    def broken(session: Session) -> None:
        runs.append(1)
        session.execute(text("SELECT no_such_column FROM people"))

    runs.clear()
    with pytest.raises(ProgrammingError):
        await database.run(broken)
    assert len(runs) == 1
    await database.dispose()


async def test_claims_keep_a_row_from_two_senders(database: Database, clock: FrozenClock) -> None:
    """A claimed row is not handed out again until its lease runs out (then it is: its sender died)."""
    await database.run(org)
    core = Core(database, build_router(), CoreConfig(), clock)
    deliveries = await core.handle(Incoming("telegram", 1, Sender("telegram", "1001", "1001", "Li", "en"),
                                            Command("start")))
    assert deliveries
    assert await database.run(lambda s: due_deliveries(s, clock())) == []
    later = clock() + OUTBOX_LEASE + timedelta(seconds=1)
    first = await database.run(lambda s: due_deliveries(s, later))
    assert {d.outbox_id for d in first} == {d.outbox_id for d in deliveries}
    assert await database.run(lambda s: due_deliveries(s, later)) == []  # claimed again, by the first caller
    assert await database.run(lambda s: s.scalar(select(func.count()).select_from(Request))) == 0
