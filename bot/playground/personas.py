"""The people the playground lets you act as, and the demo organisation they live and work in."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core import campaigns, volunteers
from bot.core.demo import demo_rows, load_demo
from bot.core.staff import StaffError, add_staff
from storage.models import Campaign, Category, PartnerUnit, Person, Role, Street, Volunteer, VolunteerStatus

log = logging.getLogger(__name__)

# What the simulated client reports for each language the page offers.
LANGUAGE_CODES = {"zh": "zh-hans", "en": "en"}


class UnknownPersona(LookupError):
    """The page named a persona the playground does not have."""


@dataclass(frozen=True)
class Persona:
    """One simulated Telegram user with a fixed place in the demo organisation."""

    key: str
    user_id: int
    name: str
    # What the simulated client reports as its language; the bot takes the person's language from it.
    language_code: str
    title_zh: str
    title_en: str
    role: Role | None = None
    unit_code: str | None = None
    # The building whose QR code this resident can "scan" from the page, and its name in English.
    building_code: str | None = None
    building_en: str = ""
    # Bound to the building when the playground starts, so a request can be filed right away.
    prebind: bool = False
    # An approved volunteer of this community (a party member of ``PARTNER_UNIT``) from the start.
    volunteer_of: str | None = None

    @property
    def is_staff(self) -> bool:
        return self.role is not None

    @property
    def greeting(self) -> str:
        """What the persona sends when the playground starts (nothing: the page's user writes first)."""
        if self.is_staff:
            return "/start"
        if self.volunteer_of is not None:
            return "/myservice"
        return f"/start b_{self.building_code}" if self.prebind else ""


# Resident 1, the worker and the community admin share a grid and community (孔明社区, 东关街道); resident 2
# lives in another street, so a request from them reaches none of these staff.
PERSONAS = (
    Persona(
        "resident1", 910001, "李秀兰", "zh-hans", "居民 · 孔明路12号院1号楼", "Resident · Kongming Rd 12, bldg 1",
        building_code="DG-KM-01-B1", building_en="Kongming Rd 12, building 1", prebind=True,
    ),
    Persona(
        "resident2", 910002, "Anna Wu", "en", "居民 · 老庄农贸市场家属院2号楼", "Resident · Laozhuang market, bldg 2",
        building_code="HY-LZ-01-B2", building_en="Laozhuang market, building 2",
    ),
    Persona(
        "worker", 920001, "王网格员", "zh-hans", "网格员 · 孔明社区第一网格", "Grid worker · Kongming grid 1",
        role=Role.WORKER, unit_code="DG-KM-01",
    ),
    Persona(
        "community", 930001, "陈主任", "zh-hans", "社区管理员 · 孔明社区", "Community admin · Kongming",
        role=Role.COMMUNITY, unit_code="DG-KM",
    ),
    Persona(
        "volunteer", 940001, "张建国", "zh-hans", "志愿者 · 党员 · 南阳供电公司",
        "Volunteer · party member · power company",
        volunteer_of="DG-KM",
    ),
    Persona(
        "district", 950001, "Zhou Min", "en", "区网格化服务管理中心", "District grid service center",
        role=Role.DISTRICT,
    ),
    # The district center hands a request to this squad (分流) from its card.
    Persona(
        "department", 960001, "刘队长", "zh-hans", "职能部门 · 东关城管中队", "Department · Dongguan urban management",
        role=Role.DEPARTMENT, unit_code="DG-CG",
    ),
)


@dataclass(frozen=True)
class LocationPreset:
    """A place a persona can "share" from the page, since a browser tab has no GPS to offer."""

    name_zh: str
    name_en: str
    latitude: float
    longitude: float


def location_presets() -> list[LocationPreset]:
    """The residents' buildings, taken from the demo data so they always match an existing building."""
    rows = {row.building_code: row for row in demo_rows()}
    presets = []
    for persona in PERSONAS:
        row = rows.get(persona.building_code or "")
        if row is not None:
            presets.append(
                LocationPreset(row.building_name, persona.building_en, float(row.latitude), float(row.longitude))
            )
    # A point between the streets, to show how the bot offers the nearest buildings.
    presets.append(LocationPreset("白河边", "By the Bai river", 32.9890, 112.5350))
    return presets


# The partner unit the volunteer persona comes from: (code, name, kind).
PARTNER_UNIT = ("NY-POWER", "国网南阳供电公司", "国企")


def enrol_volunteer(session: Session, persona: Persona, now: datetime) -> str | None:
    """Make the persona an approved volunteer of their community; a note when the community is missing."""
    community = volunteers.community_by_code(session, persona.volunteer_of or "")
    if community is None:
        return f"{persona.name}: no community {persona.volunteer_of}"
    code, name, kind = PARTNER_UNIT
    unit = session.scalars(select(PartnerUnit).where(PartnerUnit.code == code)).first()
    if unit is None:
        unit = PartnerUnit(code=code, name=name, kind=kind)
        session.add(unit)
    external_id = str(persona.user_id)
    person = session.scalars(select(Person).where(Person.channel == "telegram", Person.external_id == external_id))\
        .first()
    if person is None:
        person = Person(channel="telegram", external_id=external_id, chat_id=external_id, state_data={},
                        display_name=persona.name, created_at=now, awaiting_first_message=True)
        session.add(person)
    session.flush()
    if volunteers.volunteer_of(session, person, community.id) is None:
        session.add(Volunteer(person_id=person.id, community_id=community.id, name=persona.name,
                              partner_unit_id=unit.id, party_member=True, status=VolunteerStatus.APPROVED,
                              created_at=now, decided_at=now))
        session.flush()
    return None


def prepare_organisation(session: Session, now: datetime, timezone: str = "Asia/Shanghai") -> list[str]:
    """Load the demo organisation into an empty database and make the staff personas staff.

    Returns notes for the page: a database with an organisation of its own may lack the demo units, and
    then the persona stays an ordinary user rather than stopping the playground.
    """
    fresh = session.scalar(select(Street.id).limit(1)) is None
    if fresh:
        log.info("empty database: loading the demo organisation")
        load_demo(session)
    notes = []
    for persona in PERSONAS:
        if persona.role is None:
            continue
        try:
            add_staff(session, str(persona.user_id), persona.role, persona.unit_code, persona.name, now)
        except StaffError as error:
            notes.append(f"{persona.name}: {error}")
    for persona in PERSONAS:
        note = enrol_volunteer(session, persona, now) if persona.volunteer_of is not None else None
        if note is not None:
            notes.append(note)
    if fresh:
        seed_demo_campaign(session, now, timezone)
    return notes


# The community persona's focused campaign, so the worker persona has targets to record from the start.
DEMO_CAMPAIGN = "飞线充电整治"
DEMO_TARGETS = ("DG-KM-01-B1", "DG-KM-01-B2", "DG-KM-01-B3")
DEMO_CAMPAIGN_DAYS = 14


def seed_demo_campaign(session: Session, now: datetime, timezone: str) -> None:
    owner_id = next(persona.user_id for persona in PERSONAS if persona.role is Role.COMMUNITY)
    owner = session.scalars(select(Person).where(Person.external_id == str(owner_id))).first()
    category = session.scalars(select(Category).order_by(Category.sort_order, Category.id).limit(1)).first()
    if owner is None or category is None or session.scalar(select(Campaign.id).limit(1)) is not None:
        return
    session.flush()
    session.refresh(owner)
    ends_on = campaigns.local_today(now, timezone) + timedelta(days=DEMO_CAMPAIGN_DAYS)
    campaign = campaigns.open_campaign(session, owner, DEMO_CAMPAIGN, category.id, ends_on, now, timezone)
    campaigns.add_targets(session, owner, campaign.id, DEMO_TARGETS)
