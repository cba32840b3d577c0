"""Grid workers' rounds: the leads they collect, their daily visits and their night patrols.

A lead is a request like a resident's, filed through ``requests.file_request`` and moved along the same
ladder; what is particular to it is who filed it (``Request.lead_by_id``) and that the worker who found it
settles it in the same step: solved on the spot, taken on, or reported up at once. Every use case here checks
that the building or grid lies in the worker's own grids; the refusals are ``RequestRefused`` like the
request use cases', so handlers show them the same way.

Visits and patrols are staff-only records: residents never see them, a worker only those of their own grids.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from bot.core import requests as core
from bot.core.binding import distance_m
from bot.core.requests import Change, Draft, RequestRefused
from bot.core.units import Unit, contains, ids_within
from bot.i18n import N_
from storage.models import (
    Building,
    Grid,
    Level,
    Patrol,
    PatrolFinding,
    PatrolPoint,
    Person,
    Request,
    Role,
    StaffRole,
    Visit,
)

DEFAULT_VISIT_TARGET = 8
DEFAULT_UNVISITED_DAYS = 30
MAX_VISIT_TARGET = 100
MAX_ROOM = 40
MAX_MET = 200
MAX_VISIT_NOTE = 1000
# Where a resident concerned is looked for by name or phone: the lead's building only.
MAX_RESIDENT_QUERY = 64
# The night window's end, local time: a patrol still open then is closed by the scheduler.
DEFAULT_NIGHT_END = time(6, 0)


class LeadOutcome(enum.StrEnum):
    """What the worker who found it does with a lead in the step that files it."""

    SPOT = "spot"  # solved on the spot, closed at once
    TAKE = "take"  # accepted by the worker
    UP = "up"  # reported to the level above at once, with a reason


@dataclass(frozen=True)
class LeadDraft:
    building_id: int
    category_id: int
    description: str
    photo_ids: tuple[str, ...] = ()
    latitude: float | None = None
    longitude: float | None = None
    # The resident concerned, who then follows the lead like their own request.
    resident_id: int | None = None


@dataclass(frozen=True)
class VisitDraft:
    building_id: int
    room: str = ""
    met: str = ""
    note: str = ""
    photo: str | None = None


@dataclass(frozen=True)
class PatrolSummary:
    patrol: Patrol
    duration: timedelta
    distance_m: float
    points: int
    findings: int


# --- the worker's grids -------------------------------------------------------------------------------------


def worker_grids(person: Person) -> list[int]:
    """The grids the person works in, in the order their roles were given."""
    return [role.unit_id for role in person.roles if role.role is Role.WORKER]


def is_worker(person: Person) -> bool:
    return bool(worker_grids(person))


def grid_buildings(session: Session, person: Person, limit: int = 60) -> list[Building]:
    """The active buildings of the worker's grids, by code."""
    grids = worker_grids(person)
    if not grids:
        return []
    query = select(Building).where(Building.grid_id.in_(grids), Building.active.is_(True))
    return list(session.scalars(query.order_by(Building.code).limit(limit)))


def building_of_grid(session: Session, worker: Person, building_id: int) -> Building:
    """The building, if it is an active building of one of the worker's grids; refused otherwise."""
    building = session.get(Building, building_id)
    if building is None or not building.active or building.grid_id not in worker_grids(worker):
        raise RequestRefused(N_("This building is not in your grid."))
    return building


def building_by_code_in_grid(session: Session, worker: Person, code: str) -> Building:
    building = session.scalars(select(Building).where(Building.code == code.strip())).first()
    return building_of_grid(session, worker, building.id if building is not None else 0)


def nearest_grid_building(session: Session, worker: Person, latitude: float, longitude: float) -> Building:
    """The worker's building nearest to the point (their grid is small enough to measure each one)."""
    located = [building for building in grid_buildings(session, worker, limit=10_000)
               if building.latitude is not None and building.longitude is not None]
    if not located:
        raise RequestRefused(N_("None of your grid's buildings has a location; please choose one."))
    return min(located, key=lambda b: distance_m(latitude, longitude, b.latitude or 0.0, b.longitude or 0.0))


def find_resident(session: Session, building: Building, text: str) -> Person:
    """The resident of ``building`` with this phone number or exactly this name."""
    query_text = text.strip()[:MAX_RESIDENT_QUERY]
    match = session.scalars(
        select(Person)
        .where(Person.building_id == building.id,
               or_(Person.phone == query_text, Person.display_name == query_text))
        .order_by(Person.id)
        .limit(1)
    ).first()
    if match is None:
        raise RequestRefused(N_("No resident of {building} is called or has the phone “{text}”."),
                             building=building.name, text=query_text)
    return match


