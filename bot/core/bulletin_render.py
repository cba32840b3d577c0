"""The monthly bulletin for a reader: the chat summary, the chart (PNG) and the workbook (XLSX).

``bulletin_documents`` renders all three in one person's language from a ``Bulletin`` computed once
(``bot.core.bulletin``). matplotlib and openpyxl are imported only when a chart or workbook is drawn.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from typing import Any

from babel.dates import format_skeleton

from bot.core.bulletin import Bulletin, DepartmentLine, Figures, Line, Month, WorkerLine
from bot.core.units import area_label
from bot.core.volunteers import AreaService
from bot.i18n import Translator, translator
from storage.models import Level

# Lines per breakdown in the chat summary and the chart; the workbook always has every line.
SUMMARY_LINES = 8
CHART_BARS = 15
CJK_FONT_FAMILY = "Noto Sans CJK SC"
# The chart's fonts, a fallback list: the CJK face covers Chinese and Latin; DejaVu only catches what it lacks.
CHART_STYLE: dict[Any, Any] = {"font.family": [CJK_FONT_FAMILY, "DejaVu Sans"], "axes.unicode_minus": False}
# A text cell starting with one of these is a formula to a spreadsheet, or becomes one when edited or
# exported as CSV: such cells are marked as quoted text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


# --- words shared by the renderings -------------------------------------------------------------------


def month_label(t: Translator, month: Month) -> str:
    """"October 2026" / "2026年10月"."""
    return format_skeleton("yMMMM", date(month.year, month.month, 1), locale=t.babel_locale)


def unit_level_label(t: Translator, level: Level) -> str:
    """The word for one unit of the breakdown's level, as a column header."""
    labels = {Level.STREET: t._("Street"), Level.COMMUNITY: t._("Community"), Level.GRID: t._("Grid")}
    return labels[level]


def unit_breakdown_heading(t: Translator, level: Level) -> str:
    headings = {Level.STREET: t._("By street"), Level.COMMUNITY: t._("By community"), Level.GRID: t._("By grid")}
    return headings[level]


def bulletin_title(t: Translator, bulletin: Bulletin) -> str:
    return t._("Monthly bulletin for {month}: {area}").format(
        month=month_label(t, bulletin.month), area=area_label(t, bulletin.area, bulletin.area_name)
    )


def _percent(t: Translator, fraction: float | None) -> str:
    return t.percent(fraction) if fraction is not None else "–"


def _duration(t: Translator, delta: timedelta | None) -> str:
    return t.duration(delta) if delta is not None else "–"


def _rating(t: Translator, figures: Figures) -> str:
    average = figures.average_rating
    return t.number(round(average, 1)) if average is not None else "–"


# --- chat summary -----------------------------------------------------------------------------------------


def _summary_figures(t: Translator, figures: Figures) -> list[str]:
    counts = figures.counts
    return [
        t.n_("{count} request received", "{count} requests received", counts.received).format(
            count=t.number(counts.received)
        ),
        t._("Resolved: {resolved} ({rate}), on time: {on_time}").format(
            resolved=t.number(counts.resolved),
            rate=_percent(t, figures.resolution_rate),
            on_time=_percent(t, figures.on_time_rate),
        ),
        t._("Median time to accept: {accept}; to resolve: {resolve}").format(
            accept=_duration(t, figures.median_accept), resolve=_duration(t, figures.median_resolve)
        ),
        t.n_(
            "Average rating {average} from {count} rating; satisfied: {satisfied}",
            "Average rating {average} from {count} ratings; satisfied: {satisfied}",
            counts.ratings,
        ).format(
            average=_rating(t, figures),
            count=t.number(counts.ratings),
            satisfied=_percent(t, figures.satisfaction_rate),
        ),
        t._("Reopened: {reopened}; escalated: {escalated}").format(
            reopened=t.number(counts.reopened), escalated=t.number(counts.escalated)
        ),
    ]


