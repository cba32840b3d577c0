"""Printable QR posters for buildings and places: one A4 page each. Residents scan a building's to bind to
their building; anyone scans a place's (a market's entrance, an alley) to report a problem there. A page
carries the Telegram deep link's code, WeChat's parametric QR code, or both side by side.

The Chinese text uses reportlab's built-in CID font STSong-Light, which PDF readers supply themselves, so no
font file has to ship with the project.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import segno
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen.canvas import Canvas
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.places import PLACE_LINK_PREFIX
from bot.core.units import LEVELS, Unit, ids_within, unit_by_code
from bot.engines.wechat_api import WeChatApi
from storage.models import Building, Level, Place

FONT = "STSong-Light"
HEADLINE = "扫码绑定楼栋，随时反映身边问题"
PLACE_HEADLINE = "扫码反映此处问题，网格员及时处理"
# The first step says how to scan: with Telegram, with WeChat, or with either when the poster has both codes.
SCAN_STEP = {
    (True, False): "1. 用手机扫描上方二维码，打开 Telegram 与社区服务机器人对话；",
    (False, True): "1. 用微信扫描上方二维码，关注社区服务公众号；",
    (True, True): "1. 用微信或 Telegram 扫描上方对应的二维码；",
}
OPEN_STEP = {
    (True, False): "点击“开始”",
    (False, True): "关注后",
    (True, True): "关注公众号或点击“开始”",
}
STEPS = (
    "2. {opened}，即自动绑定本楼栋；",
    "3. 发送 /new 反映楼道杂物、飞线充电、违章搭建等身边问题；",
    "4. 网格员及时受理，一周内反馈办理结果。",
)
PLACE_STEPS = (
    "2. {opened}，即可反映此处的占道经营、乱堆乱放、违章搭建等问题；",
    "3. 无需绑定楼栋，外卖骑手、网约车司机等也可随手反映；",
    "4. 所在网格的网格员及时受理，并反馈办理结果。",
)
QR_SIZE = 120 * mm
# Two codes side by side (WeChat's and Telegram's) share the width one code takes alone.
PAIR_QR_SIZE = 80 * mm
PAIR_GAP = 10 * mm


@dataclass(frozen=True)
class PosterBuilding:
    """One poster page: a building's, or a place's when ``place`` is set."""

    code: str
    name: str
    address: str
    place: bool = False

    @property
    def start_payload(self) -> str:
        """What scanning its code opens the bot with (``/start <payload>``), on Telegram and WeChat alike."""
        return (PLACE_LINK_PREFIX if self.place else "b_") + self.code


@dataclass(frozen=True)
class PosterChannels:
    """Which codes the posters carry: Telegram's deep links (the bot's username) and WeChat's parametric QR
    codes (what each page's code encodes, by start payload, from the QR-code API)."""

    bot_username: str | None = None
    wechat_urls: dict[str, str] | None = None

    def steps(self, page: PosterBuilding) -> list[str]:
        both = (self.bot_username is not None, self.wechat_urls is not None)
        opened = OPEN_STEP[both]
        return [SCAN_STEP[both], *(line.format(opened=opened) for line in (PLACE_STEPS if page.place else STEPS))]


def building_link(bot_username: str, building_code: str) -> str:
    return f"https://t.me/{bot_username}?start=b_{building_code}"


def place_link(bot_username: str, place_code: str) -> str:
    return f"https://t.me/{bot_username}?start={PLACE_LINK_PREFIX}{place_code}"


class AmbiguousCode(LookupError):
    """Codes are unique only within a level: this one names units of several levels."""

    def __init__(self, code: str, levels: list[str]) -> None:
        super().__init__(code, levels)
        self.code = code
        self.levels = levels


def find_unit(session: Session, code: str, level: Level | None = None) -> Unit | None:
    """The unit with this code at ``level``, or at any level below the district when None (raises
    ``AmbiguousCode`` when the code names units of several levels)."""
    levels = [level] if level else [*LEVELS[1:], Level.PLACE]
    found = [unit for at in levels if (unit := unit_by_code(session, at, code))]
    if len(found) > 1:
        raise AmbiguousCode(code, [unit.level.value for unit in found])
    return found[0] if found else None


def buildings_in(session: Session, unit: Unit) -> list[PosterBuilding]:
    """The unit's active buildings by code, then its active places by code."""
    pages = []
    buildings, places = ids_within(Level.BUILDING, unit), ids_within(Level.PLACE, unit)
    if buildings is not None:
        pages += [PosterBuilding(row.code, row.name, row.address) for row in session.scalars(
            select(Building).where(Building.id.in_(buildings), Building.active.is_(True)).order_by(Building.code))]
    if places is not None:
        pages += [PosterBuilding(row.code, row.name, row.address, place=True) for row in session.scalars(
            select(Place).where(Place.id.in_(places), Place.active.is_(True)).order_by(Place.code))]
    return pages


async def wechat_codes(api: WeChatApi, pages: list[PosterBuilding]) -> dict[str, str]:
    """What each page's WeChat code encodes: a permanent parametric QR code per start payload (an account may
    make 100,000 of them), asked one after another of the QR-code API."""
    return {page.start_payload: await api.create_qr(page.start_payload, None) for page in pages}


def render_posters(buildings: list[PosterBuilding], channels: PosterChannels) -> bytes:
    """A PDF with one A4 page per building or place."""
    pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4)
    canvas.setTitle("楼栋二维码")
    for building in buildings:
        _draw_page(canvas, building, channels)
        canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def _draw_page(canvas: Canvas, building: PosterBuilding, channels: PosterChannels) -> None:
    width, height = A4
    canvas.setFont(FONT, 26)
    canvas.drawCentredString(width / 2, height - 40 * mm, building.name)
    if building.address:
        canvas.setFont(FONT, 14)
        canvas.drawCentredString(width / 2, height - 50 * mm, building.address)
    _draw_codes(canvas, building, channels, height - 60 * mm - QR_SIZE)
    canvas.setFont(FONT, 20)
    canvas.drawCentredString(width / 2, height - 78 * mm - QR_SIZE, PLACE_HEADLINE if building.place else HEADLINE)
    canvas.setFont(FONT, 12)
    for number, line in enumerate(channels.steps(building)):
        canvas.drawString(30 * mm, height - 90 * mm - QR_SIZE - number * 8 * mm, line)
    canvas.setFont(FONT, 9)
    canvas.drawCentredString(width / 2, 15 * mm, f"{'地点' if building.place else '楼栋'}编码 {building.code}")