# --- leads --------------------------------------------------------------------------------------------------


def file_lead(
    session: Session, worker: Person, draft: LeadDraft, outcome: LeadOutcome, text: str, now: datetime,
    photo_id: str | None = None,
) -> Change:
    """File what the worker found for a building of their grid and settle it at once as ``outcome`` (``text``:
    what was done on the spot, or why it goes up). Returns the change of that last move; the holders to tell
    are never the worker who found it."""
    building = building_of_grid(session, worker, draft.building_id)
    concerned = _concerned_resident(session, building, draft.resident_id) or worker
    filed = core.file_request(
        session, concerned,
        Draft(draft.category_id, draft.description, draft.photo_ids, draft.latitude, draft.longitude),
        now, building=building, lead_by=worker,
    )
    request = filed.request
    if outcome is LeadOutcome.SPOT:
        change = core.solve_on_spot(session, worker, request.id, text, now, photo_id)
    elif outcome is LeadOutcome.UP:
        change = core.escalate(session, worker, request.id, text, now)
    else:
        change = core.accept(session, worker, request.id, now)
        change.residents = [concerned]
    change.residents = [person for person in change.residents if person.id != worker.id]
    change.notify = [person for person in change.notify if person.id != worker.id]
    return change


def _concerned_resident(session: Session, building: Building, resident_id: int | None) -> Person | None:
    if resident_id is None:
        return None
    resident = session.get(Person, resident_id)
    if resident is None or resident.building_id != building.id:
        raise RequestRefused(N_("The resident concerned must live in {building}."), building=building.name)
    return resident


def check_lead_text(outcome: LeadOutcome, text: str) -> str:
    """The note or reason as it will be stored; refused when empty or too long, before anything is filed."""
    reason = (N_("Please say in a few words what was done.") if outcome is LeadOutcome.SPOT
              else N_("Please say why it needs the level above."))
    text = (text or "").strip()
    if not text:
        raise RequestRefused(reason)
    if len(text) > core.MAX_STAFF_TEXT:
        raise RequestRefused(N_("This is too long: {length} characters, at most {limit}."), length=len(text),
                             limit=core.MAX_STAFF_TEXT)
    return text


# --- daily visits -------------------------------------------------------------------------------------------


def record_visit(session: Session, worker: Person, draft: VisitDraft, now: datetime) -> Visit:
    building = building_of_grid(session, worker, draft.building_id)
    visit = Visit(
        worker_id=worker.id, grid_id=building.grid_id, building_id=building.id,
        room=short_text(draft.room, MAX_ROOM), met=short_text(draft.met, MAX_MET),
        note=short_text(draft.note, MAX_VISIT_NOTE), photo=draft.photo, at=now,
    )
    session.add(visit)
    session.flush()
    return visit


def link_visit_lead(session: Session, worker: Person, visit_id: int, request: Request) -> None:
    """The issue found on a visit became this lead."""
    visit = session.get(Visit, visit_id)
    if visit is not None and visit.worker_id == worker.id and visit.building_id == request.building_id:
        visit.request_id = request.id


def short_text(text: str, limit: int) -> str:
    """The text stripped; refused when longer than ``limit``."""
    text = (text or "").strip()
    if len(text) > limit:
        raise RequestRefused(N_("This is too long: {length} characters, at most {limit}."), length=len(text),
                             limit=limit)
    return text


def local_day_start(now: datetime, timezone: str) -> datetime:
    """Midnight of ``now``'s local day, as an aware instant."""
    local = now.astimezone(ZoneInfo(timezone))
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def visits_today(session: Session, worker: Person, now: datetime, timezone: str) -> int:
    start = local_day_start(now, timezone)
    query = select(func.count(Visit.id)).where(Visit.worker_id == worker.id, Visit.at >= start, Visit.at <= now)
    return session.scalar(query) or 0


def visit_target(session: Session, worker: Person, default: int = DEFAULT_VISIT_TARGET) -> int:
    """The daily target of the worker's first grid, or the deployment's default."""
    grids = worker_grids(worker)
    grid = session.get(Grid, grids[0]) if grids else None
    return grid.visit_target if grid is not None and grid.visit_target is not None else default