def _summary_line(t: Translator, line: Line) -> str:
    return t._("• {name}: {received} received, {resolved} resolved, {on_time} on time").format(
        name=line.label(t.locale),
        received=t.number(line.figures.counts.received),
        resolved=t.number(line.figures.counts.resolved),
        on_time=_percent(t, line.figures.on_time_rate),
    )


def _summary_section(t: Translator, heading: str, lines: Sequence[Line]) -> list[str]:
    """A heading and the busiest lines; the rest are counted, not listed, to keep within a chat message."""
    busiest = sorted(lines, key=lambda line: -line.figures.counts.received)
    shown = [_summary_line(t, line) for line in busiest[:SUMMARY_LINES]]
    hidden = len(busiest) - len(shown)
    if hidden > 0:
        shown.append(t.n_("…and {count} more", "…and {count} more", hidden).format(count=t.number(hidden)))
    return ["", heading, *shown]


def _rounds_section(t: Translator, workers: Sequence[WorkerLine]) -> list[str]:
    """The grid workers' rounds in the month, summed over the area's workers."""
    handled = sum(line.handled for line in workers)
    on_time = sum(line.handled_on_time for line in workers)
    return [
        "",
        t._("Grid workers' rounds ({count} workers)").format(count=t.number(len(workers))),
        t._("Visits: {visits}; patrol hours: {hours}").format(
            visits=t.number(sum(line.visits for line in workers)),
            hours=t.number(round(sum(line.patrol_hours for line in workers), 1)),
        ),
        t._("Leads: {leads}, solved on the spot: {spot}").format(
            leads=t.number(sum(line.leads for line in workers)),
            spot=t.number(sum(line.on_the_spot for line in workers)),
        ),
        t._("Requests handled: {handled}, on time: {on_time}").format(
            handled=t.number(handled), on_time=_percent(t, on_time / handled if handled else None)
        ),
    ]


def _department_section(t: Translator, departments: Sequence[DepartmentLine]) -> list[str]:
    """The departments handed work this month (分流), the busiest first."""
    busiest = sorted(departments, key=lambda line: -line.received)
    shown = [
        t._("• {name}: {received} handed over, {resolved} done, {on_time} on time").format(
            name=line.name, received=t.number(line.received), resolved=t.number(line.resolved),
            on_time=_percent(t, line.on_time_rate),
        )
        for line in busiest[:SUMMARY_LINES]
    ]
    hidden = len(busiest) - len(shown)
    if hidden > 0:
        shown.append(t.n_("…and {count} more", "…and {count} more", hidden).format(count=t.number(hidden)))
    return ["", t._("By department"), *shown]


def render_summary(t: Translator, bulletin: Bulletin) -> str:
    """The bulletin as a short chat message in ``t``'s language (at most a few dozen lines)."""
    lines = [bulletin_title(t, bulletin), *_summary_figures(t, bulletin.totals)]
    rounds = _rounds_section(t, bulletin.workers) if bulletin.workers else []
    if bulletin.totals.counts.received == 0:
        return "\n".join([*lines, "", t._("No requests were filed in this area in this month."), *rounds])
    lines += _summary_section(
        t, unit_breakdown_heading(t, bulletin.unit_level), bulletin.by_unit
    )
    lines += _summary_section(t, t._("By category"), bulletin.by_category)
    if bulletin.by_place:
        lines += _summary_section(t, t._("By place"), bulletin.by_place)
    if bulletin.by_department:
        lines += _department_section(t, bulletin.by_department)
    lines += rounds
    lines += ["", t._("The chart and the spreadsheet with every figure follow.")]
    return "\n".join(lines)


# --- chart ------------------------------------------------------------------------------------------------


@cache
def cjk_font_path() -> str:
    """The bundled Noto Sans CJK collection, registered with matplotlib (once) so Chinese labels render."""
    import noto_cjk_sans_otc
    from matplotlib import font_manager

    path = str(noto_cjk_sans_otc.FONT_PATH)
    font_manager.fontManager.addfont(path)
    return path


