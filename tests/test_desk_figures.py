"""The desk's figures: the overview and the evaluation against the bulletin's hand-counted October 2026.

The fixture is ``tests/test_bulletin.py``'s month (see its table). The clock stands at 2026-10-31 12:00 UTC,
Saturday 20:00 in Shanghai; the week ends at Monday 2 November 00:00 local (1 November 16:00 UTC). X2, filed
after that clock, is removed. What stands open then:

    R4  DG  grid DG-JS-01  accepted  due 27 Oct          overdue
    R5  DG  grid DG-JS-01  new       due 1 Nov 00:00 UTC due this week
    R11 XH  grid XH-RM-01  accepted  due 21 Oct          overdue
    R12 XH  grid XH-RM-01  new       due 6 Nov 17:00 UTC open only
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from bot.config import Settings
from bot.core.bulletin import Counts, Figures, Line, Month, compute_bulletin
from bot.core.desk_figures import (
    DEFAULT_SATISFACTION_TARGET,
    MonthCounts,
    Overview,
    Standing,
    TrendCache,
    TrendMonth,
    evaluation,
    overview,
    rank,
)
from bot.core.units import DISTRICT, Unit
from bot.desk.charts import trend_svg
from bot.i18n import Translator, translator
from storage.database import Database
from storage.models import Level, Person, Request, Role
from tests.org_fixture import SmallOrg, staff
from tests.test_bulletin import SPECS, TZ, add_request, make_month

NOW = datetime(2026, 10, 31, 12, tzinfo=UTC)
OCTOBER = Month(2026, 10)


def _without_x2(session: Session) -> SmallOrg:
    org = make_month(session)
    session.execute(delete(Request).where(Request.created_at == SPECS["X2"].created))
    return org


@pytest.fixture
async def org(database: Database) -> SmallOrg:
    return await database.run(_without_x2)


async def overview_of(database: Database, area: Unit, target: float = DEFAULT_SATISFACTION_TARGET) -> Overview:
    return await database.run(lambda session: overview(session, area, NOW, TZ, target))


async def test_district_overview_counts_what_stands_and_the_month(database: Database, org: SmallOrg) -> None:
    figures = await overview_of(database, DISTRICT)
    assert figures.month == OCTOBER
    assert figures.unit_level is Level.STREET
    assert figures.totals.standing == Standing(open=4, overdue=2, due_this_week=1)
    # The bulletin's October: received 13, resolved 7, on time 5, 5 ratings with stars, 3 of them 4-5 stars.
    assert figures.totals.month == MonthCounts(13, 7, 5, 5, 3)
    assert figures.totals.on_time_rate == pytest.approx(5 / 7)
    assert figures.totals.satisfaction_rate == pytest.approx(3 / 5)
    assert figures.totals.meets_target is False


async def test_district_overview_by_street(database: Database, org: SmallOrg) -> None:
    streets = {line.code: line for line in (await overview_of(database, DISTRICT)).by_unit}
    assert list(streets) == ["DG", "XH"]
    assert streets["DG"].standing == Standing(open=2, overdue=1, due_this_week=1)
    assert streets["XH"].standing == Standing(open=2, overdue=1, due_this_week=0)
    # DG: R1..R8, resolved R1 R2 R3 R6, on time R1 R3 R6, stars R1 5 R2 2 R6 4. XH: R9..R13, resolved R9 R10
    # R13, on time R9 R13, stars R9 3 R10 5.
    assert streets["DG"].month == MonthCounts(8, 4, 3, 3, 2)
    assert streets["XH"].month == MonthCounts(5, 3, 2, 2, 1)
    assert streets["DG"].name == "东关街道"


async def test_community_overview_lists_every_grid(database: Database, org: SmallOrg) -> None:
    figures = await overview_of(database, Unit(Level.COMMUNITY, org.community))
    assert figures.area_name == "建设社区"
    assert figures.unit_level is Level.GRID
    grids = {line.code: line for line in figures.by_unit}
    assert list(grids) == ["DG-JS-01", "DG-JS-02"]
    assert grids["DG-JS-01"].standing == Standing(open=2, overdue=1, due_this_week=1)
    # Nothing open in the second grid, but its October still counts: R6 R7 R8, R6 resolved on time, 4 stars.
    assert grids["DG-JS-02"].standing == Standing()
    assert grids["DG-JS-02"].month == MonthCounts(3, 1, 1, 1, 1)
    assert figures.totals.month == MonthCounts(8, 4, 3, 3, 2)


async def test_the_satisfaction_target_is_the_callers(database: Database, org: SmallOrg) -> None:
    figures = await overview_of(database, DISTRICT, target=0.6)
    assert figures.target == 0.6
    assert figures.totals.meets_target is True  # 3 / 5 reaches 60 %
    assert {line.code: line.meets_target for line in figures.by_unit} == {"DG": True, "XH": False}
    assert Settings().satisfaction_target == DEFAULT_SATISFACTION_TARGET


async def test_an_area_without_ratings_has_no_verdict(database: Database, org: SmallOrg) -> None:
    later = NOW + timedelta(days=40)  # December: nothing filed
    figures = await database.run(lambda session: overview(session, DISTRICT, later, TZ))
    assert figures.totals.month == MonthCounts()
    assert figures.totals.satisfaction_rate is None
    assert figures.totals.meets_target is None


async def test_the_trend_holds_twelve_months_each_as_its_bulletin(database: Database, org: SmallOrg) -> None:
    figures = await overview_of(database, DISTRICT)
    assert [str(point.month) for point in figures.trend] == [
        "2025-11", "2025-12", "2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06", "2026-07",
        "2026-08", "2026-09", "2026-10",
    ]
    received = {str(point.month): point.counts for point in figures.trend if point.counts.received}
    # X3 in August (5 stars); X1 filed at 23:59 on 30 September in Shanghai and resolved two hours later, in
    # October, so not resolved in its month (1 star); October as above.
    assert received == {
        "2026-08": MonthCounts(1, 1, 1, 1, 1),
        "2026-09": MonthCounts(1, 0, 0, 1, 0),
        "2026-10": MonthCounts(13, 7, 5, 5, 3),
    }
    for point in figures.trend:
        bulletin = await database.run(lambda session, m=point.month: compute_bulletin(session, DISTRICT, m, TZ))
        counts = bulletin.totals.counts
        assert (counts.received, counts.resolved, counts.resolved_on_time, counts.ratings, counts.satisfied) == (
            point.counts.received, point.counts.resolved, point.counts.resolved_on_time, point.counts.ratings,
            point.counts.satisfied,
        ), point.month


async def test_a_street_trend_leaves_the_other_street_out(database: Database, org: SmallOrg) -> None:
    figures = await overview_of(database, Unit(Level.STREET, org.street2))
    received = {str(point.month): point.counts.received for point in figures.trend if point.counts.received}
    assert received == {"2026-08": 1, "2026-10": 5}  # X3 and R9..R13


async def test_a_cache_keeps_earlier_months_until_its_time_is_up(database: Database, org: SmallOrg) -> None:
    cache = TrendCache(keep=timedelta(minutes=10))

    async def august_at(at: datetime, cache: TrendCache | None = cache) -> int:
        figures = await database.run(lambda session: overview(session, DISTRICT, at, TZ, cache=cache))
        assert figures.totals.month.received == 13  # this month is counted afresh every time
        return next(point.counts.received for point in figures.trend if str(point.month) == "2026-08")

    def another_in_august(session: Session) -> None:
        resident = session.scalars(select(Person).where(Person.external_id == "900")).one()
        add_request(session, org, resident, SPECS["X3"])

    assert await august_at(NOW) == 1
    await database.run(another_in_august)
    assert await august_at(NOW + timedelta(minutes=9)) == 1
    assert await august_at(NOW + timedelta(minutes=10)) == 2
    await database.run(another_in_august)
    assert await august_at(NOW + timedelta(minutes=11), cache=None) == 3  # without a cache: read every time


async def test_the_overview_refuses_a_grid(database: Database, org: SmallOrg) -> None:
    with pytest.raises(ValueError, match="grid"):
        await database.run(lambda session: overview(session, Unit(Level.GRID, org.grid), NOW, TZ))


# --- evaluation --------------------------------------------------------------------------------------------


async def test_evaluation_ranks_streets_by_on_time_rate(database: Database, org: SmallOrg) -> None:
    ranked = await database.run(lambda session: evaluation(session, DISTRICT, OCTOBER, TZ))
    # DG 3 of 4 on time (75 %), XH 2 of 3 (67 %).
    assert [(unit.rank, unit.line.code) for unit in ranked.ranking] == [(1, "DG"), (2, "XH")]
    assert ranked.ranking[0].figures.counts.received == 8
    assert ranked.workers == ()


async def test_evaluation_of_a_community_ranks_grids_and_lists_workers(database: Database, org: SmallOrg) -> None:
    def add_workers(session: Session) -> None:
        staff(session, 501, "王网格", Role.WORKER, org.grid)
        staff(session, 502, "李网格", Role.WORKER, org.empty_grid)

    await database.run(add_workers)
    ranked = await database.run(lambda session: evaluation(session, Unit(Level.COMMUNITY, org.community), OCTOBER,
                                                           TZ))
    # DG-JS-02: R6 resolved on time (1 of 1, 24 h); DG-JS-01: R1 R3 on time of R1 R2 R3 (24, 240, 48 h).
    assert [unit.line.code for unit in ranked.ranking] == ["DG-JS-02", "DG-JS-01"]
    assert ranked.ranking[0].average_days == pytest.approx(1.0)
    assert ranked.ranking[1].average_days == pytest.approx((24 + 240 + 48) / 3 / 24)
    assert [(worker.grid_code, worker.name) for worker in ranked.workers] == [
        ("DG-JS-01", "王网格"), ("DG-JS-02", "李网格"),
    ]


def _line(code: str, resolved: int, on_time: int, ratings: int, satisfied: int, days: float | None) -> Line:
    counts = Counts(received=resolved + 1, resolved=resolved, resolved_on_time=on_time, ratings=ratings,
                    satisfied=satisfied)
    mean = timedelta(days=days) if days is not None else None
    return Line(code, code, Figures(counts, None, mean, mean))


def test_ranking_goes_by_on_time_rate_then_satisfaction_then_days() -> None:
    lines = [
        _line("nothing-resolved", 0, 0, 0, 0, None),
        _line("slow", 4, 2, 2, 1, 5.0),
        _line("fast", 4, 2, 2, 1, 2.0),
        _line("liked", 4, 2, 2, 2, 9.0),
        _line("punctual", 2, 2, 0, 0, 9.0),
    ]
    # punctual 100 %; then the 50 % units: liked (100 % satisfied), then fast before slow (2 days against 5).
    assert [(unit.rank, unit.line.code) for unit in rank(lines)] == [
        (1, "punctual"), (2, "liked"), (3, "fast"), (4, "slow"), (5, "nothing-resolved"),
    ]


# --- the trend chart ---------------------------------------------------------------------------------------


def _svg(document: str) -> ElementTree.Element:
    return ElementTree.fromstring(document)  # raises on anything that is not well-formed


SVG = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize(("locale", "october", "legend"), [("zh_CN", "10月", "接收数"), ("en", "Oct", "Received")])
async def test_trend_chart_is_svg_in_the_readers_language(
    database: Database, org: SmallOrg, locale: str, october: str, legend: str
) -> None:
    figures = await overview_of(database, DISTRICT)
    document = trend_svg(figures.trend, translator(locale, TZ), target=figures.target)
    texts = [element.text for element in _svg(document).iter(f"{SVG}text")]
    assert october in texts
    assert any(legend in (text or "") for text in texts)
    # Two bars a month; a dot for each month with an on-time rate (August, October) and with ratings (August,
    # September, October); the dashed target line.
    root = _svg(document)
    assert len([rect for rect in root.iter(f"{SVG}rect") if rect.find(f"{SVG}title") is not None]) == 24
    assert len(list(root.iter(f"{SVG}circle"))) == 5
    assert any(line.get("stroke-dasharray") for line in root.iter(f"{SVG}line"))
    assert "<script" not in document and "http" not in document.replace("http://www.w3.org/2000/svg", "")


class _MarkupTranslator(Translator):
    """Every text comes back as markup, as a careless translation might."""

    def _(self, message: str) -> str:
        return "<Received & \"co\">"


def test_trend_chart_escapes_its_labels() -> None:
    t = _MarkupTranslator("en", TZ)
    document = trend_svg([TrendMonth(OCTOBER, MonthCounts(3, 2, 1, 1, 1))], t, target=0.85)
    assert "<Received" not in document
    assert "&lt;Received &amp; &quot;co&quot;&gt;" in document
    _svg(document)


def test_trend_chart_of_an_empty_year_draws_an_axis() -> None:
    empty = [TrendMonth(OCTOBER.shifted(-back), MonthCounts()) for back in range(11, -1, -1)]
    root = _svg(trend_svg(empty, translator("zh_CN", TZ)))
    assert not list(root.iter(f"{SVG}circle"))
