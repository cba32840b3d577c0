"""The monthly bulletin: figures against a hand-computed month, renderings, /report and ``gridbot report``.

The fixture month is October 2026 in Asia/Shanghai (UTC+8): from 2026-09-30 16:00 UTC up to (not including)
2026-10-31 16:00 UTC. Thirteen requests R1..R13 fall in it; three (X1..X3) fall just outside.

    street DG 东关 ─ community DG-JS 建设 ─ grid DG-JS-01 (building b1): R1 R2 R3 R4 R5      X1 X2
                                        └ grid DG-JS-02 (building b3): R6 R7 R8
    street XH 新华 ─ community XH-RM 人民 ─ grid XH-RM-01 (building b2): R9 R10 R11 R12 R13  X3

Hours below are from filing; "late" means resolved after due.

    id  cat     status     accept  resolve  counted resolved?         stars  events
    R1  clutter closed      2h      24h     yes, on time                5
    R2  clutter closed      1h     240h     yes, late                   2      escalated
    R3  wires   resolved    4h      48h     yes, on time              (none)   reopened
    R4  wires   accepted    3h       -      no                                 escalated
    R5  clutter new          -       -      no
    R6  wires   closed      6h      24h     yes, on time                4
    R7  clutter withdrawn    -       -      no
    R8  clutter resolved   24h     (after month end: no)
    R9  clutter closed     12h      24h     yes, on time                3      escalated
    R10 wires   closed      2h     120h     yes, late                   5      reopened, escalated
    R11 wires   accepted    1h     (24h, but reopened and open: no)            reopened
    R12 clutter new          -       -      no
    R13 clutter closed     0.5h     24h     yes, on time (filed at the month's first instant)
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from openpyxl import load_workbook
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from bench.bulletin import generate_requests
from bot.cli import main as cli_main
from bot.core.bulletin import BadMonth, Bulletin, Figures, Line, Month, bulletin_recipients, compute_bulletin
from bot.core.bulletin_render import (
    CHART_STYLE,
    chart_figure,
    cjk_font,
    cjk_font_path,
    render_chart,
    render_summary,
    render_workbook,
)
from bot.core.units import DISTRICT, Unit
from bot.i18n import translator
from storage.database import Database
from storage.models import (
    Category,
    EventKind,
    Level,
    Person,
    Place,
    Rating,
    Request,
    RequestEvent,
    RequestStatus,
    Role,
)
from tests.harness import CoreChat
from tests.org_fixture import SmallOrg, make_small_org, staff

T = TypeVar("T")
TZ = "Asia/Shanghai"
MONTH = "2026-10"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def oct_(day: int, hour: float = 0) -> datetime:
    """A moment in October 2026, UTC."""
    return datetime(2026, 10, day, tzinfo=UTC) + timedelta(hours=hour)


@dataclass(frozen=True)
class Spec:
    """One request of the fixture; hours are counted from ``created``."""

    building: str
    category: str
    status: RequestStatus
    created: datetime
    accept_h: float | None = None
    resolve_h: float | None = None
    due_h: float = 7 * 24
    stars: int | None = None
    rated: bool = False
    events: tuple[EventKind, ...] = ()


C, W = "clutter", "wires"
S = RequestStatus
MONTH_START = datetime(2026, 9, 30, 16, tzinfo=UTC)

SPECS = {
    "R1": Spec("b1", C, S.CLOSED, oct_(2), 2, 24, due_h=7 * 24, stars=5),
    "R2": Spec("b1", C, S.CLOSED, oct_(5), 1, 240, due_h=7 * 24, stars=2, events=(EventKind.ESCALATED,)),
    "R3": Spec("b1", W, S.RESOLVED, oct_(10), 4, 48, due_h=72, rated=True, events=(EventKind.REOPENED,)),
    "R4": Spec("b1", W, S.ACCEPTED, oct_(20), 3, events=(EventKind.ESCALATED,)),
    "R5": Spec("b1", C, S.NEW, oct_(25)),
    "R6": Spec("b3", W, S.CLOSED, oct_(8), 6, 24, due_h=72, stars=4),
    "R7": Spec("b3", C, S.WITHDRAWN, oct_(12)),
    # Resolved 2026-10-31 20:00 UTC = 1 November 04:00 in Shanghai: after the month.
    "R8": Spec("b3", C, S.RESOLVED, oct_(28), 24, 24 * 3 + 20),
    "R9": Spec("b2", C, S.CLOSED, oct_(3), 12, 24, due_h=7 * 24, stars=3, events=(EventKind.ESCALATED,)),
    "R10": Spec(
        "b2", W, S.CLOSED, oct_(15), 2, 120, due_h=72, stars=5, events=(EventKind.REOPENED, EventKind.ESCALATED)
    ),
    "R11": Spec("b2", W, S.ACCEPTED, oct_(18), 1, 24, due_h=72, events=(EventKind.REOPENED,)),
    # 31 October 01:00 in Shanghai.
    "R12": Spec("b2", C, S.NEW, oct_(30, 17)),
    "R13": Spec("b2", C, S.CLOSED, MONTH_START, 0.5, 24, due_h=6 * 24),
    # Outside the month: 30 September 23:59 and 1 November 00:00 in Shanghai, and August.
    "X1": Spec("b1", C, S.CLOSED, MONTH_START - timedelta(minutes=1), 1, 2, stars=1, events=(EventKind.ESCALATED,)),
    "X2": Spec("b1", W, S.NEW, oct_(31, 16)),
    "X3": Spec("b2", C, S.CLOSED, datetime(2026, 8, 15, tzinfo=UTC), 1, 2, stars=5),
}


def add_request(session: Session, org: SmallOrg, resident: Person, spec: Spec) -> None:
    buildings = {"b1": org.building, "b2": org.building2, "b3": org.building_in_empty_grid}
    grids = {"b1": org.grid, "b2": org.grid2, "b3": org.empty_grid}
    category_id = session.scalar(select(Category.id).where(Category.code == spec.category))
    assert category_id is not None

    def after(hours: float | None) -> datetime | None:
        return spec.created + timedelta(hours=hours) if hours is not None else None

    request = Request(
        resident_id=resident.id, building_id=buildings[spec.building], grid_id=grids[spec.building],
        category_id=category_id,
        description="…", status=spec.status, level=Level.GRID, unit_id=org.grid, created_at=spec.created,
        due_at=spec.created + timedelta(hours=spec.due_h), accepted_at=after(spec.accept_h),
        resolved_at=after(spec.resolve_h), closed_at=after(spec.resolve_h) if spec.status is S.CLOSED else None,
    )
    session.add(request)
    session.flush()
    if spec.stars is not None or spec.rated:
        session.add(Rating(request_id=request.id, outcome="fixed", stars=spec.stars, at=spec.created))
    for kind in spec.events:
        session.add(RequestEvent(request_id=request.id, at=spec.created, kind=kind))


def make_month(session: Session) -> SmallOrg:
    org = make_small_org(session)
    resident = Person(
        channel="telegram", external_id="900", chat_id="900", display_name="居民", state_data={},
        building_id=org.building, created_at=MONTH_START - timedelta(days=60),
    )
    session.add(resident)
    session.flush()
    for spec in SPECS.values():
        add_request(session, org, resident, spec)
    session.flush()
    return org


@pytest.fixture
async def org(database: Database) -> SmallOrg:
    return await database.run(make_month)


async def bulletin_of(database: Database, area: Unit, month: str = MONTH) -> Bulletin:
    return await database.run(lambda session: compute_bulletin(session, area, month, TZ))


def hours(value: float) -> timedelta:
    return timedelta(hours=value)


def assert_figures(
    figures: Figures,
    counts: tuple[int, int, int, int, int, int, int, int],
    median_accept: timedelta | None,
    median_resolve: timedelta | None,
) -> None:
    """``counts``: received, resolved, on time, ratings, stars total, satisfied, reopened, escalated."""
    c = figures.counts
    actual = (c.received, c.resolved, c.resolved_on_time, c.ratings, c.stars_total, c.satisfied, c.reopened,
              c.escalated)
    assert actual == counts
    assert figures.median_accept == median_accept
    assert figures.median_resolve == median_resolve


def by_code(lines: tuple[Line, ...]) -> dict[str, Figures]:
    return {line.code: line.figures for line in lines}


# --- figures ----------------------------------------------------------------------------------------------


async def test_district_totals_match_the_hand_computed_month(database: Database, org: SmallOrg) -> None:
    bulletin = await bulletin_of(database, DISTRICT)
    totals = bulletin.totals
    assert_figures(
        totals,
        # received R1..R13 = 13; resolved R1 R2 R3 R6 R9 R10 R13 = 7; on time R1 R3 R6 R9 R13 = 5;
        # stars R1 5 + R2 2 + R6 4 + R9 3 + R10 5 = 19 from 5 ratings (R3 has none); 4-5 stars: R1 R6 R10 = 3;
        # reopened R3 R10 R11 = 3; escalated R2 R4 R9 R10 = 4.
        (13, 7, 5, 5, 19, 3, 3, 4),
        # accept hours sorted 0.5 1 1 2 2 | 3 4 6 12 24 (R8 counts: accepted in the month) -> (2 + 3) / 2
        hours(2.5),
        # resolve hours sorted 24 24 24 [24] 48 120 240 -> 24
        hours(24),
    )
    assert totals.resolution_rate == pytest.approx(7 / 13)
    assert totals.on_time_rate == pytest.approx(5 / 7)
    assert totals.average_rating == pytest.approx(19 / 5)  # 3.8
    assert totals.satisfaction_rate == pytest.approx(3 / 5)  # 60 %
    assert bulletin.unit_level is Level.STREET


async def test_district_breakdowns(database: Database, org: SmallOrg) -> None:
    bulletin = await bulletin_of(database, DISTRICT)
    streets = by_code(bulletin.by_unit)
    assert list(streets) == ["DG", "XH"]
    # DG: R1..R8 = 8; resolved R1 R2 R3 R6 = 4; on time R1 R3 R6 = 3; stars 5 + 2 + 4 = 11 from 3, satisfied 2;
    # reopened R3; escalated R2 R4. Accept 1 2 3 | 4 6 24 -> 3.5 h; resolve 24 24 | 48 240 -> 36 h.
    assert_figures(streets["DG"], (8, 4, 3, 3, 11, 2, 1, 2), hours(3.5), hours(36))
    # XH: R9..R13 = 5; resolved R9 R10 R13 = 3; on time R9 R13 = 2; stars 3 + 5 = 8 from 2, satisfied 1;
    # reopened R10 R11; escalated R9 R10. Accept 0.5 1 | 2 12 -> 1.5 h; resolve 24 [24] 120 -> 24 h.
    assert_figures(streets["XH"], (5, 3, 2, 2, 8, 1, 2, 2), hours(1.5), hours(24))

    categories = by_code(bulletin.by_category)
    assert list(categories) == ["clutter", "wires"]  # by sort order
    # clutter: R1 R2 R5 R7 R8 R9 R12 R13 = 8; resolved R1 R2 R9 R13 = 4; on time R1 R9 R13 = 3;
    # stars 5 + 2 + 3 = 10 from 3, satisfied R1 = 1; escalated R2 R9.
    # Accept 0.5 1 [2] 12 24 -> 2 h; resolve 24 24 | 24 240 -> 24 h.
    assert_figures(categories["clutter"], (8, 4, 3, 3, 10, 1, 0, 2), hours(2), hours(24))
    # wires: R3 R4 R6 R10 R11 = 5; resolved R3 R6 R10 = 3; on time R3 R6 = 2; stars 4 + 5 = 9 from 2, satisfied 2;
    # reopened R3 R10 R11; escalated R4 R10. Accept 1 2 [3] 4 6 -> 3 h; resolve 24 [48] 120 -> 48 h.
    assert_figures(categories["wires"], (5, 3, 2, 2, 9, 2, 3, 2), hours(3), hours(48))
    assert {line.code: line.label("en") for line in bulletin.by_category} == {
        "clutter": "Clutter in common areas",
        "wires": "Dangling wires",
    }


async def test_street_bulletin_covers_its_communities_only(database: Database, org: SmallOrg) -> None:
    bulletin = await bulletin_of(database, Unit(Level.STREET, org.street))
    assert bulletin.area_name == "东关街道"
    assert bulletin.unit_level is Level.COMMUNITY
    # Same as the DG line of the district bulletin.
    assert_figures(bulletin.totals, (8, 4, 3, 3, 11, 2, 1, 2), hours(3.5), hours(36))
    assert [(line.code, line.figures.counts.received) for line in bulletin.by_unit] == [("DG-JS", 8)]
    # clutter R1 R2 R5 R7 R8 = 5, wires R3 R4 R6 = 3.
    assert [(line.code, line.figures.counts.received) for line in bulletin.by_category] == [
        ("clutter", 5),
        ("wires", 3),
    ]


async def test_community_bulletin_breaks_down_by_grid(database: Database, org: SmallOrg) -> None:
    bulletin = await bulletin_of(database, Unit(Level.COMMUNITY, org.community))
    assert bulletin.area_name == "建设社区"
    assert bulletin.unit_level is Level.GRID
    grids = by_code(bulletin.by_unit)
    assert list(grids) == ["DG-JS-01", "DG-JS-02"]
    # DG-JS-01: R1..R5; resolved R1 R2 R3, on time R1 R3; stars 5 + 2 from 2, satisfied 1; reopened R3;
    # escalated R2 R4. Accept 1 2 | 3 4 -> 2.5 h; resolve 24 [48] 240 -> 48 h.
    assert_figures(grids["DG-JS-01"], (5, 3, 2, 2, 7, 1, 1, 2), hours(2.5), hours(48))
    # DG-JS-02: R6 R7 R8; resolved R6 on time; 4 stars. Accept 6 | 24 -> 15 h; resolve 24 h.
    assert_figures(grids["DG-JS-02"], (3, 1, 1, 1, 4, 1, 0, 0), hours(15), hours(24))

    other = await bulletin_of(database, Unit(Level.COMMUNITY, org.community2))
    assert [line.code for line in other.by_unit] == ["XH-RM-01"]
    assert other.totals.counts.received == 5


async def test_requests_outside_the_month_are_in_their_own_month(database: Database, org: SmallOrg) -> None:
    september = await bulletin_of(database, DISTRICT, "2026-09")
    # X1 only: 23:59 on 30 September in Shanghai; R13 at 00:00 on 1 October is not in September.
    assert september.totals.counts.received == 1
    assert september.totals.counts.escalated == 1
    november = await bulletin_of(database, DISTRICT, "2026-11")
    assert november.totals.counts.received == 1  # X2
    august_in_west = await bulletin_of(database, Unit(Level.STREET, org.street2), "2026-08")
    assert august_in_west.totals.counts.received == 1  # X3
    assert (await bulletin_of(database, Unit(Level.STREET, org.street), "2026-08")).totals.counts.received == 0


async def test_an_empty_month_has_no_rates(database: Database, org: SmallOrg) -> None:
    bulletin = await bulletin_of(database, DISTRICT, "2025-01")
    assert bulletin.totals.counts.received == 0
    assert bulletin.totals.on_time_rate is None and bulletin.totals.average_rating is None
    assert bulletin.totals.median_accept is None
    assert bulletin.by_category == ()
    assert [line.figures.counts.received for line in bulletin.by_unit] == [0, 0]
    text = render_summary(translator("en"), bulletin)
    assert "No requests were filed" in text
    assert render_chart(bulletin, "zh_CN").startswith(PNG_SIGNATURE)


def test_months_parse_and_shift() -> None:
    assert str(Month.parse("2026-10")) == "2026-10"
    for bad in ("2026-13", "2026-1", "October", "2026-00", ""):
        with pytest.raises(BadMonth):
            Month.parse(bad)
    # 1 January 03:00 in Shanghai is still 31 December in UTC: the previous month is December, not November.
    assert Month.previous(datetime(2026, 12, 31, 19, tzinfo=UTC), TZ) == Month(2026, 12)
    assert Month(2026, 1).shifted(-1) == Month(2025, 12)
    assert Month(2026, 10).bounds(TZ) == (MONTH_START, datetime(2026, 10, 31, 16, tzinfo=UTC))


async def test_recipients_are_admins_with_their_areas(database: Database, org: SmallOrg) -> None:
    def setup_and_list(session: Session) -> list[tuple[str, Unit]]:
        staff(session, 1, "区中心", Role.DISTRICT, 0)
        staff(session, 2, "街道", Role.STREET, org.street)
        staff(session, 3, "社区", Role.COMMUNITY, org.community)
        staff(session, 4, "网格员", Role.WORKER, org.grid)
        gone = staff(session, 5, "离开", Role.COMMUNITY, org.community2)
        gone.unreachable = True
        session.flush()
        session.expire_all()
        return [(person.display_name, area) for person, area in bulletin_recipients(session)]

    assert await database.run(setup_and_list) == [
        ("区中心", DISTRICT),
        ("街道", Unit(Level.STREET, org.street)),
        ("社区", Unit(Level.COMMUNITY, org.community)),
    ]


# --- renderings -------------------------------------------------------------------------------------------


async def test_summary_in_both_languages(database: Database, org: SmallOrg) -> None:
    bulletin = await bulletin_of(database, DISTRICT)
    english = render_summary(translator("en", TZ), bulletin)
    assert "October 2026" in english
    assert "13 requests received" in english
    assert "Resolved: 7 (54%), on time: 71%" in english
    assert "东关街道: 8 received, 4 resolved, 75% on time" in english
    assert "Clutter in common areas" in english
    chinese = render_summary(translator("zh_CN", TZ), bulletin)
    assert "2026年10月" in chinese
    assert "楼道杂物堆积" in chinese and "新华街道" in chinese
    assert "Received" not in chinese
    assert len(chinese) <= 4096


async def test_workbook_holds_the_figures(database: Database, org: SmallOrg) -> None:
    bulletin = await bulletin_of(database, DISTRICT)
    workbook = load_workbook(io.BytesIO(render_workbook(translator("en", TZ), bulletin)))
    assert workbook.sheetnames == ["Summary", "By category", "By street", "Volunteer service", "By worker"]
    summary = {row[0]: row[1] for row in workbook["Summary"].iter_rows(values_only=True) if row and row[0]}
    assert summary["Received"] == 13
    assert summary["Resolved"] == 7
    assert summary["On-time rate"] == pytest.approx(5 / 7)
    assert summary["Median hours to accept"] == pytest.approx(2.5)
    assert summary["Average rating"] == pytest.approx(3.8)
    rows = list(workbook["By street"].iter_rows(values_only=True))
    assert rows[0][:4] == ("Code", "Street", "Received", "Resolved")
    assert [row[:4] for row in rows[1:]] == [("DG", "东关街道", 8, 4), ("XH", "新华街道", 5, 3)]
    categories = list(workbook["By category"].iter_rows(values_only=True))
    assert [row[:3] for row in categories[1:]] == [
        ("clutter", "Clutter in common areas", 8),
        ("wires", "Dangling wires", 5),
    ]

    chinese = load_workbook(io.BytesIO(render_workbook(translator("zh_CN", TZ), bulletin)))
    assert chinese.sheetnames[0] != "Summary"
    assert chinese.worksheets[2].cell(row=1, column=3).value != "Received"
    assert chinese.worksheets[1].cell(row=2, column=2).value == "楼道杂物堆积"


def test_the_chart_font_has_chinese_glyphs() -> None:
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    # The bundled collection is registered; a system copy of the same face (Debian's fonts-noto-cjk) may win.
    cjk_font_path()
    path = font_manager.findfont(cjk_font(), fallback_to_default=False)
    font = font_manager.get_font(path)
    assert isinstance(font, FT2Font)
    assert font.family_name == "Noto Sans CJK SC"
    for character in "网格社区街道月通报":
        assert font.get_char_index(ord(character)) != 0, character


def _ink_of(text: str) -> bytes:
    """The pixels of ``text`` drawn alone with the chart's font settings."""
    from matplotlib import rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cjk_font_path()
    with rc_context({"font.family": ["Noto Sans CJK SC"]}):
        figure = Figure(figsize=(2, 1), dpi=50)
        FigureCanvasAgg(figure)
        figure.text(0.05, 0.3, text, fontsize=20)
        pixels = io.BytesIO()
        figure.savefig(pixels, format="rgba")
        return pixels.getvalue()


