"""The figures of the district center's desk: the overview of an area and the month's evaluation (考评).

The overview of an area (the district, a street or a community) holds

* what stands *now*: open requests (new or accepted), of those the overdue ones (past their due time) and the
  ones due before this week ends (Sunday midnight, local time) that are not overdue yet;
* this month's figures, the bulletin's (``bot.core.bulletin``): requests filed this month, of those the ones
  resolved, resolved on time, and the residents' satisfaction (4 or 5 stars) with whether it meets the target;
* the same for each unit one level below the area (district → streets, street → communities, community →
  grids), every unit included;
* a trend over the last 12 months, this one included: received, resolved, on-time rate and satisfaction.

A request counts toward the unit its grid lies in, as in the bulletin, whoever holds it. Each part is one
``GROUP BY`` in the database, the trend too (its months are buckets of ``created_at``, so the month's bounds
in the deployment's time zone are computed here and not by the database); no ``Request`` is loaded.

The evaluation ranks the units one level below an area by on-time rate, satisfaction and average days to
resolve, with the bulletin's figures of each, and lists a community's grid workers with their month.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, and_, case, func, literal, select
from sqlalchemy.orm import Session

from bot.core.areas import admin_areas, in_admin_area
from bot.core.bulletin import (
    SATISFIED_STARS,
    Bulletin,
    Figures,
    Line,
    Month,
    Rates,
    WorkerLine,
    compute_bulletin,
    count_if,
    unit_lines,
    worker_lines,
)
from bot.core.units import (
    Unit,
    building_column,
    ids_within,
    join_up,
    level_below,
    own_name,
    units_within,
)
from bot.i18n import N_
from storage.models import OPEN_STATUSES, Grid, Level, Person, Request, RequestStatus, UTCDateTime

NOT_YOUR_AREA = N_("That area is not one you administer.")
DEFAULT_SATISFACTION_TARGET = 0.85
TREND_MONTHS = 12
AREA_LEVELS = (Level.DISTRICT, Level.STREET, Level.COMMUNITY)


@dataclass(frozen=True)
class Standing:
    """What an area holds now: open requests, the overdue ones and the ones due before the week ends."""

    open: int = 0
    overdue: int = 0
    due_this_week: int = 0


@dataclass(frozen=True)
class MonthCounts(Rates):
    """The bulletin's counts of the requests filed in one month (``bot.core.bulletin.Counts``, without the
    reopened and escalated counts, which the desk does not show and which cost a look at every event), with
    the bulletin's rates."""

    received: int = 0
    resolved: int = 0
    resolved_on_time: int = 0
    ratings: int = 0
    satisfied: int = 0


@dataclass(frozen=True)
class AreaFigures:
    """The overview's figures of the area or of one unit in it."""

    code: str
    name: str
    standing: Standing
    month: MonthCounts
    target: float
    # The unit itself, for a line of the breakdown (the page links it to the unit's requests).
    unit: Unit | None = None

    @property
    def on_time_rate(self) -> float | None:
        return self.month.on_time_rate

    @property
    def satisfaction_rate(self) -> float | None:
        return self.month.satisfaction_rate

    @property
    def meets_target(self) -> bool | None:
        """Whether satisfaction reaches the target; None while nobody rated this month's requests."""
        rate = self.satisfaction_rate
        return None if rate is None else rate >= self.target


@dataclass(frozen=True)
class TrendMonth:
    month: Month
    counts: MonthCounts


@dataclass(frozen=True)
class Overview:
    area: Unit
    # The area's own name; empty for the district, which each reader's language names.
    area_name: str
    now: datetime
    month: Month
    target: float
    totals: AreaFigures
    unit_level: Level
    by_unit: tuple[AreaFigures, ...]
    # The last 12 months, oldest first, this month last.
    trend: tuple[TrendMonth, ...]


class DeskRefused(PermissionError):
    """The person may not see this area's figures or requests; ``message`` is a message id to translate."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def require_area(session: Session, person: Person, area: Unit) -> None:
    """Only an admin whose area holds ``area`` reads its figures and lists; raises ``DeskRefused``."""
    if not in_admin_area(session, person, area):
        raise DeskRefused(NOT_YOUR_AREA)


def overview_areas(session: Session, person: Person) -> list[tuple[Unit, str]]:
    """The areas ``person`` may open an overview or evaluation of, with their own names, to choose from: their
    own areas and the units one level below that have units of their own (a district's streets, a street's
    communities). Further down is one click away, from each unit's line."""
    choices: list[tuple[Unit, str]] = []
    for area in admin_areas(person):
        choices.append((area, own_name(session, area)))
        below = level_below(area.level)
        query = units_within(below, area) if below in AREA_LEVELS else None
        if below is not None and query is not None:
            choices += [(Unit(below, unit_id), name) for unit_id, _code, name in session.execute(query)]
    return choices


# --- queries -----------------------------------------------------------------------------------------------


