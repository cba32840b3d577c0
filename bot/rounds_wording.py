"""Wording about grid workers' rounds that handlers and background jobs share (see ``bot.core.rounds``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from babel.dates import format_date
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.campaigns import GridProgress
from bot.core.rounds import Collection, PatrolSummary
from bot.i18n import Translator
from storage.models import Campaign, Category


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


def day_text(t: Translator, day: date) -> str:
    """A calendar day (a campaign's last day) in the reader's language."""
    return format_date(day, "medium", locale=t.babel_locale)


def campaign_progress_text(t: Translator, campaign: Campaign, grids: Sequence[GridProgress]) -> str:
    """A campaign's progress by grid, for its owner (on request and at its end)."""
    total = sum(grid.total for grid in grids)
    rectified = sum(grid.rectified for grid in grids)
    lines = [
        t._("📊 {name} (until {date}): {rectified} of {total} targets rectified").format(
            name=campaign.name, date=day_text(t, campaign.ends_on), rectified=rectified, total=total),
    ]
    lines += [t._("• {grid}: {rectified} of {total} rectified, {not_rectified} not rectified, {pending} waiting")
              .format(grid=grid.name, rectified=grid.rectified, total=grid.total, not_rectified=grid.not_rectified,
                      pending=grid.pending) for grid in grids]
    if not grids:
        lines.append(t._("It has no targets yet."))
    return "\n".join(lines)


def overdue_text(t: Translator, overdue: Sequence[tuple[Campaign, int]]) -> str:
    """Campaigns past their end with targets not rectified, as lines of the daily digest."""
    lines = [t._("⏰ Campaign targets overdue:")]
    lines += [t._("• {name} (ended {date}): {count} not rectified").format(
        name=campaign.name, date=day_text(t, campaign.ends_on), count=count) for campaign, count in overdue]
    return "\n".join(lines)
