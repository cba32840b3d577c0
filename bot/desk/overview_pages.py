"""The desk's overview and evaluation (考评) pages as HTML, from the figures of ``bot.core.desk_figures``.

The overview is the landing page: what stands now in the viewer's area, this month's figures against the
satisfaction target, the same per unit one level down (each linking to the list filtered to it) and the
12-month trend (``bot.desk.charts.trend_svg``). The evaluation ranks the units one level down for a month with
the bulletin's figures, lists a community's grid workers, and links to that month's bulletin workbook.
Which area a person may read is decided by the core (``desk_figures.require_area``), never here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from bot.core.bulletin import Month, WorkerLine
from bot.core.bulletin_render import month_label, unit_level_label
from bot.core.desk_figures import AreaFigures, Evaluation, Overview, RankedUnit
from bot.core.units import Unit, area_label
from bot.desk.charts import trend_svg
from bot.desk.pages import LEVEL_NAMES, Viewer, _e, _option, _select, document, unit_value
from bot.i18n import Translator
from storage.models import Level

# Levels whose units have an overview and an evaluation of their own (a grid has no units below it).
AREA_LEVELS = (Level.DISTRICT, Level.STREET, Level.COMMUNITY)


@dataclass(frozen=True)
class AreaChoices:
    """The areas the viewer may switch to: their own and the streets and communities in them, named."""

    areas: Sequence[tuple[Unit, str]]


def _rate(t: Translator, fraction: float | None) -> str:
    return t.percent(fraction) if fraction is not None else "–"


def _target_mark(t: Translator, rate: float | None, target: float) -> str:
    """Whether satisfaction meets the target, said in words and by colour (a mark a screen reader reads)."""
    if rate is None:
        unrated = t._("no ratings yet")
        return f'<span class="unrated">{_e(unrated)}</span>'
    if rate >= target:
        met = t._("target met")
        return f'<span class="met">✓ {_e(met)}</span>'
    missed = t._("below target")
    return f'<span class="missed">✗ {_e(missed)}</span>'


def _area_name(t: Translator, unit: Unit, name: str) -> str:
    return area_label(t, unit, name) if unit.level is Level.DISTRICT else f"{t._(LEVEL_NAMES[unit.level])} · {name}"


def _list_link(unit: Unit | None, label: str, **more: str) -> str:
    """``label`` linking to the request list filtered to ``unit`` (the whole area when None)."""
    query = {"unit": unit_value(unit)} if unit is not None and unit.level is not Level.DISTRICT else {}
    query.update(more)
    return f'<a href="/requests{"?" + _e(urlencode(query)) if query else ""}">{_e(label)}</a>'


def _area_form(t: Translator, action: str, current: Unit, choices: AreaChoices, month: Month | None = None) -> str:
    """The form that switches area (and month, on the evaluation); none for a single area and no month."""
    if len(choices.areas) < 2 and month is None:
        return ""
    options = [_option(unit_value(unit), _area_name(t, unit, name), unit == current) for unit, name in choices.areas]
    fields = _select("area", t._("Area"), options) if len(choices.areas) > 1 else ""
    if month is not None:
        label = t._("Month")
        fields += (f'<label>{_e(label)}<input type="month" name="month" value="{_e(str(month))}" '
                   f'required></label>')
    show = t._("Show")
    return (f'<form class="filters" method="get" action="{action}">{fields}'
            f'<button type="submit" class="primary">{_e(show)}</button></form>')


def no_units(t: Translator) -> str:
    return t._("There are no units in this area yet.")


# --- the overview -------------------------------------------------------------------------------------------


def _tile(label: str, value: str, extra: str = "", css: str = "") -> str:
    return (f'<div class="tile{" " + css if css else ""}"><span class="label">{_e(label)}</span>'
            f'<span class="value">{value}</span>{extra}</div>')


def _tiles(t: Translator, overview: Overview) -> str:
    totals = overview.totals
    standing, month = totals.standing, totals.month
    target = t._("target {rate}").format(rate=t.percent(overview.target))
    satisfaction = (f'<span class="sub">{_e(target)} · '
                    f'{_target_mark(t, totals.satisfaction_rate, overview.target)}</span>')
    tiles = [
        _tile(t._("Open"), _e(t.number(standing.open))),
        _tile(t._("Overdue"), _list_link(overview.area, t.number(standing.overdue), overdue="1"),
              css="late" if standing.overdue else ""),
        _tile(t._("Due this week"), _e(t.number(standing.due_this_week))),
        _tile(t._("Received this month"), _e(t.number(month.received))),
        _tile(t._("Resolved this month"), _e(t.number(month.resolved))),
        _tile(t._("On-time rate"), _e(_rate(t, totals.on_time_rate))),
        _tile(t._("Satisfaction"), _e(_rate(t, totals.satisfaction_rate)), satisfaction),
    ]
    return f'<section id="figures" class="tiles" data-live>{"".join(tiles)}</section>'


def _unit_row(t: Translator, line: AreaFigures) -> str:
    standing, month = line.standing, line.month
    name = _list_link(line.unit, line.name)
    if line.unit is not None and line.unit.level in AREA_LEVELS:
        drill = urlencode({"area": unit_value(line.unit)})
        label = t._("its overview")
        name += f' <a class="drill" href="/overview?{_e(drill)}">{_e(label)}</a>'
    overdue = (_list_link(line.unit, t.number(standing.overdue), overdue="1") if standing.overdue
               else _e(t.number(0)))
    cells = [
        _e(t.number(standing.open)), overdue, _e(t.number(standing.due_this_week)), _e(t.number(month.received)),
        _e(t.number(month.resolved)), _e(_rate(t, line.on_time_rate)),
        f"{_e(_rate(t, line.satisfaction_rate))} {_target_mark(t, line.satisfaction_rate, line.target)}",
    ]
    numbers = "".join(f'<td class="number">{cell}</td>' for cell in cells)
    return f'<tr class="{"late" if standing.overdue else ""}"><th scope="row">{name}</th>{numbers}</tr>'


def _unit_table(t: Translator, overview: Overview) -> str:
    headings = [unit_level_label(t, overview.unit_level), t._("Open"), t._("Overdue"), t._("Due this week"),
                t._("Received this month"), t._("Resolved this month"), t._("On-time rate"), t._("Satisfaction")]
    head = "".join(f'<th scope="col">{_e(heading)}</th>' for heading in headings)
    rows = "".join(_unit_row(t, line) for line in overview.by_unit)
    if not rows:
        rows = f'<tr><td colspan="{len(headings)}">{_e(no_units(t))}</td></tr>'
    heading = t._("By unit one level down")
    return (f'<section id="units" data-live><h3>{_e(heading)}</h3><div class="table"><table class="figures">'
            f'<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div></section>')


def overview_page(viewer: Viewer, overview: Overview, choices: AreaChoices) -> str:
    """The area's figures now and this month, its units one level down and the 12-month trend."""
    t = viewer.t
    area = area_label(t, overview.area, overview.area_name)
    title = t._("Overview: {area}").format(area=area)
    month = t._("This month: {month}. Requests count toward the unit their grid lies in.").format(
        month=month_label(t, overview.month))
    trend = t._("Trend")
    body = (f'<h2>{_e(title)}</h2>{_area_form(t, "/overview", overview.area, choices)}'
            f'<p class="hint">{_e(month)}</p>{_tiles(t, overview)}{_unit_table(t, overview)}'
            f'<section id="trend" class="chart" data-live><h3>{_e(trend)}</h3>'
            f'{trend_svg(overview.trend, t, overview.target)}</section>')
    return document(t, t._("Overview"), body, viewer, live="list")


