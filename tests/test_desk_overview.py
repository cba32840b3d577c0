"""The desk's overview and evaluation pages over HTTP (aiohttp's test client), on the bulletin's hand-counted
October 2026 (``tests/test_bulletin.py``; the figures are ``tests/test_desk_figures.py``'s): what each admin's
area shows, links to the filtered list, the satisfaction target's verdict, the ranking, a community's workers,
the month's workbook, and refusals of areas and months the page cannot show."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.orm import Session

from bot.core.clock import FrozenClock
from bot.core.context import CoreConfig
from bot.desk.app import DeskConfig, make_app
from storage.database import Database
from storage.models import Role
from tests.org_fixture import staff
from tests.test_desk import DESK_HOST, DESK_URL, new_link, signed_in
from tests.test_desk_figures import _without_x2

Client = TestClient[Any, Any]
# Saturday 31 October 2026, 20:00 in Shanghai: the month of the fixture, and September is last month.
NOW = datetime(2026, 10, 31, 12, tzinfo=UTC)


@dataclass
class Seeded:
    district: int
    street: int  # 东关街道's admin
    community: int  # 建设社区's admin, Chinese
    street_id: int
    other_street_id: int
    community_id: int
    grid_id: int


def seed(session: Session) -> Seeded:
    org = _without_x2(session)
    district = staff(session, 9001, "Zhao District", Role.DISTRICT, 0, "en")
    street = staff(session, 9002, "Sun Street", Role.STREET, org.street, "en")
    community = staff(session, 9003, "陈社区", Role.COMMUNITY, org.community, "zh_CN")
    staff(session, 501, "王网格", Role.WORKER, org.grid)
    return Seeded(district.id, street.id, community.id, org.street, org.street2, org.community, org.grid)


@pytest.fixture
async def seeded(database: Database) -> Seeded:
    return await database.run(seed)


@pytest.fixture
async def client(database: Database, seeded: Seeded) -> AsyncIterator[Client]:
    config = DeskConfig(core=CoreConfig(), public_url=DESK_URL, listen="127.0.0.1:8083")
    test_client = TestClient(TestServer(make_app(database, config, FrozenClock(NOW))), headers={"Host": DESK_HOST})
    await test_client.start_server()
    yield test_client
    await test_client.close()


def tile(page: str, label: str) -> str:
    """The value of the overview's tile with that label, as text."""
    match = re.search(rf'<span class="label">{re.escape(label)}</span><span class="value">(?:<a [^>]*>)?([^<]*)',
                      page)
    assert match, label
    return match.group(1)


def row(page: str, name: str) -> str:
    """The table row whose heading cell holds ``name``."""
    match = re.search(rf"<tr[^>]*><(?:th|td)[^>]*>(?:(?!</tr>).)*{re.escape(name)}(?:(?!</tr>).)*</tr>", page)
    assert match, name
    return match.group(0)


