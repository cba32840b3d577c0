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

The grid workers of the area each get a line of their rounds (``WorkerLine``): visits made in the month,
hours of the patrols begun in it and ended, leads filed and of those solved on the spot, and the requests
they resolved in the month (any request, a lead solved on the spot too) and of those the ones resolved no
later than due. A worker who left is no longer listed.

The departments the area's street or district handed work to (分流) each get a line
(``DepartmentLine``): the dispatches made in the month, of those the ones the department did (not gave back)
before the month ended, how many no later than the deadline it was given, and the average days it took.

This module computes the figures; ``bot.core.bulletin_render`` renders them for each reader.
"""

from __future__ import annotations

import re
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Float, Select, and_, case, exists, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from bot.core.areas import admin_areas
from bot.core.roles import ADMIN_ROLES
from bot.core.units import (
    DISTRICT,
    Unit,
    building_column,
    ids_within,
    join_up,
    level_below,
    own_name,
    unit_by_code,
    units_within,
)
from bot.core.volunteers import AreaService, area_service
from storage.models import (
    Category,
    Department,
    EventKind,
    Grid,
    Level,
    Patrol,
    Person,
    Place,
    Rating,
    Request,
    RequestEvent,
    RequestStatus,
    Role,
    StaffRole,
    Visit,
)

MONTH_PATTERN = re.compile(r"(\d{4})-(\d{2})")
SATISFIED_STARS = 4
# A bulletin covers an admin's area (``bot.core.areas``).
AREA_LEVELS = (Level.DISTRICT, Level.STREET, Level.COMMUNITY)


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


def area_by_code(session: Session, street_code: str | None = None, community_code: str | None = None) -> Unit:
    """The area named by a street or community code, or the district when neither is given."""
    for level, code in ((Level.COMMUNITY, community_code), (Level.STREET, street_code)):
        if code:
            unit = unit_by_code(session, level, code)
            if unit is None:
                raise LookupError(f"{level.value} {code!r} does not exist")
            return unit
    return DISTRICT


def bulletin_recipients(session: Session) -> list[tuple[Person, Unit]]:
    """Every reachable community, street and district staff member with the area of each of their roles.

    A person with several such roles appears once per area. For the scheduler that sends the bulletins on
    the first of the month.
    """
    query = (
        select(Person)
        .join(StaffRole, StaffRole.person_id == Person.id)
        .where(StaffRole.role.in_(ADMIN_ROLES), Person.unreachable.is_(False))
        .order_by(Person.id)
    )
    return [(person, area) for person in session.scalars(query).unique() for area in admin_areas(person)]


# --- figures ----------------------------------------------------------------------------------------------


def ratio(part: int, whole: int) -> float | None:
    """``part / whole``, or None for no whole (a rate of nothing is no rate, not 0 %)."""
    return part / whole if whole else None


class Rates:
    """The bulletin's two rates, for any counts of a month's requests that have the four numbers they need:
    one definition for the bulletin and the desk."""

    resolved: int
    resolved_on_time: int
    ratings: int
    satisfied: int

    @property
    def on_time_rate(self) -> float | None:
        return ratio(self.resolved_on_time, self.resolved)

    @property
    def satisfaction_rate(self) -> float | None:
        return ratio(self.satisfied, self.ratings)


@dataclass(frozen=True)
class Counts(Rates):
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
    # The mean time to resolve, for the desk's evaluation (考评), which ranks units by average days.
    mean_resolve: timedelta | None = None

    @property
    def resolution_rate(self) -> float | None:
        return ratio(self.counts.resolved, self.counts.received)

    @property
    def on_time_rate(self) -> float | None:
        return self.counts.on_time_rate

    @property
    def average_rating(self) -> float | None:
        return self.counts.stars_total / self.counts.ratings if self.counts.ratings else None

    @property
    def satisfaction_rate(self) -> float | None:
        return self.counts.satisfaction_rate


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


@dataclass(frozen=True, slots=True)
class WorkerLine:
    """One grid worker's rounds and work in the month."""

    grid_code: str
    name: str
    visits: int = 0
    patrol_hours: float = 0.0
    leads: int = 0
    on_the_spot: int = 0
    # Requests the worker resolved in the month (their own leads solved on the spot included), and of
    # those the ones resolved no later than their due time.
    handled: int = 0
    handled_on_time: int = 0

    @property
    def on_time_rate(self) -> float | None:
        return ratio(self.handled_on_time, self.handled)


