"""Moving the clock: the playground's +1 day / +1 week run every job whose moment they passed, at once, and a
digest counts as new what its list shows, however late it goes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.config import Settings
from bot.core import requests as core
from bot.core.clock import FrozenClock, RunningClock
from bot.core.scheduler import SchedulerConfig
from bot.playground import Playground
from bot.playground.app import periodic_moments
from storage.models import Person
from tests.harness import CoreChat
from tests.test_lifecycle_core import bind, file_request, make_org_with_staff
from tests.test_scheduler import local, run_at

# A Thursday, 14:00 in the district (Asia/Shanghai).
THURSDAY_AFTERNOON = datetime(2030, 1, 3, 6, 0, tzinfo=UTC)
WAIT = 10.0


async def test_a_late_digest_counts_what_was_filed_since_yesterdays_digest(
    chat: CoreChat, clock: FrozenClock
) -> None:
    await make_org_with_staff(chat.database)
    lily, wang = chat.person(1001, "Lily Resident", "en"), chat.person(2001, "Wang Worker", "en")
    await bind(chat, lily)
    clock.now = local(2026, 11, 26, 14, 0)
    await file_request(chat, lily)

    await run_at(chat, local(2026, 11, 27, 15, 0))  # Friday's digest, six hours late
    digest = wang.find("Your daily digest for Nov 27, 2026")
    assert "1 new request since yesterday" in digest.text and "R-000001" in digest.text


def test_the_moments_passed_are_each_days_digest_time() -> None:
    config = SchedulerConfig()
    moments = periodic_moments(THURSDAY_AFTERNOON, THURSDAY_AFTERNOON + timedelta(days=7), config)
    assert [moment.astimezone(config.zone).strftime("%a %H:%M") for moment in moments] == [
        "Fri 09:00", "Sat 09:00", "Sun 09:00", "Mon 09:00", "Tue 09:00", "Wed 09:00", "Thu 09:00",
    ]
    assert periodic_moments(THURSDAY_AFTERNOON, THURSDAY_AFTERNOON + timedelta(hours=2), config) == []


def file_and_accept(session: Session, now: datetime) -> str:
    """Li Xiulan files a request due in a month, so it stays with the grid worker, who accepts it."""
    people = {p.external_id: p for p in session.scalars(select(Person).where(Person.channel == "telegram"))}
    category = core.categories_for_filing(session)[0]
    category.due_days = 30
    draft = core.Draft(category.id, "楼道里堆满了纸箱，挡住了消防通道")
    change = core.file_request(session, people["910001"], draft, now)
    core.accept(session, people["920001"], change.request.id, now)
    return change.request.code


async def test_moving_the_clock_runs_each_digest_and_the_weekly_status_it_passed(database_url: str) -> None:
    settings = Settings(database_url=database_url, _env_file=None)  # type: ignore[call-arg]
    playground = Playground(settings, port=0, real_time=RunningClock(THURSDAY_AFTERNOON))
    try:
        await playground.start()
        code = await playground.service.database.run(lambda s: file_and_accept(s, playground.clock()))
        worker = playground.user(playground.persona("worker"))
        resident = playground.user(playground.persona("resident1"))

        def digests() -> list[str]:
            return [m.text or "" for m in worker.messages if "每日摘要" in (m.text or "")]

        await playground.move_clock(1)
        friday = await worker.wait_for(lambda m: "每日摘要" in (m.text or ""), WAIT)
        assert "昨日以来新增1件诉求" in (friday.text or "") and code in (friday.text or "")

        await playground.move_clock(7)
        weekly = await resident.wait_for(lambda m: "本周您的诉求进展" in (m.text or ""), WAIT)
        assert code in (weekly.text or "")
        await worker.wait_for(lambda _m: len(digests()) == 8, WAIT)
        assert len({text.splitlines()[0] for text in digests()}) == 8  # one per day, each with its own date
    finally:
        await playground.stop()