def set_visit_target(session: Session, admin: Person, grid_code: str, target: int) -> Grid:
    """Community staff (or street or district staff above it) set a grid's daily visit target."""
    grid = session.scalars(select(Grid).where(Grid.code == grid_code.strip())).first()
    if grid is None or not _admin_covers_grid(session, admin, grid.id):
        raise RequestRefused(N_("There is no grid {code} in your area."), code=grid_code.strip()[:40])
    if not 1 <= target <= MAX_VISIT_TARGET:
        raise RequestRefused(N_("The target is a number of visits from 1 to {limit}."), limit=MAX_VISIT_TARGET)
    grid.visit_target = target
    return grid


def _admin_areas(admin: Person) -> list[Unit]:
    levels = {Role.COMMUNITY: Level.COMMUNITY, Role.STREET: Level.STREET, Role.DISTRICT: Level.DISTRICT}
    return [Unit(levels[role.role], role.unit_id) for role in admin.roles if role.role in levels]


def _admin_covers_grid(session: Session, admin: Person, grid_id: int) -> bool:
    return any(contains(session, area, Unit(Level.GRID, grid_id)) for area in _admin_areas(admin))


def unvisited_buildings(
    session: Session, admin: Person, now: datetime, days: int = DEFAULT_UNVISITED_DAYS, limit: int = 50
) -> list[tuple[Building, datetime | None]]:
    """Active buildings of the admin's areas that no worker visited in the last ``days`` days, with the last
    visit (None: never), the longest unvisited first."""
    areas = _admin_areas(admin)
    if not areas:
        raise RequestRefused(N_("This is for community, street and district staff."))
    since = now - timedelta(days=days)
    last = (select(Visit.building_id, func.max(Visit.at).label("last_at"))
            .group_by(Visit.building_id).subquery())
    conditions = [Building.id.in_(within) for area in areas
                  if (within := ids_within(Level.BUILDING, area)) is not None]
    query = (
        select(Building, last.c.last_at)
        .outerjoin(last, last.c.building_id == Building.id)
        .where(Building.active.is_(True), or_(*conditions), or_(last.c.last_at.is_(None), last.c.last_at < since))
        .order_by(last.c.last_at.is_not(None), last.c.last_at, Building.code)
        .limit(limit)
    )
    return [(building, last_at) for building, last_at in session.execute(query).all()]


# --- night patrols ------------------------------------------------------------------------------------------


def open_patrol(session: Session, worker: Person) -> Patrol | None:
    query = select(Patrol).where(Patrol.worker_id == worker.id, Patrol.ended_at.is_(None))
    return session.scalars(query.order_by(Patrol.id.desc()).limit(1)).first()


def start_patrol(session: Session, worker: Person, now: datetime) -> Patrol:
    grids = worker_grids(worker)
    if not grids:
        raise RequestRefused(N_("Patrols are for grid workers."))
    if open_patrol(session, worker) is not None:
        raise RequestRefused(N_("Your patrol is already under way. Send locations, or end it."))
    patrol = Patrol(worker_id=worker.id, grid_id=grids[0], started_at=now, distance_m=0.0, auto_closed=False)
    session.add(patrol)
    session.flush()
    return patrol


def add_point(session: Session, worker: Person, latitude: float, longitude: float, now: datetime) -> Patrol:
    patrol = _require_open_patrol(session, worker)
    points = list(patrol.points)
    if points:
        last = points[-1]
        patrol.distance_m += distance_m(last.latitude, last.longitude, latitude, longitude)
    point = PatrolPoint(patrol_id=patrol.id, at=now, latitude=latitude, longitude=longitude)
    session.add(point)
    patrol.points.append(point)
    session.flush()
    return patrol


def add_finding(session: Session, worker: Person, request: Request) -> None:
    patrol = open_patrol(session, worker)
    if patrol is not None and request.lead_by_id == worker.id:
        session.add(PatrolFinding(patrol_id=patrol.id, request_id=request.id))


def end_patrol(session: Session, worker: Person, now: datetime) -> PatrolSummary:
    patrol = _require_open_patrol(session, worker)
    patrol.ended_at = now
    return patrol_summary(session, patrol)


def _require_open_patrol(session: Session, worker: Person) -> Patrol:
    patrol = open_patrol(session, worker)
    if patrol is None:
        raise RequestRefused(N_("You have no patrol under way. Start one with /patrol."))
    return patrol


def patrol_summary(session: Session, patrol: Patrol) -> PatrolSummary:
    findings = session.scalar(select(func.count()).where(PatrolFinding.patrol_id == patrol.id)) or 0
    ended = patrol.ended_at or patrol.started_at
    return PatrolSummary(patrol, ended - patrol.started_at, patrol.distance_m, len(patrol.points), findings)