@dataclass(frozen=True, slots=True)
class DepartmentLine:
    """What one department was handed in the month (分流) and how it did."""

    code: str
    name: str
    received: int = 0
    # Of the month's dispatches: done by the department before the month ended, of those no later than the
    # deadline it was given, and the ones it gave back instead.
    resolved: int = 0
    resolved_on_time: int = 0
    handed_back: int = 0
    # From the dispatch to the department's answer, over the resolved ones.
    days_to_resolve: float | None = None

    @property
    def on_time_rate(self) -> float | None:
        return ratio(self.resolved_on_time, self.resolved)


@dataclass(frozen=True)
class Bulletin:
    area: Unit
    # The area's own name; empty for the district, which each reader's language names.
    area_name: str
    month: Month
    totals: Figures
    by_category: tuple[Line, ...]
    # The units one level below the area, every one of them, including those that received nothing.
    unit_level: Level
    by_unit: tuple[Line, ...]
    # Volunteer service in slots of the month at the area's communities (bot.core.volunteers).
    volunteer_service: AreaService | None = None
    # The places (markets, alleys) of the area that received requests this month, by code.
    by_place: tuple[Line, ...] = ()
    # Every grid worker of the area, by grid and name, including those who did nothing this month.
    workers: tuple[WorkerLine, ...] = ()
    # The departments handed the area's requests this month, by code.
    by_department: tuple[DepartmentLine, ...] = ()


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

    area: Unit
    start: datetime
    end: datetime
    # Group by place (only requests about a place) instead of by the units one level below the area.
    by_place: bool = False

    @property
    def child_unit(self) -> ColumnElement[int]:
        """The id of the unit one level below the area that each request's grid belongs to (or its place)."""
        if self.by_place:
            # Only requests about a place are read then (``where``): the column is never null.
            return cast(ColumnElement[int], Request.place_id.expression)
        return _request_column(_unit_level(self.area))

    def where(self) -> list[ColumnElement[bool]]:
        # The created_at range comes first: its index narrows a million rows to the month's.
        conditions = [Request.created_at >= self.start, Request.created_at < self.end]
        if self.by_place:
            conditions.append(Request.place_id.is_not(None))
        if self.area.level is not Level.DISTRICT:
            conditions.append(_request_column(self.area.level) == self.area.id)
        return conditions

    def select_from_requests(self, *columns: ColumnElement[Any]) -> Select[Any]:
        """``SELECT category_id, child unit id, *columns`` over the month's requests in the area."""
        query = select(Request.category_id, self.child_unit).add_columns(*columns)
        query = query.join(Grid, Grid.id == Request.grid_id)
        return join_up(query, Level.GRID, Level.COMMUNITY).where(*self.where())

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


