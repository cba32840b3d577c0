"""The monthly bulletin (月通报): how an area handled the requests residents filed in one month.

A bulletin covers the requests *filed* in the month (in the deployment's time zone) in one area: the whole
district, a street or a community. Its figures:

* received: every request filed in the month, withdrawn ones included;
* resolved: of those, the ones resolved before the month ended and still resolved or closed now (a request
  reopened and not yet resolved again does not count);
* resolved on time: of the resolved, those resolved no later than their due time;
* median time to accept / to resolve: from filing to acceptance (accepted before the month ended) and from
  filing to resolution (of the resolved);
* average rating and satisfaction: over the star ratings residents gave these requests so far; satisfied
  means 4 or 5 stars;
* reopened / escalated: requests with at least one such event.

The same figures are broken down by category and by the unit one level below the area (district → streets,
street → communities, community → grids). Counts come from one ``GROUP BY`` query over the month's rows
(found through the ``created_at`` index); medians from a second query that fetches only the durations, as
numbers. Nothing loads a ``Request`` object, so a month of a district with a million requests stays fast.

The bulletin is computed once and rendered per reader: ``render_summary`` (chat text), ``render_chart`` (PNG)
and ``render_workbook`` (XLSX), each in the reader's language.
"""

from __future__ import annotations

import io
import re
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_skeleton
from sqlalchemy import ColumnElement, Float, Select, and_, case, exists, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from bot.i18n import Translator, translator
from storage.models import (
    Building,
    Category,
    Community,
    EventKind,
    Grid,
    Level,
    Person,
    Rating,
    Request,
    RequestEvent,
    RequestStatus,
    Role,
    StaffRole,
    Street,
)

DISTRICT_UNIT_ID = 0
MONTH_PATTERN = re.compile(r"(\d{4})-(\d{2})")
SATISFIED_STARS = 4
# Lines per breakdown in the chat summary and the chart; the workbook always has every line.
SUMMARY_LINES = 8
CHART_BARS = 15
CJK_FONT_FAMILY = "Noto Sans CJK SC"

AREA_LEVELS = (Level.DISTRICT, Level.STREET, Level.COMMUNITY)
LEVEL_BELOW = {Level.DISTRICT: Level.STREET, Level.STREET: Level.COMMUNITY, Level.COMMUNITY: Level.GRID}
AREA_OF_ROLE = {Role.DISTRICT: Level.DISTRICT, Role.STREET: Level.STREET, Role.COMMUNITY: Level.COMMUNITY}


# --- months and areas -----------------------------------------------------------------------------------


