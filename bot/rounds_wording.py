"""Wording about grid workers' rounds that handlers and background jobs share (see ``bot.core.rounds``)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.rounds import Collection, PatrolSummary
from bot.i18n import Translator
from storage.models import Category


def distance_text(t: Translator, metres: float) -> str:
    if metres < 1000:
        return t._("{metres} m").format(metres=round(metres))
    return t._("{km} km").format(km=f"{metres / 1000:.2f}")


def patrol_summary_text(t: Translator, summary: PatrolSummary) -> str:
    minutes = int(summary.duration.total_seconds() // 60)
    return t._("Patrol summary: {hours} h {minutes} min, {distance}, {points} points, {findings} findings.").format(
        hours=minutes // 60, minutes=minutes % 60, distance=distance_text(t, summary.distance_m),
        points=summary.points, findings=summary.findings)


def collection_text(session: Session, t: Translator, area: str, collected: Collection) -> str:
    """The day's collection of an area, as lines of the daily digest."""
    names = {category.id: category.name(t.locale) for category in session.scalars(select(Category))}
    by_category = t._(", ").join(
        t._("{category} {count}").format(category=names.get(category_id, "?"), count=count)
        for category_id, count in sorted(collected.leads_by_category.items()))
    lines = [
        t._("📋 Yesterday's collection in {area}:").format(area=area),
        t._("Leads: {count} ({categories})").format(count=collected.leads, categories=by_category or "-"),
        t._("Solved on the spot: {spot}; handed on: {handed}").format(spot=collected.on_the_spot,
                                                                     handed=collected.handed_on),
        t._("Visits: {visits} of {target}").format(visits=collected.visits, target=collected.visit_target),
        t._("Night patrols: {count}").format(count=collected.patrols),
    ]
    return "\n".join(lines)