def count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    """In a ``GROUP BY``: how many rows of the group meet ``condition`` (0, never null)."""
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _group_counts(session: Session, query: _MonthQuery) -> dict[GroupKey, Counts]:
    """One GROUP BY over the month's requests: the counts per (category, child unit)."""
    statement = (
        query.select_from_requests(
            func.count(),
            count_if(query.resolved),
            count_if(and_(query.resolved, Request.resolved_at <= Request.due_at)),
            func.count(Rating.stars),
            func.coalesce(func.sum(Rating.stars), 0),
            count_if(Rating.stars >= SATISFIED_STARS),
            count_if(_has_event(EventKind.REOPENED)),
            count_if(_has_event(EventKind.ESCALATED)),
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


def _mean(seconds: Sequence[float]) -> timedelta | None:
    return timedelta(seconds=statistics.fmean(seconds)) if seconds else None


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
    return Figures(total, _median(to_accept), _median(to_resolve), _mean(to_resolve))


def _request_column(level: Level) -> ColumnElement[int]:
    """The id of the ``level`` unit the grid of a request lies in, as a column of requests joined up to
    communities: a request about a place or a location has no building, but always a grid."""
    return Request.grid_id.expression if level is Level.GRID else building_column(level)


def _unit_level(area: Unit) -> Level:
    """The level of the breakdown by unit: one below the area."""
    if area.level not in AREA_LEVELS:
        raise ValueError(f"a bulletin covers the district, a street or a community, not a {area.level}")
    below = level_below(area.level)
    assert below is not None
    return below


def _child_units(session: Session, area: Unit) -> list[tuple[int, str, str]]:
    """(id, code, name) of every unit one level below the area, by code."""
    statement = units_within(_unit_level(area), area)
    assert statement is not None, "every area has units one level below it"
    return [(unit_id, code, name) for unit_id, code, name in session.execute(statement)]


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


# --- the grid workers' rounds -------------------------------------------------------------------------------


def _area_workers(area: Unit) -> Select[int, str, str]:
    """(person id, grid code, name) of every worker role in the area's grids."""
    grids = ids_within(Level.GRID, area)
    assert grids is not None, "every area holds grids"
    return (
        select(StaffRole.person_id, Grid.code, Person.display_name)
        .join(Grid, Grid.id == StaffRole.unit_id)
        .join(Person, Person.id == StaffRole.person_id)
        .where(StaffRole.role == Role.WORKER, StaffRole.unit_id.in_(grids))
        .order_by(Grid.code, Person.display_name, StaffRole.person_id)
    )


def _per_worker(session: Session, statement: Executable) -> dict[int, tuple[Any, ...]]:
    """Rows of a ``GROUP BY`` whose first column is a worker's id, keyed by it."""
    return {row[0]: tuple(row[1:]) for row in session.execute(statement)}


def worker_lines(session: Session, area: Unit, start: datetime, end: datetime) -> tuple[WorkerLine, ...]:
    """Each worker's visits, patrol hours, leads, leads solved on the spot, requests resolved and resolved on
    time in [start, end): one ``GROUP BY`` per figure over the month's rows, whatever the number of workers."""
    ids = select(_area_workers(area).subquery().c.person_id)
    visits = _per_worker(session, select(Visit.worker_id, func.count()).where(
        Visit.at >= start, Visit.at < end, Visit.worker_id.in_(ids)).group_by(Visit.worker_id))
    patrols = _per_worker(session, select(
        Patrol.worker_id, func.sum(_SecondsBetween(Patrol.ended_at, Patrol.started_at))
    ).where(Patrol.started_at >= start, Patrol.started_at < end, Patrol.ended_at.is_not(None),
            Patrol.worker_id.in_(ids)).group_by(Patrol.worker_id))
    leads = _per_worker(session, select(
        Request.lead_by_id, func.count(), count_if(Request.on_the_spot.is_(True))
    ).where(Request.created_at >= start, Request.created_at < end, Request.lead_by_id.in_(ids))
     .group_by(Request.lead_by_id))
    resolutions = (
        select(RequestEvent.actor_id.label("worker_id"), RequestEvent.request_id,
               func.min(RequestEvent.at).label("at"))
        .where(RequestEvent.kind == EventKind.RESOLVED, RequestEvent.at >= start, RequestEvent.at < end,
               RequestEvent.actor_id.in_(ids))
        .group_by(RequestEvent.actor_id, RequestEvent.request_id)
        .subquery()
    )
    handled = _per_worker(session, select(
        resolutions.c.worker_id, func.count(), count_if(resolutions.c.at <= Request.due_at)
    ).join(Request, Request.id == resolutions.c.request_id).group_by(resolutions.c.worker_id))
    lines = []
    # A district holds tens of thousands of workers: their rows are read as they come, each grid's code kept
    # once.
    codes: dict[str, str] = {}
    for person_id, grid_code, name in session.execute(_area_workers(area)):
        grid_code = codes.setdefault(grid_code, grid_code)
        lead_count, spot = leads.get(person_id, (0, 0))
        handled_count, on_time = handled.get(person_id, (0, 0))
        seconds = patrols.get(person_id, (0.0,))[0] or 0.0
        lines.append(WorkerLine(
            grid_code, name, int(visits.get(person_id, (0,))[0]), round(seconds) / 3600, int(lead_count),
            int(spot), int(handled_count), int(on_time),
        ))
    return tuple(lines)


def unit_lines(session: Session, area: Unit, month: Month, timezone: str) -> tuple[Line, ...]:
    """The bulletin's figures of each unit one level below ``area`` for the requests filed in ``month``, every
    unit included, by code: the breakdown of ``compute_bulletin`` without the rest of the bulletin."""
    query = _MonthQuery(area, *month.bounds(timezone))
    counts = _group_counts(session, query)
    return _unit_lines(_child_units(session, area), counts, _group_durations(session, query))


def compute_bulletin(session: Session, area: Unit, month: Month | str, timezone: str) -> Bulletin:
    """The bulletin of ``area`` for the requests filed in ``month`` (``YYYY-MM``) in ``timezone``."""
    month = month if isinstance(month, Month) else Month.parse(month)
    start, end = month.bounds(timezone)
    query = _MonthQuery(area, start, end)
    counts = _group_counts(session, query)
    durations = _group_durations(session, query)
    return Bulletin(
        area=area,
        area_name=own_name(session, area),
        month=month,
        totals=_figures(counts, counts, durations),
        by_category=_category_lines(session, counts, durations),
        unit_level=_unit_level(area),
        by_unit=_unit_lines(_child_units(session, area), counts, durations),
        volunteer_service=_volunteer_service(session, area, month, timezone),
        by_place=_place_lines(session, replace(query, by_place=True)),
        workers=worker_lines(session, area, start, end),
        by_department=_department_lines(session, query),
    )


def _dispatches(query: _MonthQuery) -> Select[int, datetime, datetime | None, EventKind, datetime]:
    """(department id, dispatched at, deadline, answer kind, answered at) of each dispatch of the area's
    requests in the month; the answer is the department's first done or handed-back event after it, if any."""
    dispatch = aliased(RequestEvent)
    answer = aliased(RequestEvent)
    first_answer = (
        select(func.min(answer.id))
        .where(answer.request_id == dispatch.request_id, answer.id > dispatch.id,
               answer.kind.in_((EventKind.DEPARTMENT_DONE, EventKind.HANDED_BACK)))
        .scalar_subquery()
    )
    replied = aliased(RequestEvent)
    statement = (
        # A dispatch's unit is always the department it went to.
        select(cast(ColumnElement[int], dispatch.unit_id), dispatch.at, dispatch.due_at, replied.kind, replied.at)
        .select_from(dispatch)
        .outerjoin(replied, replied.id == first_answer)
        .where(dispatch.kind == EventKind.DISPATCHED, dispatch.at >= query.start, dispatch.at < query.end)
    )
    if query.area.level is Level.DISTRICT:
        return statement
    statement = statement.join(Request, Request.id == dispatch.request_id).join(Grid, Grid.id == Request.grid_id)
    return join_up(statement, Level.GRID, Level.COMMUNITY).where(_request_column(query.area.level) == query.area.id)


def _department_lines(session: Session, query: _MonthQuery) -> tuple[DepartmentLine, ...]:
    """A line per department handed the area's requests in the month, by code. A month holds a few hundred
    dispatches at most, so they are summed here rather than in SQL."""
    received: dict[int, int] = defaultdict(int)
    resolved: dict[int, list[bool]] = defaultdict(list)
    handed_back: dict[int, int] = defaultdict(int)
    seconds: dict[int, float] = defaultdict(float)
    for department_id, dispatched_at, due_at, kind, answered_at in session.execute(_dispatches(query)):
        received[department_id] += 1
        if kind is None or answered_at >= query.end:
            continue
        if kind == EventKind.HANDED_BACK:
            handed_back[department_id] += 1
            continue
        resolved[department_id].append(due_at is None or answered_at <= due_at)
        seconds[department_id] += (answered_at - dispatched_at).total_seconds()
    if not received:
        return ()
    departments = session.execute(
        select(Department.id, Department.code, Department.name).where(Department.id.in_(received))
        .order_by(Department.code)
    )
    return tuple(
        DepartmentLine(
            code, name, received[department_id], len(resolved[department_id]), sum(resolved[department_id]),
            handed_back[department_id],
            seconds[department_id] / 86400 / len(resolved[department_id]) if resolved[department_id] else None,
        )
        for department_id, code, name in departments
    )


def _place_lines(session: Session, query: _MonthQuery) -> tuple[Line, ...]:
    """A line per place of the area that received requests in the month, by code."""
    counts = _group_counts(session, query)
    if not counts:
        return ()
    durations = _group_durations(session, query)
    places = session.execute(
        select(Place.id, Place.code, Place.name).where(Place.id.in_({key[1] for key in counts})).order_by(Place.code)
    )
    return _unit_lines([(place_id, code, name) for place_id, code, name in places], counts, durations)


def _volunteer_service(session: Session, area: Unit, month: Month, timezone: str) -> AreaService | None:
    communities = ids_within(Level.COMMUNITY, area)
    if communities is None:
        return None
    return area_service(session, communities, *month.bounds(timezone))
