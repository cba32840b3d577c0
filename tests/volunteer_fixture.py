"""Volunteers for tests: a partner unit, community staff, and a helper that publishes a post through the core."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from bot.core import volunteers
from storage.models import PartnerUnit, Person, Role, Volunteer, VolunteerPost, VolunteerStatus
from tests.org_fixture import NOW, SmallOrg, make_small_org, staff

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def partner_unit(session: Session, code: str = "PU-01", name: str = "市供电公司") -> PartnerUnit:
    unit = PartnerUnit(code=code, name=name, kind="国企")
    session.add(unit)
    session.flush()
    return unit


def approved_volunteer(session: Session, person: Person, community_id: int, name: str,
                       unit: PartnerUnit | None = None) -> Volunteer:
    volunteer = Volunteer(person_id=person.id, community_id=community_id, name=name, party_member=True,
                          partner_unit_id=unit.id if unit is not None else None,
                          status=VolunteerStatus.APPROVED, created_at=NOW)
    session.add(volunteer)
    session.flush()
    return volunteer


def org_with_community_staff(session: Session, locale: str = "zh_CN") -> SmallOrg:
    org = make_small_org(session)
    staff(session, 3001, "陈社区", Role.COMMUNITY, org.community, locale)
    partner_unit(session)
    return org


def publish(session: Session, author: Person, community_id: int, starts: datetime, now: datetime,
            hours: int = 2, places: int = 2, slots: int = 1) -> VolunteerPost:
    times = [volunteers.SlotTimes(starts + timedelta(hours=4 * n), starts + timedelta(hours=4 * n + hours))
             for n in range(slots)]
    return volunteers.publish_post(session, author, community_id, "楼道清理", "清理楼道杂物", "建设路12号院",
                                   times, places, now, "Asia/Shanghai")