def cjk_font() -> Any:
    """The font properties of the Simplified Chinese face of the bundled collection."""
    from matplotlib import font_manager

    cjk_font_path()
    return font_manager.FontProperties(family=CJK_FONT_FAMILY)


def _bar_panel(axes: Any, t: Translator, title: str, lines: Sequence[Line]) -> None:
    """Received and resolved side by side for the busiest lines, busiest on top, each bar with its value."""
    shown = sorted(lines, key=lambda line: -line.figures.counts.received)[:CHART_BARS][::-1]
    positions = range(len(shown))
    received = [line.figures.counts.received for line in shown]
    resolved = [line.figures.counts.resolved for line in shown]
    for offset, values, label, color in ((0.2, received, t._("Received"), "#4c72b0"),
                                          (-0.2, resolved, t._("Resolved"), "#55a868")):
        bars = axes.barh([p + offset for p in positions], values, height=0.4, label=label, color=color)
        axes.bar_label(bars, labels=[t.number(value) for value in values], padding=3, fontsize="small")
    axes.set_yticks(list(positions), [line.label(t.locale) for line in shown])
    axes.set_title(title, loc="left")
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.margins(x=0.1)  # room for the value of the longest bar
    if not shown:
        axes.text(0.5, 0.5, t._("No requests"), ha="center", va="center", transform=axes.transAxes)


def _rates_line(t: Translator, figures: Figures) -> str:
    return t._("Resolved on time: {on_time} · satisfied: {satisfied}").format(
        on_time=_percent(t, figures.on_time_rate), satisfied=_percent(t, figures.satisfaction_rate)
    )


