"""Focused campaigns (重点整治): community, street or district staff name the buildings of their area to
rectify (illegal construction, stalls on the road, flying wires, clutter) by an end date; the grid workers of
the grids concerned record each of their grid's targets as rectified or not, with a photo.

Who may do what is checked here: a campaign is opened by staff for one of their own areas and its targets
lie inside that area; its progress is for its owner and the staff above or at its area; a worker records only
a target of their own grid. Refusals are ``RequestRefused``, shown like every other refusal.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.core.areas import admin_areas
from bot.core.requests import RequestRefused
from bot.core.rounds import worker_grids
from bot.core.units import Unit, contains, ids_within
from bot.i18n import N_
from storage.models import (
    Building,
    Campaign,
    CampaignTarget,
    Category,
    Grid,
    Level,
    Person,
    TargetStatus,
)

MAX_NAME = 100
MAX_NOTE = 500
MAX_TARGETS = 2000
# How many days after its end a campaign's unfinished targets stay in the daily digest as overdue.
OVERDUE_DAYS = 30
# The longest a campaign may run.
MAX_DAYS = 366
DONE = (TargetStatus.RECTIFIED,)


@dataclass(frozen=True)
class GridProgress:
    """How far one grid is with a campaign's targets."""

    code: str
    name: str
    total: int
    rectified: int
    not_rectified: int

    @property
    def pending(self) -> int:
        return self.total - self.rectified - self.not_rectified


@dataclass(frozen=True)
class Added:
    """What adding targets did: how many were new, and the codes refused (unknown or outside the area)."""

    added: int
    refused: tuple[str, ...]


def local_today(now: datetime, timezone: str) -> date:
    return now.astimezone(ZoneInfo(timezone)).date()


def area_of(campaign: Campaign) -> Unit:
    return Unit(campaign.level, campaign.unit_id)


# --- opening a campaign and naming its targets ---------------------------------------------------------------


def open_campaign(
    session: Session, admin: Person, name: str, category_id: int, ends_on: date, now: datetime, timezone: str,
    area: Unit | None = None,
) -> Campaign:
    """A new campaign for ``area`` (the admin's widest area when not given); ends on a local day from today
    up to a year ahead."""
    areas = admin_areas(admin)
    if not areas:
        raise RequestRefused(N_("This is for community, street and district staff."))
    area = area or areas[0]
    if area not in areas:
        raise RequestRefused(N_("This area is not yours."))
    name = check_name(name)
    if session.get(Category, category_id) is None:
        raise RequestRefused(N_("This category is no longer available. Please start again with /new."))
    today = local_today(now, timezone)
    if not today <= ends_on <= today + timedelta(days=MAX_DAYS):
        raise RequestRefused(N_("The end date must be from today up to a year ahead."))
    campaign = Campaign(name=name, category_id=category_id, level=area.level, unit_id=area.id, owner_id=admin.id,
                        ends_on=ends_on, created_at=now)
    session.add(campaign)
    session.flush()
    return campaign


def check_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise RequestRefused(N_("Please give the campaign a name."))
    if len(name) > MAX_NAME:
        raise RequestRefused(N_("This is too long: {length} characters, at most {limit}."), length=len(name),
                             limit=MAX_NAME)
    return name


