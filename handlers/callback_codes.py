"""How units are written in callback data: a one-letter level code and the unit's id.

Telegram allows 64 bytes of callback data, so a level is one letter.
"""

from __future__ import annotations

from bot.core.units import Unit
from storage.models import Level

LEVEL_CODES = {
    Level.DISTRICT: "d",
    Level.STREET: "s",
    Level.COMMUNITY: "c",
    Level.GRID: "g",
    Level.BUILDING: "b",
}
LEVEL_BY_CODE = {code: level for level, code in LEVEL_CODES.items()}


def unit_from_args(code: str, unit_id: str) -> Unit | None:
    """The unit a callback names, or None when the data is not a level code and a number."""
    level = LEVEL_BY_CODE.get(code)
    if level is None or not unit_id.isdigit():
        return None
    return Unit(level, int(unit_id))


def unit_args(unit: Unit) -> tuple[str, int]:
    """The two callback arguments that name ``unit``."""
    return LEVEL_CODES[unit.level], unit.id
