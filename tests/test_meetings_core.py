"""The three-party meeting through the core: only the community's own staff invite, schedule and record; only the
owner party (or the staff) reports an outcome; the agenda is sent once however often the scheduler runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.core import meetings as core
from storage.database import Database
from storage.models import Meeting, MeetingParty, Person, Role
from tests.org_fixture import make_small_org, staff
from tests.volunteer_fixture import local

DEFAULTS = core.MeetingDefaults(weekday=4, property_categories=("clutter",))
THURSDAY = local(2026, 11, 26, 15, 1)  # the day before Friday 15:00


@dataclass
class World:
    chen: Person
    lin: Person
    owners_rep: Person
    property_rep: Person
    community: int


def _world(session: Session) -> World:
    org = make_small_org(session)
    chen = staff(session, 3001, "Chen", Role.COMMUNITY, org.community, "en")
    lin = staff(session, 3002, "Lin", Role.COMMUNITY, org.community2, "en")
    owners_rep = staff(session, 6001, "Ou Owners", Role.WORKER, org.grid2, "en")
    property_rep = staff(session, 6002, "Pang Property", Role.WORKER, org.grid2, "en")
    session.flush()
    session.expire_all()
    for person, party in ((owners_rep, MeetingParty.OWNERS), (property_rep, MeetingParty.PROPERTY)):
        core.join(session, person, core.invite(session, chen, org.community, party, THURSDAY).token, THURSDAY)
    return World(chen, lin, owners_rep, property_rep, org.community)


def _decision(session: Session, world: World) -> int:
    meeting = core.claim_agenda(session, world.community, THURSDAY, DEFAULTS)
    assert meeting is not None
    return core.add_decision(session, world.chen, meeting.id, None, "整改消防通道", MeetingParty.PROPERTY,
                             meeting.held_at + timedelta(days=6), meeting.held_at + timedelta(hours=2)).id


async def test_the_agenda_is_claimed_once_and_only_the_day_before(database: Database) -> None:
    def run(session: Session) -> tuple[bool, bool, bool, int]:
        world = _world(session)
        early = core.claim_agenda(session, world.community, THURSDAY - timedelta(hours=1), DEFAULTS) is None
        first = core.claim_agenda(session, world.community, THURSDAY, DEFAULTS) is not None
        again = core.claim_agenda(session, world.community, THURSDAY + timedelta(minutes=5), DEFAULTS) is None
        return early, first, again, session.scalar(select(func.count()).select_from(Meeting)) or 0

    assert await database.run(run) == (True, True, True, 1)


STAFF_ONLY = {
    "invite": lambda s, w: core.invite(s, w.lin, w.community, MeetingParty.OWNERS, THURSDAY),
    "schedule": lambda s, w: core.set_schedule(s, w.lin, w.community, 2, DEFAULTS.at),
    "invite as a representative": lambda s, w: core.invite(s, w.property_rep, w.community, MeetingParty.OWNERS,
                                                           THURSDAY),
}


@pytest.mark.parametrize("case", STAFF_ONLY)
async def test_only_the_communitys_staff_invite_and_schedule(database: Database, case: str) -> None:
    def attempt(session: Session) -> str:
        world = _world(session)
        with pytest.raises(core.MeetingRefused) as refused:
            STAFF_ONLY[case](session, world)
        return refused.value.reason

    assert await database.run(attempt) == core.NOT_COMMUNITY_STAFF


async def test_only_the_owner_party_or_staff_report_the_outcome(database: Database) -> None:
    def attempt(session: Session) -> tuple[str, str, str | None]:
        world = _world(session)
        decision_id = _decision(session, world)
        later = THURSDAY + timedelta(days=3)
        with pytest.raises(core.MeetingRefused) as other_party:
            core.report_outcome(session, world.owners_rep, decision_id, "已整改", later)
        with pytest.raises(core.MeetingRefused) as other_staff:
            core.report_outcome(session, world.lin, decision_id, "已整改", later)
        done = core.report_outcome(session, world.property_rep, decision_id, "已整改", later)
        return other_party.value.reason, other_staff.value.reason, done.outcome

    assert await database.run(attempt) == (core.NOT_THE_OWNER, core.NOT_THE_OWNER, "已整改")


async def test_a_decision_cannot_be_recorded_before_the_meeting(database: Database) -> None:
    def attempt(session: Session) -> str:
        world = _world(session)
        meeting = core.claim_agenda(session, world.community, THURSDAY, DEFAULTS)
        assert meeting is not None
        with pytest.raises(core.MeetingRefused) as refused:
            core.add_decision(session, world.chen, meeting.id, None, "x", MeetingParty.PROPERTY,
                              meeting.held_at + timedelta(days=6), THURSDAY)
        return refused.value.reason

    assert await database.run(attempt) == core.NOT_YET_HELD