# --- the evaluation -----------------------------------------------------------------------------------------


def _days(t: Translator, days: float | None) -> str:
    return t.number(round(days, 1)) if days is not None else "–"


def _ranked_row(t: Translator, ranked: RankedUnit, target: float) -> str:
    figures = ranked.figures
    counts = figures.counts
    rating = figures.average_rating
    cells = [
        t.number(counts.received), t.number(counts.resolved), _rate(t, figures.resolution_rate),
        t.number(counts.resolved_on_time), _rate(t, figures.on_time_rate),
    ]
    numbers = "".join(f'<td class="number">{_e(cell)}</td>' for cell in cells)
    satisfaction = f"{_e(_rate(t, figures.satisfaction_rate))} {_target_mark(t, figures.satisfaction_rate, target)}"
    rest = [t.number(round(rating, 1)) if rating is not None else "–", _days(t, ranked.average_days),
            t.number(counts.reopened), t.number(counts.escalated)]
    tail = "".join(f'<td class="number">{_e(cell)}</td>' for cell in rest)
    return (f'<tr><td class="number rank">{_e(t.number(ranked.rank))}</td><th scope="row">{_e(ranked.line.name)}'
            f'</th>{numbers}<td class="number">{satisfaction}</td>{tail}</tr>')


def _ranking(t: Translator, evaluation: Evaluation, target: float) -> str:
    headings = [t._("Rank"), unit_level_label(t, evaluation.unit_level), t._("Received"), t._("Resolved"),
                t._("Resolution rate"), t._("Resolved on time"), t._("On-time rate"), t._("Satisfaction"),
                t._("Average rating"), t._("Average days to resolve"), t._("Reopened"), t._("Escalated")]
    head = "".join(f'<th scope="col">{_e(heading)}</th>' for heading in headings)
    rows = "".join(_ranked_row(t, ranked, target) for ranked in evaluation.ranking)
    if not rows:
        rows = f'<tr><td colspan="{len(headings)}">{_e(no_units(t))}</td></tr>'
    explained = t._("Ranked by on-time rate, then satisfaction, then fewer days to resolve; a unit without "
                    "a figure comes after the units with one.")
    return (f'<section id="ranking"><p class="hint">{_e(explained)}</p><div class="table"><table class="figures">'
            f'<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div></section>')