def _unit_level(area: Unit) -> Level:
    if area.level not in AREA_LEVELS:
        raise ValueError(f"the desk shows the district, a street or a community, not a {area.level}")
    below = level_below(area.level)
    assert below is not None
    return below


def _in_area(area: Unit) -> list[ColumnElement[bool]]:
    """Requests whose grid lies in ``area``: by the grid index, so a community reads only its own rows."""
    grids = ids_within(Level.GRID, area)
    assert grids is not None, "every area holds grids"
    return [] if area.level is Level.DISTRICT else [Request.grid_id.in_(grids)]


def _child_column(area: Unit) -> ColumnElement[int]:
    """The id of the unit one level below ``area`` of a request's grid, in a query joined up to communities."""
    level = _unit_level(area)
    return Request.grid_id.expression if level is Level.GRID else building_column(level)


def _by_child(area: Unit, *columns: ColumnElement[Any]) -> Select[Any]:
    query = select(_child_column(area), *columns).join(Grid, Grid.id == Request.grid_id)
    return join_up(query, Level.GRID, Level.COMMUNITY).where(*_in_area(area)).group_by(_child_column(area))


def _week_end(now: datetime, timezone: str) -> datetime:
    """The first instant of next Monday, local time."""
    local = now.astimezone(ZoneInfo(timezone))
    monday = (local + timedelta(days=7 - local.weekday())).date()
    return datetime(monday.year, monday.month, monday.day, tzinfo=local.tzinfo)


def _standing(session: Session, area: Unit, now: datetime, timezone: str) -> dict[int, Standing]:
    """Open, overdue and due-this-week requests per unit one level below the area."""
    week_end = _week_end(now, timezone)
    statement = _by_child(
        area,
        func.count(),
        count_if(Request.due_at < now),
        count_if(and_(Request.due_at >= now, Request.due_at < week_end)),
    ).where(Request.status.in_(OPEN_STATUSES))
    return {row[0]: Standing(*(int(value) for value in row[1:])) for row in session.execute(statement)}


def _month_columns(end: ColumnElement[datetime] | datetime) -> tuple[ColumnElement[int], ...]:
    """The bulletin's counts of requests filed in a month that ends at ``end``: resolved means resolved
    before the month ended and still resolved or closed now. The stars are the request's copy of its rating's
    (``Request.rating_stars``), in the covering index: no rating is looked up."""
    resolved = and_(
        Request.resolved_at.is_not(None),
        Request.resolved_at < end,
        Request.status.in_((RequestStatus.RESOLVED, RequestStatus.CLOSED)),
    )
    return (
        func.count(),
        count_if(resolved),
        count_if(and_(resolved, Request.resolved_at <= Request.due_at)),
        func.count(Request.rating_stars),
        count_if(Request.rating_stars >= SATISFIED_STARS),
    )


def _month_by_child(session: Session, area: Unit, month: Month, timezone: str) -> dict[int, MonthCounts]:
    start, end = month.bounds(timezone)
    statement = (
        _by_child(area, *_month_columns(end))
        .where(Request.created_at >= start, Request.created_at < end)
    )
    return {row[0]: MonthCounts(*(int(value) for value in row[1:])) for row in session.execute(statement)}


def _trend(session: Session, area: Unit, months: list[Month], timezone: str) -> list[MonthCounts]:
    """The counts of each of ``months`` (consecutive, oldest first): one ``GROUP BY`` over their requests,
    each request in the bucket of the month it was filed in."""
    ends = [month.bounds(timezone)[1] for month in months]
    start = months[0].bounds(timezone)[0]
    bucket = case(*((Request.created_at < end, index) for index, end in enumerate(ends)))
    # The bound in the column's own type: stored as naive UTC, as the column compares it.
    bucket_end = case(*((Request.created_at < end, literal(end, UTCDateTime())) for end in ends))
    statement = (
        select(bucket, *_month_columns(bucket_end))
        .where(Request.created_at >= start, Request.created_at < ends[-1], *_in_area(area))
        .group_by(bucket)
    )
    counts = {int(row[0]): MonthCounts(*(int(value) for value in row[1:])) for row in session.execute(statement)}
    return [counts.get(index, MonthCounts()) for index in range(len(months))]


Counted = TypeVar("Counted", Standing, MonthCounts)


@dataclass
class TrendCache:
    """The trend's months before the current one, per area, for a process that shows the overview often.

    Those months' figures change only when a resident rates late or a request filed then is reopened, while
    reading them is a pass over a year of requests (a second at a million). A cached area's earlier months are
    read again once ``keep`` has passed by the caller's clock; the current month is always counted afresh.
    """

    keep: timedelta = timedelta(minutes=10)
    _months: dict[tuple[Unit, Month, str], tuple[datetime, list[MonthCounts]]] = field(default_factory=dict)

    def earlier_months(self, session: Session, area: Unit, month: Month, now: datetime,
                       timezone: str) -> list[MonthCounts]:
        key = (area, month, timezone)
        cached = self._months.get(key)
        if cached is None or now - cached[0] >= self.keep or now < cached[0]:
            cached = (now, _trend(session, area, _earlier(month), timezone))
            # A new month makes every area's earlier months another set: the old ones are never read again.
            self._months = {held: value for held, value in self._months.items() if held[1] == month}
            self._months[key] = cached
        return cached[1]