def test_different_chinese_words_draw_differently() -> None:
    # Missing glyphs all draw as the same empty box; real glyphs differ.
    assert _ink_of("网格") != _ink_of("街道")


async def test_chart_is_a_png(database: Database, org: SmallOrg) -> None:
    bulletin = await bulletin_of(database, DISTRICT)
    for locale in ("zh_CN", "en"):
        png = render_chart(bulletin, locale)
        assert png.startswith(PNG_SIGNATURE)
        assert len(png) > 5_000


async def test_the_chart_labels_its_bars_and_keeps_the_legend_off_them(database: Database, org: SmallOrg) -> None:
    from matplotlib import rc_context
    from matplotlib.patches import Rectangle

    bulletin = await bulletin_of(database, DISTRICT)
    cjk_font_path()
    with rc_context(CHART_STYLE):
        figure = chart_figure(bulletin, "en")
        figure.canvas.draw()
        renderer = figure.canvas.get_renderer()
        legend = figure.legends[0].get_window_extent(renderer)
        bars = [patch for axes in figure.axes for patch in axes.patches if isinstance(patch, Rectangle)]
        assert bars and not any(legend.overlaps(bar.get_window_extent(renderer)) for bar in bars)
        labels = [text.get_text() for axes in figure.axes for text in axes.texts]
    totals = [str(line.figures.counts.received) for line in bulletin.by_unit]
    assert len(labels) == len(bars) and all(total in labels for total in totals)
    rates = f"Resolved on time: {translator('en').percent(bulletin.totals.on_time_rate or 0)}"
    assert rates in figure.get_suptitle()
    ARTIFACTS.mkdir(exist_ok=True)
    for locale in ("zh_CN", "en"):
        (ARTIFACTS / f"bulletin-chart-{locale}.png").write_bytes(render_chart(bulletin, locale))


