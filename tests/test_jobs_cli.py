"""``gridbot jobs run``: due as of ``--at``, sendable from the real now."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.cli import main
from bot.config import Settings
from bot.core.scheduler import resident_not_before
from bot.scheduler import scheduler_config
from storage.database import Database
from storage.models import OutboxMessage, Person
from tests.test_scheduler import PROJECT_ROOT as ROOT
from tests.test_scheduler import outbox_messages, seed_deployment

FILED = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


@pytest.fixture
def cli_database(database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    monkeypatch.setenv("GRIDBOT_DATABASE_URL", database_url)
    monkeypatch.delenv("GRIDBOT_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    return database_url


def stamped_rows(url: str) -> list[tuple[bool, datetime]]:
    """(whether the recipient is staff, not_before) of every outbox row, as aware UTC instants."""

    async def load() -> list[tuple[bool, datetime]]:
        database = Database(url)
        try:
            rows = await database.run(lambda s: [
                (bool(person.roles), not_before)
                for person, not_before in s.execute(
                    select(Person, OutboxMessage.not_before).join(Person, Person.id == OutboxMessage.person_id)
                ).all()
            ])
        finally:
            await database.dispose()
        return [(staff, moment if moment.tzinfo else moment.replace(tzinfo=UTC)) for staff, moment in rows]

    return asyncio.run(load())


def test_jobs_run_as_of_a_later_day_stamps_messages_from_the_real_now(
    cli_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    seed_deployment(cli_database, residents=3, filed_at=FILED)
    # Nine days on: reminders, escalations and the digest are all due as of then.
    at = FILED + timedelta(days=9)

    before = datetime.now(UTC)
    assert main(["jobs", "run", "--at", at.isoformat()]) == 0
    after = datetime.now(UTC)
    out = capsys.readouterr().out
    assert "escalate_unanswered 3" in out and "the outbox of the running bot sends them" in out

    rows = stamped_rows(cli_database)
    assert any(staff for staff, _ in rows) and any(not staff for staff, _ in rows)
    latest_for_residents = resident_not_before(after, scheduler_config(Settings()))
    for staff, not_before in rows:
        # Never stamped with --at: a run "as of" another day does not hold its messages until that day.
        assert not_before != at
        assert before - timedelta(seconds=1) <= not_before
        assert not_before <= (after if staff else latest_for_residents) + timedelta(seconds=1)


def test_jobs_run_without_at_catches_up_on_what_is_overdue_now(
    cli_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    seed_deployment(cli_database, residents=2, filed_at=datetime.now(UTC) - timedelta(hours=25))

    assert main(["jobs", "run"]) == 0
    assert "remind 2" in capsys.readouterr().out
    assert main(["jobs", "run"]) == 0
    assert "nothing was due" in capsys.readouterr().out


def test_gridbot_scheduler_runs_the_scheduler_alone_until_sigterm(cli_database: str) -> None:
    seed_deployment(cli_database, residents=2, filed_at=datetime.now(UTC) - timedelta(hours=25))
    env = {**os.environ, "GRIDBOT_DATABASE_URL": cli_database}
    process = subprocess.Popen([sys.executable, "-m", "bot", "scheduler"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not any("Reminder: nobody has accepted" in action for _person, action in outbox_messages(cli_database)):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the scheduler wrote no reminder"
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err


async def test_workers_with_the_scheduler_off_start_no_scheduler(database_url: str) -> None:
    from bot.engines.background import cancel_loops, start_background_loops
    from bot.service import Service, prepare_database

    loops_started = {}
    for switch in ("on", "off"):
        settings = Settings(database_url=database_url, scheduler=switch, _env_file=None)  # type: ignore[call-arg]
        service = Service.from_settings(settings)
        await prepare_database(service.database)
        stop = asyncio.Event()
        loops = start_background_loops(settings, service.runtime({}, "bot"), stop)
        loops_started[switch] = sorted(loop.get_coro().__qualname__ for loop in loops)  # type: ignore[union-attr]
        stop.set()
        await cancel_loops(loops)
        await service.database.dispose()
    assert "scheduler_loop" in loops_started["on"]
    assert loops_started["off"] == [name for name in loops_started["on"] if name != "scheduler_loop"]