class BadMonth(ValueError):
    """A month that is not written ``YYYY-MM`` or does not exist."""


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        """``"2026-10"`` -> Month(2026, 10); raises ``BadMonth``."""
        match = MONTH_PATTERN.fullmatch(text.strip())
        if match is None:
            raise BadMonth(text)
        year, month = int(match[1]), int(match[2])
        if not (1 <= month <= 12 and year >= 1970):
            raise BadMonth(text)
        return cls(year, month)

    @classmethod
    def containing(cls, moment: datetime, timezone: str) -> Month:
        local = moment.astimezone(ZoneInfo(timezone))
        return cls(local.year, local.month)

    @classmethod
    def previous(cls, moment: datetime, timezone: str) -> Month:
        """The month before the one ``moment`` falls in, in ``timezone``: the default bulletin month."""
        return cls.containing(moment, timezone).shifted(-1)

    def shifted(self, months: int) -> Month:
        index = self.year * 12 + self.month - 1 + months
        return Month(index // 12, index % 12 + 1)

    def bounds(self, timezone: str) -> tuple[datetime, datetime]:
        """The month's first instant and the next month's first instant, in UTC."""
        zone = ZoneInfo(timezone)
        following = self.shifted(1)
        start = datetime(self.year, self.month, 1, tzinfo=zone)
        end = datetime(following.year, following.month, 1, tzinfo=zone)
        return start.astimezone(UTC), end.astimezone(UTC)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


@dataclass(frozen=True)
class Area:
    """What a bulletin covers: the district (unit id 0), a street or a community."""

    level: Level
    unit_id: int = DISTRICT_UNIT_ID

    def __post_init__(self) -> None:
        if self.level not in AREA_LEVELS:
            raise ValueError(f"a bulletin covers the district, a street or a community, not a {self.level}")

    @classmethod
    def district(cls) -> Area:
        return cls(Level.DISTRICT, DISTRICT_UNIT_ID)

    @classmethod
    def of_role(cls, role: StaffRole) -> Area | None:
        """The area a staff role answers for; None for grid workers."""
        level = AREA_OF_ROLE.get(role.role)
        if level is None:
            return None
        return cls(level, DISTRICT_UNIT_ID if level is Level.DISTRICT else role.unit_id)


def areas_of(person: Person) -> list[Area]:
    """The areas whose bulletin a person receives, from the district down."""
    areas = {area for role in person.roles if (area := Area.of_role(role)) is not None}
    return sorted(areas, key=lambda area: (AREA_LEVELS.index(area.level), area.unit_id))


def area_by_code(session: Session, street_code: str | None = None, community_code: str | None = None) -> Area:
    """The area named by a street or community code, or the district when neither is given."""
    if community_code:
        community_id = session.scalar(select(Community.id).where(Community.code == community_code))
        if community_id is None:
            raise LookupError(f"community {community_code!r} does not exist")
        return Area(Level.COMMUNITY, community_id)
    if street_code:
        street_id = session.scalar(select(Street.id).where(Street.code == street_code))
        if street_id is None:
            raise LookupError(f"street {street_code!r} does not exist")
        return Area(Level.STREET, street_id)
    return Area.district()


def area_name(session: Session, area: Area) -> str:
    """The street's or community's name; empty for the district, which has no row of its own."""
    if area.level is Level.STREET:
        return session.scalar(select(Street.name).where(Street.id == area.unit_id)) or ""
    if area.level is Level.COMMUNITY:
        return session.scalar(select(Community.name).where(Community.id == area.unit_id)) or ""
    return ""


def bulletin_recipients(session: Session) -> list[tuple[Person, Area]]:
    """Every reachable community, street and district staff member with the area of each of their roles.

    A person with several such roles appears once per area. For the scheduler that sends the bulletins on
    the first of the month.
    """
    query = (
        select(Person)
        .join(StaffRole, StaffRole.person_id == Person.id)
        .where(StaffRole.role.in_(tuple(AREA_OF_ROLE)), Person.unreachable.is_(False))
        .order_by(Person.id)
    )
    return [(person, area) for person in session.scalars(query).unique() for area in areas_of(person)]


# --- figures ----------------------------------------------------------------------------------------------


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True)
class Counts:
    """The additive part of the figures: sums over requests, so groups can be added together."""

    received: int = 0
    resolved: int = 0
    resolved_on_time: int = 0
    ratings: int = 0
    stars_total: int = 0
    satisfied: int = 0
    reopened: int = 0
    escalated: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            self.received + other.received,
            self.resolved + other.resolved,
            self.resolved_on_time + other.resolved_on_time,
            self.ratings + other.ratings,
            self.stars_total + other.stars_total,
            self.satisfied + other.satisfied,
            self.reopened + other.reopened,
            self.escalated + other.escalated,
        )


@dataclass(frozen=True)
class Figures:
    """The figures of one group of requests: the whole area, one category or one unit."""

    counts: Counts
    median_accept: timedelta | None
    median_resolve: timedelta | None

    @property
    def resolution_rate(self) -> float | None:
        return _ratio(self.counts.resolved, self.counts.received)

    @property
    def on_time_rate(self) -> float | None:
        return _ratio(self.counts.resolved_on_time, self.counts.resolved)

    @property
    def average_rating(self) -> float | None:
        return self.counts.stars_total / self.counts.ratings if self.counts.ratings else None

    @property
    def satisfaction_rate(self) -> float | None:
        return _ratio(self.counts.satisfied, self.counts.ratings)


@dataclass(frozen=True)
class Line:
    """One line of a breakdown: a category or a unit, with its figures."""

    code: str
    name: str
    figures: Figures
    # Categories are named per locale; units have one name.
    names: dict[str, str] = field(default_factory=dict)

    def label(self, locale: str) -> str:
        return self.names.get(locale) or self.name


@dataclass(frozen=True)
class Bulletin:
    area: Area
    area_name: str
    month: Month
    totals: Figures
    by_category: tuple[Line, ...]
    # The units one level below the area, every one of them, including those that received nothing.
    unit_level: Level
    by_unit: tuple[Line, ...]


