"""The bulletin's grid workers: each worker's line against a hand-computed month, in the summary and workbook.

October 2026 in Asia/Shanghai runs from 2026-09-30 16:00 UTC up to 2026-10-31 16:00 UTC.

    worker    grid       visits  patrols (hours)        leads (on the spot)  resolved (on time)
    王网格     DG-JS-01   3       2.5 + 1.5 = 4.0        3 (2)                4 (3)
    李网格     DG-JS-01   1       0                      1 (0)                1 (1)
    赵网格     DG-JS-02   0       0                      0                    0
    孙网格     XH-RM-01   5       0.5                    0                    0      (not in 建设社区)

What lies just outside the month, or does not count, is listed where it is made: a visit at 23:30 on
30 September and one at 00:10 on 1 November (Shanghai), a patrol begun on 30 September, a patrol still open,
a lead filed in September, a request 王网格 resolved twice in October (counted once, on time by its first
resolution) and a resolution by 李网格 in November.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.bulletin import Bulletin, WorkerLine, compute_bulletin
from bot.core.bulletin_render import render_summary, render_workbook
from bot.core.units import DISTRICT, Unit
from bot.i18n import translator
from storage.database import Database
from storage.models import (
    Category,
    EventKind,
    Level,
    Patrol,
    Person,
    Request,
    RequestEvent,
    RequestStatus,
    Role,
    Visit,
)
from tests.org_fixture import SmallOrg, make_small_org, staff

TZ = "Asia/Shanghai"
MONTH = "2026-10"
MONTH_START = datetime(2026, 9, 30, 16, tzinfo=UTC)
MONTH_END = datetime(2026, 10, 31, 16, tzinfo=UTC)


def oct_(day: int, hour: float = 0) -> datetime:
    """A moment in October 2026, UTC."""
    return datetime(2026, 10, day, tzinfo=UTC) + timedelta(hours=hour)


class Month:
    """Builds the month's rows for one organisation."""

    def __init__(self, session: Session, org: SmallOrg) -> None:
        self.session = session
        self.org = org
        self.category = session.scalar(select(Category.id).where(Category.code == "clutter")) or 0
        self.resident = Person(channel="telegram", external_id="900", chat_id="900", display_name="居民",
                               state_data={}, building_id=org.building, created_at=MONTH_START)
        session.add(self.resident)
        session.flush()

    def visit(self, worker: Person, grid: int, building: int, at: datetime) -> None:
        self.session.add(Visit(worker_id=worker.id, grid_id=grid, building_id=building, room="", met="", note="",
                               at=at))

    def patrol(self, worker: Person, grid: int, start: datetime, hours: float | None) -> None:
        ended = start + timedelta(hours=hours) if hours is not None else None
        self.session.add(Patrol(worker_id=worker.id, grid_id=grid, started_at=start, ended_at=ended,
                                auto_closed=False, distance_m=0.0))

    def request(self, created: datetime, due: datetime, lead_by: Person | None = None,
                on_the_spot: bool = False) -> Request:
        request = Request(
            resident_id=(lead_by or self.resident).id, building_id=self.org.building, grid_id=self.org.grid,
            category_id=self.category,
            description="…", status=RequestStatus.CLOSED if on_the_spot else RequestStatus.NEW, level=Level.GRID,
            unit_id=self.org.grid, created_at=created, due_at=due, lead_by_id=lead_by.id if lead_by else None,
            on_the_spot=on_the_spot, resolved_at=created if on_the_spot else None,
        )
        self.session.add(request)
        self.session.flush()
        return request

    def resolved(self, request: Request, worker: Person, at: datetime) -> None:
        self.session.add(RequestEvent(request_id=request.id, at=at, actor_id=worker.id, kind=EventKind.RESOLVED))