def parse_end_date(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise RequestRefused(N_("Please write the end date as YYYY-MM-DD, e.g. 2026-12-31.")) from None


def managed_campaign(session: Session, admin: Person, campaign_id: int) -> Campaign:
    """The campaign, if ``admin`` owns it or administers an area that holds its area; refused otherwise."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None or not (
        campaign.owner_id == admin.id or any(contains(session, area, area_of(campaign))
                                             for area in admin_areas(admin))
    ):
        raise RequestRefused(N_("There is no such campaign in your area."))
    return campaign


def add_targets(session: Session, admin: Person, campaign_id: int, codes: Iterable[str]) -> Added:
    """Add the buildings with these codes to a campaign the admin manages."""
    return add_targets_unchecked(session, managed_campaign(session, admin, campaign_id), codes)


def add_targets_unchecked(session: Session, campaign: Campaign, codes: Iterable[str]) -> Added:
    """Add the active buildings with these codes that lie in the campaign's area (for the checked use case
    above and the operator's CLI import); a building already a target is kept as it is."""
    wanted = list(dict.fromkeys(code.strip() for code in codes if code.strip()))
    within = ids_within(Level.BUILDING, area_of(campaign))
    assert within is not None, "a campaign's area holds buildings"
    found = {building.code: building for building in session.scalars(
        select(Building).where(Building.code.in_(wanted), Building.active.is_(True), Building.id.in_(within)))}
    existing = set(session.scalars(select(CampaignTarget.building_id)
                                   .where(CampaignTarget.campaign_id == campaign.id)))
    count = session.scalar(select(func.count()).where(CampaignTarget.campaign_id == campaign.id)) or 0
    added = 0
    # In the order given, so targets list as the owner wrote them whatever order the database returned.
    for building in (found[code] for code in wanted if code in found):
        if building.id in existing:
            continue
        if count + added >= MAX_TARGETS:
            raise RequestRefused(N_("A campaign has at most {limit} targets."), limit=MAX_TARGETS)
        session.add(CampaignTarget(campaign_id=campaign.id, building_id=building.id, grid_id=building.grid_id,
                                   status=TargetStatus.PENDING, note=""))
        added += 1
    session.flush()
    return Added(added, tuple(code for code in wanted if code not in found))


def codes_from_csv(text: str) -> list[str]:
    """Building codes from a CSV: the ``building`` column when there is a header naming it, else the first
    column of every row."""
    rows = [row for row in csv.reader(io.StringIO(text.lstrip("\ufeff"))) if row and any(cell.strip()
                                                                                         for cell in row)]
    if not rows:
        return []
    header = [cell.strip().lower() for cell in rows[0]]
    if "building" in header:
        column = header.index("building")
        return [row[column] for row in rows[1:] if len(row) > column]
    return [row[0] for row in rows]


def campaigns_of(session: Session, admin: Person, limit: int = 20) -> list[Campaign]:
    """The campaigns the admin owns or whose area lies in one of theirs, the latest first."""
    areas = admin_areas(admin)
    if not areas:
        raise RequestRefused(N_("This is for community, street and district staff."))
    query = select(Campaign).order_by(Campaign.id.desc()).limit(200)
    return [campaign for campaign in session.scalars(query)
            if campaign.owner_id == admin.id or any(contains(session, area, area_of(campaign))
                                                    for area in areas)][:limit]


# --- the worker's targets -------------------------------------------------------------------------------------


def worker_targets(session: Session, worker: Person, now: datetime, timezone: str,
                   limit: int = 30) -> list[CampaignTarget]:
    """The targets of the worker's grids not yet rectified, of campaigns running or ended in the last
    ``OVERDUE_DAYS`` days; the campaign ending first first."""
    grids = worker_grids(worker)
    if not grids:
        return []
    since = local_today(now, timezone) - timedelta(days=OVERDUE_DAYS)
    query = (
        select(CampaignTarget).join(Campaign, Campaign.id == CampaignTarget.campaign_id)
        .where(CampaignTarget.grid_id.in_(grids), CampaignTarget.status.not_in(DONE), Campaign.ends_on >= since)
        .order_by(Campaign.ends_on, Campaign.id, CampaignTarget.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def record_target(
    session: Session, worker: Person, target_id: int, rectified: bool, photo: str | None, note: str, now: datetime
) -> CampaignTarget:
    """The worker records a target of their own grid as rectified or not, with a photo of it."""
    target = session.get(CampaignTarget, target_id)
    if target is None or target.grid_id not in worker_grids(worker):
        raise RequestRefused(N_("This target is not in your grid."))
    if not photo:
        raise RequestRefused(N_("Please send a photo of the place."))
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        raise RequestRefused(N_("This is too long: {length} characters, at most {limit}."), length=len(note),
                             limit=MAX_NOTE)
    target.status = TargetStatus.RECTIFIED if rectified else TargetStatus.NOT_RECTIFIED
    target.photo, target.note, target.recorded_by_id, target.recorded_at = photo, note, worker.id, now
    session.flush()
    return target


# --- progress, the end, and what is overdue -----------------------------------------------------------------------


def progress(session: Session, campaign: Campaign) -> list[GridProgress]:
    """The campaign's targets by grid, by grid code."""
    rows = session.execute(
        select(Grid.code, Grid.name, CampaignTarget.status, func.count())
        .join(Grid, Grid.id == CampaignTarget.grid_id)
        .where(CampaignTarget.campaign_id == campaign.id)
        .group_by(Grid.code, Grid.name, CampaignTarget.status)
        .order_by(Grid.code)
    ).all()
    grids: dict[str, dict[TargetStatus, int]] = {}
    names: dict[str, str] = {}
    for code, name, status, count in rows:
        grids.setdefault(code, {})[status] = count
        names[code] = name
    return [GridProgress(code, names[code], sum(counts.values()), counts.get(TargetStatus.RECTIFIED, 0),
                         counts.get(TargetStatus.NOT_RECTIFIED, 0)) for code, counts in grids.items()]


def campaign_progress(session: Session, admin: Person, campaign_id: int) -> tuple[Campaign, list[GridProgress]]:
    campaign = managed_campaign(session, admin, campaign_id)
    return campaign, progress(session, campaign)


def campaigns_ended(session: Session, now: datetime, timezone: str) -> list[Campaign]:
    """Campaigns whose last day is over and whose owner has not yet been sent the final progress."""
    today = local_today(now, timezone)
    query = select(Campaign).where(Campaign.ends_on < today, Campaign.final_report_at.is_(None))
    return list(session.scalars(query.order_by(Campaign.id)))


def overdue_targets(session: Session, area: Unit, now: datetime, timezone: str) -> list[tuple[Campaign, int]]:
    """Campaigns ended in the last ``OVERDUE_DAYS`` days with targets in ``area`` still not rectified, and how
    many."""
    grids = ids_within(Level.GRID, area)
    assert grids is not None, f"a {area.level} holds grids"
    today = local_today(now, timezone)
    rows = session.execute(
        select(CampaignTarget.campaign_id, func.count())
        .join(Campaign, Campaign.id == CampaignTarget.campaign_id)
        .where(Campaign.ends_on < today, Campaign.ends_on >= today - timedelta(days=OVERDUE_DAYS),
               CampaignTarget.status.not_in(DONE), CampaignTarget.grid_id.in_(grids))
        .group_by(CampaignTarget.campaign_id)
        .order_by(CampaignTarget.campaign_id)
    ).all()
    return [(session.get_one(Campaign, campaign_id), count) for campaign_id, count in rows]