def _draw_codes(canvas: Canvas, building: PosterBuilding, channels: PosterChannels, bottom: float) -> None:
    """The page's codes in the square one code fills alone (``bottom`` is its lower edge): the Telegram code
    with its link printed under it, for anyone whose phone will not scan; the WeChat code beside it."""
    width, _height = A4
    link = None
    if channels.bot_username is not None:
        link = (place_link if building.place else building_link)(channels.bot_username, building.code)
    wechat = channels.wechat_urls.get(building.start_payload) if channels.wechat_urls is not None else None
    if link is not None and wechat is not None:
        size, left = PAIR_QR_SIZE, (width - 2 * PAIR_QR_SIZE - PAIR_GAP) / 2
        codes = [("微信扫码", wechat, left), ("Telegram 扫码", link, left + PAIR_QR_SIZE + PAIR_GAP)]
        canvas.setFont(FONT, 12)
        for label, content, x in codes:
            _draw_qr(canvas, content, x, bottom + QR_SIZE - size, size)
            canvas.drawCentredString(x + size / 2, bottom + QR_SIZE - size - 6 * mm, label)
    else:
        content = wechat or link or ""
        _draw_qr(canvas, content, (width - QR_SIZE) / 2, bottom, QR_SIZE)
    if link is not None:
        canvas.setFont("Helvetica", 10)
        canvas.drawCentredString(width / 2, bottom - 4 * mm, link)


def _draw_qr(canvas: Canvas, link: str, x: float, y: float, size: float) -> None:
    # Drawn as vector squares, so the code stays sharp at any print size.
    code = segno.make(link, error="m")
    rows = list(code.matrix_iter(scale=1, border=4))
    module = size / len(rows)
    canvas.setFillColorRGB(0, 0, 0)
    for row_number, row in enumerate(rows):
        for column, dark in enumerate(row):
            if dark:
                top = y + size - (row_number + 1) * module
                canvas.rect(x + column * module, top, module, module, stroke=0, fill=1)