# --- chat ---------------------------------------------------------------------------------------------------


async def test_community_admin_gets_the_bulletin(database: Database, org: SmallOrg, chat: CoreChat) -> None:
    await database.run(lambda session: staff(session, 501, "社区书记", Role.COMMUNITY, org.community))
    admin = chat.person(501, "社区书记")
    await chat.text(admin, "/report 2026-10")
    summary, chart, workbook = admin.messages[-3:]
    assert "建设社区" in summary.text and "2026年10月" in summary.text
    assert "建设一网格" in summary.text
    assert chart.document == "bulletin-2026-10.png"
    assert workbook.document == "bulletin-2026-10.xlsx"


async def test_report_offers_this_and_last_month(database: Database, org: SmallOrg, chat: CoreChat) -> None:
    # The chat clock stands on 25 November 2026.
    await database.run(lambda session: staff(session, 502, "区中心", Role.DISTRICT, 0, locale="en"))
    admin = chat.person(502, "区中心", language="en")
    await chat.text(admin, "/report")
    assert [label for label, _data in admin.last.buttons()] == ["November 2026 (so far)", "October 2026"]
    await chat.press(admin, admin.last.button("October 2026"))
    assert "October 2026" in admin.messages[-3].text
    assert "13 requests received" in admin.messages[-3].text


