"""Volunteers on a request through the core: who may ask, who may answer, answering twice, and a request
that moved on; each refusal leaves the timeline as it was."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.core import requests as core
from storage.database import Database
from storage.models import EventKind, Person, RequestEvent, Role, VolunteerStatus
from tests.org_fixture import NOW, make_small_org, staff
from tests.volunteer_fixture import approved_volunteer


def _person(session: Session, user_id: int, name: str, building_id: int | None = None) -> Person:
    person = Person(channel="telegram", external_id=str(user_id), chat_id=str(user_id), display_name=name,
                    locale="en", state_data={}, created_at=NOW, building_id=building_id)
    session.add(person)
    session.flush()
    return person


@dataclass
class World:
    filer: Person
    worker: Person
    street: Person
    helper: Person
    outsider: Person
    pending: Person
    request: int


def _world(session: Session) -> World:
    org = make_small_org(session)
    filer = _person(session, 1001, "Li Filer", org.building)
    worker = staff(session, 2001, "Wang Worker", Role.WORKER, org.grid, "en")
    street = staff(session, 4001, "Sun Street", Role.STREET, org.street, "en")
    helper, outsider = _person(session, 8001, "Zhao"), _person(session, 8002, "Qian")
    pending = _person(session, 8003, "Ma")
    approved_volunteer(session, helper, org.community, "Zhao Helper")
    approved_volunteer(session, outsider, org.community2, "Qian Elsewhere")
    approved_volunteer(session, filer, org.community, "Li Filer")
    approved_volunteer(session, pending, org.community, "Ma Pending").status = VolunteerStatus.PENDING
    session.flush()
    session.expire_all()
    request_id = core.file_request(session, filer, core.Draft(1, "楼道里堆满了纸箱"), NOW).request.id
    return World(filer, worker, street, helper, outsider, pending, request_id)


def _events(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(RequestEvent)) or 0


async def test_asked_volunteers_exclude_the_filer_and_other_communities(database: Database) -> None:
    def ask(session: Session) -> list[str]:
        world = _world(session)
        asked = core.ask_volunteers(session, world.worker, world.request, "帮忙搬纸箱", NOW)
        return [volunteer.name for volunteer in asked.volunteers]

    assert await database.run(ask) == ["Zhao Helper"]


Refused = Callable[[Session, World], object]
REFUSED: dict[str, Refused] = {
    "help before anyone asked": lambda s, w: core.help_with(s, w.helper, w.request, NOW),
    "empty need": lambda s, w: core.ask_volunteers(s, w.worker, w.request, "  ", NOW),
    "the street asks": lambda s, w: core.ask_volunteers(s, w.street, w.request, "帮忙", NOW),
}
AFTER_ASKING: dict[str, Refused] = {
    "a volunteer of another community": lambda s, w: core.help_with(s, w.outsider, w.request, NOW),
    "a check-in still pending": lambda s, w: core.help_with(s, w.pending, w.request, NOW),
    "the filer": lambda s, w: core.help_with(s, w.filer, w.request, NOW),
    "answering twice": lambda s, w: core.help_with(s, w.helper, w.request, NOW),
}


@pytest.mark.parametrize("case", [*REFUSED, *AFTER_ASKING])
async def test_refusals_change_nothing(database: Database, case: str) -> None:
    def attempt(session: Session) -> tuple[int, int, str]:
        world = _world(session)
        if case in AFTER_ASKING:
            core.ask_volunteers(session, world.worker, world.request, "帮忙搬纸箱", NOW)
            if case == "answering twice":
                core.help_with(session, world.helper, world.request, NOW)
        before = _events(session)
        with pytest.raises(core.RequestRefused) as refused:
            {**REFUSED, **AFTER_ASKING}[case](session, world)
        return before, _events(session), refused.value.reason

    before, after, reason = await database.run(attempt)
    assert after == before and reason


async def test_a_withdrawn_request_takes_no_more_help(database: Database) -> None:
    def attempt(session: Session) -> str:
        world = _world(session)
        core.ask_volunteers(session, world.worker, world.request, "帮忙搬纸箱", NOW)
        core.withdraw(session, world.filer, world.request, NOW)
        with pytest.raises(core.RequestRefused) as refused:
            core.help_with(session, world.helper, world.request, NOW)
        helped = session.scalar(select(func.count()).where(RequestEvent.kind == EventKind.HELPED))
        assert helped == 0
        return refused.value.reason

    assert "withdrawn" in await database.run(attempt)
