"""The desk in a real browser (Debian's chromium through Playwright) beside the real bot and the Telegram simulator:
district staff get a link from the bot, filter to one community's overdue requests, hand one to a grid whose
worker gets the card in the chat, and see the page follow without reloading; a community admin sees only the
community; a link used twice or after ten minutes, and a form without its CSRF token, are refused.
Screenshots of each page go to ``test-artifacts/``."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy.orm import Session

from bot.core import requests as core
from bot.core.context import CoreConfig
from bot.desk.app import DeskConfig, make_app
from bot.desk.photos import TelegramPhotos
from bot.simulator import BotApiSimulator, SimUser
from storage.database import Database
from storage.models import Building, Person, Role
from tests.e2e import TOKEN, TickingClock, running_bot
from tests.org_fixture import make_small_org, staff
from tests.test_lifecycle_e2e import JPEG, button
from tests.test_playground import CHROMIUM, CHROMIUM_ARGS, striped_png
from tests.test_resident_views_e2e import text_of

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
WAIT_MS = 15_000


class ShiftableClock(TickingClock):
    """The bot's and the desk's clock: real time's pace from a fixed start, moved forward when the test says."""

    def __init__(self) -> None:
        super().__init__()
        self.shift = timedelta()

    def __call__(self) -> datetime:
        return super().__call__() + self.shift


@dataclass
class Filed:
    overdue: str  # in 建设社区, past its due date
    fresh: str  # in 建设社区, not yet due
    elsewhere: str  # in 人民社区, past its due date


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def organisation(session: Session, now: datetime, photo_id: str) -> Filed:
    org = make_small_org(session)
    staff(session, 9001, "Zhao District", Role.DISTRICT, 0, "en")
    staff(session, 9002, "Chen Community", Role.COMMUNITY, org.community, "en")
    staff(session, 9003, "Wang Worker", Role.WORKER, org.grid, "en")
    staff(session, 9004, "Qian Worker", Role.WORKER, org.empty_grid, "en")
    staff(session, 9005, "Li Worker", Role.WORKER, org.grid2, "en")
    ann = Person(channel="telegram", external_id="1001", chat_id="1001", display_name="Ann", locale="en",
                 state_data={}, created_at=now)
    session.add(ann)
    session.flush()

    def file(building_id: int, text: str, days_ago: int, photos: tuple[str, ...] = ()) -> str:
        building = session.get(Building, building_id)
        return core.file_request(session, ann, core.Draft(1, text, photo_ids=photos), now - timedelta(days=days_ago),
                                 building=building).request.code

    return Filed(overdue=file(org.building, "Boxes block the stairwell for weeks", 20, (photo_id,)),
                 fresh=file(org.building, "A bicycle left in the hall", 0),
                 elsewhere=file(org.building2, "Wires hang from the third floor", 20))


@contextlib.asynccontextmanager
async def serving_desk(database: Database, clock: ShiftableClock, port: int, api_url: str) -> AsyncIterator[str]:
    url = f"http://127.0.0.1:{port}"
    config = DeskConfig(core=CoreConfig(default_locale="en"), public_url=url, listen=f"127.0.0.1:{port}",
                        poll_seconds=0.2)
    photos = {"telegram": TelegramPhotos(api_url, TOKEN)}
    runner = web.AppRunner(make_app(database, config, clock, photos), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield url
    finally:
        await runner.cleanup()


async def desk_link(user: SimUser) -> str:
    await user.send_text("/desk")
    message = await user.wait_for_text("/signin/")  # the answer to this /desk, not an earlier one
    return text_of(message).rsplit("\n", 1)[1].strip()


async def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"desk-{name}.png"), full_page=True)


async def test_the_district_dispatches_from_the_desk_and_the_grid_worker_hears_of_it(
    sim: tuple[BotApiSimulator, str], database_url: str
) -> None:
    from playwright.async_api import async_playwright, expect

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)")
    expect.set_options(timeout=WAIT_MS)
    simulator, api_url = sim
    clock, port = ShiftableClock(), free_port()
    async with running_bot(simulator, api_url, database_url, clock=clock, desk_url=f"http://127.0.0.1:{port}") as bot:
        database = bot.service.database
        # A photo Telegram holds, as the resident's photo of the stairwell.
        photo = (await simulator.user(1002, "Bo", language_code="en").send_photo(striped_png())).photo
        assert photo is not None
        filed = await database.run(lambda session: organisation(session, clock(), photo))
        zhao, chen, qian = (simulator.user(9001, "Zhao", language_code="en"),
                            simulator.user(9002, "Chen", language_code="en"),
                            simulator.user(9004, "Qian", language_code="en"))
        for user in (zhao, chen, qian):  # staff must have written to the bot once to be reachable
            await user.send_text("/start")
            await user.wait_for(lambda m: m.text is not None)
        async with serving_desk(database, clock, port, api_url), async_playwright() as driver:
            browser = await driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                await district_dispatches(browser, expect, await desk_link(zhao), filed, qian)
                await community_admin_sees_the_community(browser, expect, await desk_link(chen), filed)
                await an_old_link_is_refused(browser, expect, await desk_link(chen), clock)
            finally:
                await browser.close()


