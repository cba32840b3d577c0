"""Wording about grid workers' rounds that handlers and background jobs share (see ``bot.core.rounds``)."""

from __future__ import annotations

from bot.core.rounds import PatrolSummary
from bot.i18n import Translator


def distance_text(t: Translator, metres: float) -> str:
    if metres < 1000:
        return t._("{metres} m").format(metres=round(metres))
    return t._("{km} km").format(km=f"{metres / 1000:.2f}")


def patrol_summary_text(t: Translator, summary: PatrolSummary) -> str:
    minutes = int(summary.duration.total_seconds() // 60)
    return t._("Patrol summary: {hours} h {minutes} min, {distance}, {points} points, {findings} findings.").format(
        hours=minutes // 60, minutes=minutes % 60, distance=distance_text(t, summary.distance_m),
        points=summary.points, findings=summary.findings)
