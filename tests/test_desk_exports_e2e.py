"""The desk's downloads and import in a real browser (Debian's chromium through Playwright): district staff find
a building by its pinyin initials as they type, download the list narrowed to it as XLSX (Playwright's download)
and read its rows, then upload a file of history, see how many rows it holds and import it. Screenshots go to
``test-artifacts/``."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from openpyxl import load_workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.core.clock import FrozenClock
from bot.core.context import CoreConfig
from bot.core.desk_access import issue_link
from bot.desk.app import DeskConfig, make_app
from storage.database import Database
from storage.models import Person, Request
from tests.test_desk import Org, build_org, code
from tests.test_desk_e2e import free_port, shot
from tests.test_desk_exports import GOOD_ROWS, HEADER
from tests.test_playground import CHROMIUM, CHROMIUM_ARGS

WAIT_MS = 15_000


async def test_the_district_downloads_a_buildings_requests_and_imports_history(
    database: Database, clock: FrozenClock, tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright, expect

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)")
    expect.set_options(timeout=WAIT_MS)
    org: Org = await database.run(lambda session: build_org(session, clock()))

    def link(session: Session) -> str:
        person = session.get(Person, org.district)
        assert person is not None
        return issue_link(session, person, clock())

    token = await database.run(link)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = DeskConfig(core=CoreConfig(default_locale="en"), public_url=url, listen=f"127.0.0.1:{port}")
    runner = web.AppRunner(make_app(database, config, clock), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with async_playwright() as driver:
            browser = await driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page(viewport={"width": 1920, "height": 1080}, accept_downloads=True)
                await page.goto(f"{url}/signin/{token}")
                await page.get_by_role("button", name="Sign in").click()
                await expect(page.get_by_role("heading", name="Overview:")).to_be_visible()  # the landing page
                await page.get_by_role("link", name="Requests", exact=True).click()
                await expect(page.get_by_role("heading", name="Requests")).to_be_visible()
                await download_a_buildings_list(page, expect, org)
                await import_history(page, expect, database, tmp_path)
            finally:
                await browser.close()
    finally:
        await runner.cleanup()


async def download_a_buildings_list(page: Any, expect: Any, org: Org) -> None:
    # Typing offers the area's buildings as it goes (desk.js asks /spots); the initials find this one.
    await page.get_by_label("Place or building").press_sequentially("jsl12")
    await page.locator(".suggestions").get_by_role("link", name="建设路12号院1号楼", exact=False).click()
    await expect(page.get_by_role("status")).to_contain_text("Only requests about 建设路12号院1号楼")
    await expect(page.locator("#results")).not_to_contain_text(code(org.renmin_request))
    await shot(page, "list-building")
    async with page.expect_download() as started:
        await page.get_by_role("button", name="Download XLSX").click()
    download = await started.value
    assert download.suggested_filename == "requests-district-2026-11-25.xlsx"
    sheet = load_workbook(io.BytesIO(Path(await download.path()).read_bytes()), read_only=True).active
    assert sheet is not None
    rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert rows[0][:2] == ["Code", "Filed at"]
    assert [row[0] for row in rows[1:]] == [code(org.jianshe_request)]
    assert rows[1][9] == "建设路12号院1号楼"


async def import_history(page: Any, expect: Any, database: Database, tmp_path: Path) -> None:
    before = await database.run(lambda session: session.scalar(select(func.count(Request.id))))
    history = tmp_path / "history.csv"
    history.write_text(HEADER + GOOD_ROWS, encoding="utf-8")
    await page.get_by_role("link", name="Import").click()
    await expect(page.get_by_role("heading", name="Import historical requests")).to_be_visible()
    await shot(page, "import")
    await page.get_by_label("File").set_input_files(str(history))
    await page.get_by_role("button", name="Check the file").click()
    await expect(page.get_by_role("status")).to_contain_text("2 historical requests from history.csv will be "
                                                             "imported")
    await shot(page, "import-confirm")
    assert await database.run(lambda session: session.scalar(select(func.count(Request.id)))) == before
    await page.get_by_role("button", name="Import them").click()
    await expect(page.get_by_text("2 historical requests imported.")).to_be_visible()
    await shot(page, "import-done")
    assert await database.run(lambda session: session.scalar(select(func.count(Request.id)))) == (before or 0) + 2