async def sign_in(page: Any, expect: Any, link: str) -> None:
    await page.goto(link)
    await shot(page, "sign-in")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Overview:")).to_be_visible()  # the landing page
    await page.get_by_role("link", name="Requests", exact=True).click()
    await expect(page.get_by_role("heading", name="Requests")).to_be_visible()


async def district_dispatches(browser: Any, expect: Any, link: str, filed: Filed, qian: SimUser) -> None:
    context = await browser.new_context(viewport={"width": 1920, "height": 1080})
    page = await context.new_page()
    await sign_in(page, expect, link)
    results = page.locator("#results")
    for code in (filed.overdue, filed.fresh, filed.elsewhere):
        await expect(results).to_contain_text(code)
    await shot(page, "list")

    await page.get_by_label("Area").select_option(label="community · 建设社区")
    await page.get_by_label("Overdue only").check()
    await page.get_by_role("button", name="Show").click()
    await expect(results).to_contain_text(filed.overdue)
    await expect(results).not_to_contain_text(filed.fresh)
    await expect(results).not_to_contain_text(filed.elsewhere)
    await shot(page, "list-filtered")
    # A second tab keeps the filtered list open, to see it follow the move without reloading.
    watching = await context.new_page()
    await watching.goto(page.url)
    await watching.evaluate("window.notReloaded = true")

    await page.get_by_role("link", name=filed.overdue).click()
    await expect(page.get_by_role("heading", name=filed.overdue)).to_be_visible()
    photo = page.get_by_role("img", name=f"Photo 1 of {filed.overdue}")
    await expect(photo).to_be_visible()
    loaded = "(image) => image.complete && image.naturalWidth > 0"  # the desk served the photo Telegram holds
    await page.wait_for_function(loaded, arg=await photo.element_handle())
    await shot(page, "request")
    await page.evaluate("window.notReloaded = true")
    without_csrf = await page.evaluate(
        """(path) => fetch(path, {method: "POST", body: new URLSearchParams({text: "forged"})})
                     .then((response) => response.status)""", f"{page.url.split('?')[0]}/note")
    assert without_csrf == 403

    await page.get_by_label("Hand over to").select_option(label="grid · 建设二网格")
    await page.get_by_role("button", name="Hand over").click()
    await expect(page.get_by_role("status")).to_contain_text("was handed over to 建设二网格")
    await expect(watching.locator("#results")).to_contain_text("建设二网格")
    assert await watching.evaluate("window.notReloaded === true")

    card = await qian.wait_for(lambda m: filed.overdue in text_of(m) and "handed over to your unit" in text_of(m))
    await page.evaluate("window.notReloaded = true")
    await qian.press(card, button(card, "rq:acc:"))
    await expect(page.locator("#timeline")).to_contain_text("accepted")
    await expect(page.locator("#details")).to_contain_text("Qian")
    assert await page.evaluate("window.notReloaded === true")
    await shot(page, "request-after-move")

    await page.set_viewport_size({"width": 390, "height": 844})
    await shot(page, "request-phone")
    second = await browser.new_page()
    await second.goto(link)
    await second.get_by_role("button", name="Sign in").click()
    await expect(second.get_by_text("used already")).to_be_visible()
    await shot(second, "link-used")
    await second.close()
    await context.close()


async def community_admin_sees_the_community(browser: Any, expect: Any, link: str, filed: Filed) -> None:
    page = await browser.new_page(viewport={"width": 1920, "height": 1080})
    await sign_in(page, expect, link)
    results = page.locator("#results")
    await expect(results).to_contain_text(filed.fresh)
    await expect(results).not_to_contain_text(filed.elsewhere)
    await shot(page, "community-list")
    await page.get_by_role("link", name="Map").click()
    await expect(page.locator("svg.map circle.request")).to_have_count(2)  # the community's two, not 人民社区's
    await shot(page, "community-map")
    await page.get_by_role("link", name="Requests").first.click()
    await page.set_viewport_size({"width": 390, "height": 844})
    await shot(page, "community-list-phone")
    await page.close()


async def an_old_link_is_refused(browser: Any, expect: Any, link: str, clock: ShiftableClock) -> None:
    clock.shift += timedelta(minutes=11)
    page = await browser.new_page()
    await page.goto(link)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_text("has expired")).to_be_visible()
    await shot(page, "link-expired")
    await page.close()


async def test_the_desk_fetches_a_photo_sent_on_telegram_through_the_bot_api(
    sim: tuple[BotApiSimulator, str]
) -> None:
    simulator, api_url = sim
    sent = await simulator.user(1001, "Ann", language_code="en").send_photo(JPEG)
    assert sent.photo is not None
    photos = TelegramPhotos(api_url, TOKEN)
    fetched = await photos.fetch(sent.photo)
    assert fetched is not None and fetched.data == JPEG and fetched.content_type == "image/jpeg"
    assert await photos.fetch("no-such-file") is None
    assert await TelegramPhotos("http://127.0.0.1:1", TOKEN).fetch(sent.photo) is None