def cells(html_row: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", html_row)]


async def page_of(client: Client, path: str, status: int = 200) -> str:
    response = await client.get(path)
    text = await response.text()
    assert response.status == status, text
    return text


async def test_signing_in_lands_on_the_district_overview_with_its_figures(
    client: Client, database: Database, seeded: Seeded
) -> None:
    clock = FrozenClock(NOW)
    await signed_in(client, database, clock, seeded.district)
    page = await page_of(client, "/")
    assert "Overview: the whole district" in page and "This month: October 2026." in page
    assert [tile(page, label) for label in ("Open", "Overdue", "Due this week", "Received this month",
                                            "Resolved this month", "On-time rate", "Satisfaction")] == [
        "4", "2", "1", "13", "7", "71%", "60%"]
    assert "target 85%" in page and "✗ below target" in page
    # Each street: open, overdue, due this week, received, resolved, on time, satisfaction with its verdict.
    east = row(page, "东关街道")
    assert cells(east) == ["2", "1", "1", "8", "4", "75%", "67% ✗ below target"]
    assert f'href="/requests?unit=street%3A{seeded.street_id}"' in east
    assert f'href="/requests?unit=street%3A{seeded.street_id}&amp;overdue=1"' in east
    assert f'href="/overview?area=street%3A{seeded.street_id}"' in east
    assert cells(row(page, "新华街道"))[:5] == ["2", "1", "0", "5", "3"]
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in page and "Requests over the last 12 months" in page
    assert re.findall(r'<option value="([^"]+)"', page) == [
        "district:0", f"street:{seeded.street_id}", f"street:{seeded.other_street_id}"]
    assert '<a href="/overview">Overview</a>' in page and '<a href="/evaluation">Evaluation</a>' in page


async def test_the_satisfaction_target_is_the_deployments(database: Database, seeded: Seeded) -> None:
    config = DeskConfig(core=CoreConfig(), public_url=DESK_URL, listen="127.0.0.1:8083", satisfaction_target=0.6)
    async with TestClient(TestServer(make_app(database, config, FrozenClock(NOW))),
                          headers={"Host": DESK_HOST}) as client:
        await signed_in(client, database, FrozenClock(NOW), seeded.district)
        page = await page_of(client, "/overview")
        assert "target 60%" in page
        assert "✓ target met" in row(page, "东关街道") and "✗ below target" in row(page, "新华街道")


async def test_each_admin_sees_the_overview_of_their_area_and_no_other(
    client: Client, database: Database, seeded: Seeded
) -> None:
    clock = FrozenClock(NOW)
    await signed_in(client, database, clock, seeded.street)
    street = await page_of(client, "/overview")
    assert "Overview: 东关街道" in street and "建设社区" in street and "新华街道" not in street
    assert tile(street, "Received this month") == "8"
    # The area to show: the street itself or one of its communities (the grids are a click away).
    assert re.findall(r'<option value="([^"]+)"', street) == [f"street:{seeded.street_id}",
                                                               f"community:{seeded.community_id}"]
    community = await page_of(client, f"/overview?area=community%3A{seeded.community_id}")
    assert "Overview: 建设社区" in community and "DG-JS-01" not in community and "建设一网格" in community
    other = await page_of(client, f"/overview?area=street%3A{seeded.other_street_id}", 403)
    assert "not one you administer" in other and "新华街道" not in other
    assert "not one you administer" in await page_of(client, "/overview?area=district%3A0", 403)
    assert "no such area" in await page_of(client, f"/overview?area=grid%3A{seeded.grid_id}", 400)
    assert "no such area" in await page_of(client, "/overview?area=nowhere", 400)


async def test_the_pages_need_a_session(client: Client) -> None:
    for path in ("/overview", "/evaluation", "/evaluation/bulletin.xlsx"):
        assert (await client.get(path)).status == 401


async def test_the_evaluation_ranks_the_streets_of_a_month_with_the_bulletins_figures(
    client: Client, database: Database, seeded: Seeded
) -> None:
    await signed_in(client, database, FrozenClock(NOW), seeded.district)
    last_month = await page_of(client, "/evaluation")
    assert "Evaluation for September 2026: the whole district" in last_month
    page = await page_of(client, "/evaluation?month=2026-10")
    assert "Evaluation for October 2026" in page
    east, west = row(page, "东关街道"), row(page, "新华街道")
    assert page.index("东关街道") < page.index("新华街道")
    # Rank, received, resolved, resolution rate, on time, on-time rate, satisfaction, rating, days, reopened...
    assert cells(east)[:6] == ["1", "8", "4", "50%", "3", "75%"]
    assert cells(west)[:6] == ["2", "5", "3", "60%", "2", "67%"]
    assert "Grid workers" not in page
    assert 'href="/evaluation/bulletin.xlsx?month=2026-10&amp;area=district%3A0"' in page
    assert "YYYY-MM" in await page_of(client, "/evaluation?month=2026-13", 400)


async def test_a_community_admin_sees_grids_and_workers_in_chinese(
    client: Client, database: Database, seeded: Seeded
) -> None:
    token = await new_link(database, FrozenClock(NOW), seeded.community)
    assert (await client.post("/signin", data={"token": token}, headers={"Origin": DESK_URL})).status == 200
    page = await page_of(client, "/evaluation?month=2026-10")
    assert "2026年10月考评：建设社区" in page
    assert [cells(row(page, grid))[0] for grid in ("建设二网格", "建设一网格")] == ["1", "2"]
    assert "网格员" in page and cells(row(page, "王网格"))[0] == "DG-JS-01"
    overview = await page_of(client, "/overview")
    assert "概览：建设社区" in overview and "未达标" in overview
    refused = await page_of(client, "/evaluation?month=2026-10&area=district%3A0", 403)
    assert "不在您的管理范围内" in refused


async def test_the_months_bulletin_workbook_is_downloaded_for_the_area_only(
    client: Client, database: Database, seeded: Seeded
) -> None:
    from openpyxl import load_workbook

    await signed_in(client, database, FrozenClock(NOW), seeded.street)
    response = await client.get(f"/evaluation/bulletin.xlsx?month=2026-10&area=street%3A{seeded.street_id}")
    assert response.status == 200
    assert response.content_type == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert response.headers["Content-Disposition"] == 'attachment; filename="bulletin-2026-10.xlsx"'
    workbook = load_workbook(io.BytesIO(await response.read()))
    assert "By community" in workbook.sheetnames
    refused = await client.get(f"/evaluation/bulletin.xlsx?month=2026-10&area=street%3A{seeded.other_street_id}")
    assert refused.status == 403 and "not one you administer" in await refused.text()