def night_end_after(started_at: datetime, timezone: str, night_end: time = DEFAULT_NIGHT_END) -> datetime:
    """The first end of the night window after the patrol began, as an aware instant."""
    zone = ZoneInfo(timezone)
    local = started_at.astimezone(zone)
    end = datetime.combine(local.date(), night_end, tzinfo=zone)
    return end if end > local else datetime.combine(local.date() + timedelta(days=1), night_end, tzinfo=zone)


def patrols_to_close(session: Session, now: datetime, timezone: str,
                     night_end: time = DEFAULT_NIGHT_END) -> list[Patrol]:
    """Open patrols whose night window has ended by ``now``."""
    # Any patrol to close began at most a day before the latest end of a night window.
    open_ones = session.scalars(select(Patrol).where(Patrol.ended_at.is_(None)).order_by(Patrol.id))
    return [patrol for patrol in open_ones if night_end_after(patrol.started_at, timezone, night_end) <= now]


def close_by_system(session: Session, patrol: Patrol, timezone: str,
                    night_end: time = DEFAULT_NIGHT_END) -> PatrolSummary:
    """Close a patrol left open, as of the end of its night window."""
    patrol.ended_at = night_end_after(patrol.started_at, timezone, night_end)
    patrol.auto_closed = True
    return patrol_summary(session, patrol)


def patrols_since(session: Session, admin: Person, since: datetime) -> list[Patrol]:
    """Patrols in the admin's areas that started since ``since`` (tonight's), earliest first."""
    conditions = [Patrol.grid_id.in_(within) for area in _admin_areas(admin)
                  if (within := ids_within(Level.GRID, area)) is not None]
    if not conditions:
        raise RequestRefused(N_("This is for community, street and district staff."))
    query = select(Patrol).where(Patrol.started_at >= since, or_(*conditions))
    return list(session.scalars(query.order_by(Patrol.started_at, Patrol.id)))


# --- the day's collection (日收集), for the daily digest of a community or street ---------------------------


@dataclass(frozen=True)
class Collection:
    """What the workers of an area collected in one period."""

    leads_by_category: dict[int, int]
    on_the_spot: int
    visits: int
    visit_target: int
    patrols: int

    @property
    def leads(self) -> int:
        return sum(self.leads_by_category.values())

    @property
    def handed_on(self) -> int:
        return self.leads - self.on_the_spot

    @property
    def empty(self) -> bool:
        return not (self.leads or self.visits or self.patrols)


def collection(session: Session, area: Unit, start: datetime, end: datetime,
               default_target: int = DEFAULT_VISIT_TARGET) -> Collection:
    """Leads, visits and patrols of the workers in ``area`` between ``start`` and ``end``; the visit target is
    the grids' daily targets times their workers."""
    grids = ids_within(Level.GRID, area)
    buildings = ids_within(Level.BUILDING, area)
    assert grids is not None and buildings is not None, f"a {area.level} holds grids"
    lead_rows = session.execute(
        select(Request.category_id, Request.on_the_spot, func.count(Request.id))
        .where(Request.lead_by_id.is_not(None), Request.building_id.in_(buildings),
               Request.created_at >= start, Request.created_at < end)
        .group_by(Request.category_id, Request.on_the_spot)
    ).all()
    by_category: dict[int, int] = {}
    on_the_spot = 0
    for category_id, spot, count in lead_rows:
        by_category[category_id] = by_category.get(category_id, 0) + count
        on_the_spot += count if spot else 0
    visits = session.scalar(select(func.count(Visit.id)).where(
        Visit.grid_id.in_(grids), Visit.at >= start, Visit.at < end)) or 0
    patrols = session.scalar(select(func.count(Patrol.id)).where(
        Patrol.grid_id.in_(grids), Patrol.started_at >= start, Patrol.started_at < end)) or 0
    return Collection(by_category, on_the_spot, visits, _area_target(session, grids, default_target), patrols)


def _area_target(session: Session, grids: Any, default_target: int) -> int:
    workers = (select(StaffRole.unit_id, func.count(StaffRole.id).label("workers"))
               .where(StaffRole.role == Role.WORKER, StaffRole.unit_id.in_(grids))
               .group_by(StaffRole.unit_id).subquery())
    rows = session.execute(select(Grid.visit_target, workers.c.workers)
                           .join(workers, workers.c.unit_id == Grid.id)).all()
    return sum((target or default_target) * count for target, count in rows)
