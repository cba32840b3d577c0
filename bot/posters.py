"""Printable QR posters for buildings and places: one A4 page each. Residents scan a building's to bind to
their building; anyone scans a place's (a market's entrance, an alley) to report a problem there.

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
from storage.models import Building, Level, Place

FONT = "STSong-Light"
HEADLINE = "扫码绑定楼栋，随时反映身边问题"
STEPS = (
    "1. 用手机扫描上方二维码，打开 Telegram 与社区服务机器人对话；",
    "2. 点击“开始”，即自动绑定本楼栋；",
    "3. 发送 /new 反映楼道杂物、飞线充电、违章搭建等身边问题；",
    "4. 网格员及时受理，一周内反馈办理结果。",
)
PLACE_HEADLINE = "扫码反映此处问题，网格员及时处理"
PLACE_STEPS = (
    "1. 用手机扫描上方二维码，打开 Telegram 与社区服务机器人对话；",
    "2. 点击“开始”，即可反映此处的占道经营、乱堆乱放、违章搭建等问题；",
    "3. 无需绑定楼栋，外卖骑手、网约车司机等也可随手反映；",
    "4. 所在网格的网格员及时受理，并反馈办理结果。",
)
QR_SIZE = 120 * mm


@dataclass(frozen=True)
class PosterBuilding:
    """One poster page: a building's, or a place's when ``place`` is set."""

    code: str
    name: str
    address: str
    place: bool = False


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


def render_posters(buildings: list[PosterBuilding], bot_username: str) -> bytes:
    """A PDF with one A4 page per building."""
    pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4)
    canvas.setTitle("楼栋二维码")
    for building in buildings:
        _draw_page(canvas, building, bot_username)
        canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def _draw_page(canvas: Canvas, building: PosterBuilding, bot_username: str) -> None:
    width, height = A4
    canvas.setFont(FONT, 26)
    canvas.drawCentredString(width / 2, height - 40 * mm, building.name)
    if building.address:
        canvas.setFont(FONT, 14)
        canvas.drawCentredString(width / 2, height - 50 * mm, building.address)
    link = (place_link if building.place else building_link)(bot_username, building.code)
    _draw_qr(canvas, link, (width - QR_SIZE) / 2, height - 60 * mm - QR_SIZE)
    # The link in print too, for anyone whose phone will not scan.
    canvas.setFont("Helvetica", 10)
    canvas.drawCentredString(width / 2, height - 64 * mm - QR_SIZE, link)
    canvas.setFont(FONT, 20)
    canvas.drawCentredString(width / 2, height - 78 * mm - QR_SIZE, PLACE_HEADLINE if building.place else HEADLINE)
    canvas.setFont(FONT, 12)
    for number, line in enumerate(PLACE_STEPS if building.place else STEPS):
        canvas.drawString(30 * mm, height - 90 * mm - QR_SIZE - number * 8 * mm, line)
    canvas.setFont(FONT, 9)
    canvas.drawCentredString(width / 2, 15 * mm, f"{'地点' if building.place else '楼栋'}编码 {building.code}")


def _draw_qr(canvas: Canvas, link: str, x: float, y: float) -> None:
    # Drawn as vector squares, so the code stays sharp at any print size.
    code = segno.make(link, error="m")
    rows = list(code.matrix_iter(scale=1, border=4))
    module = QR_SIZE / len(rows)
    canvas.setFillColorRGB(0, 0, 0)
    for row_number, row in enumerate(rows):
        for column, dark in enumerate(row):
            if dark:
                top = y + QR_SIZE - (row_number + 1) * module
                canvas.rect(x + column * module, top, module, module, stroke=0, fill=1)