# --- queries -----------------------------------------------------------------------------------------------


class _SecondsBetween(FunctionElement[float]):
    """``later - earlier`` in seconds, as a number computed by the database."""

    type = Float()
    inherit_cache = True
    name = "seconds_between"


@compiles(_SecondsBetween, "sqlite")
def _seconds_between_sqlite(element: _SecondsBetween, compiler: SQLCompiler, **kw: Any) -> str:
    later, earlier = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"((julianday({later}) - julianday({earlier})) * 86400.0)"


@compiles(_SecondsBetween)
def _seconds_between_default(element: _SecondsBetween, compiler: SQLCompiler, **kw: Any) -> str:
    later, earlier = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"EXTRACT(EPOCH FROM ({later} - {earlier}))"


GroupKey = tuple[int, int]  # (category id, id of the unit one level below the area)


@dataclass(frozen=True)
class _MonthQuery:
    """The month's requests in an area, as the pieces every bulletin query shares."""

    area: Area
    start: datetime
    end: datetime

    @property
    def child_unit(self) -> ColumnElement[int]:
        """The id of the unit one level below the area that each request's building belongs to."""
        columns: dict[Level, ColumnElement[int]] = {
            Level.DISTRICT: Community.street_id.expression,
            Level.STREET: Grid.community_id.expression,
            Level.COMMUNITY: Building.grid_id.expression,
        }
        return columns[self.area.level]

    def where(self) -> list[ColumnElement[bool]]:
        # The created_at range comes first: its index narrows a million rows to the month's.
        conditions = [Request.created_at >= self.start, Request.created_at < self.end]
        if self.area.level is Level.STREET:
            conditions.append(Community.street_id == self.area.unit_id)
        elif self.area.level is Level.COMMUNITY:
            conditions.append(Grid.community_id == self.area.unit_id)
        return conditions

    def select_from_requests(self, *columns: ColumnElement[Any]) -> Select[Any]:
        """``SELECT category_id, child unit id, *columns`` over the month's requests in the area."""
        return (
            select(Request.category_id, self.child_unit)
            .add_columns(*columns)
            .join(Building, Building.id == Request.building_id)
            .join(Grid, Grid.id == Building.grid_id)
            .join(Community, Community.id == Grid.community_id)
            .where(*self.where())
        )

    @property
    def resolved(self) -> ColumnElement[bool]:
        return and_(
            Request.resolved_at.is_not(None),
            Request.resolved_at < self.end,
            Request.status.in_((RequestStatus.RESOLVED, RequestStatus.CLOSED)),
        )

    @property
    def accepted(self) -> ColumnElement[bool]:
        return and_(Request.accepted_at.is_not(None), Request.accepted_at < self.end)


def _has_event(kind: EventKind) -> ColumnElement[bool]:
    return exists().where(RequestEvent.request_id == Request.id, RequestEvent.kind == kind)


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _group_counts(session: Session, query: _MonthQuery) -> dict[GroupKey, Counts]:
    """One GROUP BY over the month's requests: the counts per (category, child unit)."""
    statement = (
        query.select_from_requests(
            func.count(),
            _count_if(query.resolved),
            _count_if(and_(query.resolved, Request.resolved_at <= Request.due_at)),
            func.count(Rating.stars),
            func.coalesce(func.sum(Rating.stars), 0),
            _count_if(Rating.stars >= SATISFIED_STARS),
            _count_if(_has_event(EventKind.REOPENED)),
            _count_if(_has_event(EventKind.ESCALATED)),
        )
        .outerjoin(Rating, Rating.request_id == Request.id)
        .group_by(Request.category_id, query.child_unit)
    )
    return {(row[0], row[1]): Counts(*(int(value) for value in row[2:])) for row in session.execute(statement)}


Durations = dict[GroupKey, tuple[list[float], list[float]]]


def _group_durations(session: Session, query: _MonthQuery) -> Durations:
    """Seconds to accept and to resolve of each of the month's requests, per group, fetched as numbers."""
    statement = query.select_from_requests(
        case((query.accepted, _SecondsBetween(Request.accepted_at, Request.created_at)), else_=None),
        case((query.resolved, _SecondsBetween(Request.resolved_at, Request.created_at)), else_=None),
    )
    durations: Durations = defaultdict(lambda: ([], []))
    for category_id, unit_id, accept, resolve in session.execute(statement):
        to_accept, to_resolve = durations[(category_id, unit_id)]
        # Whole seconds: SQLite's julianday arithmetic leaves microsecond noise nobody reads a bulletin for.
        if accept is not None:
            to_accept.append(round(accept))
        if resolve is not None:
            to_resolve.append(round(resolve))
    return durations


