"""The desk's overview and evaluation in a real browser (Debian's chromium through Playwright), on the bulletin's
hand-counted October 2026: the district's figures and its streets, a street's own overview, a unit's overdue
requests one click away, the month's ranking chosen by the month field, a community admin's grid workers in
Chinese; at 1920 px and at a phone's width. Screenshots go to ``test-artifacts/desk-overview*.png`` and
``desk-evaluation*.png``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy.orm import Session

from bot.core.clock import FrozenClock
from bot.core.context import CoreConfig
from bot.core.desk_access import issue_link
from bot.desk.app import DeskConfig, make_app
from storage.database import Database
from storage.models import Person
from tests.test_desk_e2e import ARTIFACTS, WAIT_MS, free_port
from tests.test_desk_overview import NOW, Seeded, seed
from tests.test_playground import CHROMIUM, CHROMIUM_ARGS

PHONE = {"width": 390, "height": 844}


@contextlib.asynccontextmanager
async def serving_desk(database: Database) -> AsyncIterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = DeskConfig(core=CoreConfig(default_locale="en"), public_url=url, listen=f"127.0.0.1:{port}")
    runner = web.AppRunner(make_app(database, config, FrozenClock(NOW)), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield url
    finally:
        await runner.cleanup()


async def link_for(database: Database, url: str, person_id: int) -> str:
    def issue(session: Session) -> str:
        return issue_link(session, session.get_one(Person, person_id), NOW)

    return f"{url}/signin/{await database.run(issue)}"


async def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def fits_the_screen(page: Any) -> None:
    """Nothing but the tables (which scroll inside their box) is wider than the window."""
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def tile(page: Any, label: str) -> Any:
    return page.locator(".tile", has=page.get_by_text(label, exact=True)).locator(".value")


async def test_the_overview_and_the_evaluation_in_a_browser(database: Database) -> None:
    from playwright.async_api import async_playwright, expect

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)")
    expect.set_options(timeout=WAIT_MS)
    seeded = await database.run(seed)
    async with serving_desk(database) as url, async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            await district_overview(browser, expect, await link_for(database, url, seeded.district), seeded)
            await community_evaluation(browser, expect, await link_for(database, url, seeded.community))
        finally:
            await browser.close()


async def district_overview(browser: Any, expect: Any, link: str, seeded: Seeded) -> None:
    page = await browser.new_page(viewport={"width": 1920, "height": 1080})
    await page.goto(link)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Overview: the whole district")).to_be_visible()
    for label, value in (("Open", "4"), ("Overdue", "2"), ("Due this week", "1"), ("Received this month", "13"),
                         ("Resolved this month", "7"), ("On-time rate", "71%"), ("Satisfaction", "60%")):
        await expect(tile(page, label)).to_have_text(value)
    await expect(page.locator(".tile .missed")).to_have_text("✗ below target")
    east = page.get_by_role("row", name="东关街道")
    await expect(east.get_by_role("cell")).to_have_text(["2", "1", "1", "8", "4", "75%", "67% ✗ below target"])
    await expect(page.get_by_role("img", name="Requests over the last 12 months")).to_be_visible()
    await expect(page.locator("#trend svg rect[fill='#8fb3d9']:has(title)")).to_have_count(12)  # a bar a month
    await shot(page, "desk-overview")
    await page.set_viewport_size(PHONE)
    await fits_the_screen(page)
    await shot(page, "desk-overview-phone")
    await page.set_viewport_size({"width": 1920, "height": 1080})

    await east.get_by_role("link", name="its overview").click()
    await expect(page.get_by_role("heading", name="Overview: 东关街道")).to_be_visible()
    await expect(tile(page, "Received this month")).to_have_text("8")
    await shot(page, "desk-overview-street")
    # The community's overdue count opens the list of exactly those requests.
    await page.get_by_role("row", name="建设社区").get_by_role("link", name="1", exact=True).click()
    await expect(page.get_by_role("heading", name="Requests")).to_be_visible()
    await expect(page.get_by_label("Overdue only")).to_be_checked()
    await expect(page.locator("#results tbody tr")).to_have_count(1)

    await page.get_by_role("link", name="Evaluation", exact=True).click()
    await expect(page.get_by_role("heading", name="Evaluation for September 2026")).to_be_visible()
    await page.get_by_label("Month").fill("2026-10")
    await page.get_by_role("button", name="Show").click()
    await expect(page.get_by_role("heading", name="Evaluation for October 2026: the whole district")).to_be_visible()
    ranking = page.locator("#ranking tbody tr")
    await expect(ranking).to_have_count(2)
    await expect(ranking.nth(0)).to_contain_text("东关街道")
    await expect(ranking.nth(0).locator("td").nth(5)).to_have_text("75%")
    await expect(ranking.nth(1)).to_contain_text("新华街道")
    async with page.expect_download() as downloading:
        await page.get_by_role("link", name="Download the bulletin's workbook (XLSX)").click()
    assert (await downloading.value).suggested_filename == "bulletin-2026-10.xlsx"
    await shot(page, "desk-evaluation")
    await page.set_viewport_size(PHONE)
    await fits_the_screen(page)
    await shot(page, "desk-evaluation-phone")
    await page.close()


async def community_evaluation(browser: Any, expect: Any, link: str) -> None:
    page = await browser.new_page(viewport={"width": 1920, "height": 1080})
    await page.goto(link)
    await page.get_by_role("button", name="登录").click()
    await expect(page.get_by_role("heading", name="概览：建设社区")).to_be_visible()
    await expect(page.get_by_role("row", name="建设一网格")).to_be_visible()
    await shot(page, "desk-overview-community")
    await page.get_by_role("link", name="考评", exact=True).click()
    await page.get_by_label("月份").fill("2026-10")
    await page.get_by_role("button", name="查询").click()
    await expect(page.get_by_role("heading", name="2026年10月考评：建设社区")).to_be_visible()
    await expect(page.locator("#ranking tbody tr").nth(0)).to_contain_text("建设二网格")
    await expect(page.get_by_role("row", name="王网格")).to_contain_text("DG-JS-01")
    await shot(page, "desk-evaluation-community")
    await page.set_viewport_size(PHONE)
    await fits_the_screen(page)
    await shot(page, "desk-evaluation-community-phone")
    await page.close()
