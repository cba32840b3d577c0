"""The scheduler: reminders, automatic escalation, weekly feedback, re-asking and closing, quiet hours, the daily
digest, the monthly bulletin, and doing each of them exactly once across runs, restarts and processes.

Time moves by handing ``run_due_jobs`` (or ``gridbot jobs run --at``) a later instant; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from collections import Counter
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot import scheduler
from bot.cli import main
from bot.core import requests as core
from bot.core.bulletin import Bulletin
from bot.core.bulletin_render import BulletinDocuments
from bot.core.clock import FrozenClock
from bot.core.outbox import due_deliveries
from bot.core.scheduler import JobKind, SchedulerConfig, quiet_hours_end_after
from bot.i18n import Translator
from bot.scheduler import RunReport, run_due_jobs
from bot.service import prepare_database
from storage.database import Database
from storage.models import EventKind, Level, OutboxMessage, Person, Request, RequestEvent, RequestStatus, Role
from tests.harness import CoreChat, FakePerson
from tests.org_fixture import SmallOrg, make_small_org, staff
from tests.test_lifecycle_core import (
    CLUTTER,
    WIRES,
    bind,
    data_of,
    file_request,
    load_request,
    make_org_with_staff,
    staff_writes,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG = SchedulerConfig()


def local(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """A wall-clock time in Nanyang as a UTC instant."""
    return datetime(year, month, day, hour, minute, tzinfo=CONFIG.zone).astimezone(UTC)


async def run_at(chat: CoreChat, moment: datetime) -> RunReport:
    """Run the scheduler as of ``moment`` and show what it may send now to the people in the chat."""
    report = await run_due_jobs(chat.database, moment, CONFIG)
    await chat.deliver_all(report.deliveries)
    return report


async def events_of(database: Database, request_id: int = 1) -> list[RequestEvent]:
    def load(session: Session) -> list[RequestEvent]:
        query = select(RequestEvent).where(RequestEvent.request_id == request_id).order_by(RequestEvent.id)
        return list(session.scalars(query))

    return await database.run(load)


async def outbox_rows(database: Database) -> list[OutboxMessage]:
    return await database.run(lambda session: list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))))


def count_containing(person: FakePerson, part: str) -> int:
    return sum(part in text for text in person.texts())


async def filed_request(chat: CoreChat, resident_language: str = "en") -> tuple[FakePerson, FakePerson]:
    """The small organisation with staff, and one request filed by an English-speaking resident."""
    await make_org_with_staff(chat.database)
    lily = chat.person(1001, "Lily Resident", resident_language)
    wang = chat.person(2001, "Wang Worker", "en")
    await bind(chat, lily)
    await file_request(chat, lily)
    return lily, wang


# --- deadlines and escalation -------------------------------------------------------------------------


async def test_new_request_reminds_its_holder_after_24_hours_not_23(chat: CoreChat, clock: FrozenClock) -> None:
    _lily, wang = await filed_request(chat)
    filed = clock.now

    await run_at(chat, filed + timedelta(hours=23))
    assert count_containing(wang, "Reminder") == 0
    assert EventKind.REMINDED not in [event.kind for event in await events_of(chat.database)]

    await run_at(chat, filed + timedelta(hours=24))
    reminder = wang.find("Reminder: nobody has accepted R-000001")
    assert data_of(reminder, "rq:acc:1")
    reminded = [event for event in await events_of(chat.database) if event.kind is EventKind.REMINDED]
    assert len(reminded) == 1 and reminded[0].actor_id is None

    await run_at(chat, filed + timedelta(hours=30))
    assert count_containing(wang, "Reminder") == 1


async def test_unaccepted_request_escalates_to_the_community_by_itself_after_48_hours(
    chat: CoreChat, clock: FrozenClock
) -> None:
    lily, _wang = await filed_request(chat)
    chen = chat.person(3001, "陈社区", "zh-hans")
    filed = clock.now

    await run_at(chat, filed + timedelta(hours=47))
    assert (await load_request(chat.database)).level is Level.GRID

    await run_at(chat, filed + timedelta(hours=48))
    request = await load_request(chat.database)
    assert request.level is Level.COMMUNITY and request.status is RequestStatus.NEW
    escalated = [event for event in await events_of(chat.database) if event.kind is EventKind.ESCALATED]
    assert len(escalated) == 1
    assert escalated[0].actor_id is None and escalated[0].text == "no response"
    assert escalated[0].level is Level.COMMUNITY
    card = chen.find("R-000001")
    assert data_of(card, "rq:acc:1")
    assert "Nobody took up R-000001 in time, so it was passed up to 建设社区." in lily.texts()


async def test_request_not_resolved_by_its_due_date_escalates_and_the_resident_is_told(
    chat: CoreChat, clock: FrozenClock
) -> None:
    lily, wang = await filed_request(chat)
    sun = chat.person(4001, "Sun Street", "en")
    await chat.press(wang, data_of(wang.last, "rq:acc:"))
    due = (await load_request(chat.database)).due_at
    assert due == clock.now + timedelta(days=7)

    await run_at(chat, due - timedelta(minutes=1))
    assert (await load_request(chat.database)).level is Level.GRID

    await run_at(chat, due)
    request = await load_request(chat.database)
    assert request.level is Level.COMMUNITY and request.assignee_id is None
    escalated = [event for event in await events_of(chat.database) if event.kind is EventKind.ESCALATED]
    assert [(event.actor_id, event.text) for event in escalated] == [(None, "overdue")]
    told = lily.find("was not resolved by")
    assert "R-000001" in told.text and "passed up to 建设社区, who will handle it now" in told.text

    # Once is enough: the request stays overdue but is not pushed up again on the next runs.
    await run_at(chat, due + timedelta(hours=1))
    assert (await load_request(chat.database)).level is Level.COMMUNITY
    assert count_containing(lily, "was not resolved by") == 1
    assert count_containing(sun, "R-000001") == 0


# --- the weekly loop: feedback, asking again, closing -------------------------------------------------


async def test_weekly_feedback_tells_each_resident_with_an_open_request_its_status(
    chat: CoreChat, clock: FrozenClock
) -> None:
    lily, wang = await filed_request(chat)
    quiet_neighbour = chat.person(1002, "Nobody Filed", "en")
    await bind(chat, quiet_neighbour)
    await chat.press(wang, data_of(wang.last, "rq:acc:"))
    before = len(lily.messages)

    await run_at(chat, local(2026, 11, 30, 8, 59))
    assert len(lily.messages) == before

    monday = local(2026, 11, 30, 9, 0)
    await run_at(chat, monday)
    feedback = lily.find("This week's news on your requests")
    assert "R-000001" in feedback.text and "being handled" in feedback.text
    assert "with Wang Worker (建设一网格)" in feedback.text
    assert "Last: accepted on" in feedback.text and "Due by Dec 2, 2026" in feedback.text
    assert data_of(feedback, "my:open:1")
    assert count_containing(quiet_neighbour, "This week's news") == 0

    await run_at(chat, monday + timedelta(hours=2))
    assert count_containing(lily, "This week's news") == 1


async def test_unconfirmed_resolution_is_asked_again_after_3_days_and_closed_after_7(
    chat: CoreChat, clock: FrozenClock
) -> None:
    lily, wang = await filed_request(chat)
    await chat.press(wang, data_of(wang.last, "rq:acc:"))
    await staff_writes(chat, wang, "rq:res:", "Boxes removed")
    resolved = clock.now

    await run_at(chat, resolved + timedelta(days=3) - timedelta(minutes=1))
    assert count_containing(lily, "Is it fixed? Please answer") == 0

    await run_at(chat, resolved + timedelta(days=3))
    asked = lily.find("Is it fixed? Please answer")
    assert "R-000001" in asked.text
    assert [data for _label, data in asked.buttons()] == ["my:ok:1:fixed", "my:ok:1:partly", "my:ok:1:not_fixed"]

    await run_at(chat, resolved + timedelta(days=5))
    assert count_containing(lily, "Is it fixed? Please answer") == 1
    assert (await load_request(chat.database)).status is RequestStatus.RESOLVED

    await run_at(chat, resolved + timedelta(days=7))
    request = await load_request(chat.database)
    assert request.status is RequestStatus.CLOSED and request.closed_at == resolved + timedelta(days=7)
    closed = [event for event in await events_of(chat.database) if event.kind is EventKind.CLOSED]
    assert [(event.actor_id, event.text) for event in closed] == [(None, "no answer")]
    assert "R-000001 was closed because we did not hear back from you" in lily.last.text
    assert "R-000001 was closed: the resident did not answer in time." in wang.texts()


# --- quiet hours --------------------------------------------------------------------------------------


def test_quiet_hours_end_at_eight_the_next_morning() -> None:
    assert quiet_hours_end_after(local(2026, 11, 27, 23, 0), CONFIG) == local(2026, 11, 28, 8, 0)
    assert quiet_hours_end_after(local(2026, 11, 28, 7, 59), CONFIG) == local(2026, 11, 28, 8, 0)
    assert quiet_hours_end_after(local(2026, 11, 28, 22, 0), CONFIG) == local(2026, 11, 29, 8, 0)
    assert quiet_hours_end_after(local(2026, 11, 28, 8, 0), CONFIG) is None
    assert quiet_hours_end_after(local(2026, 11, 28, 21, 59), CONFIG) is None
    daytime_quiet = SchedulerConfig(quiet_hours_start=time(12, 0), quiet_hours_end=time(14, 0))
    assert quiet_hours_end_after(local(2026, 11, 28, 13, 0), daytime_quiet) == local(2026, 11, 28, 14, 0)


async def test_resident_message_due_at_23_waits_until_8_but_staff_are_told_at_once(
    chat: CoreChat, clock: FrozenClock
) -> None:
    clock.now = local(2026, 11, 25, 23, 0)
    lily, _wang = await filed_request(chat)
    chen = chat.person(3001, "陈社区", "zh-hans")
    escalation = clock.now + timedelta(hours=48)  # Friday 23:00 in Nanyang
    lily_seen = len(lily.messages)

    report = await run_at(chat, escalation)
    assert len(lily.messages) == lily_seen and chen.find("R-000001")

    rows = [row for row in await outbox_rows(chat.database) if row.created_at == escalation]
    by_person = {row.person_id: row.not_before for row in rows}
    people = await chat.database.run(lambda s: {p.external_id: p.id for p in s.scalars(select(Person))})
    assert by_person[people["1001"]] == local(2026, 11, 28, 8, 0)
    assert by_person[people["3001"]] == escalation
    assert people["1001"] not in {delivery.person_id for delivery in report.deliveries}

    held_back = {row.id for row in rows if row.person_id == people["1001"]}

    def due_for_lily(session: Session, now: datetime) -> list[int]:
        return [d.outbox_id for d in due_deliveries(session, now) if d.outbox_id in held_back]

    assert await chat.database.run(lambda s: due_for_lily(s, local(2026, 11, 28, 7, 59))) == []
    assert len(await chat.database.run(lambda s: due_for_lily(s, local(2026, 11, 28, 8, 0)))) == 1


# --- the daily digest and the monthly bulletin --------------------------------------------------------


async def test_daily_digest_goes_once_to_each_staff_member_with_open_items_only(
    chat: CoreChat, clock: FrozenClock
) -> None:
    await make_org_with_staff(chat.database)
    lily = chat.person(1001, "Lily Resident", "en")
    wang = chat.person(2001, "Wang Worker", "en")
    others = [chat.person(2002, "Zhao Other"), chat.person(3001, "陈社区"), chat.person(4001, "Sun Street", "en"),
              chat.person(5001, "周区中心")]
    await bind(chat, lily)
    await file_request(chat, lily, category=CLUTTER)
    await file_request(chat, lily, "电动车飞线充电", category=WIRES)

    await run_at(chat, local(2026, 11, 26, 8, 59))
    assert count_containing(wang, "daily digest") == 0

    morning = local(2026, 11, 26, 9, 0)
    await run_at(chat, morning)
    digest = wang.find("Your daily digest for Nov 26, 2026")
    assert "2 new requests since yesterday" in digest.text and "2 open requests" in digest.text
    assert "1 overdue" not in digest.text
    assert [data for _label, data in digest.buttons()] == ["rq:open:1", "rq:open:2"]
    assert all(person.messages == [] for person in others)

    await run_at(chat, morning + timedelta(hours=1))
    assert count_containing(wang, "daily digest") == 1


async def test_monthly_bulletin_reaches_area_staff_on_the_first_in_their_own_language(
    chat: CoreChat, clock: FrozenClock
) -> None:
    _lily, wang = await filed_request(chat)
    await chat.press(wang, data_of(wang.last, "rq:acc:"))
    chen = chat.person(3001, "陈社区", "zh-hans")
    sun = chat.person(4001, "Sun Street", "en")

    await run_at(chat, local(2026, 12, 1, 8, 59))
    assert chen.messages == [] and sun.messages == []

    await run_at(chat, local(2026, 12, 1, 9, 0))
    assert chen.messages[0].text.startswith("2026年11月通报：建设社区")
    assert [message.document for message in chen.messages[1:]] == ["bulletin-2026-11.png", "bulletin-2026-11.xlsx"]
    assert sun.messages[0].text.startswith("Monthly bulletin for November 2026: 东关街道")
    assert [message.document for message in sun.messages[1:]] == ["bulletin-2026-11.png", "bulletin-2026-11.xlsx"]
    assert all(message.document is None for message in wang.messages)

    await run_at(chat, local(2026, 12, 2, 9, 0))
    assert len(chen.messages) == 3 and len(sun.messages) == 3


async def test_the_bulletin_is_drawn_outside_the_database_thread(
    chat: CoreChat, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Drawing a chart takes a good part of a second; in the database thread every resident's answer would wait.
    await filed_request(chat)
    chen = chat.person(3001, "陈社区", "zh-hans")
    sun = chat.person(4001, "Sun Street", "en")
    drawn_in: list[str] = []
    drawn: list[tuple[object, str]] = []
    draw = scheduler.bulletin_documents

    def recording_draw(t: Translator, bulletin: Bulletin) -> BulletinDocuments:
        drawn_in.append(threading.current_thread().name)
        drawn.append((bulletin.area, t.locale))
        return draw(t, bulletin)

    monkeypatch.setattr(scheduler, "bulletin_documents", recording_draw)
    await run_at(chat, local(2026, 12, 1, 9, 0))

    # Each area once per language (the community's in Chinese, the street's in English, ...), never in the
    # database thread.
    assert len(drawn) >= 2 and len(set(drawn)) == len(drawn), drawn
    assert all(name != threading.main_thread().name and not name.startswith("gridbot-db") for name in drawn_in)
    assert chen.find("2026年11月通报：建设社区") and sun.find("Monthly bulletin for November 2026")
    for reader in (chen, sun):
        assert [m.document for m in reader.messages if m.document] == ["bulletin-2026-11.png", "bulletin-2026-11.xlsx"]


# --- exactly once: restarts, the command line, two processes ------------------------------------------


async def test_a_restart_between_runs_repeats_nothing(
    chat: CoreChat, clock: FrozenClock, database_url: str
) -> None:
    await filed_request(chat)
    moment = clock.now + timedelta(hours=24)
    first = await run_due_jobs(chat.database, moment, CONFIG)
    assert first.done[JobKind.REMIND] == 1 and first.messages > 0
    written = len(await outbox_rows(chat.database))

    restarted = Database(database_url)
    try:
        again = await run_due_jobs(restarted, moment, CONFIG)
        later = await run_due_jobs(restarted, moment + timedelta(hours=6), CONFIG)
    finally:
        await restarted.dispose()
    assert again.messages == 0 and not again.done
    assert later.done[JobKind.REMIND] == 0 and later.done[JobKind.DAILY_DIGEST] == 0
    assert len(await outbox_rows(chat.database)) == written


def seed_deployment(url: str, residents: int, filed_at: datetime) -> None:
    """An upgraded database with the small organisation, its staff, and one request per resident."""

    def seed(session: Session) -> None:
        org: SmallOrg = make_small_org(session)
        staff(session, 2001, "Wang Worker", Role.WORKER, org.grid, "en")
        staff(session, 3001, "陈社区", Role.COMMUNITY, org.community, "zh_CN")
        for number in range(residents):
            resident = Person(channel="telegram", external_id=str(9000 + number), chat_id=str(9000 + number),
                              display_name=f"resident {number}", locale="en", building_id=org.building,
                              state_data={}, created_at=filed_at)
            session.add(resident)
            session.flush()
            session.refresh(resident)
            core.file_request(session, resident, core.Draft(category_id=1, description="boxes"), filed_at)

    async def run() -> None:
        database = Database(url)
        try:
            await database.run(seed)
            # The default categories too, so the processes under test find nothing to seed at start-up.
            await prepare_database(database)
        finally:
            await database.dispose()

    assert main(["db", "upgrade"]) == 0
    asyncio.run(run())


def outbox_messages(url: str) -> list[tuple[int, str]]:
    async def load() -> list[tuple[int, str]]:
        database = Database(url)
        try:
            rows = await database.run(lambda s: s.execute(select(OutboxMessage.person_id, OutboxMessage.action)).all())
        finally:
            await database.dispose()
        return [(person_id, json.dumps(action, sort_keys=True)) for person_id, action in rows]

    return asyncio.run(load())


@pytest.fixture
def cli_database(database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    monkeypatch.setenv("GRIDBOT_DATABASE_URL", database_url)
    monkeypatch.delenv("GRIDBOT_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    return database_url


FILED = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


def test_jobs_run_twice_at_the_same_instant_sends_nothing_the_second_time(
    cli_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    seed_deployment(cli_database, residents=2, filed_at=FILED)
    at = (FILED + timedelta(hours=24)).isoformat()

    assert main(["jobs", "due", "--at", at]) == 0
    listed = capsys.readouterr().out
    assert "remind" in listed and "R-000001" in listed and "R-000002" in listed and "daily_digest" in listed

    assert main(["jobs", "run", "--at", at]) == 0
    assert "remind 2" in capsys.readouterr().out
    written = len(outbox_messages(cli_database))
    assert written > 0

    assert main(["jobs", "run", "--at", at]) == 0
    assert "nothing was due; 0 message(s) written" in capsys.readouterr().out
    assert len(outbox_messages(cli_database)) == written
    assert main(["jobs", "due", "--at", at]) == 0
    assert "nothing is due" in capsys.readouterr().out


@pytest.mark.skipif(
    not os.environ.get("GRIDBOT_TEST_POSTGRES"),
    reason="two processes contend only on a shared server database; SQLite has a single writer, and CI runs "
    "this with GRIDBOT_TEST_POSTGRES set",
)
def test_two_processes_running_jobs_at_once_send_each_message_exactly_once(cli_database: str) -> None:
    residents = 40
    seed_deployment(cli_database, residents=residents, filed_at=FILED)
    at = (FILED + timedelta(hours=24)).isoformat()
    command = [sys.executable, "-m", "bot.cli", "jobs", "run", "--at", at]
    env = {**os.environ, "GRIDBOT_DATABASE_URL": cli_database}
    processes = [subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE) for _ in range(2)]
    results = [process.communicate(timeout=120) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], results

    messages = outbox_messages(cli_database)
    copies = Counter(messages)
    assert max(copies.values()) == 1
    reminders = [action for _person, action in messages if "Reminder: nobody has accepted" in action]
    assert len(reminders) == residents
    digests = [action for _person, action in messages if "daily digest" in action]
    assert len(digests) == 1


async def test_every_automatic_event_is_recorded_as_the_system(chat: CoreChat, clock: FrozenClock) -> None:
    await filed_request(chat)
    await run_at(chat, clock.now + timedelta(days=8))

    def automatic(session: Session) -> list[Any]:
        query = select(RequestEvent.kind, func.count()).where(RequestEvent.actor_id.is_(None))
        return list(session.execute(query.group_by(RequestEvent.kind)).all())

    kinds = dict(await chat.database.run(automatic))
    assert kinds.get(EventKind.ESCALATED, 0) >= 1
    request = await chat.database.run(lambda s: s.get(Request, 1))
    assert request is not None and request.level is not Level.GRID
