"""The admin commands of ``gridbot``: posters, broadcast list / show, audit."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import segno
from pypdf import PdfReader
from sqlalchemy.orm import Session

from bot.cli import main
from bot.core.audit import AuditAction, record_action
from bot.service import prepare_database
from bot.simulator import BotApiSimulator
from bot.simulator.wechat import WeChatSimulator
from storage.database import Database
from storage.models import Building, Community, Grid
from tests.broadcast_setup import make_deployment, queue_broadcast
from tests.org_fixture import NOW, make_small_org


async def prepared(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path}/cli.db"
    database = Database(url)
    await prepare_database(database)
    await database.run(make_small_org)
    await database.dispose()
    return url


@pytest.mark.parametrize(("unit", "pages"), [("DG", 2), ("DG-JS", 2), ("DG-JS-01", 1), ("XH-RM-01-B1", 1)])
async def test_posters_have_one_page_per_building(tmp_path: Path, unit: str, pages: int) -> None:
    url = await prepared(tmp_path)
    out = tmp_path / "posters.pdf"
    argv = ["posters", "--unit", unit, "--out", str(out), "--username", "gridbot_test", "--database-url", url]
    assert await asyncio.to_thread(main, argv) == 0
    reader = PdfReader(out)
    assert len(reader.pages) == pages
    text = reader.pages[0].extract_text()
    assert "扫码绑定楼栋" in text
    assert "建设路" in text or "人民路" in text


async def test_posters_ask_the_bot_api_for_the_username(tmp_path: Path) -> None:
    url = await prepared(tmp_path)
    out = tmp_path / "posters.pdf"
    async with BotApiSimulator(token="123:ABC", bot_username="nanyang_grid_bot") as sim:
        assert sim.base_url is not None
        argv = ["posters", "--unit", "DG-JS-01-B1", "--out", str(out), "--token", "123:ABC", "--api-url",
                sim.base_url, "--database-url", url]
        assert await asyncio.to_thread(main, argv) == 0
    page = PdfReader(out).pages[0]
    assert "https://t.me/nanyang_grid_bot?start=b_DG-JS-01-B1" in page.extract_text()


async def test_posters_for_an_unknown_unit_fail(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = await prepared(tmp_path)
    argv = ["posters", "--unit", "NOPE", "--out", str(tmp_path / "x.pdf"), "--username", "b", "--database-url", url]
    assert await asyncio.to_thread(main, argv) == 1
    assert "NOPE" in capsys.readouterr().err


def grid_coded_like_a_street(session: Session) -> None:
    """Codes are unique only within a level: a grid "DG" beside the street "DG", with one building."""
    org = make_small_org(session)
    community = session.get(Community, org.community2)
    grid = Grid(code="DG", name="同码网格", community=community)
    session.add(Building(code="DG-ALIKE-B1", name="同码楼", address="人民路9号", grid=grid))


async def test_posters_name_the_level_of_a_code_shared_by_two_levels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/cli.db"
    database = Database(url)
    await prepare_database(database)
    await database.run(grid_coded_like_a_street)
    await database.dispose()
    out = tmp_path / "posters.pdf"
    common = ["--out", str(out), "--username", "gridbot_test", "--database-url", url]

    assert await asyncio.to_thread(main, ["posters", "--unit", "DG", *common]) == 2
    err = capsys.readouterr().err
    assert "street" in err and "grid" in err and "--street DG" in err and "--grid DG" in err
    assert not out.exists()

    assert await asyncio.to_thread(main, ["posters", "--street", "DG", *common]) == 0
    assert len(PdfReader(out).pages) == 2
    assert await asyncio.to_thread(main, ["posters", "--grid", "DG", *common]) == 0
    assert "同码楼" in PdfReader(out).pages[0].extract_text()
    assert await asyncio.to_thread(main, ["posters", "--building", "DG", *common]) == 1
    assert "no building has the code 'DG'" in capsys.readouterr().err


async def test_broadcast_list_show_and_audit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/cli.db"
    database = Database(url)
    await prepare_database(database)
    deployment = await make_deployment(database, 3)
    broadcast_id = await queue_broadcast(database, deployment, "Lift repairs on Friday")

    def invite_used(session: Session) -> None:
        record_action(session, None, AuditAction.INVITE_USED, NOW, invite_id=9)

    await database.run(invite_used)
    await database.dispose()

    assert await asyncio.to_thread(main, ["broadcast", "list", "--database-url", url]) == 0
    listing = capsys.readouterr().out
    assert f"#{broadcast_id}" in listing and "sent 0/3" in listing and "Lift repairs" in listing
    assert await asyncio.to_thread(main, ["broadcast", "show", str(broadcast_id), "--database-url", url]) == 0
    shown = capsys.readouterr().out
    assert "pending 3" in shown and "Lift repairs on Friday" in shown and "建设社区" in shown
    assert await asyncio.to_thread(main, ["broadcast", "show", "999", "--database-url", url]) == 1
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["audit", "--database-url", url]) == 0
    audit = capsys.readouterr().out.splitlines()
    assert "broadcast.created" in audit[0] and "Admin Wang" in audit[0] and "recipients=3" in audit[0]
    assert "invite.used" in audit[1] and "system" in audit[1]


# --- posters with WeChat codes ------------------------------------------------------------------------------


def dark_modules(content: str) -> int:
    return sum(sum(1 for dark in row if dark) for row in segno.make(content, error="m").matrix_iter(border=4))


def squares_drawn(page: Any) -> int:
    """The filled squares a page's content draws: its QR codes' dark modules, one ``re`` each."""
    return len(re.findall(rb" re f", page.get_contents().get_data()))


@pytest.fixture
async def wechat_configured(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[WeChatSimulator]:
    sim = WeChatSimulator("wx0123456789abcdef", "app-secret", "callback-token")
    api_url = await sim.start()
    for name, value in {"TOKEN": "callback-token", "APP_ID": "wx0123456789abcdef", "APP_SECRET": "app-secret",
                        "API_URL": api_url}.items():
        monkeypatch.setenv(f"GRIDBOT_WECHAT_{name}", value)
    try:
        yield sim
    finally:
        await sim.stop()


async def test_posters_carry_the_wechat_code_beside_telegrams(
    tmp_path: Path, wechat_configured: WeChatSimulator
) -> None:
    url = await prepared(tmp_path)
    out = tmp_path / "posters.pdf"
    argv = ["posters", "--community", "DG-JS", "--out", str(out), "--username", "gridbot_test", "--database-url", url]
    assert await asyncio.to_thread(main, argv) == 0
    codes = {code.scene: code for code in wechat_configured.qr_codes}
    assert set(codes) == {"b_DG-JS-01-B1", "b_DG-JS-02-B1"}
    assert all(code.expire_seconds is None for code in codes.values())  # posters stay up: permanent codes
    page = PdfReader(out).pages[0]
    text = page.extract_text()
    assert "微信扫码" in text and "Telegram 扫码" in text and "微信或 Telegram" in text
    link = "https://t.me/gridbot_test?start=b_DG-JS-01-B1"
    assert link in text
    assert squares_drawn(page) == dark_modules(codes["b_DG-JS-01-B1"].url) + dark_modules(link)


async def test_posters_of_a_wechat_only_district_carry_the_wechat_code_alone(
    tmp_path: Path, wechat_configured: WeChatSimulator
) -> None:
    url = await prepared(tmp_path)
    out = tmp_path / "posters.pdf"
    argv = ["posters", "--building", "DG-JS-01-B1", "--out", str(out), "--only", "wechat", "--database-url", url]
    assert await asyncio.to_thread(main, argv) == 0
    page = PdfReader(out).pages[0]
    text = page.extract_text()
    assert "t.me" not in text and "Telegram" not in text and "用微信扫描上方二维码" in text
    assert squares_drawn(page) == dark_modules(wechat_configured.code_for("b_DG-JS-01-B1").url)


async def test_posters_without_telegram_or_wechat_say_what_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = await prepared(tmp_path)
    argv = ["posters", "--unit", "DG", "--out", str(tmp_path / "x.pdf"), "--database-url", url]
    assert await asyncio.to_thread(main, argv) == 2
    assert "GRIDBOT_TOKEN" in capsys.readouterr().err
