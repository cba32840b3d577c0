"""Printable QR posters for buildings: one A4 page each, scanned by residents to bind to their building.

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

from bot.core.units import LEVELS, Unit, ids_within, unit_by_code
from storage.models import Building, Level

FONT = "STSong-Light"
HEADLINE = "扫码绑定楼栋，随时反映身边问题"
STEPS = (
    "1. 用手机扫描上方二维码，打开 Telegram 与社区服务机器人对话；",
    "2. 点击“开始”，即自动绑定本楼栋；",
    "3. 发送 /new 反映楼道杂物、飞线充电、违章搭建等身边问题；",
    "4. 网格员及时受理，一周内反馈办理结果。",
)
QR_SIZE = 120 * mm


@dataclass(frozen=True)
class PosterBuilding:
    code: str
    name: str
    address: str


def building_link(bot_username: str, building_code: str) -> str:
    return f"https://t.me/{bot_username}?start=b_{building_code}"




class AmbiguousCode(LookupError):
    """Codes are unique only within a level: this one names units of several levels."""

    def __init__(self, code: str, levels: list[str]) -> None:
        super().__init__(code, levels)
        self.code = code
        self.levels = levels


def find_unit(session: Session, code: str, level: Level | None = None) -> Unit | None:
    """The unit with this code at ``level``, or at any level below the district when None (raises
    ``AmbiguousCode`` when the code names units of several levels)."""
    found = [unit for at in ([level] if level else LEVELS[1:]) if (unit := unit_by_code(session, at, code))]
    if len(found) > 1:
        raise AmbiguousCode(code, [unit.level.value for unit in found])
    return found[0] if found else None


def buildings_in(session: Session, unit: Unit) -> list[PosterBuilding]:
    """The unit's active buildings, by code."""
    ids = ids_within(Level.BUILDING, unit)
    if ids is None:
        return []
    rows = session.scalars(
        select(Building).where(Building.id.in_(ids), Building.active.is_(True)).order_by(Building.code)
    )
    return [PosterBuilding(b.code, b.name, b.address) for b in rows]


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
    link = building_link(bot_username, building.code)
    _draw_qr(canvas, link, (width - QR_SIZE) / 2, height - 60 * mm - QR_SIZE)
    # The link in print too, for anyone whose phone will not scan.
    canvas.setFont("Helvetica", 10)
    canvas.drawCentredString(width / 2, height - 64 * mm - QR_SIZE, link)
    canvas.setFont(FONT, 20)
    canvas.drawCentredString(width / 2, height - 78 * mm - QR_SIZE, HEADLINE)
    canvas.setFont(FONT, 12)
    for number, line in enumerate(STEPS):
        canvas.drawString(30 * mm, height - 90 * mm - QR_SIZE - number * 8 * mm, line)
    canvas.setFont(FONT, 9)
    canvas.drawCentredString(width / 2, 15 * mm, f"楼栋编码 {building.code}")


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
