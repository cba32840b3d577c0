"""Residents rate a volunteer's service through the core: only where the post says so, only the post's
community's residents, never a volunteer their own service, only after the slot, once, with one comment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core import volunteers as core
from storage.database import Database
from storage.models import Person, Role, SlotClaim
from tests.org_fixture import NOW, make_small_org, staff
from tests.test_authorization_matrix import resident
from tests.volunteer_fixture import approved_volunteer, publish

STARTS = NOW + timedelta(days=2)
AFTER = STARTS + timedelta(hours=3)


@dataclass
class World:
    neighbour: Person
    volunteer: Person
    claim: int
    post: int


def _world(session: Session, residents_rate: bool = True) -> World:
    org = make_small_org(session)
    chen = staff(session, 3001, "陈社区", Role.COMMUNITY, org.community)
    session.flush()
    session.expire_all()
    neighbour = resident(session, 1002, "Ma Neighbour", org.building)
    volunteer = resident(session, 1001, "Li Volunteer", org.building)
    resident(session, 1003, "He Elsewhere", org.building2)
    approved_volunteer(session, volunteer, org.community, "Li Volunteer")
    post = publish(session, chen, org.community, STARTS, NOW)
    if residents_rate:
        core.let_residents_rate(session, chen, post.id)
    claim = core.claim_slot(session, volunteer, post.slots[0].id, NOW)
    core.check_in_at_post(session, volunteer, claim.id, STARTS)
    core.check_out(session, volunteer, claim.id, STARTS + timedelta(hours=1))
    return World(neighbour, volunteer, claim.id, post.id)


def _person(session: Session, external_id: str) -> Person:
    return session.scalars(select(Person).where(Person.external_id == external_id)).one()


REFUSED = {
    "before the slot is over": (lambda s, w: core.rate_as_resident(s, w.neighbour, w.claim, 4, STARTS),
                                core.SLOT_NOT_OVER),
    "by a resident of another community": (
        lambda s, w: core.rate_as_resident(s, _person(s, "1003"), w.claim, 4, AFTER), core.NOT_A_RESIDENT),
    "by the volunteer": (lambda s, w: core.rate_as_resident(s, w.volunteer, w.claim, 4, AFTER), core.OWN_SERVICE),
    "by staff with no building": (
        lambda s, w: core.rate_as_resident(s, _person(s, "3001"), w.claim, 4, AFTER), core.NOT_A_RESIDENT),
    "with six stars": (lambda s, w: core.rate_as_resident(s, w.neighbour, w.claim, 6, AFTER), core.BAD_STARS),
}


@pytest.mark.parametrize("case", REFUSED)
async def test_refused(database: Database, case: str) -> None:
    def attempt(session: Session) -> str:
        world = _world(session)
        perform, _reason = REFUSED[case]
        with pytest.raises(core.VolunteerRefused) as refused:
            perform(session, world)
        return refused.value.reason

    assert await database.run(attempt) == REFUSED[case][1]


async def test_a_post_not_marked_is_not_rated_by_residents(database: Database) -> None:
    def attempt(session: Session) -> str:
        world = _world(session, residents_rate=False)
        with pytest.raises(core.VolunteerRefused) as refused:
            core.services_to_rate(session, world.neighbour, world.post, AFTER)
        return refused.value.reason

    assert await database.run(attempt) == core.RESIDENTS_DO_NOT_RATE


async def test_a_resident_rates_once_and_comments_once(database: Database) -> None:
    def run(session: Session) -> tuple[int, int, list[str], tuple[int, float | None, int, float | None]]:
        world = _world(session)
        before = len(core.services_to_rate(session, world.neighbour, world.post, AFTER))
        core.rate_as_resident(session, world.neighbour, world.claim, 3, AFTER)
        core.comment_as_resident(session, world.neighbour, world.claim, "准时到岗")
        reasons = []
        for again in (lambda: core.rate_as_resident(session, world.neighbour, world.claim, 5, AFTER),
                      lambda: core.comment_as_resident(session, world.neighbour, world.claim, "改评语")):
            with pytest.raises(core.VolunteerRefused) as refused:
                again()
            reasons.append(refused.value.reason)
        after = len(core.services_to_rate(session, world.neighbour, world.post, AFTER))
        session.get_one(SlotClaim, world.claim).stars = 5  # the staff's rating, counted apart
        session.flush()
        totals = core.my_totals(session, world.volunteer)
        return before, after, reasons, (totals.ratings, totals.average, totals.resident_ratings,
                                        totals.resident_average)

    before, after, reasons, totals = await database.run(run)
    assert (before, after) == (1, 0)
    assert reasons == [core.ALREADY_RATED, core.ALREADY_RATED]
    assert totals == (1, 5, 1, 3)