def chart_figure(bulletin: Bulletin, locale: str) -> Any:
    """The chart as a matplotlib ``Figure``: the title with the area's rates, one legend above both panels
    (outside them, so it never covers a bar), received and resolved by unit and by category."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    t = translator(locale)
    rows = min(len(bulletin.by_unit), CHART_BARS) + min(len(bulletin.by_category), CHART_BARS)
    figure = Figure(figsize=(9, 3.4 + 0.35 * max(rows, 4)), layout="constrained")
    FigureCanvasAgg(figure)
    figure.suptitle(f"{bulletin_title(t, bulletin)}\n{_rates_line(t, bulletin.totals)}")
    by_unit, by_category = figure.subplots(2, 1)
    _bar_panel(by_unit, t, unit_breakdown_heading(t, bulletin.unit_level), bulletin.by_unit)
    _bar_panel(by_category, t, t._("By category"), bulletin.by_category)
    if bulletin.by_unit or bulletin.by_category:
        figure.legend(*by_unit.get_legend_handles_labels(), loc="outside upper right", ncols=2, frameon=False)
    return figure


def render_chart(bulletin: Bulletin, locale: str) -> bytes:
    """A PNG of received and resolved requests by unit and by category, labelled in ``locale``."""
    from matplotlib import rc_context

    cjk_font_path()
    with rc_context(CHART_STYLE):
        buffer = io.BytesIO()
        chart_figure(bulletin, locale).savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


# --- workbook ---------------------------------------------------------------------------------------------

PERCENT_FORMAT = "0.0%"
HOURS_FORMAT = "0.0"
RATING_FORMAT = "0.00"


def _hours(delta: timedelta | None) -> float | None:
    return delta.total_seconds() / 3600 if delta is not None else None


def _figure_columns(t: Translator) -> list[tuple[str, str | None]]:
    """Column headers of the figures and their number formats, in the order ``_figure_values`` gives."""
    return [
        (t._("Received"), None),
        (t._("Resolved"), None),
        (t._("Resolution rate"), PERCENT_FORMAT),
        (t._("Resolved on time"), None),
        (t._("On-time rate"), PERCENT_FORMAT),
        (t._("Median hours to accept"), HOURS_FORMAT),
        (t._("Median hours to resolve"), HOURS_FORMAT),
        (t._("Ratings"), None),
        (t._("Average rating"), RATING_FORMAT),
        (t._("Satisfaction (4-5 stars)"), PERCENT_FORMAT),
        (t._("Reopened"), None),
        (t._("Escalated"), None),
    ]


def _figure_values(figures: Figures) -> list[float | int | None]:
    counts = figures.counts
    return [
        counts.received,
        counts.resolved,
        figures.resolution_rate,
        counts.resolved_on_time,
        figures.on_time_rate,
        _hours(figures.median_accept),
        _hours(figures.median_resolve),
        counts.ratings,
        figures.average_rating,
        figures.satisfaction_rate,
        counts.reopened,
        counts.escalated,
    ]


def _sheet_title(text: str) -> str:
    """Excel forbids some characters in sheet titles and allows 31 characters."""
    return re.sub(r"[\[\]:*?/\\]", " ", text)[:31]


def _append(sheet: Any, values: Sequence[str | float | int | None]) -> None:
    """Append a row whose strings are text, never formulas: names come from imported data."""
    sheet.append(list(values))
    for cell in sheet[sheet.max_row]:
        if isinstance(cell.value, str):
            cell.data_type = "s"
            cell.quotePrefix = cell.value.startswith(FORMULA_STARTS)


def _write_summary_sheet(sheet: Any, t: Translator, bulletin: Bulletin) -> None:
    sheet.title = _sheet_title(t._("Summary"))
    _append(sheet, [bulletin_title(t, bulletin)])
    _append(sheet, [t._("Month"), str(bulletin.month)])
    _append(sheet, [t._("Area"), area_label(t, bulletin.area, bulletin.area_name)])
    sheet.append([])
    for (header, number_format), value in zip(_figure_columns(t), _figure_values(bulletin.totals), strict=True):
        _append(sheet, [header, value])
        if number_format is not None:
            sheet.cell(row=sheet.max_row, column=2).number_format = number_format
    sheet.column_dimensions["A"].width = 28
    sheet.column_dimensions["B"].width = 16


def _write_breakdown_sheet(sheet: Any, t: Translator, title: str, name_header: str, lines: Sequence[Line]) -> None:
    from openpyxl.styles import Font

    sheet.title = _sheet_title(title)
    columns = _figure_columns(t)
    _append(sheet, [t._("Code"), name_header, *(header for header, _ in columns)])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for line in lines:
        _append(sheet, [line.code, line.label(t.locale), *_figure_values(line.figures)])
        for offset, (_, number_format) in enumerate(columns):
            if number_format is not None:
                sheet.cell(row=sheet.max_row, column=3 + offset).number_format = number_format
    sheet.freeze_panes = "C2"
    sheet.column_dimensions["B"].width = 24


def _write_volunteer_sheet(sheet: Any, t: Translator, service: AreaService) -> None:
    """Hours and ratings of the month's volunteer service, by volunteer and then by partner unit."""
    from openpyxl.styles import Font

    sheet.title = _sheet_title(t._("Volunteer service"))
    _append(sheet, [t._("By"), t._("Name"), t._("Hours"), t._("Slots served"), t._("No-shows"), t._("Ratings"),
                    t._("Average rating"), t._("Residents' ratings"), t._("Residents' average")])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    groups = ((t._("Volunteer"), service.by_volunteer), (t._("Partner unit"), service.by_partner_unit))
    for kind, rows in groups:
        for totals in rows:
            _append(sheet, [kind, totals.name or t._("none"), totals.hours, totals.served, totals.no_shows,
                            totals.ratings, totals.average, totals.resident_ratings, totals.resident_average])
    sheet.column_dimensions["B"].width = 24