def _earlier(month: Month) -> list[Month]:
    """The trend's months before ``month``, oldest first."""
    return [month.shifted(back) for back in range(1 - TREND_MONTHS, 0)]


def _total(kind: type[Counted], parts: Iterable[Counted]) -> Counted:
    """The sum of some units' counts: every count is a number of requests."""
    parts = list(parts)
    return kind(*(sum(getattr(part, name.name) for part in parts) for name in fields(kind)))



def overview(
    session: Session, area: Unit, now: datetime, timezone: str, target: float = DEFAULT_SATISFACTION_TARGET,
    cache: TrendCache | None = None,
) -> Overview:
    """The desk's overview of ``area`` at ``now``; this month and the trend's months in ``timezone``.

    This month's totals are the sum of its units' (every grid lies in one of them); the earlier months come
    from one query, or from ``cache`` while it holds them.
    """
    level = _unit_level(area)
    month = Month.containing(now, timezone)
    standing = _standing(session, area, now, timezone)
    by_child = _month_by_child(session, area, month, timezone)
    units = units_within(level, area)
    assert units is not None
    lines = tuple(
        AreaFigures(code, name, standing.get(unit_id, Standing()), by_child.get(unit_id, MonthCounts()), target,
                    Unit(level, unit_id))
        for unit_id, code, name in session.execute(units)
    )
    this_month = _total(MonthCounts, by_child.values())
    earlier = (cache.earlier_months(session, area, month, now, timezone) if cache is not None
               else _trend(session, area, _earlier(month), timezone))
    trend = tuple(TrendMonth(*point) for point in zip([*_earlier(month), month], [*earlier, this_month],
                                                      strict=True))
    totals = AreaFigures("", own_name(session, area), _total(Standing, standing.values()), this_month, target)
    return Overview(area, totals.name, now, month, target, totals, level, lines, trend)


def overview_for(
    session: Session, person: Person, area: Unit, now: datetime, timezone: str,
    target: float = DEFAULT_SATISFACTION_TARGET, cache: TrendCache | None = None,
) -> Overview:
    """``overview`` for ``person``, who must administer the area (raises ``DeskRefused``)."""
    require_area(session, person, area)
    return overview(session, area, now, timezone, target, cache)


# --- the evaluation (考评) ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RankedUnit:
    """A unit's place in the month's evaluation (1 is best) and its bulletin line."""

    rank: int
    line: Line

    @property
    def figures(self) -> Figures:
        return self.line.figures

    @property
    def average_days(self) -> float | None:
        mean = self.line.figures.mean_resolve
        return None if mean is None else mean.total_seconds() / 86_400


@dataclass(frozen=True)
class Evaluation:
    area: Unit
    month: Month
    unit_level: Level
    ranking: tuple[RankedUnit, ...]
    # A community's grid workers with their month (``bot.core.bulletin.WorkerLine``); empty for wider areas.
    workers: tuple[WorkerLine, ...]


def _rank_key(line: Line) -> tuple[float, float, float, str]:
    """Higher on-time rate first, then higher satisfaction, then fewer days; a unit without a figure after
    every unit with one, and the code last so equal units keep one order."""
    figures = line.figures
    on_time = figures.on_time_rate
    satisfaction = figures.satisfaction_rate
    mean = figures.mean_resolve
    return (
        -on_time if on_time is not None else 1.0,
        -satisfaction if satisfaction is not None else 1.0,
        mean.total_seconds() if mean is not None else float("inf"),
        line.code,
    )


def rank(lines: Iterable[Line]) -> tuple[RankedUnit, ...]:
    """The lines in the evaluation's order, numbered from 1."""
    return tuple(RankedUnit(index + 1, line) for index, line in enumerate(sorted(lines, key=_rank_key)))


def evaluation(session: Session, area: Unit, month: Month, timezone: str) -> Evaluation:
    """The units one level below ``area`` ranked for the requests filed in ``month``; a community's workers."""
    level = _unit_level(area)
    ranking = rank(unit_lines(session, area, month, timezone))
    workers = worker_lines(session, area, *month.bounds(timezone)) if area.level is Level.COMMUNITY else ()
    return Evaluation(area, month, level, ranking, workers)


def evaluation_for(session: Session, person: Person, area: Unit, month: Month, timezone: str) -> Evaluation:
    """``evaluation`` for ``person``, who must administer the area (raises ``DeskRefused``)."""
    require_area(session, person, area)
    return evaluation(session, area, month, timezone)


def bulletin_for(session: Session, person: Person, area: Unit, month: Month, timezone: str) -> Bulletin:
    """The area's monthly bulletin for ``person``, who must administer the area (raises ``DeskRefused``)."""
    require_area(session, person, area)
    return compute_bulletin(session, area, month, timezone)
