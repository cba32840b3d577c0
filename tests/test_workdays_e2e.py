"""Working days through both engines: a request filed on the Friday before the 2026 Spring Festival."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.scheduler import JobKind, SchedulerConfig
from bot.scheduler import run_due_jobs
from bot.simulator import BotApiSimulator
from storage.models import Level, Request
from tests.e2e import TickingClock, running_bot
from tests.test_lifecycle_e2e import JPEG, button, with_org_and_staff

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Friday 13 February 2026, 10:00 in Shanghai: the festival runs from Sunday 15 to Monday 23, and Saturday 14
# and Saturday 28 are 调休 working days.
FESTIVAL_EVE = datetime(2026, 2, 13, 10, 0, tzinfo=SHANGHAI).astimezone(UTC)

def only_request(session: Session) -> Request:
    return session.scalars(select(Request)).one()


async def test_a_request_before_the_festival_waits_for_working_days(
    sim: tuple[BotApiSimulator, str], database_url: str, engine: str
) -> None:
    simulator, url = sim
    async with running_bot(simulator, url, database_url, engine=engine, clock=TickingClock(FESTIVAL_EVE),
                           scheduler="off") as bot:
        database = bot.service.database
        await database.run(with_org_and_staff)
        li = simulator.user(1001, "李", language_code="zh-hans")
        wang = simulator.user(7001, "Wang", language_code="en")
        await wang.send_text("/start")
        await wang.wait_for(lambda m: m.text is not None)

        await li.send_text("/start b_DG-JS-01-B1")
        await li.wait_for_text("建设路12号院1号楼")
        await li.send_text("/new")
        categories = await li.wait_for(lambda m: any(d.startswith("fl:cat:") for _t, d in m.buttons()))
        await li.press(categories, button(categories, "fl:cat:1"))
        await li.wait_for(lambda m: m.edit_count > 0 or "描述" in (m.text or ""))
        await li.send_text("楼道里堆满了纸箱，挡住了消防通道")
        await li.wait_for(lambda m: any(d.startswith("fl:photos") for _t, d in m.buttons()))
        await li.send_photo(JPEG)
        done = await li.wait_for(lambda m: any(d.startswith("fl:photos") for _t, d in m.buttons()))
        await li.press(done, button(done, "fl:photos"))
        where = await li.wait_for(lambda m: any(d.startswith("fl:loc:b") for _t, d in m.buttons()))
        await li.press(where, button(where, "fl:loc:b"))
        hide = await li.wait_for(lambda m: any(d.startswith("fl:hide:0") for _t, d in m.buttons()))
        await li.press(hide, button(hide, "fl:hide:0"))
        summary = await li.wait_for(lambda m: any(d.startswith("fl:ok:") for _t, d in m.buttons()))
        mark = simulator.seq
        await li.press(summary, button(summary, "fl:ok:"))

        # Seven working days: 14 Feb, 24-27 Feb, the 调休 Saturday 28 Feb and Monday 2 March.
        receipt = await li.wait_for_text("R-000001")
        assert "2026年3月2日（7个工作日）" in (receipt.text or "")
        card = await wang.wait_for(lambda m: "R-000001" in (m.caption or m.text or ""), since=mark)
        assert "Due by: Mar 2, 2026 (7 working days)" in (card.caption or card.text or "")

        request = await database.run(only_request)
        assert request.due_at == datetime(2026, 3, 2, 17, 30, tzinfo=SHANGHAI)
        # 24 office hours: 5 h on Friday, 6.5 h on the 调休 Saturday, then the days after the festival; 48 take
        # in the 调休 Saturday 28 February as well and end on Monday 2 March.
        assert request.remind_at is not None and request.escalate_at is not None
        assert request.remind_at.astimezone(SHANGHAI).date().isoformat() == "2026-02-25"
        assert request.escalate_at.astimezone(SHANGHAI).date().isoformat() == "2026-03-02"

        # A week later, deep in the festival, 48 calendar hours have long passed: nobody is reminded or moved.
        festival = datetime(2026, 2, 20, 12, 0, tzinfo=SHANGHAI)
        report = await run_due_jobs(database, festival, SchedulerConfig())
        assert report.done[JobKind.REMIND] == 0 and report.done[JobKind.ESCALATE_UNANSWERED] == 0
        assert (await database.run(only_request)).level is Level.GRID

        # After the 24 office hours the worker is reminded.
        report = await run_due_jobs(database, datetime(2026, 2, 25, 18, 0, tzinfo=SHANGHAI), SchedulerConfig())
        assert report.done[JobKind.REMIND] == 1 and report.done[JobKind.ESCALATE_UNANSWERED] == 0