def _write_workers_sheet(sheet: Any, t: Translator, workers: Sequence[WorkerLine]) -> None:
    """A row per grid worker: their rounds and the requests they handled in the month."""
    from openpyxl.styles import Font

    sheet.title = _sheet_title(t._("By worker"))
    _append(sheet, [
        t._("Grid"), t._("Worker"), t._("Visits"), t._("Patrol hours"), t._("Leads"), t._("Solved on the spot"),
        t._("Requests handled"), t._("Handled on time"), t._("On-time rate"),
    ])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for line in workers:
        _append(sheet, [
            line.grid_code, line.name, line.visits, line.patrol_hours, line.leads, line.on_the_spot, line.handled,
            line.handled_on_time, line.on_time_rate,
        ])
        sheet.cell(row=sheet.max_row, column=4).number_format = HOURS_FORMAT
        sheet.cell(row=sheet.max_row, column=9).number_format = PERCENT_FORMAT
    sheet.freeze_panes = "C2"
    sheet.column_dimensions["B"].width = 16


def _write_departments_sheet(sheet: Any, t: Translator, departments: Sequence[DepartmentLine]) -> None:
    """A row per department handed work in the month."""
    from openpyxl.styles import Font

    sheet.title = _sheet_title(t._("By department"))
    _append(sheet, [
        t._("Code"), t._("Department"), t._("Handed over"), t._("Finished"), t._("Finished on time"),
        t._("On-time rate"), t._("Given back"), t._("Average days to do"),
    ])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for line in departments:
        days = round(line.days_to_resolve, 1) if line.days_to_resolve is not None else None
        _append(sheet, [
            line.code, line.name, line.received, line.resolved, line.resolved_on_time, line.on_time_rate,
            line.handed_back, days,
        ])
        sheet.cell(row=sheet.max_row, column=6).number_format = PERCENT_FORMAT
    sheet.freeze_panes = "C2"
    sheet.column_dimensions["B"].width = 24


def render_workbook(t: Translator, bulletin: Bulletin) -> bytes:
    """An XLSX with the sheets summary, by category, by unit, by place (when places received requests), by
    department (when departments were handed work), (for areas with communities) volunteer service, and by
    grid worker, headers in ``t``'s language."""
    from openpyxl import Workbook

    workbook = Workbook()
    _write_summary_sheet(workbook.active, t, bulletin)
    _write_breakdown_sheet(
        workbook.create_sheet(), t, t._("By category"), t._("Category"), bulletin.by_category
    )
    _write_breakdown_sheet(
        workbook.create_sheet(),
        t,
        unit_breakdown_heading(t, bulletin.unit_level),
        unit_level_label(t, bulletin.unit_level),
        bulletin.by_unit,
    )
    if bulletin.by_place:
        _write_breakdown_sheet(workbook.create_sheet(), t, t._("By place"), t._("Place"), bulletin.by_place)
    if bulletin.by_department:
        _write_departments_sheet(workbook.create_sheet(), t, bulletin.by_department)
    if bulletin.volunteer_service is not None:
        _write_volunteer_sheet(workbook.create_sheet(), t, bulletin.volunteer_service)
    _write_workers_sheet(workbook.create_sheet(), t, bulletin.workers)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def file_stem(bulletin: Bulletin) -> str:
    return f"bulletin-{bulletin.month}"


# --- the three documents ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Document:
    file_name: str
    content: bytes


@dataclass(frozen=True)
class BulletinDocuments:
    """A bulletin as one reader receives it: the title, the chat summary, the chart and the workbook."""

    title: str
    summary: str
    chart: Document
    workbook: Document


def bulletin_documents(t: Translator, bulletin: Bulletin) -> BulletinDocuments:
    """The summary, chart and workbook of ``bulletin`` in ``t``'s language, for ``/report``, the scheduler
    and ``gridbot report``."""
    stem = file_stem(bulletin)
    return BulletinDocuments(
        title=bulletin_title(t, bulletin),
        summary=render_summary(t, bulletin),
        chart=Document(f"{stem}.png", render_chart(bulletin, t.locale)),
        workbook=Document(f"{stem}.xlsx", render_workbook(t, bulletin)),
    )