def make_month(session: Session) -> SmallOrg:
    org = make_small_org(session)
    wang = staff(session, 11, "王网格", Role.WORKER, org.grid)
    li = staff(session, 12, "李网格", Role.WORKER, org.grid)
    staff(session, 13, "赵网格", Role.WORKER, org.empty_grid)
    sun = staff(session, 14, "孙网格", Role.WORKER, org.grid2)
    month = Month(session, org)
    for day in (2, 9, 30):
        month.visit(wang, org.grid, org.building, oct_(day, 3))
    month.visit(wang, org.grid, org.building, MONTH_START - timedelta(minutes=30))  # 30 September 23:30
    month.visit(wang, org.grid, org.building, MONTH_END + timedelta(minutes=10))  # 1 November 00:10
    month.visit(li, org.grid, org.building, oct_(15, 2))
    for day in range(1, 6):
        month.visit(sun, org.grid2, org.building2, oct_(day, 4))

    month.patrol(wang, org.grid, oct_(3, 14), 2.5)
    month.patrol(wang, org.grid, oct_(10, 13), 1.5)
    month.patrol(wang, org.grid, oct_(20, 13), None)  # still open: no hours yet
    month.patrol(wang, org.grid, MONTH_START - timedelta(hours=1), 3)  # begun in September
    month.patrol(sun, org.grid2, oct_(4, 13), 0.5)

    spot1 = month.request(oct_(4), oct_(11), lead_by=wang, on_the_spot=True)
    spot2 = month.request(oct_(6), oct_(13), lead_by=wang, on_the_spot=True)
    month.request(oct_(8), oct_(15), lead_by=wang)
    month.request(MONTH_START - timedelta(days=3), oct_(4), lead_by=wang, on_the_spot=True)  # a September lead
    month.request(oct_(12), oct_(19), lead_by=li)
    month.resolved(spot1, wang, oct_(4))
    month.resolved(spot2, wang, oct_(6))
    late = month.request(oct_(1), oct_(5))
    month.resolved(late, wang, oct_(7))
    twice = month.request(oct_(2), oct_(10))
    month.resolved(twice, wang, oct_(8))
    month.resolved(twice, wang, oct_(12))  # after a reopening, and after due: the request counts once, on time
    by_li = month.request(oct_(3), oct_(10))
    month.resolved(by_li, li, oct_(9))
    month.resolved(month.request(oct_(20), oct_(27)), li, MONTH_END + timedelta(hours=1))  # in November
    session.flush()
    return org


@pytest.fixture
async def org(database: Database) -> SmallOrg:
    return await database.run(make_month)


async def bulletin_of(database: Database, area: Unit) -> Bulletin:
    return await database.run(lambda session: compute_bulletin(session, area, MONTH, TZ))


WANG = WorkerLine("DG-JS-01", "王网格", visits=3, patrol_hours=4.0, leads=3, on_the_spot=2, handled=4,
                  handled_on_time=3)
LI = WorkerLine("DG-JS-01", "李网格", visits=1, leads=1, handled=1, handled_on_time=1)
ZHAO = WorkerLine("DG-JS-02", "赵网格")
SUN = WorkerLine("XH-RM-01", "孙网格", visits=5, patrol_hours=0.5)


async def test_each_worker_of_the_community_has_the_hand_computed_figures(database: Database,
                                                                         org: SmallOrg) -> None:
    bulletin = await bulletin_of(database, Unit(Level.COMMUNITY, org.community))
    assert bulletin.workers == (LI, WANG, ZHAO)
    assert WANG.on_time_rate == pytest.approx(3 / 4)
    assert ZHAO.on_time_rate is None


async def test_the_district_lists_every_worker(database: Database, org: SmallOrg) -> None:
    bulletin = await bulletin_of(database, DISTRICT)
    assert bulletin.workers == (LI, WANG, ZHAO, SUN)


async def test_the_workbook_sheet_holds_each_workers_figures(database: Database, org: SmallOrg) -> None:
    bulletin = await bulletin_of(database, Unit(Level.COMMUNITY, org.community))
    workbook = load_workbook(io.BytesIO(render_workbook(translator("en", TZ), bulletin)))
    assert workbook.sheetnames == ["Summary", "By category", "By grid", "Volunteer service", "By worker"]
    rows = list(workbook["By worker"].iter_rows(values_only=True))
    assert rows == [
        ("Grid", "Worker", "Visits", "Patrol hours", "Leads", "Solved on the spot", "Requests handled",
         "Handled on time", "On-time rate"),
        ("DG-JS-01", "李网格", 1, 0, 1, 0, 1, 1, 1),
        ("DG-JS-01", "王网格", 3, 4, 3, 2, 4, 3, 0.75),
        ("DG-JS-02", "赵网格", 0, 0, 0, 0, 0, 0, None),
    ]
    chinese = load_workbook(io.BytesIO(render_workbook(translator("zh_CN", TZ), bulletin)))
    sheet = chinese.worksheets[-1]
    assert sheet.title == translator("zh_CN", TZ)._("By worker") != "By worker"
    assert [cell.value for cell in sheet[3]][:4] == ["DG-JS-01", "王网格", 3, 4]


async def test_the_summary_sums_the_workers_rounds(database: Database, org: SmallOrg) -> None:
    bulletin = await bulletin_of(database, Unit(Level.COMMUNITY, org.community))
    english = render_summary(translator("en", TZ), bulletin)
    assert "Grid workers' rounds (3 workers)" in english
    assert "Visits: 4; patrol hours: 4" in english
    assert "Leads: 4, solved on the spot: 2" in english
    assert "Requests handled: 5, on time: 80%" in english
    chinese = render_summary(translator("zh_CN", TZ), bulletin)
    assert "Visits" not in chinese and "4" in chinese