def _median(seconds: Sequence[float]) -> timedelta | None:
    return timedelta(seconds=statistics.median(seconds)) if seconds else None


def _figures(keys: Iterable[GroupKey], counts: dict[GroupKey, Counts], durations: Durations) -> Figures:
    """Figures of the union of some groups: counts add up, medians are taken over the pooled durations."""
    total = Counts()
    to_accept: list[float] = []
    to_resolve: list[float] = []
    for key in keys:
        total += counts.get(key, Counts())
        accept, resolve = durations.get(key, ([], []))
        to_accept += accept
        to_resolve += resolve
    return Figures(total, _median(to_accept), _median(to_resolve))


def _child_units(session: Session, area: Area) -> list[tuple[int, str, str]]:
    """(id, code, name) of every unit one level below the area, by code."""
    model: type[Street] | type[Community] | type[Grid]
    if area.level is Level.DISTRICT:
        statement = select(Street.id, Street.code, Street.name)
        model = Street
    elif area.level is Level.STREET:
        statement = select(Community.id, Community.code, Community.name).where(Community.street_id == area.unit_id)
        model = Community
    else:
        statement = select(Grid.id, Grid.code, Grid.name).where(Grid.community_id == area.unit_id)
        model = Grid
    return [(unit_id, code, name) for unit_id, code, name in session.execute(statement.order_by(model.code))]


def _category_lines(session: Session, counts: dict[GroupKey, Counts], durations: Durations) -> tuple[Line, ...]:
    """A line per category that received requests this month, in the categories' own order."""
    category_ids = {category_id for category_id, _ in counts}
    categories = session.scalars(
        select(Category).where(Category.id.in_(category_ids)).order_by(Category.sort_order, Category.code)
    )
    return tuple(
        Line(
            category.code,
            category.name("zh_CN"),
            _figures([key for key in counts if key[0] == category.id], counts, durations),
            {str(locale): str(name) for locale, name in category.names.items()},
        )
        for category in categories
    )


def _unit_lines(
    units: list[tuple[int, str, str]], counts: dict[GroupKey, Counts], durations: Durations
) -> tuple[Line, ...]:
    return tuple(
        Line(code, name, _figures([key for key in counts if key[1] == unit_id], counts, durations))
        for unit_id, code, name in units
    )


def compute_bulletin(session: Session, area: Area, month: Month | str, timezone: str) -> Bulletin:
    """The bulletin of ``area`` for the requests filed in ``month`` (``YYYY-MM``) in ``timezone``."""
    month = month if isinstance(month, Month) else Month.parse(month)
    query = _MonthQuery(area, *month.bounds(timezone))
    counts = _group_counts(session, query)
    durations = _group_durations(session, query)
    return Bulletin(
        area=area,
        area_name=area_name(session, area),
        month=month,
        totals=_figures(counts, counts, durations),
        by_category=_category_lines(session, counts, durations),
        unit_level=LEVEL_BELOW[area.level],
        by_unit=_unit_lines(_child_units(session, area), counts, durations),
    )


# --- words shared by the renderings -------------------------------------------------------------------


def month_label(t: Translator, month: Month) -> str:
    """"October 2026" / "2026年10月"."""
    return format_skeleton("yMMMM", date(month.year, month.month, 1), locale=t.babel_locale)


def area_label(t: Translator, bulletin: Bulletin) -> str:
    return bulletin.area_name or t._("the whole district")


def unit_level_label(t: Translator, level: Level) -> str:
    """The word for one unit of the breakdown's level, as a column header."""
    labels = {Level.STREET: t._("Street"), Level.COMMUNITY: t._("Community"), Level.GRID: t._("Grid")}
    return labels[level]


def unit_breakdown_heading(t: Translator, level: Level) -> str:
    headings = {Level.STREET: t._("By street"), Level.COMMUNITY: t._("By community"), Level.GRID: t._("By grid")}
    return headings[level]