def _worker_row(t: Translator, worker: WorkerLine) -> str:
    cells = [t.number(worker.visits), t.number(round(worker.patrol_hours, 1)), t.number(worker.leads),
             t.number(worker.on_the_spot), t.number(worker.handled), t.number(worker.handled_on_time),
             _rate(t, worker.on_time_rate)]
    numbers = "".join(f'<td class="number">{_e(cell)}</td>' for cell in cells)
    return f'<tr><td>{_e(worker.grid_code)}</td><th scope="row">{_e(worker.name)}</th>{numbers}</tr>'


def _workers(t: Translator, workers: Sequence[WorkerLine]) -> str:
    if not workers:
        return ""
    headings = [t._("Grid"), t._("Grid worker"), t._("Visits"), t._("Hours on patrol"), t._("Leads found"),
                t._("Solved on the spot"), t._("Resolved"), t._("Resolved on time"), t._("On-time rate")]
    head = "".join(f'<th scope="col">{_e(heading)}</th>' for heading in headings)
    rows = "".join(_worker_row(t, worker) for worker in workers)
    heading = t._("Grid workers")
    return (f'<section id="workers"><h3>{_e(heading)}</h3><div class="table"><table class="figures">'
            f'<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div></section>')


def evaluation_page(viewer: Viewer, evaluation: Evaluation, area_name: str, target: float,
                    choices: AreaChoices) -> str:
    """The month's ranking of the units one level down, a community's workers, and the bulletin's workbook."""
    t = viewer.t
    title = t._("Evaluation for {month}: {area}").format(
        month=month_label(t, evaluation.month), area=area_label(t, evaluation.area, area_name))
    query = urlencode({"month": str(evaluation.month), "area": unit_value(evaluation.area)})
    download = t._("Download the bulletin's workbook (XLSX)")
    counted = t._("Figures of the requests filed in the month, as in the monthly bulletin.")
    body = (f'<h2>{_e(title)}</h2>{_area_form(t, "/evaluation", evaluation.area, choices, evaluation.month)}'
            f'<p class="hint">{_e(counted)}</p>'
            f'<p><a class="download" href="/evaluation/bulletin.xlsx?{_e(query)}">{_e(download)}</a></p>'
            f'{_ranking(t, evaluation, target)}{_workers(t, evaluation.workers)}')
    return document(t, t._("Evaluation"), body, viewer)
