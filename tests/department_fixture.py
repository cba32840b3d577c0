"""A small organisation with departments (分流): the east street's urban management squad with one member,
a district-wide power company with one, the west street's market office with nobody, and a request held by the
east street (no grid worker or community staff, so filing sends it up to the street)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from bot.core import requests
from storage.models import Category, Department, Person, Role
from tests.org_fixture import NOW, SmallOrg, make_small_org, staff

SUN, QIAN, POWER, LI = 7003, 7101, 7102, 1001


@dataclass(frozen=True)
class DepartmentsOrg:
    org: SmallOrg
    squad: int  # the east street's urban management squad (staffed)
    power: int  # the district-wide power company (staffed)
    market_office: int  # the west street's market supervision office (nobody on duty)
    request: int  # filed by Li about the east street's building, held by the east street


def make_departments_org(session: Session, filed_at: datetime = NOW) -> DepartmentsOrg:
    org = make_small_org(session)
    squad = Department(code="DG-CG", name="东关城管中队", street_id=org.street, active=True)
    power = Department(code="QU-GD", name="区供电公司", street_id=None, active=True)
    market = Department(code="XH-SJ", name="新华市场监管所", street_id=org.street2, active=True)
    session.add_all([squad, power, market])
    session.flush()
    staff(session, SUN, "Sun Street", Role.STREET, org.street, "en")
    staff(session, QIAN, "Qian Squad", Role.DEPARTMENT, squad.id, "en")
    staff(session, POWER, "Zhou Power", Role.DEPARTMENT, power.id, "en")
    li = Person(channel="telegram", external_id=str(LI), chat_id=str(LI), display_name="Li", locale="en",
                building_id=org.building, state_data={}, created_at=NOW)
    session.add(li)
    session.flush()
    category = session.query(Category).filter_by(code="clutter").one()
    draft = requests.Draft(category_id=category.id, description="Stalls block the lane behind the building")
    request = requests.file_request(session, li, draft, filed_at).request
    return DepartmentsOrg(org, squad.id, power.id, market.id, request.id)
