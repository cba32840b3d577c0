"""The playground: its HTTP and event-stream API, then the page itself in a real headless Chromium."""

from __future__ import annotations

import asyncio
import json
import re
import struct
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.config import Settings
from bot.core.clock import RunningClock
from bot.core.ladder import has_staff
from bot.playground import Playground
from bot.playground.app import PortUnavailable
from bot.playground.isolation import NotAPlaygroundDatabase
from bot.playground.web import TOKEN_HEADER
from bot.service import prepare_database
from storage.database import Database
from storage.models import Department, Level, OutboxMessage, Person, PlaygroundMarker, Role, StaffRole, Street
from tests.org_fixture import make_small_org, staff

CHROMIUM = Path("/usr/bin/chromium")
# Far from the district's zone, so a time shown in the browser's zone would show up.
BROWSER_ZONE = "America/New_York"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
WAIT_MS = 15_000
# A Wednesday in the middle of a month, 10:00 in the district: no bulletin or weekly status falls due as the
# playground starts, whatever day the tests run on.
START = datetime(2026, 11, 18, 2, 0, tzinfo=UTC)


def striped_png() -> bytes:
    """A small striped PNG, made here so the test needs no image files."""
    width, height = 240, 160

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    pixel = [b"\xc8\x8c\x50", b"\x8c\x64\x3c"]  # two browns, like cardboard boxes
    rows = b"".join(b"\x00" + b"".join(pixel[(x // 20 + y // 20) % 2] for x in range(width)) for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


@pytest.fixture
async def playground(database_url: str) -> AsyncIterator[Playground]:
    settings = Settings(database_url=database_url, _env_file=None)  # type: ignore[call-arg]
    running = Playground(settings, real_time=RunningClock(START), port=0)
    await running.start()
    yield running
    await running.stop()


# --- the API, without a browser ------------------------------------------------------------------------------


def squad_is_staffed(session: Session) -> bool:
    squad = session.scalars(select(Department).where(Department.code == "DG-CG")).one()
    return has_staff(session, Level.DEPARTMENT, squad.id)


class EventStream:
    """Reads the page's server-sent events the way the browser's EventSource does."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def next_matching(self, wanted: dict[str, Any], text: str = "", timeout: float = 10) -> dict[str, Any]:
        async def read() -> dict[str, Any]:
            while True:
                line = (await self.response.content.readline()).decode()
                if not line.startswith("data: "):
                    continue
                event: dict[str, Any] = json.loads(line[len("data: "):])
                shown = json.dumps(event, ensure_ascii=False)
                if all(event.get(key) == value for key, value in wanted.items()) and text in shown:
                    return event

        return await asyncio.wait_for(read(), timeout)


async def test_api_serves_the_page_state_events_and_actions(playground: Playground) -> None:
    async with aiohttp.ClientSession(playground.url) as browser:
        page = await (await browser.get("/")).text()
        assert "/static/app.js" in page and "http" not in page.replace("http-equiv", "")
        assert (await browser.get("/static/app.js")).status == 200
        token = page_token(page)
    async with aiohttp.ClientSession(playground.url, headers={TOKEN_HEADER: token}) as http:

        # The greetings go out through the paced outbox, so they may arrive a moment after the page is up; the
        # persona's own "/start" is among its messages before the bot's answer is.
        def resident1_bound(personas: dict[str, Any]) -> bool:
            return any("孔明路12号院1号楼" in (m["text"] or "") for m in personas["resident1"]["messages"])

        for _ in range(100):
            state = await (await http.get("/api/state")).json()
            personas = {p["key"]: p for p in state["personas"]}
            if personas["worker"]["keyboard"] is not None and resident1_bound(personas):
                break
            await asyncio.sleep(0.1)
        assert set(personas) == {"resident1", "resident2", "worker", "community", "volunteer", "district",
                                 "department"}
        # The district center can hand a request to this squad: a department of the demo with the persona on duty.
        assert await playground.service.database.run(squad_is_staffed)
        assert resident1_bound(personas)
        assert personas["worker"]["keyboard"]["rows"][0][0]["text"] == "📥 待办"
        assert personas["resident2"]["messages"] == [] and personas["resident2"]["language"] == "en"

        async with http.get("/api/events", headers={TOKEN_HEADER: ""}, params={"token": token}) as response:
            assert response.headers["Content-Type"].startswith("text/event-stream")
            events = EventStream(response)
            await http.post("/api/personas/resident2/text", json={"text": "/start b_HY-LZ-01-B2"})
            bound = await events.next_matching({"type": "message", "persona": "resident2"}, "Your building is now")
            assert bound["keyboard"]["rows"][0][0]["text"] == "📝 New request"

            await http.post("/api/personas/resident2/language", json={"language": "zh"})
            await events.next_matching({"type": "language", "persona": "resident2", "language": "zh"})

            form = aiohttp.FormData()
            form.add_field("photo", striped_png(), filename="wires.png", content_type="image/png")
            assert (await http.post("/api/personas/resident2/photo", data=form)).status == 200
            sent = await events.next_matching({"type": "message", "persona": "resident2"}, '"photo": "AgAC')
            photo = await http.get(f"/api/files/{sent['message']['photo']}", headers={TOKEN_HEADER: ""},
                                   params={"token": token})
            assert await photo.read() == striped_png()

            clock = await (await http.post("/api/clock", json={"days": 7})).json()
            assert clock["offset_seconds"] == 7 * 86400
            assert (await events.next_matching({"type": "clock"}))["offset_seconds"] == 7 * 86400

        assert (await http.post("/api/personas/nobody/text", json={"text": "hi"})).status == 404
        assert (await http.post("/api/clock", json={"days": 0})).status == 400
        assert (await http.post("/api/personas/worker/text", json={"text": ""})).status == 400
        first = personas["resident1"]["messages"][-1]["id"]
        stale = await http.post("/api/personas/resident1/press", json={"message_id": first, "data": "fl:ok:x"})
        assert stale.status == 409 and "no button" in (await stale.json())["error"]


def page_token(page: str) -> str:
    found = re.search(r'<meta name="playground-token" content="([^"]+)">', page)
    assert found is not None, "the page carries no token"
    return found.group(1)


async def test_the_worker_persona_has_help_for_rounds_and_the_demo_campaigns_targets(playground: Playground) -> None:
    async with aiohttp.ClientSession(playground.url) as browser:
        token = page_token(await (await browser.get("/")).text())
    async with (
        aiohttp.ClientSession(playground.url, headers={TOKEN_HEADER: token}) as http,
        http.get("/api/events", headers={TOKEN_HEADER: ""}, params={"token": token}) as response,
    ):
        events = EventStream(response)
        worker = {"type": "message", "persona": "worker"}
        await http.post("/api/personas/worker/text", json={"text": "/help"})
        shown = await events.next_matching(worker, "/patrol")
        help_text = shown["message"]["text"]
        for command in ("/lead", "/visit", "/patrol", "/targets"):
            assert command in help_text
        assert "/campaign" not in help_text

        await http.post("/api/personas/worker/text", json={"text": "/targets"})
        listed = await events.next_matching(worker, "ca:r:")
        labels = [button["text"] for row in listed["message"]["buttons"] for button in row]
        assert labels == [f"🎯 飞线充电整治 · 孔明路12号院{n}号楼" for n in (1, 2, 3)]

        await http.post("/api/personas/community/text", json={"text": "/help"})
        admin_help = await events.next_matching({"type": "message", "persona": "community"}, "/campaign")
        assert "/lead" not in admin_help["message"]["text"]


async def test_other_sites_rebound_names_and_calls_without_the_token_are_refused(playground: Playground) -> None:
    token, port = playground.api_token, playground.url.rsplit(":", 1)[1]
    district = playground.user(playground.persona("district"))
    before = len(district.messages)
    broadcast = {"text": "/broadcast"}
    refused = [
        # A page of another site posting with the browser (it cannot know the token, but even with it).
        ("/api/clock", {"Origin": "http://evil.example", TOKEN_HEADER: token}, {"days": 30}),
        ("/api/personas/district/text", {"Origin": "null", TOKEN_HEADER: token}, broadcast),
        # DNS rebinding: the attacker's name resolves to 127.0.0.1, so the browser sends that name as Host.
        ("/api/clock", {"Host": f"rebind.example:{port}", TOKEN_HEADER: token}, {"days": 30}),
        ("/api/personas/district/text", {"Host": "127.0.0.1:1", TOKEN_HEADER: token}, broadcast),
        # No token, or a wrong one.
        ("/api/clock", {}, {"days": 30}),
        ("/api/personas/district/text", {TOKEN_HEADER: "guess"}, broadcast),
    ]
    async with aiohttp.ClientSession(playground.url) as http:
        for path, headers, body in refused:
            response = await http.post(path, json=body, headers=headers)
            assert response.status == 403, (path, headers)
            assert "error" in await response.json()
        assert (await http.get("/api/state")).status == 403
        assert (await http.get("/", headers={"Host": f"rebind.example:{port}"})).status == 403
        # A form post needs no preflight: JSON is accepted only as application/json.
        simple = await http.post("/api/clock", data=json.dumps({"days": 30}),
                                 headers={TOKEN_HEADER: token, "Content-Type": "text/plain"})
        assert simple.status == 415
        await asyncio.sleep(0.3)  # a message that got through would have reached the bot by now
        assert playground.clock.offset.total_seconds() == 0
        # The scheduler may still be delivering what was due at start (on the 1st, the bulletin), so look at what
        # arrived for its kind: nothing answers the refused /broadcast.
        arrived = district.messages[before:]
        assert not [m for m in arrived if any(data and data.startswith("bc:") for _text, data in m.buttons())]
        for host in ("127.0.0.1", "localhost"):
            allowed = await http.get("/api/state", headers={"Host": f"{host}:{port}", TOKEN_HEADER: token})
            assert allowed.status == 200


async def test_uploads_are_capped_per_file_and_the_oldest_files_are_dropped(playground: Playground) -> None:
    from bot.playground.web import MAX_PHOTO_SIZE
    from bot.simulator import BotApiSimulator

    async with aiohttp.ClientSession(playground.url, headers={TOKEN_HEADER: playground.api_token}) as http:
        form = aiohttp.FormData()
        form.add_field("photo", b"\x89PNG" + bytes(MAX_PHOTO_SIZE + 1), filename="big.png", content_type="image/png")
        too_big = await http.post("/api/personas/resident2/photo", data=form)
        assert too_big.status == 400 and "10 MB" in (await too_big.json())["error"]

    sim = BotApiSimulator("1:kept", max_file_bytes=3 * 2000)  # three sizes of one 2 kB photo
    user = sim.user(1, "Li")
    first, second = await user.send_photo(bytes(2000)), await user.send_photo(bytes(2000))
    assert len(first.photo_sizes) == len(second.photo_sizes) == 3
    assert all(sim.file(size.file_id) is None for size in first.photo_sizes)
    assert all(sim.file(size.file_id) is not None for size in second.photo_sizes)


def a_deployment(session: Session) -> None:
    org = make_small_org(session)
    staff(session, 7001, "Wang Worker", Role.WORKER, org.grid)


def snapshot(session: Session) -> list[Any]:
    return [
        session.scalar(select(func.count()).select_from(model))
        for model in (Person, StaffRole, Street, OutboxMessage, PlaygroundMarker)
    ]


async def test_the_playground_runs_only_on_a_database_it_created(database_url: str) -> None:
    database = Database(database_url)
    await prepare_database(database)
    await database.run(a_deployment)
    before = await database.run(snapshot)
    settings = Settings(database_url=database_url, _env_file=None)  # type: ignore[call-arg]
    intruder = Playground(settings, real_time=RunningClock(START), port=0)
    try:
        with pytest.raises(NotAPlaygroundDatabase, match=r"holds a deployment \(1 person, 2 streets\)"):
            await intruder.start()
    finally:
        await intruder.stop()
    assert await database.run(snapshot) == before
    await database.dispose()


async def test_the_playground_reopens_the_database_it_made(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/playground.db", _env_file=None)  # type: ignore[call-arg]
    for _run in range(2):
        running = Playground(settings, real_time=RunningClock(START), port=0)
        try:
            await running.start()
        finally:
            await running.stop()
    database = Database(settings.database_url)
    assert (await database.run(snapshot))[-1] == 1
    await database.dispose()


async def test_a_restarted_playground_answers_and_keeps_its_clock(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/playground.db", _env_file=None)  # type: ignore[call-arg]
    real_time = RunningClock(START)  # one machine's time, running on across the restart
    first = Playground(settings, real_time=real_time, port=0)
    try:
        await first.start()
        await first.move_clock(3)
        moved_to = first.clock()
    finally:
        await first.stop()

    second = Playground(settings, real_time=real_time, port=0)
    try:
        await second.start()
        assert second.clock() >= moved_to
        anna = second.user(second.persona("resident2"))
        await anna.send_text("/start b_HY-LZ-01-B2")
        bound = await anna.wait_for(lambda message: "Your building is now" in (message.text or ""), 10)
        assert bound.date >= int(moved_to.timestamp())
    finally:
        await second.stop()


async def test_a_taken_port_is_reported_before_the_bot_starts(playground: Playground, database_url: str) -> None:
    settings = Settings(database_url=database_url, _env_file=None)  # type: ignore[call-arg]
    second = Playground(settings, real_time=RunningClock(START), port=int(playground.url.rsplit(":", 1)[1]))
    try:
        with pytest.raises(PortUnavailable, match="cannot serve the page"):
            await second.start()
    finally:
        await second.stop()


# --- the page, in a real browser -----------------------------------------------------------------------------


async def test_resident_files_a_request_and_the_worker_accepts_it_in_the_browser(playground: Playground) -> None:
    from playwright.async_api import async_playwright, expect

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)")
    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1600, "height": 900}, timezone_id=BROWSER_ZONE)
            await page.goto(f"{playground.url}/?lang=en")
            await walk_through_a_request(page, expect)
            await take_screenshot(page, expect)
            await check_the_layout(page, playground)
        finally:
            await browser.close()


async def walk_through_a_request(page: Any, expect: Any) -> None:
    expect.set_options(timeout=WAIT_MS)
    resident = page.locator('section.chat[data-persona="resident1"]')
    await expect(resident.get_by_text("孔明路12号院1号楼").first).to_be_visible()

    await resident.get_by_role("button", name="EN", exact=True).click()
    await expect(resident.get_by_text("I will speak English with you from now on.")).to_be_visible()
    await resident.locator(".reply-keyboard").get_by_role("button", name="📝 New request").click()
    await last_message(resident).get_by_role("button", name="Clutter in common areas").click()
    await expect(last_message(resident)).to_contain_text("Describe the problem")
    await resident.locator(".composer input[type=text]").fill("Boxes block the stairwell on floor 3")
    await resident.get_by_role("button", name="Send").click()
    await expect(last_message(resident)).to_contain_text("Send up to")
    await resident.locator(".composer input[type=file]").set_input_files(
        {"name": "boxes.png", "mimeType": "image/png", "buffer": striped_png()}
    )
    await expect(last_message(resident)).to_contain_text("Photo 1 of")
    await last_message(resident).get_by_role("button", name="Done").click()
    await last_message(resident).get_by_role("button", name="📍 Use my building's location").click()
    await last_message(resident).get_by_role("button", name="No, show them").click()
    await expect(last_message(resident)).to_contain_text("Boxes block the stairwell")
    await last_message(resident).get_by_role("button", name="✅ Confirm").click()
    await expect(last_message(resident)).to_contain_text("Filed as R-")

    await page.locator('[data-tab="worker"]').click()
    worker = page.locator('section.chat[data-persona="worker"]')
    card = worker.locator(".msg", has_text="Boxes block the stairwell").last
    await expect(card.locator("img")).to_be_visible()
    await card.get_by_role("button", name="✅ 受理").click()
    await expect(page.locator('[data-tab="resident1"] .badge')).not_to_be_empty()

    await page.locator('[data-tab="resident1"]').click()
    await expect(last_message(resident)).to_contain_text("was accepted by 王网格员")
    await page.locator("#plus-day").click()
    await expect(page.locator("#clock-offset")).to_have_text("(+1 d)")


# The number of lines the text of an element takes, from the boxes of its first text node.
LINES_OF_TEXT = """(node) => {
  const range = document.createRange();
  range.selectNodeContents(node.firstChild);
  return new Set([...range.getClientRects()].map((rect) => Math.round(rect.top))).size;
}"""


async def check_the_layout(page: Any, playground: Playground) -> None:
    """Side by side: card buttons on one line each, short bubbles unbroken, times in the district's zone, an icon."""
    buttons = page.locator(".inline-keyboard button:visible")
    assert await buttons.count() > 5
    for index in range(await buttons.count()):
        box = await buttons.nth(index).bounding_box()
        assert box is not None and box["height"] < 40, await buttons.nth(index).text_content()
    resident = page.locator('section.chat[data-persona="resident1"]')
    for text in await resident.locator(".msg.out .text").all():
        if len(await text.text_content() or "") < 30:
            assert await text.evaluate(LINES_OF_TEXT) == 1, await text.text_content()
    shown = await resident.locator(".msg.out .meta").last.text_content()
    now = playground.clock().astimezone(ZoneInfo(playground.settings.timezone))
    assert shown in {f"{moment:%H:%M}" for moment in (now, now - timedelta(minutes=1))}
    assert await page.locator('link[rel="icon"]').get_attribute("href") == "/static/favicon.svg"
    icon = await page.request.get(f"{playground.url}/static/favicon.svg")
    assert icon.status == 200 and icon.headers["content-type"] == "image/svg+xml"


async def test_the_chinese_page_keeps_long_text_and_short_bubbles_whole(playground: Playground) -> None:
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=WAIT_MS)
    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1600, "height": 900}, timezone_id=BROWSER_ZONE)
            await page.goto(f"{playground.url}/?lang=zh")
            resident = page.locator('section.chat[data-persona="resident1"]')
            await resident.locator(".reply-keyboard").get_by_role("button", name="📝 提交诉求").click()
            await expect(last_message(resident)).to_contain_text("哪类问题")
            await page.locator('[data-tab="district"]').click()
            district = page.locator('section.chat[data-persona="district"]')
            await district.locator(".composer input[type=text]").fill("/broadcast")
            await district.get_by_role("button", name="发送").click()
            await expect(district.locator(".msg.in")).not_to_have_count(0)
            await page.locator("#layout-toggle").click()
            for chat, text in ((resident, "📝 提交诉求"), (district, "/broadcast")):
                bubble = chat.locator(".msg.out .text", has_text=text).last
                assert await bubble.evaluate(LINES_OF_TEXT) == 1, text

            box = resident.locator(".composer input[type=text]")
            assert await box.get_attribute("maxlength") == "4096"
            await box.evaluate("(input) => { input.value = '字'.repeat(5000); }")
            await resident.get_by_role("button", name="发送").click()
            await expect(resident.locator(".toast")).to_contain_text("一条消息最多 4096 个字符，这条有 5000 个")
            assert len(await box.input_value()) == 5000
            await resident.locator(".toast button").click()
            await box.fill("纸箱")
            await box.evaluate("""(input) => {
              const data = new DataTransfer();
              data.setData("text/plain", "字".repeat(5000));
              const paste = new ClipboardEvent("paste", { clipboardData: data, bubbles: true, cancelable: true });
              input.dispatchEvent(paste);
            }""")
            await expect(resident.locator(".toast")).to_contain_text("未粘贴")
            assert await box.input_value() == "纸箱"
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "playground-zh.png"))
        finally:
            await browser.close()


def test_the_start_banner_says_the_demo_is_loaded_and_names_the_venv_commands() -> None:
    from bot.cli import PLAYGROUND_NOTE

    assert "demo organisation loaded" in PLAYGROUND_NOTE and "first" not in PLAYGROUND_NOTE
    assert ".venv/bin/gridbot org import" in PLAYGROUND_NOTE and ".venv/bin/gridbot run" in PLAYGROUND_NOTE


def last_message(chat: Any) -> Any:
    return chat.locator(".msg.in").last


async def take_screenshot(page: Any, expect: Any) -> None:
    """Every chat side by side, for the README; the test's artifact folder keeps the latest one."""
    await page.locator("#layout-toggle").click()
    await expect(page.locator('section.chat[data-persona="district"]')).to_be_visible()
    await expect(page.locator(".toast")).to_have_count(0)  # button answers fade after a moment
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "playground.png"))
