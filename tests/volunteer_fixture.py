"""Volunteers for tests: a partner unit, community staff, and a helper that publishes a post through the core."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.core import volunteers
from storage.models import (
    ClaimStatus,
    PartnerUnit,
    Person,
    PostSlot,
    ResidentRating,
    Role,
    SlotClaim,
    Volunteer,
    VolunteerPost,
    VolunteerStatus,
)
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


@dataclass(frozen=True)
class VolunteerWorld:
    """What ``volunteer_world`` made: a pending check-in, a slot to claim and a served claim to rate."""

    pending: int
    open_slot: int
    served_claim: int


def volunteer_world(session: Session, org: SmallOrg, volunteer: Person, outsider: Person, applicant: Person,
                    author: Person, now: datetime, later: datetime) -> VolunteerWorld:
    """``volunteer`` approved in the org's community, ``outsider`` in the other one, ``applicant`` waiting;
    a post of the org's community with a slot still to come at ``later`` and one over by then, which
    ``volunteer`` served; residents rate the post's volunteers too."""
    unit = partner_unit(session)
    own = approved_volunteer(session, volunteer, org.community, volunteer.display_name, unit)
    approved_volunteer(session, outsider, org.community2, outsider.display_name)
    # Somebody besides the filer whom the holder of the filer's request may ask to help with it.
    helper = Person(channel="telegram", external_id="9001", chat_id="9001", display_name="Zhao Helper", locale="en",
                    state_data={}, created_at=now)
    session.add(helper)
    session.flush()
    approved_volunteer(session, helper, org.community, helper.display_name)
    pending = Volunteer(person_id=applicant.id, community_id=org.community, name=applicant.display_name,
                        party_member=False, status=VolunteerStatus.PENDING, created_at=now)
    post = VolunteerPost(community_id=org.community, title="楼道清理", description="", place="建设路12号院",
                         created_by_id=author.id, created_at=now, residents_rate=True)
    session.add_all([pending, post])
    session.flush()
    coming = PostSlot(post_id=post.id, starts_at=later + timedelta(days=1), ends_at=later + timedelta(days=1, hours=2),
                      places=2)
    over = PostSlot(post_id=post.id, starts_at=now + timedelta(days=1), ends_at=now + timedelta(days=1, hours=2),
                    places=2)
    session.add_all([coming, over])
    session.flush()
    served = SlotClaim(slot_id=over.id, volunteer_id=own.id, status=ClaimStatus.CLAIMED, claimed_at=now,
                       checked_in_at=over.starts_at, checked_out_at=over.ends_at)
    session.add(served)
    session.flush()
    return VolunteerWorld(pending.id, coming.id, served.id)


def volunteer_snapshot(session: Session) -> tuple[object, ...]:
    """Everything a volunteer action could change, as one comparable value."""
    return (
        tuple(session.scalars(select(Volunteer.status).order_by(Volunteer.id))),
        tuple(session.execute(select(SlotClaim.id, SlotClaim.status, SlotClaim.stars).order_by(SlotClaim.id))),
        session.scalar(select(func.count()).select_from(VolunteerPost)),
        session.scalar(select(func.count()).select_from(PostSlot)),
        tuple(session.execute(select(ResidentRating.claim_id, ResidentRating.person_id, ResidentRating.stars))),
    )


def volunteer_sheet(session: Session, community_id: int, month: str, locale: str = "en") -> list[tuple[object, ...]]:
    """The rows of the volunteer sheet of the community's bulletin workbook for ``month``."""
    import io

    from openpyxl import load_workbook

    from bot.core.bulletin import compute_bulletin
    from bot.core.bulletin_render import render_workbook
    from bot.core.units import Unit
    from bot.i18n import translator
    from storage.models import Level

    bulletin = compute_bulletin(session, Unit(Level.COMMUNITY, community_id), month, "Asia/Shanghai")
    t = translator(locale, "Asia/Shanghai")
    workbook = load_workbook(io.BytesIO(render_workbook(t, bulletin)))
    return [tuple(row) for row in workbook[t._("Volunteer service")].iter_rows(values_only=True)]