def bulletin_title(t: Translator, bulletin: Bulletin) -> str:
    return t._("Monthly bulletin for {month}: {area}").format(
        month=month_label(t, bulletin.month), area=area_label(t, bulletin)
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


def render_summary(t: Translator, bulletin: Bulletin) -> str:
    """The bulletin as a short chat message in ``t``'s language (at most a few dozen lines)."""
    lines = [bulletin_title(t, bulletin), *_summary_figures(t, bulletin.totals)]
    if bulletin.totals.counts.received == 0:
        return "\n".join([*lines, "", t._("No requests were filed in this area in this month.")])
    lines += _summary_section(
        t, unit_breakdown_heading(t, bulletin.unit_level), bulletin.by_unit
    )
    lines += _summary_section(t, t._("By category"), bulletin.by_category)
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
    """Received and resolved side by side for the busiest lines, busiest on top."""
    shown = sorted(lines, key=lambda line: -line.figures.counts.received)[:CHART_BARS][::-1]
    positions = range(len(shown))
    received = [line.figures.counts.received for line in shown]
    resolved = [line.figures.counts.resolved for line in shown]
    axes.barh([p + 0.2 for p in positions], received, height=0.4, label=t._("Received"), color="#4c72b0")
    axes.barh([p - 0.2 for p in positions], resolved, height=0.4, label=t._("Resolved"), color="#55a868")
    axes.set_yticks(list(positions), [line.label(t.locale) for line in shown])
    axes.set_title(title, loc="left")
    axes.xaxis.get_major_locator().set_params(integer=True)
    if shown:
        axes.legend(loc="lower right")
    else:
        axes.text(0.5, 0.5, t._("No requests"), ha="center", va="center", transform=axes.transAxes)


def render_chart(bulletin: Bulletin, locale: str) -> bytes:
    """A PNG of received and resolved requests by unit and by category, labelled in ``locale``."""
    from matplotlib import rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    t = translator(locale)
    cjk_font_path()
    rows = min(len(bulletin.by_unit), CHART_BARS) + min(len(bulletin.by_category), CHART_BARS)
    # Fallback list: the CJK face covers Chinese and Latin; DejaVu only catches what it lacks.
    with rc_context({"font.family": [CJK_FONT_FAMILY, "DejaVu Sans"], "axes.unicode_minus": False}):
        figure = Figure(figsize=(9, 3 + 0.35 * max(rows, 4)), layout="constrained")
        FigureCanvasAgg(figure)
        figure.suptitle(bulletin_title(t, bulletin))
        by_unit, by_category = figure.subplots(2, 1)
        _bar_panel(by_unit, t, unit_breakdown_heading(t, bulletin.unit_level), bulletin.by_unit)
        _bar_panel(by_category, t, t._("By category"), bulletin.by_category)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=110)
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


def _write_summary_sheet(sheet: Any, t: Translator, bulletin: Bulletin) -> None:
    sheet.title = _sheet_title(t._("Summary"))
    sheet.append([bulletin_title(t, bulletin)])
    sheet.append([t._("Month"), str(bulletin.month)])
    sheet.append([t._("Area"), area_label(t, bulletin)])
    sheet.append([])
    for (header, number_format), value in zip(_figure_columns(t), _figure_values(bulletin.totals), strict=True):
        sheet.append([header, value])
        if number_format is not None:
            sheet.cell(row=sheet.max_row, column=2).number_format = number_format
    sheet.column_dimensions["A"].width = 28
    sheet.column_dimensions["B"].width = 16


def _write_breakdown_sheet(sheet: Any, t: Translator, title: str, name_header: str, lines: Sequence[Line]) -> None:
    from openpyxl.styles import Font

    sheet.title = _sheet_title(title)
    columns = _figure_columns(t)
    sheet.append([t._("Code"), name_header, *(header for header, _ in columns)])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for line in lines:
        sheet.append([line.code, line.label(t.locale), *_figure_values(line.figures)])
        for offset, (_, number_format) in enumerate(columns):
            if number_format is not None:
                sheet.cell(row=sheet.max_row, column=3 + offset).number_format = number_format
    sheet.freeze_panes = "C2"
    sheet.column_dimensions["B"].width = 24


def render_workbook(t: Translator, bulletin: Bulletin) -> bytes:
    """An XLSX with three sheets (summary, by category, by unit), headers in ``t``'s language."""
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
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def file_stem(bulletin: Bulletin) -> str:
    return f"bulletin-{bulletin.month}"