async def test_report_refuses_residents_and_bad_months(database: Database, org: SmallOrg, chat: CoreChat) -> None:
    resident = chat.person(601, "居民", language="en")
    await chat.text(resident, "/report 2026-10")
    assert resident.last.text == "The monthly bulletin is for community, street and district staff."
    assert all(message.document is None for message in resident.messages)

    await database.run(lambda session: staff(session, 503, "Street", Role.STREET, org.street, locale="en"))
    admin = chat.person(503, "Street", language="en")
    await chat.text(admin, "/report 10/2026")
    assert "is not a month" in admin.last.text and "/report 2026-10" in admin.last.text
    await chat.text(admin, "/report 2027-01")
    assert "has not begun yet" in admin.last.text
    assert all(message.document is None for message in admin.messages)


# --- command line -----------------------------------------------------------------------------------------


def run_sync(url: str, work: Callable[[Session], T]) -> T:
    engine = create_engine(url.replace("+aiosqlite", ""))
    try:
        with Session(engine) as session, session.begin():
            return work(session)
    finally:
        engine.dispose()


def test_cli_writes_the_workbook_and_chart(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/cli.db"
    assert cli_main(["db", "upgrade", "--database-url", url]) == 0
    run_sync(url, make_month)
    out = tmp_path / "october.xlsx"
    code = cli_main(
        ["report", "--month", "2026-10", "--out", str(out), "--street", "XH", "--locale", "en", "--database-url", url]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "新华街道" in printed and "5 requests received" in printed
    workbook = load_workbook(out)
    assert workbook["By community"]["A2"].value == "XH-RM"
    assert workbook["By community"]["C2"].value == 5
    assert (tmp_path / "october.png").read_bytes().startswith(PNG_SIGNATURE)

    unknown_community = ["--community", "NOPE", "--database-url", url]
    assert cli_main(["report", "--month", "2026-10", "--out", str(out), *unknown_community]) == 1
    assert cli_main(["report", "--month", "Oct", "--out", str(out), "--database-url", url]) == 2


# --- benchmark data -----------------------------------------------------------------------------------------


def test_benchmark_generator_makes_a_district(tmp_path: Path) -> None:
    path = tmp_path / "bench.db"
    district = generate_requests(path, 3_000, seed=7)
    assert district.requests == 3_000

    def october(session: Session) -> Bulletin:
        return compute_bulletin(session, DISTRICT, district.last_month, TZ)

    bulletin = run_sync(f"sqlite:///{path}", october)
    # 3,000 requests over 24 months: about 125 a month, in 8 streets.
    assert 60 < bulletin.totals.counts.received < 200
    assert len(bulletin.by_unit) == 8
    assert 0 < bulletin.totals.counts.resolved < bulletin.totals.counts.received


def test_unit_names_that_look_like_formulas_reach_the_workbook_as_text(tmp_path: Path) -> None:
    hyperlink, command = '=HYPERLINK("http://x","y")', "=cmd|' /C calc'!A0"
    url = f"sqlite+aiosqlite:///{tmp_path}/formulas.db"
    organisation = tmp_path / "org.csv"
    with organisation.open("w", newline="", encoding="utf-8") as file:
        csv.writer(file).writerows([
            ["street_code", "street_name", "community_code", "community_name", "grid_code", "grid_name",
             "building_code", "building_name", "address"],
            ["ST", "+street", "ST-C", hyperlink, "ST-C-01", command, "ST-C-01-B", "@building", "-address"],
        ])
    assert cli_main(["db", "upgrade", "--database-url", url]) == 0
    assert cli_main(["org", "import", str(organisation), "--database-url", url]) == 0

    cells = []
    for area in (["--street", "ST"], ["--community", "ST-C"]):
        out = tmp_path / f"{area[1]}.xlsx"
        assert cli_main(["report", "--month", "2026-10", "--out", str(out), *area, "--database-url", url]) == 0
        cells += [cell for sheet in load_workbook(out) for row in sheet.iter_rows() for cell in row]

    by_value = {cell.value: cell for cell in cells}
    for name in (hyperlink, command, "+street"):
        assert by_value[name].data_type == "s" and by_value[name].quotePrefix
    assert [cell.coordinate for cell in cells if cell.data_type == "f"] == []


def test_the_bulletin_loads_matplotlib_and_openpyxl_only_to_draw() -> None:
    code = (
        "import sys, bot.core.bulletin, bot.core.bulletin_render, bot.scheduler, handlers.report;"
        "print(sorted(name for name in ('matplotlib', 'openpyxl') if name in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# --- places -----------------------------------------------------------------------------------------------------


def month_with_market_requests(session: Session) -> SmallOrg:
    """Two requests about the market (建设一网格) in October, one resolved within its due date, and R1-R13."""
    org = make_month(session)
    market = Place(code="MKT", name="建设路农贸市场", kind="market", address="", grid_id=org.grid)
    session.add(market)
    session.flush()
    resident = session.scalars(select(Person).where(Person.external_id == "900")).one()
    for created, resolved in ((oct_(6), oct_(7)), (oct_(9), None)):
        session.add(Request(
            resident_id=resident.id, building_id=None, place_id=market.id, grid_id=org.grid, category_id=1,
            description="stalls", status=S.CLOSED if resolved else S.NEW, level=Level.GRID, unit_id=org.grid,
            created_at=created, due_at=created + timedelta(days=7), accepted_at=resolved, resolved_at=resolved,
        ))
    session.flush()
    return org


async def test_places_with_requests_get_their_own_figures(database: Database) -> None:
    org = await database.run(month_with_market_requests)
    district = await bulletin_of(database, DISTRICT)
    assert [line.code for line in district.by_place] == ["MKT"]
    assert_figures(district.by_place[0].figures, (2, 1, 1, 0, 0, 0, 0, 0), hours(24), hours(24))
    # They count in their grid's street like any request: 8 of the fixture's and the market's 2.
    assert by_code(district.by_unit)["DG"].counts.received == 10
    other_street = await bulletin_of(database, Unit(Level.STREET, org.street2))
    assert other_street.by_place == ()

    assert "By place" in render_summary(translator("en", TZ), district)
    assert "• 建设路农贸市场: 2 received, 1 resolved, 100% on time" in render_summary(translator("en", TZ), district)
    workbook = load_workbook(io.BytesIO(render_workbook(translator("en", TZ), district)))
    assert workbook.sheetnames == ["Summary", "By category", "By street", "By place", "Volunteer service", "By worker"]
    rows = list(workbook["By place"].iter_rows(values_only=True))
    assert [row[:4] for row in rows] == [("Code", "Place", "Received", "Resolved"), ("MKT", "建设路农贸市场", 2, 1)]
